"""Replay batches (events + records as two lists), the decoder's per-type fast path, a
projection rebuild whose batches cross several marks, and aggregate loads decoded in
chunks, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from allframe_lab import Aggregate, App, Event, Model, Projection, applies
from allframe_lab.errors import EventDecodeError, RedefinitionWarning
from allframe_lab.runtime import _decode
from allframe_lab.runtime._decode import DecodedBatch, EventDecoder, iter_decoded
from allframe_lab.runtime.repository import Repository
from allframe_lab.store import DuckDBEventStore, InMemoryEventStore, NewEvent


def _model() -> Model:
    m = Model("replay")

    @m.event("Opened")
    class Opened(Event):
        owner: str

    @m.event("Moved")
    class Moved(Event):
        amount: int

    @m.projection("totals", key="id")
    class Totals(Projection):
        @applies("Opened")
        def opened(self, e: Any, rec: Any) -> None:
            self.rows[rec.stream_id] = {"id": rec.stream_id, "owner": e.owner, "total": 0}

        @applies("Moved")
        def moved(self, e: Any, rec: Any) -> None:
            row = self.rows[rec.stream_id]
            row["total"] += e.amount
            if e.amount % 7 == 0:
                row["sevens"] = row.get("sevens", 0) + 1  # a column that appears later

    return m


def _log(n_streams: int = 9, per_stream: int = 23) -> list[tuple[str, NewEvent]]:
    out = []
    for j in range(per_stream):  # interleaved: every batch holds many streams
        for i in range(n_streams):
            sid = f"s{i}"
            out.append((sid, NewEvent("Opened", {"owner": f"o{i}"}) if j == 0
                        else NewEvent("Moved", {"amount": i * j})))
    return out


@pytest.fixture(params=["memory", "duckdb"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    s = InMemoryEventStore() if request.param == "memory" else DuckDBEventStore(
        str(tmp_path / "replay.duckdb"))
    for sid, ev in _log():
        s.append(sid, [ev])
    yield s
    if request.param == "duckdb":
        s.close()


def _oracle(store: Any, upto: int) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for batch in store.read_batches(1, upto):
        for rec in batch:
            if rec.type == "Opened":
                rows[rec.stream_id] = {"id": rec.stream_id, "owner": rec.data["owner"],
                                       "total": 0}
            else:
                row = rows[rec.stream_id]
                row["total"] += rec.data["amount"]
                if rec.data["amount"] % 7 == 0:
                    row["sevens"] = row.get("sevens", 0) + 1
    return rows


def test_batches_read_as_pairs_and_as_lists(store: Any) -> None:
    dec = EventDecoder(_model())
    batches = list(iter_decoded(store, dec, 3, 50, batch_size=20))
    assert all(type(b) is DecodedBatch for b in batches)
    pairs = [p for b in batches for p in b]
    assert [r.position for _, r in pairs] == list(range(3, 51))
    b = batches[0]
    assert len(b) == len(b.events) == len(b.records) == 20
    assert b[-1] == (b.events[-1], b.records[-1]) and b[:2] == list(zip(b.events[:2],
                                                                          b.records[:2]))
    with pytest.raises(ValueError, match="2 events but 1 records"):
        DecodedBatch(b.events[:2], b.records[:1])


def test_records_share_their_strings(store: Any) -> None:
    dec = EventDecoder(_model())
    recs = [r for b in iter_decoded(store, dec, 1, None) for r in b.records]
    assert [r.stream_id for r in recs] == [sid for sid, _ in _log()]
    assert [r.type for r in recs] == [ev.type for _, ev in _log()]
    if isinstance(store, DuckDBEventStore):  # one str object per distinct value of a batch
        assert len({id(r.stream_id) for r in recs}) == 9
        plain = [r for batch in store.read_batches() for r in batch]
        assert [(r.stream_id, r.type) for r in plain] == [(r.stream_id, r.type) for r in recs]
        assert len({id(r.type) for r in plain}) == 2


def test_rebuild_across_many_marks_matches_a_fold_by_hand(store: Any, monkeypatch: Any
                                                          ) -> None:
    app = App(_model(), store)
    runner = app.projections
    monkeypatch.setattr(runner, "_interval", lambda: 7)  # several marks in every batch
    monkeypatch.setattr(runner, "flush_every", 50)  # flushes that add a column later
    head = store.head_position
    assert runner.rebuild("totals")["totals"] == head
    df = app.projection("totals").df(refresh=False)
    want = _oracle(store, head)
    got = {r["id"]: {k: v for k, v in r.items() if v == v and v is not None}
           for r in df.to_dict("records")}
    assert got == {k: {c: v for c, v in row.items()} for k, row in want.items()}
    cache = runner._caches["totals"]
    assert len(cache.marks) > 10
    for p in sorted(cache.marks):
        state = cache.state(p)
        assert state == _oracle(store, p), p
        assert list(state) == list(_oracle(store, p)), p  # rows in the live order


def test_a_rebuild_writes_the_checkpoint_once_at_the_head(store: Any, monkeypatch: Any
                                                           ) -> None:
    app = App(_model(), store)
    runner = app.projections
    head = store.head_position
    monkeypatch.setattr(runner, "flush_every", head)  # the last batch's flush is at the head
    writes: list[int] = []
    real = runner._set_checkpoint

    def counted(con: Any, name: str, kind: str, position: int) -> None:
        writes.append(position)
        real(con, name, kind, position)

    monkeypatch.setattr(runner, "_set_checkpoint", counted)
    runner.rebuild("totals")
    assert writes == [head]  # no second transaction to write the same checkpoint
    store.append("s0", [NewEvent("Moved", {"amount": 5})])
    assert runner.catch_up("totals")["totals"] == head + 1
    assert writes == [head, head + 1]


def test_decode_fast_path_follows_schema_versions_and_redefined_classes() -> None:
    m = Model("redef")

    @m.upcaster("Moved", from_version=1)
    def _eur(d: dict[str, Any]) -> dict[str, Any]:
        return {**d, "unit": "EUR"}

    @m.event("Moved", version=2)
    class Moved(Event):
        amount: int
        unit: str

    dec = EventDecoder(m)
    store = InMemoryEventStore()
    recs = store.append("s", [NewEvent("Moved", {"amount": 1, "unit": "USD"}, schema_version=2),
                              NewEvent("Moved", {"amount": 2}, schema_version=1),
                              NewEvent("Moved", {"amount": 3, "unit": "GBP"}, schema_version=2)])
    assert [(e.amount, e.unit) for e in map(dec.decode, recs)] == [
        (1, "USD"), (2, "EUR"), (3, "GBP")]

    with pytest.warns(RedefinitionWarning):
        @m.event("Moved", version=2)  # a re-run cell: a new class under the same name
        class Moved2(Event):
            amount: int
            unit: str

    assert all(type(dec.decode(r)) is Moved2 for r in recs)
    bad = store.append("s", [NewEvent("Moved", {"amount": "x", "unit": "EUR"},
                                      schema_version=2)])[0]
    with pytest.raises(EventDecodeError) as info:
        dec.decode(bad)
    assert info.value.position == bad.position


# --------------------------------------------------------------------------- aggregate loads
def _bank() -> Model:
    m = Model("chunks")

    @m.event("Moved")
    class Moved(Event):
        amount: int

    @m.event("Noted")
    class Noted(Event):
        text: str

    @m.aggregate("Account")
    class Account(Aggregate):
        total: int = 0
        versions: tuple[int, ...] = ()
        notes: int = 0

        @applies("Moved")
        def _moved(self, e: Any) -> None:
            self.total += e.amount

        @applies("Noted")
        def _noted(self, e: Any, rec: Any) -> None:  # wants the record
            self.notes += 1
            self.versions = (*self.versions, rec.version)

    return m


def _stream(store: Any, n: int) -> None:
    store.append("acc", [NewEvent("Noted", {"text": str(i)}) if i % 5 == 0
                         else NewEvent("Moved", {"amount": i}) for i in range(1, n + 1)])


@pytest.mark.parametrize("chunk", [1, 3, 7, 1000])
def test_loads_in_chunks_match_one_by_one(store: Any, monkeypatch: Any, chunk: int) -> None:
    monkeypatch.setattr(_decode, "STREAM_CHUNK", chunk)
    m = _bank()
    _stream(store, 23)
    repo = Repository(m, store)
    cls = m.aggregate_class("Account")
    dec = EventDecoder(m)
    for version in (None, 1, 5, 6, 22):
        agg = repo.load("Account", "acc", version=version)
        want = cls()
        for rec in store.read_stream("acc", 1, version):
            want.apply(dec.decode(rec), rec)
        assert agg.state() == want.state() and agg.version == want.version == (version or 23)
        assert type(agg) is cls
    assert repo.load("Account", "acc").versions == tuple(range(5, 24, 5))


def test_a_payload_failing_in_a_later_chunk_leaves_no_stale_cached_aggregate(
        store: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(_decode, "STREAM_CHUNK", 2)
    m = _bank()
    _stream(store, 3)
    repo = Repository(m, store)
    assert repo.current("Account", "acc").total == 1 + 2 + 3
    bad = store.append("acc", [NewEvent("Moved", {"amount": 10}),
                               NewEvent("Moved", {"amount": 20}),
                               NewEvent("Moved", {"amount": "not a number"})])[-1]
    for _ in range(2):  # the half-applied aggregate is not served from the cache
        with pytest.raises(EventDecodeError) as info:
            repo.current("Account", "acc")
        assert info.value.position == bad.position
    assert repo._cache["Account"].get("acc") is None
