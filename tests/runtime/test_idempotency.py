"""Idempotency keys: a repeated key returns the original events and appends nothing.

Keys live in the store (written in the same transaction as the events), so they survive a
restart of a DuckDB store; a key reused with another payload is an IdempotencyError.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from allframe_lab import App, DomainError, SequentialIds
from allframe_lab.errors import IdempotencyError
from allframe_lab.runtime.middleware import IDEMPOTENCY_NAMESPACE, payload_hash
from allframe_lab.store import EventStore
from allframe_lab.store.duckdb import DuckDBEventStore
from tests.bank import InsufficientFunds, make_bank


@pytest.fixture
def app(store: EventStore) -> App:
    app = App(make_bank(), store, ids=SequentialIds(seed=4))
    app.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
    return app


def key_of(r) -> tuple:
    return (r.position, r.stream_id, r.version, r.event_id, r.type, dict(r.data))


def test_same_key_returns_the_original_events_and_appends_nothing(app: App) -> None:
    first = app.dispatch("Deposit", {"account_id": "a", "amount": 5}, idempotency_key="pay-1")
    head = app.store.head_position
    again = app.dispatch("Deposit", {"account_id": "a", "amount": 5}, idempotency_key="pay-1")
    assert [key_of(r) for r in again] == [key_of(r) for r in first]
    assert app.store.head_position == head
    assert app.load("Account", "a").balance == 5
    # a different key is a new request
    app.dispatch("Deposit", {"account_id": "a", "amount": 5}, idempotency_key="pay-2")
    assert app.load("Account", "a").balance == 10


def test_a_command_object_and_a_payload_are_the_same_request(app: App) -> None:
    deposit = app.model.commands["Deposit"]
    first = app.dispatch(deposit(account_id="a", amount=3), idempotency_key="k")
    again = app.dispatch("Deposit", {"amount": 3, "account_id": "a"}, idempotency_key="k")
    assert [key_of(r) for r in again] == [key_of(r) for r in first]


@pytest.mark.parametrize(("name", "payload", "detail"), [
    ("Deposit", {"account_id": "a", "amount": 6}, "for Deposit with a different payload"),
    ("Withdraw", {"account_id": "a", "amount": 5}, "for command Deposit"),
])
def test_key_reused_with_another_payload_is_an_error(app: App, name, payload, detail) -> None:
    app.dispatch("Deposit", {"account_id": "a", "amount": 5}, idempotency_key="pay-1")
    head = app.store.head_position
    with pytest.raises(IdempotencyError) as info:
        app.dispatch(name, payload, idempotency_key="pay-1")
    assert info.value.key == "pay-1"
    assert detail in str(info.value) and "use a new key" in str(info.value)
    assert app.store.head_position == head


def test_a_refused_command_does_not_use_up_its_key(app: App) -> None:
    with pytest.raises(InsufficientFunds):
        app.dispatch("Withdraw", {"account_id": "a", "amount": 5}, idempotency_key="w-1")
    assert app.store.get_state(IDEMPOTENCY_NAMESPACE, "w-1") is None
    app.dispatch("Deposit", {"account_id": "a", "amount": 10})
    recs = app.dispatch("Withdraw", {"account_id": "a", "amount": 5}, idempotency_key="w-1")
    assert recs and app.load("Account", "a").balance == 5


def test_the_key_record_is_written_with_the_events(app: App) -> None:
    recs = app.dispatch("Deposit", {"account_id": "a", "amount": 5}, idempotency_key="pay-1",
                        correlation_id="req-1")
    record = app.store.get_state(IDEMPOTENCY_NAMESPACE, "pay-1")
    assert record["command"] == "Deposit"
    assert record["hash"] == payload_hash("Deposit", {"account_id": "a", "amount": 5})
    assert record["streams"] == [["a", recs[0].version, recs[-1].version]]
    assert record["correlation_id"] == "req-1"
    assert record["command_id"] == recs[0].metadata["command_id"]


def test_a_command_with_no_events_is_idempotent_too(store: EventStore) -> None:
    from allframe_lab import Aggregate, Command, Event, Model, applies, handles

    m = Model("noop")

    @m.event("Pinged")
    class Pinged(Event):
        pass

    @m.command("Ping", stream="sid")
    class Ping(Command):
        sid: str
        loud: bool

    @m.command("Start", stream="sid", creates=True)
    class Start(Command):
        sid: str

    @m.aggregate("Thing")
    class Thing(Aggregate):
        @applies("Pinged")
        def _p(self, e: Pinged) -> None:
            pass

        @handles("Start")
        def start(self, c: Start) -> Pinged:
            return Pinged()

        @handles("Ping")
        def ping(self, c: Ping) -> Pinged | None:
            return Pinged() if c.loud else None

    app = App(m, store, ids=SequentialIds())
    app.dispatch("Start", {"sid": "s"})
    assert app.dispatch("Ping", {"sid": "s", "loud": False}, idempotency_key="q") == []
    assert app.dispatch("Ping", {"sid": "s", "loud": False}, idempotency_key="q") == []
    with pytest.raises(IdempotencyError):
        app.dispatch("Ping", {"sid": "s", "loud": True}, idempotency_key="q")
    assert store.head_position == 1


def test_keys_inside_one_batch(app: App) -> None:
    ctx = app.bus.context
    out = app.dispatch_many([
        ctx("Deposit", {"account_id": "a", "amount": 2}, idempotency_key="b-1"),
        ctx("Deposit", {"account_id": "a", "amount": 2}, idempotency_key="b-1"),  # repeated
        ctx("Deposit", {"account_id": "a", "amount": 9}, idempotency_key="b-2"),
    ])
    assert [key_of(r) for r in out[1]] == [key_of(r) for r in out[0]]
    assert [r.data["amount"] for r in app.store.read_stream("a")[1:]] == [2, 9]
    again = app.dispatch("Deposit", {"account_id": "a", "amount": 9}, idempotency_key="b-2")
    assert [key_of(r) for r in again] == [key_of(r) for r in out[2]]
    with pytest.raises(IdempotencyError):
        app.dispatch_many([
            ctx("Deposit", {"account_id": "a", "amount": 1}, idempotency_key="b-3"),
            ctx("Deposit", {"account_id": "a", "amount": 2}, idempotency_key="b-3")])
    assert app.store.get_state(IDEMPOTENCY_NAMESPACE, "b-3") is None  # all or nothing


def test_a_failed_batch_stores_no_key(app: App) -> None:
    ctx = app.bus.context
    with pytest.raises(DomainError):
        app.dispatch_many([
            ctx("Deposit", {"account_id": "a", "amount": 2}, idempotency_key="f-1"),
            ctx("Withdraw", {"account_id": "a", "amount": 99})])
    assert app.store.get_state(IDEMPOTENCY_NAMESPACE, "f-1") is None
    assert app.store.head_position == 1


@pytest.mark.duckdb
def test_keys_survive_a_restart_of_a_duckdb_store(tmp_path: Path) -> None:
    path = tmp_path / "bank.duckdb"
    with App(make_bank(), DuckDBEventStore(path), ids=SequentialIds(seed=1)) as app:
        app.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
        first = app.dispatch("Deposit", {"account_id": "a", "amount": 5},
                             idempotency_key="pay-1")
    with App(make_bank(), DuckDBEventStore(path), ids=SequentialIds(seed=2)) as app:
        head = app.store.head_position
        again = app.dispatch("Deposit", {"account_id": "a", "amount": 5},
                             idempotency_key="pay-1")
        assert [key_of(r) for r in again] == [key_of(r) for r in first]
        assert app.store.head_position == head == 2
        with pytest.raises(IdempotencyError):
            app.dispatch("Deposit", {"account_id": "a", "amount": 6}, idempotency_key="pay-1")
        assert app.load("Account", "a").balance == 5
