"""The App's aggregate cache is a bounded LRU: commands give the same results whatever its size,
the least recently used aggregate is the one dropped, and a dropped one is loaded again."""

from __future__ import annotations

import random

import pytest

from allframe_lab import App, DomainError
from allframe_lab.errors import ConcurrencyError
from allframe_lab.runtime.repository import DEFAULT_CACHE_SIZE
from allframe_lab.store import NO_STREAM, NewEvent
from tests.bank import make_bank


def cached(app: App) -> list[str]:
    """The cached Account streams, least recently used first."""
    return list(app.repository._cache.get("Account", {}))


def commands(bank, n_accounts: int, n: int, seed: int):
    rng = random.Random(seed)
    Open, Deposit, Withdraw = (bank.commands[c] for c in
                               ("OpenAccount", "Deposit", "Withdraw"))
    out = [Open(account_id=f"a{i}", owner=f"o{i}") for i in range(n_accounts)]
    for _ in range(n):
        acc = f"a{rng.randrange(n_accounts)}"
        if rng.random() < 0.7:
            out.append(Deposit(account_id=acc, amount=rng.randint(1, 50)))
        else:
            out.append(Withdraw(account_id=acc, amount=rng.randint(1, 80)))
    return out


def run(app: App, cmds) -> list[tuple[str, int] | str]:
    """What each command did: its events' (stream, version), or the refusal."""
    out: list[tuple[str, int] | str] = []
    for cmd in cmds:
        try:
            out.extend((r.stream_id, r.version) for r in app.handle(cmd))
        except DomainError as exc:
            out.append(f"refused: {exc}")
    return out


def test_the_default_is_bounded() -> None:
    app = App(make_bank(), _memory())
    assert app.repository.aggregate_cache_size == DEFAULT_CACHE_SIZE == 1_000
    assert "aggregate_cache_size=1000" in repr(app.repository)


@pytest.mark.parametrize("size", [0, 1, 3, None])
def test_commands_give_the_same_results_whatever_the_cache_size(store, size) -> None:
    bank = make_bank()
    cmds = commands(bank, n_accounts=8, n=300, seed=7)
    reference = App(bank, _memory(), aggregate_cache_size=None)
    app = App(bank, store, aggregate_cache_size=size)
    assert run(app, cmds) == run(reference, cmds)
    for i in range(8):
        got, want = app.load("Account", f"a{i}"), reference.load("Account", f"a{i}")
        assert (got.balance, got.deposits, got.version) == (want.balance, want.deposits,
                                                           want.version)
    expected = 8 if size is None else size
    assert len(cached(app)) == expected


def test_the_least_recently_used_aggregate_is_dropped() -> None:
    bank = make_bank()
    Open, Deposit = bank.commands["OpenAccount"], bank.commands["Deposit"]
    app = App(bank, _memory(), aggregate_cache_size=2)
    app.handle(Open(account_id="a", owner="ann"))
    app.handle(Open(account_id="b", owner="bob"))
    assert cached(app) == ["a", "b"]
    app.handle(Deposit(account_id="a", amount=5))  # a is now the most recently used
    assert cached(app) == ["b", "a"]
    app.handle(Open(account_id="c", owner="cy"))  # drops b
    assert cached(app) == ["a", "c"]
    app.handle(Deposit(account_id="b", amount=7))  # b comes back from the store, drops a
    assert cached(app) == ["c", "b"]
    b = app.repository.current("Account", "b")
    assert (b.owner, b.balance, b.version) == ("bob", 7, 2)


def test_a_dropped_aggregate_reloads_from_its_snapshot(store) -> None:
    bank = make_bank()
    Open, Deposit = bank.commands["OpenAccount"], bank.commands["Deposit"]
    app = App(bank, store, aggregate_cache_size=1, snapshot_every=10)
    app.handle(Open(account_id="a", owner="ann"))
    for _ in range(24):
        app.handle(Deposit(account_id="a", amount=1))
    app.handle(Open(account_id="b", owner="bob"))  # drops a
    assert cached(app) == ["b"]
    assert store.load_snapshot("a").version == 20
    app.handle(Deposit(account_id="a", amount=100))
    a = app.repository.current("Account", "a")
    assert (a.balance, a.deposits, a.version) == (124, 25, 26)


def test_a_stale_cached_aggregate_is_not_used_after_another_writer_appends() -> None:
    bank = make_bank()
    Open, Deposit = bank.commands["OpenAccount"], bank.commands["Deposit"]
    store = _memory()
    app = App(bank, store, aggregate_cache_size=4)
    app.handle(Open(account_id="a", owner="ann"))
    store.append("a", [NewEvent("FundsDeposited", {"amount": 40})], expected_version=1)
    app.handle(Deposit(account_id="a", amount=2))
    assert app.repository.current("Account", "a").balance == 42


def test_a_conflict_still_raises_with_a_small_cache() -> None:
    bank = make_bank()
    Open = bank.commands["OpenAccount"]
    app = App(bank, _memory(), aggregate_cache_size=0)
    app.handle(Open(account_id="a", owner="ann"))
    with pytest.raises(ConcurrencyError) as info:
        app.handle(Open(account_id="a", owner="again"))
    assert info.value.expected is NO_STREAM and info.value.actual == 1
    assert cached(app) == []


def test_a_batch_over_more_aggregates_than_the_cache_holds(store) -> None:
    bank = make_bank()
    Open, Deposit, Withdraw = (bank.commands[c] for c in
                               ("OpenAccount", "Deposit", "Withdraw"))
    app = App(bank, store, aggregate_cache_size=1)
    app.handle_many([Open(account_id=f"a{i}", owner="o") for i in range(4)])
    app.handle_many([Deposit(account_id=f"a{i}", amount=10 + i) for i in range(4)])
    before = store.head_position
    with pytest.raises(DomainError):  # the last command is refused: nothing is written
        app.handle_many([Deposit(account_id="a0", amount=5), Deposit(account_id="a1", amount=5),
                         Withdraw(account_id="a2", amount=1_000)])
    assert store.head_position == before
    assert [app.load("Account", f"a{i}").balance for i in range(4)] == [10, 11, 12, 13]
    app.handle(Deposit(account_id="a0", amount=1))
    assert app.repository.current("Account", "a0").balance == 11


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_a_bad_cache_size_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="aggregate_cache_size must be an int >= 0"):
        App(make_bank(), _memory(), aggregate_cache_size=bad)


def _memory():
    from allframe_lab.store import InMemoryEventStore

    return InMemoryEventStore()
