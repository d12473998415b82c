"""App: commands, aggregates, snapshots and time travel, against every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from allframe_lab import (
    AggregateNotFoundError,
    App,
    AsOf,
    ConcurrencyError,
    DomainError,
    ManualClock,
    SequentialIds,
)
from allframe_lab.errors import UnknownEventTypeError, UnknownNameError
from allframe_lab.store import EventStore, NewEvent
from tests.bank import InsufficientFunds, make_bank

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def bank():
    return make_bank()


@pytest.fixture
def app(bank, store: EventStore) -> App:
    return App(bank, store, clock=ManualClock(T0, tick=timedelta(hours=1)),
               ids=SequentialIds(seed=1))


def cmds(bank):
    c = bank.commands
    return c["OpenAccount"], c["Deposit"], c["Withdraw"]


def test_handle_appends_and_returns_recorded_events(app: App, bank) -> None:
    Open, Deposit, _ = cmds(bank)
    (opened,) = app.handle(Open(account_id="a1", owner="ann"))
    assert (opened.stream_id, opened.version, opened.type) == ("a1", 1, "AccountOpened")
    assert opened.occurred_at == T0
    assert opened.metadata["command"] == "OpenAccount"
    assert opened.metadata["correlation_id"] == opened.metadata["causation_id"]
    (dep,) = app.handle(Deposit(account_id="a1", amount=30))
    assert dep.version == 2 and dep.occurred_at == T0 + timedelta(hours=1)
    acc = app.load("Account", "a1")
    assert (acc.owner, acc.balance, acc.version, acc.stream_id) == ("ann", 30, 2, "a1")


def test_same_inputs_give_the_same_events(bank, tmp_path) -> None:
    from allframe_lab import InMemoryEventStore

    def run() -> list[tuple]:
        app = App(bank, InMemoryEventStore(), clock=ManualClock(T0, tick=timedelta(1)),
                  ids=SequentialIds(seed=3))
        Open, Deposit, _ = cmds(bank)
        app.handle(Open(account_id="x", owner="o"))
        app.handle(Deposit(account_id="x", amount=5))
        return [(r.event_id, r.type, dict(r.data), r.occurred_at, dict(r.metadata))
                for r in app.store.read_all()]

    assert run() == run()


def test_domain_errors_write_nothing(app: App, bank) -> None:
    Open, Deposit, Withdraw = cmds(bank)
    app.handle(Open(account_id="a1", owner="ann"))
    with pytest.raises(InsufficientFunds, match="balance 0 < 5"):
        app.handle(Withdraw(account_id="a1", amount=5))
    with pytest.raises(DomainError):
        app.handle(Deposit(account_id="a1", amount=-1))
    assert app.store.head_position == 1


def test_missing_aggregate_and_duplicate_creation(app: App, bank) -> None:
    Open, Deposit, _ = cmds(bank)
    with pytest.raises(AggregateNotFoundError, match="send its creation command"):
        app.handle(Deposit(account_id="nope", amount=1))
    app.handle(Open(account_id="a1", owner="ann"))
    with pytest.raises(ConcurrencyError):
        app.handle(Open(account_id="a1", owner="bob"))
    assert app.store.head_position == 1


def test_unknown_command_lists_known_ones(app: App, bank) -> None:
    from allframe_lab import Command

    class Stray(Command):
        x: int = 0

    with pytest.raises(UnknownNameError, match="Deposit, OpenAccount, Withdraw"):
        app.handle(Stray())


def test_writes_from_elsewhere_are_seen(app: App, bank, store: EventStore) -> None:
    Open, _, Withdraw = cmds(bank)
    app.handle(Open(account_id="a1", owner="ann"))
    store.append("a1", [NewEvent("FundsDeposited", {"amount": 7})], expected_version=1)
    app.handle(Withdraw(account_id="a1", amount=7))  # the cached aggregate catches up
    assert app.load("Account", "a1").balance == 0


def test_time_travel_by_version_timestamp_and_position(app: App, bank) -> None:
    Open, Deposit, _ = cmds(bank)
    app.handle(Open(account_id="a1", owner="ann"))       # T0
    app.handle(Open(account_id="b2", owner="bob"))       # T0+1h, position 2
    for amount in (10, 20, 30):                           # T0+2h..4h, positions 3..5
        app.handle(Deposit(account_id="a1", amount=amount))
    assert app.load("Account", "a1", version=2).balance == 10
    assert app.load("Account", "a1", as_of=T0 + timedelta(hours=3, minutes=30)).balance == 30
    assert app.load("Account", "a1", as_of=AsOf(position=4)).balance == 30
    assert app.load("Account", "a1", as_of=AsOf(position=0)).version == 0
    view = app.as_of(timestamp=T0 + timedelta(hours=2))
    assert view.position == 3
    assert view.load("Account", "a1").balance == 10
    assert view.events().position.tolist() == [1, 2, 3]
    assert app.as_of(position=2).events("a1").version.tolist() == [1]


def test_snapshots_are_taken_and_used(bank, store: EventStore) -> None:
    app = App(bank, store, clock=ManualClock(T0), ids=SequentialIds(), snapshot_every=10)
    Open, Deposit, _ = cmds(bank)
    app.handle(Open(account_id="a1", owner="ann"))
    for _ in range(24):
        app.handle(Deposit(account_id="a1", amount=1))
    snap = store.load_snapshot("a1")
    assert snap is not None and snap.version == 20
    assert snap.state["balance"] == 19 and snap.aggregate_type == "Account"
    # a tampered snapshot proves loads start from it
    from allframe_lab.store import Snapshot

    store.save_snapshot(Snapshot("a1", 20, "Account", 1, {**snap.state, "balance": 1000}))
    assert app.load("Account", "a1").balance == 1005
    assert app.repository.load("Account", "a1", use_snapshots=False).balance == 24
    # a snapshot of another state schema version is ignored: full replay
    store.save_snapshot(Snapshot("a1", 25, "Account", 99, {"bogus": 1}))
    assert app.repository.load("Account", "a1").balance == 24


def test_unknown_event_type_on_replay_names_type_and_fix(app: App, store: EventStore) -> None:
    store.append("a1", [NewEvent("AccountOpened", {"owner": "x"}),
                        NewEvent("AccountFrozen", {"why": "?"})])
    with pytest.raises(UnknownEventTypeError) as info:
        app.load("Account", "a1")
    msg = str(info.value)
    assert "AccountFrozen" in msg and "@model.event('AccountFrozen'" in msg
    assert "fallback_event" in msg


def test_handle_many_is_one_all_or_nothing_batch(app: App, bank) -> None:
    Open, Deposit, Withdraw = cmds(bank)
    out = app.handle_many([Open(account_id="a", owner="ann"), Deposit(account_id="a", amount=5),
                           Open(account_id="b", owner="bob"), Withdraw(account_id="a", amount=2)])
    assert [[(r.stream_id, r.version) for r in recs] for recs in out] == [
        [("a", 1)], [("a", 2)], [("b", 1)], [("a", 3)]]
    assert app.load("Account", "a").balance == 3
    head = app.store.head_position
    with pytest.raises(InsufficientFunds):
        app.handle_many([Deposit(account_id="a", amount=10), Withdraw(account_id="b", amount=1)])
    assert app.store.head_position == head  # nothing of the batch was written
    assert app.load("Account", "a").balance == 3
    app.handle(Deposit(account_id="a", amount=1))  # the cache was not left ahead
    assert app.load("Account", "a").balance == 4 and app.load("Account", "a").version == 4
