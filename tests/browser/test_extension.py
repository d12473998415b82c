"""The JupyterLab extension in a real browser: installed, renderers, saved outputs, sidebar."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser._lab import EXTENSION_NAME, RENDERERS_PLUGIN, SIDEBAR_PLUGIN, LabPage, LabServer

SCHEMAS = Path(__file__).resolve().parents[2] / "allframe_lab" / "notebook" / "schemas"

GRAPH = {
    "schema": "allframe.graph", "version": 1, "title": "bank flow",
    "dot": 'digraph bank { rankdir=LR; OpenAccount -> AccountOpened; '
           'AccountOpened -> Account; Deposit -> FundsDeposited; FundsDeposited -> Account; '
           '"balances view" ; FundsDeposited -> "balances view"; }',
    "nodes": [{"id": "OpenAccount", "kind": "command"}, {"id": "Account", "kind": "aggregate"}],
}
GRAPH_NODES = {"OpenAccount", "AccountOpened", "Account", "Deposit", "FundsDeposited",
               "balances view"}

TIMELINE = {
    "schema": "allframe.timeline", "version": 1, "title": "two accounts",
    "lanes": [{"id": "acc-1", "label": "account 1"}, {"id": "acc-2"}],
    "events": [
        {"lane": "acc-1", "position": 1, "version": 1, "type": "AccountOpened",
         "time": "2024-03-01T09:00:00+00:00", "data": {"owner": "ann"}},
        {"lane": "acc-2", "position": 2, "version": 1, "type": "AccountOpened",
         "time": "2024-03-01T09:05:00+00:00", "data": {"owner": "bob"}},
        {"lane": "acc-1", "position": 3, "version": 2, "type": "FundsDeposited",
         "time": "2024-03-01T10:00:00+00:00", "data": {"amount": 4711},
         "metadata": {"correlation_id": "c-42"}},
    ],
}

T0 = 1_700_000_000_000_000_000
TRACE = {
    "schema": "allframe.trace", "version": 1,
    "spans": [
        {"trace_id": "a" * 32, "span_id": "1" * 16, "parent_id": None, "name": "dispatch Deposit",
         "start_ns": T0, "end_ns": T0 + 9_000_000, "status": "ok",
         "attributes": {"allframe.command": "Deposit"}},
        {"trace_id": "a" * 32, "span_id": "2" * 16, "parent_id": "1" * 16, "name": "load Account",
         "start_ns": T0 + 1_000_000, "end_ns": T0 + 3_000_000, "status": "unset",
         "attributes": {"allframe.stream_id": "acc-1"}},
        {"trace_id": "a" * 32, "span_id": "3" * 16, "parent_id": "1" * 16, "name": "append",
         "start_ns": T0 + 4_000_000, "end_ns": T0 + 8_000_000, "status": "error",
         "attributes": {"exception.type": "ConcurrencyError", "expected_version": 2}},
    ],
}

MIME = {
    "graph": "application/vnd.allframe.graph+json",
    "timeline": "application/vnd.allframe.timeline+json",
    "trace": "application/vnd.allframe.trace+json",
}


def display_cell(kind: str, payload: dict[str, Any]) -> str:
    """A cell displaying one raw MIME bundle (with the text fallbacks every bundle carries)."""
    bundle = {MIME[kind]: payload, "text/plain": f"<allframe {kind}>",
              "text/html": f"<b>allframe {kind} (install the JupyterLab extension)</b>"}
    return ("from IPython.display import display\n"
            f"display(__import__('json').loads({json.dumps(json.dumps(bundle))}), raw=True)")


MIME_CELLS = [display_cell("graph", GRAPH), display_cell("timeline", TIMELINE),
              display_cell("trace", TRACE)]


@pytest.mark.parametrize(("kind", "payload"), [("graph", GRAPH), ("timeline", TIMELINE),
                                               ("trace", TRACE)])
def test_test_payloads_follow_the_shared_schemas(kind: str, payload: dict[str, Any]) -> None:
    import jsonschema

    schema = json.loads((SCHEMAS / f"{kind}.v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(payload)


def test_extension_is_installed_enabled_and_loaded(lab: LabPage, jupyter_lab: LabServer) -> None:
    res = subprocess.run([sys.executable, "-m", "jupyter", "labextension", "list"],
                         capture_output=True, text=True, env=jupyter_lab.env, timeout=120)
    listing = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr)
    line = next((ln for ln in listing.splitlines() if EXTENSION_NAME in ln), "")
    assert re.search(r"enabled\s+OK", line), listing

    lab.write_notebook("empty.ipynb", ["1 + 1"])
    lab.open("empty.ipynb")
    config = lab.page_config()
    federated = {e["name"]: e for e in config["federated_extensions"]}
    assert EXTENSION_NAME in federated
    assert {"extension", "mimeExtension"} <= set(federated[EXTENSION_NAME])
    assert lab.plugin_state(SIDEBAR_PLUGIN) == {"registered": True, "activated": True}
    assert lab.plugin_state(RENDERERS_PLUGIN)["registered"]
    expect(lab.page.locator(".jp-SideBar [data-id='allframe-sidebar']")).to_have_count(1)


def test_three_mime_types_render_their_dom(lab: LabPage) -> None:
    lab.write_notebook("mime.ipynb", MIME_CELLS)
    lab.open("mime.ipynb")
    lab.run_all()
    assert lab.error_outputs() == []
    check_rendered(lab)
    # interaction: clicking an event shows its payload; clicking a span its attributes
    timeline = lab.outputs(".allframe-timeline")
    timeline.locator(".allframe-timeline-event[data-position='3']").click()
    payload = json.loads(timeline.locator(".allframe-timeline-payload").inner_text())
    assert payload == {"amount": 4711}
    expect(timeline.locator(".allframe-timeline-selected")).to_contain_text("FundsDeposited")
    expect(timeline.locator(".allframe-timeline-selected")).to_contain_text("acc-1")
    timeline.locator(".allframe-timeline-event[data-position='2']").click()
    assert json.loads(timeline.locator(".allframe-timeline-payload").inner_text()) == {
        "owner": "bob"}
    # "by position" places events in global order, evenly
    timeline.locator(".allframe-timeline-scale[data-scale='position']").click()
    xs = {int(p): x for p, x in timeline.locator(".allframe-timeline-event").evaluate_all(
        "els => els.map(e => [e.dataset.position, e.getBoundingClientRect().left])")}
    assert xs[1] < xs[2] < xs[3]
    assert abs((xs[2] - xs[1]) - (xs[3] - xs[2])) < 2

    trace = lab.outputs(".allframe-trace")
    error_bar = trace.locator(f".allframe-trace-bar[data-span-id='{'3' * 16}']")
    assert "ConcurrencyError" in (error_bar.get_attribute("title") or "")
    error_bar.click()
    details = json.loads(trace.locator(".allframe-trace-details").inner_text())
    assert details["attributes"] == {"exception.type": "ConcurrencyError", "expected_version": 2}
    assert details["parent_id"] == "1" * 16
    lab.screenshot("mime-renderers")


def check_rendered(lab: LabPage) -> None:
    """The DOM hooks of PROTOCOL.md for GRAPH, TIMELINE and TRACE, rendered by the extension."""
    graph = lab.outputs(".allframe-graph")
    expect(graph).to_have_count(1)
    expect(graph.locator("svg g.node")).to_have_count(len(GRAPH_NODES), timeout=60_000)
    titles = graph.locator("svg g.node > title").all_text_contents()
    assert set(titles) == GRAPH_NODES
    assert graph.locator("svg g.edge").count() == 5
    assert graph.locator("svg g.node[data-kind='aggregate'] > title").text_content() == "Account"

    timeline = lab.outputs(".allframe-timeline")
    expect(timeline).to_have_count(1)
    lanes = timeline.locator(".allframe-timeline-lane")
    assert [lanes.nth(i).get_attribute("data-lane") for i in range(lanes.count())] == [
        "acc-1", "acc-2"]
    positions = {lane: sorted(int(p) for p in timeline.locator(
        f".allframe-timeline-lane[data-lane='{lane}'] .allframe-timeline-event"
    ).evaluate_all("els => els.map(e => e.dataset.position)")) for lane in ("acc-1", "acc-2")}
    assert positions == {"acc-1": [1, 3], "acc-2": [2]}

    trace = lab.outputs(".allframe-trace")
    bars = trace.locator(".allframe-trace-bar")
    expect(bars).to_have_count(3)
    assert bars.all_inner_texts() == ["dispatch Deposit", "load Account", "append"]
    assert [bars.nth(i).get_attribute("data-span-id") for i in range(3)] == [
        "1" * 16, "2" * 16, "3" * 16]
    errors = trace.locator(".allframe-trace-bar.allframe-trace-error")
    assert errors.evaluate_all("els => els.map(e => e.dataset.spanId)") == ["3" * 16]
    # bars are placed by time: the child starting 4 ms into a 9 ms trace sits right of the root
    lefts = bars.evaluate_all("els => els.map(e => e.getBoundingClientRect().left)")
    assert lefts[0] < lefts[1] < lefts[2]
    # the text/html fallback is not what was rendered
    assert lab.outputs().filter(has_text="install the JupyterLab extension").count() == 0


def test_unknown_version_shows_a_clear_message(lab: LabPage) -> None:
    future = {**TIMELINE, "version": 2}
    broken = {**TRACE, "spans": [{"span_id": "x", "name": "no times"}]}
    lab.write_notebook("versions.ipynb", [display_cell("timeline", future),
                                          display_cell("trace", broken)])
    lab.open("versions.ipynb")
    lab.run_all()
    messages = lab.outputs(".allframe-error")
    expect(messages).to_have_count(2)
    expect(messages.nth(0)).to_contain_text("version 2 is not supported")
    expect(messages.nth(0)).to_contain_text("renders version 1")
    expect(messages.nth(1)).to_contain_text('missing required field "start_ns"')
    expect(lab.outputs(".allframe-timeline-lane")).to_have_count(0)


def test_saved_outputs_render_without_running(lab: LabPage) -> None:
    lab.write_notebook("saved.ipynb", MIME_CELLS)
    executed = lab.execute_notebook("saved.ipynb")
    saved = [o for cell in executed.cells for o in cell.outputs]
    assert [next(m for m in o["data"] if m.startswith("application/vnd.allframe")) for o in saved
            ] == list(MIME.values())
    lab.open("saved.ipynb")
    # Nothing runs in this session: the cells show their saved execution counts. (The kernel
    # may turn busy for a moment after it is ready, e.g. for the model sidebar's silent
    # query: wait for idle instead of reading the status once.)
    lab.wait_idle()
    shown = lab.page.evaluate(
        """() => {
            const cells = window.jupyterapp.shell.currentWidget.content.model.cells;
            const out = [];
            for (let i = 0; i < cells.length; i++) {
                const c = cells.get(i);
                if (c.type === 'code') out.push(c.executionCount);
            }
            return out;
        }""")
    assert shown == [c.execution_count for c in executed.cells if c.cell_type == "code"]
    assert all(n is not None for n in shown)
    check_rendered(lab)


SIDEBAR_CELLS = [
    "from allframe_lab import Aggregate, App, Command, Event, InMemoryEventStore, Model\n"
    "from allframe_lab import applies, handles\n"
    "bank = Model('bank')\n"
    "\n"
    "@bank.event('AccountOpened', version=1)\n"
    "class AccountOpened(Event):\n"
    "    owner: str\n"
    "\n"
    "@bank.command('OpenAccount', stream='account_id', creates=True)\n"
    "class OpenAccount(Command):\n"
    "    account_id: str\n"
    "    owner: str\n"
    "\n"
    "@bank.aggregate('Account')\n"
    "class Account(Aggregate):\n"
    "    owner: str = ''\n"
    "    @applies('AccountOpened')\n"
    "    def _opened(self, e):\n"
    "        self.owner = e.owner\n"
    "    @handles('OpenAccount')\n"
    "    def open(self, c):\n"
    "        return AccountOpened(owner=c.owner)\n",
    "app = App(bank, InMemoryEventStore())\n"
    "_ = app.handle(OpenAccount(account_id='acc-7', owner='ann'))\n"
    "_ = app.handle(OpenAccount(account_id='acc-8', owner='bob'))",
]


def test_sidebar_lists_the_model_after_a_cell_runs(lab: LabPage) -> None:
    lab.write_notebook("sidebar.ipynb", SIDEBAR_CELLS)
    lab.open("sidebar.ipynb")
    sidebar = lab.show_sidebar()
    expect(sidebar.locator(".allframe-sidebar-message")).to_contain_text("No allframe-lab Model")
    expect(sidebar.locator(".allframe-sidebar-model")).to_have_count(0)
    lab.run_all()
    assert lab.error_outputs() == []

    model = sidebar.locator(".allframe-sidebar-model")
    expect(model).to_have_count(1)
    for name in ("bank", "AccountOpened", "OpenAccount", "Account"):
        expect(model).to_contain_text(name)
    store = sidebar.locator(".allframe-sidebar-store")
    expect(store).to_have_count(1)
    expect(store).to_contain_text("InMemoryEventStore")
    streams = store.locator(".allframe-sidebar-stream")
    assert streams.evaluate_all("els => els.map(e => e.dataset.streamId)") == ["acc-7", "acc-8"]

    # one more cell (run through the notebook) refreshes the sidebar
    lab.command("notebook:insert-cell-below")
    lab.page.evaluate(
        """() => { const nb = window.jupyterapp.shell.currentWidget.content;
                   nb.activeCell.model.sharedModel.setSource(
                     "_ = app.handle(OpenAccount(account_id='acc-9', owner='cy'))"); }""")
    lab.command("notebook:run-cell")
    expect(streams).to_have_count(3)

    # clicking a stream opens its timeline in the main area
    store.locator(".allframe-sidebar-stream[data-stream-id='acc-8']").click()
    panel = lab.page.locator(".allframe-stream-panel .allframe-timeline")
    expect(panel).to_have_count(1)
    lanes = panel.locator(".allframe-timeline-lane")
    expect(lanes).to_have_count(1)
    assert lanes.get_attribute("data-lane") == "acc-8"
    panel.locator(".allframe-timeline-event").click()
    assert json.loads(panel.locator(".allframe-timeline-payload").inner_text()) == {
        "owner": "bob"}
    lab.screenshot("sidebar")

    # a kernel restart empties the namespace: the sidebar follows
    lab.page.evaluate("() => window.jupyterapp.shell.widgets('main').next().value"
                      ".sessionContext.session.kernel.restart()")
    expect(sidebar.locator(".allframe-sidebar-model")).to_have_count(0)
    expect(sidebar.locator(".allframe-sidebar-message")).to_contain_text("No allframe-lab Model")
