"""The three custom MIME bundles: event-flow graphs, event timelines and trace waterfalls.

Each builder returns a :class:`MimeBundle` holding the custom MIME type (a versioned JSON
payload, see ``allframe_lab/notebook/schemas/*.v1.json``) **and** ``text/html`` and
``text/plain`` fallbacks, so classic Notebook, VS Code and nbconvert show something useful
where the JupyterLab extension is not installed.

============================================ ================== ==============================
MIME type                                    schema             builder
============================================ ================== ==============================
``application/vnd.allframe.graph+json``      ``graph.v1``       :func:`graph_bundle`
``application/vnd.allframe.timeline+json``   ``timeline.v1``    :func:`timeline_bundle`
``application/vnd.allframe.trace+json``      ``trace.v1``       :func:`trace_bundle`
============================================ ================== ==============================
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

from allframe_lab.notebook._html import STYLE, esc, json_text, table, text_table

__all__ = [
    "GRAPH_MIME",
    "MIME_TYPES",
    "TIMELINE_MIME",
    "TRACE_MIME",
    "MimeBundle",
    "graph_bundle",
    "graph_payload",
    "schema",
    "timeline_bundle",
    "timeline_payload",
    "trace_bundle",
    "trace_payload",
    "validate",
]

GRAPH_MIME = "application/vnd.allframe.graph+json"
TIMELINE_MIME = "application/vnd.allframe.timeline+json"
TRACE_MIME = "application/vnd.allframe.trace+json"
#: Payload ``schema`` name -> MIME type.
MIME_TYPES = {"allframe.graph": GRAPH_MIME, "allframe.timeline": TIMELINE_MIME,
              "allframe.trace": TRACE_MIME}
_SCHEMA_FILES = {"allframe.graph": "graph.v1.json", "allframe.timeline": "timeline.v1.json",
                 "allframe.trace": "trace.v1.json"}
#: Events listed in the HTML and text fallbacks of a timeline (the payload keeps all).
FALLBACK_ROWS = 200


@cache
def schema(name: str, /) -> dict[str, Any]:
    """The JSON Schema of a payload, by name (``"allframe.graph"``) or kind (``"graph"``).

    Raises
    ------
    KeyError
        If the name is not one of the three payload schemas.

    Examples
    --------
    >>> schema("timeline")["$id"]
    'https://allframe-lab.dev/schemas/timeline.v1.json'
    """
    key = name if name.startswith("allframe.") else f"allframe.{name}"
    if key not in _SCHEMA_FILES:
        raise KeyError(f"no schema {name!r}; known: {sorted(_SCHEMA_FILES)}")
    text = resources.files("allframe_lab.notebook").joinpath(
        "schemas", _SCHEMA_FILES[key]).read_text(encoding="utf-8")
    return json.loads(text)


def validate(payload: Mapping[str, Any], /) -> None:
    """Check a payload against its JSON Schema (needs the ``jsonschema`` package).

    Raises
    ------
    KeyError
        If ``payload["schema"]`` names no known schema.
    jsonschema.ValidationError
        If the payload does not fit its schema.
    ImportError
        If ``jsonschema`` is not installed (``pip install 'allframe-lab[test]'``).
    """
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("validating payloads needs jsonschema: "
                          "pip install 'allframe-lab[test]'") from exc
    jsonschema.Draft202012Validator(schema(str(payload.get("schema")))).validate(payload)


class MimeBundle:
    """A display bundle: the custom MIME payload plus ``text/html`` and ``text/plain``.

    ``display(bundle)`` (or leaving it last in a cell) shows it; the JupyterLab extension
    renders the custom type, other front ends fall back to the HTML.

    Attributes
    ----------
    data : dict
        MIME type -> content, as returned by :meth:`_repr_mimebundle_`.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    @property
    def mime_type(self) -> str | None:
        """The custom MIME type in the bundle (``None`` for a plain HTML bundle)."""
        return next((m for m in self.data if m.startswith("application/vnd.allframe")), None)

    @property
    def payload(self) -> dict[str, Any]:
        """The custom MIME payload (the JSON document the schema describes)."""
        mime = self.mime_type
        if mime is None:
            raise KeyError("this bundle has no custom allframe MIME payload")
        return self.data[mime]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return self.data

    def __repr__(self) -> str:
        return str(self.data.get("text/plain", "<MimeBundle>"))


def _html_block(inner: str, kind: str) -> str:
    return f'{STYLE}<div class="allframe-html allframe-html-{kind}">{inner}</div>'


# ---------------------------------------------------------------------------------- graph
_ID = r'"(?:[^"\\]|\\.)*"|[\w.]+'
_EDGE = re.compile(rf"({_ID})\s*->\s*(?=({_ID}))")


def _unquote(s: str) -> str:
    return s[1:-1].replace('\\"', '"') if s.startswith('"') else s


def _dot_edges(dot: str) -> list[tuple[str, str]]:
    return [(_unquote(m[1]), _unquote(m[2])) for m in _EDGE.finditer(dot)]


def graph_payload(dot: str, /, *, title: str | None = None,
                  nodes: Sequence[Mapping[str, str]] | None = None,
                  engine: str = "dot") -> dict[str, Any]:
    """A ``graph.v1`` payload for Graphviz DOT source.

    Parameters
    ----------
    dot : str
        A ``digraph`` in DOT.
    title : str, optional
    nodes : sequence of mapping, optional
        Node metadata: ``{"id": <DOT node id>, "label": ..., "kind": ...}``.
    engine : {"dot", "neato", "fdp", "circo", "twopi"}, default "dot"
        The layout engine the renderer uses.

    Examples
    --------
    >>> graph_payload('digraph { a -> b }')["schema"]
    'allframe.graph'
    """
    payload: dict[str, Any] = {"schema": "allframe.graph", "version": 1, "dot": dot,
                               "engine": engine}
    if title:
        payload["title"] = title
    if nodes is not None:
        payload["nodes"] = [{k: str(v) for k, v in n.items() if k in ("id", "label", "kind")}
                            for n in nodes]
    return payload


def graph_bundle(dot: str, /, *, title: str | None = None,
                 nodes: Sequence[Mapping[str, str]] | None = None,
                 engine: str = "dot") -> MimeBundle:
    """Display DOT as a graph: rendered to SVG by the extension, an edge table elsewhere.

    No system ``dot`` is needed: the JupyterLab extension lays the graph out in the browser
    (WebAssembly Graphviz); the HTML fallback lists nodes and edges and shows the DOT source.

    Examples
    --------
    >>> b = graph_bundle('digraph { "a" -> "b" }', title="ab")
    >>> sorted(b.data)
    ['application/vnd.allframe.graph+json', 'text/html', 'text/plain']
    >>> print(b.data["text/plain"])
    graph 'ab': 1 edge
      a -> b
    """
    payload = graph_payload(dot, title=title, nodes=nodes, engine=engine)
    edges = _dot_edges(dot)
    name = f"graph {title!r}" if title else "graph"
    plain = "\n".join([f"{name}: {len(edges)} edge{'s' if len(edges) != 1 else ''}",
                       *(f"  {a} -> {b}" for a, b in edges)])
    labels = {n["id"]: n.get("label", n["id"]) for n in payload.get("nodes", [])}
    kinds = {n["id"]: n.get("kind", "") for n in payload.get("nodes", [])}
    rows = [(kinds.get(a, ""), labels.get(a, a), kinds.get(b, ""), labels.get(b, b))
            for a, b in edges]
    inner = (table(["from (kind)", "from", "to (kind)", "to"], rows, caption=title or "graph")
             + "<details><summary>DOT source (render with Graphviz, or install the "
               "allframe-lab JupyterLab extension)</summary>"
             + f"<pre>{esc(dot)}</pre></details>")
    return MimeBundle({GRAPH_MIME: payload, "text/html": _html_block(inner, "graph"),
                       "text/plain": plain})


# ---------------------------------------------------------------------------------- timeline
def _iso(t: Any) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, datetime):
        return (t if t.tzinfo else t.replace(tzinfo=UTC)).isoformat()
    raise TypeError(f"occurred_at must be a datetime or an ISO 8601 string, got {t!r}")


def _as_dict(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, str):
        value = json.loads(value) if value else {}
    return json.loads(json_text(dict(value)))  # JSON-safe copy (datetimes become strings)


def _event_fields(e: Any) -> tuple[str, int, int | None, str, Any, Any, Any]:
    if isinstance(e, Mapping):
        return (str(e["stream_id"]), int(e["position"]), e.get("version"), str(e["type"]),
                e["occurred_at"], e.get("data"), e.get("metadata"))
    return (e.stream_id, e.position, e.version, e.type, e.occurred_at, e.data, e.metadata)


def timeline_payload(events: Iterable[Any], /, *, title: str | None = None,
                     lanes: Sequence[str | Mapping[str, str]] | None = None,
                     include_metadata: bool = True) -> dict[str, Any]:
    """A ``timeline.v1`` payload: one lane per stream, one entry per event.

    Parameters
    ----------
    events : iterable of RecordedEvent or mapping
        Mappings need ``stream_id``, ``position``, ``type``, ``occurred_at`` and may have
        ``version``, ``data`` (dict or JSON text) and ``metadata``.
    title : str, optional
    lanes : sequence of str or mapping, optional
        Lane ids (stream ids) in display order, or ``{"id": ..., "label": ...}``; by default
        the streams in order of first appearance.
    include_metadata : bool, default True

    Returns
    -------
    dict
        ``{"schema": "allframe.timeline", "version": 1, "lanes": [...], "events": [...]}``;
        times are ISO 8601 with their UTC offset.

    Examples
    --------
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> store = InMemoryEventStore()
    >>> _ = store.append("a1", [NewEvent("Opened", {"owner": "ann"})])
    >>> p = timeline_payload(store.read_stream("a1"), title="a1")
    >>> p["lanes"], p["events"][0]["type"], p["events"][0]["data"]
    ([{'id': 'a1', 'label': 'a1'}], 'Opened', {'owner': 'ann'})
    """
    out_events = []
    seen: dict[str, None] = {}
    for e in events:
        stream_id, position, version, type_, occurred, data, meta = _event_fields(e)
        seen.setdefault(stream_id, None)
        item: dict[str, Any] = {"lane": stream_id, "position": position, "type": type_,
                                "time": _iso(occurred), "data": _as_dict(data)}
        if version is not None:
            item["version"] = int(version)
        if include_metadata:
            item["metadata"] = _as_dict(meta)
        out_events.append(item)
    if lanes is None:
        lane_list = [{"id": s, "label": s} for s in seen]
    else:
        lane_list = [{"id": str(x), "label": str(x)} if isinstance(x, str)
                     else {"id": str(x["id"]), "label": str(x.get("label", x["id"]))}
                     for x in lanes]
    payload: dict[str, Any] = {"schema": "allframe.timeline", "version": 1,
                               "lanes": lane_list, "events": out_events}
    if title:
        payload["title"] = title
    return payload


def _timeline_html(payload: Mapping[str, Any]) -> str:
    events = payload["events"]
    times = [datetime.fromisoformat(e["time"]).timestamp() for e in events]
    lo, hi = (min(times), max(times)) if times else (0.0, 1.0)
    span = (hi - lo) or 1.0
    lanes_html = []
    for lane in payload["lanes"]:
        dots = "".join(
            f'<span title="{esc(e["type"])} @ {esc(e["time"])} (position {e["position"]})" '
            f'style="position:absolute;left:calc({(t - lo) / span * 100:.3f}% - 4px);top:5px;'
            f'width:8px;height:8px;border-radius:4px;background:#3b7dd8"></span>'
            for e, t in zip(events, times) if e["lane"] == lane["id"])
        lanes_html.append(
            f'<tr><td>{esc(lane.get("label", lane["id"]))}</td><td style="width:100%">'
            f'<div style="position:relative;height:18px;background:#f6f8fb">{dots}</div>'
            f"</td></tr>")
    lanes_part = f"<table style='width:100%'>{''.join(lanes_html)}</table>"
    rows = [(e["lane"], e["position"], e.get("version", ""), e["type"], e["time"],
             f"<details><summary>payload</summary><pre>{esc(json_text(e.get('data', {})))}"
             f"</pre></details>") for e in events[:FALLBACK_ROWS]]
    more = len(events) - FALLBACK_ROWS
    note = f'<div class="af-muted">… {more} more events in the payload</div>' if more > 0 else ""
    caption = payload.get("title") or "timeline"
    return _html_block(
        lanes_part + table(["stream", "position", "version", "type", "occurred at", "data"],
                           rows, caption=caption, raw_columns=(5,)) + note, "timeline")


def timeline_bundle(events: Iterable[Any], /, *, title: str | None = None,
                    lanes: Sequence[str | Mapping[str, str]] | None = None) -> MimeBundle:
    """Display events as swimlanes (one lane per stream) with their payloads.

    Same parameters as :func:`timeline_payload`. The HTML fallback draws the lanes with CSS
    and lists the events (the first 200) with a collapsible payload each.

    Examples
    --------
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> store = InMemoryEventStore()
    >>> _ = store.append("a1", [NewEvent("Opened", {"owner": "ann"})])
    >>> b = timeline_bundle(store.read_stream("a1"))
    >>> b.mime_type
    'application/vnd.allframe.timeline+json'
    """
    payload = timeline_payload(events, title=title, lanes=lanes)
    evs = payload["events"]
    header = (f"timeline{' ' + repr(title) if title else ''}: {len(payload['lanes'])} lane(s), "
              f"{len(evs)} event(s)")
    plain = header + "\n" + text_table(
        ["stream", "position", "type", "occurred at", "data"],
        [(e["lane"], e["position"], e["type"], e["time"], json_text(e.get("data", {})))
         for e in evs[:FALLBACK_ROWS]]) if evs else header
    return MimeBundle({TIMELINE_MIME: payload, "text/html": _timeline_html(payload),
                       "text/plain": plain})


# ---------------------------------------------------------------------------------- trace
def _span_dict(span: Any) -> dict[str, Any]:
    if isinstance(span, Mapping):
        out = {k: span[k] for k in ("trace_id", "span_id", "parent_id", "name", "start_ns",
                                    "end_ns", "status", "attributes") if k in span}
    else:  # an OpenTelemetry ReadableSpan (duck-typed: the SDK is optional)
        ctx = span.context
        parent = getattr(span, "parent", None)
        code = str(getattr(getattr(span, "status", None), "status_code", "UNSET"))
        out = {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x"),
               "parent_id": format(parent.span_id, "016x") if parent is not None else None,
               "name": span.name, "start_ns": span.start_time, "end_ns": span.end_time,
               "status": code.rsplit(".", 1)[-1].lower(),
               "attributes": dict(span.attributes or {})}
    out["start_ns"] = int(out["start_ns"])
    out["end_ns"] = int(out["end_ns"])
    out.setdefault("status", "unset")
    out["status"] = str(out["status"]).lower()
    out["attributes"] = _as_dict(out.get("attributes"))
    return out


def trace_payload(spans: Iterable[Any], /, *, title: str | None = None) -> dict[str, Any]:
    """A ``trace.v1`` payload from span dicts (or OpenTelemetry ``ReadableSpan`` objects).

    Parameters
    ----------
    spans : iterable of mapping or ReadableSpan
        Mappings have ``trace_id`` (32 hex digits), ``span_id`` (16 hex digits),
        ``parent_id`` (or None), ``name``, ``start_ns`` and ``end_ns`` (ns since the Unix
        epoch), ``status`` (``"unset"``, ``"ok"`` or ``"error"``) and ``attributes``.
    title : str, optional

    Examples
    --------
    >>> p = trace_payload([{"trace_id": "0" * 32, "span_id": "1" * 16, "name": "dispatch",
    ...                     "start_ns": 0, "end_ns": 1_000}])
    >>> p["spans"][0]["status"], p["version"]
    ('unset', 1)
    """
    payload: dict[str, Any] = {"schema": "allframe.trace", "version": 1,
                               "spans": [_span_dict(s) for s in spans]}
    if title:
        payload["title"] = title
    return payload


def _span_order(spans: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Spans depth-first (children under parents, by start), with their depth."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for s in spans:
        parent = s.get("parent_id") if s.get("parent_id") in ids else None
        children.setdefault(parent, []).append(s)
    out: list[tuple[int, dict[str, Any]]] = []

    def walk(parent: str | None, depth: int) -> None:
        for s in sorted(children.get(parent, []), key=lambda x: x["start_ns"]):
            out.append((depth, s))
            walk(s["span_id"], depth + 1)

    walk(None, 0)
    return out


def trace_bundle(spans: Iterable[Any], /, *, title: str | None = None) -> MimeBundle:
    """Display spans as a trace waterfall (the extension) or a CSS waterfall (HTML fallback).

    Examples
    --------
    >>> b = trace_bundle([
    ...     {"trace_id": "a" * 32, "span_id": "1" * 16, "name": "dispatch",
    ...      "start_ns": 0, "end_ns": 2_000_000},
    ...     {"trace_id": "a" * 32, "span_id": "2" * 16, "parent_id": "1" * 16,
    ...      "name": "append", "start_ns": 500_000, "end_ns": 1_500_000, "status": "error"}])
    >>> print(b.data["text/plain"])
    trace: 2 span(s)
      dispatch  2.000 ms
        append  1.000 ms  ERROR
    """
    payload = trace_payload(spans, title=title)
    ordered = _span_order(payload["spans"])
    lo = min((s["start_ns"] for s in payload["spans"]), default=0)
    hi = max((s["end_ns"] for s in payload["spans"]), default=1)
    total = (hi - lo) or 1
    lines = [f"trace{' ' + repr(title) if title else ''}: {len(ordered)} span(s)"]
    rows = []
    for depth, s in ordered:
        ms = (s["end_ns"] - s["start_ns"]) / 1e6
        err = s["status"] == "error"
        lines.append(f"{'  ' * (depth + 1)}{s['name']}  {ms:.3f} ms{'  ERROR' if err else ''}")
        left = (s["start_ns"] - lo) / total * 100
        width = max((s["end_ns"] - s["start_ns"]) / total * 100, 0.3)
        bar = (f'<div style="position:relative;height:12px;background:#f6f8fb">'
               f'<div style="position:absolute;left:{left:.3f}%;width:{width:.3f}%;height:12px;'
               f'background:{"#d64545" if err else "#3b7dd8"}"></div></div>')
        rows.append((f'<span style="padding-left:{depth * 12}px">{esc(s["name"])}</span>',
                     f"{ms:.3f}", esc(s["status"]), bar))
    inner = table(["span", "ms", "status", "timeline"], rows, caption=title or "trace",
                  raw_columns=(0, 1, 2, 3))
    return MimeBundle({TRACE_MIME: payload, "text/html": _html_block(inner, "trace"),
                       "text/plain": "\n".join(lines)})
