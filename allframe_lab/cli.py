"""The ``allframe-lab`` command line: a thin front end over the io, store and runtime layers.

Every command has ``--help``. ``--json`` prints exactly one JSON object on stdout, for scripts.
Errors print one line to stderr and exit non-zero: 2 for errors of allframe-lab and of usage
(a bad log file, a locked store, an unknown projection), 1 for operating-system errors.

Commands that only read (``info``, ``streams``, ``events``, ``replay --as-of``) open the store
read-only, so they work beside a process that writes to it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from allframe_lab.errors import AllframeError, StoreLockedError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.store.duckdb import DuckDBEventStore

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 2
EXIT_OS_ERROR = 1


class CliError(Exception):
    """A user-facing error with an exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _errors(fn: F) -> F:
    """Turn expected errors into one line on stderr and an exit code, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            code, msg = exc.code, str(exc)
        except AllframeError as exc:
            code, msg = EXIT_ERROR, f"{type(exc).__name__}: {exc}"
        except (ValueError, KeyError) as exc:  # bad option values (e.g. --as-of)
            code, msg = EXIT_ERROR, str(exc.args[0] if exc.args else exc)
        except OSError as exc:
            code, msg = EXIT_OS_ERROR, f"{type(exc).__name__}: {exc}"
        click.echo(f"allframe-lab: error: {_one_line(msg)}", err=True)
        click.get_current_context().exit(code)

    return wrapper  # type: ignore[return-value]


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "total_seconds"):
        return value.total_seconds()
    return str(value)


@contextmanager
def _open_store(path: str, *, read_only: bool) -> Iterator[DuckDBEventStore]:
    from allframe_lab.store.duckdb import DuckDBEventStore

    if read_only and not Path(path).is_file():
        raise CliError(f"no event store at {path!r}; create one with "
                       f"`allframe-lab import LOG --store {path}`")
    store = DuckDBEventStore(path, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


def _store_option(fn: F) -> F:
    return click.option("--store", "store_path", required=True, metavar="FILE",
                        help="The DuckDB event-store file.")(fn)


def _json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON object on stdout (for scripts).")(fn)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="allframe-lab", prog_name="allframe-lab")
def cli() -> None:
    """allframe-lab: import event logs into a DuckDB event store, inspect and replay them."""


# ---------------------------------------------------------------------------------- import
@cli.command("import")
@click.argument("log", metavar="LOG")
@_store_option
@click.option("--case-column", metavar="NAME",
              help="Attribute/column with the case id (default: case:concept:name, or a "
                   "variant such as case_id / Case ID).")
@click.option("--activity-column", metavar="NAME",
              help="Attribute/column with the activity (default: concept:name, or activity).")
@click.option("--timestamp-column", metavar="NAME",
              help="Attribute/column with the timestamp (default: time:timestamp, or "
                   "timestamp).")
@click.option("--timestamp-format", metavar="FMT",
              help="strptime format of tabular timestamps that are not ISO-8601.")
@click.option("--stream-prefix", default="", metavar="TEXT",
              help="Prepended to every case id to form the stream id.")
@click.option("--format", "fmt", type=click.Choice(["xes", "csv", "parquet"]),
              help="Log format (default: from the file name).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar while reading (default: on for large files).")
@_json_option
@_errors
def import_cmd(log: str, store_path: str, case_column: str | None,
               activity_column: str | None, timestamp_column: str | None,
               timestamp_format: str | None, stream_prefix: str, fmt: str | None,
               progress: bool | None, as_json: bool) -> None:
    """Import an event log (XES, CSV, Parquet) into a store.

    LOG is an .xes, .xes.gz, .csv, .csv.gz or .parquet file, or the name of a shipped
    dataset: helpdesk, bpic2012, running-example. The import is one transaction: on a bad
    file nothing is written.
    """
    from allframe_lab.io import DATASETS, LogMapping, dataset_path, import_log

    source = Path(log)
    if not source.exists():
        if log in DATASETS:
            source = dataset_path(log)
        else:
            raise CliError(f"no such event log {log!r} (shipped datasets: "
                           f"{', '.join(sorted(DATASETS))})")
    mapping = LogMapping(case=case_column, activity=activity_column,
                         timestamp=timestamp_column, stream_prefix=stream_prefix,
                         timestamp_format=timestamp_format)
    with _open_store(store_path, read_only=False) as store:
        result = import_log(source, store, mapping=mapping, format=fmt,  # type: ignore[arg-type]
                            progress=False if as_json and progress is None else progress)
        head = store.head_position
    if as_json:
        _emit_json({"store": store_path, "head_position": head, **result.as_dict()})
        return
    click.echo(f"imported {result.events:,} events in {result.streams:,} streams "
               f"({result.event_types:,} event types) from {source.name} into {store_path}")
    if result.first_occurred_at is not None:
        click.echo(f"  occurred {result.first_occurred_at.isoformat()} .. "
                   f"{result.last_occurred_at.isoformat() if result.last_occurred_at else ''}")
    click.echo(f"  positions {result.first_position:,}..{result.last_position:,}; parse "
               f"{result.parse_seconds:.2f} s, store {result.store_seconds:.2f} s, "
               f"{result.events_per_second:,.0f} events/s")


# ---------------------------------------------------------------------------------- info
@cli.command("info")
@_store_option
@_json_option
@_errors
def info_cmd(store_path: str, as_json: bool) -> None:
    """Show counts (streams, events, event types) and the time range."""
    with _open_store(store_path, read_only=True) as store:
        stats = store.stats()
    data = {"store": store_path, **stats.as_dict()}
    if as_json:
        _emit_json(data)
        return
    click.echo(f"store:        {store_path}")
    click.echo(f"events:       {stats.events:,} (head position {stats.head_position:,})")
    click.echo(f"streams:      {stats.streams:,}")
    click.echo(f"event types:  {len(stats.event_types):,}")
    click.echo(f"first event:  {data['first_occurred_at'] or '-'}")
    click.echo(f"last event:   {data['last_occurred_at'] or '-'}")
    for name, n in sorted(stats.event_types.items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"  {n:>10,}  {name}")


# ---------------------------------------------------------------------------------- streams
@cli.command("streams")
@_store_option
@click.option("--prefix", metavar="P", help="Only streams whose id starts with P.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N", help="At most N streams.")
@_json_option
@_errors
def streams_cmd(store_path: str, prefix: str | None, limit: int | None, as_json: bool) -> None:
    """List streams with their versions and time ranges."""
    with _open_store(store_path, read_only=True) as store:
        infos = store.streams(prefix=prefix, limit=limit)
    rows = [
        {"stream_id": s.stream_id, "version": s.version, "first_position": s.first_position,
         "last_position": s.last_position, "first_occurred_at": s.first_occurred_at,
         "last_occurred_at": s.last_occurred_at}
        for s in infos
    ]
    if as_json:
        _emit_json({"store": store_path, "prefix": prefix, "limit": limit,
                    "count": len(rows), "streams": rows})
        return
    _print_frame(_frame(rows, ["stream_id", "version", "first_position", "last_position",
                               "first_occurred_at", "last_occurred_at"]))


# ---------------------------------------------------------------------------------- events
@cli.command("events")
@_store_option
@click.option("--stream", "stream_id", required=True, metavar="ID", help="The stream id.")
@_json_option
@_errors
def events_cmd(store_path: str, stream_id: str, as_json: bool) -> None:
    """Show the events of one stream, in version order."""
    with _open_store(store_path, read_only=True) as store:
        recs = store.read_stream(stream_id)
    if not recs:
        raise CliError(f"no stream {stream_id!r} in {store_path}; list them with "
                       f"`allframe-lab streams --store {store_path}`")
    rows = [
        {"position": r.position, "version": r.version, "type": r.type,
         "occurred_at": r.occurred_at, "event_id": str(r.event_id),
         "schema_version": r.schema_version, "data": dict(r.data),
         "metadata": dict(r.metadata)}
        for r in recs
    ]
    if as_json:
        _emit_json({"store": store_path, "stream_id": stream_id, "count": len(rows),
                    "events": rows})
        return
    for row in rows:
        row["data"] = json.dumps(row["data"], ensure_ascii=False, default=str)
    _print_frame(_frame(rows, ["position", "version", "occurred_at", "type", "data"]))


# ---------------------------------------------------------------------------------- replay
@cli.command("replay")
@_store_option
@click.option("--projection", "name", required=True, metavar="NAME",
              help="case_status, activity_counts or open_cases_over_time.")
@click.option("--as-of", "as_of", metavar="POSITION|TIMESTAMP",
              help="Replay up to a global position (an integer) or an ISO-8601 timestamp.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format; json prints one object.")
@click.option("--limit", type=click.IntRange(min=0), metavar="N",
              help="Print at most N rows.")
@_errors
def replay_cmd(store_path: str, name: str, as_of: str | None, fmt: str,
               limit: int | None) -> None:
    """Replay a process-log projection, now or as of a past point.

    With --as-of the store is opened read-only and the projection is computed as of that
    point (nothing is written). Without it the projection's table is caught up to the head,
    which needs the store writable; if another process holds it, the head is replayed
    read-only instead.
    """
    from allframe_lab.io import process_log_model
    from allframe_lab.runtime import App
    from allframe_lab.store import AsOf

    model = process_log_model()
    model.projection_decl(name)  # unknown name: UnknownNameError listing the known ones
    point = AsOf.parse(as_of) if as_of is not None else None
    if point is None:
        if not Path(store_path).is_file():
            raise CliError(f"no event store at {store_path!r}")
        try:
            with _open_store(store_path, read_only=False) as store:
                app = App(model, store)
                handle = app.projection(name)
                df = handle.df()
                position = handle.checkpoint
                _print_result(df, name, position, None, fmt, limit)
                return
        except StoreLockedError:
            pass  # a writer holds the file: replay the head read-only
    with _open_store(store_path, read_only=True) as store:
        app = App(model, store)
        handle = app.projection(name)
        if point is None:
            point = AsOf(position=store.head_position)
        position = app.projections.resolve(point)
        df = handle.as_of(position=position)
    _print_result(df, name, position, as_of, fmt, limit)


def _print_result(df: pd.DataFrame, name: str, position: int, as_of: str | None, fmt: str,
                  limit: int | None) -> None:
    total = len(df)
    if limit is not None:
        df = df.head(limit)
    if fmt == "json":
        rows = json.loads(df.to_json(orient="records", date_format="iso", date_unit="us"))
        _emit_json({"projection": name, "as_of": as_of, "position": position,
                    "rows_total": total, "count": len(rows), "rows": rows})
    elif fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    else:
        click.echo(f"{name} at position {position:,}"
                   + (f" (as of {as_of})" if as_of else "") + f": {total:,} rows")
        _print_frame(df)


# ---------------------------------------------------------------------------------- dashboard
@cli.command("dashboard")
@_store_option
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="TCP port on 127.0.0.1; 0 picks a free one.")
@click.option("--model", "model_spec", metavar="MODULE:ATTR",
              help="A Model (or App, or function returning a Model) whose projections to "
                   "show (default: the process-log model for imported logs).")
@click.option("--projection", metavar="NAME", help="The projection shown first.")
@click.option("--show", is_flag=True, help="Open a browser tab.")
@_errors
def dashboard_cmd(store_path: str, port: int, model_spec: str | None, projection: str | None,
                  show: bool) -> None:
    """Serve a read-only Panel dashboard of a store on 127.0.0.1 until Ctrl-C.

    Tabs: store overview, stream browser, projection table with a position slider, traces.
    The dashboard reads a private snapshot copy of the file, so a notebook can write to the
    store meanwhile; its Refresh button takes a new copy.
    """
    if not Path(store_path).is_file():
        raise CliError(f"no event store at {store_path!r}; create one with "
                       f"`allframe-lab import LOG --store {store_path}`")
    try:
        from allframe_lab.notebook.dashboard import load_model, serve
    except ImportError as exc:
        raise CliError(f"{exc}; the dashboard needs: pip install 'allframe-lab[notebook]'"
                       ) from exc
    if model_spec is None:
        from allframe_lab.io import process_log_model

        model = process_log_model()
    else:
        model = load_model(model_spec)
    serve(store_path, port=port, model=model, projection=projection, show=show,
          on_ready=lambda url: click.echo(
              f"allframe-lab dashboard: serving {store_path} (read-only) at {url} "
              "- press Ctrl-C to stop"))


# ---------------------------------------------------------------------------------- migrate
@cli.command("migrate")
@_store_option
@click.option("--model", "model_spec", metavar="MODULE:ATTR|FILE.py:ATTR",
              help="The Model declaring the event versions, e.g. myapp.model:bank or "
                   "model.py:bank (an attribute that is a Model, or a function returning one).")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--drop-backup", is_flag=True,
              help="Drop the backup tables (events_backup_*) of migrations, including this "
                   "run's; alone (without --model) it only drops the existing ones.")
@click.option("--batch-size", type=click.IntRange(min=1), default=100_000, show_default=True,
              metavar="N", help="Events copied per Arrow batch.")
@_json_option
@_errors
def migrate_cmd(store_path: str, model_spec: str | None, dry_run: bool, drop_backup: bool,
                batch_size: int, as_json: bool) -> None:
    """Rewrite stored events at their latest schema versions (upcast once, on disk).

    Copies the events table into a new one with upcast payloads, verifies counts, positions
    and event ids, swaps the tables in one transaction and keeps the original as
    events_backup_<timestamp> until --drop-backup. Run --dry-run first. No other process may
    hold the store.
    """
    from allframe_lab.runtime.migration import MigrationReport, drop_backups, migrate

    if model_spec is None and not drop_backup:
        raise CliError("give --model MODULE:ATTR (or FILE.py:ATTR) to migrate, or "
                       "--drop-backup to drop the backups of earlier migrations")
    if not Path(store_path).is_file():
        raise CliError(f"no event store at {store_path!r}")
    if model_spec is None:
        report = MigrationReport(store_path, dry_run, 0, ())
    else:
        report = migrate(store_path, _load_model(model_spec), dry_run=dry_run,
                         batch_size=batch_size)
    if drop_backup and not dry_run:
        import dataclasses

        dropped = drop_backups(store_path)
        report = dataclasses.replace(report, dropped_backups=tuple(dropped),
                                     backup_table=None)
    if as_json:
        _emit_json(report.as_dict())
    elif model_spec is None:
        click.echo(f"{store_path}: dropped backups: "
                   + (", ".join(report.dropped_backups) or "none"))
    else:
        click.echo(report.summary())


def _load_model(spec: str) -> Any:
    """Import ``module:attr`` or ``path/to/file.py:attr`` and return the Model it names."""
    import importlib
    import importlib.util
    import sys

    from allframe_lab.model import Model

    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise CliError(f"--model {spec!r}: expected MODULE:ATTR or FILE.py:ATTR")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise CliError(f"--model: no such file {target!r}")
        name = f"_allframe_model_{abs(hash(str(path.resolve())))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise CliError(f"--model: cannot import {target!r}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CliError(f"--model: {target!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, (Model, type)):
        obj = obj()
    if not isinstance(obj, Model):
        raise CliError(f"--model {spec!r} is a {type(obj).__name__}, not an allframe_lab Model")
    return obj


# ---------------------------------------------------------------------------------- helpers
def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame.from_records(rows, columns=columns)


def _print_frame(df: pd.DataFrame) -> None:
    if df.empty:
        click.echo("(no rows)")
        return
    click.echo(df.to_string(index=False, max_colwidth=80))


#: The console-script entry point (``allframe-lab = allframe_lab.cli:main``).
main = cli

if __name__ == "__main__":  # pragma: no cover
    main(prog_name="allframe-lab")
