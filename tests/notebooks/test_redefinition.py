"""Defining, redefining and re-running cells in a REAL kernel.

A notebook user re-runs cells all the time. Each re-run creates a *new* class object under the
same name; the Model must accept it (with a RedefinitionWarning, never an error), hand the new
class to every lookup by name, keep decoding the events stored under the old class, and let
stale references to the old class object keep working, because everything is dispatched by
type name, never by class identity.

The notebook is built here with nbformat, executed once in a ``python3`` kernel with nbclient,
and its last cell prints a JSON report that the tests below check one claim at a time.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")

pytestmark = [pytest.mark.notebook, pytest.mark.slow]

SETUP = """
import json
import warnings

from allframe_lab import (
    Aggregate, App, Command, DuckDBEventStore, Event, ManualClock, Model, Projection,
    RedefinitionWarning, SequentialIds, applies, handles,
)
from allframe_lab.model import message_type

# Record every warning that reaches the user (and still show it, as Jupyter does).
seen_warnings = []
_show = warnings.showwarning

def _record(message, category, filename, lineno, file=None, line=None):
    seen_warnings.append({"category": category.__name__, "message": str(message),
                          "filename": str(filename)})
    _show(message, category, filename, lineno, file, line)

warnings.showwarning = _record
"""

DECLARE_V1 = """
shop = Model("shop")

@shop.event("CartOpened", version=1)
class CartOpened(Event):
    pass

@shop.event("ItemAdded", version=1)
class ItemAdded(Event):
    sku: str

@shop.command("OpenCart", stream="cart_id", creates=True)
class OpenCart(Command):
    cart_id: str

@shop.command("AddItem", stream="cart_id")
class AddItem(Command):
    cart_id: str
    sku: str
"""

AGGREGATE_V1 = """
@shop.aggregate("Cart")
class Cart(Aggregate):
    items: list[str] = []

    @applies("CartOpened")
    def _opened(self, event):
        pass

    @applies(ItemAdded)
    def _added(self, event):
        self.items.append(event.sku)

    @handles("OpenCart")
    def open(self, command):
        return CartOpened()

    @handles("AddItem")
    def add(self, command):
        return ItemAdded(sku=command.sku)

@shop.projection("lines", key="sku")
class Lines(Projection):
    @applies("ItemAdded")
    def added(self, event):
        row = self.rows.setdefault(event.sku, {"sku": event.sku, "lines": 0})
        row["lines"] += 1
"""

OPEN_APP = """
app = App(shop, DuckDBEventStore("shop.duckdb"), clock=ManualClock(), ids=SequentialIds())
app.handle(OpenCart(cart_id="c1"))
"""

ADD_APPLE = """
added = app.handle(AddItem(cart_id="c1", sku="apple"))
added[-1].data
"""

BEFORE = """
# Keep references to the first class objects, as a variable in a notebook would.
OldItemAdded, OldCart, OldLines = ItemAdded, Cart, Lines
old_event = ItemAdded(sku="old")
before = app.load("Cart", "c1")
lines_before = app.projection("lines").df().to_dict("records")
print(json.dumps({"items": before.items, "version": before.version, "lines": lines_before}))
"""

EVENT_V2 = """
@shop.event("ItemAdded", version=1)
class ItemAdded(Event):
    sku: str
    qty: int = 1
"""

AGGREGATE_V2 = """
@shop.aggregate("Cart")
class Cart(Aggregate):
    items: list[str] = []
    units: int = 0

    @applies("CartOpened")
    def _opened(self, event):
        pass

    @applies(OldItemAdded)  # a stale class object: handlers are keyed by its type name
    def _added(self, event):
        self.items.append(f"{event.sku} x{event.qty}")
        self.units += event.qty

    @handles("OpenCart")
    def open(self, command):
        return CartOpened()

    @handles("AddItem")
    def add(self, command):
        return ItemAdded(sku=command.sku, qty=2)

@shop.projection("lines", key="sku")
class Lines(Projection):
    @applies("ItemAdded")
    def added(self, event):
        row = self.rows.setdefault(event.sku, {"sku": event.sku, "lines": 0, "units": 0})
        row["lines"] += 1
        row["units"] += event.qty
"""

REPORT = """
def attempt(fn):
    try:
        return {"ok": True, "value": fn()}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

stored = [r for r in app.store.read_stream("c1") if r.type == "ItemAdded"]
decoded = [shop.decode(r.type, r.schema_version, r.data) for r in stored]
old_agg = OldCart()
old_agg.apply(ItemAdded(sku="fig", qty=3))

def cart(loaded):
    return {"type_is_new": type(loaded) is Cart, "type_is_old": type(loaded) is OldCart,
            "items": loaded.items, "units": getattr(loaded, "units", None),
            "version": loaded.version}

lines = app.projection("lines")
report = {
    "warnings": seen_warnings,
    "event_class_is_new": shop.event_class("ItemAdded") is ItemAdded,
    "event_class_is_not_old": shop.event_class("ItemAdded") is not OldItemAdded,
    "events_mapping_is_new": shop.events["ItemAdded"] is ItemAdded,
    "aggregate_class_is_new": shop.aggregate_class("Cart") is Cart,
    "aggregate_class_via_stale_is_new": shop.aggregate_class(OldCart) is Cart,
    "projection_is_new": shop.projection_decl("lines") is Lines,
    "stale_message_type": message_type(OldItemAdded),
    "stale_event_message_type": message_type(old_event),
    "route": [shop.route("AddItem").aggregate, shop.route("AddItem").method],
    "counts": [len(shop.events), len(shop.commands), len(shop.aggregates),
               len(shop.projections)],
    "stored_payloads": [r.data for r in stored],
    "stored_schema_versions": [r.schema_version for r in stored],
    "decoded": [d.model_dump() for d in decoded],
    "decoded_types_are_new": [type(d) is ItemAdded for d in decoded],
    "decoded_isinstance_old": [isinstance(d, OldItemAdded) for d in decoded],
    "old_aggregate_applies_new_event": {"items": old_agg.items, "version": old_agg.version},
    # reads through the App (they decode the stored rows again)
    "after": attempt(lambda: cart(app.load("Cart", "c1"))),
    "after_v2": attempt(lambda: cart(app.load("Cart", "c1", version=2))),
    "via_stale": attempt(lambda: cart(app.load(OldCart, "c1"))),
    "lines_rebuilt": attempt(lambda: (lines.rebuild(), lines.df().to_dict("records"))[1]),
}
print(json.dumps(report, default=str))
"""


def _cells() -> list[tuple[str, str]]:
    """(label, source) of the notebook's code cells, in execution order."""
    return [
        ("setup", SETUP),
        ("declare_v1", DECLARE_V1),
        ("aggregate_v1", AGGREGATE_V1),
        ("open_app", OPEN_APP),
        ("add_apple", ADD_APPLE),
        ("before", BEFORE),
        ("event_v2", EVENT_V2),  # redefine the event: a new field with a default
        ("aggregate_v2", AGGREGATE_V2),  # redefine the aggregate and the projection
        ("event_v2_rerun", EVENT_V2),  # re-run the same cell again
        ("add_apple_rerun", ADD_APPLE),  # re-run the command cell under the new definitions
        ("report", REPORT),
    ]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, run_notebook) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    labels = []
    for label, source in _cells():
        nb.cells.append(nbformat.v4.new_code_cell(textwrap.dedent(source).strip()))
        labels.append(label)
    cwd: Path = tmp_path_factory.mktemp("redefinition")
    run_notebook(nb, cwd, allow_errors=True)  # errors stay in the outputs: checked below
    cells = dict(zip(labels, nb.cells))
    return {"cells": cells, "report": _last_json(cells["report"]),
            "before": _last_json(cells["before"])}


def _stream(cell: Any, name: str) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.output_type == "stream" and o.get("name") == name)


def _last_json(cell: Any) -> Any:
    lines = [line for line in _stream(cell, "stdout").splitlines() if line.strip()]
    assert lines, f"the cell printed nothing; its outputs: {cell.outputs}"
    return json.loads(lines[-1])


def _errors(cell: Any) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]


def _ok(result: dict[str, Any]) -> Any:
    assert result["ok"], result["error"]
    return result["value"]


# ---------------------------------------------------------------------- warnings, not errors
def test_no_cell_raised(executed: dict[str, Any]) -> None:
    for label, cell in executed["cells"].items():
        assert not _errors(cell), f"cell {label!r} raised: {_errors(cell)}"
        assert cell.execution_count, f"cell {label!r} did not run"


def test_redefinition_warns(executed: dict[str, Any]) -> None:
    warned = [w for w in executed["report"]["warnings"] if w["category"] == "RedefinitionWarning"]
    messages = [w["message"] for w in warned]
    assert any("event 'ItemAdded' redefined in model 'shop'" in m for m in messages), messages
    assert any("aggregate 'Cart' redefined" in m for m in messages), messages
    assert any("projection 'lines' redefined" in m for m in messages), messages
    # the user sees it in the cell that redefined, on stderr, as a warning (not a traceback)
    shown = _stream(executed["cells"]["event_v2"], "stderr")
    assert "RedefinitionWarning" in shown and "ItemAdded" in shown, shown
    # first definitions do not warn
    for label in ("declare_v1", "aggregate_v1"):
        assert "RedefinitionWarning" not in _stream(executed["cells"][label], "stderr")


def test_redefinition_warning_points_at_the_users_cell(executed: dict[str, Any]) -> None:
    warned = [w for w in executed["report"]["warnings"] if w["category"] == "RedefinitionWarning"]
    assert warned
    for w in warned:
        assert "allframe_lab" not in w["filename"] and "IPython" not in w["filename"], w


def test_rerunning_the_same_cell_warns_again(executed: dict[str, Any]) -> None:
    shown = _stream(executed["cells"]["event_v2_rerun"], "stderr")
    assert "RedefinitionWarning" in shown, (
        f"re-running an identical definition cell showed no RedefinitionWarning: {shown!r}")


# ---------------------------------------------------------------------- lookups by name
def test_lookups_by_name_get_the_new_classes(executed: dict[str, Any]) -> None:
    r = executed["report"]
    assert r["event_class_is_new"] and r["event_class_is_not_old"]
    assert r["events_mapping_is_new"]
    assert r["aggregate_class_is_new"]
    assert r["projection_is_new"]
    assert r["counts"] == [2, 2, 1, 1], "a redefinition must replace, never add, an entry"
    assert r["route"] == ["Cart", "add"]


# ---------------------------------------------------------------------- stored history
def test_events_stored_with_the_old_class_decode_with_the_new_one(
        executed: dict[str, Any]) -> None:
    r = executed["report"]
    assert executed["before"]["items"] == ["apple"] and executed["before"]["version"] == 2
    assert r["stored_payloads"][0] == {"sku": "apple"}, "stored by the old class"
    assert r["stored_schema_versions"][0] == 1
    assert r["decoded"][0] == {"sku": "apple", "qty": 1}, "the new field takes its default"
    assert all(r["decoded_types_are_new"])
    # why the library never relies on isinstance: the new class is another class object
    assert not any(r["decoded_isinstance_old"])


def test_app_loads_old_events_with_the_new_classes(executed: dict[str, Any]) -> None:
    r = executed["report"]
    after = _ok(r["after"])
    assert after["type_is_new"]
    assert after["version"] == 3, "the re-run command cell appended one more event"
    assert after["items"][0] == "apple x1", "old event, new apply logic, default qty"
    assert _ok(r["after_v2"])["items"] == ["apple x1"]
    # App.load with a stale class object loads the *current* class (dispatch by name)
    via_stale = _ok(r["via_stale"])
    assert via_stale["type_is_new"] and via_stale["items"] == after["items"]


# ---------------------------------------------------------------------- stale references
def test_stale_references_dispatch_by_name(executed: dict[str, Any]) -> None:
    r = executed["report"]
    assert r["stale_message_type"] == "ItemAdded"
    assert r["stale_event_message_type"] == "ItemAdded"
    assert r["aggregate_class_via_stale_is_new"]
    # the stale aggregate class still folds events of the new event class (by type name)
    assert r["old_aggregate_applies_new_event"] == {"items": ["fig"], "version": 1}


# ---------------------------------------------------------------------- re-run under new code
def test_a_rerun_command_cell_runs_the_new_handler(executed: dict[str, Any]) -> None:
    r = executed["report"]
    assert r["stored_payloads"][-1] == {"sku": "apple", "qty": 2}


def test_python_projection_follows_the_redefinitions(executed: dict[str, Any]) -> None:
    r = executed["report"]
    expected = sum(d["qty"] for d in r["decoded"])
    # (a redefined projection continues from its checkpoint: rebuild() applies the new
    # handlers to the whole log)
    rebuilt = _ok(r["lines_rebuilt"])
    assert {row["sku"]: (row["lines"], row["units"]) for row in rebuilt} == {
        "apple": (2, expected)}
