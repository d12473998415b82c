"""Validation that collects every error: field constraints shared as named constants.

Each failure is reported as ``FieldError(field, message, input)``; nothing is appended when a
command is invalid.
"""

from __future__ import annotations

import pickle
from typing import Annotated

import pytest
from pydantic import model_validator

from allframe_lab import (
    Aggregate,
    App,
    Command,
    Event,
    Model,
    Query,
    SequentialIds,
    applies,
    handles,
)
from allframe_lab.errors import FieldError, ValidationError
from allframe_lab.model.constraints import Check, Email, Length, NonBlank, Pattern, Range
from allframe_lab.store import EventStore

# The rules' numbers have names ("no magic numbers"), and each constraint is declared once.
MAX_TITLE = 80
MAX_COPIES = 20
LOAN_DAYS_MAX = 42
ISBN_RULE = "must be an ISBN-13: 13 digits starting with 978 or 979"

Isbn = Annotated[str, Pattern(r"97[89][0-9]{10}", ISBN_RULE)]
Title = Annotated[str, Length(1, MAX_TITLE)]
Copies = Annotated[int, Range(gt=0, le=MAX_COPIES)]
LoanDays = Annotated[int, Range(ge=1, le=LOAN_DAYS_MAX)]
MemberName = NonBlank


def _isbn_checksum_ok(isbn: str) -> bool:
    digits = [int(c) for c in isbn]
    return sum(d * (1 if i % 2 == 0 else 3) for i, d in enumerate(digits)) % 10 == 0


CheckedIsbn = Annotated[Isbn, Check(_isbn_checksum_ok, "has a wrong check digit")]

GOOD_ISBN = "9780306406157"  # a valid ISBN-13
BAD_CHECK_DIGIT = "9780306406158"


def make_library() -> Model:
    lib = Model("library")

    @lib.event("BookAdded")
    class BookAdded(Event):
        title: str
        copies: int

    @lib.command("AddBook", stream="isbn", creates=True)
    class AddBook(Command):
        isbn: CheckedIsbn
        title: Title
        copies: Copies = 1

    @lib.command("RegisterMember", stream="email", creates=True)
    class RegisterMember(Command):
        email: Email
        name: MemberName

    @lib.command("LendBook", stream="isbn")
    class LendBook(Command):
        isbn: Isbn  # the same named constraint, on another command
        member: Email
        days: LoanDays = 14
        renewals: Annotated[int, Check(lambda n: n % 7 == 0, "must be whole weeks")] = 0

        @model_validator(mode="after")
        def _renewals_fit(self) -> LendBook:
            if self.days + self.renewals > LOAN_DAYS_MAX:
                raise ValueError(f"days + renewals must be <= {LOAN_DAYS_MAX}")
            return self

    @lib.query("BooksByTitle")
    class BooksByTitle(Query):
        prefix: Title
        limit: Annotated[int, Range(ge=1, le=100)] = 10

    @lib.aggregate("Book")
    class Book(Aggregate):
        copies: int = 0

        @applies("BookAdded")
        def _added(self, e: BookAdded) -> None:
            self.copies = e.copies

        @handles("AddBook")
        def add(self, c: AddBook) -> BookAdded:
            return BookAdded(title=c.title, copies=c.copies)

    return lib


@pytest.fixture
def lib() -> Model:
    return make_library()


def errors_of(exc: ValidationError) -> list[tuple[str, str, object]]:
    return [(e.field, e.message, e.input) for e in exc.errors]


def test_every_failure_is_collected_with_field_message_and_input(lib: Model) -> None:
    with pytest.raises(ValidationError) as info:
        lib.commands["AddBook"](isbn="12345", title="x" * (MAX_TITLE + 1), copies=0)
    errs = errors_of(info.value)
    assert [f for f, _, _ in errs] == ["isbn", "title", "copies"]
    assert errs[0] == ("isbn", ISBN_RULE, "12345")
    assert errs[1][2] == "x" * (MAX_TITLE + 1) and str(MAX_TITLE) in errs[1][1]
    assert errs[2][2] == 0 and "greater than 0" in errs[2][1]
    assert info.value.message_type == "AddBook"
    assert str(info.value).startswith("AddBook is invalid (3 errors):")
    assert isinstance(info.value, ValueError)


def test_required_fields_and_unknown_fields(lib: Model) -> None:
    with pytest.raises(ValidationError) as info:
        lib.commands["AddBook"](copies=2, colour="red")
    fields = {e.field: e for e in info.value.errors}
    assert set(fields) == {"isbn", "title", "colour"}
    assert "required" in fields["isbn"].message.lower()
    assert fields["colour"].input == "red"


@pytest.mark.parametrize(("email", "ok"), [
    ("ann@example.org", True), ("ann.b+loans@library.example.com", True),
    ("ann", False), ("ann@", False), ("@example.org", False), ("ann@@example.org", False),
])
def test_email(lib: Model, email: str, ok: bool) -> None:
    RegisterMember = lib.commands["RegisterMember"]
    if ok:
        assert RegisterMember(email=email, name="Ann").email == email
    else:
        with pytest.raises(ValidationError) as info:
            RegisterMember(email=email, name="Ann")
        assert [(e.field, e.input) for e in info.value.errors] == [("email", email)]
        assert "email" in info.value.errors[0].message.lower()


@pytest.mark.parametrize("value", ["", "   ", "\t"])
def test_non_blank(lib: Model, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        lib.commands["RegisterMember"](email="a@example.org", name=value)
    assert [e.field for e in info.value.errors] == ["name"]


def test_pattern_and_custom_validator(lib: Model) -> None:
    AddBook = lib.commands["AddBook"]
    assert AddBook(isbn=GOOD_ISBN, title="T").isbn == GOOD_ISBN
    with pytest.raises(ValidationError) as info:
        AddBook(isbn=BAD_CHECK_DIGIT, title="T")  # matches the pattern, fails the checksum
    assert errors_of(info.value) == [("isbn", "has a wrong check digit", BAD_CHECK_DIGIT)]
    LendBook = lib.commands["LendBook"]
    with pytest.raises(ValidationError) as info:
        LendBook(isbn=GOOD_ISBN, member="a@example.org", renewals=5)
    assert errors_of(info.value) == [("renewals", "must be whole weeks", 5)]


def test_model_level_rule_is_reported_on_root(lib: Model) -> None:
    LendBook = lib.commands["LendBook"]
    with pytest.raises(ValidationError) as info:
        LendBook(isbn=GOOD_ISBN, member="a@example.org", days=LOAN_DAYS_MAX, renewals=7)
    (err,) = info.value.errors
    assert err.field == "__root__" and str(LOAN_DAYS_MAX) in err.message


def test_named_constraints_are_shared_between_commands(lib: Model) -> None:
    with pytest.raises(ValidationError) as a:
        lib.commands["AddBook"](isbn="1", title="T")
    with pytest.raises(ValidationError) as b:
        lib.commands["LendBook"](isbn="1", member="a@example.org", days=LOAN_DAYS_MAX + 1)
    assert a.value.errors[0].message == b.value.errors[0].message == ISBN_RULE
    assert [e.field for e in b.value.errors] == ["isbn", "days"]
    assert str(LOAN_DAYS_MAX) in b.value.errors[1].message


def test_dispatch_validates_the_payload_and_writes_nothing(lib: Model, store: EventStore) -> None:
    app = App(lib, store, ids=SequentialIds())
    with pytest.raises(ValidationError) as info:
        app.dispatch("AddBook", {"isbn": "x", "title": "", "copies": MAX_COPIES + 1})
    assert [e.field for e in info.value.errors] == ["isbn", "title", "copies"]
    assert [e.input for e in info.value.errors] == ["x", "", MAX_COPIES + 1]
    assert store.head_position == 0
    with pytest.raises(ValidationError) as info:
        app.dispatch("AddBook", ["not", "a", "mapping"])  # type: ignore[arg-type]
    assert info.value.errors[0].field == "__root__"
    recs = app.dispatch("AddBook", {"isbn": GOOD_ISBN, "title": "Dune", "copies": 3})
    assert recs[0].data == {"title": "Dune", "copies": 3}


def test_queries_are_validated_like_commands(lib: Model) -> None:
    with pytest.raises(ValidationError) as info:
        lib.queries["BooksByTitle"](prefix="", limit=0)
    assert [e.field for e in info.value.errors] == ["prefix", "limit"]
    assert info.value.message_type == "BooksByTitle"


def test_validation_error_is_picklable_and_keeps_its_errors() -> None:
    err = ValidationError("AddBook", [FieldError("isbn", "bad", "1"), FieldError("t", "x", 2)])
    again = pickle.loads(pickle.dumps(err))
    assert again.errors == err.errors and str(again) == str(err)


def test_nested_fields_use_dotted_paths() -> None:
    shop = Model("shop")

    @shop.command("PlaceOrder")
    class PlaceOrder(Command):
        lines: list[Annotated[int, Range(gt=0)]]

    with pytest.raises(ValidationError) as info:
        PlaceOrder(lines=[1, 0, -2])
    assert [(e.field, e.input) for e in info.value.errors] == [("lines.1", 0), ("lines.2", -2)]
