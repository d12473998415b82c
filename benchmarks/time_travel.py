#!/usr/bin/env python3
"""Time-travel widget latency on BPIC 2012 (262,200 events), measured kernel-side.

Usage::

    .venv/bin/python benchmarks/time_travel.py            # full run, ~1-2 min
    .venv/bin/python benchmarks/time_travel.py --quick    # fewer moves, same data, < 1 min

``benchmarks/run.py`` runs it as the scenario ``time_travel`` (so ``make bench`` includes it).

What is timed: :meth:`TimeTravel.goto <allframe_lab.notebook.time_travel.TimeTravel.goto>` /
``step`` on a widget with no browser attached, i.e. everything the kernel does for one move
(event at the cursor, the ``Case`` aggregate of the cursor's stream, the projection as of the
position, the diff with the previous point, the shown rows as JSON-ready dicts). Sending the
comm message is not included (there is no frontend). Moves: ±1 and ±N (N = the widget's
default step, head // 200) from the middle of the log, and seeded random jumps. "Reopen" is a
new widget at a random position on the same App (the runner's caches stay warm, as in a
notebook session); the first open of a Python projection (a fold from position 1 that fills
the runner's state cache) is reported separately.

Projections: the SQL projection ``case_status`` of
:func:`~allframe_lab.io.process_log_model`, and a Python projection ``case_progress`` (events,
current activity and last position per case) declared here.

Prints a table and writes JSON to ``benchmarks/results/time_travel-<UTC stamp>.json`` and
``time_travel-latest.json`` (``benchmarks/results/quick/`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCHEMA = "allframe-lab-bench-time-travel/1"
STEP_TARGET_MS = 100.0
REOPEN_TARGET_MS = 300.0
PROJECTIONS = {"case_status": "sql", "case_progress": "python"}


def log(msg: str) -> None:
    print(f"  .. {msg}", file=sys.stderr, flush=True)


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation (numpy's default method)."""
    xs = sorted(samples)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(samples: list[float], cpu: list[float]) -> dict[str, Any]:
    """p50/p95/max of wall milliseconds, with the CPU milliseconds' p50/p95 beside them."""
    return {"n": len(samples), "p50": statistics.median(samples),
            "p95": percentile(samples, 0.95), "max": max(samples),
            "cpu_p50": statistics.median(cpu), "cpu_p95": percentile(cpu, 0.95),
            "samples": samples, "cpu_samples": cpu}


#: CPU milliseconds (all threads of this process) of every timed call, in call order; the
#: report keeps them beside the wall times, to read runs on a busy machine.
_CPU: list[float] = []


def _ms(fn: Callable[[], Any]) -> float:
    """Wall milliseconds of one call (its CPU milliseconds go to ``_CPU``)."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    t1, c1 = time.perf_counter(), time.process_time()
    _CPU.append((c1 - c0) * 1000)
    return (t1 - t0) * 1000


def _timed(n: int, fn: Callable[[int], Any]) -> tuple[list[float], list[float]]:
    """Wall and CPU milliseconds of ``fn(i)`` for i in range(n)."""
    start = len(_CPU)
    wall = [_ms(lambda i=i: fn(i)) for i in range(n)]
    return wall, _CPU[start:]


def measure(*, quick: bool = False, tmp: str | None = None) -> dict[str, Any]:
    """Import BPIC 2012 into a temp DuckDB file and time the widget; return the report."""
    from allframe_lab import App
    from allframe_lab.io import dataset_path, import_log, process_log_model
    from allframe_lab.store.duckdb import DuckDBEventStore
    from tests.process_logs import add_case_progress

    moves = 15 if quick else 60
    reopens = 8 if quick else 25
    own_tmp = tmp is None
    folder = tempfile.mkdtemp(prefix="allframe-tt-") if own_tmp else tmp
    assert folder is not None
    path = os.path.join(folder, "bpic2012-time-travel.duckdb")
    results: dict[str, Any] = {}
    t_start = time.perf_counter()
    try:
        log("importing BPIC 2012 (untimed)")
        store = DuckDBEventStore(path)
        import_log(dataset_path("bpic2012"), store, progress=False)
        head = store.head_position
        model = process_log_model()
        add_case_progress(model)
        app = App(model, store)
        for name, kind in PROJECTIONS.items():
            results[name] = _measure_projection(app, name, kind, moves, reopens)
        app.close()
    finally:
        if own_tmp:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            for leftover in (path, path + ".wal"):
                if os.path.exists(leftover):
                    os.remove(leftover)
    return {
        "schema": SCHEMA,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "events": head,
        "env": {"python": platform.python_version(), "platform": platform.platform(),
                "cpu_count": os.cpu_count(),
                "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "targets": {"step_p95_ms": STEP_TARGET_MS, "reopen_p95_ms": REOPEN_TARGET_MS},
        "results": results,
        "wall_s": time.perf_counter() - t_start,
    }


def _measure_projection(app: Any, name: str, kind: str, moves: int, reopens: int
                        ) -> dict[str, Any]:
    from allframe_lab.notebook.time_travel import TimeTravel

    head = app.store.head_position
    rng = random.Random(20240601)
    holder: dict[str, Any] = {}

    def open_at(p: int) -> None:
        holder["tt"] = TimeTravel(app, projection=name, aggregate="Case", position=p)

    log(f"{name} ({kind}): first open")
    first_open = _ms(lambda: open_at(head // 2))
    tt = holder["tt"]
    n = tt.step_size
    timings: dict[str, tuple[list[float], list[float]]] = {}
    for label, delta in (("+1", 1), ("-1", -1), (f"+{n}", n), (f"-{n}", -n)):
        log(f"{name}: {moves} moves of {label}")
        timings[label] = _timed(moves, lambda _i, d=delta: tt.step(d))
    log(f"{name}: {moves} random jumps")
    targets = [rng.randint(1, head) for _ in range(moves)]
    timings["jump"] = _timed(moves, lambda i: tt.goto(position=targets[i]))
    log(f"{name}: {reopens} reopens at random positions")
    places = [rng.randint(1, head) for _ in range(reopens)]
    timings["reopen"] = _timed(reopens, lambda i: open_at(places[i]))
    step_keys = ("+1", "-1", f"+{n}", f"-{n}")
    steps = summary([x for k in step_keys for x in timings[k][0]],
                    [x for k in step_keys for x in timings[k][1]])
    return {
        "kind": kind, "step_size": n, "first_open_ms": first_open,
        "rows_at_head": app.projections.as_of(name, _head(head)).shape[0],
        "steps": steps,
        "by_move": {k: summary(*v) for k, v in timings.items()},
    }


def _head(head: int) -> Any:
    from allframe_lab.store import AsOf

    return AsOf(position=head)


def run_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows in ``benchmarks/run.py``'s shape (``Row`` fields; ``target`` as a dict)."""
    out = []
    events = report["events"]
    for name, r in report["results"].items():
        title = f"time-travel widget on BPIC 2012 ({events:,} events), {name} ({r['kind']})"
        n = r["step_size"]
        for move, key in (("+1", "step+1"), ("-1", "step-1"), (f"+{n}", "step+N"),
                          (f"-{n}", "step-N"), ("jump", "jump")):
            s = r["by_move"][move]
            out.append(_row(f"time_travel.{name}.{key}", title,
                            f"p95 of {s['n']} moves of {move} (kernel-side goto/step)", s,
                            STEP_TARGET_MS))
        s = r["steps"]
        out.append(_row(f"time_travel.{name}.steps", title,
                        f"p95 of all ±1/±{n} steps ({s['n']})", s, STEP_TARGET_MS))
        s = r["by_move"]["reopen"]
        row = _row(f"time_travel.{name}.reopen", title,
                   f"p95 of {s['n']} new widgets at random positions (same App)", s,
                   REOPEN_TARGET_MS)
        row["note"] += f"; first open {r['first_open_ms']:,.0f} ms"
        out.append(row)
    return out


def _row(id_: str, title: str, variant: str, s: dict[str, Any], target: float
         ) -> dict[str, Any]:
    return {"id": id_, "scenario": "time_travel", "title": title, "variant": variant,
            "unit": "ms", "better": "lower", "value": s["p95"],
            "target": {"text": f"p95 ≤ {target:g} ms", "kind": "absolute", "op": "<=",
                       "value": target},
            "note": f"p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms, max {s['max']:.1f} ms "
                    f"(CPU p95 {s['cpu_p95']:.1f} ms)"}


def format_table(report: dict[str, Any]) -> str:
    env = report["env"]
    lines = [f"time-travel widget latency {'(QUICK) ' if report['quick'] else ''}- "
             f"{report['created_utc']}; {report['events']:,} events; {env['cpu_count']} CPUs, "
             f"load {env['load_average_1m']}",
             "kernel-side wall ms per move (no browser): p50 / p95 / max; cpu p95 = CPU ms of "
             "this process (all threads) at the 95th percentile", ""]
    header = ("projection", "move", "n", "p50", "p95", "max", "cpu p95", "target", "status")
    cells = [header]
    for name, r in report["results"].items():
        moves = {**r["by_move"], "all steps": r["steps"]}
        for move, s in moves.items():
            target = REOPEN_TARGET_MS if move == "reopen" else STEP_TARGET_MS
            cells.append((f"{name} ({r['kind']})", move, str(s["n"]), f"{s['p50']:.1f}",
                          f"{s['p95']:.1f}", f"{s['max']:.1f}", f"{s['cpu_p95']:.1f}",
                          f"p95 ≤ {target:g}", "PASS" if s["p95"] <= target else "FAIL"))
        cells.append((f"{name} ({r['kind']})", "first open", "1", "", "",
                      f"{r['first_open_ms']:.1f}", "", "-", "info"))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for i, c in enumerate(cells):
        lines.append("  ".join(s.rjust(w) if 2 <= j <= 6 else s.ljust(w)
                               for j, (s, w) in enumerate(zip(c, widths, strict=True))).rstrip())
        if i == 0:
            lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    return "\n".join(lines)


def write_results(report: dict[str, Any], directory: Path) -> Path:
    from _results import write_results as write

    return write(report, directory, prefix="time_travel-")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer moves (same data)")
    ap.add_argument("--results-dir", type=Path,
                    help="where to write the JSON (default benchmarks/results, or "
                         "benchmarks/results/quick with --quick)")
    args = ap.parse_args(argv)
    report = measure(quick=args.quick)
    print(format_table(report))
    directory = args.results_dir or (HERE / "results" / "quick" if args.quick
                                     else HERE / "results")
    path = write_results(report, directory)
    print(f"\nwrote {path} and {path.with_name('time_travel-latest.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
