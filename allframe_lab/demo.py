"""The end-to-end demo: ``python -m allframe_lab.demo --out demo`` (``make demo`` runs it).

1. imports the shipped BPI Challenge 2012 log into ``<out>/bpic2012.duckdb`` (a fresh file);
2. rebuilds the process-log projections (``case_status``, ``activity_counts``,
   ``open_cases_over_time``);
3. prints a summary: counts, time range, import throughput, and the cases' status at 25 %,
   50 % and 75 % of the time range (time travel with ``as_of``);
4. executes ``notebooks/01_quickstart.ipynb`` headless into ``<out>/01_quickstart.ipynb``.

Data: van Dongen, B.F. (2012). BPI Challenge 2012. 4TU.ResearchData,
doi:10.4121/uuid:3926db30-f712-4394-aebc-75976070e91f (CC BY 4.0).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.runtime import App

__all__ = ["main", "run_notebook", "summary_at"]

#: The repository's notebooks folder (present in a source checkout, not in a wheel).
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
QUICKSTART = "01_quickstart.ipynb"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _remove_store(path: Path) -> None:
    for p in (path, path.with_name(path.name + ".wal")):
        if p.exists():
            p.unlink()


def summary_at(app: App, timestamp: datetime, /, *, top: int = 6) -> pd.DataFrame:
    """Cases per current activity as of ``timestamp`` (the ``top`` most frequent).

    Parameters
    ----------
    app : App
        An App over a process-log store with :func:`~allframe_lab.io.process_log_model`.
    timestamp : datetime
        The point in time; each case counts at its last activity at or before it.
    top : int, default 6
        How many activities to keep.

    Returns
    -------
    pandas.DataFrame
        Columns ``activity`` and ``cases``, most cases first.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> from allframe_lab import App
    >>> from allframe_lab.io import dataset_path, import_log, process_log_model
    >>> from allframe_lab.store import InMemoryEventStore
    >>> store = InMemoryEventStore()
    >>> _ = import_log(dataset_path("running-example"), store)
    >>> app = App(process_log_model(), store)
    >>> summary_at(app, datetime(2011, 1, 1, tzinfo=timezone.utc)).values.tolist()
    [['check ticket', 1], ['examine casually', 1], ['examine thoroughly', 1]]
    """
    df = app.projection("case_status").as_of(timestamp=timestamp)
    if df.empty:
        import pandas as pd

        return pd.DataFrame(columns=["activity", "cases"])
    counts = df.groupby("activity").size().sort_values(ascending=False, kind="stable")
    return counts.head(top).rename("cases").reset_index()


def _open_at(days: pd.DataFrame, timestamp: datetime) -> int:
    """Open cases at the end of the day before ``timestamp``, known from the whole log.

    (As of a prefix of the log every case's last event so far counts as its end, so "open"
    needs hindsight: it is read from the projection over the full log.)
    """
    import pandas as pd

    before = days[pd.to_datetime(days["day"]) < pd.Timestamp(timestamp.date())]
    return int(before["open_cases"].iloc[-1]) if len(before) else 0


def run_notebook(notebook: Path, out: Path, /, *, timeout: int = 600) -> float:
    """Execute a notebook headless with nbclient and save the executed copy.

    The kernel runs in the notebook's own folder. Returns the seconds it took.

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        If a cell fails (the executed copy is still written, to show where).
    """
    import os
    import tempfile

    import nbformat
    from nbclient import NotebookClient
    from traitlets.config import Config

    nb = nbformat.read(notebook, as_version=4)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="allframe-kernel-") as sockets:
        config = Config()
        if os.name == "posix":
            # Unix sockets in a private folder rather than TCP on localhost: no port is open
            # to other users of the machine (jupyter_client warns about unencrypted TCP)
            config.KernelManager.transport = "ipc"
            config.KernelManager.ip = os.path.join(sockets, "kernel")
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=config,
                                resources={"metadata": {"path": str(notebook.parent)}})
        try:
            client.execute()
        finally:
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out)
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; return the process exit code."""
    parser = argparse.ArgumentParser(prog="python -m allframe_lab.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo", type=Path,
                        help="Output folder (default: demo).")
    parser.add_argument("--dataset", default="bpic2012",
                        help="Shipped dataset to import (default: bpic2012).")
    parser.add_argument("--notebook", type=Path, default=NOTEBOOKS / QUICKSTART,
                        help="Notebook to execute (default: notebooks/01_quickstart.ipynb).")
    parser.add_argument("--no-notebook", action="store_true",
                        help="Skip executing the notebook.")
    args = parser.parse_args(argv)

    from allframe_lab.io import DATASETS, dataset_path, import_log, process_log_model
    from allframe_lab.runtime import App
    from allframe_lab.store.duckdb import DuckDBEventStore

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    ds = DATASETS[args.dataset]
    db = out / f"{args.dataset}.duckdb"
    _remove_store(db)

    _say(f"== 1. import {ds.filename} into {db}")
    _say(f"   {ds.description}")
    _say(f"   source: {ds.citation} ({ds.licence})")
    with DuckDBEventStore(db) as store:
        result = import_log(dataset_path(args.dataset), store,
                            progress=None if sys.stderr.isatty() else False)
        _say(f"   {result!r}")
        ok = (result.streams, result.events, result.event_types) == (
            ds.traces, ds.events, ds.activities)
        _say(f"   expected {ds.traces:,} cases / {ds.events:,} events / {ds.activities} "
             f"activities: {'OK' if ok else 'MISMATCH'}")

        _say("\n== 2. rebuild the projections")
        app = App(process_log_model(), store)
        for name in app.projections:
            t0 = time.perf_counter()
            position = app.projection(name).rebuild(progress=False)
            rows = len(app.projection(name).df(refresh=False))
            _say(f"   {name:<22} {rows:>7,} rows at position {position:,} in "
                 f"{(time.perf_counter() - t0) * 1000:.0f} ms")

        _say("\n== 3. summary")
        stats = store.stats()
        first, last = stats.first_occurred_at, stats.last_occurred_at
        assert first is not None and last is not None
        _say(f"   events {stats.events:,}, streams (cases) {stats.streams:,}, event types "
             f"{len(stats.event_types)}")
        _say(f"   occurred {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC")
        _say(f"   import: parse {result.parse_seconds:.2f} s + store {result.store_seconds:.2f} s"
             f" = {result.events_per_second:,.0f} events/s "
             f"(store alone {result.events / max(result.store_seconds, 1e-9):,.0f} events/s)")
        _say("\n   top activities:")
        _say(_indent(app.projection("activity_counts").df(refresh=False)
                     .head(8).to_string(index=False)))
        _say("\n   time travel: cases by current activity")
        days = app.projection("open_cases_over_time").df(refresh=False)
        for share in (0.25, 0.50, 0.75):
            at = first + (last - first) * share
            t0 = time.perf_counter()
            position = store.position_at(at)
            table = summary_at(app, at)
            open_cases = _open_at(days, at)
            ms = (time.perf_counter() - t0) * 1000
            _say(f"\n   as of {at:%Y-%m-%d %H:%M} UTC ({share:.0%} of the range, position "
                 f"{position:,}; {ms:.0f} ms; {open_cases:,} cases open the day before)")
            _say(_indent(table.to_string(index=False)))

    if args.no_notebook:
        return 0
    _say(f"\n== 4. execute {args.notebook}")
    notebook: Path = args.notebook
    if not notebook.is_file():
        _say(f"   SKIPPED: {notebook} does not exist (yet)")
        return 0
    target = out / notebook.name
    try:
        from nbclient.exceptions import CellExecutionError
    except ImportError:
        _say("   FAILED: executing notebooks needs nbclient and ipykernel: "
             "pip install 'allframe-lab[test,notebook]'")
        return 1

    try:
        seconds = run_notebook(notebook, target)
    except CellExecutionError as exc:
        _say(f"   FAILED: a cell raised an error; the executed copy is in {target}\n{exc}")
        return 1
    _say(f"   executed in {seconds:.1f} s -> {target}")
    return 0


def _indent(text: str, prefix: str = "   ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
