"""The Panel dashboard: a read-only view of one event store, inline or served.

``dashboard(app_or_path)`` builds the layout (a :class:`Dashboard`, shown inline by Jupyter);
``serve(path)`` serves it on 127.0.0.1 (``allframe-lab dashboard --store FILE``). Four tabs:

- **Overview**: events, streams, head position, time range, events per type (table and bars);
- **Streams**: filter streams by id and event type, pick one to see its events;
- **Projections**: a projection's table as of a global position chosen with a slider
  (``ProjectionRunner.as_of``: computed, nothing is written);
- **Traces**: spans from a trace exporter, if one left any (see :mod:`._dashboard_data`);
  otherwise it says "no traces yet".

A DuckDB file is read from a private snapshot copy, so the dashboard never locks the file a
notebook writes to; **Refresh** takes a new copy. Panel is imported when a dashboard is built,
never when this module is imported.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ModelError
from allframe_lab.model import Model
from allframe_lab.notebook._dashboard_data import DashboardData, SpanSource
from allframe_lab.notebook._dashboard_html import (
    esc,
    fmt_time,
    show,
    types_chart,
    waterfall,
)
from allframe_lab.runtime import App
from allframe_lab.store import EventStore

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import panel as pn
    from bokeh.server.server import Server

__all__ = ["Dashboard", "dashboard", "load_model", "serve"]

PAGE_SIZE = 20
STREAM_LIMIT = 500
TYPES_ANY = "(any type)"


def _panel() -> Any:
    try:
        import panel as pn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the dashboard needs Panel: pip install 'allframe-lab[notebook]'"
                          ) from exc
    pn.extension("tabulator", inline=False)
    return pn


def load_model(spec: str, /) -> Model:
    """Load a Model from ``"module:attr"``.

    ``attr`` may be a :class:`~allframe_lab.Model`, an ``App`` (its model is used) or a
    function with no arguments returning a Model. The current directory is importable.

    Raises
    ------
    ModelError
        If the spec is malformed, the module cannot be imported, the attribute is missing, or
        it is not (and does not return) a Model.

    Examples
    --------
    >>> load_model("allframe_lab.io:process_log_model").name
    'process-log'
    """
    import importlib
    import sys

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelError(f"--model {spec!r}: write it as MODULE:ATTR, e.g. bank_model:bank")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(f"--model {spec!r}: cannot import {module_name!r}: "
                         f"{type(exc).__name__}: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ModelError(f"--model {spec!r}: module {module_name!r} has no {attr!r}") from None
    if isinstance(obj, App):
        obj = obj.model
    if not isinstance(obj, Model) and callable(obj):
        obj = obj()
    if not isinstance(obj, Model):
        raise ModelError(f"--model {spec!r} is a {type(obj).__name__}, not an allframe_lab "
                         "Model (or an App, or a function returning a Model)")
    return obj


class Dashboard:
    """The dashboard's Panel layout and widgets, around a :class:`DashboardData`.

    Build it with :func:`dashboard`. Jupyter displays it inline (``_repr_mimebundle_``); Panel
    accepts it anywhere a component goes (``__panel__``).

    Attributes
    ----------
    data : DashboardData
        The queries (DataFrames) behind the widgets.
    layout : panel.Column
        Header (source, mode, refresh button) above the tabs.
    slider : panel.widgets.IntSlider
        The global position the projection table shows (1 .. head position).
    projection_select : panel.widgets.Select
    projection_table : panel.widgets.Tabulator
        Shows the selected projection as of ``slider.value``.
    projection_frame : pandas.DataFrame
        The exact as-of frame (the table shows it with durations as text).
    render_seconds : float
        Time to build the layout (store queries included), in seconds.
    """

    def __init__(self, data: DashboardData, *, projection: str | None = None) -> None:
        t0 = time.perf_counter()
        pn = _panel()
        self.pn = pn
        self.data = data
        names = data.projection_names
        if projection is not None:
            data.model.projection_decl(projection)  # UnknownNameError lists the known ones
        first = projection or (names[0] if names else None)

        # ---------------------------------------------------------------- header
        self.refresh_button = pn.widgets.Button(label="Refresh",
                                                css_classes=["allframe-dashboard-refresh"],
                                                width=110)
        self.refresh_button.on_click(lambda _: self.refresh())
        self.header = pn.pane.HTML("", css_classes=["allframe-dashboard-header"],
                                   sizing_mode="stretch_width")

        # ---------------------------------------------------------------- overview
        self.overview_pane = pn.pane.HTML("", css_classes=["allframe-dashboard-overview"],
                                          sizing_mode="stretch_width")
        self.types_table = pn.widgets.Tabulator(
            None, disabled=True, show_index=False, pagination="local", page_size=PAGE_SIZE,
            css_classes=["allframe-dashboard-types"], width=420)
        self.types_chart = pn.pane.Bokeh(None, sizing_mode="stretch_width")

        # ---------------------------------------------------------------- streams
        self.stream_filter = pn.widgets.TextInput(label="Stream id contains",
                                                  placeholder="e.g. 1730", width=220)
        self.type_filter = pn.widgets.Select(label="Has an event of type", options=[TYPES_ANY],
                                             width=260)
        self.streams_count = pn.pane.HTML("", css_classes=["allframe-dashboard-stream-count"])
        self.streams_table = pn.widgets.Tabulator(
            None, disabled=True, show_index=False, selectable=1, pagination="remote",
            page_size=PAGE_SIZE, css_classes=["allframe-dashboard-streams"],
            sizing_mode="stretch_width")
        self.stream_title = pn.pane.HTML("<em>Pick a stream to see its events.</em>",
                                         css_classes=["allframe-dashboard-stream-title"])
        self.events_table = pn.widgets.Tabulator(
            None, disabled=True, show_index=False, pagination="remote", page_size=PAGE_SIZE,
            css_classes=["allframe-dashboard-events"], sizing_mode="stretch_width")
        self.stream_filter.param.watch(lambda _: self._update_streams(), "value")
        self.type_filter.param.watch(lambda _: self._update_streams(), "value")
        self.streams_table.param.watch(lambda _: self._update_stream_events(), "selection")

        # ---------------------------------------------------------------- projections
        self.projection_select = pn.widgets.Select(label="Projection", options=names,
                                                   value=first, width=260,
                                                   disabled=not names)
        self.slider = pn.widgets.IntSlider(label="Position", start=0, end=1, value=1, step=1,
                                           sizing_mode="stretch_width",
                                           css_classes=["allframe-dashboard-slider"])
        self.back_button = pn.widgets.Button(label="◀ -1", width=70,
                                             css_classes=["allframe-dashboard-back"])
        self.forward_button = pn.widgets.Button(label="+1 ▶", width=70,
                                                css_classes=["allframe-dashboard-forward"])
        self.back_button.on_click(lambda _: self._step(-1))
        self.forward_button.on_click(lambda _: self._step(+1))
        self.position_pane = pn.pane.HTML("", css_classes=["allframe-dashboard-position"],
                                          sizing_mode="stretch_width")
        self.projection_table = pn.widgets.Tabulator(
            None, disabled=True, show_index=False, pagination="remote", page_size=PAGE_SIZE,
            css_classes=["allframe-dashboard-projection-table"], sizing_mode="stretch_width")
        self.projection_frame: pd.DataFrame | None = None
        self._loading = False
        self.slider.param.watch(lambda _: self._update_projection(), "value")
        self.projection_select.param.watch(lambda _: self._update_projection(), "value")

        # ---------------------------------------------------------------- traces
        self.traces_pane = pn.pane.HTML("", css_classes=["allframe-dashboard-traces"],
                                        sizing_mode="stretch_width")
        self.spans_table = pn.widgets.Tabulator(
            None, disabled=True, show_index=False, pagination="remote", page_size=PAGE_SIZE,
            css_classes=["allframe-dashboard-spans"], sizing_mode="stretch_width",
            visible=False)

        self.tabs = pn.Tabs(
            pn.Column(self.overview_pane,
                      pn.Row(self.types_table, self.types_chart, sizing_mode="stretch_width"),
                      sizing_mode="stretch_width", name="Overview"),
            pn.Column(pn.Row(self.stream_filter, self.type_filter, self.streams_count),
                      self.streams_table, self.stream_title, self.events_table,
                      sizing_mode="stretch_width", name="Streams"),
            pn.Column(pn.Row(self.projection_select, self.back_button, self.slider,
                             self.forward_button, sizing_mode="stretch_width"),
                      self.position_pane, self.projection_table,
                      sizing_mode="stretch_width", name="Projections"),
            pn.Column(self.traces_pane, self.spans_table, sizing_mode="stretch_width",
                      name="Traces"),
            dynamic=False, sizing_mode="stretch_width",
        )
        self.layout = pn.Column(pn.Row(self.header, self.refresh_button,
                                       sizing_mode="stretch_width"),
                                self.tabs, sizing_mode="stretch_width",
                                css_classes=["allframe-dashboard"])
        self._load()
        self.render_seconds = time.perf_counter() - t0

    # -------------------------------------------------------------- loading
    def _load(self) -> None:
        """Fill every tab from the store (at build and on refresh)."""
        overview = self.data.overview()
        self._update_header(overview.head_position)
        self._update_overview(overview)
        types = overview.event_types.type.tolist()
        keep = self.type_filter.value if self.type_filter.value in types else TYPES_ANY
        self.type_filter.options = [TYPES_ANY, *types]
        self.type_filter.value = keep
        self._update_streams()
        head = overview.head_position
        at_head = self.slider.value >= self.slider.end
        self.slider.disabled = head == 0
        self._loading = True  # one projection update below, not one per change
        try:
            start = 1 if head else 0
            self.slider.param.update(
                start=start, end=max(head, 1),
                value=head if at_head or self.slider.value > head else max(
                    self.slider.value, start))
        finally:
            self._loading = False
        self._update_projection()
        self._update_traces()

    def refresh(self) -> None:
        """Re-open the store (a new snapshot copy) and reload every tab.

        A slider at the old head moves to the new head; elsewhere it stays.
        """
        self.data.refresh()
        self._load()

    def _update_header(self, head: int) -> None:
        taken = self.data.opened_at.astimezone().strftime("%H:%M:%S")
        self.header.object = (
            f'<div data-head-position="{head}"><b>allframe-lab dashboard</b> · '
            f'<code>{esc(self.data.source)}</code> · {esc(self.data.mode)} taken at {taken}'
            f" · head position <b>{head:,}</b>. Press <i>Refresh</i> to see events written "
            "since.</div>"
        )

    def _update_overview(self, o: Any) -> None:
        span = (f"{fmt_time(o.first_occurred_at)} .. {fmt_time(o.last_occurred_at)}"
                if o.first_occurred_at else "-")
        cells = [("events", f"{o.events:,}"), ("streams", f"{o.streams:,}"),
                 ("event types", f"{len(o.event_types):,}"),
                 ("head position", f"{o.head_position:,}"), ("occurred", span)]
        self.overview_pane.object = "".join(
            f'<div style="display:inline-block;margin:0 24px 8px 0" '
            f'data-stat="{k.replace(" ", "_")}"><div style="color:#666">{k}</div>'
            f'<div style="font-size:1.4em">{v}</div></div>' for k, v in cells)
        self.types_table.value = o.event_types
        self.types_chart.object = types_chart(o.event_types)

    # -------------------------------------------------------------- streams
    def _update_streams(self) -> None:
        text = self.stream_filter.value or None
        type_ = None if self.type_filter.value == TYPES_ANY else self.type_filter.value
        df = self.data.streams(text=text, type=type_, limit=STREAM_LIMIT)
        total = self.data.count_streams(text=text, type=type_)
        shown = f" (first {len(df):,} shown)" if total > len(df) else ""
        self.streams_count.object = f"<div>{total:,} streams{shown}</div>"
        self.streams_table.selection = []
        show(self.streams_table, df)
        self._update_stream_events()

    def _update_stream_events(self) -> None:
        sel = self.streams_table.selection
        df = self.streams_table.value
        if not sel or df is None or sel[0] >= len(df):
            self.events_table.value = None
            self.stream_title.object = "<em>Pick a stream to see its events.</em>"
            return
        self.show_stream(str(df.stream_id.iloc[sel[0]]))

    def show_stream(self, stream_id: str, /) -> pd.DataFrame:
        """Show one stream's events under the stream list; return them."""
        events = self.data.stream_events(stream_id)
        self.stream_title.object = (
            f'<div data-stream-id="{esc(stream_id)}">Stream <b>{esc(stream_id)}</b>: '
            f"{len(events):,} events</div>")
        show(self.events_table, events)
        return events

    # -------------------------------------------------------------- projections
    def _step(self, delta: int) -> None:
        s = self.slider
        s.value = min(max(s.value + delta, s.start), s.end)

    def _update_projection(self) -> None:
        if self._loading:
            return
        name = self.projection_select.value
        if not name:
            self.position_pane.object = (
                "<em>This model has no projections. Start the dashboard with a model: "
                "<code>--model module:attr</code> or <code>dashboard(app)</code>.</em>")
            self.projection_table.value = None
            return
        position = int(self.slider.value)
        if self.data.head_position == 0:
            position = 0
        t0 = time.perf_counter()
        df = self.data.projection(name, position)
        ms = (time.perf_counter() - t0) * 1000
        self.projection_frame = df
        event = self.data.event_at(position) if position else None
        where = (f" · event {esc(event['type'])} in stream <code>{esc(event['stream_id'])}"
                 f"</code>, occurred {fmt_time(event['occurred_at'])}") if event else ""
        kind = self.data.projection_kind(name)
        self.position_pane.object = (
            f'<div data-position="{position}" data-projection="{esc(name)}" '
            f'data-rows="{len(df)}"><b>{esc(name)}</b> ({kind}) as of position '
            f"<b>{position:,}</b>{where} · {len(df):,} rows · {ms:.0f} ms</div>")
        show(self.projection_table, df)

    # -------------------------------------------------------------- traces
    def _update_traces(self) -> None:
        try:
            spans, source = self.data.spans()
        except (OSError, ValueError) as exc:
            self.traces_pane.object = f"<p>Cannot read the spans: {esc(str(exc))}</p>"
            self.spans_table.visible = False
            return
        if source is None or spans.empty:
            where = ", ".join(f"<code>*{s}</code>" for s in (".spans.jsonl", ".traces.jsonl"))
            self.traces_pane.object = (
                '<div data-spans="0"><b>No traces yet.</b> allframe-lab does not export '
                "traces by itself yet. The dashboard shows spans from a JSON-lines file "
                f"next to the store ({where}, one trace.v1 span per line) or from an "
                "in-memory exporter passed as <code>dashboard(..., traces=exporter)</code>."
                "</div>")
            self.spans_table.visible = False
            return
        self.traces_pane.object = (
            f'<div data-spans="{len(spans)}">{len(spans):,} spans from '
            f"<code>{esc(source)}</code></div>" + waterfall(spans))
        self.spans_table.value = spans
        self.spans_table.visible = True

    # -------------------------------------------------------------- display
    def __panel__(self) -> pn.Column:
        return self.layout

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        bundle = self.layout._repr_mimebundle_(include, exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):  # nbconvert, VS Code without Panel's JS: say what it is
            data.setdefault("text/plain", repr(self))
        return bundle

    def servable(self, title: str | None = None) -> Any:
        """Mark the layout servable (for ``panel serve script.py``)."""
        return self.layout.servable(title=title)

    def close(self) -> None:
        """Close the store if the dashboard opened it."""
        self.data.close()

    def __repr__(self) -> str:
        return (f"<Dashboard {self.data.source!r} ({self.data.mode}), position "
                f"{self.slider.value}/{self.slider.end}, projection "
                f"{self.projection_select.value!r}>")


def dashboard(app_or_path: App | EventStore | str | os.PathLike[str], /, *,
              model: Model | str | None = None, projection: str | None = None,
              snapshot: bool = True, traces: SpanSource | None = None) -> Dashboard:
    """Build the read-only dashboard of a store, for inline display or serving.

    Parameters
    ----------
    app_or_path : App, EventStore, str or path
        A notebook's ``App`` (read as it is: its model, its live store), a store, or a
        DuckDB file (read from a private snapshot copy, see ``snapshot``).
    model : Model or "module:attr", optional
        The model whose projections the Projections tab offers (an ``App`` brings its
        own). For imported logs pass :func:`allframe_lab.io.process_log_model` (or
        ``"allframe_lab.io:process_log_model"``; the CLI does so by default). Without one,
        a file or store shows no projections.
    projection : str, optional
        The projection shown first (default: the model's first).
    snapshot : bool, default True
        For a file: read a private copy, so the file is never locked (a notebook can
        open it for writing at any time; **Refresh** takes a new copy). False opens it
        with ``DuckDBEventStore(path, read_only=True)``, which holds DuckDB's shared lock
        until :meth:`Dashboard.close` (no writer can open the file meanwhile) and falls
        back to a copy if a writer already holds it.
    traces : path, exporter or callable, optional
        Spans for the Traces tab; default: a JSON-lines file next to the store file.

    Returns
    -------
    Dashboard
        Displays inline in Jupyter; ``.layout`` is the Panel object.

    Raises
    ------
    FileNotFoundError
        If ``app_or_path`` is a path with no file.
    UnknownNameError
        If ``projection`` is not one of the model's projections.
    ImportError
        If Panel is not installed (``pip install 'allframe-lab[notebook]'``).

    Examples
    --------
    >>> from allframe_lab import App
    >>> from allframe_lab.io import dataset_path, import_log, process_log_model
    >>> from allframe_lab.store import InMemoryEventStore
    >>> store = InMemoryEventStore()
    >>> _ = import_log(dataset_path("running-example"), store)
    >>> board = dashboard(store, model=process_log_model(), projection="activity_counts")
    >>> board.slider.value, board.slider.end
    (42, 42)
    >>> board.slider.value = 3
    >>> board.projection_table.value.events.sum()  # activity_counts as of position 3
    np.int64(3)
    """
    if isinstance(model, str):
        model = load_model(model)
    data = DashboardData(app_or_path, model=model, snapshot=snapshot, traces=traces)
    try:
        return Dashboard(data, projection=projection)
    except BaseException:
        data.close()
        raise


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``address`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def serve(path: str | os.PathLike[str], /, *, port: int = 0, address: str = "127.0.0.1",
          model: Model | str | None = None, projection: str | None = None,
          show: bool = False, on_ready: Callable[[str], None] | None = None,
          start: bool = True) -> Server:
    """Serve the dashboard of a DuckDB file on ``http://address:port/``.

    Every browser session gets its own :func:`dashboard` over its own snapshot copy (closed
    when the session ends). With ``start`` (the default) this blocks until interrupted.

    Parameters
    ----------
    path : str or path
        The DuckDB event-store file.
    port : int, default 0
        The TCP port; 0 picks a free one.
    address : str, default "127.0.0.1"
    model, projection
        As for :func:`dashboard` (the model is loaded once, here).
    show : bool, default False
        Open a browser tab.
    on_ready : callable, optional
        Called with the URL once the server listens (the CLI prints it).
    start : bool, default True
        Run the server's IO loop (blocking); False returns the started server, its loop not
        running (for tests and embedding).

    Returns
    -------
    bokeh.server.server.Server

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    UnknownNameError
        If ``projection`` is not one of the model's projections.
    """
    from pathlib import Path

    if not Path(path).is_file():
        raise FileNotFoundError(f"no event store at {os.fspath(path)!r}; create one with "
                                f"`allframe-lab import LOG --store {os.fspath(path)}`")
    if isinstance(model, str):
        model = load_model(model)
    if model is None:
        model = Model("store")
    if projection is not None:
        model.projection_decl(projection)
    pn = _panel()
    from panel.io.server import get_server

    port = port or free_port(address)
    resolved = model

    open_boards: dict[int, Dashboard] = {}

    def session() -> Any:
        board = dashboard(path, model=resolved, projection=projection)
        open_boards[id(board)] = board

        def closed(_ctx: Any) -> None:
            open_boards.pop(id(board), None)
            board.close()

        pn.state.on_session_destroyed(closed)
        return board.layout

    server = get_server(
        {"/": session}, port=port, address=address,
        websocket_origin=[f"{address}:{port}", f"localhost:{port}"],
        show=False, start=False, title=f"allframe-lab · {Path(path).name}", verbose=False)
    server.start()
    url = f"http://{address}:{port}/"
    if on_ready is not None:
        on_ready(url)
    if show:
        import webbrowser

        webbrowser.open(url)
    if start:
        _stop_on_sigterm(server)
        try:
            server.io_loop.start()
        except KeyboardInterrupt:  # pragma: no cover - interactive
            pass
        finally:
            server.stop()
            for board in list(open_boards.values()):  # delete the snapshot copies
                board.close()
    return server


def _stop_on_sigterm(server: Server) -> None:
    """Let ``kill PID`` stop the IO loop (so snapshot copies are deleted) like Ctrl-C."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    loop = server.io_loop
    signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_from_signal(loop.stop))
