"""Assignments in apply handlers during a replay (the fold class) behave as outside one.

A replay gives the aggregate a subclass with Python's default ``__setattr__`` (see
``allframe_lab.model.aggregate.fold_class``); these tests pin down every case where that
default differs from ``Aggregate.__setattr__`` and check that the replay still does what
a per-event ``apply`` does.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, ClassVar

import pytest
from pydantic import ConfigDict, Field, PrivateAttr

from allframe_lab import Aggregate, Event, Model, applies
from allframe_lab.model.aggregate import fold_class, folding
from allframe_lab.runtime.repository import Repository
from allframe_lab.store import InMemoryEventStore, NewEvent

m = Model("fold-assign")


@m.event("Added")
class Added(Event):
    n: int


def _replay(cls: type[Aggregate], n: int = 3, *, types: str = "Added") -> Aggregate:
    """Declare ``cls`` on a fresh model and load a stream of ``n`` events through a
    repository (the fold path)."""
    model = Model("fold-assign-" + cls.__name__)
    model.event("Added")(Added)
    model.aggregate(cls.__name__)(cls)
    store = InMemoryEventStore()
    store.append("s-1", [NewEvent(types, {"n": i}) for i in range(1, n + 1)])
    return Repository(model, store).load(cls.__name__, "s-1")


def _applied(cls: type[Aggregate], n: int = 3) -> Aggregate:
    """The same events applied one by one (no fold class)."""
    agg = cls()
    for i in range(1, n + 1):
        agg.apply(Added(n=i))
    return agg


class Plain(Aggregate):
    total: int = 0
    _seen: list[int] = PrivateAttr(default_factory=list)

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.total += e.n
        self._seen.append(e.n)
        self._last = e.n  # a private attribute assigned (declared below)

    _last: int = PrivateAttr(default=0)


def test_replay_gives_the_same_state_and_restores_the_class() -> None:
    agg = _replay(Plain)
    assert type(agg) is Plain
    assert (agg.total, agg.version, agg.stream_id) == (6, 3, "s-1")
    # private attributes stay where pydantic keeps them, not in the field dict
    assert agg._seen == [1, 2, 3] and agg._last == 3
    assert "_last" not in agg.__dict__ and agg.__pydantic_private__["_last"] == 3
    assert agg.state() == _applied(Plain).state() == {"total": 6}
    assert fold_class(Plain) is not None


def test_the_handler_sees_a_subclass_with_the_same_name() -> None:
    seen: list[Any] = []

    class Probe(Aggregate):
        total: int = 0

        @applies("Added")
        def _added(self, e: Added) -> None:
            seen.append((type(self).__name__, isinstance(self, Probe)))
            self.total += e.n

    assert _replay(Probe).total == 6
    assert seen == [("Probe", True)] * 3


class Typo(Aggregate):
    total: int = 0

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.totl = e.n  # not a field


def test_a_typo_in_a_handler_still_raises_pydantics_error() -> None:
    with pytest.raises(ValueError, match='object has no field "totl"') as info:
        _replay(Typo)
    assert any("while replaying stream 's-1'" in note for note in info.value.__notes__)
    with pytest.raises(ValueError, match='object has no field "totl"'):
        _applied(Typo)


class SetsClassVar(Aggregate):
    limit: ClassVar[int] = 10
    total: int = 0

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.limit = e.n


def test_assigning_a_classvar_still_raises() -> None:
    with pytest.raises(AttributeError, match="ClassVar"):
        _replay(SetsClassVar)
    assert SetsClassVar.limit == 10


class WithProperty(Aggregate):
    total: int = 0

    @property
    def doubled(self) -> int:
        return self.total * 2

    @doubled.setter
    def doubled(self, value: int) -> None:
        self.total = value // 2

    @cached_property
    def cached(self) -> int:
        return -1

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.doubled = (self.total + e.n) * 2  # through the property's setter
        self.cached = e.n  # a cached_property's value: allowed, as pydantic allows it


def test_property_setters_and_cached_properties_work() -> None:
    agg = _replay(WithProperty)
    assert agg.total == 6 and agg.cached == 3
    assert agg.state() == _applied(WithProperty).state()


class Validated(Aggregate):
    model_config = ConfigDict(validate_assignment=True)
    total: int = 0

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.total = str(self.total + e.n)  # type: ignore[assignment]  # coerced to int


class Frozen(Aggregate):
    model_config = ConfigDict(frozen=True)
    total: int = 0

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.total += e.n


def test_validate_assignment_is_honoured_in_folds_and_outside() -> None:
    assert fold_class(Validated) is None
    agg = _replay(Validated)
    assert agg.total == 6 and type(agg.total) is int
    with pytest.raises(ValueError, match="valid integer"):
        agg.total = "many"  # type: ignore[assignment]


def test_frozen_aggregates_refuse_assignments() -> None:
    assert fold_class(Frozen) is None
    with pytest.raises(ValueError, match="frozen"):
        _replay(Frozen)
    with pytest.raises(ValueError, match="frozen"):
        Frozen().total = 1


class OwnSetattr(Aggregate):
    total: int = 0
    log: list[str] = Field(default_factory=list)

    def __setattr__(self, name: str, value: Any) -> None:
        self.__dict__["log"] = [*self.__dict__["log"], name]
        super().__setattr__(name, value)

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.total += e.n


def test_a_user_setattr_is_called_for_every_assignment() -> None:
    assert fold_class(OwnSetattr) is None
    agg = _replay(OwnSetattr)
    assert agg.total == 6 and agg.log[:3] == ["total"] * 3  # (then the repository's own)


class Extra(Aggregate):
    model_config = ConfigDict(extra="allow")
    total: int = 0

    @applies("Added")
    def _added(self, e: Added) -> None:
        self.total += e.n
        self.note = f"n={e.n}"  # an extra field


def test_extra_allow_keeps_extra_fields_in_pydantics_place() -> None:
    assert fold_class(Extra) is None
    agg = _replay(Extra)
    assert agg.model_extra == {"note": "n=3"} and agg.state() == {"total": 6, "note": "n=3"}


class Fails(Aggregate):
    total: int = 0

    @applies("Added")
    def _added(self, e: Added) -> None:
        if e.n == 2:
            raise RuntimeError("boom")
        self.total += e.n


def test_a_failing_handler_leaves_the_class_restored() -> None:
    agg = Fails()
    with pytest.raises(RuntimeError, match="boom"), folding(agg):
        for i in (1, 2):
            Fails._added(agg, Added(n=i))
    assert type(agg) is Fails and agg.total == 1
    agg.total = 5  # Aggregate.__setattr__ again
    with pytest.raises(ValueError, match="no field"):
        agg.nope = 1


def test_outside_folds_typos_raise_at_once() -> None:
    agg = Plain()
    with pytest.raises(ValueError, match='no field "totl"'):
        agg.totl = 1  # type: ignore[attr-defined]
