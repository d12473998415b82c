"""DuckDB's batched reads: records built from Arrow columns (event ids, metadata and times
converted on first access) behave exactly like RecordedEvents, and position-range batches
read the same events as the in-memory store."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from allframe_lab.store import DuckDBEventStore, InMemoryEventStore, NewEvent, RecordedEvent

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _events(n: int) -> list[tuple[str, NewEvent]]:
    return [(f"s{i % 3}", NewEvent("Big" if i % 4 == 0 else "Small", {"i": i, "t": [i, "é"]},
                                   schema_version=1 + i % 2,
                                   metadata={"correlation_id": f"c{i}"} if i % 5 else {},
                                   occurred_at=T0 + timedelta(seconds=i), event_id=UUID(int=i + 1)))
            for i in range(n)]


def _fill(store: Any, n: int) -> None:
    for sid, e in _events(n):
        store.append(sid, [e])


@pytest.fixture
def duck(tmp_path: Path) -> Any:
    store = DuckDBEventStore(tmp_path / "log.duckdb")
    _fill(store, 23)
    yield store
    store.close()


def _as_plain(rec: RecordedEvent) -> RecordedEvent:
    return RecordedEvent(*(getattr(rec, f.name) for f in dataclasses.fields(RecordedEvent)))


def test_batched_records_equal_the_stream_reads_field_by_field(duck: Any) -> None:
    batched = [r for b in duck.read_batches(batch_size=4) for r in b]
    by_stream = sorted((r for s in ("s0", "s1", "s2") for r in duck.read_stream(s)),
                       key=lambda r: r.position)
    assert [r.position for r in batched] == list(range(1, 24))
    assert len(batched) == len(by_stream) == 23
    for lazy, plain in zip(batched, by_stream, strict=True):
        assert type(plain) is RecordedEvent and isinstance(lazy, RecordedEvent)
        assert repr(lazy) == repr(plain)  # converts every lazy field
        assert lazy == plain and plain == lazy
        assert not lazy != plain  # noqa: SIM202 (the __ne__ path)
        assert dataclasses.asdict(lazy) == dataclasses.asdict(plain)
        assert lazy.occurred_at.tzinfo is not None and lazy.recorded_at.tzinfo is not None


def test_lazy_fields_are_right_when_read_first_in_any_order(duck: Any) -> None:
    plain = {r.position: r for s in ("s0", "s1", "s2") for r in duck.read_stream(s)}
    batch = next(duck.read_batches(batch_size=50))
    for name in ("recorded_at", "metadata", "event_id", "occurred_at"):  # each: first touch
        rec = batch[len(batch) // 2]
        assert getattr(rec, name) == getattr(plain[rec.position], name)
    for rec in batch:  # every other record of the batch, converted column-wise
        assert (rec.event_id, rec.metadata, rec.occurred_at) == (
            plain[rec.position].event_id, plain[rec.position].metadata,
            plain[rec.position].occurred_at)


def test_records_are_frozen_hash_copy_and_pickle_like_recorded_events(duck: Any) -> None:
    rec = next(duck.read_batches())[1]
    plain = _as_plain(rec)
    for target in (rec, plain):
        with pytest.raises(dataclasses.FrozenInstanceError):
            target.position = 9  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            del target.metadata  # type: ignore[misc]
        with pytest.raises(TypeError, match="unhashable"):  # data is a dict, as stored
            hash(target)
    with pytest.raises(AttributeError, match=r"has no attribute .\_batch\_x."):
        rec._batch_x  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec._batch = None  # type: ignore[misc]
    for clone in (pickle.loads(pickle.dumps(rec)), copy.copy(rec), copy.deepcopy(rec)):
        assert type(clone) is RecordedEvent and clone == plain
    changed = dataclasses.replace(rec, stream_id="other")
    assert changed.stream_id == "other" and changed.metadata == plain.metadata
    assert changed != plain and dataclasses.replace(rec) == plain


def test_records_outlive_the_store(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "gone.duckdb")
    events = _events(5)
    for sid, e in events:
        store.append(sid, [e])
    records = list(store.read_all())
    store.close()
    assert [r.metadata for r in records] == [e.metadata for _, e in events]
    assert [r.event_id for r in records] == [e.event_id for _, e in events]


@pytest.mark.parametrize("batch_size", [1, 2, 5, 100])
@pytest.mark.parametrize("window", [(1, None), (4, 17), (20, 100), (30, None)])
@pytest.mark.parametrize("filters", [{}, {"types": ["Big"]}, {"types": []},
                                     {"until": T0 + timedelta(seconds=11)},
                                     {"types": ["Small"], "until": T0 + timedelta(seconds=7)}])
def test_batches_match_the_in_memory_store(duck: Any, batch_size: int,
                                           window: tuple[int, int | None],
                                           filters: dict[str, Any]) -> None:
    mem = InMemoryEventStore()
    _fill(mem, 23)
    got = [[(r.position, r.type, r.data, r.metadata, r.event_id) for r in b]
           for b in duck.read_batches(*window, batch_size=batch_size, **filters)]
    want = [[(r.position, r.type, r.data, r.metadata, r.event_id) for r in b]
            for b in mem.read_batches(*window, batch_size=batch_size, **filters)]
    assert got == want
    assert all(len(b) <= batch_size for b in got)
    rows = [[r[0] for r in b]
            for b in duck.read_rows(*window, batch_size=batch_size, **filters)]
    assert rows == [[r[0] for r in b] for b in got]


def test_events_appended_while_reading_are_read(duck: Any) -> None:
    seen = []
    for batch in duck.read_batches(batch_size=10):
        seen += [r.position for r in batch]
        if len(seen) == 10:
            duck.append("late", [NewEvent("Small", {"i": -1})])
    assert seen == list(range(1, 25))


def test_the_public_fetch_path_gives_the_same_tables(duck: Any, monkeypatch: Any) -> None:
    """Without DuckDB's private ``_submit`` (another DuckDB version), reads use
    ``con.sql`` and give equal tables."""
    from allframe_lab.store import _columns

    class PublicOnly:  # the connection's public API only
        def __init__(self, con: Any) -> None:
            self._real = con

        def sql(self, *args: Any, **kwargs: Any) -> Any:
            return self._real.sql(*args, **kwargs)

    sql = "SELECT position, data::VARCHAR AS data FROM events WHERE position BETWEEN ? AND ?"
    fast = _columns.fetch_arrow(duck.connection, sql, [3, 9])
    monkeypatch.setattr(_columns, "_SUBMIT_WORKS", None)
    public = _columns.fetch_arrow(PublicOnly(duck.connection), sql, [3, 9])
    assert _columns._SUBMIT_WORKS is False
    assert public.equals(fast) and public.num_rows == 7
    assert _columns.fetch_arrow(PublicOnly(duck.connection), sql, [1, 2]).num_rows == 2


def test_a_read_only_store_reads_the_same_batches(duck: Any) -> None:
    writer = [[(r.position, r.metadata) for r in b] for b in duck.read_batches(batch_size=7)]
    reader = DuckDBEventStore(duck.path, read_only=True)  # a snapshot copy: duck holds the file
    try:
        assert [[(r.position, r.metadata) for r in b]
                for b in reader.read_batches(batch_size=7)] == writer
        assert [len(b) for b in reader.read_batches(3, 12, batch_size=7)] == [7, 3]
    finally:
        reader.close()
