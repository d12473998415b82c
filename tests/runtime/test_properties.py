"""Property tests: replaying the same events gives the same state, with or without snapshots."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from allframe_lab import App, DomainError, InMemoryEventStore, ManualClock, SequentialIds
from tests.bank import make_bank

BANK = make_bank()
OPEN, DEPOSIT, WITHDRAW = (BANK.commands[n] for n in ("OpenAccount", "Deposit", "Withdraw"))

commands = st.lists(
    st.tuples(st.sampled_from(["open", "deposit", "withdraw"]), st.sampled_from("xyz"),
              st.integers(-5, 50)),
    max_size=40,
)


def run(ops, snapshot_every=None) -> App:
    app = App(BANK, InMemoryEventStore(), clock=ManualClock(datetime(2024, 1, 1,
              tzinfo=UTC)), ids=SequentialIds(), snapshot_every=snapshot_every)
    for kind, acc, amount in ops:
        try:
            if kind == "open":
                app.handle(OPEN(account_id=acc, owner=acc.upper()))
            elif kind == "deposit":
                app.handle(DEPOSIT(account_id=acc, amount=amount))
            else:
                app.handle(WITHDRAW(account_id=acc, amount=amount))
        except (DomainError, LookupError, RuntimeError):
            pass
    return app


@settings(max_examples=100, deadline=None)
@given(ops=commands, every=st.integers(1, 7))
def test_replay_is_deterministic_and_snapshots_agree(ops, every) -> None:
    plain = run(ops)
    snap = run(ops, snapshot_every=every)
    assert [(r.stream_id, r.version, r.type, dict(r.data), r.event_id)
            for r in plain.store.read_all()] == [
        (r.stream_id, r.version, r.type, dict(r.data), r.event_id)
        for r in snap.store.read_all()]
    for acc in "xyz":
        a = plain.load("Account", acc)
        b = plain.load("Account", acc)
        c = snap.load("Account", acc)
        d = snap.repository.load("Account", acc, use_snapshots=False)
        assert a.state() == b.state() == c.state() == d.state()
        assert a.version == c.version == d.version
        assert a.balance >= 0  # the invariant the handlers protect
