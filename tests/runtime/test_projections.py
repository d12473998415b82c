"""Projections: SQL and Python, checkpoints, rebuild and as-of, against every backend."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from allframe_lab import App, ManualClock, Projection, SequentialIds, applies
from allframe_lab.errors import ProjectionError
from allframe_lab.store import EventStore
from tests.bank import make_bank

T0 = datetime(2024, 3, 1, tzinfo=UTC)


@pytest.fixture
def app(store: EventStore) -> App:
    bank = make_bank()
    app = App(bank, store, clock=ManualClock(T0, tick=timedelta(minutes=1)),
              ids=SequentialIds(seed=2))
    Open, Deposit, Withdraw = (bank.commands[n] for n in ("OpenAccount", "Deposit", "Withdraw"))
    rng = random.Random(7)
    for i in range(5):
        app.handle(Open(account_id=f"acc-{i}", owner=f"owner-{i}"))
    for _ in range(60):
        acc = f"acc-{rng.randrange(5)}"
        if rng.random() < 0.7:
            app.handle(Deposit(account_id=acc, amount=rng.randrange(1, 100)))
        else:
            bal = app.load("Account", acc).balance
            if bal:
                app.handle(Withdraw(account_id=acc, amount=rng.randrange(1, bal + 1)))
    return app


def expected_balances(app: App, position: int) -> dict[str, int]:
    """Independent oracle: fold the raw log by hand."""
    out: dict[str, int] = {}
    for r in app.store.read_all(to_position=position):
        if r.type == "AccountOpened":
            out[r.stream_id] = 0
        elif r.type == "FundsDeposited":
            out[r.stream_id] += r.data["amount"]
        elif r.type == "FundsWithdrawn":
            out[r.stream_id] -= r.data["amount"]
    return out


@pytest.mark.parametrize("name", ["balances", "totals"])
def test_projection_matches_oracle_now_and_as_of(app: App, name: str) -> None:
    head = app.store.head_position
    df = app.projection(name).df()
    assert dict(zip(df.account_id, df.balance)) == expected_balances(app, head)
    assert app.projection(name).checkpoint == head
    for p in (1, 3, 7, 20, 41, head - 1, head):
        at = app.projection(name).as_of(position=p)
        assert dict(zip(at.account_id, at.balance)) == expected_balances(app, p), p


def test_as_of_timestamp_resolves_to_position(app: App) -> None:
    t = T0 + timedelta(minutes=9, seconds=30)  # events at T0, T0+1m, ...: positions 1..10
    for name in ("balances", "totals"):
        at = app.projection(name).as_of(timestamp=t)
        assert dict(zip(at.account_id, at.balance)) == expected_balances(app, 10)
    assert app.as_of(timestamp=t).position == 10
    assert dict(zip(*(app.as_of(position=10).projection("balances")[c]
                      for c in ("account_id", "balance")))) == expected_balances(app, 10)


def test_as_of_leaves_tables_untouched(app: App) -> None:
    app.projection("balances").df()
    before = app.sql("SELECT * FROM balances ORDER BY account_id")
    app.projection("balances").as_of(position=5)
    assert app.sql("SELECT * FROM balances ORDER BY account_id").equals(before)


def test_catch_up_is_incremental_and_checkpointed(app: App) -> None:
    bank = app.model
    h = app.projection("balances")
    assert h.catch_up() == app.store.head_position
    app.handle(bank.commands["Deposit"](account_id="acc-0", amount=1000))
    assert h.checkpoint == app.store.head_position - 1
    df = h.df()
    assert h.checkpoint == app.store.head_position
    assert dict(zip(df.account_id, df.balance)) == expected_balances(app, app.store.head_position)
    assert str(app.sql("SELECT typeof(balance) AS t FROM balances LIMIT 1").t[0]) == "BIGINT"


def test_rebuild_gives_the_same_table(app: App) -> None:
    for name in ("balances", "totals"):
        first = app.projection(name).df().sort_values("account_id").reset_index(drop=True)
        assert app.projection(name).rebuild(progress=False) == app.store.head_position
        again = app.projection(name).df().sort_values("account_id").reset_index(drop=True)
        assert first.equals(again)


def test_failing_handler_in_raise_mode_keeps_table_and_checkpoint_consistent(app: App) -> None:
    bank = app.model
    calls = {"n": 0}

    @bank.projection("fragile", key="account_id")
    class Fragile(Projection):
        @applies("FundsDeposited")
        def dep(self, e, rec) -> None:
            calls["n"] += 1
            if rec.position == 30:
                raise RuntimeError("boom")
            row = self.rows.setdefault(rec.stream_id, {"account_id": rec.stream_id, "n": 0})
            row["n"] += 1

    runner = app.projections
    runner.flush_every = 1  # flush after every batch
    runner.on_error = "raise"
    with pytest.raises(ProjectionError, match="position 30"):
        app.projection("fragile").catch_up()
    cp = app.projection("fragile").checkpoint
    assert cp < 30
    stored = app.sql("SELECT sum(n) AS n FROM fragile").n[0] if cp else 0
    deposits_before = sum(1 for r in app.store.read_all(to_position=cp)
                          if r.type == "FundsDeposited")
    assert (stored or 0) == deposits_before


def test_python_projection_state_cache_is_reused(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    import allframe_lab.runtime.projections as proj_mod

    runner = app.projections
    head = app.store.head_position
    monkeypatch.setattr(runner, "_interval", lambda: 10)  # cache a state every 10 events
    runner.python_state("balances", head)
    assert runner._caches["balances"].positions[:3] == [10, 20, 30]

    read: list[int] = []
    real = proj_mod.iter_decoded

    def counting(store, decoder, start, stop, **kw):
        read.append(start)
        for batch in real(store, decoder, start, stop, **kw):
            read.extend(rec.position for _, rec in batch)
            yield batch

    monkeypatch.setattr(proj_mod, "iter_decoded", counting)
    assert runner.python_state("balances", head) is not None
    assert read == []  # the exact state is cached: no log read at all
    state = runner.python_state("balances", 25)
    assert read == [21, 21, 22, 23, 24, 25]  # folded from the state cached at 20, not from 1
    assert {k: r["balance"] for k, r in state.items()} == expected_balances(app, 25)


def test_many_jumps_keep_the_evenly_spaced_cached_states(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = app.projections
    head = app.store.head_position
    monkeypatch.setattr(runner, "_interval", lambda: 10)
    runner.python_state("balances", head)
    cache = runner._caches["balances"]
    marks = sorted(cache.marks)
    assert marks[:3] == [10, 20, 30]
    for p in [3, 17, 29, 41, 5, 33, 8, 12, 27, 39, 1, 44, 18, 2, 36]:  # more than the LRU holds
        state = runner.python_state("balances", min(p, head))
        assert {k: r["balance"] for k, r in state.items()} == expected_balances(app, min(p, head))
    assert sorted(cache.marks) == marks  # the marks survive; only recent positions rotate
    assert len(cache.recent) <= cache.max_recent
