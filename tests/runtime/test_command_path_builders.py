"""The second round of command-path shortcuts gives the same objects as the long way round.

Record builders (``make_new_event``/``make_recorded_event``, which fill a same-layout class and
assign ``__class__``), the empty fields set that blank aggregates share (copy on write), the
pooled id strings and the partial that is ``SystemClock.now``. Each test compares a shortcut
with what it replaces, including the cases that must not leak between objects.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ConfigDict

from allframe_lab import Aggregate, App, Command, Event, Model, SystemClock, applies, handles
from allframe_lab.model.aggregate import _SHARED_FIELDS_SET, blank
from allframe_lab.runtime.ids import _random_uuid_strs, _random_uuids
from allframe_lab.store import InMemoryEventStore, NewEvent, RecordedEvent
from allframe_lab.store._staging import number
from allframe_lab.store.records import make_new_event, make_recorded_event

T0 = datetime(2024, 1, 1, tzinfo=UTC)


# ----------------------------------------------------------------------------- record builders
@pytest.mark.parametrize(("builder", "cls"), [(make_new_event, NewEvent),
                                              (make_recorded_event, RecordedEvent)])
def test_builders_take_the_records_fields_in_order(builder, cls):
    params = list(inspect.signature(builder.__init__).parameters)[1:]
    assert params == [f.name for f in dataclasses.fields(cls)]
    assert builder.__slots__ == cls.__slots__


def test_built_records_are_the_records_the_constructors_make():
    eid = uuid.uuid4()
    args = (3, "s", 2, eid, "T", 1, {"a": 1}, {"m": "x"}, T0, T0 + timedelta(seconds=1))
    built, made = make_recorded_event(*args), RecordedEvent(*args)
    assert type(built) is RecordedEvent and isinstance(built, RecordedEvent)
    assert built == made and repr(built) == repr(made) and dataclasses.astuple(built) == args
    assert pickle.loads(pickle.dumps(built)) == made
    assert copy.copy(built) == made and copy.deepcopy(built) == made
    assert dataclasses.replace(built, version=7).version == 7
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.version = 9  # type: ignore[misc]
    for rec in (built, made):  # an unknown name fails alike (how depends on the dataclass)
        with pytest.raises((AttributeError, TypeError)):
            rec.extra = 1  # type: ignore[attr-defined]

    new = make_new_event("T", {"a": 1}, 2, {"m": "x"}, T0, eid)
    assert type(new) is NewEvent and new == NewEvent("T", {"a": 1}, 2, {"m": "x"}, T0, eid)
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.type = "U"  # type: ignore[misc]


def test_number_records_like_the_constructor_and_stamps_times_in_utc():
    now = datetime.now(UTC)
    naive = datetime(2024, 5, 1, 12, 0)
    eid = uuid.uuid4()
    evs = [NewEvent("A", {"n": 1}), NewEvent("B", {}, occurred_at=naive, event_id=eid)]
    first, second = number("s", evs, 4, 10, now)
    assert (first.position, first.version, first.occurred_at, first.recorded_at) == (11, 5, now,
                                                                                     now)
    assert isinstance(first.event_id, uuid.UUID)
    assert second == RecordedEvent(12, "s", 6, eid, "B", 1, {}, {},
                                   naive.replace(tzinfo=UTC), now)


# ----------------------------------------------------------------------------- the shared set
class Tally(Aggregate):
    n: int = 0
    label: str = ""


class Loose(Aggregate):
    model_config = ConfigDict(extra="allow")
    n: int = 0


def test_blank_aggregates_share_the_empty_fields_set_and_dump_like_new_ones():
    a, b = blank(Tally, "t-1"), blank(Tally, "t-2")
    assert a.__pydantic_fields_set__ is _SHARED_FIELDS_SET is b.__pydantic_fields_set__
    a.n = 3  # the fast path writes the state only, as before
    assert a.model_dump(exclude_unset=True) == Tally().model_dump(exclude_unset=True) == {}
    assert a.model_dump() == {"n": 3, "label": ""} and b.model_dump() == {"n": 0, "label": ""}


def test_changing_one_aggregates_fields_set_never_reaches_the_others():
    a, b = blank(Tally, "t-1"), blank(Tally, "t-2")
    a.model_fields_set.add("n")  # the property hands out the aggregate's own set
    assert a.model_fields_set == {"n"} and a.model_dump(exclude_unset=True) == {"n": 0}
    assert b.model_fields_set == set() and not _SHARED_FIELDS_SET
    copied = b.model_copy(update={"label": "x"})  # pydantic updates the copy's set
    assert copied.model_fields_set == {"label"} and copied.label == "x"
    assert b.model_fields_set == set() and not _SHARED_FIELDS_SET
    assert pickle.loads(pickle.dumps(b)) == b and copy.deepcopy(a) == a


def test_pydantics_own_setattr_paths_get_their_own_set():
    x, y = blank(Loose, "l-1"), blank(Loose, "l-2")
    x.note = "hi"  # extra="allow": pydantic adds the name to the fields set and extras
    assert x.model_fields_set == {"note"} and x.note == "hi"
    assert y.model_fields_set == set() and y.model_extra == {} and not _SHARED_FIELDS_SET
    with pytest.raises(ValueError, match="no field"):
        blank(Tally).nme = 1  # a typo still raises, as with pydantic's own __setattr__
    z = blank(Tally)
    del z.label
    assert not _SHARED_FIELDS_SET


# ----------------------------------------------------------------------------- ids and clock
def test_pooled_id_strings_are_canonical_uuid4s_of_independent_bits():
    strs = _random_uuid_strs()
    assert len(strs) == len(set(strs)) == 256
    for s in strs:
        u = uuid.UUID(s)
        assert str(u) == s and u.version == 4 and u.variant == uuid.RFC_4122
    us = _random_uuids()
    assert all(type(u) is uuid.UUID and u.is_safe is uuid.SafeUUID.unknown for u in us)
    assert all(uuid.UUID(bytes=u.bytes) == u and u.version == 4 for u in us)


def test_system_clock_reads_aware_utc_time_and_can_be_subclassed():
    before = datetime.now(UTC)
    t = SystemClock().now()
    assert t.tzinfo is UTC and before <= t <= datetime.now(UTC)

    class Fixed(SystemClock):
        def now(self) -> datetime:
            return T0

    assert Fixed().now() == T0 and Fixed().peek() == T0


# ----------------------------------------------------------------------------- end to end
def test_commands_on_new_and_existing_streams_record_the_same_as_before():
    m = Model("tally")

    @m.event("Counted")
    class Counted(Event):
        by: int

    @m.command("Count", stream="tally_id")
    class Count(Command):
        tally_id: str
        by: int

    @m.command("Start", stream="tally_id", creates=True)
    class Start(Command):
        tally_id: str

    @m.aggregate("Tally", snapshot_every=2)
    class T(Aggregate):
        n: int = 0

        @applies("Counted")
        def _counted(self, e):
            self.n += e.by

        @handles("Start")
        def start(self, c):
            return Counted(by=0)

        @handles("Count")
        def count(self, c):
            return Counted(by=c.by)

    store = InMemoryEventStore()
    app = App(m, store)
    app.handle(Start(tally_id="t"))
    recs = app.handle(Count(tally_id="t", by=2)) + app.handle(Count(tally_id="t", by=3))
    assert [(r.version, r.position, r.data) for r in recs] == [(2, 2, {"by": 2}),
                                                               (3, 3, {"by": 3})]
    meta = recs[0].metadata
    assert meta["command"] == "Count" and meta["correlation_id"] == meta["command_id"]
    assert str(uuid.UUID(meta["command_id"])) == meta["command_id"]
    assert recs[0].occurred_at.tzinfo is UTC and recs[0].event_id != recs[1].event_id
    assert store.read_stream("t") == [store.read_stream("t")[0], *recs]
    assert store.load_snapshot("t").version == 2  # snapshot_every=2 crossed at version 2
    assert app.load("Tally", "t").n == 5 and app.repository.current("Tally", "t").version == 3
