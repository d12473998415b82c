"""The command form without a browser: schema -> fields; bad payload -> every error by field;
refusal -> the message at the top; good payload -> the recorded events, as stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import Field

from allframe_lab import Aggregate, App, Command, DomainError, Event, Model, applies, handles
from allframe_lab.errors import UnknownNameError
from allframe_lab.model.constraints import Email, Length, Pattern, Range
from allframe_lab.notebook.command_form import CommandForm, form_fields
from allframe_lab.store.duckdb import DuckDBEventStore

MAX_SEATS = 8


class SoldOut(DomainError):
    """More seats asked than are left."""


def make_venue() -> Model:
    m = Model("venue")

    @m.event("Booked")
    class Booked(Event):
        name: str
        email: str
        seats: int
        tier: str
        tags: list[str] = Field(default_factory=list)

    @m.command("Book", stream="show_id")
    class Book(Command):
        """Book seats for a show."""

        show_id: Annotated[str, Pattern(r"show-[0-9]+", "must look like show-123")]
        name: Annotated[str, Length(2, 20)]
        email: Email
        seats: Annotated[int, Range(ge=1, le=MAX_SEATS)]
        tier: Literal["stalls", "balcony"] = "stalls"
        tags: list[str] = Field(default_factory=list, max_length=3)
        vip: bool = False
        note: str | None = None

    @m.event("ShowScheduled")
    class ShowScheduled(Event):
        capacity: int

    @m.command("Schedule", stream="show_id", creates=True)
    class Schedule(Command):
        show_id: str
        capacity: int

    @m.aggregate("Show")
    class Show(Aggregate):
        left: int = 0

        @applies("ShowScheduled")
        def _scheduled(self, e: ShowScheduled) -> None:
            self.left = e.capacity

        @applies("Booked")
        def _booked(self, e: Booked) -> None:
            self.left -= e.seats

        @handles("Schedule")
        def schedule(self, c: Schedule) -> ShowScheduled:
            return ShowScheduled(capacity=c.capacity)

        @handles("Book")
        def book(self, c: Book) -> Booked:
            if c.seats > self.left:
                raise SoldOut(f"only {self.left} seats left, {c.seats} asked")
            return Booked(name=c.name, email=c.email, seats=c.seats, tier=c.tier,
                          tags=c.tags)

    return m


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[App]:
    app = App(make_venue(), DuckDBEventStore(tmp_path / "venue.duckdb"))
    app.dispatch("Schedule", {"show_id": "show-1", "capacity": 10})
    yield app
    app.close()


def test_fields_follow_the_json_schema() -> None:
    fields = {f["name"]: f for f in form_fields(make_venue().commands["Book"]
                                                .model_json_schema())}
    assert list(fields) == ["show_id", "name", "email", "seats", "tier", "tags", "vip", "note"]
    assert fields["seats"]["kind"] == "integer" and fields["seats"]["input"] == "number"
    assert fields["seats"]["constraints"] == {"minimum": 1, "maximum": MAX_SEATS}
    assert fields["name"]["constraints"] == {"minLength": 2, "maxLength": 20}
    assert fields["email"]["input"] == "email"
    assert fields["tier"]["kind"] == "enum" and fields["tier"]["options"] == ["stalls", "balcony"]
    assert fields["tier"]["default"] == "stalls" and not fields["tier"]["required"]
    assert fields["tags"]["kind"] == "json" and fields["tags"]["constraints"] == {"maxItems": 3}
    assert fields["vip"]["kind"] == "boolean" and fields["vip"]["input"] == "checkbox"
    assert fields["note"]["nullable"] and fields["note"]["kind"] == "string"
    assert [f for f, v in fields.items() if v["required"]] == ["show_id", "name", "email",
                                                                "seats"]


@pytest.mark.duckdb
def test_a_bad_payload_shows_every_error_by_field_and_writes_nothing(venue: App) -> None:
    form = CommandForm(venue, "Book")
    assert form.description == "Book seats for a show."
    head = venue.store.head_position
    form.values = {"show_id": "nope", "name": "x", "email": "not-an-email", "seats": 99,
                   "tier": "roof", "tags": '["a", "b", "c", "d"]', "vip": False, "note": ""}
    assert form.submit() == []
    assert form.status == "invalid"
    assert set(form.errors) == {"show_id", "name", "email", "seats", "tier", "tags"}
    assert form.errors["show_id"] == "must look like show-123"
    assert "at least 2" in form.errors["name"]
    assert "less than or equal to 8" in form.errors["seats"]
    assert "'stalls' or 'balcony'" in form.errors["tier"]
    assert "6 errors" in form.form_error
    assert form.recorded == [] and venue.store.head_position == head

    form.values = {"seats": "many"}  # missing fields are errors too, each named
    form.submit()
    assert set(form.errors) == {"show_id", "name", "email", "seats"}
    assert form.errors["name"] == "Field required"
    assert "valid integer" in form.errors["seats"]


@pytest.mark.duckdb
def test_a_refusal_shows_at_the_top(venue: App) -> None:
    form = CommandForm(venue, "Book", values={"show_id": "show-1", "name": "Ann",
                                              "email": "ann@example.org", "seats": 8})
    form.submit()
    form.submit()  # 2 seats left
    assert form.status == "refused" and form.errors == {} and form.recorded == []
    assert "only 2 seats left, 8 asked" in form.form_error
    form.values = {**form.values, "show_id": "show-2"}
    form.submit()  # no such show: another allframe error, also at the top
    assert form.status == "failed" and "show-2" in form.form_error


@pytest.mark.duckdb
def test_a_good_payload_shows_the_events_as_stored(venue: App) -> None:
    form = CommandForm(venue, "Book")
    # what the browser sends: every field, blanks as null/"" and JSON fields as text
    form._on_frontend_msg(form, {"type": "submit", "values": {
        "show_id": "show-1", "name": "Bob", "email": "bob@example.org", "seats": 3,
        "tier": "balcony", "tags": '["aisle"]', "vip": True, "note": None}}, [])
    assert form.status == "recorded" and form.errors == {} and form.form_error == ""
    assert form.submissions == 1
    stored = venue.store.read_stream("show-1")
    assert len(form.recorded) == 1
    [rec] = [r for r in stored if r.position == form.recorded[0]["position"]]
    row = form.recorded[0]
    assert (row["stream_id"], row["version"], row["type"]) == ("show-1", 2, "Booked")
    assert row["data"] == rec.data == {"name": "Bob", "email": "bob@example.org", "seats": 3,
                                       "tier": "balcony", "tags": ["aisle"]}
    assert venue.load("Show", "show-1").left == 7

    form.values = {"show_id": "show-1"}  # the next failure clears the recorded table
    form.submit()
    assert form.recorded == [] and form.status == "invalid"


def test_an_unknown_command_is_named() -> None:
    app = App(make_venue(), DuckDBEventStore(":memory:"))
    with pytest.raises(UnknownNameError, match=r"Bok.*Book"):
        CommandForm(app, "Bok")
    app.close()
