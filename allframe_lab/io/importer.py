"""Importing a process log into an event store: read it whole, then append it in one go.

The log is parsed completely into one Arrow table *before* anything is written, and the table
goes to :meth:`~allframe_lab.store.EventStore.append_arrow` in one transaction, so an import
either stores every event or none (a bad row 200,000 leaves the store as it was).

Events are appended in ``occurred_at`` order (stable: events with the same time keep their file
order), so positions follow time and ``as_of(timestamp=...)`` is a prefix of the log.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from allframe_lab.errors import ImportFormatError
from allframe_lab.io.mapping import LogMapping
from allframe_lab.store import EventStore

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["ImportResult", "LogFormat", "detect_format", "import_log", "read_log"]

LogFormat = Literal["xes", "csv", "parquet"]

_SUFFIXES: dict[str, LogFormat] = {
    ".xes": "xes", ".xes.gz": "xes", ".xml": "xes", ".xml.gz": "xes",
    ".csv": "csv", ".csv.gz": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
}


def detect_format(source: str | os.PathLike[str], /) -> LogFormat:
    """The log format from a file name: ``.xes[.gz]``, ``.csv[.gz]``, ``.parquet``.

    Raises
    ------
    ImportFormatError
        If the name has none of these endings.

    Examples
    --------
    >>> detect_format("logs/bpic2012.xes.gz"), detect_format("log.CSV")
    ('xes', 'csv')
    """
    name = Path(source).name.lower()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return _SUFFIXES[suffix]
    raise ImportFormatError(
        os.fspath(source), "file name",
        "cannot tell the log format from the name; pass format='xes', 'csv' or 'parquet'",
    )


def read_log(
    source: str | os.PathLike[str],
    /,
    *,
    mapping: LogMapping | None = None,
    format: LogFormat | None = None,
    progress: bool | None = None,
    batch_size: int = 100_000,
) -> pa.Table:
    """Read a process log into an Arrow table of events, without storing it.

    Parameters
    ----------
    source : str or path
        An XES (``.xes``, ``.xes.gz``), CSV (``.csv``, ``.csv.gz``) or Parquet file.
    mapping : LogMapping, optional
        Which attributes give case id, activity and timestamp (default: the XES names or,
        for tabular logs, a common variant such as ``case_id`` / ``Activity``).
    format : {"xes", "csv", "parquet"}, optional
        Default: from the file name.
    progress : bool, optional
        Progress bar while parsing XES; default on for files over 2 MB.
    batch_size : int, default 100_000
        Events converted to Arrow at a time (bounds the memory of Python objects).

    Returns
    -------
    pyarrow.Table
        Columns ``stream_id`` (str), ``type`` (str), ``data`` (JSON text), ``occurred_at``
        (timestamp[us, UTC]), sorted by ``occurred_at`` (stable, so same-time events keep their
        file order). This is what :func:`import_log` appends.

    Raises
    ------
    ImportFormatError
        If the file cannot be read as a log; the error names the place (``line 120``,
        ``trace 3, event 5 (line 120)``, ``row 7``, ``header``).
    FileNotFoundError
        If the file does not exist.

    Examples
    --------
    >>> from allframe_lab.io import dataset_path
    >>> table = read_log(dataset_path("running-example"))
    >>> table.num_rows, table.column_names
    (42, ['stream_id', 'type', 'data', 'occurred_at'])
    >>> table.slice(0, 1).to_pylist()[0]["data"]
    '{"case:creator":"Fluxicon Nitro","org:resource":"Pete","Activity":"register request","Resource":"Pete","Costs":"50"}'
    """  # noqa: E501
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no such event log: {os.fspath(source)!r}")
    fmt = format or detect_format(source)
    if fmt == "xes":
        from allframe_lab.io.xes import read_xes

        return read_xes(source, mapping=mapping, progress=progress, batch_size=batch_size)
    if fmt == "csv":
        from allframe_lab.io.tabular import read_csv

        return read_csv(source, mapping=mapping, batch_size=batch_size)
    if fmt == "parquet":
        from allframe_lab.io.tabular import read_parquet

        return read_parquet(source, mapping=mapping, batch_size=batch_size)
    raise ValueError(f"format must be 'xes', 'csv' or 'parquet', got {fmt!r}")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import stored, and how long it took.

    Attributes
    ----------
    source : str
        The file that was read.
    format : str
        ``"xes"``, ``"csv"`` or ``"parquet"``.
    events, streams, event_types : int
        Events appended, distinct streams (cases) and distinct event types (activities).
    first_position, last_position : int
        The global positions the events were given (0, 0 for an empty log).
    first_occurred_at, last_occurred_at : datetime or None
        The time range of the events (UTC).
    parse_seconds, store_seconds : float
        Wall time reading the file, and appending to the store.
    events_per_second : float
        ``events / (parse_seconds + store_seconds)``.
    """

    source: str
    format: str
    events: int
    streams: int
    event_types: int
    first_position: int
    last_position: int
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    parse_seconds: float
    store_seconds: float
    events_per_second: float

    @property
    def seconds(self) -> float:
        """Total wall time of the import."""
        return self.parse_seconds + self.store_seconds

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-compatible data (times as ISO-8601 text)."""
        out = asdict(self)
        for k in ("first_occurred_at", "last_occurred_at"):
            out[k] = out[k].isoformat() if out[k] is not None else None
        out["seconds"] = self.seconds
        return out

    def __repr__(self) -> str:
        span = ""
        if self.first_occurred_at is not None and self.last_occurred_at is not None:
            span = (f", {self.first_occurred_at:%Y-%m-%d %H:%M} .. "
                    f"{self.last_occurred_at:%Y-%m-%d %H:%M} UTC")
        return (
            f"<ImportResult {Path(self.source).name}: {self.events:,} events in "
            f"{self.streams:,} streams, {self.event_types:,} event types{span}, positions "
            f"{self.first_position:,}..{self.last_position:,}; parse {self.parse_seconds:.2f} s,"
            f" store {self.store_seconds:.2f} s, {self.events_per_second:,.0f} events/s>"
        )


def import_log(
    source: str | os.PathLike[str],
    store: EventStore,
    /,
    *,
    mapping: LogMapping | None = None,
    format: LogFormat | None = None,
    progress: bool | None = None,
    batch_size: int = 100_000,
) -> ImportResult:
    """Import a process log into an event store, in one transaction: all events or none.

    Each case becomes a stream (``stream_id`` = case id, with ``mapping.stream_prefix``), each
    activity an event type, each timestamp the event's ``occurred_at``; all other attributes
    (trace attributes prefixed ``case:``) form the JSON payload. Events are appended in time
    order, so stream versions follow time too.

    Parameters
    ----------
    source : str or path
        An XES (``.xes``, ``.xes.gz``), CSV (``.csv``, ``.csv.gz``) or Parquet file.
    store : EventStore
        Any store; :class:`~allframe_lab.store.DuckDBEventStore` imports at Arrow speed.
    mapping, format, progress, batch_size
        As for :func:`read_log`.

    Returns
    -------
    ImportResult
        Counts, positions, time range and timings.

    Raises
    ------
    ImportFormatError
        If the file cannot be read as a log (naming the place); nothing is written.
    ReadOnlyStoreError
        If the store was opened read-only.

    Examples
    --------
    >>> from allframe_lab.io import dataset_path
    >>> from allframe_lab.store import InMemoryEventStore
    >>> store = InMemoryEventStore()
    >>> result = import_log(dataset_path("running-example"), store)
    >>> result.events, result.streams, result.event_types, store.head_position
    (42, 6, 8, 42)
    >>> result.first_occurred_at.isoformat()
    '2010-12-30T10:02:00+00:00'
    """
    import pyarrow.compute as pc

    src = os.fspath(source)
    t0 = time.perf_counter()
    table = read_log(source, mapping=mapping, format=format, progress=progress,
                     batch_size=batch_size)
    fmt = format or detect_format(source)
    t1 = time.perf_counter()
    head = store.head_position
    n = store.append_arrow(table)
    t2 = time.perf_counter()
    if n:
        times = pc.min_max(table.column("occurred_at"))
        first, last = times["min"].as_py(), times["max"].as_py()
        streams = pc.count_distinct(table.column("stream_id")).as_py()
        types = pc.count_distinct(table.column("type")).as_py()
    else:
        first = last = None
        streams = types = 0
    return ImportResult(
        source=src, format=fmt, events=n, streams=streams, event_types=types,
        first_position=head + 1 if n else 0, last_position=head + n,
        first_occurred_at=first, last_occurred_at=last,
        parse_seconds=t1 - t0, store_seconds=t2 - t1,
        events_per_second=n / (t2 - t0) if t2 > t0 else 0.0,
    )
