"""The command bus: handler execution, composition, ordering, middleware, batches, correlation.

The seed's command tests (Phase 2: handler execution, composition, ordering) in Python form,
against every backend.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from allframe_lab import (
    AggregateNotFoundError,
    App,
    Command,
    DomainError,
    ManualClock,
    Model,
    SequentialIds,
)
from allframe_lab.errors import UnknownNameError, ValidationError
from allframe_lab.runtime.bus import CommandContext
from allframe_lab.runtime.middleware import (
    IdempotencyMiddleware,
    RetryOnConflict,
    ValidationMiddleware,
)
from allframe_lab.store import EventStore
from tests.bank import InsufficientFunds, make_bank

T0 = datetime(2024, 5, 1, tzinfo=UTC)


class SameAccount(DomainError):
    """A transfer from an account to itself."""


def make_model() -> Model:
    """The bank, plus a ``Transfer`` use case that touches two accounts."""
    bank = make_bank()
    withdraw, deposit = bank.commands["Withdraw"], bank.commands["Deposit"]

    @bank.command("Transfer")
    class Transfer(Command):
        source: str
        target: str
        amount: int

    @bank.use_case("Transfer")
    def transfer(c: Transfer, uow) -> None:
        if c.source == c.target:
            raise SameAccount(f"cannot transfer from {c.source!r} to itself")
        uow.handle(withdraw(account_id=c.source, amount=c.amount))
        uow.handle(deposit(account_id=c.target, amount=c.amount))

    return bank


@pytest.fixture
def app(store: EventStore) -> App:
    app = App(make_model(), store, clock=ManualClock(T0, tick=timedelta(seconds=1)),
              ids=SequentialIds(seed=3))
    yield app
    app.bus.drain()


def open_accounts(app: App, *names: str, funds: int = 0) -> None:
    for n in names:
        app.dispatch("OpenAccount", {"account_id": n, "owner": n.upper()})
        if funds:
            app.dispatch("Deposit", {"account_id": n, "amount": funds})


def balance(app: App, account: str) -> int:
    """Oracle: fold the stored events of one account by hand."""
    total = 0
    for r in app.store.read_stream(account):
        total += {"FundsDeposited": 1, "FundsWithdrawn": -1}.get(r.type, 0) * r.data.get(
            "amount", 0)
    return total


# ------------------------------------------------------------------ handler execution
def test_dispatch_by_name_and_by_object_runs_the_aggregate_handler(app: App) -> None:
    recs = app.dispatch("OpenAccount", {"account_id": "a1", "owner": "ann"})
    assert [(r.stream_id, r.version, r.type, r.data) for r in recs] == [
        ("a1", 1, "AccountOpened", {"owner": "ann"})]
    deposit = app.model.commands["Deposit"](account_id="a1", amount=7)
    recs = app.dispatch(deposit)
    assert [(r.version, r.type, r.data) for r in recs] == [(2, "FundsDeposited", {"amount": 7})]
    assert app.last_position == recs[-1].position == app.store.head_position
    assert app.load("Account", "a1").balance == 7


def test_unknown_command_lists_the_known_ones(app: App) -> None:
    with pytest.raises(UnknownNameError) as info:
        app.dispatch("CloseAccount", {"account_id": "a1"})
    msg = str(info.value)
    for known in ("Deposit", "OpenAccount", "Transfer", "Withdraw"):
        assert known in msg
    assert info.value.known == ("Deposit", "OpenAccount", "Transfer", "Withdraw")
    assert isinstance(info.value, KeyError)
    assert app.store.head_position == 0


def test_a_command_of_another_model_is_unknown(app: App) -> None:
    other = Model("other")

    @other.command("Ping")
    class Ping(Command):
        n: int

    with pytest.raises(UnknownNameError, match="Ping"):
        app.dispatch(Ping(n=1))


def test_domain_error_carries_command_and_stream_and_writes_nothing(app: App) -> None:
    open_accounts(app, "a1", funds=5)
    head = app.store.head_position
    with pytest.raises(InsufficientFunds) as info:
        app.dispatch("Withdraw", {"account_id": "a1", "amount": 50})
    err = info.value
    assert (err.command, err.stream_id) == ("Withdraw", "a1")
    assert "[command Withdraw on stream 'a1']" in str(err)
    assert app.store.head_position == head
    assert app.load("Account", "a1").balance == 5


def test_missing_aggregate_is_reported(app: App) -> None:
    with pytest.raises(AggregateNotFoundError, match="'nobody'"):
        app.dispatch("Deposit", {"account_id": "nobody", "amount": 1})


# ------------------------------------------------------------------ composition
def test_use_case_touches_two_aggregates_in_one_transaction(app: App) -> None:
    open_accounts(app, "a", "b", funds=10)
    recs = app.dispatch("Transfer", {"source": "a", "target": "b", "amount": 4})
    assert [(r.stream_id, r.type, r.data["amount"]) for r in recs] == [
        ("a", "FundsWithdrawn", 4), ("b", "FundsDeposited", 4)]
    assert [r.position for r in recs] == [recs[0].position, recs[0].position + 1]
    # both events belong to the Transfer request: same command id and correlation id
    assert len({(r.metadata["command_id"], r.metadata["correlation_id"]) for r in recs}) == 1
    assert {r.metadata["command"] for r in recs} == {"Withdraw", "Deposit"}
    assert (balance(app, "a"), balance(app, "b")) == (6, 14)
    assert (app.load("Account", "a").balance, app.load("Account", "b").balance) == (6, 14)


@pytest.mark.parametrize(("payload", "error", "stream"), [
    ({"source": "a", "target": "b", "amount": 99}, InsufficientFunds, "a"),
    ({"source": "a", "target": "b", "amount": -1}, DomainError, "b"),  # refused by the 2nd
    ({"source": "a", "target": "a", "amount": 1}, SameAccount, None),
    ({"source": "a", "target": "ghost", "amount": 1}, AggregateNotFoundError, "ghost"),
])
def test_use_case_is_all_or_nothing(app: App, payload, error, stream) -> None:
    open_accounts(app, "a", "b", funds=10)
    head = app.store.head_position
    with pytest.raises(error) as info:
        app.dispatch("Transfer", payload)
    assert info.value.stream_id == stream
    if isinstance(info.value, DomainError):
        assert info.value.command == "Transfer"
    assert app.store.head_position == head
    # the App's cached aggregates did not keep the undone withdrawal
    assert (app.load("Account", "a").balance, app.load("Account", "b").balance) == (10, 10)
    app.dispatch("Transfer", {"source": "a", "target": "b", "amount": 10})
    assert (balance(app, "a"), balance(app, "b")) == (0, 20)


# ------------------------------------------------------------------ ordering
def test_dispatch_applies_commands_in_call_order(app: App) -> None:
    open_accounts(app, "a")
    amounts = [5, 3, 8, 1, 9, 2]
    for a in amounts:
        app.dispatch("Deposit", {"account_id": "a", "amount": a})
    recs = app.store.read_stream("a")
    assert [r.data["amount"] for r in recs[1:]] == amounts
    assert [r.version for r in recs] == list(range(1, len(amounts) + 2))


def test_submit_from_several_threads_keeps_submission_order(app: App) -> None:
    open_accounts(app, "a")
    submitted: list[int] = []
    order_lock = threading.Lock()
    futures = []
    start = threading.Barrier(4)

    def client(k: int) -> None:
        start.wait()
        for i in range(25):
            amount = k * 1000 + i
            with order_lock:  # the order in which submit() queued the commands
                submitted.append(amount)
                futures.append(app.submit("Deposit", {"account_id": "a", "amount": amount}))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = [f.result(timeout=30) for f in futures]
    app.bus.drain()
    stored = [r.data["amount"] for r in app.store.read_stream("a")[1:]]
    assert stored == submitted
    # each client's own commands kept their order, and each future got its own event
    for k in range(1, 5):
        assert [a for a in stored if a // 1000 == k] == [k * 1000 + i for i in range(25)]
    assert [r[0].data["amount"] for r in results] == submitted


def test_submit_hands_errors_to_the_future(app: App) -> None:
    open_accounts(app, "a")
    bad = app.submit("Withdraw", {"account_id": "a", "amount": 1})
    good = app.submit("Deposit", {"account_id": "a", "amount": 1})
    with pytest.raises(InsufficientFunds):
        bad.result(timeout=30)
    assert good.result(timeout=30)[0].version == 2


# ------------------------------------------------------------------ middleware
def test_default_chain_is_validation_idempotency_retry(app: App) -> None:
    kinds = [type(m) for m in app.bus.middleware]
    assert kinds == [ValidationMiddleware, IdempotencyMiddleware, RetryOnConflict]
    assert "validation" in repr(app.bus)


def test_middleware_runs_in_order_and_sees_the_outcome(app: App) -> None:
    calls: list[tuple] = []

    def outer(ctx: CommandContext, call_next) -> None:
        calls.append(("outer-in", ctx.name, ctx.command is None))
        call_next(ctx)
        calls.append(("outer-out", ctx.name, len(ctx.recorded or [])))

    def inner(ctx: CommandContext, call_next) -> None:
        calls.append(("inner-in", ctx.name, ctx.command is None))
        call_next(ctx)
        calls.append(("inner-out", ctx.stream_id, [r.type for r in ctx.recorded or []]))

    app.bus.use(outer, index=0)  # before validation: the command is not built yet
    app.bus.use(inner)  # innermost: after validation
    assert app.bus.middleware[0] is outer and app.bus.middleware[-1] is inner
    app.dispatch("OpenAccount", {"account_id": "a1", "owner": "ann"})
    # the terminal step commits, so both see the stored events on the way out
    assert calls == [("outer-in", "OpenAccount", True), ("inner-in", "OpenAccount", False),
                     ("inner-out", "a1", ["AccountOpened"]), ("outer-out", "OpenAccount", 1)]


def test_a_hook_can_add_metadata_or_refuse(app: App) -> None:
    def tenant(ctx: CommandContext, call_next) -> None:
        ctx.metadata["tenant"] = "acme"
        call_next(ctx)

    class Refuse(DomainError):
        pass

    def read_only_hours(ctx: CommandContext, call_next) -> None:
        if ctx.name == "Withdraw":
            raise Refuse("withdrawals are closed")
        call_next(ctx)

    app.bus.use(tenant)
    app.bus.use(read_only_hours)
    recs = app.dispatch("OpenAccount", {"account_id": "a1", "owner": "ann"},
                        metadata={"channel": "web"})
    assert recs[0].metadata["tenant"] == "acme" and recs[0].metadata["channel"] == "web"
    with pytest.raises(Refuse):
        app.dispatch("Withdraw", {"account_id": "a1", "amount": 0})
    assert app.store.head_position == 1


def test_validation_runs_before_the_handler(app: App) -> None:
    with pytest.raises(ValidationError) as info:
        app.dispatch("Deposit", {"account_id": "a1", "amount": "lots"})
    assert [e.field for e in info.value.errors] == ["amount"]
    assert app.store.head_position == 0


def test_retry_on_conflict_reloads_and_decides_again(store: EventStore) -> None:
    model = make_model()
    me = App(model, store, ids=SequentialIds(seed=1))
    other = App(model, store, ids=SequentialIds(seed=2))
    me.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
    me.dispatch("Deposit", {"account_id": "a", "amount": 5})
    append_many = store.append_many
    raced: list[int] = []

    def racing(batches, state=None):  # another writer slips in between decide and append
        if not raced:
            raced.append(1)
            other.dispatch("Deposit", {"account_id": "a", "amount": 100})
        return append_many(batches, state=state)

    store.append_many = racing  # type: ignore[method-assign]
    attempts: list[int] = []

    def spy(ctx: CommandContext, call_next) -> None:
        attempts.append(ctx.attempt)
        call_next(ctx)

    me.bus.use(spy)  # innermost: sees every attempt of RetryOnConflict
    try:
        recs = me.dispatch("Deposit", {"account_id": "a", "amount": 7})
    finally:
        del store.append_many
    # attempt 1 decided at version 2 and lost the race (the stream moved to 3); attempt 2
    # reloaded the aggregate and appended at version 4: no update lost
    assert attempts == [1, 2]
    assert recs[0].version == 4 and balance(me, "a") == 112
    assert me.load("Account", "a").balance == other.load("Account", "a").balance == 112


def test_conflicts_after_every_retry_are_reported(store: EventStore) -> None:
    from allframe_lab import ConcurrencyError

    model = make_model()
    me = App(model, store, ids=SequentialIds(seed=1))
    other = App(model, store, ids=SequentialIds(seed=2))
    me.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
    append_many = store.append_many

    def always_racing(batches, state=None):
        if batches and batches[0][0] == "a" and threading.current_thread().name != "other":
            t = threading.Thread(target=other.dispatch, name="other",
                                 args=("Deposit", {"account_id": "a", "amount": 1}))
            t.start()
            t.join()
        return append_many(batches, state=state)

    store.append_many = always_racing  # type: ignore[method-assign]
    try:
        with pytest.raises(ConcurrencyError) as info:
            me.dispatch("Deposit", {"account_id": "a", "amount": 7})
    finally:
        del store.append_many
    assert info.value.stream_id == "a"
    amounts = [r.data.get("amount") for r in store.read_stream("a")[1:]]
    assert amounts == [1, 1, 1]  # three attempts, three lost races, nothing of ours written


# ------------------------------------------------------------------ dispatch_many
def test_dispatch_many_appends_a_batch_in_order(app: App) -> None:
    out = app.dispatch_many([
        ("OpenAccount", {"account_id": "a", "owner": "ann"}),
        ("Deposit", {"account_id": "a", "amount": 10}),
        app.model.commands["Withdraw"](account_id="a", amount=4),  # sees the deposit
        ("OpenAccount", {"account_id": "b", "owner": "bob"}),
        ("Transfer", {"source": "a", "target": "b", "amount": 6}),
    ])
    assert [[r.type for r in recs] for recs in out] == [
        ["AccountOpened"], ["FundsDeposited"], ["FundsWithdrawn"], ["AccountOpened"],
        ["FundsWithdrawn", "FundsDeposited"]]
    positions = [r.position for recs in out for r in recs]
    assert positions == list(range(1, 7))
    assert (balance(app, "a"), balance(app, "b")) == (0, 6)
    # every command has its own command id
    assert len({recs[0].metadata["command_id"] for recs in out}) == 5


@pytest.mark.parametrize("bad", [
    ("Withdraw", {"account_id": "a", "amount": 1_000}),  # DomainError
    ("Deposit", {"account_id": "a", "amount": "x"}),  # ValidationError
    ("Deposit", {"account_id": "ghost", "amount": 1}),  # AggregateNotFoundError
    ("OpenAccount", {"account_id": "a", "owner": "again"}),  # ConcurrencyError (exists)
    ("Nope", {}),  # UnknownNameError
])
def test_dispatch_many_is_all_or_nothing(app: App, bad) -> None:
    open_accounts(app, "a", funds=10)
    head = app.store.head_position
    with pytest.raises((DomainError, ValidationError, AggregateNotFoundError, UnknownNameError,
                        RuntimeError)):
        app.dispatch_many([("Deposit", {"account_id": "a", "amount": 5}),
                           ("OpenAccount", {"account_id": "new", "owner": "n"}), bad,
                           ("Deposit", {"account_id": "a", "amount": 5})])
    assert app.store.head_position == head
    assert app.store.read_stream("new") == []
    assert app.load("Account", "a").balance == 10  # no half-applied state in the cache
    app.dispatch("Deposit", {"account_id": "a", "amount": 1})
    assert balance(app, "a") == 11


# ------------------------------------------------------------------ correlation and causation
def test_events_carry_correlation_and_causation_ids(app: App) -> None:
    opened = app.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
    m = opened[0].metadata
    assert m["command"] == "OpenAccount"
    assert m["correlation_id"] == m["command_id"] == m["causation_id"]  # starts a request
    recs = app.dispatch("Deposit", {"account_id": "a", "amount": 3}, correlation_id="req-1")
    m = recs[0].metadata
    assert m["correlation_id"] == "req-1" and m["causation_id"] == m["command_id"] != "req-1"
    assert "command_causation_id" not in m


def test_correlation_chain_is_in_causal_order(app: App) -> None:
    open_accounts(app, "a", "b", funds=10)
    first = app.dispatch("Transfer", {"source": "a", "target": "b", "amount": 2},
                         correlation_id="req-9")
    # a follow-up caused by the deposit event (as a saga or process manager would send it)
    caused = app.dispatch("Withdraw", {"account_id": "b", "amount": 1}, correlation_id="req-9",
                          causation_id=str(first[1].event_id))
    app.dispatch("Deposit", {"account_id": "a", "amount": 1})  # another request
    chain = app.correlation_chain("req-9")
    assert chain.position.tolist() == [r.position for r in [*first, *caused]]
    assert chain.type.tolist() == ["FundsWithdrawn", "FundsDeposited", "FundsWithdrawn"]
    assert chain.depth.tolist() == [0, 0, 1]
    assert chain.command_causation_id.tolist()[2] == str(first[1].event_id)
    assert caused[0].metadata["command_causation_id"] == str(first[1].event_id)
    assert app.correlation_chain("unknown").empty


def test_same_ids_and_clock_give_the_same_events(store: EventStore) -> None:
    def run(s: EventStore) -> list[tuple]:
        app = App(make_model(), s, clock=ManualClock(T0), ids=SequentialIds(seed=5))
        app.dispatch("OpenAccount", {"account_id": "a", "owner": "ann"})
        app.dispatch("Deposit", {"account_id": "a", "amount": 2}, correlation_id="r")
        return [(r.event_id, r.metadata, r.occurred_at) for r in s.read_all()]

    from allframe_lab import InMemoryEventStore

    assert run(store) == run(InMemoryEventStore())
