"""The stream browser widget in JupyterLab: filter, pick streams, see lanes, click an event."""

from __future__ import annotations

import json

from playwright.sync_api import expect

from tests.browser._lab import LabPage

SETUP = """
from datetime import datetime, timedelta, timezone
from allframe_lab.notebook import Workbench
from allframe_lab.store import InMemoryEventStore, NewEvent
t0 = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)
day = timedelta(days=1)
store = InMemoryEventStore()
store.append("order-1", [NewEvent("Placed", {"total": 3}, occurred_at=t0),
                         NewEvent("Paid", {"total": 3, "card": "visa"}, occurred_at=t0 + day)])
store.append("order-2", [NewEvent("Placed", {"total": 5}, occurred_at=t0 + 2 * day),
                         NewEvent("Cancelled", {"why": "late"}, occurred_at=t0 + 3 * day)])
store.append("invoice-9", [NewEvent("Placed", {"total": 9}, occurred_at=t0 + 10 * day)])
wb = Workbench(store)
"""


def test_filter_pick_and_read_a_payload(lab: LabPage) -> None:
    lab.write_notebook("streams.ipynb", [SETUP, "sb = wb.streams()\nsb"])
    lab.open("streams.ipynb")
    lab.run_all()
    assert lab.error_outputs() == []
    browser = lab.outputs(".allframe-stream-browser")
    expect(browser).to_have_count(1)
    rows = browser.locator(".allframe-stream-row")
    expect(rows).to_have_count(3)
    expect(browser.locator(".allframe-stream-count")).to_contain_text("3 streams match")

    # filter by id (typed; the kernel runs the SQL and sends the rows back)
    browser.locator(".allframe-stream-query").fill("ORDER")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_have_attribute("data-stream-id", "order-1")
    # and by event type
    browser.locator(".allframe-stream-type").select_option("Cancelled")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-stream-id", "order-2")
    browser.locator(".allframe-stream-type").select_option("")
    expect(rows).to_have_count(2)

    # pick one stream, then add a second one as another lane
    rows.nth(0).click()
    lanes = browser.locator(".allframe-timeline-lane")
    expect(lanes).to_have_count(1)
    expect(lanes.nth(0)).to_have_attribute("data-lane", "order-1")
    rows.nth(1).click(modifiers=["Control"])
    expect(lanes).to_have_count(2)
    expect(browser.locator(".allframe-timeline-lane[data-lane='order-2'] "
                           ".allframe-timeline-event")).to_have_count(2)

    # click an event: its payload shows
    browser.locator(".allframe-timeline-event[data-position='2']").click()
    payload = browser.locator(".allframe-timeline-payload")
    expect(payload).not_to_be_empty()
    assert json.loads(payload.inner_text()) == {"total": 3, "card": "visa"}
    expect(browser.locator(".allframe-timeline-selected")).to_contain_text("Paid")
    expect(browser.locator(".allframe-timeline-selected")).to_contain_text("order-1")
    browser.locator(".allframe-timeline-event[data-position='4']").click()
    assert json.loads(payload.inner_text()) == {"why": "late"}

    # a time filter from the date inputs (UTC): only streams overlapping the window
    browser.locator(".allframe-stream-query").fill("")
    expect(rows).to_have_count(3)
    browser.locator(".allframe-stream-from").fill("2024-01-05T00:00")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-stream-id", "invoice-9")
    lab.screenshot("stream-browser")
