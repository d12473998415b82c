"""Subscriptions, followed projections and dead letters, against every backend.

Catch-up from a durable checkpoint then live delivery after each append; background delivery
and ``wait_for``; events a handler fails on are parked (exactly those), listed, retried after a
fix, and discarded.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import pytest

from allframe_lab import App, Projection, SequentialIds, applies
from allframe_lab.errors import ConsistencyTimeoutError, UnknownNameError
from allframe_lab.runtime.projections import ParkedEventWarning
from allframe_lab.runtime.subscriptions import CHECKPOINTS
from allframe_lab.store import EventStore
from allframe_lab.store.duckdb import DuckDBEventStore
from tests.bank import make_bank

UNLUCKY = 13  # deposits of this amount make the "broken" handlers below raise

def make_model(broken: set[int]):
    """The bank plus a ``deposits`` projection that fails on amounts in ``broken``."""
    bank = make_bank()

    @bank.projection("deposits", key="account_id",
                     columns={"account_id": "VARCHAR", "total": "BIGINT", "count": "BIGINT"})
    class Deposits(Projection):
        @applies("FundsDeposited")
        def deposited(self, e, rec) -> None:
            if e.amount in broken:
                raise ValueError(f"cannot handle amount {e.amount}")
            row = self.rows.get(rec.stream_id) or {"account_id": rec.stream_id, "total": 0,
                                                   "count": 0}
            row["total"] += e.amount
            row["count"] += 1
            self.rows[rec.stream_id] = row

    return bank


def new_app(store: EventStore, broken: set[int] | None = None, seed: int = 1) -> App:
    return App(make_model(broken if broken is not None else set()), store,
               ids=SequentialIds(seed=seed))


def deposit(app: App, account: str, *amounts: int) -> None:
    for a in amounts:
        app.dispatch("Deposit", {"account_id": account, "amount": a})


def open_account(app: App, account: str) -> None:
    app.dispatch("OpenAccount", {"account_id": account, "owner": account})


def oracle_deposits(store: EventStore, skip: set[int] = frozenset()) -> dict[str, tuple]:
    """Independent fold of the log: account -> (total, count) of deposits not in ``skip``."""
    out: dict[str, list[int]] = {}
    for r in store.read_all():
        if r.type == "FundsDeposited" and r.position not in skip:
            t = out.setdefault(r.stream_id, [0, 0])
            t[0] += r.data["amount"]
            t[1] += 1
    return {k: tuple(v) for k, v in out.items()}


def table_deposits(app: App) -> dict[str, tuple]:
    df = app.read(consistent=False).table("deposits").df()
    return {r.account_id: (int(r.total), int(r.count)) for r in df.itertuples()}


# ------------------------------------------------------------------ subscriptions
def test_catch_up_then_live(store: EventStore) -> None:
    app = new_app(store)
    open_account(app, "a")
    deposit(app, "a", 1, 2)
    seen: list[tuple[int, str, int | None]] = []
    app.subscribe("audit", lambda e, r: seen.append((r.position, r.type,
                                                     getattr(e, "amount", None))))
    assert seen == [(1, "AccountOpened", None), (2, "FundsDeposited", 1),
                    (3, "FundsDeposited", 2)]  # the backlog, in order, decoded
    deposit(app, "a", 3)
    assert seen[-1] == (4, "FundsDeposited", 3)  # live, right after the append
    assert app.subscriptions.checkpoint("audit") == 4
    assert "audit" in app.subscriptions


def test_handler_with_one_argument_and_type_filter(store: EventStore) -> None:
    app = new_app(store)
    amounts: list[int] = []
    app.subscribe("amounts", lambda e: amounts.append(e.amount), types=["FundsDeposited"])
    open_account(app, "a")
    deposit(app, "a", 4, 5)
    app.dispatch("Withdraw", {"account_id": "a", "amount": 1})
    assert amounts == [4, 5]
    assert app.subscriptions.checkpoint("amounts") == 4  # moved past the other types


def test_from_position_starts_a_new_subscription_later(store: EventStore) -> None:
    app = new_app(store)
    open_account(app, "a")
    deposit(app, "a", 1)
    seen: list[int] = []
    app.subscribe("new-only", lambda e, r: seen.append(r.position),
                  from_position=store.head_position)
    deposit(app, "a", 2)
    assert seen == [3]


def test_checkpoint_is_durable_for_a_new_app_on_the_same_store(store: EventStore) -> None:
    first = new_app(store)
    seen1: list[int] = []
    first.subscribe("audit", lambda e, r: seen1.append(r.position))
    open_account(first, "a")
    deposit(first, "a", 1)
    first.subscriptions.unsubscribe("audit")
    deposit(first, "a", 2)  # not delivered: unsubscribed
    assert seen1 == [1, 2] and store.get_state(CHECKPOINTS, "audit") == 2
    second = new_app(store, seed=2)
    seen2: list[int] = []
    second.subscribe("audit", lambda e, r: seen2.append(r.position))
    assert seen2 == [3]  # resumes after its checkpoint: nothing skipped, nothing repeated


@pytest.mark.duckdb
def test_checkpoint_survives_reopening_the_duckdb_file(tmp_path: Path) -> None:
    path = tmp_path / "bank.duckdb"
    seen: list[int] = []
    with new_app(DuckDBEventStore(path)) as app:
        app.subscribe("audit", lambda e, r: seen.append(r.position))
        open_account(app, "a")
        deposit(app, "a", 1, 2)
    with new_app(DuckDBEventStore(path), seed=2) as app:
        deposit(app, "a", 3)  # appended before the subscription is registered again
        app.subscribe("audit", lambda e, r: seen.append(r.position))
        deposit(app, "a", 4)
        assert seen == [1, 2, 3, 4, 5]
        assert app.subscriptions.checkpoint("audit") == 5


def test_background_subscription_and_wait_for(store: EventStore) -> None:
    app = new_app(store)
    seen: list[int] = []
    threads: set[str] = set()

    def handler(e, r) -> None:
        threads.add(threading.current_thread().name)
        seen.append(r.position)

    app.subscribe("bg", handler, background=True)
    open_account(app, "a")
    deposit(app, "a", *range(1, 20))
    reached = app.wait_for(timeout=10)
    assert reached["bg"] >= 20 and seen == list(range(1, 21))
    assert threads == {"allframe-subscriptions"}
    app.close()


def test_a_blocked_background_subscriber_blocks_nobody(store: EventStore) -> None:
    gate = threading.Event()
    slow: list[int] = []
    fast: list[int] = []
    app = new_app(store)
    open_account(app, "a")
    app.subscribe("slow", lambda e, r: (gate.wait(30), slow.append(r.position)),
                  background=True, from_position=1)
    app.subscribe("fast", lambda e, r: fast.append(r.position), from_position=1)
    worker = threading.Thread(target=deposit, args=(app, "a", 1, 2))
    worker.start()
    worker.join(timeout=10)  # the appends and the synchronous subscriber did not wait
    assert not worker.is_alive() and fast == [2, 3] and slow == []
    with pytest.raises(ConsistencyTimeoutError) as info:
        app.wait_for(timeout=0.1)
    assert info.value.reached == {"slow": 1, "fast": 3}
    gate.set()
    assert app.wait_for(timeout=10) == {"slow": 3, "fast": 3} and slow == [2, 3]
    app.close()


def test_catch_up_of_an_unknown_subscription_lists_the_known_ones(store: EventStore) -> None:
    app = new_app(store)
    app.subscribe("audit", lambda e: None)
    with pytest.raises(UnknownNameError, match="audit"):
        app.subscriptions.catch_up("nope")


# ------------------------------------------------------------------ followed projections
def test_followed_projection_is_updated_after_each_append(store: EventStore) -> None:
    app = new_app(store)
    open_account(app, "a")
    app.follow("deposits")
    app.follow("balances")
    deposit(app, "a", 5)
    assert app.projections.checkpoint("deposits") == store.head_position
    assert table_deposits(app) == oracle_deposits(store) == {"a": (5, 1)}
    deposit(app, "a", 6)
    assert table_deposits(app) == {"a": (11, 2)}  # no explicit catch_up was needed
    assert app.sql("SELECT balance FROM balances").balance.tolist() == [11]


def test_background_follow_and_read_your_writes(store: EventStore) -> None:
    app = new_app(store)
    open_account(app, "a")
    deposit(app, "a", *range(1, 30))
    app.follow("deposits", background=True)  # catches up on the worker thread
    assert app.read().table("deposits").one() == {"account_id": "a", "total": 435,
                                                  "count": 29}
    assert app.projections.checkpoint("deposits") >= app.last_position
    app.close()


@pytest.mark.parametrize("backend", [
    pytest.param("memory", marks=pytest.mark.memory),
    pytest.param("duckdb", marks=pytest.mark.duckdb),
])
def test_appends_while_a_background_projection_catches_up(backend: str, tmp_path) -> None:
    from tests.conftest import open_store

    app = new_app(open_store(backend, tmp_path))
    app.follow("deposits", background=True)
    open_account(app, "a")
    for i in range(1, 200):
        deposit(app, "a", i)
        if i % 50 == 0:
            app.wait_for(timeout=10)
    assert app.read(timeout=10).table("deposits").one()["total"] == sum(range(1, 200))
    app.close()


def test_the_worker_hands_appended_records_to_followed_projections(store: EventStore,
                                                                   monkeypatch) -> None:
    """The background worker folds what the App appended without reading it back; after a
    gap (an append that did not go through the App) it reads the store, and stays right."""
    import allframe_lab.runtime.projections as projections

    app = new_app(store)
    app.follow("deposits", background=True)
    open_account(app, "a")
    app.wait_for(timeout=10)
    reads: list[int] = []
    real = projections.iter_decoded

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        reads.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(projections, "iter_decoded", counted)
    for i in range(1, 6):
        deposit(app, "a", i)
        app.wait_for(timeout=10)
    assert reads == []  # every round got the records it needed handed on
    assert app.read().table("deposits").one()["total"] == 15
    from allframe_lab.store import NewEvent

    store.append("a", [NewEvent("FundsDeposited", {"amount": 100})])
    deposit(app, "a", 6)  # the handed-on records no longer start at the checkpoint
    app.wait_for(timeout=10)
    assert reads and app.read().table("deposits").one()["total"] == 121
    app.close()


def test_a_blocked_projection_makes_a_consistent_read_time_out(store: EventStore) -> None:
    gate = threading.Event()
    bank = make_model(set())

    @bank.projection("slow", key="account_id", columns={"account_id": "VARCHAR",
                                                        "amount": "BIGINT"})
    class Slow(Projection):
        @applies("FundsDeposited")
        def deposited(self, e, rec) -> None:
            gate.wait(30)
            self.rows[rec.stream_id] = {"account_id": rec.stream_id, "amount": e.amount}

    app = App(bank, store, ids=SequentialIds())
    open_account(app, "a")
    app.follow("slow")  # the table exists (checkpoint 1) before the worker takes over
    app.follow("slow", background=True)
    deposit(app, "a", 7)  # the append returns although the handler is blocked
    with pytest.raises(ConsistencyTimeoutError) as info:
        app.read(timeout=0.2).table("slow").df()
    assert info.value.position == app.last_position == 2
    assert info.value.reached["slow"] < 2 and "slow at" in str(info.value)
    with pytest.raises(ConsistencyTimeoutError):
        app.wait_for(timeout=0.1)
    gate.set()
    app.wait_for(timeout=10)
    app.subscriptions.close()  # join the worker
    assert app.read(timeout=10).table("slow").records() == [{"account_id": "a", "amount": 7}]
    app.close()


def test_projection_followed_before_its_first_row(store: EventStore) -> None:
    bank = make_bank()

    @bank.projection("firsts", key="account_id")
    class Firsts(Projection):
        @applies("FundsDeposited")
        def deposited(self, e, rec) -> None:
            self.rows.setdefault(rec.stream_id, {"account_id": rec.stream_id,
                                                 "first": e.amount})

    app = App(bank, store, ids=SequentialIds())
    app.follow("firsts")
    open_account(app, "a")  # a catch-up that touches no row
    deposit(app, "a", 3)
    assert app.projection("firsts").df().first.tolist() == [3]


# ------------------------------------------------------------------ dead letters
def test_failing_projection_parks_exactly_the_failing_events(store: EventStore) -> None:
    broken = {UNLUCKY}
    app = new_app(store, broken)
    for acc in ("a", "b"):
        open_account(app, acc)
    app.follow("deposits")
    with pytest.warns(ParkedEventWarning, match="parked 1 event"):
        deposit(app, "a", 1, UNLUCKY)
    with pytest.warns(ParkedEventWarning):
        deposit(app, "b", UNLUCKY)
    deposit(app, "b", 2, 3)
    failing = [r.position for r in store.read_all()
               if r.type == "FundsDeposited" and r.data["amount"] == UNLUCKY]
    parked = app.dead_letters("deposits")
    assert parked.position.tolist() == failing
    assert set(parked.subscriber) == {"projection:deposits"}
    assert parked.error.str.contains(f"ValueError: cannot handle amount {UNLUCKY}").all()
    assert parked.traceback.str.contains("in deposited").all()
    assert parked.attempts.tolist() == [1, 1] and app.dead_letter_count == 2
    # every other event is in the table, and the checkpoint went past the parked ones
    assert table_deposits(app) == oracle_deposits(store, skip=set(failing))
    assert app.projections.checkpoint("deposits") == store.head_position

    # still broken: a retry keeps them parked and counts the attempt
    with pytest.warns(ParkedEventWarning):
        result = app.retry_dead_letters("deposits")
    assert set(result) == set(failing) and all("ValueError" in v for v in result.values())
    assert app.dead_letters("deposits").attempts.tolist() == [2, 2]

    broken.clear()  # the fix
    assert app.retry_dead_letters("deposits", failing[0]) == {failing[0]: None}
    assert app.dead_letter_count == 1
    assert app.retry_dead_letters("deposits") == {failing[1]: None}
    assert app.dead_letter_count == 0 and app.dead_letters().empty
    assert table_deposits(app) == oracle_deposits(store)
    # the table survives a rebuild unchanged
    app.projections.rebuild("deposits")
    assert table_deposits(app) == oracle_deposits(store)


def test_failing_subscription_parks_and_continues(store: EventStore) -> None:
    broken = {UNLUCKY}
    app = new_app(store)
    handled: list[int] = []

    def handler(e, r) -> None:
        if r.type == "FundsDeposited" and e.amount in broken:
            raise RuntimeError(f"mailer down for {e.amount}")
        handled.append(r.position)

    open_account(app, "a")
    app.subscribe("mailer", handler)
    with pytest.warns(ParkedEventWarning, match="subscription 'mailer' parked 1 event"):
        deposit(app, "a", UNLUCKY)  # each live delivery that parks warns
    deposit(app, "a", 1)
    with pytest.warns(ParkedEventWarning):
        deposit(app, "a", UNLUCKY)
    failing = [r.position for r in store.read_all()
               if r.type == "FundsDeposited" and r.data["amount"] == UNLUCKY]
    assert handled == [p for p in range(1, store.head_position + 1) if p not in failing]
    parked = app.dead_letters("mailer")
    assert parked.position.tolist() == failing
    assert parked.subscriber.unique().tolist() == ["subscription:mailer"]
    assert parked.stream_id.tolist() == ["a", "a"]
    assert parked.type.tolist() == ["FundsDeposited"] * 2
    assert app.subscriptions.checkpoint("mailer") == store.head_position
    assert app.dead_letter_count == 2

    broken.clear()
    assert app.retry_dead_letters("mailer") == dict.fromkeys(failing)
    assert handled[-2:] == failing and app.dead_letter_count == 0


def test_discard_dead_letters(store: EventStore) -> None:
    app = new_app(store, {UNLUCKY})
    app.subscribe("mailer", lambda e, r: 1 / 0 if r.type == "FundsDeposited" else None)
    open_account(app, "a")
    app.follow("deposits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ParkedEventWarning)
        deposit(app, "a", UNLUCKY, 2, UNLUCKY)
    assert len(app.dead_letters("mailer")) == 3 and len(app.dead_letters("deposits")) == 2
    assert app.dead_letter_count == 5
    assert app.discard_dead_letters("mailer", 3) == 1
    assert app.dead_letters("mailer").position.tolist() == [2, 4]
    assert app.discard_dead_letters("mailer") == 2
    assert app.discard_dead_letters("mailer") == 0
    assert app.dead_letter_count == 2  # the projection's are untouched
    assert app.dead_letters().subscriber.unique().tolist() == ["projection:deposits"]


def test_retry_of_an_unknown_subscription_is_an_error(store: EventStore) -> None:
    app = new_app(store)
    with pytest.raises(UnknownNameError):
        app.retry_dead_letters("nope")


@pytest.mark.duckdb
def test_dead_letters_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "bank.duckdb"
    with new_app(DuckDBEventStore(path), {UNLUCKY}) as app:
        open_account(app, "a")
        app.follow("deposits")
        with pytest.warns(ParkedEventWarning):
            deposit(app, "a", UNLUCKY, 1)
    with new_app(DuckDBEventStore(path), set()) as app:  # the fixed code, after a restart
        assert app.dead_letter_count == 1
        assert app.retry_dead_letters("deposits") == {2: None}
        assert table_deposits(app) == {"a": (UNLUCKY + 1, 2)}
