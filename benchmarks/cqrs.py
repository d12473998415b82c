#!/usr/bin/env python3
"""CQRS runtime benchmarks: command bus overhead, batched dispatch, append -> projection.

Usage::

    .venv/bin/python benchmarks/cqrs.py            # full run, ~1 min
    .venv/bin/python benchmarks/cqrs.py --quick    # scaled down, seconds
    .venv/bin/python benchmarks/run.py --only cqrs # the same rows inside the main run

Three measurements (issue #3), all on the test bank (``tests/bank.py``):

- ``cqrs.bus``: ``app.dispatch("Deposit", payload)`` through the full middleware chain
  (validation from a payload, idempotency, retry on conflict), in-memory store, vs
  ``app.handle(Deposit(...))`` (same aggregate handler and append, no bus). Timed in blocks of
  commands; the per-command figure is block time / block size, and the value is the median
  over blocks. The **overhead** (dispatch - handle) has the target <= 50 us. The bare
  aggregate handler call (``account.deposit(cmd)``) is reported for scale.
- ``cqrs.dispatch_many``: one ``app.dispatch_many`` of 10,000 deposits (by name and payload)
  over 1,000 accounts into a DuckDB file, in one transaction. Target >= 20,000 commands/s.
- ``cqrs.visible``: latency from the start of ``app.dispatch`` until the Python projection's
  row shows the new balance, DuckDB file, p50 and p99 over single commands. ``sync``: the
  projection is followed in the appending thread (``app.follow(name)``), so it is visible when
  dispatch returns; ``background``: followed on the worker thread, and the reader calls
  ``app.wait_for()`` then reads. Targets p50 <= 5 ms, p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

FULL = {"bus_commands": 20_000, "bus_block": 1_000, "batch": 10_000, "batch_repeats": 5,
        "visible": 500}
QUICK = {"bus_commands": 3_000, "bus_block": 500, "batch": 10_000, "batch_repeats": 2,
         "visible": 100}
ACCOUNTS = 1_000


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def _row(id_: str, title: str, variant: str, unit: str, better: str, value: float,
         samples: list[float], target: dict[str, Any] | None, note: str = "",
         peer: dict[str, Any] | None = None) -> dict[str, Any]:
    status = "info"
    if target is not None:
        ok = value <= target["value"] if target["op"] == "<=" else value >= target["value"]
        status = "pass" if ok else "fail"
    ratio = value / peer["value"] if peer and peer.get("value") else None
    return {"id": id_, "scenario": "cqrs", "title": title, "variant": variant, "unit": unit,
            "better": better, "value": value, "samples": samples, "peer": peer,
            "ratio": ratio, "target": target, "status": status, "note": note}


def bus_overhead(n: int, block: int, say: Any) -> list[dict[str, Any]]:
    from allframe_lab import App, InMemoryEventStore, SequentialIds
    from tests.bank import make_bank

    say(f"cqrs.bus: {n:,} commands through dispatch, handle and the bare handler")
    bank = make_bank()
    deposit = bank.commands["Deposit"]
    accounts = [f"acc-{i}" for i in range(100)]

    def fresh() -> App:
        app = App(bank, InMemoryEventStore(), ids=SequentialIds())
        app.dispatch_many([("OpenAccount", {"account_id": a, "owner": a}) for a in accounts])
        return app

    payloads = [{"account_id": accounts[i % 100], "amount": i % 50 + 1} for i in range(n)]
    commands = [deposit(**p) for p in payloads]
    per: dict[str, list[float]] = {"dispatch": [], "handle": [], "bare": []}
    for rep in range(2):  # the first pass warms up; both are kept (blocks are many)
        app = fresh()
        for start in range(0, n, block):
            chunk = payloads[start:start + block]
            t0 = time.perf_counter()
            for p in chunk:
                app.dispatch("Deposit", p)
            per["dispatch"].append((time.perf_counter() - t0) / len(chunk) * 1e6)
        app = fresh()
        for start in range(0, n, block):
            chunk = commands[start:start + block]
            t0 = time.perf_counter()
            for c in chunk:
                app.handle(c)
            per["handle"].append((time.perf_counter() - t0) / len(chunk) * 1e6)
        agg = app.load("Account", accounts[0])
        for start in range(0, n, block):
            chunk = commands[start:start + block]
            t0 = time.perf_counter()
            for c in chunk:
                agg.deposit(c)
            per["bare"].append((time.perf_counter() - t0) / len(chunk) * 1e6)
        if rep == 0:
            per = {k: [] for k in per}
    med = {k: statistics.median(v) for k, v in per.items()}
    overhead = [d - h for d, h in zip(per["dispatch"], per["handle"], strict=True)]
    return [
        _row("cqrs.bus.overhead", "command bus overhead per command, full middleware chain",
             "in-memory store: app.dispatch(name, payload) minus app.handle(command)", "us",
             "lower", med["dispatch"] - med["handle"], overhead,
             {"text": "≤ 50 µs median", "kind": "absolute", "op": "<=", "value": 50.0},
             note=(f"dispatch {med['dispatch']:.1f} us, handle {med['handle']:.1f} us, bare "
                   f"aggregate handler call {med['bare']:.2f} us per command (medians over "
                   f"blocks of {block})")),
        _row("cqrs.bus.dispatch", "app.dispatch per command (bus + handler + append)",
             "in-memory store, by name with a payload (validated)", "us", "lower",
             med["dispatch"], per["dispatch"], None,
             peer={"name": "bare aggregate handler call", "value": med["bare"],
                   "samples": per["bare"]}),
    ]


def batched(tmp: str, size: int, repeats: int, say: Any) -> list[dict[str, Any]]:
    from allframe_lab import App, SequentialIds
    from allframe_lab.store.duckdb import DuckDBEventStore
    from tests.bank import make_bank

    say(f"cqrs.dispatch_many: {repeats} x {size:,} commands into DuckDB")
    bank = make_bank()
    path = Path(tmp) / "cqrs-batch.duckdb"
    rates: list[float] = []
    with App(bank, DuckDBEventStore(path), ids=SequentialIds()) as app:
        app.dispatch_many([("OpenAccount", {"account_id": f"acc-{i}", "owner": str(i)})
                           for i in range(ACCOUNTS)])
        for rep in range(repeats + 1):
            batch = [("Deposit", {"account_id": f"acc-{(i * 7 + rep) % ACCOUNTS}",
                                  "amount": i % 90 + 1}) for i in range(size)]
            t0 = time.perf_counter()
            out = app.dispatch_many(batch)
            dt = time.perf_counter() - t0
            assert len(out) == size
            if rep:  # the first batch warms up
                rates.append(size / dt)
        head = app.store.head_position
    assert head == ACCOUNTS + size * (repeats + 1)
    value = statistics.median(rates)
    return [_row("cqrs.dispatch_many", f"dispatch_many of {size:,} commands into DuckDB",
                 f"one transaction, {ACCOUNTS:,} accounts, by name with payloads (validated)",
                 "commands/s", "higher", value, rates,
                 {"text": "≥ 20,000 commands/s", "kind": "absolute", "op": ">=",
                  "value": 20_000.0},
                 note=f"{size / value * 1000:.0f} ms per batch (median)")]


def visible(tmp: str, n: int, say: Any) -> list[dict[str, Any]]:
    from allframe_lab import App, SequentialIds
    from allframe_lab.store.duckdb import DuckDBEventStore
    from tests.bank import make_bank

    rows = []
    for mode in ("sync", "background"):
        say(f"cqrs.visible: {n} commands, projection followed {mode}")
        path = Path(tmp) / f"cqrs-visible-{mode}.duckdb"
        lat: list[float] = []
        errors: list[str] = []
        with App(make_bank(), DuckDBEventStore(path), ids=SequentialIds()) as app:
            app.dispatch_many([("OpenAccount", {"account_id": f"acc-{i}", "owner": str(i)})
                               for i in range(100)])
            app.follow("balances", background=mode == "background")
            app.wait_for(timeout=30)
            balances = {f"acc-{i}": 0 for i in range(100)}
            reads = app.read(consistent=False)
            for i in range(n + 20):
                acc = f"acc-{i % 100}"
                balances[acc] += 1
                t0 = time.perf_counter()
                try:
                    app.dispatch("Deposit", {"account_id": acc, "amount": 1})
                    if mode == "background":
                        app.wait_for(timeout=30)
                    row = reads.table("balances").where(account_id=acc).one()
                except Exception as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:160])
                    continue
                dt = (time.perf_counter() - t0) * 1000
                assert row["balance"] == balances[acc], (row, balances[acc])
                if i >= 20:  # warm-up
                    lat.append(dt)
        note = (f"p50 {_pct(lat, 0.5):.2f} ms, p99 {_pct(lat, 0.99):.2f} ms, "
                f"max {max(lat):.2f} ms over {len(lat)} commands")
        if errors:
            note += f"; {len(errors)} command(s) failed, first: {errors[0]}"
        for q, limit in ((0.5, 5.0), (0.99, 50.0)):
            name = f"p{round(q * 100)}"
            rows.append(_row(
                f"cqrs.visible.{mode}.{name}",
                f"append -> followed projection visible ({mode}), {name}",
                "DuckDB file, Python projection 'balances'; dispatch until the row shows it"
                + (" (app.wait_for() then read)" if mode == "background" else ""),
                "ms", "lower", _pct(lat, q), lat,
                {"text": f"{name} ≤ {limit:g} ms", "kind": "absolute", "op": "<=",
                 "value": limit}, note=note))
        if errors:
            for r in rows[-2:]:
                r["status"] = "error"
    return rows


def measure(quick: bool, tmp: str, log: Any = None) -> list[dict[str, Any]]:
    """Rows in the ``allframe-lab-bench/1`` shape (see benchmarks/README.md)."""
    say = log or (lambda m: print(f"  .. {m}", file=sys.stderr, flush=True))
    p = QUICK if quick else FULL
    return [*bus_overhead(p["bus_commands"], p["bus_block"], say),
            *batched(tmp, p["batch"], p["batch_repeats"], say),
            *visible(tmp, p["visible"], say)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="scaled down (seconds)")
    ap.add_argument("--results-dir", type=Path,
                    help="where to write cqrs-<UTC>.json and cqrs-latest.json (default "
                         "benchmarks/results, or benchmarks/results/quick with --quick)")
    args = ap.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="allframe-cqrs-")
    started = time.perf_counter()
    try:
        rows = measure(args.quick, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from _results import environment, write_results

    report = {
        "schema": "allframe-lab-bench/1",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "quick": bool(args.quick), "selected": ["cqrs"], "env": environment(),
        "params": QUICK if args.quick else FULL,
        "notes": ["cqrs.bus.overhead = median per-command time of app.dispatch minus that of "
                  "app.handle (same handler and append, no bus)"],
        "results": rows,
        "summary": {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}},
        "scenario_seconds": {"cqrs": time.perf_counter() - started},
        "wall_s": time.perf_counter() - started,
    }
    for r in rows:
        print(f"{r['id']:30} {r['value']:12,.2f} {r['unit']:11} "
              f"{r['target']['text'] if r['target'] else '-':22} {r['status'].upper():5} "
              f"{r['note']}")
    directory = args.results_dir or (HERE / "results" / "quick" if args.quick
                                     else HERE / "results")
    path = write_results(report, directory, prefix="cqrs-")
    print(f"\nwrote {path} and cqrs-latest.json")
    return 1 if any(r["status"] == "error" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
