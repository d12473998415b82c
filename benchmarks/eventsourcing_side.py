"""The peer side of the benchmark: ``eventsourcing`` 9.5.6 (pyeventsourcing).

The domain and the scenarios follow the shared ``bench/eventsourcing_bench.py`` of the design
documents (the script that produced the figures in the performance-anchors note); only the
library's public API is used. Persistence is chosen with the library's environment keys,
passed through
``Application(env=...)``:

- POPO: ``PERSISTENCE_MODULE=eventsourcing.popo`` (in memory);
- SQLite: ``PERSISTENCE_MODULE=eventsourcing.sqlite`` and a file in a fresh temp dir (the library
  puts it in WAL mode).

The repository's aggregate cache is off (the library's default), so every ``save()`` of scenario
a works on the caller's aggregate object and every ``repository.get()`` replays the stream.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import version as pkg_version
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

PAGE = 1_000  # notifications per select_notifications() call, as in the peer script

VERSION = pkg_version("eventsourcing")


class Account(Aggregate):
    """The peer's aggregate: Opened (owner, currency) and Deposited (amount, ref)."""

    @event("Opened")
    def __init__(self, owner: str, currency: str = "EUR") -> None:
        self.owner = owner
        self.currency = currency
        self.balance = 0
        self.txn_count = 0
        self.last_ref = ""

    @event("Deposited")
    def deposit(self, amount: int, ref: str) -> None:
        self.balance += amount
        self.txn_count += 1
        self.last_ref = ref


class Bank(Application):
    """Snapshot store available, but no automatic snapshots (as in the peer script)."""

    is_snapshotting_enabled = True


class Backend:
    """POPO or SQLite; SQLite gets a new database file for every application."""

    def __init__(self, name: str, tmpdir: str) -> None:
        if name not in ("POPO", "SQLite"):
            raise ValueError(name)
        self.name = name
        self.tmpdir = tempfile.mkdtemp(prefix="es-", dir=tmpdir)
        self._n = 0

    def env(self) -> dict[str, str]:
        if self.name == "POPO":
            return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        self._n += 1
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": os.path.join(self.tmpdir, f"db{self._n}.sqlite"),
        }

    def new_app(self) -> Bank:
        return Bank(env=self.env())

    def cleanup(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def close(app: Application) -> None:
    try:
        app.close()
    except Exception:  # pragma: no cover - best effort
        pass


Timer = Callable[..., tuple[float, Any]]


# --------------------------------------------------------------------------- scenarios
def single_aggregate(backend: Backend, n: int, repeats: int, timed: Timer) -> list[float]:
    """a. One aggregate, n x (deposit + save): one event and one transaction per save."""
    rates = []
    for _ in range(repeats):
        app = backend.new_app()
        acc = Account(owner="alice")
        app.save(acc)

        def run(app: Bank = app, acc: Account = acc) -> None:
            for i in range(n):
                acc.deposit(amount=i, ref="r")
                app.save(acc)

        dt, _ = timed(run)
        assert acc.version == n + 1
        rates.append(n / dt)
        close(app)
    return rates


def many_aggregates(backend: Backend, n: int, repeats: int, timed: Timer) -> list[float]:
    """b. n aggregates, each created and saved once (one Opened event each)."""
    rates = []
    for _ in range(repeats):
        app = backend.new_app()

        def run(app: Bank = app) -> None:
            for i in range(n):
                app.save(Account(owner=f"o{i}"))

        dt, _ = timed(run)
        assert app.recorder.max_notification_id() == n
        rates.append(n / dt)
        close(app)
    return rates


def build_long_aggregate(app: Bank, n_events: int) -> UUID:
    """An aggregate with exactly n_events events, saved 1,000 events at a time."""
    acc = Account(owner="long")
    for i in range(n_events - 1):
        acc.deposit(amount=1, ref=f"r{i}")
        if (i + 1) % 1_000 == 0:
            app.save(acc)
    app.save(acc)
    assert acc.version == n_events
    return acc.id


def reconstruct(backend: Backend, n_events: int, repeats: int, timed: Timer) -> dict[str, Any]:
    """c. repository.get(id) of an n_events aggregate (no snapshot); e. get(id, version=n/2)."""
    app = backend.new_app()
    agg_id = build_long_aggregate(app, n_events)
    half = n_events // 2
    app.repository.get(agg_id)  # warm-up
    full, pit = [], []
    for _ in range(repeats):
        dt, a = timed(app.repository.get, agg_id)
        assert a.version == n_events and a.balance == n_events - 1
        full.append(dt * 1000)
    for _ in range(repeats):
        dt, a = timed(app.repository.get, agg_id, version=half)
        assert a.version == half and a.balance == half - 1
        pit.append(dt * 1000)
    close(app)
    return {"full_ms": full, "pit_ms": pit}


def build_log(app: Bank, n_events: int) -> None:
    """n_events events over n_events/100 aggregates (Opened + 99 Deposited(amount=j, ref="x")
    each), saved 10 aggregates per save() call: the log holds each aggregate's 100 events
    together."""
    n_aggs = n_events // 100
    batch = []
    for i in range(n_aggs):
        acc = Account(owner=f"o{i}")
        for j in range(99):
            acc.deposit(amount=j, ref="x")
        batch.append(acc)
        if len(batch) == 10:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)
    assert app.recorder.max_notification_id() == n_aggs * 100


def fold_log(backend: Backend, n_events: int, repeats: int, timed: Timer) -> dict[str, Any]:
    """d. Read all notifications (pages of 1,000), decode each with mapper.to_domain_event()
    and fold them into a dict projection keyed by aggregate id."""
    app = backend.new_app()
    dt_build, _ = timed(build_log, app, n_events)
    total = app.recorder.max_notification_id()
    mapper = app.mapper
    select = app.recorder.select_notifications

    def fold() -> dict:
        proj: dict = {}
        start = 1
        while True:
            page = select(start=start, limit=PAGE)
            if not page:
                break
            for n in page:
                ev = mapper.to_domain_event(n)
                if isinstance(ev, Account.Opened):
                    proj[ev.originator_id] = {
                        "owner": ev.owner, "balance": 0, "n": 1, "last": "Opened",
                    }
                else:  # Account.Deposited
                    row = proj[ev.originator_id]
                    row["balance"] += ev.amount
                    row["n"] += 1
                    row["last"] = "Deposited"
            start = page[-1].id + 1
        return proj

    rates = []
    for _ in range(repeats):
        dt, proj = timed(fold)
        assert len(proj) == total // 100
        assert all(r["n"] == 100 and r["balance"] == 4851 for r in proj.values())
        rates.append(total / dt)
    close(app)
    return {"fold_per_s": rates, "n": total, "build_s": dt_build}
