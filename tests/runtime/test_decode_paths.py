"""The batch decode paths (DuckDB's columnar reads, the in-memory store's records) give the
same events, records and errors as decoding one record at a time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from allframe_lab import Aggregate, App, Event, Model, Projection, applies, upcasts
from allframe_lab.errors import EventDecodeError, UnknownEventTypeError
from allframe_lab.runtime._decode import EventDecoder, decode_stream, iter_decoded
from allframe_lab.store import DuckDBEventStore, InMemoryEventStore, NewEvent


def _model() -> Model:
    m = Model("paths")

    @m.event("Opened")
    class Opened(Event):
        owner: str

    @m.event("Moved", version=2)
    class Moved(Event):
        amount: int

        @upcasts(from_version=1)
        def _v1(d: dict[str, Any]) -> dict[str, Any]:
            return {"amount": d["qty"] * 10}

    @m.aggregate("Acc")
    class Acc(Aggregate):
        total: int = 0
        seen: tuple[int, ...] = ()

        @applies("Opened")
        def _opened(self, e: Any) -> None:
            self.total = 0

        @applies("Moved")
        def _moved(self, e: Any, rec: Any) -> None:
            self.total += e.amount
            self.seen = (*self.seen, rec.position)

    @m.projection("totals", key="stream_id")
    class Totals(Projection):
        @applies("Opened")
        def _opened(self, e: Any, rec: Any) -> None:
            self.rows[rec.stream_id] = {"stream_id": rec.stream_id, "total": 0,
                                        "last": rec.position}

        @applies("Moved")
        def _moved(self, e: Any, rec: Any) -> None:
            row = self.rows[rec.stream_id]
            row["total"] += e.amount
            row["last"] = rec.position

    return m


def _fill(store: Any) -> None:
    # interleaved types and schema versions in one stream, and a second stream between them
    store.append("a", [NewEvent("Opened", {"owner": "ann"}),
                       NewEvent("Moved", {"qty": 1}, schema_version=1),
                       NewEvent("Moved", {"amount": 5}, schema_version=2)])
    store.append("b", [NewEvent("Opened", {"owner": "bob"}, metadata={"k": "v"})])
    store.append("a", [NewEvent("Moved", {"amount": 7}, schema_version=2),
                       NewEvent("Moved", {"qty": 2}, schema_version=1)])


@pytest.fixture(params=["memory", "duckdb"])
def store(request: Any, tmp_path: Path) -> Any:
    s = InMemoryEventStore() if request.param == "memory" else DuckDBEventStore(
        tmp_path / "e.duckdb")
    yield s
    s.close()


def test_batches_equal_one_by_one_decoding(store: Any) -> None:
    m = _model()
    _fill(store)
    dec = EventDecoder(m)
    for batch_size in (1, 2, 10_000):
        pairs = [p for b in iter_decoded(store, dec, 1, None, batch_size=batch_size) for p in b]
        assert [e for e, _ in pairs] == [dec.decode(r) for r in store.read_all()]
        full = store.read_all()
        for (_, rec), want in zip(pairs, full, strict=True):
            assert (rec.position, rec.stream_id, rec.version, rec.type, rec.schema_version,
                    rec.occurred_at) == (want.position, want.stream_id, want.version,
                                         want.type, want.schema_version, want.occurred_at)
            # the columns not read on the fast path come from the store on demand
            assert (rec.event_id, rec.data, rec.metadata, rec.recorded_at) == (
                want.event_id, want.data, want.metadata, want.recorded_at)
    events, records = decode_stream(store, dec, "a", 2, 4)
    assert [e.amount for e in events] == [10, 5, 7]
    assert [r.version for r in records] == [2, 3, 4] and records[-1].position == 5
    assert [r.position for r in records[1:]] == [3, 5]


def test_aggregate_load_and_projection_rebuild(store: Any) -> None:
    _fill(store)
    app = App(_model(), store)
    acc = app.load("Acc", "a")
    assert (acc.total, acc.version, acc.seen) == (10 + 5 + 7 + 20, 5, (2, 3, 5, 6))
    assert app.load("Acc", "a", version=3).total == 15
    app.projection("totals").rebuild(progress=False)
    rows = app.projection("totals").df().set_index("stream_id").to_dict("index")
    assert rows == {"a": {"total": 42, "last": 6}, "b": {"total": 0, "last": 4}}


def test_a_bad_payload_in_a_batch_names_its_position(store: Any) -> None:
    m = _model()
    _fill(store)
    store.append("a", [NewEvent("Moved", {"amount": 1}, schema_version=2),
                       NewEvent("Moved", {"amount": "lots"}, schema_version=2),
                       NewEvent("Moved", {"amount": 2}, schema_version=2)])
    dec = EventDecoder(m)
    with pytest.raises(EventDecodeError, match=r"Moved v2 event at position 8"):
        [p for b in iter_decoded(store, dec, 1, None) for p in b]
    with pytest.raises(EventDecodeError, match=r"position 8"):
        decode_stream(store, dec, "a", 1, None)
    # the events before it still decode
    assert len(decode_stream(store, dec, "a", 1, 6)[0]) == 6


def test_an_upcaster_failure_in_a_batch_names_its_position(store: Any) -> None:
    _fill(store)
    store.append("b", [NewEvent("Moved", {"oops": 1}, schema_version=1)])
    with pytest.raises(EventDecodeError, match=r"Moved v1 event at position 7.*KeyError"):
        decode_stream(store, EventDecoder(_model()), "b", 1, None)


def test_an_unknown_type_names_its_position(store: Any) -> None:
    _fill(store)
    store.append("a", [NewEvent("Closed", {})])
    with pytest.raises(UnknownEventTypeError, match="Closed") as info:
        [p for b in iter_decoded(store, EventDecoder(_model()), 1, None) for p in b]
    assert info.value.position == 7


def test_a_projection_that_overrides_handle_gets_every_event(store: Any) -> None:
    m = _model()
    seen: list[int] = []

    @m.projection("custom", key="stream_id")
    class Custom(Projection):
        def handle(self, event: Any, record: Any = None) -> None:
            seen.append(record.position)
            self.rows[record.stream_id] = {"stream_id": record.stream_id, "n": len(seen)}

    _fill(store)
    app = App(m, store)
    app.projection("custom").rebuild(progress=False)
    assert seen == [1, 2, 3, 4, 5, 6]


def test_unsorted_reads_are_sorted_and_equal_times_share_objects() -> None:
    import numpy as np
    import pyarrow as pa

    from allframe_lab.store._columns import _EPOCH, _ordered, _times

    table = pa.table({"position": [3, 1, 2], "x": ["c", "a", "b"]})
    assert _ordered(table, "position").column("x").to_pylist() == ["a", "b", "c"]
    assert _ordered(table.slice(1, 2), "position").column("x").to_pylist() == ["a", "b"]
    us = np.array([7] * 12 + [11, 12], dtype=np.int64)
    times = _times(us)
    assert [(t - _EPOCH).total_seconds() * 1e6 for t in times] == us.tolist()
    assert times[0] is times[11] and all(t.tzinfo is not None for t in times)


def test_a_bad_payload_in_a_one_type_stream_names_its_position(store: Any) -> None:
    store.append("c", [NewEvent("Moved", {"amount": 1}, schema_version=2),
                       NewEvent("Moved", {"amount": []}, schema_version=2)])
    dec = EventDecoder(_model())
    with pytest.raises(EventDecodeError, match=r"Moved v2 event at position 2"):
        decode_stream(store, dec, "c", 1, None)
    with pytest.raises(EventDecodeError, match=r"Moved v2 event at position 2"):
        [p for b in iter_decoded(store, dec, 1, None) for p in b]
    with pytest.raises(EventDecodeError, match=r"Moved v2 event at position 2"):
        [dec.decode(r) for r in store.read_all()]
