"""The notebook layer: the Workbench, rich reprs, MIME bundles, widgets and IPython magics.

Start with ``%load_ext allframe_lab`` (registers rich formatters for models, stores,
aggregates, projections and validation errors) or ``wb = Workbench(app_or_store_or_path)``.

The names below are imported on first use, so ``import allframe_lab.notebook`` stays cheap
(the sidebar's per-cell query imports it).

======================== ==================================================================
``Workbench``            facade over an App: model, store, streams, aggregates, projections,
                         event-flow graph, stream browser, time travel, command form
``StreamBrowser``        widget: filter streams by id, event type and time; pick to see lanes
``event_flow``           the model's event-flow graph (command -> aggregate -> event ->
                         projection) as a graph MIME bundle
``graph_bundle``         DOT -> ``application/vnd.allframe.graph+json`` bundle
``timeline_bundle``      events -> ``application/vnd.allframe.timeline+json`` bundle
``trace_bundle``         spans -> ``application/vnd.allframe.trace+json`` bundle
``register_formatters``  register the rich formatters on an IPython shell
======================== ==================================================================
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.notebook.graphs import event_flow
    from allframe_lab.notebook.magics import load_ipython_extension, unload_ipython_extension
    from allframe_lab.notebook.mime import graph_bundle, timeline_bundle, trace_bundle
    from allframe_lab.notebook.reprs import register_formatters, unregister_formatters
    from allframe_lab.notebook.stream_browser import StreamBrowser
    from allframe_lab.notebook.workbench import Workbench

__all__ = [
    "StreamBrowser",
    "Workbench",
    "event_flow",
    "graph_bundle",
    "load_ipython_extension",
    "register_formatters",
    "timeline_bundle",
    "trace_bundle",
    "unload_ipython_extension",
    "unregister_formatters",
]

_LAZY = {
    "StreamBrowser": "stream_browser",
    "Workbench": "workbench",
    "event_flow": "graphs",
    "graph_bundle": "mime",
    "load_ipython_extension": "magics",
    "register_formatters": "reprs",
    "timeline_bundle": "mime",
    "trace_bundle": "mime",
    "unload_ipython_extension": "magics",
    "unregister_formatters": "reprs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'allframe_lab.notebook' has no attribute {name!r}")
    return getattr(import_module(f"allframe_lab.notebook.{module}"), name)
