"""Model declarations: names, redefinition, decoding, introspection."""

from __future__ import annotations

import pytest

from allframe_lab import Aggregate, Command, Event, GenericEvent, Model, applies, handles
from allframe_lab.errors import (
    ModelDefinitionError,
    RedefinitionWarning,
    UnknownEventTypeError,
    UnknownNameError,
)


def test_event_gets_stable_name_and_version() -> None:
    m = Model("m")
    for v in (1, 2):  # the chain v1 -> v3 is checked when the event is declared
        m.upcaster("FundsDeposited", from_version=v)(dict)

    @m.event("FundsDeposited", version=3)
    class Whatever(Event):
        amount: int

    assert Whatever.__message_type__ == "FundsDeposited" and Whatever.__schema_version__ == 3
    assert m.event_class("FundsDeposited") is Whatever
    with pytest.raises(Exception, match="frozen"):
        Whatever(amount=1).amount = 2  # type: ignore[misc]


def test_redefinition_replaces_with_a_warning_and_names_win() -> None:
    m = Model("m")

    @m.event("E")
    class E1(Event):
        a: int

    with pytest.warns(RedefinitionWarning, match="'E' redefined"):
        @m.event("E")
        class E2(Event):
            a: int
            b: int = 0

    assert m.event_class("E") is E2
    assert m.decode("E", 1, {"a": 1}) == E2(a=1, b=0)

    @m.aggregate("Agg")
    class Agg(Aggregate):
        total: int = 0

        @applies(E1)  # a stale class object: resolved to its name "E"
        def _e(self, e) -> None:
            self.total += e.a

    agg = Agg()
    agg.apply(E2(a=5))
    assert agg.total == 5


def test_declaration_errors_are_clear() -> None:
    m = Model("m")
    with pytest.raises(ModelDefinitionError, match=r"subclass of allframe_lab\.Event"):
        m.event("X")(type("X", (), {}))
    with pytest.raises(ModelDefinitionError, match="no field 'nope'"):
        @m.command("C", stream="nope")
        class C(Command):
            a: int
    with pytest.raises(ModelDefinitionError, match="must take"):
        @m.aggregate("A")
        class A(Aggregate):
            @applies("E")
            def bad(self) -> None: ...
    with pytest.raises(ModelDefinitionError, match="SELECT"):
        m.sql_projection("p", "DELETE FROM events")
    with pytest.raises(ModelDefinitionError, match="SQL identifier"):
        m.sql_projection("bad name", "SELECT 1")


def test_unknown_names() -> None:
    m = Model("m")
    with pytest.raises(UnknownEventTypeError, match="fallback_event"):
        m.decode("Nope", 1, {})
    assert isinstance(Model("g", fallback_event=GenericEvent).decode("Nope", 1, {"x": 1}),
                      GenericEvent)
    with pytest.raises(UnknownNameError, match="unknown aggregate 'A'"):
        m.aggregate_class("A")


def test_upcaster_chain_and_missing_step() -> None:
    m = Model("m")

    @m.upcaster("UserCreated", from_version=1)
    def v1(d):
        return {"name": d["name"]}

    @m.upcaster("UserCreated", from_version=2)
    def v2(d):
        return {"full_name": d.pop("name")}

    @m.event("UserCreated", version=3)
    class UserCreated(Event):
        full_name: str
        email: str = ""

    assert m.decode("UserCreated", 1, {"name": "ann"}) == UserCreated(full_name="ann")
    m2 = Model("m2")
    with pytest.raises(ModelDefinitionError, match="from_version=1"):
        m2.event("UserCreated", version=3)(type("U", (Event,), {"__annotations__": {"a": int}}))


def test_info_is_frozen_data() -> None:
    from tests.bank import make_bank

    info = make_bank().info()
    assert [e.name for e in info.events] == ["AccountOpened", "FundsDeposited", "FundsWithdrawn"]
    cmd = {c.name: c for c in info.commands}
    assert cmd["Deposit"].handled_by == "Account" and cmd["OpenAccount"].creates
    assert {p.name: p.kind for p in info.projections} == {"balances": "python", "totals": "sql"}
    assert info.aggregates[0].handles == ("OpenAccount", "Deposit", "Withdraw")
    with pytest.raises(AttributeError):
        info.name = "x"  # type: ignore[misc]


def test_handles_marks() -> None:
    m = Model("m")

    @m.command("Go", stream="stream_id")
    class Go(Command):
        stream_id: str

    @m.aggregate("A")
    class A(Aggregate):
        @handles(Go)
        def go(self, c) -> None:
            return None

    assert m.route(Go(stream_id="s")).method == "go"
