#!/usr/bin/env python3
"""allframe-lab benchmarks, side by side with ``eventsourcing`` 9.5.6 in the same run.

Usage::

    .venv/bin/python benchmarks/run.py                  # full run (make bench), ~10 min
    .venv/bin/python benchmarks/run.py --quick          # scaled-down smoke run, < 1 min
    .venv/bin/python benchmarks/run.py --only a,c,sql_rebuild
    .venv/bin/python benchmarks/run.py --list

Both libraries run in this one process, so they share the interpreter and its mode (``-O`` or
not: the JSON's ``env.python_mode`` says which); the peak-RSS scenario runs in a child process
started with the same interpreter and flags. Every figure is the median of several repeats;
the JSON keeps every sample. See ``benchmarks/README.md`` for the scenarios and the JSON shape.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from _results import (  # noqa: E402
    Row,
    Target,
    environment,
    format_table,
    row_json,
    run_isolated,
    write_results,
)
from _timing import LAST_GC, gc_summary, timed  # noqa: E402

SCHEMA = "allframe-lab-bench/1"

SCENARIOS: dict[str, str] = {
    "a": "one aggregate, N commands (App.handle each) vs eventsourcing save() each",
    "b": "N aggregates, one event each",
    "c": "load an aggregate of N events, no snapshot",
    "d": "read + decode + fold the log into a Python projection",
    "e": "aggregate as of version N/2 (of N)",
    "bulk_arrow": "DuckDBEventStore.append_arrow, 1M events, 10k streams, ~100-byte JSON",
    "bpic2012": "BPIC 2012 import (allframe_lab.io.import_log), parse + store",
    "sql_rebuild": "SQL projection rebuild over 1M events",
    "asof": "projection(name).as_of(position=...) over 1M events, random positions",
    "peak_rss": "peak RSS of a Python projection rebuild over 1M events (fresh subprocess)",
    "upcast": "replay 1M events stored at v1, upcast to v3 on read, vs the log stored at v3",
    "time_travel": "time-travel widget step/jump/reopen latency on BPIC 2012 (kernel-side)",
    "cqrs": "command bus overhead, dispatch_many into DuckDB, append -> projection visible",
}


@dataclass(frozen=True)
class Params:
    n_cmd: int = 20_000          # a, b: commands
    cmd_repeats: int = 3
    batch: int = 100             # a, b batched rows: commands per transaction
    n_recon: int = 10_000        # c, e: events in the long aggregate
    recon_repeats: int = 5
    n_log: int = 100_000         # d: events, compared with the peer
    n_log_big: int = 1_000_000   # d: events, allframe-lab only
    fold_repeats: int = 3
    n_big: int = 1_000_000       # bulk_arrow, sql_rebuild, asof, peak_rss
    n_streams: int = 10_000
    bulk_repeats: int = 3
    sql_repeats: int = 5
    asof_queries: int = 25
    bpic_repeats: int = 3


CMD_BUDGET_S = 240  # a, b: start no new repeat after this many seconds

FULL = Params()
QUICK = Params(n_cmd=1_000, cmd_repeats=2, n_recon=2_000, recon_repeats=3, n_log=10_000,
               n_log_big=50_000, fold_repeats=2, n_big=50_000, n_streams=500, bulk_repeats=2,
               sql_repeats=3, asof_queries=10, bpic_repeats=1)


def size_label(n: int) -> str:
    """100000 -> '100k', 1000000 -> '1M' (for row ids)."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def log(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


class Context:
    """Shared state of one run: parameters, temp dir, and the 1M-event DuckDB file."""

    def __init__(self, params: Params, quick: bool, tmp: str) -> None:
        self.p = params
        self.quick = quick
        self.tmp = tmp
        self._n = 0
        self._big_db: str | None = None

    def path(self, stem: str) -> str:
        self._n += 1
        return os.path.join(self.tmp, f"{stem}-{self._n}.duckdb")

    def big_table(self) -> Any:
        import allframe_side as af

        return af.big_log_table(self.p.n_big, self.p.n_streams)

    def set_big_db(self, path: str) -> None:
        self._big_db = path

    def big_db(self) -> str:
        """A closed DuckDB store file holding the 1M-event dataset (built once)."""
        if self._big_db is None:
            import allframe_side as af

            log(f"building the {self.p.n_big:,}-event dataset (append_arrow, untimed)")
            path = self.path("big")
            store = af.duckdb_store(path)
            store.append_arrow(self.big_table())
            store.close()
            self._big_db = path
        return self._big_db


# --------------------------------------------------------------------------- scenarios
def scen_a_b(ctx: Context, which: str) -> list[Row]:
    """a/b: App.handle per command (memory, DuckDB file) vs eventsourcing save() per event."""
    import allframe_side as af
    import eventsourcing_side as es

    p = ctx.p
    if which == "a":
        title = f"one aggregate, {p.n_cmd:,} commands (App.handle each)"
        es_fn, af_fn, af_batched = es.single_aggregate, af.single_aggregate, \
            af.single_aggregate_batched
    else:
        title = f"{p.n_cmd:,} aggregates, one event each (App.handle each)"
        es_fn, af_fn, af_batched = es.many_aggregates, af.many_aggregates, \
            af.many_aggregates_batched
    popo, sqlite = es.Backend("POPO", ctx.tmp), es.Backend("SQLite", ctx.tmp)
    mem = Row(f"{which}.memory", which, title, "InMemoryEventStore vs eventsourcing POPO",
              "events/s", "higher", samples=[], peer={"name": "eventsourcing POPO", "samples": []},
              target=Target("≥ 3x eventsourcing POPO", "ratio", ">=", 3.0))
    duck = Row(f"{which}.duckdb", which, title,
               "DuckDBEventStore file (default: journal, fdatasync per command) vs "
               "eventsourcing SQLite file (WAL, synchronous=FULL)",
               "events/s", "higher", samples=[],
               peer={"name": "eventsourcing SQLite", "samples": []},
               target=Target("≥ 1x eventsourcing SQLite", "ratio", ">=", 1.0))
    direct = Row(f"{which}.duckdb_direct", which, title,
                 "SEPARATE ROW: DuckDBEventStore file, journal=False: 1 command = 1 DuckDB "
                 "transaction, vs eventsourcing SQLite",
                 "events/s", "higher", samples=[],
                 peer={"name": "eventsourcing SQLite", "samples": duck.peer["samples"]})
    batched = Row(f"{which}.duckdb_batched", which, title,
                  f"SEPARATE ROW: DuckDBEventStore file, {p.batch} commands per transaction "
                  "(store.append_many) vs eventsourcing SQLite (1 save each)",
                  "events/s", "higher", samples=[],
                  peer={"name": "eventsourcing SQLite", "samples": duck.peer["samples"]})
    # b only (a has one aggregate): the App as it was before its aggregate cache had a bound
    unbounded = [Row(f"{which}.memory.unbounded_cache", which, title,
                     "SEPARATE ROW: InMemoryEventStore, App(aggregate_cache_size=None): every "
                     "aggregate stays cached, vs eventsourcing POPO",
                     "events/s", "higher", samples=[],
                     peer={"name": "eventsourcing POPO", "samples": mem.peer["samples"]},
                     gc={"allframe-lab": []})
                 ] if which == "b" else []
    floors = [Row(f"{which}.duckdb_floor.{kind}", which, title,
                  f"SEPARATE ROW: DuckDB alone, {p.n_cmd:,} one-row INSERT transactions "
                  f"({kind}, events-table keys, no allframe-lab code) vs eventsourcing SQLite",
                  "rows/s", "higher", samples=[],
                  peer={"name": "eventsourcing SQLite", "samples": duck.peer["samples"]})
              for kind in ("file", "in-memory database")] if which == "a" else []
    gc_of: dict[str, list[dict[str, Any]]] = {"allframe-lab": [], "eventsourcing": []}
    mem.gc = gc_of
    t0 = time.perf_counter()
    try:
        for rep in range(p.cmd_repeats):
            if rep and time.perf_counter() - t0 > CMD_BUDGET_S:
                for r in (mem, *unbounded, duck, direct, batched, *floors):
                    r.note = (f"only {rep} of {p.cmd_repeats} repeats: the scenario's time "
                              f"budget ({CMD_BUDGET_S} s) ran out; ")
                break
            log(f"{which}: repeat {rep + 1}/{p.cmd_repeats}")
            mem.peer["samples"] += es_fn(popo, p.n_cmd, 1, timed)
            gc_of["eventsourcing"].append(gc_summary(LAST_GC, p.n_cmd / mem.peer["samples"][-1]))
            app = af.new_app(af.InMemoryEventStore())
            mem.samples.append(af_fn(app, p.n_cmd, timed))
            gc_of["allframe-lab"].append(gc_summary(LAST_GC, p.n_cmd / mem.samples[-1]))
            for row in unbounded:
                app = af.new_app(af.InMemoryEventStore(), aggregate_cache_size=None)
                row.samples.append(af_fn(app, p.n_cmd, timed))
                row.gc["allframe-lab"].append(gc_summary(LAST_GC, p.n_cmd / row.samples[-1]))
            duck.peer["samples"] += es_fn(sqlite, p.n_cmd, 1, timed)
            app = af.new_app(af.duckdb_store(ctx.path(f"{which}-duck")))
            duck.samples.append(af_fn(app, p.n_cmd, timed))
            app.close()
            app = af.new_app(af.duckdb_store(ctx.path(f"{which}-direct"), journal=False))
            direct.samples.append(af_fn(app, p.n_cmd, timed))
            app.close()
            app = af.new_app(af.duckdb_store(ctx.path(f"{which}-batched")))
            batched.samples.append(af_batched(app, p.n_cmd, p.batch, timed))
            app.close()
            for floor in floors:
                where = ctx.path(f"{which}-floor") if "file" in floor.id else ":memory:"
                floor.samples.append(af.duckdb_transaction_floor(where, p.n_cmd, timed))
    finally:
        popo.cleanup()
        sqlite.cleanup()
    mem.note += ("App keeps the latest aggregate in memory (repository cache); eventsourcing's "
                "repository cache is off by default" + (
                    ", but in a the caller keeps and re-saves its aggregate object, so neither "
                    "side reloads" if which == "a" else "; in b every stream is new"))
    full = {side: [s["gen2"] for s in runs] for side, runs in gc_of.items()}
    mem.note += "; full (generation 2) garbage collections inside the timed runs: " + ", ".join(
        f"{side} {sum(g['count'] for g in gens)} in {len(gens)} runs "
        f"({sum(g['ms'] for g in gens):.0f} ms)" for side, gens in full.items())
    duck.note += ("an append commits by one write + fdatasync of the store's journal; the "
                 "journaled events move into the DuckDB table 2,000 at a time, and the last "
                 "move is inside the timed run")
    direct.note += ("DuckDB commit ~0.4-1 ms: one DuckDB transaction per command tops out near "
                   "1,000/s on this machine class; no target")
    batched.note += ("App.handle_many: 100 commands per call, one transaction each "
                    "(all or nothing); not the target row")
    for floor in floors:
        floor.note = ("the ceiling of any one-transaction-per-command design on DuckDB (the "
                      "'direct' rows); the journal exists because it is below eventsourcing "
                      "SQLite; no target")
    for row in unbounded:
        gens = [s["gen2"] for s in row.gc["allframe-lab"]]
        row.note = (f"the default bound (App(aggregate_cache_size=1000)) drops the aggregates "
                    f"of b's new streams, none of which a later command touches; with every "
                    f"one kept, {sum(g['count'] for g in gens)} full garbage collections in "
                    f"{len(gens)} runs ({sum(g['ms'] for g in gens):.0f} ms); no target")
    return [mem.finish(), *(r.finish() for r in unbounded), duck.finish(), direct.finish(),
            batched.finish(), *(f.finish() for f in floors)]


def scen_c_e(ctx: Context, selected: set[str]) -> list[Row]:
    """c: App.load of a 10,000-event aggregate; e: App.load(version=5,000). No snapshots."""
    import allframe_side as af
    import eventsourcing_side as es

    p = ctx.p
    n, half = p.n_recon, p.n_recon // 2
    rows: dict[str, Row] = {}
    for kind, peer_name, backend in (("memory", "POPO", "POPO"),
                                     ("duckdb", "SQLite", "SQLite")):
        store_desc = "InMemoryEventStore" if kind == "memory" else "DuckDBEventStore file"
        rows[f"c.{kind}"] = Row(
            f"c.{kind}", "c", f"load an aggregate of {n:,} events, no snapshot (App.load)",
            f"{store_desc} vs eventsourcing {peer_name} repository.get()", "ms", "lower",
            peer={"name": f"eventsourcing {peer_name}"},
            target=Target("≤ 1/10 of eventsourcing's time", "ratio", "<=", 0.1))
        rows[f"e.{kind}"] = Row(
            f"e.{kind}", "e", f"aggregate as of version {half:,} of {n:,} (App.load(version=))",
            f"{store_desc} vs eventsourcing {peer_name} repository.get(version=)", "ms",
            "lower", peer={"name": f"eventsourcing {peer_name}"},
            target=Target("≤ 1/10 of eventsourcing's time", "ratio", "<=", 0.1))
        log(f"c/e: eventsourcing {peer_name}")
        be = es.Backend(backend, ctx.tmp)
        try:
            r = es.reconstruct(be, n, p.recon_repeats, timed)
        finally:
            be.cleanup()
        rows[f"c.{kind}"].peer["samples"] = r["full_ms"]
        rows[f"e.{kind}"].peer["samples"] = r["pit_ms"]
        log(f"c/e: allframe-lab {kind}")
        store = af.InMemoryEventStore() if kind == "memory" else af.duckdb_store(
            ctx.path("long"))
        af.build_long_aggregate(store, "acc-long", n)
        app = af.new_app(store)
        r = af.load_times(app, "acc-long", n, p.recon_repeats, timed)
        app.close()
        rows[f"c.{kind}"].samples = r["full_ms"]
        rows[f"e.{kind}"].samples = r["pit_ms"]
        rows[f"c.{kind}"].note = rows[f"e.{kind}"].note = (
            "one warm-up call, then the median of the timed calls; streams built with "
            "App-style payloads and metadata")
    return [r.finish() for key, r in rows.items() if key.split(".")[0] in selected]


def scen_d(ctx: Context) -> list[Row]:
    """d: read + decode + fold; Projection rebuild and a plain read_batches fold."""
    import allframe_side as af
    import eventsourcing_side as es

    p = ctx.p
    n = p.n_log
    out: list[Row] = []
    peer_rates: dict[str, list[float]] = {}
    for name in ("POPO", "SQLite"):
        log(f"d: eventsourcing {name}, build + fold {n:,} events")
        be = es.Backend(name, ctx.tmp)
        try:
            peer_rates[name] = es.fold_log(be, n, p.fold_repeats, timed)["fold_per_s"]
        finally:
            be.cleanup()
    table = af.peer_log_table(n)
    target = Target("≥ 3x eventsourcing", "ratio", ">=", 3.0)
    for kind, peer_name in (("memory", "POPO"), ("duckdb", "SQLite")):
        log(f"d: allframe-lab {kind}, {n:,} events")
        if kind == "memory":
            store: Any = af.memory_store_from(table)
            desc = "InMemoryEventStore"
        else:
            store = af.duckdb_store(ctx.path("d"))
            store.append_arrow(table)
            desc = "DuckDBEventStore file"
        app = af.new_app(store)
        rebuild, plain = [], []
        for _ in range(p.fold_repeats):
            dt, _ = timed(af.rebuild_balances, app)
            rebuild.append(n / dt)
            dt, rows = timed(af.plain_fold, app)
            af.check_peer_fold(rows, n)
            plain.append(n / dt)
        proj = app.projection("balances").df(refresh=False)
        af.check_peer_fold(proj.set_index("stream_id").to_dict("index"), n)
        app.close()
        peer = {"name": f"eventsourcing {peer_name}", "samples": peer_rates[peer_name]}
        title = f"read + decode + fold {n:,} events"
        out.append(Row(
            f"d.{size_label(n)}.{kind}.projection", "d", title,
            f"{desc}: app.projection('balances').rebuild() (Projection subclass, writes its "
            f"table) vs eventsourcing {peer_name} select_notifications + to_domain_event + "
            "dict fold", "events/s", "higher", samples=rebuild, peer=dict(peer), target=target,
            note="rebuild = fold + write the 1 row/account table + checkpoint").finish())
        out.append(Row(
            f"d.{size_label(n)}.{kind}.plain", "d", title,
            f"{desc}: store.read_batches + app.decoder.decode + dict fold vs eventsourcing "
            f"{peer_name} (same loop)", "events/s", "higher", samples=plain,
            peer=dict(peer), target=target).finish())
        del store, app, proj
    # 1M events: allframe-lab only (DuckDB), rate compared with the peer's rate at n.
    nb = p.n_log_big
    log(f"d: allframe-lab duckdb, {nb:,} events")
    table = af.peer_log_table(nb)
    store = af.duckdb_store(ctx.path("d-big"))
    store.append_arrow(table)
    del table
    app = af.new_app(store)
    rebuild = []
    for _ in range(p.fold_repeats):
        dt, _ = timed(af.rebuild_balances, app)
        rebuild.append(nb / dt)
    proj = app.projection("balances").df(refresh=False)
    af.check_peer_fold(proj.set_index("stream_id").to_dict("index"), nb)
    app.close()
    out.append(Row(
        f"d.{size_label(nb)}.duckdb.projection", "d", f"read + decode + fold {nb:,} events",
        "DuckDBEventStore file: app.projection('balances').rebuild() vs eventsourcing SQLite's "
        f"events/s at {n:,} events", "events/s", "higher", samples=rebuild,
        peer={"name": f"eventsourcing SQLite (measured at {n:,} events)",
              "samples": peer_rates["SQLite"]}, target=target,
        note=(f"eventsourcing not run at {nb:,} events (building its log through save() would "
              f"take minutes); its per-event rate at {n:,} is the reference")).finish())
    return out


def scen_bulk(ctx: Context) -> list[Row]:
    import allframe_side as af

    p = ctx.p
    log(f"bulk_arrow: generating {p.n_big:,} events (untimed)")
    table = ctx.big_table()
    rates, last = [], None
    for rep in range(p.bulk_repeats):
        log(f"bulk_arrow: repeat {rep + 1}/{p.bulk_repeats}")
        last = ctx.path("bulk")
        store = af.duckdb_store(last)
        dt, n = timed(store.append_arrow, table)
        assert n == p.n_big and store.head_position == p.n_big
        store.close()
        rates.append(n / dt)
    mb = os.path.getsize(last) / 1e6 if last else 0.0
    ctx.set_big_db(last)
    return [Row("bulk_arrow", "bulk_arrow",
                f"bulk append from Arrow, {p.n_big:,} events, {p.n_streams:,} streams, "
                "~100-byte JSON", "DuckDBEventStore file (fresh), append_arrow, one transaction",
                "events/s", "higher", samples=rates,
                target=Target("≥ 400,000 events/s", "absolute", ">=", 400_000),
                note=f"file size after the append: {mb:,.0f} MB").finish()]


def scen_bpic(ctx: Context) -> list[Row]:
    import allframe_side as af

    row = Row("bpic2012", "bpic2012", "BPIC 2012 import, parse + store",
              "import_log(dataset_path('bpic2012'), DuckDBEventStore file)", "s", "lower",
              target=Target("≤ 3 s", "absolute", "<=", 3.0))
    try:
        from allframe_lab.io import dataset_path, import_log
    except Exception as exc:  # another engineer is writing allframe_lab/io
        row.status = "skipped"
        row.note = f"skipped: io not available ({type(exc).__name__}: {exc})"
        return [row.finish()]
    import inspect

    path = dataset_path("bpic2012")
    kwargs = {"progress": False} if "progress" in inspect.signature(import_log).parameters \
        else {}
    row.samples = []
    events, parse, stored = 0, [], []
    for rep in range(ctx.p.bpic_repeats):
        log(f"bpic2012: repeat {rep + 1}/{ctx.p.bpic_repeats}")
        store = af.duckdb_store(ctx.path("bpic"))
        dt, result = timed(import_log, path, store, **kwargs)
        events = store.head_position
        store.close()
        row.samples.append(dt)
        if hasattr(result, "parse_seconds") and hasattr(result, "store_seconds"):
            parse.append(result.parse_seconds)
            stored.append(result.store_seconds)
        if dt > 20:  # too slow to repeat within the run's time budget
            row.note = "stopped repeating: one import took more than 20 s; "
            break
    row.note += f"{events:,} events imported from {Path(path).name}"
    if parse:
        row.note += (f"; import_log's own split (medians): parse {statistics.median(parse):.2f} s"
                     f", store {statistics.median(stored):.2f} s")
    return [row.finish()]


def typed_big_db(ctx: Context) -> tuple[str, float]:
    """A copy of the 1M-event file opened once with ``payload_columns={"amount": "BIGINT"}``
    (the open adds the column and backfills it: untimed, returned in seconds), built once."""
    import allframe_side as af

    cached = getattr(ctx, "_typed_db", None)
    if cached is None:
        src = ctx.big_db()
        path = ctx.path("big-typed")
        shutil.copyfile(src, path)
        log("payload column amount: backfilling a copy of the 1M-event file (untimed)")
        dt, store = timed(af.duckdb_store, path, payload_columns=af.PAYLOAD_COLUMNS)
        store.close()
        cached = ctx._typed_db = (path, dt)  # type: ignore[attr-defined]
    return cached


def scen_sql_rebuild(ctx: Context) -> list[Row]:
    import allframe_side as af

    p = ctx.p
    path = ctx.big_db()
    store = af.duckdb_store(path)
    app = af.new_app(store)
    out = []
    for name, desc, target in (
        ("per_stream", "GROUP BY stream_id: count, arg_max(type, position), sum(data->>'amount')",
         Target("≤ 0.5 s", "absolute", "<=", 0.5)),
        ("per_stream_light", "GROUP BY stream_id: count, arg_max(type, position) (no JSON)",
         None),
        ("per_stream_typed", "per_stream with sum(coalesce(amount, 0)) over the payload column "
         "amount BIGINT", None),
    ):
        if name == "per_stream_typed":
            app.close()
            typed_path, backfill = typed_big_db(ctx)
            app = af.new_app(af.duckdb_store(typed_path))  # the payload column is remembered
        log(f"sql_rebuild: {name}")
        handle = app.projection(name)
        handle.rebuild()  # warm-up
        times = []
        for _ in range(p.sql_repeats):
            dt, head = timed(handle.rebuild)
            assert head == p.n_big
            times.append(dt)
        n_rows = len(handle.df(refresh=False))
        assert n_rows == p.n_streams, n_rows
        note = f"materialized as a {n_rows:,}-row table + checkpoint"
        if name == "per_stream_typed":
            note += f"; adding + backfilling the column at open took {backfill:.2f} s (untimed)"
        out.append(Row(f"sql_rebuild.{name}", "sql_rebuild",
                       f"SQL projection rebuild over {p.n_big:,} events",
                       f"app.projection('{name}').rebuild(): {desc}", "s", "lower",
                       samples=times, target=target, note=note).finish())
    app.close()
    return out


def scen_asof(ctx: Context) -> list[Row]:
    import allframe_side as af

    p = ctx.p
    path = ctx.big_db()
    store = af.duckdb_store(path)
    app = af.new_app(store)
    rng = random.Random(20240101)
    positions = [rng.randint(1, p.n_big) for _ in range(p.asof_queries)]
    target = Target("≤ 30 ms", "absolute", "<=", 30.0)
    out = []
    for name, desc in (
        ("per_stream", "SQL projection: count, last type, sum(data->>'amount') per stream"),
        ("per_stream_light", "SQL projection: count, last type per stream (no JSON)"),
        ("balances", "Python projection (Projection subclass), folded from the runner's "
                     "cached intermediate states"),
        ("per_stream_typed", "per_stream with sum(coalesce(amount, 0)) over the payload "
                             "column amount BIGINT (store opened with payload_columns)"),
    ):
        if name == "per_stream_typed":
            app.close()
            typed_path, backfill = typed_big_db(ctx)
            app = af.new_app(af.duckdb_store(typed_path))  # the payload column is remembered
        log(f"asof: {name}")
        handle = app.projection(name)
        cold, _ = timed(handle.as_of, position=rng.randint(1, p.n_big))  # warm-up
        times = []
        for pos in positions:
            dt, df = timed(handle.as_of, position=pos)
            assert len(df) <= p.n_streams
            times.append(dt * 1000)
        note = f"{len(positions)} random positions (seeded), DataFrame result"
        if name == "balances":
            note += (f"; the first (warm-up) call folded from position 0 and took "
                     f"{cold * 1000:,.0f} ms")
        if name == "per_stream_typed":
            note += f"; adding + backfilling the column at open took {backfill:.2f} s (untimed)"
        out.append(Row(f"asof.{name}", "asof",
                       f"projection as of a random position over {p.n_big:,} events",
                       f"app.projection('{name}').as_of(position=p): {desc}", "ms", "lower",
                       samples=times, target=target, note=note).finish())
        if name == "per_stream":
            out.append(duckdb_asof_floor(store.connection, af.SQL_PER_STREAM, positions))
    app.close()
    return out


def duckdb_asof_floor(con: Any, sql: str, positions: list[int]) -> Row:
    """The per_stream as-of query sent to DuckDB alone: the same SQL over the same file and
    positions, fetched into a DataFrame, with no allframe-lab code (the floor of that row)."""
    query = f"WITH events AS (SELECT * FROM events WHERE position <= ?) SELECT * FROM ({sql})"
    con.execute(query, [positions[0]]).df()  # warm-up
    times = []
    for pos in positions:
        dt, _ = timed(lambda pos=pos: con.execute(query, [pos]).df())
        times.append(dt * 1000)
    return Row("asof.per_stream.duckdb_floor", "asof",
               "projection as of a random position over the same events",
               "SEPARATE ROW: the per_stream SQL with position <= p, run by DuckDB alone "
               "(duckdb connection .execute().df(), no allframe-lab code)", "ms", "lower",
               samples=times,
               note="what DuckDB itself takes to parse the payload JSON of every event up to "
                    "p on this machine; no target").finish()


def scen_upcast(ctx: Context) -> list[Row]:
    """upcast: see benchmarks/upcasting.py (also runnable on its own)."""
    import upcasting

    rows = upcasting.measure(ctx.p.n_big, 2 if ctx.quick else 3, ctx.tmp, log)
    return [Row.from_dict(r).finish()
            for r in rows]


def scen_time_travel(ctx: Context) -> list[Row]:
    """time_travel: see benchmarks/time_travel.py (also runnable on its own)."""
    import time_travel

    report = time_travel.measure(quick=ctx.quick, tmp=ctx.tmp)
    return [Row.from_dict(r).finish()
            for r in time_travel.run_rows(report)]


def scen_cqrs(ctx: Context) -> list[Row]:
    """cqrs: see benchmarks/cqrs.py (also runnable on its own)."""
    import cqrs

    rows = cqrs.measure(ctx.quick, ctx.tmp, log)
    return [Row.from_dict(r).finish()
            for r in rows]


def scen_peak_rss(ctx: Context) -> list[Row]:
    p = ctx.p
    path = ctx.big_db()
    flags = ["-O"] * sys.flags.optimize
    samples, info = [], {}
    for rep in range(2 if not ctx.quick else 1):
        log(f"peak_rss: child process {rep + 1}")
        proc = subprocess.run([sys.executable, *flags, str(Path(__file__).resolve()),
                               "--child-rss", path], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"child failed ({proc.returncode}): {proc.stderr[-2000:]}")
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        assert info["events"] == p.n_big
        samples.append(info["peak_rss_mb"])
    return [Row("peak_rss", "peak_rss", f"peak RSS replaying {p.n_big:,} events",
                "fresh subprocess: open the DuckDB file, app.projection('balances').rebuild()",
                "MB", "lower", samples=samples,
                target=Target("≤ 500 MB", "absolute", "<=", 500.0),
                note=(f"peak = VmHWM of the child (ru_maxrss {info['ru_maxrss_mb']:,.0f} MB); "
                      f"RSS after imports {info['rss_after_imports_mb']:,.0f} MB; rebuild took "
                      f"{info['seconds']:.1f} s, {info['rows']:,} rows")).finish()]


def child_rss(path: str) -> None:
    """Run in a fresh interpreter: rebuild the Python projection and report memory."""
    import resource

    def vm(key: str) -> float:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith(key + ":"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    import allframe_side as af

    from allframe_lab.store import DuckDBEventStore

    after_imports = vm("VmRSS")
    app = af.new_app(DuckDBEventStore(path))
    t0 = time.perf_counter()
    head = app.projection("balances").rebuild(progress=False)
    seconds = time.perf_counter() - t0
    rows = len(app.projection("balances").df(refresh=False))
    app.close()
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    hwm = vm("VmHWM")
    print(json.dumps({"peak_rss_mb": hwm if hwm == hwm else ru, "ru_maxrss_mb": ru,
                      "rss_after_imports_mb": after_imports, "events": head,
                      "seconds": seconds, "rows": rows}))


# --------------------------------------------------------------------------- driver
NOTES = [
    "Both libraries run in the same process and Python mode; ratios are allframe-lab / "
    "eventsourcing of the same unit, measured side by side in this run (repeats alternate). "
    "Each scenario group runs in a fresh interpreter (--in-process: all in one).",
    "App keeps the latest aggregate of each stream in memory (its repository cache); "
    "eventsourcing's repository cache is off by default.",
    "eventsourcing replays (c, e) run ~3x faster under python -O (a per-event assert "
    "isinstance against a runtime-checkable Protocol); run this script with -O to compare "
    "both sides in that mode.",
    "DuckDB durable rows: an append is committed by one fdatasync'd write to the store's "
    "journal (eventsourcing SQLite: WAL, synchronous=FULL, one fsync per commit). The "
    "'direct' rows (journal=False: one DuckDB transaction per command) and 'batched' rows "
    "(100 commands per App.handle_many) are separate and carry no target.",
]


def run(selected: list[str], params: Params, quick: bool, isolate: bool = True
        ) -> dict[str, Any]:
    tmp = tempfile.mkdtemp(prefix="allframe-bench-")
    ctx = Context(params, quick, tmp)
    rows: list[Row] = []
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    plan: list[tuple[str, Callable[[], list[Row]]]] = []
    chosen = set(selected)
    for key in ("a", "b"):
        if key in chosen:
            plan.append((key, lambda k=key: scen_a_b(ctx, k)))
    if chosen & {"c", "e"}:
        plan.append(("c,e", lambda: scen_c_e(ctx, chosen)))
    table: dict[str, Callable[[Context], list[Row]]] = {
        "d": scen_d, "bulk_arrow": scen_bulk, "bpic2012": scen_bpic,
        "sql_rebuild": scen_sql_rebuild, "asof": scen_asof, "peak_rss": scen_peak_rss,
        "upcast": scen_upcast, "time_travel": scen_time_travel, "cqrs": scen_cqrs,
    }
    for key, fn in table.items():
        if key in chosen:
            plan.append((key, lambda fn=fn: fn(ctx)))
    if isolate and len(plan) > 1:  # each group in a fresh interpreter (see run_isolated)
        shutil.rmtree(tmp, ignore_errors=True)
        results, timings = run_isolated(Path(__file__), [k for k, _ in plan], quick, log)
        return _report(selected, params, quick, results, timings, t_start)
    try:
        for key, fn in plan:
            t0 = time.perf_counter()
            try:
                rows.extend(fn())
            except Exception as exc:
                traceback.print_exc()
                for k in key.split(","):
                    rows.append(Row(f"{k}.error", k, SCENARIOS[k], "", "", "", status="error",
                                    note=f"{type(exc).__name__}: {exc}"))
            timings[key] = time.perf_counter() - t0
            log(f"{key} done in {timings[key]:.1f} s")
            gc.collect()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return _report(selected, params, quick, [row_json(r) for r in rows], timings, t_start)


def _report(selected: list[str], params: Params, quick: bool, results: list[dict[str, Any]],
            timings: dict[str, float], t_start: float) -> dict[str, Any]:
    summary: dict[str, int] = {}
    for r in results:
        summary[r["status"]] = summary.get(r["status"], 0) + 1
    return {
        "schema": SCHEMA,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "selected": selected,
        "env": environment(),
        "params": asdict(params),
        "notes": NOTES,
        "results": results,
        "summary": summary,
        "scenario_seconds": timings,
        "wall_s": time.perf_counter() - t_start,
    }


def parse_only(value: str | None) -> list[str]:
    if not value:
        return list(SCENARIOS)
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in names if v not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {', '.join(SCENARIOS)}")
    return [k for k in SCENARIOS if k in names]


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="scaled-down smoke run (< 1 min)")
    ap.add_argument("--only", help=f"comma-separated scenarios: {', '.join(SCENARIOS)}")
    ap.add_argument("--results-dir", type=Path,
                    help="where to write <UTC timestamp>.json and latest.json (default "
                         "benchmarks/results, or benchmarks/results/quick with --quick)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--in-process", action="store_true",
                    help="run every scenario in this process (default: one fresh process per "
                         "scenario group)")
    ap.add_argument("--child-rss", help=argparse.SUPPRESS)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.child_rss:
        child_rss(args.child_rss)
        return 0
    if args.list:
        for k, v in SCENARIOS.items():
            print(f"{k:12} {v}")
        return 0
    selected = parse_only(args.only)
    params = QUICK if args.quick else FULL
    report = run(selected, params, args.quick, isolate=not args.in_process)
    print(format_table(report))
    directory = args.results_dir or (HERE / "results" / "quick" if args.quick
                                     else HERE / "results")
    path = write_results(report, directory)
    print(f"\nwrote {path} and {path.with_name('latest.json')}")
    return 1 if report["summary"].get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
