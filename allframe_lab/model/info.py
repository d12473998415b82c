"""Introspection of a Model, returned as frozen data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "AggregateInfo",
    "CommandInfo",
    "EventInfo",
    "ModelInfo",
    "ProjectionInfo",
    "QueryInfo",
    "SagaInfo",
]


@dataclass(frozen=True, slots=True)
class EventInfo:
    name: str
    schema_version: int
    class_name: str
    fields: tuple[str, ...]
    json_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    class_name: str
    fields: tuple[str, ...]
    stream_field: str | None
    creates: bool
    handled_by: str | None
    json_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AggregateInfo:
    name: str
    class_name: str
    state_fields: tuple[str, ...]
    applies: tuple[str, ...]
    handles: tuple[str, ...]
    snapshot_every: int | None


@dataclass(frozen=True, slots=True)
class ProjectionInfo:
    name: str
    kind: str  # "python" or "sql"
    table: str
    key: str | None
    applies: tuple[str, ...]
    sql: str | None


@dataclass(frozen=True, slots=True)
class QueryInfo:
    name: str
    class_name: str
    fields: tuple[str, ...]
    has_handler: bool
    json_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SagaInfo:
    name: str
    class_name: str
    correlation: str
    starts: tuple[str, ...]
    reacts: tuple[str, ...]
    steps: tuple[str, ...]
    compensations: tuple[str | None, ...]
    waits_for: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """Everything a Model declares, as frozen data (for reprs, graphs, export)."""

    name: str
    events: tuple[EventInfo, ...]
    commands: tuple[CommandInfo, ...]
    aggregates: tuple[AggregateInfo, ...]
    projections: tuple[ProjectionInfo, ...]
    queries: tuple[QueryInfo, ...] = ()
    use_cases: tuple[str, ...] = ()
    sagas: tuple[SagaInfo, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
