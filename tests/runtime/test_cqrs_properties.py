"""Property tests of the seed's five CQRS invariants (1,000 examples each, in-memory store).

1. Commands always produce valid events.
2. The same events give the same state.
3. Replay is deterministic.
4. Concurrent commands lose no update: conflicts are detected and retried, or reported.
5. The store loses nothing.

They run in the whole suite (``make test``); each example is kept small and in memory so the
five together stay well under a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allframe_lab import (
    App,
    ConcurrencyError,
    InMemoryEventStore,
    ManualClock,
    SequentialIds,
)
from allframe_lab.errors import (
    AggregateNotFoundError,
    CommandError,
    ValidationError,
)
from allframe_lab.store import ANY, NO_STREAM, NewEvent
from tests.bank import make_bank

pytestmark = pytest.mark.memory

EXAMPLES = settings(max_examples=1000, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
BANK = make_bank()
T0 = datetime(2024, 1, 1, tzinfo=UTC)
ACCOUNTS = "xyz"
BUS_METADATA = ("command", "command_id", "correlation_id", "causation_id")

# a command as (name, payload); payloads are sometimes invalid on purpose
amounts = st.one_of(st.integers(-5, 60), st.just("ten"), st.none())
command = st.one_of(
    st.builds(lambda a: ("OpenAccount", {"account_id": a, "owner": a.upper()}),
              st.sampled_from(ACCOUNTS)),
    st.builds(lambda a, n: ("Deposit", {"account_id": a, "amount": n}),
              st.sampled_from(ACCOUNTS), amounts),
    st.builds(lambda a, n: ("Withdraw", {"account_id": a, "amount": n}),
              st.sampled_from(ACCOUNTS), amounts),
)
commands = st.lists(command, max_size=12)


def new_app(store: InMemoryEventStore | None = None, *, snapshot_every: int | None = None
            ) -> App:
    return App(BANK, store or InMemoryEventStore(), clock=ManualClock(T0, tick=timedelta(
        minutes=1)), ids=SequentialIds(seed=1), snapshot_every=snapshot_every)


def run(app: App, cmds: list[tuple[str, dict]]) -> list[tuple[str, Any]]:
    """Dispatch each command; returns (outcome, detail) per command."""
    out: list[tuple[str, Any]] = []
    for name, payload in cmds:
        try:
            out.append(("ok", app.dispatch(name, payload)))
        except (ValidationError, AggregateNotFoundError, ConcurrencyError, CommandError) as exc:
            out.append(("refused", type(exc).__name__))
    return out


def balances_by_fold(records) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        if r.type == "AccountOpened":
            out[r.stream_id] = 0
        elif r.type == "FundsDeposited":
            out[r.stream_id] += r.data["amount"]
        elif r.type == "FundsWithdrawn":
            out[r.stream_id] -= r.data["amount"]
    return out


def project(app: App, records) -> dict[str, dict]:
    """Fold records through the ``balances`` projection's own handlers (no DuckDB)."""
    inst = BANK.projections["balances"](None)
    for r in records:
        inst.handle(app.decoder.decode(r), r)
    return {k: dict(v) for k, v in inst.rows._rows.items()}


# ------------------------------------------------------------------ 1. valid events
@EXAMPLES
@given(cmds=commands)
def test_commands_always_produce_valid_events(cmds) -> None:
    app = new_app()
    outcomes = run(app, cmds)
    recorded = [r for kind, recs in outcomes if kind == "ok" for r in recs]
    stored = list(app.store.read_all())
    assert [r.position for r in stored] == [r.position for r in recorded]  # refused: nothing
    assert [r.position for r in stored] == list(range(1, len(stored) + 1))
    for (kind, detail), (_name, payload) in zip(outcomes, cmds, strict=True):
        if kind == "refused" and detail == "ValidationError":
            assert not isinstance(payload.get("amount", 0), int) or payload.get(
                "amount") is None
    for r in stored:
        cls = BANK.events[r.type]
        event = app.decoder.decode(r)
        assert type(event) is cls and r.schema_version == cls.__schema_version__
        assert event.model_dump(mode="json") == r.data
        assert all(r.metadata.get(k) for k in BUS_METADATA)
        assert r.metadata["causation_id"] == r.metadata["command_id"]
        assert r.metadata["command"] in BANK.commands
    # the aggregates protect their invariant: no balance below zero, ever
    for acc, balance in balances_by_fold(stored).items():
        assert balance >= 0 and app.load("Account", acc).balance == balance


# ------------------------------------------------------------------ 2. same events, same state
@EXAMPLES
@given(cmds=commands)
def test_the_same_events_give_the_same_state(cmds) -> None:
    first = new_app()
    run(first, cmds)
    records = list(first.store.read_all())
    copy = InMemoryEventStore()  # the same events, appended again elsewhere
    for r in records:
        copy.append(r.stream_id, [NewEvent(r.type, dict(r.data), r.schema_version,
                                           dict(r.metadata), r.occurred_at, r.event_id)])
    second = App(BANK, copy)
    copied = list(copy.read_all())
    assert project(first, records) == project(second, copied)
    folded = balances_by_fold(records)
    assert {k: v["balance"] for k, v in project(first, records).items()} == folded
    for acc in folded:
        assert first.load("Account", acc).state() == second.load("Account", acc).state()


# ------------------------------------------------------------------ 3. deterministic replay
@EXAMPLES
@given(cmds=commands, every=st.integers(1, 4))
def test_replay_is_deterministic(cmds, every) -> None:
    a, b = new_app(), new_app(snapshot_every=every)
    def same(outcomes):  # recorded_at is the store's wall clock: everything else must match
        return [(k, [(r.position, r.event_id, r.data, r.metadata, r.occurred_at) for r in d]
                 if k == "ok" else d) for k, d in outcomes]

    assert same(run(a, cmds)) == same(run(b, cmds))  # same clock and ids: the same records
    rows = [(r.position, r.stream_id, r.version, r.event_id, r.type, r.data, r.metadata,
             r.occurred_at) for r in a.store.read_all()]
    assert rows == [(r.position, r.stream_id, r.version, r.event_id, r.type, r.data,
                     r.metadata, r.occurred_at) for r in b.store.read_all()]
    for acc in {r[1] for r in rows}:
        states = {repr(a.load("Account", acc).state()), repr(a.load("Account", acc).state()),
                  repr(b.load("Account", acc).state()),
                  repr(b.repository.load("Account", acc, use_snapshots=False).state())}
        assert len(states) == 1


# ------------------------------------------------------------------ 4. concurrent commands
# (app, amount, races): ``races`` times, the other App appends a deposit of 1 between this
# App's decision and its append. RetryOnConflict makes 3 attempts, so 3 races are reported.
steps = st.lists(st.tuples(st.integers(0, 1), st.integers(1, 50), st.integers(0, 3)),
                 min_size=1, max_size=10)


@EXAMPLES
@given(schedule=steps)
def test_concurrent_commands_lose_no_update(schedule) -> None:
    store = InMemoryEventStore()
    apps = [App(BANK, store, ids=SequentialIds(seed=1)), App(BANK, store,
                                                              ids=SequentialIds(seed=2))]
    apps[0].dispatch("OpenAccount", {"account_id": "acc", "owner": "o"})
    for app in apps:
        app.load("Account", "acc")  # both cache the stream: they go stale as the other writes
    append_many = store.append_many
    pending = {"races": 0, "other": None}
    successful: list[int] = []
    reported = 0

    def racing(batches, state=None):
        if pending["races"] > 0 and not pending.get("inside"):
            pending["races"] -= 1
            pending["inside"] = True  # the other App's own append does not race
            try:
                successful.extend(r.data["amount"] for r in pending["other"].dispatch(
                    "Deposit", {"account_id": "acc", "amount": 1}))
            finally:
                pending["inside"] = False
        return append_many(batches, state=state)

    store.append_many = racing  # type: ignore[method-assign]
    for who, amount, races in schedule:
        pending["races"], pending["other"] = races, apps[1 - who]
        try:
            recs = apps[who].dispatch("Deposit", {"account_id": "acc", "amount": amount})
        except ConcurrencyError as exc:
            assert races >= 3 and exc.stream_id == "acc"  # retried and still lost: reported
            reported += 1
        else:
            assert races < 3
            successful.extend(r.data["amount"] for r in recs)
        pending["races"] = 0
    stored = [r.data["amount"] for r in store.read_stream("acc")[1:]]
    assert sorted(stored) == sorted(successful)  # every success stored, nothing else
    assert reported == sum(1 for _, _, races in schedule if races >= 3)
    for app in apps:
        assert app.load("Account", "acc").balance == sum(successful)
    versions = [r.version for r in store.read_stream("acc")]
    assert versions == list(range(1, len(versions) + 1))


# ------------------------------------------------------------------ 5. no data loss
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=4)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=2),
    max_leaves=3)
appends = st.lists(st.tuples(
    st.sampled_from(["s1", "s2", "s3"]),
    st.lists(st.dictionaries(st.text(min_size=1, max_size=4), json_values, max_size=2),
             min_size=0, max_size=3),
    st.sampled_from(["exact", "stale", "any", "new"]),
), max_size=12)


@EXAMPLES
@given(ops=appends)
def test_the_store_loses_nothing(ops) -> None:
    store = InMemoryEventStore()
    kept: list[tuple[str, dict]] = []
    for sid, payloads, mode in ops:
        version = store.stream_version(sid)
        expected = {"exact": version, "stale": version - 1 if version else 5, "any": ANY,
                    "new": NO_STREAM}[mode]
        events = [NewEvent("E", p) for p in payloads]
        try:
            recs = store.append(sid, events, expected_version=expected)
        except ConcurrencyError as exc:
            assert exc.stream_id == sid and mode in ("stale", "new")
            assert store.stream_version(sid) == version  # a failed append leaves no trace
            continue
        assert [r.version for r in recs] == list(range(version + 1, version + 1 + len(events)))
        kept.extend((sid, p) for p in payloads)
    everything = list(store.read_all())
    assert [(r.stream_id, r.data) for r in everything] == kept
    assert [r.position for r in everything] == list(range(1, len(kept) + 1))
    assert store.head_position == len(kept)
    for sid in ("s1", "s2", "s3"):
        stream = store.read_stream(sid)
        assert [r.data for r in stream] == [p for s, p in kept if s == sid]
        assert [r.version for r in stream] == list(range(1, len(stream) + 1))
        assert stream == [r for r in everything if r.stream_id == sid]
