"""Stream browser state without a browser: filters -> rows, selection -> timeline lanes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from allframe_lab import App, Model
from allframe_lab.notebook.mime import validate
from allframe_lab.notebook.stream_browser import StreamBrowser, filter_streams
from tests.notebook_layer.conftest import T0, timed_store


@pytest.fixture
def browser() -> StreamBrowser:
    return StreamBrowser(App(Model("orders"), timed_store()))


def _ids(sb: StreamBrowser) -> list[str]:
    return [r["stream_id"] for r in sb.rows]


def test_initial_state_lists_every_stream_and_type(browser: StreamBrowser) -> None:
    assert _ids(browser) == ["order-1", "order-2", "invoice-9"]  # by first position
    assert browser.total == 3
    assert browser.types == [{"type": "Placed", "events": 3}, {"type": "Paid", "events": 2},
                             {"type": "Cancelled", "events": 1}]
    first = browser.rows[0]
    assert (first["version"], first["events"], first["first_type"], first["last_type"]) == (
        2, 2, "Placed", "Paid")
    assert first["first_occurred"] == T0.isoformat()
    assert browser.first_time == T0.isoformat()
    assert browser.timeline["lanes"] == [] and browser.error == ""


def test_filters_change_rows(browser: StreamBrowser) -> None:
    browser.query = "ORDER"
    assert _ids(browser) == ["order-1", "order-2"]
    browser.event_type = "Paid"
    assert _ids(browser) == ["order-1"]
    browser.query = ""
    assert _ids(browser) == ["order-1", "invoice-9"]
    browser.event_type = ""
    browser.time_from = (T0 + timedelta(days=2, hours=12)).isoformat()
    browser.time_to = (T0 + timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")  # naive = UTC
    assert _ids(browser) == ["order-2"]
    browser.time_to = ""
    assert _ids(browser) == ["order-2", "invoice-9"]
    browser.time_from, browser.limit = "", 1
    assert _ids(browser) == ["order-1"] and browser.total == 3


def test_bad_time_sets_error_and_keeps_rows(browser: StreamBrowser) -> None:
    browser.time_from = "next tuesday"
    assert "not an ISO 8601 date-time" in browser.error
    assert browser.total == 3
    browser.time_from = ""
    assert browser.error == ""


def test_selection_gives_timeline_lanes(browser: StreamBrowser) -> None:
    browser.selected = ["invoice-9", "order-1"]
    tl = browser.timeline
    validate(tl)
    assert [lane["id"] for lane in tl["lanes"]] == ["invoice-9", "order-1"]
    assert [(e["lane"], e["type"]) for e in tl["events"]] == [
        ("order-1", "Placed"), ("order-1", "Paid"), ("invoice-9", "Placed"),
        ("invoice-9", "Paid")]  # in position order
    assert tl["events"][0]["data"] == {"total": 3}
    browser.selected = []
    assert browser.timeline["events"] == []


def test_refresh_sees_new_streams() -> None:
    app = App(Model("orders"), timed_store())
    sb = StreamBrowser(app, query="order")
    assert sb.total == 2
    from allframe_lab.store import NewEvent

    app.store.append("order-3", [NewEvent("Placed", {}, occurred_at=T0)])
    sb.refresh()
    assert _ids(sb) == ["order-1", "order-2", "order-3"]


@pytest.mark.slow
def test_filters_on_bpic2012_match_a_python_scan(bpic_app: App) -> None:
    """Each filter is checked against an independent scan of all 262,200 events."""
    first: dict[str, object] = {}
    last: dict[str, object] = {}
    types: dict[str, set[str]] = {}
    for r in bpic_app.store.read_all():
        first.setdefault(r.stream_id, r.occurred_at)
        last[r.stream_id] = r.occurred_at
        types.setdefault(r.stream_id, set()).add(r.type)
    assert len(types) == 13_087

    def ids(**kw):
        rows, total = filter_streams(bpic_app, limit=20_000, **kw)
        assert total == len(rows)
        return {r["stream_id"] for r in rows}

    assert ids() == set(types)
    assert ids(query="1999") == {s for s in types if "1999" in s}
    assert ids(event_type="A_DECLINED") == {s for s, t in types.items() if "A_DECLINED" in t}
    lo, hi = "2012-01-01T00:00", "2012-01-02T00:00"
    from datetime import UTC, datetime

    t_lo, t_hi = (datetime.fromisoformat(x).replace(tzinfo=UTC) for x in (lo, hi))
    assert ids(time_from=lo, time_to=hi) == {
        s for s in types if last[s] >= t_lo and first[s] <= t_hi}

    sb = StreamBrowser(bpic_app, event_type="O_CANCELLED", limit=50)
    assert len(sb.rows) == 50 and sb.total == sum("O_CANCELLED" in t for t in types.values())
    sb.selected = [r["stream_id"] for r in sb.rows[:3]]
    validate(sb.timeline)
    assert len(sb.timeline["events"]) == sum(
        bpic_app.store.stream_version(s) for s in sb.selected)
