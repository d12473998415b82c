"""Rich representations of the core objects, registered as IPython formatters.

Core classes keep their plain ``__repr__``; this module builds MIME bundles (``text/html``
and ``text/plain``) *around* them and registers those with IPython's display formatter
(``%load_ext allframe_lab`` or :class:`~allframe_lab.notebook.Workbench` call
:func:`register_formatters`):

======================== ============================================================
object                   shown as
======================== ============================================================
``Model``                a table of its events, commands, aggregates, projections, sagas
``App``                  the store summary and the model table
``EventStore``           counts, time range, event types, first streams
``Aggregate``            its state fields, stream id and version
``ProjectionHandle``     its table (first rows) with its checkpoint and the head position
``ValidationError``      a table of every failed field
======================== ============================================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allframe_lab.notebook._html import STYLE, esc, json_text, table, text_table

__all__ = [
    "FORMATTED_TYPES",
    "PROJECTION_ROWS",
    "aggregate_bundle",
    "app_bundle",
    "model_bundle",
    "projection_bundle",
    "register_formatters",
    "store_bundle",
    "unregister_formatters",
    "validation_error_bundle",
]

#: Rows of a projection shown in its repr (the DataFrame itself has them all).
PROJECTION_ROWS = 50


def _block(inner: str, kind: str) -> str:
    return f'{STYLE}<div class="allframe-html allframe-repr-{kind}">{inner}</div>'


def _names(values: Any) -> str:
    return ", ".join(str(v) for v in values) or "-"


# ------------------------------------------------------------------------------- model
def model_rows(model: Any) -> list[tuple[str, str, str]]:
    """``(kind, name, details)`` for every element of a model, from ``model.info()``."""
    info = model.info()
    rows: list[tuple[str, str, str]] = []
    for e in info.events:
        rows.append(("event", e.name, f"v{e.schema_version}; fields: {_names(e.fields)}"))
    for c in info.commands:
        extra = f"; stream field: {c.stream_field}" if c.stream_field else ""
        creates = "; creates its aggregate" if c.creates else ""
        rows.append(("command", c.name, f"fields: {_names(c.fields)}{extra}{creates}; "
                                        f"handled by: {c.handled_by or '-'}"))
    for a in info.aggregates:
        snap = f"; snapshot every {a.snapshot_every}" if a.snapshot_every else ""
        rows.append(("aggregate", a.name, f"state: {_names(a.state_fields)}; applies: "
                                          f"{_names(a.applies)}; handles: "
                                          f"{_names(a.handles)}{snap}"))
    for p in info.projections:
        detail = (f"sql; table {p.table}" if p.kind == "sql" else
                  f"python; table {p.table}; key {p.key}; applies: {_names(p.applies)}")
        rows.append(("projection", p.name, detail))
    for s in getattr(info, "sagas", ()) or ():
        steps = [f"{st}" + (f" (compensate: {comp})" if comp else "")
                 + (f" (waits for: {wait})" if wait else "")
                 for st, comp, wait in zip(getattr(s, "steps", ()),
                                           getattr(s, "compensations", ()) or [None] * 99,
                                           getattr(s, "waits_for", ()) or [None] * 99)]
        rows.append(("saga", getattr(s, "name", str(s)),
                     f"correlation: {getattr(s, 'correlation', '-')}; starts: "
                     f"{_names(getattr(s, 'starts', ()))}; reacts: "
                     f"{_names(getattr(s, 'reacts', ()))}; steps: {_names(steps)}"))
    return rows


def model_bundle(model: Any, /) -> dict[str, Any]:
    """A Model as a table of its elements (kind, name, details).

    Examples
    --------
    >>> from allframe_lab import Model, Event
    >>> m = Model("shop")
    >>> @m.event("OrderPlaced")
    ... class OrderPlaced(Event):
    ...     total: int
    >>> print(model_bundle(m)["text/plain"])
    Model 'shop': 1 event, 0 commands, 0 aggregates, 0 projections, 0 sagas
    kind   name         details
    -----  -----------  -----------------
    event  OrderPlaced  v1; fields: total
    """
    rows = model_rows(model)
    counts = {k: sum(1 for r in rows if r[0] == k)
              for k in ("event", "command", "aggregate", "projection", "saga")}
    head = f"Model {model.name!r}: " + ", ".join(
        f"{n} {k}{'s' if n != 1 else ''}" for k, n in counts.items())
    html = table(["kind", "name", "details"], rows, caption=head)
    plain = head + ("\n" + text_table(["kind", "name", "details"], rows, max_width=80)
                    if rows else "")
    return {"text/html": _block(html, "model"), "text/plain": plain}


# ------------------------------------------------------------------------------- store
def store_summary_html(store: Any, *, streams: int = 10, types: int = 20) -> tuple[str, str]:
    """(html, plain) summary of a store: counts, time range, event types, first streams."""
    stats = store.stats()
    head = (f"{type(store).__name__}: {stats.events:,} events in {stats.streams:,} streams, "
            f"{len(stats.event_types)} event types, head position {stats.head_position:,}")
    span = (f"occurred {stats.first_occurred_at:%Y-%m-%d %H:%M:%S} .. "
            f"{stats.last_occurred_at:%Y-%m-%d %H:%M:%S} UTC"
            if stats.first_occurred_at and stats.last_occurred_at else "empty")
    by_count = sorted(stats.event_types.items(), key=lambda kv: (-kv[1], kv[0]))
    type_rows = by_count[:types]
    stream_rows = [(s.stream_id, s.version, s.first_position, s.last_position,
                    f"{s.first_occurred_at:%Y-%m-%d %H:%M}", f"{s.last_occurred_at:%Y-%m-%d %H:%M}")
                   for s in store.streams(limit=streams)]
    more = f" (top {types} of {len(by_count)})" if len(by_count) > types else ""
    html = (f"<div><b>{esc(head)}</b><br><span class='af-muted'>{esc(span)}</span></div>"
            + table(["event type", "events"], type_rows, caption=f"event types{more}")
            + table(["stream", "version", "first position", "last position", "first occurred",
                     "last occurred"], stream_rows, caption=f"first {len(stream_rows)} streams"))
    plain = head + "\n" + span
    if type_rows:
        plain += "\n" + text_table(["event type", "events"], type_rows)
    return html, plain


def store_bundle(store: Any, /) -> dict[str, Any]:
    """An event store as a summary: counts, time range, event types, first streams.

    Examples
    --------
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> s = InMemoryEventStore()
    >>> _ = s.append("a1", [NewEvent("Opened", {})])
    >>> store_bundle(s)["text/plain"].splitlines()[0]
    'InMemoryEventStore: 1 events in 1 streams, 1 event types, head position 1'
    """
    html, plain = store_summary_html(store)
    return {"text/html": _block(html, "store"), "text/plain": plain}


def app_bundle(app: Any, /) -> dict[str, Any]:
    """An App as its store summary followed by its model table."""
    shtml, splain = store_summary_html(app.store)
    model = model_bundle(app.model)
    return {"text/html": _block(shtml, "store") + model["text/html"],
            "text/plain": f"{app!r}\n{splain}\n{model['text/plain']}"}


# ------------------------------------------------------------------------------- aggregate
def aggregate_bundle(aggregate: Any, /) -> dict[str, Any]:
    """An aggregate's state: its fields, stream id and version.

    Examples
    --------
    >>> from allframe_lab import Aggregate
    >>> class Counter(Aggregate):
    ...     total: int = 0
    >>> print(aggregate_bundle(Counter())["text/plain"])
    Counter (stream '', version 0)
    field  value
    -----  -----
    total  0
    """
    state = aggregate.state() if callable(getattr(aggregate, "state", None)) else (
        aggregate.model_dump())
    name = getattr(type(aggregate), "__aggregate_type__", None) or type(aggregate).__name__
    head = f"{name} (stream {aggregate.stream_id!r}, version {aggregate.version})"
    rows = [(k, v if isinstance(v, str | int | float | bool) or v is None else json_text(v))
            for k, v in state.items()]
    return {"text/html": _block(table(["field", "value"], rows, caption=head), "aggregate"),
            "text/plain": head + "\n" + text_table(["field", "value"], rows)}


# ------------------------------------------------------------------------------- projection
def projection_bundle(handle: Any, /, *, rows: int = PROJECTION_ROWS) -> dict[str, Any]:
    """A projection as its table (the first ``rows`` rows) with its checkpoint.

    The table is caught up first when the store is writable; a read-only store shows the
    stored table as of its checkpoint.
    """
    df = handle.df(refresh=not getattr(handle.runner.store, "read_only", False))
    checkpoint = handle.checkpoint
    head_position = handle.runner.store.head_position
    behind = head_position - checkpoint
    lag = " (up to date)" if behind <= 0 else f" ({behind:,} events behind the head)"
    head = (f"projection {handle.name!r} ({handle.kind}, table {handle.table_name!r}): "
            f"{len(df):,} rows, checkpoint {checkpoint:,} of head position "
            f"{head_position:,}{lag}")
    html = (f"<div><b>{esc(head)}</b></div>"
            + df.head(rows).to_html(index=False, border=0, max_cols=30))
    if len(df) > rows:
        html += f"<div class='af-muted'>first {rows} of {len(df):,} rows</div>"
    plain = head + "\n" + df.head(min(rows, 20)).to_string(index=False)
    return {"text/html": _block(html, "projection"), "text/plain": plain}


# ------------------------------------------------------------------------------- errors
def validation_error_bundle(error: Any, /) -> dict[str, Any]:
    """A :class:`~allframe_lab.errors.ValidationError` as a table of all its failures.

    Examples
    --------
    >>> from allframe_lab.errors import FieldError, ValidationError
    >>> err = ValidationError("Deposit", [FieldError("amount", "must be > 0", -5),
    ...                                   FieldError("account_id", "field required")])
    >>> print(validation_error_bundle(err)["text/plain"])
    Deposit is invalid (2 errors)
    field       problem         input
    ----------  --------------  -----
    amount      must be > 0     -5
    account_id  field required  None
    """
    rows = [(e.field, e.message, repr(e.input)) for e in error.errors]
    n = len(rows)
    head = f"{error.message_type} is invalid ({n} error{'s' if n != 1 else ''})"
    html = table(["field", "problem", "input"], rows, caption=head)
    return {"text/html": _block(html, "validation-error"),
            "text/plain": head + "\n" + text_table(["field", "problem", "input"], rows)}


# ------------------------------------------------------------------------------- registry
def _formatted_types() -> list[tuple[type, Callable[[Any], dict[str, Any]]]]:
    from allframe_lab.errors import ValidationError
    from allframe_lab.model import Aggregate, Model
    from allframe_lab.runtime import App
    from allframe_lab.runtime.projections import ProjectionHandle
    from allframe_lab.store import EventStore

    return [(Model, model_bundle), (App, app_bundle), (EventStore, store_bundle),
            (Aggregate, aggregate_bundle), (ProjectionHandle, projection_bundle),
            (ValidationError, validation_error_bundle)]


#: Names of the types :func:`register_formatters` registers.
FORMATTED_TYPES = ("Model", "App", "EventStore", "Aggregate", "ProjectionHandle",
                   "ValidationError")


def _safe(fn: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any] | None]:
    def formatter(obj: Any) -> dict[str, Any] | None:
        try:
            return fn(obj)
        except Exception:  # a broken repr must never hide the object: fall back to repr
            return None

    formatter.__name__ = f"allframe_{fn.__name__}"
    return formatter


def register_formatters(ipython: Any = None, /) -> list[type]:
    """Register the rich formatters on an IPython shell (idempotent).

    Parameters
    ----------
    ipython : InteractiveShell, optional
        Defaults to the running shell; outside IPython nothing happens.

    Returns
    -------
    list of type
        The types that now have a rich repr.

    Notes
    -----
    The formatters go into IPython's ``mimebundle`` formatter (``for_type``), so each type's
    ``text/html`` and ``text/plain`` come from one function and the classes stay untouched.
    Also installs a handler that, after the usual traceback, shows a
    :class:`~allframe_lab.errors.ValidationError` as a table of all its errors.
    """
    if ipython is None:
        from IPython import get_ipython

        ipython = get_ipython()
        if ipython is None:
            return []
    formatter = ipython.display_formatter.mimebundle_formatter
    done = []
    for cls, fn in _formatted_types():
        formatter.for_type(cls, _safe(fn))
        done.append(cls)
    _install_error_handler(ipython)
    return done


def unregister_formatters(ipython: Any = None, /) -> None:
    """Remove what :func:`register_formatters` registered."""
    if ipython is None:
        from IPython import get_ipython

        ipython = get_ipython()
        if ipython is None:
            return
    formatter = ipython.display_formatter.mimebundle_formatter
    for cls, _ in _formatted_types():
        formatter.type_printers.pop(cls, None)
    if getattr(ipython, "_allframe_custom_exc", False):
        ipython.set_custom_exc((), None)
        ipython._allframe_custom_exc = False


def _install_error_handler(ipython: Any) -> None:
    from allframe_lab.errors import ValidationError

    if ipython.custom_exceptions and not getattr(ipython, "_allframe_custom_exc", False):
        return  # another extension owns the custom exception hook: leave it alone

    def show_validation_error(shell: Any, etype: type, value: BaseException, tb: Any,
                              tb_offset: int | None = None) -> Any:
        shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
        from IPython.display import display

        display(validation_error_bundle(value), raw=True)
        return None

    ipython.set_custom_exc((ValidationError,), show_validation_error)
    ipython._allframe_custom_exc = True
