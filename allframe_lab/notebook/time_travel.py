"""The time-travel widget: scrub a store's log and watch a projection and an aggregate change.

:class:`TimeTravel` is an `anywidget <https://anywidget.dev>`_ (plain ES module, no build
step). Its state lives in kernel-side traitlets, so it can be driven and checked without a
browser: :meth:`TimeTravel.goto`, :meth:`TimeTravel.step` and the traits ``position``,
``timestamp``, ``event``, ``rows``, ``changed_keys``, ``total_rows``.

Each point is read with the runtime's as-of machinery, never by replaying from position 1:

- a **SQL projection** runs its SELECT over the log prefix ``position <= p``, the same
  statement as :meth:`ProjectionRunner.as_of
  <allframe_lab.runtime.projections.ProjectionRunner.as_of>`, fetched as numpy columns (no
  DataFrame); rows are compared with the previous point **by full row** (row hashes);
- a **Python projection** is folded forward from the previous point's rows, or from the
  runner's cached state at the cache mark before the target (:meth:`ProjectionRunner.python_state
  <allframe_lab.runtime.projections.ProjectionRunner.python_state>`), into copy-on-touch rows;
  rows are compared **by the projection's key**. The first widget on a Python projection
  folds the whole log once to fill the runner's cache (about 1.4 s for BPIC 2012's 262,200
  events); later moves fold at most one cache interval (``max(5000, head // 48)`` events);
- the aggregate is loaded with ``app.load(name, stream_id, as_of=AsOf(position=p))``.

Only a bounded number of rows is sent to the browser (``max_rows``): the changed rows first,
then the table's first rows; ``total_rows`` gives the full count.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

try:
    import anywidget
    import traitlets
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the time-travel widget needs anywidget and ipywidgets: "
        "pip install 'allframe-lab[notebook]'"
    ) from exc

from allframe_lab.errors import AllframeError, ProjectionError
from allframe_lab.model import RowSet, SqlProjection
from allframe_lab.store import AsOf

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from allframe_lab.runtime import App

__all__ = ["TimeTravel", "jsonable"]

_STATIC = Path(__file__).resolve().parent / "static"


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` for the browser (timestamps as ISO-8601 text).

    Examples
    --------
    >>> from datetime import datetime, timedelta, timezone
    >>> jsonable({"at": datetime(2012, 1, 2, 3, 4, tzinfo=timezone.utc),
    ...           "d": timedelta(hours=1), "x": float("nan"), "ids": (1, 2)})
    {'at': '2012-01-02T03:04:00+00:00', 'd': '1:00:00', 'x': None, 'ids': [1, 2]}
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):  # pandas.Timestamp is a datetime
        try:
            return value.isoformat()
        except ValueError:  # NaT
            return None
    if isinstance(value, timedelta):  # pandas.Timedelta is a timedelta
        return None if value != value else str(value)
    if isinstance(value, Decimal | UUID):
        return str(value) if isinstance(value, UUID) else float(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return jsonable(item())
    if value != value:  # pandas NA/NaT
        return None
    return str(value)


class _Shown:
    """What a projection looks like at one point: the shown rows and how they differ."""

    __slots__ = ("changed_count", "columns", "display", "flags", "keys", "removed", "total")

    def __init__(self, columns: list[str], display: list[dict[str, Any]], flags: list[bool],
                 keys: Callable[[], list[Any]], changed_count: int, removed: int,
                 total: int) -> None:
        self.columns = columns
        self.display = display
        self.flags = flags
        self.keys = keys  # every changed row, computed on demand (thousands after a jump)
        self.changed_count = changed_count
        self.removed = removed
        self.total = total


class _SqlView:
    """A SQL projection at successive points; diffs by full row (hashes of the row values).

    The SELECT runs over the log prefix ``position <= p`` exactly as the runner's ``as_of``
    does, but its columns are fetched as numpy arrays: no DataFrame is built, only the shown
    rows become Python values (a DataFrame of BPIC 2012's 13,087 cases costs more than the
    query itself).
    """

    kind = "sql"

    def __init__(self, app: App, name: str, key: str | None) -> None:
        self.app = app
        self.name = name
        self.key = key
        self._hashes: np.ndarray | None = None
        self._keys: np.ndarray | None = None

    def reset(self) -> None:
        self._hashes = None
        self._keys = None

    def at(self, position: int, max_rows: int) -> _Shown:
        import numpy as np

        names, arrays, tz = _sql_as_of(self.app, self.name, position)
        n = len(arrays[0]) if arrays else 0
        hashes = _row_hashes(arrays, n)
        key = names.index(self.key) if self.key in names else None
        keys_now = _row_hashes([arrays[key]], n) if key is not None else None
        if self._hashes is None:
            changed_mask = np.zeros(n, dtype=bool)
            removed = 0
        else:
            changed_mask = ~np.isin(hashes, self._hashes)
            if keys_now is not None and self._keys is not None:
                removed = int((~np.isin(self._keys, keys_now)).sum())
            else:  # without a key a changed row cannot be told from a removed + added one
                removed = max(0, len(self._hashes) - n)
        self._hashes, self._keys = hashes, keys_now
        changed_idx = np.flatnonzero(changed_mask)
        cells = list(zip(arrays, tz, strict=True))

        def keys() -> list[Any]:
            if key is not None:
                return [_cell(arrays[key], int(i), tz[key]) for i in changed_idx]
            return [tuple(_cell(a, int(i), z) for a, z in cells) for i in changed_idx]

        first = changed_idx[:max_rows]
        rest = np.flatnonzero(~changed_mask)[: max_rows - len(first)]
        display = [{c: jsonable(_cell(a, int(i), z)) for c, (a, z) in zip(names, cells,
                                                                           strict=True)}
                   for i in (*first, *rest)]
        flags = [True] * len(first) + [False] * len(rest)
        return _Shown(names, display, flags, keys, len(changed_idx), removed, n)


def _sql_as_of(app: App, name: str, position: int) -> tuple[list[str], list[Any], list[bool]]:
    """Column names, numpy columns and "is a UTC timestamp" flags of a SQL projection as of
    ``position``.

    Uses the runner's as-of SELECT (``_prefix_sql``) when it has one; otherwise falls back to
    the public DataFrame path.
    """
    runner = app.projections
    decl = app.model.projection_decl(name)
    prefix = getattr(runner, "_prefix_sql", None)
    if prefix is None or not isinstance(decl, SqlProjection):  # pragma: no cover - fallback
        df = runner.as_of(name, AsOf(position=position))
        cols = [str(c) for c in df.columns]
        return cols, [df[c].to_numpy() for c in df.columns], [False] * len(cols)
    with runner._lock:
        runner._mirror()
        try:
            cur = runner.connection.execute(prefix(decl.sql, "position <= ?"), [position])
            names = [str(d[0]) for d in cur.description]
            tz = ["WITH TIME ZONE" in str(d[1]).upper() for d in cur.description]
            data = cur.fetchnumpy()
        except Exception as exc:
            raise ProjectionError(f"SQL projection {name!r} failed: {exc}") from exc
    return names, [data[c] for c in names], tz


def _row_hashes(arrays: list[Any], n: int) -> np.ndarray:
    """One 64-bit hash per row over all its values (NULLs hash alike)."""
    import numpy as np
    from pandas.util import hash_array

    out = np.zeros(n, dtype=np.uint64)
    for col in arrays:
        if isinstance(col, np.ma.MaskedArray):
            h = hash_array(np.asarray(col.data), categorize=False)
            h[np.ma.getmaskarray(col)] = np.uint64(0x9E3779B97F4A7C15)
        else:
            h = hash_array(np.asarray(col), categorize=False)
        out = out * np.uint64(1_000_003) ^ h
    return out


def _cell(col: Any, i: int, utc: bool) -> Any:
    """The Python value of row ``i`` of a fetched numpy column (None for NULL)."""
    import numpy as np

    if isinstance(col, np.ma.MaskedArray) and np.ma.getmaskarray(col)[i]:
        return None
    v = col[i]
    if isinstance(v, np.datetime64):
        if np.isnat(v):
            return None
        v = v.astype("datetime64[us]").item()
        return v.replace(tzinfo=UTC) if utc and isinstance(v, datetime) else v
    if isinstance(v, np.timedelta64):
        return None if np.isnat(v) else v.astype("timedelta64[us]").item()
    item = getattr(v, "item", None)
    return item() if callable(item) and isinstance(v, np.generic) else v


class _CopyOnTouchRows(RowSet):
    """Rows over a shared base dict: a row is copied the first time it is read or written.

    The base (the runner's cached state, or the rows of the previous point) is never
    mutated, and ``_touched`` is exactly the set of rows the fold may have changed.
    """

    __slots__ = ()

    def __getitem__(self, key: Any) -> dict[str, Any]:
        row = self._rows[key]
        if key not in self._touched:
            row = self._rows[key] = dict(row)
            self._touched.add(key)
        return row

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self._rows else default


class _PythonView:
    """A Python projection at successive points; diffs by the projection's key.

    A move starts from the nearer of two states: the previous point's rows (forward moves
    within one cache interval) or the runner's cached state at the cache mark at or before
    the target (:meth:`ProjectionRunner.python_state`, asked only for marks, so its cache
    holds evenly spread states and is never thinned by the widget). From there the events
    up to the target are folded into copy-on-touch rows: nothing cached is mutated, and a
    forward move compares only the rows its events touched.
    """

    kind = "python"

    def __init__(self, app: App, name: str, key: str) -> None:
        self.app = app
        self.name = name
        self.key = key
        self.decl = app.model.projection_decl(name)
        self.columns = list(getattr(self.decl, "__columns__", None) or {})
        self._state: dict[Any, dict[str, Any]] | None = None
        self._position = 0
        head = app.store.head_position
        last = self._mark(head)
        if last:  # fill the runner's cache over the whole log once (no-op when warm)
            app.projections.python_state(name, last)

    def reset(self) -> None:
        self._state = None

    def _mark(self, position: int) -> int:
        # The runner keeps states every max(5_000, head // 48) events (runtime/projections.py)
        interval = max(5_000, self.app.store.head_position // 48)
        return position // interval * interval

    def _fold(self, base: dict[Any, dict[str, Any]], start: int, end: int) -> _CopyOnTouchRows:
        inst = self.decl()
        rows = inst.rows = _CopyOnTouchRows(dict(base))
        if end <= start:
            return rows
        # The runner's own reader: raw rows, payloads validated per type, lazy records.
        from allframe_lab.runtime._decode import iter_decoded

        for batch in iter_decoded(self.app.store, self.app.decoder, start + 1, end):
            for event, rec in batch:
                try:
                    inst.handle(event, rec)
                except Exception as exc:
                    raise ProjectionError(
                        f"projection {self.name!r} failed on {rec.type} at position "
                        f"{rec.position} (stream {rec.stream_id!r}): {exc!r}") from exc
        return rows

    def at(self, position: int, max_rows: int) -> _Shown:
        prev, prev_position = self._state, self._position
        mark = self._mark(position)
        forward = prev is not None and mark <= prev_position <= position
        if forward:
            assert prev is not None
            rows = self._fold(prev, prev_position, position)
        else:
            base = self.app.projections.python_state(self.name, mark) if mark else {}
            rows = self._fold(base, mark, position)
        state = rows._rows
        if prev is None:
            changed: list[Any] = []
            removed = 0
        elif forward:
            touched = rows._touched
            changed = [k for k in touched if k in state and prev.get(k) != state[k]]
            removed = sum(1 for k in touched if k in prev and k not in state)
        else:  # rows both states share from one cached base are the same objects
            changed = [k for k, row in state.items()
                       if (old := prev.get(k)) is not row and old != row]
            removed = sum(1 for k in prev if k not in state)
        self._state, self._position = state, position
        changed = _sorted_keys(changed)
        first = changed[:max_rows]
        shown = set(first)
        rest = _smallest_keys((k for k in state if k not in shown), max_rows - len(first))
        display = [jsonable(state[k]) for k in [*first, *rest]]
        cols = dict.fromkeys([self.key, *self.columns])
        for row in display:
            cols.update(dict.fromkeys(row))
        return _Shown(list(cols), display, [True] * len(first) + [False] * len(rest),
                      lambda: changed, len(changed), removed, len(state))


def _sorted_keys(keys: list[Any]) -> list[Any]:
    try:
        return sorted(keys)
    except TypeError:  # mixed key types
        return sorted(keys, key=repr)


def _smallest_keys(keys: Any, n: int) -> list[Any]:
    if n <= 0:
        return []
    items = list(keys)
    try:
        return heapq.nsmallest(n, items)
    except TypeError:
        return heapq.nsmallest(n, items, key=repr)


def _as_datetime(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class TimeTravel(anywidget.AnyWidget):
    """Scrub a store's log by position or ``occurred_at`` and watch state change.

    Shows, for the chosen point, the event at the cursor, the state of an aggregate (optional)
    and a projection's table with the rows changed since the previously shown point
    highlighted. Moving the slider, stepping ±1 / ±N, playing, or picking a date-time in the
    browser all end in :meth:`goto` on the kernel side.

    Parameters
    ----------
    app : App
        The App whose store and model are shown.
    projection : str, optional
        A projection name of ``app.model`` (default: the model's first projection, if any).
    aggregate : str, optional
        An aggregate name; its state at the point is shown in ``aggregate_state``.
    stream_id : str, optional
        The aggregate's stream. Without it the aggregate follows the stream of the event at
        the cursor.
    position : int, optional
        The first point shown (default: the head). Clamped to ``1..head``.
    key : str, optional
        Only for SQL projections: the column that names a row in ``changed_keys`` (rows are
        still compared by their full values). Python projections use their own key.
    max_rows : int, default 50
        The most rows sent to the browser: changed rows first, then the table's first rows.
    step_size : int, optional
        N of the ±N buttons and of each play tick (default: about 1/200 of the log, ≥ 1).

    Attributes
    ----------
    position : int
        The global position shown (traitlet; setting it moves the widget).
    head : int
        The store's head position when last checked.
    timestamp : str
        ``occurred_at`` of the event at ``position``, ISO-8601 in UTC.
    event : dict
        The event at the cursor: ``position``, ``stream_id``, ``version``, ``type``,
        ``occurred_at``, ``data``, ``metadata``.
    aggregate_state : dict
        ``{"aggregate", "stream_id", "version", "state"}`` of the aggregate at the point.
    columns, rows : list
        The projection's columns and the shown rows (at most ``max_rows`` dicts, JSON-safe).
    row_changed : list of bool
        For each shown row, whether it changed since the previous point.
    changed_keys : list
        Every row changed since the previous point: Python projections by key, SQL
        projections by ``key`` column if given, else as tuples of the full row.
    changed_count, removed_count, total_rows : int
        Rows changed (or added) and removed since the previous point; rows in the table.
        For a SQL projection without ``key``, ``removed_count`` is the net number of rows
        that went away (a changed row cannot be told from a removed and an added one).
    compute_ms : float
        Kernel-side time of the last update, in milliseconds.
    error : str
        The last error met while updating from the browser ("" if none).

    Raises
    ------
    UnknownNameError
        If ``projection`` or ``aggregate`` is not declared on the model.

    Examples
    --------
    >>> from allframe_lab import App, Model
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> m = Model("log")
    >>> _ = m.sql_projection("per_stream",
    ...     "SELECT stream_id, count(*) AS n FROM events GROUP BY stream_id ORDER BY stream_id")
    >>> store = InMemoryEventStore()
    >>> _ = store.append("a", [NewEvent("A", {"x": 1}), NewEvent("B", {})])
    >>> _ = store.append("b", [NewEvent("A", {"x": 2})])
    >>> tt = TimeTravel(App(m, store), projection="per_stream", position=1)
    >>> tt.event["type"], tt.rows
    ('A', [{'stream_id': 'a', 'n': 1}])
    >>> tt.step(2)
    >>> tt.position, tt.total_rows, tt.changed_keys, tt.row_changed
    (3, 2, [('a', 2), ('b', 1)], [True, True])
    >>> tt.goto(position=2); tt.changed_keys, tt.removed_count
    ([], 1)
    """

    _esm = _STATIC / "time_travel.js"
    _css = _STATIC / "time_travel.css"

    position = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)
    shown_position = traitlets.Int(-1).tag(sync=True)
    timestamp = traitlets.Unicode("").tag(sync=True)
    first_timestamp = traitlets.Unicode("").tag(sync=True)
    last_timestamp = traitlets.Unicode("").tag(sync=True)
    step_size = traitlets.Int(1).tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    interval_ms = traitlets.Int(400).tag(sync=True)
    event = traitlets.Dict().tag(sync=True)
    aggregate = traitlets.Unicode("").tag(sync=True)
    stream_id = traitlets.Unicode("").tag(sync=True)
    aggregate_state = traitlets.Dict().tag(sync=True)
    projection = traitlets.Unicode("").tag(sync=True)
    projections = traitlets.List(traitlets.Unicode()).tag(sync=True)
    projection_kind = traitlets.Unicode("").tag(sync=True)
    columns = traitlets.List().tag(sync=True)
    rows = traitlets.List().tag(sync=True)
    row_changed = traitlets.List(traitlets.Bool()).tag(sync=True)
    changed_count = traitlets.Int(0).tag(sync=True)
    removed_count = traitlets.Int(0).tag(sync=True)
    total_rows = traitlets.Int(0).tag(sync=True)
    max_rows = traitlets.Int(50).tag(sync=True)
    compute_ms = traitlets.Float(0.0).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, app: App, *, projection: str | None = None,
                 aggregate: str | None = None, stream_id: str | None = None,
                 position: int | None = None, key: str | None = None, max_rows: int = 50,
                 step_size: int | None = None, **kwargs: Any) -> None:
        model = app.model
        if projection is None:
            projection = next(iter(model.projections), "")
        if projection:
            model.projection_decl(projection)  # raises UnknownNameError
        if aggregate:
            model.aggregate_class(aggregate)
        self._app = app
        self._key = key
        self._view: _SqlView | _PythonView | None = None
        self._changed_keys: Callable[[], list[Any]] = list
        self._ready = False
        head = app.store.head_position
        super().__init__(
            head=head, projection=projection, projections=list(model.projections),
            aggregate=aggregate or "", stream_id=stream_id or "", max_rows=max_rows,
            step_size=step_size or max(1, head // 200), **kwargs)
        self._time_range()
        self._ready = True
        self.on_msg(self._on_frontend_msg)
        self.goto(position=head if position is None else position)

    # -------------------------------------------------------------- public API
    @property
    def app(self) -> App:
        """The App this widget reads."""
        return self._app

    def goto(self, *, position: int | None = None,
             timestamp: datetime | str | None = None) -> None:
        """Move to a global position, or to the last position that occurred by ``timestamp``.

        Parameters
        ----------
        position : int, optional
            Clamped to ``1..head`` (0 for an empty store).
        timestamp : datetime or ISO-8601 str, optional
            Naive values are taken as UTC.

        Raises
        ------
        ValueError
            If neither or both of ``position`` and ``timestamp`` are given.
        """
        if (position is None) == (timestamp is None):
            raise ValueError("goto() takes exactly one of position= or timestamp=")
        if timestamp is not None:
            position = self._app.store.position_at(_as_datetime(timestamp))
        assert position is not None
        self._refresh_head()
        position = self._clamp(position)
        if position == self.position and self.shown_position == position:
            return
        if position == self.position:
            self._show(position)
        else:
            self.position = position  # the observer shows it

    @property
    def changed_keys(self) -> list[Any]:
        """Every row changed (or added) since the previously shown point.

        Python projections: the rows' keys, in key order. SQL projections: the ``key``
        column's values if ``key`` was given, else each changed row as a tuple of its values
        (rows are compared by their full values). Computed on first access, because a long
        jump changes thousands of rows and only ``changed_count`` is sent to the browser.
        """
        return self._changed_keys()

    def step(self, n: int = 1) -> None:
        """Move ``n`` positions forward (negative: back), clamped to the log."""
        self.goto(position=self.position + n)

    def refresh(self) -> None:
        """Re-read the head (after new events were appended) and show the point again."""
        self._refresh_head()
        self._show(self._clamp(self.position))

    # -------------------------------------------------------------- internals
    def _clamp(self, position: int) -> int:
        return max(1 if self.head else 0, min(int(position), self.head))

    def _refresh_head(self) -> None:
        head = self._app.store.head_position
        if head != self.head:
            self.head = head
            self._time_range()

    def _time_range(self) -> None:
        if not self.head:
            return
        first, last = self._records(1), self._records(self.head)
        self.first_timestamp = _iso(first.occurred_at) if first else ""
        self.last_timestamp = _iso(last.occurred_at) if last else ""

    def _records(self, position: int) -> Any:
        for batch in self._app.store.read_batches(position, position, batch_size=1):
            return batch[0] if batch else None
        return None

    @traitlets.validate("position")
    def _valid_position(self, proposal: Any) -> int:
        return self._clamp(proposal["value"]) if self._ready else int(proposal["value"])

    @traitlets.observe("position")
    def _on_position(self, change: Any) -> None:
        if self._ready:
            self._show_safely(change["new"])

    @traitlets.observe("projection", "aggregate", "stream_id", "max_rows")
    def _on_selection(self, change: Any) -> None:
        if change["name"] == "projection":
            self._view = None
        if self._ready and self.shown_position >= 0:
            self._show_safely(self.position)

    def _on_frontend_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        try:
            if content.get("type") == "goto_timestamp":
                self.goto(timestamp=str(content["timestamp"]))
            elif content.get("type") == "refresh":
                self.refresh()
        except (AllframeError, ValueError, KeyError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _show_safely(self, position: int) -> None:
        """Observer path (the browser moved): errors go to ``error``, not to the kernel log."""
        try:
            self._show(position)
        except AllframeError as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _view_for(self) -> _SqlView | _PythonView | None:
        if not self.projection:
            return None
        decl = self._app.model.projection_decl(self.projection)
        if self._view is None or self._view.name != self.projection or (
                isinstance(self._view, _PythonView) and self._view.decl is not decl):
            if isinstance(decl, SqlProjection):
                self._view = _SqlView(self._app, self.projection, self._key)
            else:
                self._view = _PythonView(self._app, self.projection, decl.__key__)
        return self._view

    def _show(self, position: int) -> None:
        t0 = time.perf_counter()
        rec = self._records(position) if position else None
        event = {} if rec is None else {
            "position": rec.position, "stream_id": rec.stream_id, "version": rec.version,
            "type": rec.type, "occurred_at": _iso(rec.occurred_at),
            "data": jsonable(rec.data), "metadata": jsonable(rec.metadata)}
        agg = self._aggregate_at(position, rec)
        view = self._view_for()
        shown = view.at(position, self.max_rows) if view is not None else None
        with self.hold_sync():
            self.event = event
            self.timestamp = event.get("occurred_at", "")
            self.aggregate_state = agg
            self.projection_kind = view.kind if view is not None else ""
            if shown is not None:
                self.columns = shown.columns
                self.rows = shown.display
                self.row_changed = shown.flags
                self._changed_keys = shown.keys
                self.changed_count = shown.changed_count
                self.removed_count = shown.removed
                self.total_rows = shown.total
            self.error = ""
            self.compute_ms = (time.perf_counter() - t0) * 1000
            self.shown_position = position

    def _aggregate_at(self, position: int, rec: Any) -> dict[str, Any]:
        if not self.aggregate:
            return {}
        stream = self.stream_id or (rec.stream_id if rec is not None else "")
        if not stream:
            return {}
        agg = self._app.load(self.aggregate, stream, as_of=AsOf(position=position))
        return {"aggregate": self.aggregate, "stream_id": stream, "version": agg.version,
                "state": jsonable(agg.state())}

    def __repr__(self) -> str:
        return (f"<TimeTravel position={self.position}/{self.head} "
                f"projection={self.projection!r} rows={self.total_rows} "
                f"changed={self.changed_count}>")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()
