"""The event-store contract: every backend must pass every test here."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from allframe_lab.errors import ConcurrencyError
from allframe_lab.store import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    EventStore,
    NewEvent,
    Snapshot,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def ev(i: int, type_: str = "Happened", **data: object) -> NewEvent:
    return NewEvent(type_, {"i": i, **data}, occurred_at=T0 + timedelta(minutes=i))


def test_append_returns_positions_and_versions(store: EventStore) -> None:
    rec = store.append("s1", [ev(1), ev(2)], expected_version=NO_STREAM)
    assert [(r.position, r.version, r.stream_id) for r in rec] == [(1, 1, "s1"), (2, 2, "s1")]
    rec = store.append("s2", [ev(3)])
    assert (rec[0].position, rec[0].version) == (3, 1)
    assert store.head_position == 3
    assert store.stream_version("s1") == 2 and store.stream_version("nope") == 0


def test_recorded_fields_round_trip(store: EventStore) -> None:
    eid = uuid4()
    new = NewEvent("Deposited", {"amount": 5, "ref": "é", "nested": {"a": [1, 2]}},
                   schema_version=2, metadata={"correlation_id": "c1"},
                   occurred_at=T0, event_id=eid)
    store.append("acc", [new])
    (r,) = store.read_stream("acc")
    assert r.event_id == eid and r.type == "Deposited" and r.schema_version == 2
    assert dict(r.data) == {"amount": 5, "ref": "é", "nested": {"a": [1, 2]}}
    assert dict(r.metadata) == {"correlation_id": "c1"}
    assert r.occurred_at == T0
    assert r.recorded_at.tzinfo is not None
    assert abs(r.recorded_at - datetime.now(UTC)) < timedelta(minutes=5)


@pytest.mark.parametrize(
    ("expected", "ok"),
    [(NO_STREAM, False), (STREAM_EXISTS, True), (ANY, True), (2, True), (1, False),
     (3, False), (0, False)],
)
def test_expected_version_on_existing_stream(store: EventStore, expected, ok) -> None:
    store.append("s", [ev(1), ev(2)])
    if ok:
        store.append("s", [ev(3)], expected_version=expected)
        assert store.stream_version("s") == 3
    else:
        with pytest.raises(ConcurrencyError) as info:
            store.append("s", [ev(3)], expected_version=expected)
        err = info.value
        assert (err.stream_id, err.expected, err.actual) == ("s", expected, 2)
        assert "Reload" in str(err)
        assert store.stream_version("s") == 2 and store.head_position == 2


@pytest.mark.parametrize(
    ("expected", "ok"),
    [(NO_STREAM, True), (STREAM_EXISTS, False), (ANY, True), (0, True), (1, False)],
)
def test_expected_version_on_new_stream(store: EventStore, expected, ok) -> None:
    if ok:
        store.append("new", [ev(1)], expected_version=expected)
        assert store.stream_version("new") == 1
    else:
        with pytest.raises(ConcurrencyError) as info:
            store.append("new", [ev(1)], expected_version=expected)
        assert info.value.actual == 0
        assert store.head_position == 0


def test_bad_expected_version_is_a_type_error(store: EventStore) -> None:
    with pytest.raises(TypeError, match="expected_version"):
        store.append("s", [ev(1)], expected_version="3")  # type: ignore[arg-type]


def test_append_many_is_atomic(store: EventStore) -> None:
    store.append("a", [ev(1)])
    with pytest.raises(ConcurrencyError):
        store.append_many([("b", [ev(2)], NO_STREAM), ("a", [ev(3)], NO_STREAM)])
    assert store.head_position == 1 and store.stream_version("b") == 0
    assert [r.position for r in store.read_all()] == [1]
    out = store.append_many([("b", [ev(2)], NO_STREAM), ("a", [ev(3)], 1), ("b", [ev(4)], 1)])
    assert [[(r.stream_id, r.version) for r in batch] for batch in out] == [
        [("b", 1)], [("a", 2)], [("b", 2)]]
    assert store.head_position == 4


def test_large_append_many_is_one_transaction(store: EventStore) -> None:
    big = [ev(i) for i in range(600)]
    store.append_many([("x", big, NO_STREAM), ("y", big, NO_STREAM)])
    assert store.stream_version("x") == 600 and store.head_position == 1200
    with pytest.raises(ConcurrencyError):
        store.append_many([("z", big, NO_STREAM), ("x", big, 0)])
    assert store.head_position == 1200 and store.stream_version("z") == 0


def test_empty_append_checks_expected_version_only(store: EventStore) -> None:
    assert store.append("s", [], expected_version=NO_STREAM) == []
    with pytest.raises(ConcurrencyError):
        store.append("s", [], expected_version=STREAM_EXISTS)
    assert store.head_position == 0


def test_positions_strictly_increase_and_versions_are_gapless(store: EventStore) -> None:
    for i in range(30):
        store.append(f"s{i % 4}", [ev(i), ev(i)])
    positions = [r.position for r in store.read_all(batch_size=7)]
    assert positions == list(range(1, 61))
    for k in range(4):
        versions = [r.version for r in store.read_stream(f"s{k}")]
        assert versions == list(range(1, len(versions) + 1))


def test_read_stream_bounds(store: EventStore) -> None:
    store.append("s", [ev(i) for i in range(1, 11)])
    assert [r.version for r in store.read_stream("s", 3, 5)] == [3, 4, 5]
    assert [r.version for r in store.read_stream("s", 9)] == [9, 10]
    assert store.read_stream("s", 11) == [] and store.read_stream("missing") == []


def test_read_all_filters(store: EventStore) -> None:
    for i in range(1, 21):
        store.append(f"s{i % 3}", [ev(i, "Even" if i % 2 == 0 else "Odd")])
    assert [r.position for r in store.read_all(5, 8)] == [5, 6, 7, 8]
    evens = list(store.read_all(types=["Even"]))
    assert [r.position for r in evens] == list(range(2, 21, 2))
    assert list(store.read_all(types=[])) == []
    until = list(store.read_all(until=T0 + timedelta(minutes=4)))
    assert [r.position for r in until] == [1, 2, 3, 4]
    assert [r.position for r in store.read_all(3, 12, types=["Odd"])] == [3, 5, 7, 9, 11]


def test_read_batches_never_exceed_batch_size(store: EventStore) -> None:
    store.append("s", [ev(i) for i in range(25)])
    sizes = [len(b) for b in store.read_batches(batch_size=10)]
    assert sizes == [10, 10, 5]
    with pytest.raises(ValueError):
        list(store.read_batches(batch_size=0))


def test_as_of_reads(store: EventStore) -> None:
    for i in range(1, 11):
        store.append("s" if i % 2 else "t", [ev(i)])
    assert store.position_at(T0 + timedelta(minutes=5, seconds=30)) == 5
    assert store.position_at(T0 - timedelta(days=1)) == 0
    assert store.position_at(T0 + timedelta(days=1)) == 10
    assert [r.version for r in store.read_stream("s", 1, 3)] == [1, 2, 3]
    assert len(list(store.read_all(to_position=store.position_at(T0 + timedelta(minutes=3)))))\
        == 3


def test_streams_and_stats(store: EventStore) -> None:
    store.append("b", [ev(1, "X")])
    store.append("a", [ev(2, "Y"), ev(3, "X")])
    infos = store.streams()
    assert [(s.stream_id, s.version, s.first_position, s.last_position) for s in infos] == [
        ("b", 1, 1, 1), ("a", 2, 2, 3)]
    assert [s.stream_id for s in store.streams(prefix="a")] == ["a"]
    assert len(store.streams(limit=1)) == 1
    st = store.stats()
    assert (st.events, st.streams, st.head_position) == (3, 2, 3)
    assert dict(st.event_types) == {"X": 2, "Y": 1}
    assert st.first_occurred_at == T0 + timedelta(minutes=1)
    assert st.last_occurred_at == T0 + timedelta(minutes=3)


def test_snapshots(store: EventStore) -> None:
    assert store.load_snapshot("s") is None
    for v in (10, 20, 30):
        store.save_snapshot(Snapshot("s", v, "Account", 1, {"balance": v}))
    assert store.load_snapshot("s").version == 30
    assert store.load_snapshot("s", max_version=25).state == {"balance": 20}
    assert store.load_snapshot("s", max_version=5) is None
    store.save_snapshot(Snapshot("s", 20, "Account", 1, {"balance": -1}))
    assert store.load_snapshot("s", max_version=20).state == {"balance": -1}


def test_append_arrow_continues_streams(store: EventStore) -> None:
    import pyarrow as pa

    store.append("s1", [ev(1)])
    table = pa.table({
        "stream_id": ["s1", "s2", "s1", "s2"],
        "type": ["A", "B", "C", "D"],
        "data": ['{"k": 1}', '{"k": 2}', '{"k": 3}', '{"k": 4}'],
        "occurred_at": pa.array([T0 + timedelta(minutes=i) for i in range(4)],
                                pa.timestamp("us", tz="UTC")),
    })
    assert store.append_arrow(table) == 4
    assert [(r.position, r.stream_id, r.version, r.type, r.data["k"])
            for r in store.read_all(2)] == [
        (2, "s1", 2, "A", 1), (3, "s2", 1, "B", 2), (4, "s1", 3, "C", 3), (5, "s2", 2, "D", 4)]
    assert store.stream_version("s1") == 3 and store.head_position == 5
    store.append("s2", [ev(9)], expected_version=2)
    assert store.stream_version("s2") == 3


def test_append_arrow_rejects_missing_columns_and_writes_nothing(store: EventStore) -> None:
    import pyarrow as pa

    with pytest.raises(ValueError, match="occurred_at"):
        store.append_arrow(pa.table({"stream_id": ["a"], "type": ["A"], "data": ["{}"]}))
    assert store.head_position == 0


def test_concurrent_appends_from_threads(store: EventStore) -> None:
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for i in range(40):
                stream = f"shared-{i % 3}"
                while True:
                    v = store.stream_version(stream)
                    try:
                        store.append(stream, [ev(i, worker=k)], expected_version=v)
                        break
                    except ConcurrencyError:
                        continue
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    events = list(store.read_all())
    assert [e.position for e in events] == list(range(1, 161))
    for s in ("shared-0", "shared-1", "shared-2"):
        versions = [r.version for r in store.read_stream(s)]
        assert versions == list(range(1, len(versions) + 1))
    assert sum(store.stream_version(f"shared-{i}") for i in range(3)) == 160


# ------------------------------------------------------------------ runtime state
def test_state_put_get_scan_delete(store: EventStore) -> None:
    store.put_state("sagas", {"t2": {"step": 1}, "t1": {"step": 0, "tags": ["a"]}})
    assert store.get_state("sagas", "t1") == {"step": 0, "tags": ["a"]}
    assert store.get_state("sagas", "nope") is None
    assert store.get_state("other", "t1") is None
    assert list(store.scan_state("sagas")) == ["t1", "t2"]
    store.put_state("sagas", {"t1": None, "t2": {"step": 2}})
    assert store.scan_state("sagas") == {"t2": {"step": 2}}


def test_state_written_with_events_or_not_at_all(store: EventStore) -> None:
    store.append("s1", [ev(1)])
    with pytest.raises(ConcurrencyError):
        store.append_many([("s2", [ev(2)], NO_STREAM), ("s1", [ev(3)], 5)],
                          state={("keys", "k1"): {"positions": [2]}})
    assert store.get_state("keys", "k1") is None
    assert store.head_position == 1
    out = store.append_many([("s2", [ev(2)], NO_STREAM)],
                            state={("keys", "k1"): {"positions": [2]}})
    assert out[0][0].position == 2
    assert store.get_state("keys", "k1") == {"positions": [2]}


def test_state_survives_reopen(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from allframe_lab.store.duckdb import DuckDBEventStore

    with DuckDBEventStore(tmp_path / "s.duckdb") as s:
        s.append_many([("a", [ev(1)], NO_STREAM)], state={("keys", "x"): [1, 2]})
        s.put_state("checkpoints", {"mailer": 1})
    with DuckDBEventStore(tmp_path / "s.duckdb", read_only=True) as s:
        assert s.get_state("keys", "x") == [1, 2]
        assert s.scan_state("checkpoints") == {"mailer": 1}
