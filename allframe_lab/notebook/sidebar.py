"""Kernel side of the JupyterLab model sidebar: what models and stores the namespace holds.

After each executed cell the sidebar plugin sends a *silent* execute request with the user
expression::

    __import__('allframe_lab.notebook.sidebar', fromlist=['_']).sidebar_state()

and reads ``data["application/json"]`` of the result (see ``PROTOCOL.md``)::

    {"schema": "allframe.sidebar", "version": 1,
     "models": [{"variable", "name", "events", "commands", "aggregates", "projections",
                 "sagas"}],
     "stores": [{"key", "label", "events", "streams", "types", "head_position",
                 "first_occurred", "last_occurred", "stream_list": [{"stream_id", "version"}]}]}

Models and stores are found by scanning the IPython user namespace for :class:`Model`,
:class:`App`, :class:`~allframe_lab.notebook.Workbench` and :class:`EventStore` objects (the
key is the variable's name). Clicking a stream asks :func:`stream_timeline`.

Store summaries are cached per store and head position, so a cell that appends nothing costs
one ``head_position`` read per store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from allframe_lab.notebook._html import STYLE, table
from allframe_lab.notebook.mime import MimeBundle, timeline_bundle

__all__ = ["STREAM_LIST_LIMIT", "TIMELINE_LIMIT", "SidebarState", "StreamTimeline",
           "find_stores", "sidebar_state", "store_summary", "stream_timeline"]

#: Streams listed per store in the sidebar (the first ones, by first position).
STREAM_LIST_LIMIT = 50
#: Events of a stream shown in a timeline opened from the sidebar.
TIMELINE_LIMIT = 1_000

_SKIP = {"In", "Out", "exit", "quit", "get_ipython"}
_CACHE: dict[tuple[int, str, int], dict[str, Any]] = {}


def _user_ns() -> Mapping[str, Any]:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is in the notebook extra
        return {}
    ip = get_ipython()
    return ip.user_ns if ip is not None else {}


def _variables(ns: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for name, value in list(ns.items()):
        if name.startswith("_") or name in _SKIP:
            continue
        yield name, value


def _unwrap(value: Any) -> tuple[Any, Any]:
    """(model, store) held by a Model, App, Workbench or EventStore (either may be None)."""
    from allframe_lab.model import Model
    from allframe_lab.runtime import App
    from allframe_lab.store import EventStore

    if isinstance(value, Model):
        return value, None
    if isinstance(value, EventStore):
        return None, value
    if isinstance(value, App):
        return value.model, value.store
    if type(value).__name__ == "Workbench" and isinstance(getattr(value, "app", None), App):
        return value.app.model, value.app.store
    return None, None


def find_stores(namespace: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Event stores reachable from a namespace, keyed by the first variable that holds each.

    Parameters
    ----------
    namespace : mapping, optional
        Defaults to the IPython user namespace.

    Returns
    -------
    dict of str to EventStore

    Examples
    --------
    >>> from allframe_lab.store import InMemoryEventStore
    >>> s = InMemoryEventStore()
    >>> list(find_stores({"store": s, "again": s, "x": 1}))
    ['store']
    """
    ns = _user_ns() if namespace is None else namespace
    out: dict[str, Any] = {}
    seen: set[int] = set()
    for name, value in _variables(ns):
        _, store = _unwrap(value)
        if store is not None and id(store) not in seen:
            seen.add(id(store))
            out[name] = store
    return out


def _model_entry(variable: str, model: Any) -> dict[str, Any]:
    sagas = getattr(model, "sagas", None) or {}
    return {"variable": variable, "name": model.name, "events": list(model.events),
            "commands": list(model.commands), "aggregates": list(model.aggregates),
            "projections": list(model.projections), "sagas": list(sagas)}


def _label(key: str, store: Any) -> str:
    path = getattr(store, "path", None)
    where = f" {path!r}" if path else ""
    mode = " read-only" if getattr(store, "read_only", False) else ""
    return f"{key} ({type(store).__name__}{where}{mode})"


def store_summary(key: str, store: Any) -> dict[str, Any]:
    """One store's sidebar entry (cached per store and head position)."""
    try:
        head = int(store.head_position)
        cache_key = (id(store), _label("", store), head)
        cached = _CACHE.get(cache_key)
        if cached is None:
            stats = store.stats()
            streams = store.streams(limit=STREAM_LIST_LIMIT)
            cached = {
                "events": stats.events, "streams": stats.streams,
                "types": len(stats.event_types), "head_position": stats.head_position,
                "first_occurred": _iso(stats.first_occurred_at),
                "last_occurred": _iso(stats.last_occurred_at),
                "stream_list": [{"stream_id": s.stream_id, "version": s.version}
                                for s in streams],
            }
            if len(_CACHE) > 32:
                _CACHE.clear()
            _CACHE[cache_key] = cached
    except Exception as exc:  # a closed store must not break the sidebar
        return {"key": key, "label": _label(key, store), "events": 0, "streams": 0,
                "types": 0, "head_position": 0, "first_occurred": None, "last_occurred": None,
                "stream_list": [], "error": f"{type(exc).__name__}: {exc}"}
    return {"key": key, "label": _label(key, store), **cached}


def _iso(t: Any) -> str | None:
    return t.isoformat() if t is not None else None


class SidebarState:
    """The sidebar payload; ``_repr_json_`` is what the JupyterLab plugin reads.

    Attributes
    ----------
    payload : dict
        ``{"schema": "allframe.sidebar", "version": 1, "models": [...], "stores": [...]}``.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload

    def _repr_json_(self) -> dict[str, Any]:
        return self.payload

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {"application/json": self.payload, "text/plain": repr(self),
                "text/html": self._html()}

    def _html(self) -> str:
        models = table(
            ["variable", "model", "events", "commands", "aggregates", "projections", "sagas"],
            [(m["variable"], m["name"], ", ".join(m["events"]), ", ".join(m["commands"]),
              ", ".join(m["aggregates"]), ", ".join(m["projections"]), ", ".join(m["sagas"]))
             for m in self.payload["models"]], caption="models")
        stores = table(
            ["store", "events", "streams", "event types", "head position", "first occurred",
             "last occurred"],
            [(s["label"], s["events"], s["streams"], s["types"], s["head_position"],
              s["first_occurred"], s["last_occurred"]) for s in self.payload["stores"]],
            caption="stores")
        return f'{STYLE}<div class="allframe-html">{models}{stores}</div>'

    def __repr__(self) -> str:
        lines = [f"models: {len(self.payload['models'])}, stores: "
                 f"{len(self.payload['stores'])}"]
        for m in self.payload["models"]:
            lines.append(f"  model {m['variable']} ({m['name']!r}): {len(m['events'])} events, "
                         f"{len(m['commands'])} commands, {len(m['aggregates'])} aggregates, "
                         f"{len(m['projections'])} projections, {len(m['sagas'])} sagas")
        for s in self.payload["stores"]:
            lines.append(f"  store {s['label']}: {s['events']} events, {s['streams']} streams")
        return "\n".join(lines)


def sidebar_state(namespace: Mapping[str, Any] | None = None) -> SidebarState:
    """Models and stores of a namespace, for the JupyterLab sidebar.

    Parameters
    ----------
    namespace : mapping, optional
        Defaults to the IPython user namespace (``get_ipython().user_ns``); outside IPython
        (and without ``namespace``) the state is empty.

    Returns
    -------
    SidebarState
        ``_repr_json_()`` gives the payload described in the module docstring.

    Examples
    --------
    >>> from allframe_lab import App, Model
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> store = InMemoryEventStore()
    >>> _ = store.append("a1", [NewEvent("Opened", {})])
    >>> app = App(Model("bank"), store)
    >>> state = sidebar_state({"app": app}).payload
    >>> state["models"][0]["variable"], state["stores"][0]["key"], state["stores"][0]["events"]
    ('app.model', 'app', 1)
    """
    ns = _user_ns() if namespace is None else namespace
    models: list[dict[str, Any]] = []
    stores: list[dict[str, Any]] = []
    seen_models: set[int] = set()
    seen_stores: set[int] = set()
    pending: list[tuple[str, Any]] = []  # models reached through an App or Workbench
    for name, value in _variables(ns):
        model, store = _unwrap(value)
        if model is not None and store is None and id(model) not in seen_models:
            seen_models.add(id(model))
            models.append(_model_entry(name, model))
        elif model is not None:
            pending.append((f"{name}.model", model))
        if store is not None and id(store) not in seen_stores:
            seen_stores.add(id(store))
            stores.append(store_summary(name, store))
    for variable, model in pending:
        if id(model) not in seen_models:
            seen_models.add(id(model))
            models.append(_model_entry(variable, model))
    return SidebarState({"schema": "allframe.sidebar", "version": 1, "models": models,
                         "stores": stores})


class StreamTimeline(MimeBundle):
    """A stream's timeline for the sidebar: ``_repr_json_`` is the ``timeline.v1`` payload."""

    def _repr_json_(self) -> dict[str, Any]:
        return self.payload

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {**self.data, "application/json": self.payload}


def stream_timeline(key: str, stream_id: str, /, *,
                    namespace: Mapping[str, Any] | None = None,
                    limit: int = TIMELINE_LIMIT) -> StreamTimeline:
    """One stream's events as a timeline, for the store held by variable ``key``.

    Parameters
    ----------
    key : str
        The variable holding the store (an EventStore, App or Workbench), as in the sidebar.
    stream_id : str
    namespace : mapping, optional
        Defaults to the IPython user namespace.
    limit : int, default 1000
        At most this many events (the first ones) are sent.

    Returns
    -------
    StreamTimeline
        Its ``_repr_json_()`` is a ``timeline.v1`` payload with one lane.

    Raises
    ------
    KeyError
        If no store is reachable through ``key``.

    Examples
    --------
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> store = InMemoryEventStore()
    >>> _ = store.append("a1", [NewEvent("Opened", {"owner": "ann"})])
    >>> t = stream_timeline("store", "a1", namespace={"store": store})
    >>> [e["type"] for e in t._repr_json_()["events"]]
    ['Opened']
    """
    ns = _user_ns() if namespace is None else namespace
    store = find_stores({key: ns[key]}).get(key) if key in ns else None
    if store is None:
        raise KeyError(f"no event store in variable {key!r}; the sidebar lists "
                       f"{sorted(find_stores(ns))}")
    to_version = limit if limit else None
    records = store.read_stream(stream_id, 1, to_version)
    total = store.stream_version(stream_id)
    title = f"{stream_id} ({key})" if total <= len(records) else (
        f"{stream_id} ({key}): first {len(records)} of {total} events")
    bundle = timeline_bundle(records, title=title, lanes=[stream_id])
    return StreamTimeline(bundle.data)
