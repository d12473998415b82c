"""The event-flow graph of a Model: command -> aggregate -> event -> projection (and sagas).

Built from :meth:`Model.info` (introspection, no running code) as Graphviz DOT with the
``graphviz`` package; no system ``dot`` is needed, since the JupyterLab extension lays the
graph out in the browser. Colours follow event storming: commands blue, aggregates yellow,
events orange, projections (read models) green, sagas lilac.

Edges and where they come from:

* command -> aggregate: the aggregate has a ``@handles`` method for the command;
* aggregate -> event: the aggregate ``@applies`` the event (the events it folds are the
  events its handlers decide);
* event -> projection: a Python projection ``@applies`` the event; a SQL projection
  mentions the type name as a string literal (``'FundsDeposited'``), or reads every event;
* event -> saga: the events that start a saga, that it reacts to, or that a step waits for
  (the commands a saga's steps send are decided at run time, so they are not drawn).

``"*"`` (any event) is drawn as one node labelled *any event*.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from allframe_lab.notebook.mime import MimeBundle, graph_bundle

__all__ = ["KIND_STYLE", "event_flow", "event_flow_dot", "event_flow_edges", "node_id"]

#: Graphviz node attributes per element kind.
KIND_STYLE: dict[str, dict[str, str]] = {
    "command": {"shape": "box", "style": "rounded,filled", "fillcolor": "#a7c7f2"},
    "aggregate": {"shape": "box", "style": "filled", "fillcolor": "#fbe38e"},
    "event": {"shape": "box", "style": "filled", "fillcolor": "#f9b572"},
    "projection": {"shape": "box", "style": "rounded,filled", "fillcolor": "#b9e3a6"},
    "saga": {"shape": "hexagon", "style": "filled", "fillcolor": "#d9c2f0"},
}
ANY_EVENT = "*"


def node_id(kind: str, name: str) -> str:
    """The DOT node id of a model element: ``"<kind>/<name>"`` (``:`` becomes ``_``).

    Graphviz writes node ids into the SVG as ``<title>``, so tests and the browser can find
    nodes by them.

    Examples
    --------
    >>> node_id("command", "OpenAccount")
    'command/OpenAccount'
    """
    return f"{kind}/{name}".replace(":", "_")


def _strs(values: Any) -> list[str]:
    if not values:
        return []
    if isinstance(values, str):
        return [values]
    return [v if isinstance(v, str) else getattr(v, "__message_type__", None) or str(v)
            for v in values]


def _sagas(model: Any, info: Any) -> list[tuple[str, list[str], list[str]]]:
    """(name, events it reacts to, commands it sends) for each saga, as far as known."""
    out = []
    declared = getattr(info, "sagas", None)
    if declared is None:
        declared = list((getattr(model, "sagas", None) or {}).items())
    for item in declared or ():
        name, obj = item if isinstance(item, tuple) else (getattr(item, "name", str(item)), item)
        if hasattr(obj, "starts"):  # a SagaInfo: starting, reacted-to and awaited events
            reacts = [*_strs(obj.starts), *_strs(getattr(obj, "reacts", ())),
                      *(w for w in getattr(obj, "waits_for", ()) if w)]
        else:
            reacts = _strs(getattr(obj, "reacts_to", None) or getattr(obj, "events", None)
                           or getattr(obj, "__starts__", None) or ())
        # the commands a step sends are decided at run time; draw them only when declared
        sends = getattr(obj, "sends", None) or getattr(obj, "commands", None) or ()
        out.append((str(name), list(dict.fromkeys(reacts)), _strs(sends)))
    return out


def event_flow_edges(model: Any, /) -> tuple[list[tuple[str, str, str]],
                                             list[tuple[str, str]]]:
    """Nodes ``(id, kind, label)`` and edges ``(from id, to id)`` of a model's event flow.

    Examples
    --------
    >>> from allframe_lab import Model, Event, Command, Aggregate, applies, handles
    >>> m = Model("bank")
    >>> @m.event("Opened")
    ... class Opened(Event):
    ...     owner: str
    >>> @m.command("Open", stream="account_id", creates=True)
    ... class Open(Command):
    ...     account_id: str
    ...     owner: str
    >>> @m.aggregate("Account")
    ... class Account(Aggregate):
    ...     owner: str = ""
    ...     @applies("Opened")
    ...     def _opened(self, e):
    ...         self.owner = e.owner
    ...     @handles("Open")
    ...     def open(self, c):
    ...         return Opened(owner=c.owner)
    >>> _ = m.sql_projection("owners", "SELECT data->>'owner' AS owner FROM events "
    ...                      "WHERE type = 'Opened'")
    >>> nodes, edges = event_flow_edges(m)
    >>> for a, b in edges:
    ...     print(a, "->", b)
    command/Open -> aggregate/Account
    aggregate/Account -> event/Opened
    event/Opened -> projection/owners
    """
    info = model.info()
    nodes: dict[str, tuple[str, str, str]] = {}
    edges: list[tuple[str, str]] = []

    def node(kind: str, name: str) -> str:
        nid = node_id(kind, name)
        if nid not in nodes:
            label = "any event" if (kind == "event" and name == ANY_EVENT) else name
            nodes[nid] = (nid, kind, label)
        return nid

    def edge(a: str, b: str) -> None:
        if (a, b) not in edges:
            edges.append((a, b))

    for e in info.events:
        node("event", e.name)
    for c in info.commands:
        node("command", c.name)
    for a in info.aggregates:
        node("aggregate", a.name)
    for c in info.commands:
        if c.handled_by:
            edge(node("command", c.name), node("aggregate", c.handled_by))
    for a in info.aggregates:
        for ev in a.applies:
            edge(node("aggregate", a.name), node("event", ev))
    event_names = [e.name for e in info.events]
    for p in info.projections:
        pid = node("projection", p.name)
        if p.kind == "sql":
            sql = p.sql or ""
            mentioned = [n for n in event_names if f"'{n}'" in sql]
            sources: Iterable[str] = mentioned or [ANY_EVENT]
        else:
            sources = p.applies
        for ev in sources:
            edge(node("event", ev), pid)
    for name, reacts, sends in _sagas(model, info):
        sid = node("saga", name)
        for ev in reacts:
            edge(node("event", ev), sid)
        for cmd in sends:
            edge(sid, node("command", cmd))
    return list(nodes.values()), edges


def event_flow_dot(model: Any, /, *, rankdir: str = "LR") -> str:
    """The event-flow graph as Graphviz DOT source (built with the ``graphviz`` package).

    Parameters
    ----------
    model : Model
    rankdir : {"LR", "TB"}, default "LR"
        Left to right (command ... projection) or top to bottom.

    Raises
    ------
    ImportError
        If ``graphviz`` is not installed (``pip install 'allframe-lab[notebook]'``).
    """
    try:
        import graphviz
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the event-flow graph needs the graphviz package: "
                          "pip install 'allframe-lab[notebook]'") from exc
    nodes, edges = event_flow_edges(model)
    g = graphviz.Digraph(name=_dot_name(model.name),
                         graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
                         node_attr={"fontname": "Helvetica", "fontsize": "11"},
                         edge_attr={"color": "#555555"})
    for nid, kind, label in nodes:
        g.node(nid, label=label, **KIND_STYLE.get(kind, {}))
    for a, b in edges:
        g.edge(a, b)
    return g.source


def _dot_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name) or "model"


def event_flow(model: Any, /, *, rankdir: str = "LR") -> MimeBundle:
    """The model's event flow as a graph MIME bundle (SVG in JupyterLab, a table elsewhere).

    Parameters
    ----------
    model : Model
    rankdir : {"LR", "TB"}, default "LR"

    Returns
    -------
    MimeBundle
        ``application/vnd.allframe.graph+json`` (the DOT source and node kinds),
        ``text/html`` and ``text/plain``.

    Examples
    --------
    >>> from allframe_lab import Model
    >>> m = Model("log")
    >>> _ = m.sql_projection("per_type", "SELECT type, count(*) AS n FROM events GROUP BY type")
    >>> print(event_flow(m).data["text/plain"])
    graph 'event flow of log': 1 edge
      event/* -> projection/per_type
    """
    nodes, _ = event_flow_edges(model)
    return graph_bundle(event_flow_dot(model, rankdir=rankdir),
                        title=f"event flow of {model.name}",
                        nodes=[{"id": nid, "kind": kind, "label": label}
                               for nid, kind, label in nodes])
