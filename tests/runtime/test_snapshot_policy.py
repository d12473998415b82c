"""Snapshot policy: every N events, after a long replay, and outdated snapshots (another state
schema) ignored and rebuilt. Both stores; a DuckDB file written before fingerprints existed."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from allframe_lab import Aggregate, Event, Model, applies
from allframe_lab.errors import RedefinitionWarning
from allframe_lab.model.versioning import state_fingerprint
from allframe_lab.runtime.repository import Repository
from allframe_lab.store import EventStore, NewEvent, Snapshot
from tests.conftest import BACKENDS, open_store


def counter_model(*, after_replay: int | None = None, every: int | None = None,
                  extra_field: bool = False, state_version: int = 1) -> Model:
    m = Model("counter")

    @m.event("Added")
    class Added(Event):
        n: int

    ns: dict[str, Any] = {"__annotations__": {"total": int}, "total": 0}
    if extra_field:
        ns["__annotations__"]["count"] = int
        ns["count"] = 0

    def _added(self, e) -> None:
        self.total += e.n
        if extra_field:
            self.count += 1

    ns["_added"] = applies("Added")(_added)
    cls = type("Counter", (Aggregate,), ns)
    m.aggregate("Counter", snapshot_after_replay=after_replay, snapshot_every=every,
                state_version=state_version)(cls)
    return m


def fill(store: EventStore, stream: str, n: int) -> None:
    store.append(stream, [NewEvent("Added", {"n": 1}) for _ in range(n)])


@pytest.mark.parametrize("kind", BACKENDS)
def test_snapshot_after_a_long_replay(kind: str, tmp_path: Path) -> None:
    store = open_store(kind, tmp_path)
    fill(store, "c1", 30)
    fill(store, "c2", 5)
    repo = Repository(counter_model(after_replay=10), store)
    assert repo.load("Counter", "c1").total == 30
    snap = store.load_snapshot("c1")
    assert snap is not None and snap.version == 30
    assert snap.schema_fingerprint == state_fingerprint(counter_model().aggregates["Counter"])
    repo.load("Counter", "c2")  # 5 events: under the threshold
    assert store.load_snapshot("c2") is None
    # the next load starts from the snapshot: a tail of 12 events is replayed, then snapshot
    fill(store, "c1", 12)
    assert repo.load("Counter", "c1").total == 42
    assert store.load_snapshot("c1").version == 42  # type: ignore[union-attr]
    fill(store, "c1", 3)
    assert repo.load("Counter", "c1").total == 45
    assert store.load_snapshot("c1").version == 42  # type: ignore[union-attr]
    store.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_repository_default_threshold_and_model_override(kind: str, tmp_path: Path) -> None:
    store = open_store(kind, tmp_path)
    fill(store, "c1", 8)
    Repository(counter_model(), store, snapshot_after_replay=20).load("Counter", "c1")
    assert store.load_snapshot("c1") is None
    Repository(counter_model(), store, snapshot_after_replay=5).load("Counter", "c1")
    assert store.load_snapshot("c1").version == 8  # type: ignore[union-attr]
    fill(store, "c2", 8)
    Repository(counter_model(after_replay=50), store, snapshot_after_replay=5).load(
        "Counter", "c2")
    assert store.load_snapshot("c2") is None  # the aggregate's own setting wins
    store.close()


def test_no_snapshot_on_time_travel_by_timestamp_nor_from_current_cache() -> None:
    from datetime import UTC, datetime

    from allframe_lab.store import InMemoryEventStore

    store = InMemoryEventStore()
    fill(store, "c1", 20)
    repo = Repository(counter_model(after_replay=5), store)
    repo.load("Counter", "c1", until=datetime(2999, 1, 1, tzinfo=UTC))
    assert store.load_snapshot("c1") is None
    repo.load("Counter", "c1", version=10)
    assert store.load_snapshot("c1").version == 10  # type: ignore[union-attr]
    # current(): a cached aggregate folding a long tail snapshots too
    repo.current("Counter", "c1")
    fill(store, "c1", 7)
    assert repo.current("Counter", "c1").total == 27
    assert store.load_snapshot("c1").version == 27  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", BACKENDS)
def test_changed_state_schema_ignores_and_rebuilds_the_snapshot(kind: str,
                                                                tmp_path: Path) -> None:
    store = open_store(kind, tmp_path)
    fill(store, "c1", 6)
    old = Repository(counter_model(), store)
    old.take_snapshot(old.load("Counter", "c1"))
    before = store.load_snapshot("c1")
    assert before is not None and before.state == {"total": 6}
    # same state_version, but a new field: the fingerprint differs
    new_model = counter_model(extra_field=True)
    agg = Repository(new_model, store).load("Counter", "c1")
    assert (agg.total, agg.count) == (6, 6)  # a full replay, not the old state
    rebuilt = store.load_snapshot("c1")
    assert rebuilt is not None and rebuilt.version == 6
    assert rebuilt.state == {"total": 6, "count": 6}
    assert rebuilt.schema_fingerprint == state_fingerprint(new_model.aggregates["Counter"])
    assert rebuilt.schema_fingerprint != before.schema_fingerprint
    # a raised state_version alone also invalidates it
    agg = Repository(counter_model(extra_field=True, state_version=2), store).load(
        "Counter", "c1")
    assert agg.count == 6 and store.load_snapshot("c1").state_version == 2  # type: ignore
    store.close()


def test_an_unusable_old_snapshot_without_fingerprint_is_ignored() -> None:
    from allframe_lab.store import InMemoryEventStore

    store = InMemoryEventStore()
    fill(store, "c1", 4)
    store.save_snapshot(Snapshot("c1", 4, "Counter", 1, {"total": 99, "gone": 1}))
    repo = Repository(counter_model(), store)
    assert repo.load("Counter", "c1").total == 4  # does not fit the class: replayed
    store.save_snapshot(Snapshot("c1", 4, "Counter", 1, {"total": 99}))
    assert repo.load("Counter", "c1").total == 99  # fits: used (no fingerprint to compare)


def test_fingerprint_is_stable_and_tracks_fields() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RedefinitionWarning)
        a = counter_model().aggregates["Counter"]
        b = counter_model().aggregates["Counter"]
        c = counter_model(extra_field=True).aggregates["Counter"]
    assert state_fingerprint(a) == state_fingerprint(b) != state_fingerprint(c)
    assert len(state_fingerprint(a)) == 16


def test_duckdb_file_without_fingerprint_column_stays_readable(tmp_path: Path) -> None:
    import duckdb

    from allframe_lab.store.duckdb import DuckDBEventStore

    path = tmp_path / "old.duckdb"
    store = DuckDBEventStore(path)
    fill(store, "c1", 3)
    store.close()
    con = duckdb.connect(str(path))  # make it look like a file of the previous release
    con.execute("ALTER TABLE snapshots DROP COLUMN schema_fingerprint")
    con.execute("INSERT INTO snapshots VALUES ('c1', 3, 'Counter', 1, '{\"total\": 3}', "
                "now())")
    con.close()
    ro = DuckDBEventStore(path, read_only=True)
    snap = ro.load_snapshot("c1")
    assert snap is not None and snap.schema_fingerprint is None and snap.state == {"total": 3}
    assert Repository(counter_model(after_replay=1), ro).load("Counter", "c1").total == 3
    ro.close()
    rw = DuckDBEventStore(path)  # a writable open adds the column
    assert rw.load_snapshot("c1").schema_fingerprint is None  # type: ignore[union-attr]
    fill(rw, "c1", 2)
    Repository(counter_model(after_replay=1), rw).load("Counter", "c1")
    snap = rw.load_snapshot("c1")
    assert snap is not None and snap.version == 5 and snap.schema_fingerprint
    rw.close()


@pytest.mark.parametrize("kind", BACKENDS)
def test_snapshot_every_n_events_on_append(kind: str, tmp_path: Path) -> None:
    from allframe_lab import App, Command, handles

    m = counter_model(every=3)

    @m.command("Add", stream="sid")
    class Add(Command):
        sid: str
        n: int

    cls = m.aggregates["Counter"]
    cls.add = handles("Add")(lambda self, c: m.event_class("Added")(n=c.n))  # type: ignore
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RedefinitionWarning)
        m.aggregate("Counter", snapshot_every=3)(cls)
    store = open_store(kind, tmp_path)
    fill(store, "c1", 1)
    app = App(m, store)
    for _ in range(4):
        app.handle(Add(sid="c1", n=1))
    snap = store.load_snapshot("c1")
    assert snap is not None and snap.version == 3 and snap.schema_fingerprint
    store.close()


def test_app_passes_the_replay_threshold_to_its_repository() -> None:
    from allframe_lab import App, InMemoryEventStore
    from tests.bank import make_bank

    bank = make_bank()
    store = InMemoryEventStore()
    app = App(bank, store, snapshot_after_replay=5)
    app.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
    app.dispatch_many([("Deposit", {"account_id": "a", "amount": 1})] * 9)
    assert store.load_snapshot("a") is None  # appends alone never cross the replay threshold
    fresh = App(bank, store, snapshot_after_replay=5)
    assert fresh.load("Account", "a").balance == 9
    snap = store.load_snapshot("a")
    assert snap is not None and snap.version == 10


def test_snapshots_are_stamped_by_the_app_clock() -> None:
    from datetime import UTC, datetime

    from allframe_lab import App, InMemoryEventStore, ManualClock
    from tests.bank import make_bank

    t = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
    store = InMemoryEventStore()
    app = App(make_bank(), store, clock=ManualClock(t), snapshot_every=2)
    app.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
    app.dispatch("Deposit", {"account_id": "a", "amount": 1})
    snap = store.load_snapshot("a")
    assert snap is not None and snap.recorded_at == t
