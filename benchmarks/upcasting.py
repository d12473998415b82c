#!/usr/bin/env python3
"""Upcasting overhead on replay: 1,000,000 events stored at v1, read as v3, vs the same log
stored at v3 (no upcasting). Target: <= 2x the plain replay's time.

Usage::

    .venv/bin/python benchmarks/upcasting.py            # 1,000,000 events, ~1-2 min
    .venv/bin/python benchmarks/upcasting.py --quick    # 50,000 events, seconds
    .venv/bin/python benchmarks/run.py --only upcast    # the same rows inside the main run

The domain is the benchmark's ``Account`` log (``allframe_side.big_log_table``: 10,000
accounts interleaved at random, ~100-byte payloads). ``Deposited`` evolves in two steps:

- v1 -> v2, an explicit inline upcaster (a type change): ``amount`` was a decimal string of
  euros (``"12.34"``) and becomes integer cents;
- v2 -> v3, generated from field declarations: ``ref`` is renamed to ``reference``
  (``renamed_from``) and ``channel`` is added with a default (``added_in``).

Both DuckDB files hold the same events (same positions, streams and amounts); the v1 file's
``Deposited`` payloads are in the v1 shape with ``schema_version = 1``. What is timed, on
each file, is the same machinery as scenario d of ``run.py``: read + decode + fold into the
Python projection ``balances`` (``app.projection("balances").rebuild()``), and a projection-
free fold over ``iter_decoded`` (the batch decode path, no table writes). Repeats of the two
files alternate; each figure is a median. The comparison is with our own plain replay, so
eventsourcing is not run here (its upcasting is per event object, a different machinery).
"""

from __future__ import annotations

import argparse
import json
import os
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

from allframe_lab import (  # noqa: E402
    App,
    Event,
    Model,
    Projection,
    added_in,
    applies,
    renamed_from,
    upcasts,
)

FULL_N, QUICK_N = 1_000_000, 50_000
N_STREAMS = 10_000

# --------------------------------------------------------------------------- the domain
bank = Model("bank_v3")


@bank.event("Opened")
class Opened(Event):
    owner: str
    currency: str = "EUR"


@bank.event("Deposited", version=3)
class Deposited(Event):
    amount: int  # cents (v1 stored a decimal string of euros)
    reference: str = renamed_from("ref", in_version=3)
    channel: str = added_in(3, default="branch")

    @upcasts(from_version=1)
    def euros_to_cents(data: dict[str, Any]) -> dict[str, Any]:
        euros, _, cents = data["amount"].partition(".")
        data["amount"] = int(euros) * 100 + int(cents or 0)
        return data


@bank.projection("balances", key="stream_id")
class Balances(Projection):
    @applies("Opened")
    def _opened(self, e: Opened, rec: Any) -> None:
        self.rows[rec.stream_id] = {"stream_id": rec.stream_id, "owner": e.owner,
                                    "balance": 0, "n": 1}

    @applies("Deposited")
    def _deposited(self, e: Deposited, rec: Any) -> None:
        row = self.rows[rec.stream_id]
        row["balance"] += e.amount
        row["n"] += 1


# --------------------------------------------------------------------------- datasets
def tables(n: int) -> tuple[Any, Any]:
    """The same log twice as Arrow: Deposited at v3 (cents) and at v1 (euro strings)."""
    import allframe_side as af
    import pyarrow as pa

    base = af.big_log_table(n, min(N_STREAMS, n // 5))
    types = base.column("type").to_pylist()
    data = base.column("data").to_pylist()
    v1, v3, versions = [], [], []
    for t, text in zip(types, data, strict=True):
        if t == "Opened":
            v1.append(text)
            v3.append(text)
            versions.append(1)
            continue
        d = json.loads(text)
        cents = d["amount"]
        v1.append(json.dumps({"amount": f"{cents // 100}.{cents % 100:02d}", "ref": d["ref"]},
                             separators=(",", ":")))
        v3.append(json.dumps({"amount": cents, "reference": d["ref"], "channel": "branch"},
                             separators=(",", ":")))
        versions.append(3)
    old_versions = [1] * len(types)
    t3 = base.set_column(base.schema.get_field_index("data"), "data", pa.array(v3, pa.string()))
    t3 = t3.append_column("schema_version", pa.array(versions, pa.int32()))
    t1 = base.set_column(base.schema.get_field_index("data"), "data", pa.array(v1, pa.string()))
    t1 = t1.append_column("schema_version", pa.array(old_versions, pa.int32()))
    return t1, t3


def build(path: str, table: Any) -> None:
    from allframe_lab.store.duckdb import DuckDBEventStore

    store = DuckDBEventStore(path)
    store.append_arrow(table)
    store.close()


# --------------------------------------------------------------------------- timed work
def rebuild(app: App) -> int:
    return app.projection("balances").rebuild(progress=False)


def fold(app: App) -> dict[str, int]:
    """Read + decode (batch path, upcasting on read) + a dict fold, no projection table."""
    from allframe_lab.runtime._decode import gc_paused, iter_decoded

    balances: dict[str, int] = {}
    with gc_paused():
        for batch in iter_decoded(app.store, app.decoder, 1, None):
            for ev, rec in batch:
                if type(ev) is Deposited:
                    balances[rec.stream_id] += ev.amount
                else:
                    balances[rec.stream_id] = 0
    return balances


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    import gc

    gc.collect()
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def measure(n: int, repeats: int, tmp: str, log: Any = None) -> list[dict[str, Any]]:
    """Rows in the ``allframe-lab-bench/1`` shape (see benchmarks/README.md)."""
    from allframe_lab.store.duckdb import DuckDBEventStore

    say = log or (lambda m: print(f"  .. {m}", file=sys.stderr, flush=True))
    say(f"upcast: building two {n:,}-event DuckDB files (v1 and v3 payloads, untimed)")
    t1, t3 = tables(n)
    paths = {"v1": os.path.join(tmp, "upcast-v1.duckdb"),
             "v3": os.path.join(tmp, "upcast-v3.duckdb")}
    build(paths["v1"], t1)
    build(paths["v3"], t3)
    del t1, t3
    apps = {k: App(bank, DuckDBEventStore(p)) for k, p in paths.items()}
    samples: dict[str, dict[str, list[float]]] = {k: {"rebuild": [], "fold": []} for k in apps}
    results: dict[str, Any] = {}
    for k in apps:  # warm-up (imports, validators) and a correctness check
        results[k] = fold(apps[k])
    assert results["v1"] == results["v3"], "v1 upcast and v3 logs fold differently"
    for rep in range(repeats):
        say(f"upcast: repeat {rep + 1}/{repeats}")
        for k in ("v3", "v1"):
            dt, _ = timed(rebuild, apps[k])
            samples[k]["rebuild"].append(dt)
            dt, out = timed(fold, apps[k])
            assert out == results["v3"]
            samples[k]["fold"].append(dt)
    frames = {k: apps[k].projection("balances").df(refresh=False) for k in apps}
    assert frames["v1"].sort_values("stream_id").reset_index(drop=True).equals(
        frames["v3"].sort_values("stream_id").reset_index(drop=True))
    for a in apps.values():
        a.close()
    label = f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1_000}k"
    rows = []
    for what, title, variant in (
        ("rebuild", f"replay {n:,} events stored at v1, upcast to v3 on read",
         "DuckDBEventStore file: app.projection('balances').rebuild() of the v1 log vs the "
         "same log stored at v3"),
        ("fold", f"read + decode + dict fold of {n:,} events, v1 upcast to v3 vs v3",
         "DuckDBEventStore file: iter_decoded (batch decode path) + dict fold, no table"),
    ):
        up = [x * 1000 for x in samples["v1"][what]]
        plain = [x * 1000 for x in samples["v3"][what]]
        value, peer = statistics.median(up), statistics.median(plain)
        ratio = value / peer
        target = ({"text": "≤ 2x plain replay", "kind": "ratio", "op": "<=", "value": 2.0}
                  if what == "rebuild" else None)
        status = ("pass" if ratio <= 2.0 else "fail") if target else "info"
        rows.append({
            "id": f"upcast.{label}.{what}", "scenario": "upcast", "title": title,
            "variant": variant, "unit": "ms", "better": "lower", "value": value,
            "samples": up,
            "peer": {"name": "plain replay (v3 stored, no upcasting)", "value": peer,
                     "samples": plain},
            "ratio": ratio, "target": target, "status": status,
            "note": (f"v1 -> v2 inline upcaster (type change), v2 -> v3 generated (rename + "
                     f"added field); {n / value * 1000:,.0f} events/s upcast vs "
                     f"{n / peer * 1000:,.0f} plain"),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_N:,} events, 2 repeats")
    ap.add_argument("--events", type=int, help="number of events (overrides --quick)")
    ap.add_argument("--repeats", type=int, help="repeats per file (default 3, quick 2)")
    ap.add_argument("--results-dir", type=Path,
                    help="where to write upcasting-<UTC>.json and upcasting-latest.json "
                         "(default benchmarks/results, or benchmarks/results/quick)")
    args = ap.parse_args(argv)
    n = args.events or (QUICK_N if args.quick else FULL_N)
    repeats = args.repeats or (2 if args.quick else 3)
    tmp = tempfile.mkdtemp(prefix="allframe-upcast-")
    started = time.perf_counter()
    try:
        rows = measure(n, repeats, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from _results import environment, write_results

    report = {
        "schema": "allframe-lab-bench/1",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "quick": bool(args.quick), "selected": ["upcast"], "env": environment(),
        "params": {"events": n, "repeats": repeats, "streams": min(N_STREAMS, n // 5)},
        "notes": ["ratio = upcast replay time / plain replay time (lower is better)"],
        "results": rows,
        "summary": {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}},
        "scenario_seconds": {"upcast": time.perf_counter() - started},
        "wall_s": time.perf_counter() - started,
    }
    for r in rows:
        print(f"{r['id']:28} upcast {r['value']:9,.1f} ms  plain {r['peer']['value']:9,.1f} ms"
              f"  ratio {r['ratio']:.2f}  {r['target']['text'] if r['target'] else '-':20}"
              f"  {r['status'].upper()}")
        print(f"    {r['note']}")
    directory = args.results_dir or (HERE / "results" / "quick" if args.quick
                                     else HERE / "results")
    path = write_results(report, directory, prefix="upcasting-")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
