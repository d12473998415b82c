"""The allframe-lab side of the benchmark: the peer's Account domain, datasets and scenarios.

The domain is the one of ``eventsourcing_side.py`` written the allframe-lab way: events
``Opened(owner, currency)`` and ``Deposited(amount, ref)``, commands ``Open``/``Deposit``, an
``Account`` aggregate with ``@applies``/``@handles``, a Python projection ``balances`` (the same
dict fold as the peer's scenario d) and SQL projections over the ``events`` table.

Apps use the defaults (``SystemClock``, ``RandomIds``): like the peer, every event gets a fresh
UUID4 and the current time.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from allframe_lab import (
    Aggregate,
    App,
    Command,
    Event,
    Model,
    NewEvent,
    Projection,
    applies,
    handles,
)
from allframe_lab.store import InMemoryEventStore

Timer = Callable[..., tuple[float, Any]]

# --------------------------------------------------------------------------- the domain
bank = Model("bank")


@bank.event("Opened")
class Opened(Event):
    owner: str
    currency: str = "EUR"


@bank.event("Deposited")
class Deposited(Event):
    amount: int
    ref: str


@bank.command("Open", stream="account_id", creates=True)
class Open(Command):
    account_id: str
    owner: str
    currency: str = "EUR"


@bank.command("Deposit", stream="account_id")
class Deposit(Command):
    account_id: str
    amount: int
    ref: str


@bank.aggregate("Account")
class Account(Aggregate):
    owner: str = ""
    currency: str = "EUR"
    balance: int = 0
    txn_count: int = 0
    last_ref: str = ""

    @applies("Opened")
    def _opened(self, e: Opened) -> None:
        self.owner = e.owner
        self.currency = e.currency

    @applies("Deposited")
    def _deposited(self, e: Deposited) -> None:
        self.balance += e.amount
        self.txn_count += 1
        self.last_ref = e.ref

    @handles("Open")
    def open(self, c: Open) -> Opened:
        return Opened(owner=c.owner, currency=c.currency)

    @handles("Deposit")
    def deposit(self, c: Deposit) -> Deposited:
        return Deposited(amount=c.amount, ref=c.ref)


@bank.projection("balances", key="stream_id")
class Balances(Projection):
    """The peer's scenario-d fold: owner, balance, event count and last type per account."""

    @applies("Opened")
    def _opened(self, e: Opened, rec: Any) -> None:
        self.rows[rec.stream_id] = {"stream_id": rec.stream_id, "owner": e.owner, "balance": 0,
                                    "n": 1, "last": "Opened"}

    @applies("Deposited")
    def _deposited(self, e: Deposited, rec: Any) -> None:
        row = self.rows[rec.stream_id]
        row["balance"] += e.amount
        row["n"] += 1
        row["last"] = "Deposited"


SQL_PER_STREAM = """
SELECT stream_id,
       count(*) AS n,
       arg_max(type, position) AS last_type,
       sum(coalesce(CAST(data->>'amount' AS BIGINT), 0)) AS balance
FROM events
GROUP BY stream_id
"""
SQL_PER_STREAM_LIGHT = """
SELECT stream_id, count(*) AS n, arg_max(type, position) AS last_type
FROM events
GROUP BY stream_id
"""
bank.sql_projection("per_stream", SQL_PER_STREAM,
                    description="count, last type and sum of data.amount per stream")
bank.sql_projection("per_stream_light", SQL_PER_STREAM_LIGHT,
                    description="count and last type per stream (no JSON)")
# per_stream over the payload column ``amount`` (a store opened with PAYLOAD_COLUMNS): the
# same result, read from a typed column instead of parsing every payload's JSON
PAYLOAD_COLUMNS = {"amount": "BIGINT"}
SQL_PER_STREAM_TYPED = """
SELECT stream_id,
       count(*) AS n,
       arg_max(type, position) AS last_type,
       sum(coalesce(amount, 0)) AS balance
FROM events
GROUP BY stream_id
"""
bank.sql_projection("per_stream_typed", SQL_PER_STREAM_TYPED,
                    description="per_stream over the payload column amount BIGINT")


def new_app(store: Any, **options: Any) -> App:
    return App(bank, store, **options)


def duckdb_store(path: str, **options: Any) -> Any:
    from allframe_lab.store import DuckDBEventStore

    return DuckDBEventStore(path, **options)


def _flush(app: App) -> None:
    """Move journaled events into the table (inside the timed run: the whole cost counts)."""
    flush = getattr(app.store, "flush", None)
    if flush is not None:
        flush()


# --------------------------------------------------------------------------- commands
def single_aggregate(app: App, n: int, timed: Timer) -> float:
    """a. One account, n Deposit commands through App.handle; returns events/s."""
    app.handle(Open(account_id="acc-1", owner="alice"))

    def run() -> None:
        handle = app.handle
        for i in range(n):
            handle(Deposit(account_id="acc-1", amount=i, ref="r"))
        _flush(app)

    dt, _ = timed(run)
    agg = app.load("Account", "acc-1")
    assert agg.version == n + 1 and agg.balance == n * (n - 1) // 2, agg
    return n / dt


def many_aggregates(app: App, n: int, timed: Timer) -> float:
    """b. n Open commands, one new account (stream) each; returns events/s."""

    def run() -> None:
        handle = app.handle
        for i in range(n):
            handle(Open(account_id=f"acc-{i}", owner=f"o{i}"))
        _flush(app)

    dt, _ = timed(run)
    assert app.store.head_position == n
    return n / dt


def handle_batch(app: App, commands: Sequence[Command]) -> None:
    """Run a batch of commands in one transaction with the public ``App.handle_many``."""
    app.handle_many(commands)


def single_aggregate_batched(app: App, n: int, batch: int, timed: Timer) -> float:
    app.handle(Open(account_id="acc-1", owner="alice"))

    def run() -> None:
        for lo in range(0, n, batch):
            handle_batch(app, [Deposit(account_id="acc-1", amount=i, ref="r")
                               for i in range(lo, min(lo + batch, n))])

    dt, _ = timed(run)
    agg = app.load("Account", "acc-1")
    assert agg.version == n + 1 and agg.balance == n * (n - 1) // 2, agg
    return n / dt


def many_aggregates_batched(app: App, n: int, batch: int, timed: Timer) -> float:
    def run() -> None:
        for lo in range(0, n, batch):
            handle_batch(app, [Open(account_id=f"acc-{i}", owner=f"o{i}")
                               for i in range(lo, min(lo + batch, n))])

    dt, _ = timed(run)
    assert app.store.head_position == n
    return n / dt


def duckdb_transaction_floor(path: str, n: int, timed: Timer) -> float:
    """DuckDB's own floor for scenario a: n one-row INSERT transactions, no allframe-lab code.

    The table has the events table's key shape (a primary key and a unique (stream, version)) and
    the row carries a ~100-byte payload. Returns rows/s: the most any one-transaction-per-command
    design on DuckDB can reach on this machine.
    """
    import duckdb

    con = duckdb.connect(path)
    con.execute("CREATE TABLE t (position BIGINT PRIMARY KEY, stream_id VARCHAR, "
                "version BIGINT, data VARCHAR, UNIQUE (stream_id, version))")
    payload = '{"amount": 1, "ref": "r"}' + " " * 75

    def run() -> None:
        execute = con.execute
        for i in range(1, n + 1):
            execute("INSERT INTO t VALUES (?, 'acc-1', ?, ?)", [i, i, payload])

    dt, _ = timed(run)
    con.close()
    return n / dt


# --------------------------------------------------------------------------- loading
def _meta(command: str) -> dict[str, str]:
    cid = str(uuid.uuid4())
    return {"command": command, "correlation_id": cid, "causation_id": cid}


def build_long_aggregate(store: Any, stream_id: str, n_events: int) -> None:
    """Opened + (n_events-1) Deposited(amount=1), appended 1,000 events per append, with the
    payloads and metadata App.handle would have written."""
    evs = [NewEvent("Opened", {"owner": "long", "currency": "EUR"}, metadata=_meta("Open"))]
    evs += [NewEvent("Deposited", {"amount": 1, "ref": f"r{i}"}, metadata=_meta("Deposit"))
            for i in range(n_events - 1)]
    for lo in range(0, n_events, 1_000):
        store.append(stream_id, evs[lo:lo + 1_000])
    assert store.stream_version(stream_id) == n_events


def load_times(app: App, stream_id: str, n_events: int, repeats: int,
               timed: Timer) -> dict[str, list[float]]:
    """c. App.load of the whole stream; e. App.load(version=n/2). No snapshot exists."""
    half = n_events // 2
    app.load("Account", stream_id)  # warm-up
    full, pit = [], []
    for _ in range(repeats):
        dt, a = timed(app.load, "Account", stream_id)
        assert a.version == n_events and a.balance == n_events - 1
        full.append(dt * 1000)
    for _ in range(repeats):
        dt, a = timed(app.load, "Account", stream_id, version=half)
        assert a.version == half and a.balance == half - 1
        pit.append(dt * 1000)
    return {"full_ms": full, "pit_ms": pit}


# --------------------------------------------------------------------------- datasets
_T0 = datetime(2024, 1, 1, tzinfo=UTC)


def peer_log_table(n_events: int) -> Any:
    """The peer's scenario-d log as Arrow: n/100 accounts, each Opened + 99 Deposited
    (amount=j, ref="x"), each account's 100 events together, App-style metadata."""
    import pyarrow as pa

    sids, types, data, meta = [], [], [], []
    for i in range(n_events // 100):
        sid = f"acc-{i:07d}"
        cid = str(uuid.uuid4())
        sids.append(sid)
        types.append("Opened")
        data.append(json.dumps({"owner": f"o{i}", "currency": "EUR"}, separators=(",", ":")))
        meta.append(f'{{"command":"Open","correlation_id":"{cid}","causation_id":"{cid}"}}')
        for j in range(99):
            cid = str(uuid.uuid4())
            sids.append(sid)
            types.append("Deposited")
            data.append(f'{{"amount":{j},"ref":"x"}}')
            meta.append(f'{{"command":"Deposit","correlation_id":"{cid}","causation_id":"{cid}"}}')
    n = len(sids)
    return pa.table({
        "stream_id": pa.array(sids, pa.string()),
        "type": pa.array(types, pa.string()),
        "data": pa.array(data, pa.string()),
        "occurred_at": _timestamps(n),
        "metadata": pa.array(meta, pa.string()),
    })


def big_log_table(n_events: int, n_streams: int, seed: int = 42) -> Any:
    """n_events over n_streams accounts, interleaved at random, ~100-byte JSON payloads;
    every account's first event is Opened, the others Deposited (amount, long ref)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_streams, size=n_events)
    idx[:n_streams] = rng.permutation(n_streams)  # every stream has at least one event
    first = np.zeros(n_events, dtype=bool)
    _, first_at = np.unique(idx, return_index=True)
    first[first_at] = True
    amounts = rng.integers(1, 10_000, size=n_events).tolist()
    names = [f"acc-{i:06d}" for i in range(n_streams)]
    sids = [names[i] for i in idx.tolist()]
    data = [
        f'{{"owner":"owner-{s}-{p:010d}-lorem-ipsum-dolor-sit-amet-consectetur",'
        '"currency":"EUR"}'
        if f else
        f'{{"amount":{a},"ref":"ref-{p:010d}-lorem-ipsum-dolor-sit-amet-consectetur-'
        'adipiscing-elit-sed-do"}'
        for p, (s, f, a) in enumerate(zip(sids, first.tolist(), amounts, strict=True))
    ]
    types = np.where(first, "Opened", "Deposited")
    return pa.table({
        "stream_id": pa.array(sids, pa.string()),
        "type": pa.array(types.tolist(), pa.string()),
        "data": pa.array(data, pa.string()),
        "occurred_at": _timestamps(n_events),
    })


def _timestamps(n: int) -> Any:
    import numpy as np
    import pyarrow as pa

    base = np.datetime64(_T0.replace(tzinfo=None), "us")
    ts = base + (np.arange(n, dtype=np.int64) * 1000).astype("timedelta64[us]")
    return pa.array(ts, pa.timestamp("us", tz="UTC"))


def memory_store_from(table: Any) -> InMemoryEventStore:
    store = InMemoryEventStore()
    store.append_arrow(table)
    return store


# --------------------------------------------------------------------------- folding
def plain_fold(app: App) -> dict[str, dict[str, Any]]:
    """d (plain): store.read_batches + app.decoder.decode + a dict fold, no projection
    machinery: the allframe-lab counterpart of the peer's loop."""
    decode = app.decoder.decode
    proj: dict[str, dict[str, Any]] = {}
    for batch in app.store.read_batches(batch_size=10_000):
        for rec in batch:
            ev = decode(rec)
            if type(ev) is Opened:
                proj[rec.stream_id] = {"owner": ev.owner, "balance": 0, "n": 1,
                                       "last": "Opened"}
            else:
                row = proj[rec.stream_id]
                row["balance"] += ev.amount
                row["n"] += 1
                row["last"] = "Deposited"
    return proj


def check_peer_fold(rows: dict[Any, dict[str, Any]], n_events: int) -> None:
    assert len(rows) == n_events // 100, len(rows)
    assert all(r["n"] == 100 and r["balance"] == 4851 for r in rows.values())


def rebuild_balances(app: App) -> int:
    """d (projection): app.projection("balances").rebuild() (folds and writes the table)."""
    return app.projection("balances").rebuild(progress=False)
