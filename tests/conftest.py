"""Shared fixtures: backends are selected by mark (``-m memory`` / ``-m duckdb``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from allframe_lab.store import EventStore, InMemoryEventStore

BACKENDS = [
    pytest.param("memory", marks=pytest.mark.memory),
    pytest.param("duckdb", marks=pytest.mark.duckdb),
    # appends committed by DuckDB itself instead of the journal (``journal=False``)
    pytest.param("duckdb-direct", marks=pytest.mark.duckdb),
]


def open_store(kind: str, tmp_path: Path) -> EventStore:
    if kind == "memory":
        return InMemoryEventStore()
    from allframe_lab.store.duckdb import DuckDBEventStore

    return DuckDBEventStore(tmp_path / "events.duckdb", journal=kind == "duckdb")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    s = open_store(request.param, tmp_path)
    yield s
    s.close()
