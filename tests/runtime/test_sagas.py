"""Sagas: the money transfer (success and failing path), deadlines, restart, idempotent steps."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from allframe_lab import App, Command, Event, ManualClock, Model, Saga, SequentialIds, starts, step
from allframe_lab.errors import ModelDefinitionError
from allframe_lab.store import EventStore
from allframe_lab.store.duckdb import DuckDBEventStore
from tests.transfers import PAYMENT_DEADLINE, make_orders, make_transfers

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def bank_app(store: EventStore) -> App:
    app = App(make_transfers(), store, clock=ManualClock(T0, tick=timedelta(seconds=1)),
              ids=SequentialIds())
    app.dispatch("OpenAccount", {"account_id": "alice", "owner": "Alice"})
    app.dispatch("OpenAccount", {"account_id": "bob", "owner": "Bob"})
    app.dispatch("Deposit", {"account_id": "alice", "amount": 100})
    return app


def balances(app: App) -> dict[str, int]:
    return {a: app.load("Account", a).balance for a in ("alice", "bob")}


def test_transfer_moves_money_and_completes(store: EventStore) -> None:
    app = bank_app(store)
    app.dispatch("RequestTransfer", {"transfer_id": "t1", "source": "alice", "target": "bob",
                                     "amount": 30})
    assert balances(app) == {"alice": 70, "bob": 30}
    inst = app.sagas.instance("MoneyTransfer", "t1")
    assert inst is not None and inst.status == "completed"
    assert inst.completed == ["withdraw", "deposit"]
    # the saga's commands continue the correlation chain of the request
    request = app.store.read_stream("t1")[0]
    chain = app.correlation_chain(request.metadata["correlation_id"])
    assert chain.type.tolist() == ["TransferRequested", "FundsWithdrawn", "FundsDeposited"]
    assert chain.depth.tolist() == [0, 1, 1]
    assert set(chain.command_causation_id[1:]) == {str(request.event_id)}


def test_failing_step_compensates_completed_steps_in_reverse(store: EventStore) -> None:
    app = bank_app(store)
    app.dispatch("RequestTransfer", {"transfer_id": "t2", "source": "alice",
                                     "target": "nobody", "amount": 40})
    assert balances(app) == {"alice": 100, "bob": 0}  # withdrawn, then refunded
    inst = app.sagas.instance("MoneyTransfer", "t2")
    assert inst is not None and inst.status == "compensated"
    assert "deposit" in inst.failure and "nobody" in inst.failure
    types = [r.type for r in app.store.read_stream("alice")]
    assert types[-2:] == ["FundsWithdrawn", "FundsDeposited"]
    frame = app.sagas.instances("MoneyTransfer")
    assert frame.set_index("id").loc["t2", "status"] == "compensated"


def test_refused_first_step_compensates_nothing(store: EventStore) -> None:
    app = bank_app(store)
    head = app.store.head_position
    app.dispatch("RequestTransfer", {"transfer_id": "t3", "source": "alice", "target": "bob",
                                     "amount": 1_000})
    assert balances(app) == {"alice": 100, "bob": 0}
    assert app.store.head_position == head + 1  # only the request itself
    inst = app.sagas.instance("MoneyTransfer", "t3")
    assert inst is not None and inst.status == "compensated"
    assert "InsufficientFunds" in inst.failure


def order_app(store: EventStore) -> App:
    return App(make_orders(), store, clock=ManualClock(T0), ids=SequentialIds())


def test_deadline_passes_and_the_order_is_cancelled(store: EventStore) -> None:
    app = order_app(store)
    app.dispatch("PlaceOrder", {"order_id": "o1", "sku": "book"})
    inst = app.sagas.instance("Checkout", "o1")
    assert inst is not None and inst.status == "waiting"
    assert inst.deadline == T0 + PAYMENT_DEADLINE
    app.clock.advance(hours=23)
    assert app.sagas.fire_due() == []
    app.clock.advance(hours=2)
    fired = app.sagas.fire_due()
    assert [i.id for i in fired] == ["o1"]
    order = app.load("Order", "o1")
    assert (order.status, order.reserved) == ("cancelled", False)
    assert [r.type for r in app.store.read_stream("o1")] == [
        "OrderPlaced", "StockReserved", "OrderCancelled", "StockReleased"]
    assert app.sagas.instance("Checkout", "o1").status == "compensated"


def test_payment_in_time_completes_the_saga(store: EventStore) -> None:
    app = order_app(store)
    app.dispatch("PlaceOrder", {"order_id": "o2", "sku": "pen"})
    app.clock.advance(hours=5)
    app.dispatch("Pay", {"order_id": "o2"})
    inst = app.sagas.instance("Checkout", "o2")
    assert inst is not None and inst.status == "completed" and inst.state.paid
    app.clock.advance(hours=48)
    assert app.sagas.fire_due() == []
    assert app.load("Order", "o2").status == "paid"


def test_deadlines_also_fire_when_events_arrive(store: EventStore) -> None:
    app = order_app(store)
    app.dispatch("PlaceOrder", {"order_id": "o3", "sku": "pen"})
    app.clock.advance(hours=30)
    app.dispatch("PlaceOrder", {"order_id": "o4", "sku": "cup"})  # any append checks deadlines
    assert app.load("Order", "o3").status == "cancelled"
    assert app.sagas.instance("Checkout", "o4").status == "waiting"


@pytest.mark.duckdb
def test_saga_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "shop.duckdb"
    with order_app(DuckDBEventStore(path)) as app:
        app.dispatch("PlaceOrder", {"order_id": "o5", "sku": "pen"})
        assert app.sagas.instance("Checkout", "o5").status == "waiting"
    with order_app(DuckDBEventStore(path)) as app:  # a new process would do the same
        assert app.sagas.instance("Checkout", "o5").status == "waiting"
        app.dispatch("Pay", {"order_id": "o5"})
        assert app.sagas.instance("Checkout", "o5").status == "completed"


def test_steps_are_idempotent_when_events_are_delivered_again(store: EventStore) -> None:
    app = bank_app(store)
    app.dispatch("RequestTransfer", {"transfer_id": "t4", "source": "alice", "target": "bob",
                                     "amount": 10})
    head = app.store.head_position
    # simulate a crash before the saga's progress was saved: forget it and redeliver everything
    app.store.put_state("saga:MoneyTransfer", {"t4": None})
    app.store.put_state("subscription_checkpoints", {"saga:MoneyTransfer": 0})
    app.subscriptions.catch_up("saga:MoneyTransfer")
    assert app.store.head_position == head  # every step command was answered from its key
    assert balances(app) == {"alice": 90, "bob": 10}
    assert app.sagas.instance("MoneyTransfer", "t4").status == "completed"


def test_failed_compensation_leaves_the_instance_stuck_and_parks_the_event(
        store: EventStore) -> None:
    app = bank_app(store)
    model = app.model

    @model.saga("Fragile", correlation="transfer_id")
    class Fragile(Saga):
        source: str = ""

        @starts("TransferRequested")
        def begin(self, e: Event) -> None:
            self.source = e.source  # type: ignore[attr-defined]

        @step(compensate="undo")
        def first(self) -> Command:
            return model.commands["Deposit"](account_id=self.source, amount=1)

        def undo(self) -> Command:  # refused: the account does not exist
            return model.commands["Deposit"](account_id="ghost", amount=1)

        @step()
        def second(self) -> Command:  # refused too: triggers compensation
            return model.commands["Withdraw"](account_id=self.source, amount=10**9)

    app.sagas.start("Fragile", from_position=app.store.head_position)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app.dispatch("RequestTransfer", {"transfer_id": "t5", "source": "alice",
                                         "target": "bob", "amount": 1})
    inst = app.sagas.instance("Fragile", "t5")
    assert inst is not None and inst.status == "stuck"
    parked = app.dead_letters("saga:Fragile")
    assert len(parked) == 1 and "SagaError" in parked.error[0]


def test_saga_definition_errors_are_caught_when_the_class_is_defined() -> None:
    m = Model("m")
    with pytest.raises(ModelDefinitionError, match="no @starts"):
        @m.saga("NoStart", correlation="x")
        class NoStart(Saga):
            @step()
            def go(self) -> None:
                return None
    with pytest.raises(ModelDefinitionError, match="compensation 'nope'"):
        @m.saga("BadComp", correlation="x")
        class BadComp(Saga):
            @starts("E")
            def begin(self, e: Event) -> None:
                pass

            @step(compensate="nope")
            def go(self) -> None:
                return None
    with pytest.raises(ModelDefinitionError, match="wait_for"):
        step(timeout=timedelta(hours=1))


def test_saga_appears_in_model_info() -> None:
    info = make_orders().info()
    (saga,) = info.sagas
    assert saga.name == "Checkout" and saga.steps == ("reserve", "await_payment")
    assert saga.waits_for == (None, "PaymentReceived")


TRANSFER_LOOP = textwrap.dedent("""
    import sys
    from allframe_lab import App
    from allframe_lab.store.duckdb import DuckDBEventStore
    from tests.transfers import make_transfers
    app = App(make_transfers(), DuckDBEventStore(sys.argv[1]))
    names = [f"acc{i}" for i in range(5)]
    if app.store.head_position == 0:
        for n in names:
            app.dispatch("OpenAccount", {"account_id": n, "owner": n})
            app.dispatch("Deposit", {"account_id": n, "amount": 1000})
    print("ready", flush=True)
    i = 0
    while True:
        src, dst = names[i % 5], names[(i * 3 + 1) % 5]
        if src != dst:
            app.dispatch("RequestTransfer", {"transfer_id": f"t{i}", "source": src,
                                             "target": "nobody" if i % 4 == 0 else dst,
                                             "amount": 1 + i % 7})
        i += 1
""")


@pytest.mark.duckdb
@pytest.mark.slow
def test_sigkill_in_the_middle_of_sagas_then_restart_conserves_money(tmp_path: Path) -> None:
    path = tmp_path / "transfers.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", TRANSFER_LOOP, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[2])
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read() if proc.stderr else ""
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with App(make_transfers(), DuckDBEventStore(path)) as app:  # restart: sagas catch up
        frame = app.sagas.instances("MoneyTransfer")
        assert len(frame) > 3
        assert set(frame.status) <= {"completed", "compensated"}
        total = sum(app.load("Account", f"acc{i}").balance for i in range(5))
        assert total == 5 * 1000  # no step applied twice, none lost
        by_saga: dict[str, list[str]] = {}
        for r in app.store.read_all():
            if "saga_id" in r.metadata:
                by_saga.setdefault(r.metadata["saga_id"], []).append(r.type)
        for tid in frame.id:  # each step's command applied at most once
            kinds = by_saga.get(tid, [])
            assert kinds.count("FundsWithdrawn") == kinds.count("FundsDeposited") <= 1, kinds


class _Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may catch and park it)."""


def test_a_crash_during_compensation_resumes_on_restart(store: EventStore,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from allframe_lab.runtime.sagas import SagaRunner

    app = bank_app(store)
    real_send = SagaRunner._send

    def crash_on_compensation(self, inst, command, label, cause):  # type: ignore[no-untyped-def]
        if label.startswith("compensate:"):
            raise _Crash
        return real_send(self, inst, command, label, cause)

    monkeypatch.setattr(SagaRunner, "_send", crash_on_compensation)
    with pytest.raises(_Crash):
        app.dispatch("RequestTransfer", {"transfer_id": "t6", "source": "alice",
                                         "target": "nobody", "amount": 25})
    assert app.sagas.instance("MoneyTransfer", "t6").status == "compensating"
    assert balances(app) == {"alice": 75, "bob": 0}  # withdrawn, refund not sent yet
    monkeypatch.setattr(SagaRunner, "_send", real_send)
    restarted = App(app.model, store, clock=app.clock, ids=SequentialIds(seed=9))
    assert restarted.sagas.instance("MoneyTransfer", "t6").status == "compensated"
    assert balances(restarted) == {"alice": 100, "bob": 0}
