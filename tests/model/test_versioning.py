"""Event versioning: generated and explicit upcasters, the chain checked at definition time,
upcasting on read (single and batch decode paths)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allframe_lab import App, Event, Model, added_in, renamed_from, upcasts
from allframe_lab.errors import EventDecodeError, ModelDefinitionError, RedefinitionWarning
from allframe_lab.runtime._decode import EventDecoder, iter_decoded
from allframe_lab.store import InMemoryEventStore, NewEvent


def user_model() -> Model:
    """UserRegistered v1 {name} -> v2 {first, last} (split, inline) -> v3 (+email, +tags)
    -> v4 (first renamed to given_name)."""
    m = Model("users")

    @m.event("UserRegistered", version=4)
    class UserRegistered(Event):
        given_name: str = renamed_from("first", in_version=4)
        last: str
        email: str = added_in(3, default="")
        tags: list[str] = added_in(3, default_factory=list)

        @upcasts(from_version=1)
        def split_name(data: dict[str, Any]) -> dict[str, Any]:
            first, _, last = data.pop("name").partition(" ")
            return {**data, "first": first, "last": last}

    return m


def test_generated_and_explicit_steps_compose() -> None:
    m = user_model()
    cls = m.event_class("UserRegistered")
    assert m.decode("UserRegistered", 1, {"name": "Ann Lee"}) == cls(
        given_name="Ann", last="Lee", email="", tags=[])
    assert m.decode("UserRegistered", 3, {"first": "Bo", "last": "K", "email": "b@x",
                                          "tags": ["a"]}).given_name == "Bo"
    assert m.upcast("UserRegistered", 1, 2, {"name": "Ann Lee"}) == {"first": "Ann",
                                                                     "last": "Lee"}
    assert m.upcast("UserRegistered", 2, 3, {"first": "A", "last": "L"}) == {
        "first": "A", "last": "L", "email": "", "tags": []}
    chain = m.upcaster_chain("UserRegistered")
    assert [s.from_version for s in chain.steps] == [1, 2, 3]
    assert "split_name() (inline)" in repr(chain) and "rename first -> given_name" in repr(chain)
    # a mutable default is fresh for every payload
    a = m.upcast("UserRegistered", 2, 3, {"first": "A", "last": "L"})
    a["tags"].append("x")
    assert m.upcast("UserRegistered", 2, 3, {"first": "A", "last": "L"})["tags"] == []


def test_stored_payload_is_not_mutated() -> None:
    m = user_model()
    stored = {"name": "Ann Lee"}
    m.decode("UserRegistered", 1, stored)
    assert stored == {"name": "Ann Lee"}


def test_gap_in_the_chain_names_every_missing_step_and_the_fix() -> None:
    m = Model("m")
    with pytest.raises(ModelDefinitionError) as err:
        @m.event("OrderPlaced", version=4)
        class OrderPlaced(Event):
            total: int
            note: str = added_in(3, default="")

    text = str(err.value)
    assert "v1 to v2" in text and "v3 to v4" in text and "v2 to v3" not in text
    assert "@upcasts(from_version=1)" in text and "from_version=3" in text
    assert "2 problems" in text
    assert "OrderPlaced" not in m.events  # nothing registered


def test_duplicate_backwards_skipping_and_beyond_steps_are_errors() -> None:
    m = Model("m")
    with pytest.raises(ModelDefinitionError, match="both upcast v1 -> v2"):
        @m.event("E", version=2)
        class E(Event):
            a: int

            @upcasts(from_version=1)
            def one(d):
                return d

            @upcasts(from_version=1)
            def two(d):
                return d

    with pytest.raises(ModelDefinitionError, match="goes backwards and would make a cycle"):
        upcasts(from_version=3, to_version=2)
    with pytest.raises(ModelDefinitionError, match="goes backwards"):
        m.upcaster("E", from_version=2, to_version=1)
    with pytest.raises(ModelDefinitionError, match="skips versions"):
        upcasts(from_version=1, to_version=3)
    with pytest.raises(ModelDefinitionError, match="past the declared version 2"):
        @m.event("F", version=2)
        class F(Event):
            a: int = added_in(2, default=0)

            @upcasts(from_version=2)
            def too_far(d):
                return d

    m.upcaster("G", from_version=1)(dict)
    with pytest.raises(ModelDefinitionError, match="declared twice"):
        @m.event("G", version=2)
        class G(Event):
            a: int

            @upcasts(from_version=1)
            def inline(d):
                return d

    with pytest.raises(ModelDefinitionError, match="without a default"):
        @m.event("H", version=2)
        class H(Event):
            a: int = added_in(2)

    with pytest.raises(ModelDefinitionError, match=r"versions 2\.\.2"):
        @m.event("I", version=2)
        class I(Event):  # noqa: E742
            a: int = added_in(5, default=0)


def test_model_level_upcaster_before_the_event_and_redefinition() -> None:
    m = Model("m")

    @m.upcaster("Renamed", from_version=1)
    def rename(d):
        return {"new": d["old"]}

    @m.event("Renamed", version=2)
    class Renamed(Event):
        new: int

    assert m.decode("Renamed", 1, {"old": 3}) == Renamed(new=3)
    with pytest.warns(RedefinitionWarning, match="Renamed v1 -> v2 redefined"):
        @m.upcaster("Renamed", from_version=1)
        def rename2(d):
            return {"new": d["old"] * 10}

    assert m.decode("Renamed", 1, {"old": 3}) == Renamed(new=30)
    # a step declared ahead of a version bump is accepted, and used once the event reaches it
    m.upcaster("Renamed", from_version=2)(lambda d: {"new": d["new"] + 1})
    assert m.decode("Renamed", 1, {"old": 3}) == Renamed(new=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RedefinitionWarning)

        @m.event("Renamed", version=3)
        class Renamed3(Event):
            new: int

    assert m.decode("Renamed", 1, {"old": 3}) == Renamed3(new=31)
    # a required field added with an explicit upcaster computing it is fine
    m.upcaster("Computed", from_version=1)(lambda d: {**d, "b": d["a"] * 2})

    @m.event("Computed", version=2)
    class Computed(Event):
        a: int
        b: int = added_in(2)

    assert m.decode("Computed", 1, {"a": 2}) == Computed(a=2, b=4)


def test_re_running_an_event_cell_keeps_its_model_level_upcasters() -> None:
    m = Model("m")
    m.upcaster("E", from_version=1)(lambda d: {"b": d["a"]})
    for _ in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RedefinitionWarning)

            @m.event("E", version=2)
            class E(Event):
                b: int

    assert m.decode("E", 1, {"a": 1}) == E(b=1)


def test_upcaster_errors_name_the_event_and_position() -> None:
    m = Model("m")

    @m.event("E", version=2)
    class E(Event):
        b: int

        @upcasts(from_version=1)
        def to_b(d):
            return {"b": d["a"]}

    store = InMemoryEventStore()
    store.append("s", [NewEvent("E", {"a": 1}), NewEvent("E", {"zzz": 1}),
                       NewEvent("E", {"a": 3})])
    dec = EventDecoder(m)
    with pytest.raises(EventDecodeError, match=r"E v1 event at position 2.*KeyError"):
        dec.decode_records(store.read_stream("s"))
    m2 = Model("m2")

    @m2.event("E", version=2)
    class E2(Event):
        b: int

        @upcasts(from_version=1)
        def forgot_return(d):
            d["b"] = d.pop("a")

    with pytest.raises(EventDecodeError, match="returned NoneType"):
        EventDecoder(m2).decode(store.read_stream("s")[0])
    with pytest.raises(ModelDefinitionError, match="newer than the declared"):
        m.decode("E", 3, {"b": 1})


def _log(store: Any) -> None:
    store.append("u1", [NewEvent("UserRegistered", {"name": "Ann Lee"}, schema_version=1)])
    store.append("u2", [NewEvent("UserRegistered", {"first": "Bo", "last": "K"},
                                 schema_version=2)])
    store.append("u3", [NewEvent("UserRegistered", {"first": "Cy", "last": "D", "email": "c@x",
                                                    "tags": []}, schema_version=3)])
    store.append("u4", [NewEvent("UserRegistered", {"given_name": "Di", "last": "E",
                                                    "email": "", "tags": ["t"]},
                                 schema_version=4)])
    store.append("u5", [NewEvent("UserRegistered", {"name": "Ed Fo"}, schema_version=1)])


@pytest.mark.parametrize("kind", ["memory", "duckdb"])
def test_batch_decode_paths_upcast_on_read(kind: str, tmp_path: Any) -> None:
    m = user_model()
    if kind == "memory":
        store: Any = InMemoryEventStore()
    else:
        from allframe_lab.store.duckdb import DuckDBEventStore

        store = DuckDBEventStore(tmp_path / "e.duckdb")
    _log(store)
    dec = EventDecoder(m)
    events = [e for batch in iter_decoded(store, dec, 1, None, batch_size=3) for e, _ in batch]
    names = [e.given_name for e in events]
    assert names == ["Ann", "Bo", "Cy", "Di", "Ed"]
    single = [m.decode(r.type, r.schema_version, r.data) for r in store.read_all()]
    assert events == single
    # stored rows are untouched
    assert [r.schema_version for r in store.read_all()] == [1, 2, 3, 4, 1]
    assert store.read_stream("u1")[0].data == {"name": "Ann Lee"}
    store.close()


# --------------------------------------------------------------------------- properties
@settings(max_examples=300, deadline=None)
@given(payload=st.fixed_dictionaries({"name": st.text(max_size=12)}),
       start=st.integers(min_value=1, max_value=3))
def test_chain_equals_steps_applied_one_by_one(payload: dict[str, Any], start: int) -> None:
    m = user_model()
    data = m.upcast("UserRegistered", 1, start, payload)
    stepwise = dict(data)
    for v in range(start, 4):
        stepwise = m.upcast("UserRegistered", v, v + 1, stepwise)
    assert m.upcast("UserRegistered", start, 4, data) == stepwise
    assert m.decode("UserRegistered", start, data) == m.event_class("UserRegistered")(
        **stepwise)


def test_app_reads_old_versions_and_writes_the_new_one() -> None:
    from allframe_lab import Aggregate, Command, applies, handles

    m = user_model()

    @m.command("Register", stream="user_id", creates=True)
    class Register(Command):
        user_id: str
        given_name: str
        last: str

    @m.aggregate("User")
    class User(Aggregate):
        name: str = ""

        @applies("UserRegistered")
        def _reg(self, e) -> None:
            self.name = f"{e.given_name} {e.last}"

        @handles("Register")
        def register(self, c):
            return m.event_class("UserRegistered")(given_name=c.given_name, last=c.last)

    store = InMemoryEventStore()
    _log(store)
    app = App(m, store)
    assert app.load("User", "u1").name == "Ann Lee"
    rec = app.handle(Register(user_id="u9", given_name="Zo", last="Q"))[0]
    assert rec.schema_version == 4 and rec.data["given_name"] == "Zo"
