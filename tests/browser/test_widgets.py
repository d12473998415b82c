"""The time-travel widget and the command form in JupyterLab (Debian's headless chromium)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser._lab import LabPage

TIME_TRAVEL = """
from datetime import datetime, timedelta, timezone
from allframe_lab import App, Model
from allframe_lab.store import InMemoryEventStore, NewEvent
from allframe_lab.notebook.time_travel import TimeTravel
t0 = datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)
m = Model("log")
m.sql_projection("per_stream", "SELECT stream_id, count(*) AS n, arg_max(type, position) AS "
                 "last_type FROM events GROUP BY stream_id ORDER BY stream_id")
store = InMemoryEventStore()
for i, (s, t) in enumerate([("a", "Opened"), ("b", "Opened"), ("a", "Paid"), ("a", "Shipped"),
                            ("b", "Cancelled")]):
    store.append(s, [NewEvent(t, {"n": i + 1}, occurred_at=t0 + timedelta(hours=i))])
tt = TimeTravel(App(m, store), projection="per_stream", position=2)
tt
"""


def table_rows(widget) -> list[list[str]]:  # type: ignore[no-untyped-def]
    rows = widget.locator(".allframe-tt-table tbody tr")
    return [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]


def test_moving_the_slider_changes_the_projection_table(lab: LabPage) -> None:
    lab.write_notebook("time_travel.ipynb", [TIME_TRAVEL])
    lab.open("time_travel.ipynb")
    lab.run_all()
    assert lab.error_outputs() == []
    widget = lab.outputs(".allframe-timetravel")
    expect(widget).to_have_count(1)
    expect(widget).to_have_attribute("data-shown-position", "2")
    assert table_rows(widget) == [["a", "1", "Opened"], ["b", "1", "Opened"]]
    expect(widget.locator(".allframe-tt-event-type")).to_have_text("Opened")

    # the slider (fill: JupyterLab eats arrow keys on a focused range input)
    widget.locator(".allframe-tt-slider").fill("4")
    expect(widget).to_have_attribute("data-shown-position", "4")
    assert table_rows(widget) == [["a", "3", "Shipped"], ["b", "1", "Opened"]]
    changed = widget.locator(".allframe-tt-table tbody tr.allframe-tt-changed")
    expect(changed).to_have_count(1)
    expect(changed.locator("td").first).to_have_text("a")
    expect(widget.locator(".allframe-tt-event-type")).to_have_text("Shipped")
    expect(widget.locator(".allframe-tt-summary")).to_contain_text("2 rows; 1 changed")

    # step buttons
    widget.locator(".allframe-tt-fwd-1").click()
    expect(widget).to_have_attribute("data-shown-position", "5")
    assert table_rows(widget) == [["b", "2", "Cancelled"], ["a", "3", "Shipped"]]
    widget.locator(".allframe-tt-back-1").click()
    expect(widget).to_have_attribute("data-shown-position", "4")

    # the date-time control (UTC): the last event by 10:30 is position 2
    widget.locator(".allframe-tt-time").fill("2024-01-01T10:30")
    expect(widget).to_have_attribute("data-shown-position", "2")
    assert table_rows(widget)[0] == ["a", "1", "Opened"]
    expect(widget.locator(".allframe-tt-slider")).to_have_value("2")

    # play: one step (N = 1 here) per tick until the head, then it stops by itself
    widget.locator(".allframe-tt-play").click()
    expect(widget).to_have_attribute("data-shown-position", "5", timeout=15_000)
    expect(widget.locator(".allframe-tt-play")).to_have_text("▶")
    assert table_rows(widget) == [["b", "2", "Cancelled"], ["a", "3", "Shipped"]]
    lab.screenshot("time-travel")


COMMAND_FORM = """
from typing import Annotated
from allframe_lab import App, Model, Command, Event, Aggregate, applies, handles
from allframe_lab.model.constraints import Email, Length, Range
from allframe_lab.store import InMemoryEventStore
from allframe_lab.notebook.command_form import CommandForm
m = Model("club")
@m.event("Joined")
class Joined(Event):
    name: str
    email: str
    age: int
@m.command("Join", stream="member_id", creates=True)
class Join(Command):
    member_id: str
    name: Annotated[str, Length(2, 20)]
    email: Email
    age: Annotated[int, Range(ge=18, le=130)]
@m.aggregate("Member")
class Member(Aggregate):
    name: str = ""
    @applies("Joined")
    def _joined(self, e):
        self.name = e.name
    @handles("Join")
    def join(self, c):
        return Joined(name=c.name, email=c.email, age=c.age)
app = App(m, InMemoryEventStore())
form = CommandForm(app, "Join")
form
"""


def test_the_command_form_shows_every_error_then_the_recorded_events(lab: LabPage) -> None:
    lab.write_notebook("command_form.ipynb", [COMMAND_FORM])
    lab.open("command_form.ipynb")
    lab.run_all()
    assert lab.error_outputs() == []
    form = lab.outputs(".allframe-commandform")
    expect(form).to_have_count(1)
    expect(form.locator(".allframe-cf-field")).to_have_count(4)

    def error(field: str):  # type: ignore[no-untyped-def]
        return form.locator(f".allframe-cf-error[data-field='{field}']")

    # a bad submission: member_id missing, name too short, bad e-mail, age out of range
    form.locator("input[name='name']").fill("x")
    form.locator("input[name='email']").fill("not-an-email")
    form.locator("input[name='age']").fill("7")
    form.locator(".allframe-cf-submit").click()
    expect(form).to_have_attribute("data-status", "invalid")
    expect(error("member_id")).to_have_text("Field required")
    expect(error("name")).to_contain_text("at least 2")
    expect(error("email")).not_to_be_empty()
    expect(error("age")).to_contain_text("greater than or equal to 18")
    expect(form.locator(".allframe-cf-form-error")).to_contain_text("4 errors")
    expect(form.locator(".allframe-cf-recorded")).to_have_count(0)

    # a good one: the recorded event is shown as stored
    form.locator("input[name='member_id']").fill("m-1")
    form.locator("input[name='name']").fill("Ann")
    form.locator("input[name='email']").fill("ann@example.org")
    form.locator("input[name='age']").fill("30")
    form.locator(".allframe-cf-submit").click()
    expect(form).to_have_attribute("data-status", "recorded")
    for field in ("member_id", "name", "email", "age"):
        expect(error(field)).to_be_empty()
    row = form.locator(".allframe-cf-recorded tbody tr")
    expect(row).to_have_count(1)
    cells = row.locator("td")
    expect(cells.nth(0)).to_have_text("1")        # position
    expect(cells.nth(1)).to_have_text("m-1")      # stream
    expect(cells.nth(2)).to_have_text("1")        # version
    expect(cells.nth(3)).to_have_text("Joined")   # type
    expect(cells.nth(4)).to_have_text('{"name":"Ann","email":"ann@example.org","age":30}')
    lab.screenshot("command-form")
