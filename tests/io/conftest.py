"""Fixtures of the io tests: DuckDB store files, and the running example's events parsed
independently of allframe_lab's XES reader (see ``io_truth.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from io_truth import TruthEvent, running_example_events

from allframe_lab.store.duckdb import DuckDBEventStore


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    """A fresh DuckDB event store in a file."""
    store = DuckDBEventStore(tmp_path / "events.duckdb")
    yield store
    store.close()


@pytest.fixture(scope="session")
def truth() -> list[TruthEvent]:
    """The running example's events in the order an import appends them (time, then file)."""
    return sorted(running_example_events(), key=lambda e: (e.at, e.order))
