"""Event stores: the port, the frozen records that cross it, and one module per technology.

``DuckDBEventStore`` is imported lazily (``from allframe_lab.store import DuckDBEventStore``
works, but ``import allframe_lab.store`` does not import duckdb).
"""

from typing import TYPE_CHECKING, Any

from allframe_lab.store.memory import InMemoryEventStore
from allframe_lab.store.port import ARROW_COLUMNS, EventStore
from allframe_lab.store.records import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AsOf,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreStats,
    StreamInfo,
)

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.store.duckdb import DuckDBEventStore

__all__ = [
    "ANY",
    "ARROW_COLUMNS",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AsOf",
    "DuckDBEventStore",
    "EventStore",
    "ExpectedVersion",
    "InMemoryEventStore",
    "NewEvent",
    "RecordedEvent",
    "Snapshot",
    "StoreStats",
    "StreamInfo",
]


def __getattr__(name: str) -> Any:
    if name == "DuckDBEventStore":
        from allframe_lab.store.duckdb import DuckDBEventStore

        return DuckDBEventStore
    raise AttributeError(f"module 'allframe_lab.store' has no attribute {name!r}")
