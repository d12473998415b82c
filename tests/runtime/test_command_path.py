"""The shortcuts of the command path give the same results as the long way round.

App.handle skips work with hand-written equivalents (pooled ids, copied blank aggregates,
slot-writing record constructors, a one-stream append); each test here compares one of them
with what it replaces, including the cases where the shortcut must NOT be taken.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import Field, PrivateAttr, field_validator, model_validator

from allframe_lab import (
    Aggregate,
    App,
    Command,
    ConcurrencyError,
    Event,
    Model,
    SequentialIds,
    applies,
    handles,
)
from allframe_lab.model.aggregate import blank
from allframe_lab.model.validation import ValidationError
from allframe_lab.runtime import RandomIds
from allframe_lab.store import NO_STREAM, InMemoryEventStore, NewEvent, RecordedEvent

T0 = datetime(2024, 1, 1, tzinfo=UTC)


# ----------------------------------------------------------------------------- ids
def test_random_ids_are_uuid4_unique_and_canonical_strings():
    ids = RandomIds()
    us = [ids.new_id() for _ in range(3_000)]  # several pool refills
    strs = [ids.new_id_str() for _ in range(3_000)]
    assert len(set(us)) == len(us) and len(set(strs)) == len(strs)
    assert all(u.version == 4 and u.variant == uuid.RFC_4122 for u in us)
    assert all(uuid.UUID(str(u)) == u and uuid.UUID(bytes=u.bytes) == u for u in us)
    parsed = [uuid.UUID(s) for s in strs]
    assert all(str(p) == s and p.version == 4 and p.variant == uuid.RFC_4122
               for p, s in zip(parsed, strs, strict=True))
    # every bit other than the 6 version/variant bits varies
    varying = 0
    for u in us:
        varying |= u.int ^ us[0].int
    assert bin(varying).count("1") == 122


def test_default_new_id_str_is_str_of_new_id():
    assert SequentialIds(seed=3).new_id_str() == str(SequentialIds(seed=3).new_id())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_forked_child_does_not_repeat_the_parents_pooled_ids():
    ids = RandomIds()
    ids.new_id(), ids.new_id_str()  # fill both pools
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: send its next ids, exit at once
        os.write(write, ids.new_id().bytes + ids.new_id_str().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    data = os.read(read, 16 + 36)
    assert data[:16] != ids.new_id().bytes
    assert data[16:].decode() != ids.new_id_str()


# ----------------------------------------------------------------------------- records
def test_records_hand_written_init_matches_the_dataclass_fields():
    eid = uuid.uuid4()
    rec = RecordedEvent(position=3, stream_id="s", version=2, event_id=eid, type="T",
                        schema_version=1, data={"a": 1}, metadata={}, occurred_at=T0,
                        recorded_at=T0)
    assert rec == RecordedEvent(3, "s", 2, eid, "T", 1, {"a": 1}, {}, T0, T0)
    assert dataclasses.astuple(rec)[:3] == (3, "s", 2)
    assert dataclasses.replace(rec, version=5).version == 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.version = 9  # type: ignore[misc]
    new = NewEvent("T", {"a": 1})
    assert (new.schema_version, new.metadata, new.occurred_at, new.event_id) == (1, {}, None, None)
    assert NewEvent("T", {}).metadata is not NewEvent("T", {}).metadata
    with pytest.raises(TypeError):
        RecordedEvent(1, "s", 1)  # type: ignore[call-arg]


# ----------------------------------------------------------------------------- blank aggregates
class Plain(Aggregate):
    name: str = "x"
    n: int = 0
    tags: tuple[str, ...] = ("a",)


def test_blank_equals_a_new_instance_and_shares_nothing():
    a, b = blank(Plain, "s-1"), blank(Plain)
    assert a.model_dump() == Plain().model_dump() and a.model_fields_set == set()
    assert (a.stream_id, a.version, b.stream_id) == ("s-1", 0, "")
    a.n = 5
    a.model_fields_set.add("n")
    assert b.n == 0 and b.model_fields_set == set() and blank(Plain).n == 0
    assert a.model_copy(update={"n": 7}).n == 7


class WithList(Aggregate):
    items: list[int] = []  # noqa: RUF012 - the case under test: a mutable default


class WithFactory(Aggregate):
    made: list[int] = Field(default_factory=lambda: [len(WithFactory.__name__)])


class WithValidator(Aggregate):
    n: int = 0

    @model_validator(mode="after")
    def _count(self):
        CALLS.append(1)
        return self


class WithPostInit(Aggregate):
    n: int = 0

    def model_post_init(self, context, /):
        CALLS.append(2)


class WithPrivateList(Aggregate):
    _seen: list[int] = PrivateAttr(default_factory=list)


class WithFieldValidator(Aggregate):
    n: int = Field(default=1, validate_default=True)

    @field_validator("n")
    @classmethod
    def _double(cls, v):
        CALLS.append(3)
        return v * 2


CALLS: list[int] = []


@pytest.mark.parametrize("cls", [WithList, WithFactory, WithValidator, WithPostInit,
                                 WithPrivateList, WithFieldValidator])
def test_blank_calls_the_class_when_a_copy_would_differ(cls):
    CALLS.clear()
    a, b = blank(cls, "s"), blank(cls, "s")
    assert a.model_dump() == cls().model_dump() and a.stream_id == "s"
    assert len(CALLS) in (0, 3)  # the hooks ran once per instance (3 = a, b, cls())
    if cls in (WithValidator, WithPostInit, WithFieldValidator):
        assert len(CALLS) == 3
    for name, value in a.__dict__.items():  # nothing mutable is shared
        if isinstance(value, list):
            assert value is not b.__dict__[name]
    if cls is WithPrivateList:
        assert a._seen is not b._seen


def test_blank_of_a_subclass_uses_its_own_defaults():
    class Sub(Plain):
        extra: int = 3

    assert blank(Plain).model_dump() == Plain().model_dump()
    assert blank(Sub).model_dump() == Sub().model_dump()
    assert blank(Plain).model_dump() == Plain().model_dump()


# ----------------------------------------------------------------------------- the store
def test_memory_append_checks_expected_versions_like_append_many():
    store = InMemoryEventStore()
    store.append("s", [NewEvent("A", {})], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError):
        store.append("s", [NewEvent("A", {})], expected_version=NO_STREAM)
    with pytest.raises(ConcurrencyError):
        store.append("s", [NewEvent("A", {})], expected_version=2)
    with pytest.raises(TypeError):
        store.append("s", [NewEvent("A", {})], expected_version=True)  # a bool is not a version
    with pytest.raises(ValueError):
        store.append("s", [NewEvent("A", {})], expected_version=-1)
    assert store.append("s", [], expected_version=1) == []
    recs = store.append("s", [NewEvent("A", {}), NewEvent("B", {}, occurred_at=T0.replace(
        tzinfo=None))], expected_version=1)
    assert [(r.position, r.version) for r in recs] == [(2, 2), (3, 3)]
    assert recs[1].occurred_at == T0 and recs[0].occurred_at == recs[0].recorded_at
    assert store.read_stream("s") == store.read_stream("s", 1, 3) and store.head_position == 3
    assert [r.position for r in store.append_many([("t", [NewEvent("A", {})], 0),
                                                   ("s", [NewEvent("A", {})], 3)])[1]] == [5]


def test_memory_stream_index_survives_interleaving():
    store = InMemoryEventStore()  # streams held as ranges until another stream cuts in
    store.append("s", [NewEvent("A", {"i": 1}), NewEvent("A", {"i": 2})])
    store.append("s", [NewEvent("A", {"i": 3})])
    store.append("t", [NewEvent("B", {"i": 4})])
    store.append("s", [NewEvent("A", {"i": 5})])
    store.append_many([("t", [NewEvent("B", {"i": 6})], 1), ("s", [NewEvent("A", {"i": 7})], 4),
                       ("t", [NewEvent("B", {"i": 8})], 2)])
    assert [r.data["i"] for r in store.read_stream("s")] == [1, 2, 3, 5, 7]
    assert [r.data["i"] for r in store.read_stream("t")] == [4, 6, 8]
    assert [r.version for r in store.read_stream("s", 2, 4)] == [2, 3, 4]
    assert (store.stream_version("s"), store.stream_version("t")) == (5, 3)
    assert [(i.stream_id, i.version, i.first_position, i.last_position)
            for i in store.streams()] == [("s", 5, 1, 7), ("t", 3, 4, 8)]


# ----------------------------------------------------------------------------- App.handle
def _model() -> Model:
    m = Model("shop")

    @m.event("Opened")
    class Opened(Event):
        owner: str

    @m.event("Noted")
    class Noted(Event):
        text: str
        at: datetime

    @m.command("Open", stream="cart", creates=True)
    class Open(Command):
        cart: str
        owner: str

    @m.command("Note", stream="cart")
    class Note(Command):
        cart: str
        texts: list[str]

    @m.aggregate("Cart")
    class Cart(Aggregate):
        owner: str = ""
        notes: int = 0

        @applies("Opened")
        def _opened(self, e):
            self.owner = e.owner

        @applies("Noted")
        def _noted(self, e):
            self.notes += 1

        @handles("Open")
        def open(self, c):
            return Opened(owner=c.owner)

        @handles("Note")
        def note(self, c):
            return [Noted(text=t, at=T0) for t in c.texts] or None

    return m


def test_handle_records_json_payloads_metadata_and_fresh_ids():
    m = _model()
    app = App(m, InMemoryEventStore())
    Open, Note = m.commands["Open"], m.commands["Note"]
    (opened,) = app.handle(Open(cart="c1", owner="ann"))
    meta = opened.metadata
    assert meta["command"] == "Open"
    assert meta["command_id"] == meta["correlation_id"] == meta["causation_id"]
    assert str(uuid.UUID(meta["command_id"])) == meta["command_id"]
    assert isinstance(opened.event_id, uuid.UUID) and opened.data == {"owner": "ann"}
    two = app.handle(Note(cart="c1", texts=["a", "b"]))
    assert [r.version for r in two] == [2, 3]
    assert two[0].data == {"text": "a", "at": "2024-01-01T00:00:00Z"}  # mode="json"
    assert two[0].event_id != two[1].event_id
    assert two[0].metadata["command_id"] not in (meta["command_id"],)
    assert app.handle(Note(cart="c1", texts=[])) == []
    assert app.load("Cart", "c1").notes == 2 and app.repository.current("Cart", "c1").notes == 2
    with pytest.raises(ValidationError):
        Open(cart="c2")
    with pytest.raises(ConcurrencyError):
        app.handle(Open(cart="c1", owner="bob"))
    # another writer moved the stream: the cached aggregate catches up before deciding
    app.store.append("c1", [NewEvent("Noted", {"text": "x", "at": "2024-01-01T00:00:00Z"})])
    assert app.handle(Note(cart="c1", texts=["c"]))[0].version == 5
    assert app.repository.current("Cart", "c1").notes == 4
