"""What the Panel dashboard shows, as plain DataFrames: no Panel here, so it is testable alone.

:class:`DashboardData` reads one store through an :class:`~allframe_lab.runtime.App`: the store
overview, the stream browser's queries, projections as of a position (the runner's ``as_of``,
nothing is written) and spans, if a trace exporter left any.

A DuckDB file is read from a **private snapshot copy** by default (:func:`open_snapshot`): the
dashboard then never holds DuckDB's file lock, so a notebook can open the file for writing
before or after the dashboard starts. :meth:`DashboardData.refresh` takes a new copy.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import StoreError
from allframe_lab.model import Model, SqlProjection
from allframe_lab.runtime import App
from allframe_lab.store import AsOf, DuckDBEventStore, EventStore

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd

__all__ = ["DashboardData", "SpanSource", "TRACE_FILE_SUFFIXES", "open_snapshot",
           "spans_from_exporter"]

#: Files next to a store ``x.duckdb`` that are read as JSON-lines spans (trace.v1 span
#: objects, one per line): ``x.duckdb.spans.jsonl``, ``x.spans.jsonl``, ``x.traces.jsonl``.
TRACE_FILE_SUFFIXES = (".spans.jsonl", ".traces.jsonl")

#: A trace source: a JSON-lines path, an object with ``get_finished_spans()`` (an
#: OpenTelemetry ``InMemorySpanExporter``), or a callable returning span dicts.
SpanSource = str | os.PathLike[str] | Callable[[], Iterable[Mapping[str, Any]]] | Any

SPAN_COLUMNS = ["trace_id", "span_id", "parent_id", "name", "start_ns", "end_ns",
                "duration_ms", "status", "attributes"]


def open_snapshot(path: str | os.PathLike[str], /) -> DuckDBEventStore:
    """Open a private read-only copy of a DuckDB store file.

    The file (and its ``.wal`` and ``.journal``, so that committed events not yet
    checkpointed or not yet moved out of the journal are seen) is copied into a new temporary
    folder and opened there (five tries: a writer may checkpoint while the file is copied).
    The original file is never locked, so a writer can open it at any time. Close the store
    to delete the copy.

    Parameters
    ----------
    path : str or path
        A DuckDB event-store file.

    Returns
    -------
    DuckDBEventStore
        ``DuckDBEventStore(path, read_only=True, snapshot=True)``; its ``path`` and
        ``source_path`` are the original's.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    StoreError
        If no consistent copy could be opened.

    Examples
    --------
    >>> import tempfile, os
    >>> from allframe_lab.store import DuckDBEventStore, NewEvent
    >>> folder = tempfile.mkdtemp()
    >>> writer = DuckDBEventStore(os.path.join(folder, "shop.duckdb"))
    >>> _ = writer.append("order-1", [NewEvent("OrderPlaced", {"total": 30})])
    >>> copy = open_snapshot(os.path.join(folder, "shop.duckdb"))  # beside the writer
    >>> copy.read_only, copy.head_position
    (True, 1)
    >>> copy.close(); writer.close()
    """
    source = os.fspath(path)
    store = DuckDBEventStore(source, read_only=True, snapshot=True)
    store.source_path = source  # type: ignore[attr-defined]
    return store


@dataclass(frozen=True, slots=True)
class Overview:
    """Counts and time range of a store, as shown on the overview tab."""

    events: int
    streams: int
    head_position: int
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    event_types: pd.DataFrame  # columns: type, events (most frequent first)


class DashboardData:
    """The dashboard's queries over one store, as DataFrames.

    Parameters
    ----------
    app_or_path : App, EventStore, str or path
        An ``App`` (its model and store are used as they are), a store (read with
        ``model``), or a DuckDB file (opened read-only, see ``snapshot``).
    model : Model, optional
        The model whose projections are offered (ignored for an ``App``). Default: an empty
        model, so no projections.
    snapshot : bool, default True
        For a file: read a private snapshot copy (:func:`open_snapshot`), which never locks
        the file. With False it is opened with ``DuckDBEventStore(path, read_only=True)``,
        which holds DuckDB's shared lock (a notebook then cannot open the file for writing
        until the dashboard closes) and falls back to a copy if a writer already holds it.
    traces : SpanSource, optional
        Where spans come from; by default a JSON-lines file next to the store file
        (:data:`TRACE_FILE_SUFFIXES`), if there is one.

    Examples
    --------
    >>> from allframe_lab import App, Model
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> m = Model("log")
    >>> _ = m.sql_projection("per_type", "SELECT type, count(*) AS n FROM events GROUP BY type")
    >>> store = InMemoryEventStore()
    >>> _ = store.append("s1", [NewEvent("A", {}), NewEvent("B", {}), NewEvent("A", {})])
    >>> data = DashboardData(App(m, store))
    >>> data.overview().event_types.values.tolist()
    [['A', 2], ['B', 1]]
    >>> data.projection("per_type", 2).sort_values("type").values.tolist()
    [['A', 1], ['B', 1]]
    >>> data.streams(type="B").stream_id.tolist()
    ['s1']
    """

    def __init__(self, app_or_path: App | EventStore | str | os.PathLike[str], /, *,
                 model: Model | None = None, snapshot: bool = True,
                 traces: SpanSource | None = None) -> None:
        self._owns_store = False
        self.snapshot = snapshot
        self.path: str | None = None
        if isinstance(app_or_path, App):
            self.app = app_or_path
        else:
            if isinstance(app_or_path, EventStore):
                store = app_or_path
            else:
                self.path = os.fspath(app_or_path)
                store = self._open(self.path)
                self._owns_store = True
            self.app = App(model if model is not None else Model("store"), store)
        self.model = self.app.model
        self.traces_source = traces
        self._mirror: duckdb.DuckDBPyConnection | None = None
        self._mirror_lock = threading.RLock()
        self._has_log = False
        self.opened_at = datetime.now(UTC)

    # -------------------------------------------------------------- opening / refreshing
    def _open(self, path: str) -> DuckDBEventStore:
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"no event store at {path!r}; create one with "
                f"`allframe-lab import LOG --store {path}`")
        if self.snapshot:
            return open_snapshot(path)
        return DuckDBEventStore(path, read_only=True)

    @property
    def store(self) -> EventStore:
        return self.app.store

    @property
    def mode(self) -> str:
        """How the store is read, in words (shown in the dashboard's header)."""
        store = self.store
        if self._owns_store and self.snapshot:
            return "read-only snapshot copy"
        if getattr(store, "is_snapshot_copy", False):
            return "read-only snapshot copy (a writer holds the file)"
        if getattr(store, "read_only", False):
            return "read-only"
        return "live (this process's store)"

    @property
    def source(self) -> str:
        """The store's file, or a description of the store."""
        if self.path is not None:
            return self.path
        path = getattr(self.store, "path", None)
        return str(path) if path else type(self.store).__name__

    def refresh(self) -> None:
        """See events written since the dashboard opened.

        A snapshot copy is taken again; a store opened read-only is re-opened (a new
        snapshot copy if a writer holds the file); a live store is read as it is.
        """
        if self._owns_store and self.path is not None:
            old = self.app.store
            store = self._open(self.path)
            self.app = App(self.model, store)
            old.close()
        elif getattr(self.store, "read_only", False) and hasattr(self.store, "refresh"):
            self.store.refresh()  # type: ignore[attr-defined]
            self.app = App(self.model, self.store)  # the runner caches the old connection
        self._mirror = None
        self._has_log = False
        self.opened_at = datetime.now(UTC)

    def close(self) -> None:
        """Close the store if the dashboard opened it (and delete a snapshot copy)."""
        if self._owns_store:
            self.app.store.close()
        if self._mirror is not None:
            self._mirror.close()
            self._mirror = None

    # -------------------------------------------------------------- SQL over the log
    @contextmanager
    def _events(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection on which ``events`` is the store's log."""
        con = getattr(self.store, "connection", None)
        if con is not None:
            with self.store.lock:  # type: ignore[attr-defined]
                yield con
            return
        import duckdb

        with self._mirror_lock:
            head = self.store.head_position
            if self._mirror is None or self._mirror_head != head:
                to_arrow = getattr(self.store, "to_arrow", None)
                if to_arrow is None:
                    raise StoreError(f"{type(self.store).__name__} cannot be read with SQL; "
                                     "use a DuckDBEventStore or an InMemoryEventStore")
                if self._mirror is None:
                    self._mirror = duckdb.connect()
                    self._mirror.execute("SET TimeZone = 'UTC'")
                self._mirror.register("events", to_arrow())
                self._mirror_head = head
            yield self._mirror

    def _frame(self, sql: str, params: Any = None) -> pd.DataFrame:
        from allframe_lab.store.duckdb import frame

        with self._events() as con:
            if not self._has_log:  # a read-only copy of a new file: no table yet
                self._has_log = _has_events(con)
                if not self._has_log:
                    return frame(con, "SELECT 1 WHERE false")
            return frame(con, sql, params)

    # -------------------------------------------------------------- overview
    def overview(self) -> Overview:
        """Counts, head position, time range and events per type."""
        import pandas as pd

        stats = self.store.stats()
        types = pd.DataFrame(sorted(stats.event_types.items(), key=lambda kv: (-kv[1], kv[0])),
                             columns=["type", "events"])
        return Overview(stats.events, stats.streams, stats.head_position,
                        stats.first_occurred_at, stats.last_occurred_at, types)

    @property
    def head_position(self) -> int:
        return self.store.head_position

    def event_at(self, position: int) -> dict[str, Any] | None:
        """The event at a global position: position, stream_id, version, type, occurred_at."""
        df = self._frame("SELECT position, stream_id, version, type, occurred_at FROM events "
                         "WHERE position = ?", [position])
        return None if df.empty else df.iloc[0].to_dict()

    # -------------------------------------------------------------- streams
    def streams(self, *, text: str | None = None, type: str | None = None,
                limit: int = 500) -> pd.DataFrame:
        """Streams whose id contains ``text`` (any case) and that have an event of ``type``.

        Returns
        -------
        pandas.DataFrame
            Columns ``stream_id, version, events, first_position, last_position,
            first_occurred_at, last_occurred_at``, at most ``limit`` rows, by first position.
        """
        text = text or None
        type = type or None
        return self._frame(
            "SELECT stream_id, max(version) AS version, count(*) AS events, "
            "min(position) AS first_position, max(position) AS last_position, "
            "min(occurred_at) AS first_occurred_at, max(occurred_at) AS last_occurred_at "
            "FROM events WHERE ($text IS NULL OR contains(lower(stream_id), lower($text))) "
            "GROUP BY stream_id HAVING ($type IS NULL OR bool_or(type = $type)) "
            f"ORDER BY min(position) LIMIT {int(limit)}",
            {"text": text, "type": type})

    def count_streams(self, *, text: str | None = None, type: str | None = None) -> int:
        """How many streams match the same filters as :meth:`streams` (without the limit)."""
        df = self._frame(
            "SELECT count(*) AS n FROM (SELECT stream_id FROM events "
            "WHERE ($text IS NULL OR contains(lower(stream_id), lower($text))) "
            "GROUP BY stream_id HAVING ($type IS NULL OR bool_or(type = $type)))",
            {"text": text or None, "type": type or None})
        return 0 if df.empty else int(df.n.iloc[0])

    def stream_events(self, stream_id: str, /) -> pd.DataFrame:
        """One stream's events in version order, payloads as JSON text.

        Columns ``position, version, type, occurred_at, data, metadata``.
        """
        from allframe_lab.runtime.frames import events_frame

        df = events_frame(self.store.read_stream(stream_id))
        for col in ("data", "metadata"):
            df[col] = [json.dumps(v, ensure_ascii=False, default=str) for v in df[col]]
        return df[["position", "version", "type", "occurred_at", "data", "metadata"]]

    # -------------------------------------------------------------- projections
    @property
    def projection_names(self) -> list[str]:
        return list(self.model.projections)

    def projection_kind(self, name: str, /) -> str:
        decl = self.model.projection_decl(name)
        return "sql" if isinstance(decl, SqlProjection) else "python"

    def projection(self, name: str, position: int, /) -> pd.DataFrame:
        """A projection as of a global position (computed, nothing is written).

        Raises
        ------
        UnknownNameError
            If the model has no projection ``name``.
        ProjectionError
            If its SQL or a handler fails.
        """
        return self.app.projections.as_of(name, AsOf(position=position))

    # -------------------------------------------------------------- traces
    def trace_files(self) -> list[Path]:
        """JSON-lines span files next to the store file that exist."""
        path = self.path or getattr(self.store, "source_path", None) or getattr(
            self.store, "path", None)
        if not path or str(path).startswith(":"):
            return []
        p = Path(path)
        candidates = [p.with_name(p.name + s) for s in TRACE_FILE_SUFFIXES]
        candidates += [p.with_suffix(s) for s in TRACE_FILE_SUFFIXES]
        return [c for c in dict.fromkeys(candidates) if c.is_file()]

    def spans(self) -> tuple[pd.DataFrame, str | None]:
        """Spans from the trace source, and where they came from (None: no source found).

        Returns
        -------
        (pandas.DataFrame, str or None)
            Columns :data:`SPAN_COLUMNS` ordered by start, ``duration_ms`` in milliseconds.
        """
        import pandas as pd

        source = self.traces_source
        label: str | None
        if source is None:
            files = self.trace_files()
            if not files:
                return pd.DataFrame(columns=SPAN_COLUMNS), None
            source = files[0]
        if isinstance(source, str | os.PathLike):
            label = os.fspath(source)
            rows = list(_read_jsonl(Path(source)))
        else:
            label = type(source).__name__
            rows = list(spans_from_exporter(source))
        df = pd.DataFrame(rows, columns=[*SPAN_COLUMNS[:6], "status", "attributes"])
        df["duration_ms"] = (df.end_ns - df.start_ns) / 1e6
        df = df.sort_values("start_ns", kind="stable").reset_index(drop=True)
        return df[SPAN_COLUMNS], label

    def __repr__(self) -> str:
        return (f"<DashboardData {self.source!r} ({self.mode}), head_position="
                f"{self.head_position}, projections={self.projection_names}>")


def _has_events(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``events`` exists (a read-only copy of a new file may have no table yet)."""
    try:
        con.execute("SELECT 1 FROM events LIMIT 0")
    except Exception:
        return False
    return True


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                span = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON span ({exc.msg}); each line must be "
                                 "one trace.v1 span object") from exc
            yield _span_row(span)


def spans_from_exporter(source: Any, /) -> Iterator[dict[str, Any]]:
    """Span dicts (trace.v1 fields) from an in-memory exporter or a callable.

    ``source`` is an OpenTelemetry ``InMemorySpanExporter`` (anything with
    ``get_finished_spans()`` returning ``ReadableSpan`` objects), or a callable returning
    span dicts with the trace.v1 fields ``trace_id, span_id, parent_id, name, start_ns,
    end_ns, status, attributes``.

    Examples
    --------
    >>> spans = [{"trace_id": "a" * 32, "span_id": "b" * 16, "name": "dispatch Deposit",
    ...           "start_ns": 0, "end_ns": 2_000_000}]
    >>> [s["name"] for s in spans_from_exporter(lambda: spans)]
    ['dispatch Deposit']
    """
    getter = getattr(source, "get_finished_spans", None)
    items = getter() if getter is not None else source()
    for span in items:
        yield _span_row(span if isinstance(span, Mapping) else _otel_span(span))


def _otel_span(span: Any) -> dict[str, Any]:
    ctx = span.context
    parent = getattr(span, "parent", None)
    status = getattr(getattr(span, "status", None), "status_code", None)
    return {
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_id": f"{parent.span_id:016x}" if parent is not None else None,
        "name": span.name,
        "start_ns": int(span.start_time or 0),
        "end_ns": int(span.end_time or span.start_time or 0),
        "status": getattr(status, "name", "UNSET").lower(),
        "attributes": dict(span.attributes or {}),
    }


def _span_row(span: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "trace_id": str(span.get("trace_id", "")),
        "span_id": str(span.get("span_id", "")),
        "parent_id": span.get("parent_id"),
        "name": str(span.get("name", "")),
        "start_ns": int(span.get("start_ns", 0)),
        "end_ns": int(span.get("end_ns", span.get("start_ns", 0))),
        "status": str(span.get("status", "unset")),
        "attributes": json.dumps(span.get("attributes") or {}, default=str),
    }
