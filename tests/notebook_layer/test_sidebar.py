"""Kernel side of the model sidebar: namespace scan, store summaries, stream timelines."""

from __future__ import annotations

from pathlib import Path

import pytest

from allframe_lab import App, Model
from allframe_lab.notebook.mime import validate
from allframe_lab.notebook.sidebar import find_stores, sidebar_state, stream_timeline
from allframe_lab.notebook.workbench import Workbench
from allframe_lab.store import InMemoryEventStore, NewEvent

EXPR = "__import__('allframe_lab.notebook.sidebar', fromlist=['_']).sidebar_state()"


def test_scan_finds_models_apps_workbenches_and_stores(bank_app, tmp_path: Path) -> None:
    lone = Model("lonely")
    extra = InMemoryEventStore()
    extra.append("x", [NewEvent("E", {})])
    wb = Workbench(tmp_path / "wb.duckdb", register=False)
    ns = {"bank": bank_app.model, "app": bank_app, "same_app": bank_app, "lone": lone,
          "extra": extra, "wb": wb, "_hidden": Model("hidden"), "n": 3, "Model": Model}
    state = sidebar_state(ns).payload
    assert state["schema"] == "allframe.sidebar" and state["version"] == 1
    models = {m["variable"]: m for m in state["models"]}
    assert set(models) == {"bank", "lone", "wb.model"}  # app's model found as "bank"
    bank = models["bank"]
    info = bank_app.model.info()
    assert bank["events"] == [e.name for e in info.events]
    assert bank["commands"] == [c.name for c in info.commands]
    assert bank["aggregates"] == ["Account"] and bank["projections"] == ["balances", "totals"]
    assert bank["sagas"] == []
    stores = {s["key"]: s for s in state["stores"]}
    assert set(stores) == {"app", "extra", "wb"}  # one entry per store object
    s = stores["app"]
    stats = bank_app.store.stats()
    assert (s["events"], s["streams"], s["types"], s["head_position"]) == (
        stats.events, stats.streams, len(stats.event_types), stats.head_position)
    assert s["stream_list"] == [{"stream_id": "a1", "version": 3},
                                {"stream_id": "b2", "version": 2}]
    assert s["first_occurred"] == stats.first_occurred_at.isoformat()
    assert "DuckDBEventStore" in stores["wb"]["label"] and stores["wb"]["events"] == 0
    wb.close()


def test_summary_follows_new_events(bank_app) -> None:
    ns = {"app": bank_app}
    before = sidebar_state(ns).payload["stores"][0]
    bank_app.handle(bank_app.model.commands["OpenAccount"](account_id="c3", owner="cy"))
    after = sidebar_state(ns).payload["stores"][0]
    assert after["events"] == before["events"] + 1
    assert after["stream_list"][-1] == {"stream_id": "c3", "version": 1}


def test_closed_store_is_reported_not_raised(tmp_path: Path) -> None:
    from allframe_lab.store.duckdb import DuckDBEventStore

    store = DuckDBEventStore(tmp_path / "c.duckdb")
    store.close()
    entry = sidebar_state({"store": store}).payload["stores"][0]
    assert entry["key"] == "store" and "error" in entry


def test_stream_timeline_payload(bank_app) -> None:
    t = stream_timeline("app", "a1", namespace={"app": bank_app})
    payload = t._repr_json_()
    validate(payload)
    assert payload["lanes"] == [{"id": "a1", "label": "a1"}]
    assert [e["type"] for e in payload["events"]] == [
        r.type for r in bank_app.store.read_stream("a1")]
    bundle = t._repr_mimebundle_()
    assert {"application/json", "application/vnd.allframe.timeline+json", "text/html",
            "text/plain"} <= set(bundle)
    with pytest.raises(KeyError, match="no event store in variable 'nope'"):
        stream_timeline("nope", "a1", namespace={"app": bank_app})
    assert find_stores({"app": bank_app, "m": bank_app.model}) == {"app": bank_app.store}


def test_user_expression_as_the_extension_sends_it(shell, bank_app) -> None:
    """The exact silent request of the JupyterLab plugin, in a real IPython shell."""
    shell.user_ns["app"] = bank_app
    shell.user_ns["other"] = App(Model("other"), InMemoryEventStore())
    reply = shell.user_expressions({
        "allframe": EXPR,
        "timeline": "__import__('allframe_lab.notebook.sidebar', fromlist=['_'])"
                    ".stream_timeline('app', 'b2')"})
    assert reply["allframe"]["status"] == "ok", reply["allframe"]
    state = reply["allframe"]["data"]["application/json"]
    assert [s["key"] for s in state["stores"]] == ["app", "other"]
    assert [m["variable"] for m in state["models"]] == ["app.model", "other.model"]
    timeline = reply["timeline"]["data"]["application/json"]
    validate(timeline)
    assert [e["lane"] for e in timeline["events"]] == ["b2", "b2"]


def test_sidebar_import_stays_light() -> None:
    """The plugin imports the sidebar module after every cell: no widget or graph libraries."""
    import json
    import subprocess
    import sys

    code = ("import sys, json; import allframe_lab.notebook.sidebar, allframe_lab.notebook; "
            "print(json.dumps([m for m in ('anywidget', 'ipywidgets', 'graphviz', 'panel', "
            "'pandas', 'duckdb') if m in sys.modules]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert json.loads(res.stdout) == []


def test_lazy_public_names_resolve() -> None:
    import allframe_lab.notebook as nb

    for name in nb.__all__:
        assert getattr(nb, name) is not None
    with pytest.raises(AttributeError):
        nb.nope  # noqa: B018
