"""Aggregates: consistency boundaries whose state is a fold of their stream.

An aggregate class is a mutable pydantic model whose fields are its state. Methods marked
``@applies(...)`` fold events into the state; methods marked ``@handles(...)`` decide which
new events a command produces (they must not change the state themselves).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from allframe_lab.errors import ModelDefinitionError
from allframe_lab.model._handlers import WILDCARD, F, HandlerRef, mark
from allframe_lab.model.messages import Event

__all__ = ["Aggregate", "applier", "applies", "blank", "folding", "handles"]

A = TypeVar("A", bound="Aggregate")


def applies(*event_types: object) -> Callable[[F], F]:
    """Mark an aggregate or projection method as the handler of one or more event types.

    Parameters
    ----------
    *event_types : str or Event subclass
        Type names or declared event classes. ``"*"`` receives every event without a
        more specific handler.

    Notes
    -----
    Handlers are keyed by type name, so a re-run cell that redefines the event class keeps
    working. The method takes ``(self, event)`` or ``(self, event, record)``, where ``record``
    is the :class:`~allframe_lab.store.RecordedEvent` (stream, version, position, timestamps).
    """
    return mark("applies", event_types)


def handles(*command_types: object) -> Callable[[F], F]:
    """Mark an aggregate method as the handler of one or more command types.

    The method takes ``(self, command)`` and returns the new events: one :class:`Event`,
    a list of them, or ``None``. It must not change the aggregate: the App applies the
    returned events after they are stored. Refuse a command by raising a
    :class:`~allframe_lab.errors.DomainError` subclass.
    """
    return mark("handles", command_types)


class Aggregate(BaseModel):
    """Base class of aggregates: declare state as fields with defaults.

    Attributes
    ----------
    stream_id : str
        The stream the aggregate was loaded from (``""`` before its first event).
    version : int
        The version of the last applied event (0 for a new aggregate).

    Examples
    --------
    >>> from allframe_lab import Model, Event, Command, Aggregate, applies, handles
    >>> m = Model("counter")
    >>> @m.event("Incremented")
    ... class Incremented(Event):
    ...     by: int
    >>> @m.aggregate("Counter")
    ... class Counter(Aggregate):
    ...     total: int = 0
    ...     @applies("Incremented")
    ...     def _inc(self, e):
    ...         self.total += e.by
    >>> c = Counter()
    >>> c.apply(Incremented(by=2)); c.apply(Incremented(by=3))
    >>> (c.total, c.version)
    (5, 2)
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    __aggregate_type__: ClassVar[str] = ""
    __state_version__: ClassVar[int] = 1
    __appliers__: ClassVar[dict[str, HandlerRef]] = {}
    __handlers__: ClassVar[dict[str, HandlerRef]] = {}
    __blank__: ClassVar[tuple[Any, ...] | None] = None  # see blank()
    # (class, apply_fns(class)) for apply(); the class is checked because a subclass sees
    # its base's entry. Model clears it with __apply_fns__ when it (re)declares the class.
    __apply_cache__: ClassVar[tuple[type, dict[str, Any]] | None] = None

    _stream_id: str = PrivateAttr(default="")
    _version: int = PrivateAttr(default=0)

    @property
    def stream_id(self) -> str:
        return self.__pydantic_private__["_stream_id"]  # type: ignore[index]

    @property
    def version(self) -> int:
        return self.__pydantic_private__["_version"]  # type: ignore[index]

    def apply(self, event: Event, record: Any = None) -> None:
        """Fold one event into the state and advance the version by one.

        Raises
        ------
        ModelDefinitionError
            If the aggregate has no handler for the event's type (and no ``"*"`` handler).
        """
        cached = self.__apply_cache__  # applier(), inlined: an instance lookup is the cheapest
        if cached is None or cached[0] is not type(self):
            cached = (type(self), apply_fns(type(self)))
            type.__setattr__(type(self), "__apply_cache__", cached)
        found = cached[1].get(event.__message_type__) or applier(type(self),
                                                                 event.__message_type__)
        fn, wants_record = found
        if wants_record:
            fn(self, event, record)
        else:
            fn(self, event)
        private = self.__pydantic_private__
        if record is not None:
            private["_version"] = record.version  # type: ignore[index]
            private["_stream_id"] = record.stream_id  # type: ignore[index]
        else:
            private["_version"] += 1  # type: ignore[index]

    def __setattr__(self, name: str, value: Any) -> None:
        # Fast path for state fields (apply handlers assign them once per event). Classes
        # whose assignments pydantic must check (validate_assignment, frozen) get
        # _checked_setattr instead: see __pydantic_init_subclass__.
        d = self.__dict__
        if name in d:
            d[name] = value
        else:
            _own_fields_set(self)  # pydantic's slow path may add to it: see _SHARED_FIELDS_SET
            super().__setattr__(name, value)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.__setattr__ is Aggregate.__setattr__ and _checks_assignment(cls):
            type.__setattr__(cls, "__setattr__", _checked_setattr)

    def __delattr__(self, name: str) -> None:
        _own_fields_set(self)
        super().__delattr__(name)

    @property
    def model_fields_set(self) -> set[str]:  # type: ignore[override]
        """The fields set explicitly at construction (pydantic's, this aggregate's own)."""
        return _own_fields_set(self)

    def state(self) -> dict[str, Any]:
        """The state fields as a JSON-compatible dict (what a snapshot stores)."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return (
            f"{type(self).__name__}(stream_id={self._stream_id!r}, "
            f"version={self._version}, {fields})"
        )


def _checks_assignment(cls: type[BaseModel]) -> bool:
    """Whether pydantic must see every assignment (validation, or refusal: frozen)."""
    config = cls.model_config
    return bool(config.get("validate_assignment") or config.get("frozen"))


def _checked_setattr(self: Aggregate, name: str, value: Any) -> None:
    """``__setattr__`` of aggregates whose assignments pydantic validates or refuses."""
    _own_fields_set(self)
    BaseModel.__setattr__(self, name, value)


# ----------------------------------------------------------------------------- folds
def _private_property(name: str) -> property:
    """A private attribute read and written where pydantic keeps it (as its own
    ``__getattr__``/``__setattr__``/``__delattr__`` do)."""
    def get(self: Aggregate) -> Any:
        try:
            return self.__pydantic_private__[name]  # type: ignore[index]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}") from None

    def set_(self: Aggregate, value: Any) -> None:
        self.__pydantic_private__[name] = value  # type: ignore[index]

    def delete(self: Aggregate) -> None:
        try:
            del self.__pydantic_private__[name]  # type: ignore[union-attr]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}") from None

    return property(get, set_, delete)


def fold_class(cls: type[A]) -> type[A] | None:
    """The class an aggregate of ``cls`` takes while its stream is replayed, or ``None``.

    Python runs an assignment to an attribute ~7x faster when the class keeps the default
    ``__setattr__`` (a C slot) than through ``Aggregate.__setattr__`` (a Python function),
    and an apply handler typically assigns a few fields per event: a fifth of a replay. The
    fold class is a subclass of ``cls`` with the default ``__setattr__``/``__delattr__``,
    the same name, and properties for the private attributes (which pydantic keeps apart);
    what Python's default does not check, :func:`folding` checks after the replay.

    ``None`` (replay with ``cls`` itself) when the default would not be equivalent: a class
    with its own ``__setattr__`` or ``__delattr__``, ``validate_assignment``, ``frozen``,
    ``extra="allow"``, or private attributes that are descriptors.
    """
    if cls.__setattr__ is not Aggregate.__setattr__ or \
            cls.__delattr__ is not Aggregate.__delattr__:
        return None  # (checked every time: cheap, and a class may be patched later)
    hit = cls.__dict__.get("__fold_class__")  # per class: a subclass makes its own
    if hit is None:
        hit = _make_fold_class(cls) or False
        type.__setattr__(cls, "__fold_class__", hit)
    return hit or None


def _make_fold_class(cls: type[A]) -> type[A] | None:
    config = cls.model_config
    if _checks_assignment(cls) or config.get("extra") == "allow":
        return None
    private = cls.__private_attributes__
    if any(hasattr(attr, n) for attr in private.values()
           for n in ("__get__", "__set__", "__delete__")):
        return None
    ns = {"__setattr__": object.__setattr__, "__delattr__": object.__delattr__,
          "__module__": cls.__module__, "__qualname__": cls.__qualname__,
          "__doc__": cls.__doc__}
    try:
        sub = type(cls)(cls.__name__, (cls,), ns)
        for name in private:
            type.__setattr__(sub, name, _private_property(name))
        object.__setattr__(_new(cls), "__class__", sub)  # same layout, or TypeError
    except Exception:  # a metaclass or __init_subclass__ that refuses: fold as cls
        return None
    return sub  # type: ignore[return-value]


@contextmanager
def folding(agg: Aggregate) -> Iterator[None]:
    """Give ``agg`` its :func:`fold_class` while the block replays events into it.

    After the block, the class is restored, and a name the handlers set that
    ``Aggregate.__setattr__`` would have refused (not a field: a typo, a ClassVar, a
    method) is set again through it, which raises pydantic's error. Names it accepts as
    Python does (``_``-prefixed undeclared names, ``cached_property`` values) stay.

    Examples
    --------
    >>> class Counter(Aggregate):
    ...     total: int = 0
    >>> c = Counter()
    >>> with folding(c):
    ...     c.total = 3
    >>> type(c) is Counter, c.total
    (True, 3)
    >>> with folding(c):
    ...     c.totl = 4
    Traceback (most recent call last):
    ...
    ValueError: "Counter" object has no field "totl"
    (set by an @applies handler of Counter while replaying stream ''; found after the replay)
    """
    cls = type(agg)
    sub = fold_class(cls)
    if sub is None:
        yield
        return
    d = agg.__dict__
    before = set(d)
    object.__setattr__(agg, "__class__", sub)
    try:
        yield
    finally:
        object.__setattr__(agg, "__class__", cls)
    if d.keys() != before:
        _check_new_names(agg, before)


def _check_new_names(agg: Aggregate, before: set[str]) -> None:
    cls = type(agg)
    d = agg.__dict__
    for name in [n for n in d if n not in before]:
        if name.startswith("_") or isinstance(getattr(cls, name, None), cached_property):
            continue  # what pydantic's __setattr__ does with these too
        value = d.pop(name)
        try:
            agg.__setattr__(name, value)  # Aggregate's check: raises if it refuses the name
        except Exception as exc:
            exc.add_note(f"(set by an @applies handler of {cls.__name__} while replaying "
                         f"stream {agg.stream_id!r}; found after the replay)")
            raise


def apply_fns(cls: type) -> dict[str, tuple[Callable[..., Any], bool]]:
    """Map event type -> (function, wants_record) for a class with ``__appliers__``.

    Cached on the class; ``Model`` clears the cache when it (re)declares the class.
    """
    fns = cls.__dict__.get("__apply_fns__")
    if fns is None:
        fns = {name: (getattr(cls, ref.method), ref.wants_record)
               for name, ref in cls.__appliers__.items()}  # type: ignore[attr-defined]
        type.__setattr__(cls, "__apply_fns__", fns)
    return fns


def applier(cls: type, type_name: str) -> tuple[Callable[..., Any], bool]:
    """The (function, wants_record) that applies ``type_name`` on ``cls``.

    Raises
    ------
    ModelDefinitionError
        If the class has neither a handler for the type nor an ``"*"`` fallback.
    """
    fns = apply_fns(cls)
    found = fns.get(type_name) or fns.get(WILDCARD)
    if found is None:
        raise ModelDefinitionError(
            f"{cls.__name__} has no @applies({type_name!r}) handler; add one, "
            f"or an @applies('*') fallback"
        )
    return found


# ----------------------------------------------------------------------------- new aggregates
_ATOMS = (type(None), bool, int, float, complex, str, bytes, enum.Enum)
# What BaseModel.model_construct does, through the slot descriptors of BaseModel.
_new = object.__new__
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[n].__set__
    for n in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"))


# Every aggregate blank() makes shares this empty set as its pydantic "fields set" (the
# fields given at construction: none). One set per aggregate would be one more object for the
# cyclic garbage collector to scan on each pass over an App's cached aggregates, and
# allocating it costs too: together ~5 % of a command that opens a new stream. It must stay
# empty: pydantic changes a model's fields set in place only in __setattr__/__delattr__'s slow
# paths (which Aggregate routes through _own_fields_set first) and in model_copy(update=...)
# (on the copy's own set); model_fields_set hands out the aggregate's own set, too.
_SHARED_FIELDS_SET: set[str] = set()


def _own_fields_set(agg: BaseModel) -> set[str]:
    """The aggregate's fields set, first replaced by its own set if it is the shared one."""
    fields_set = agg.__pydantic_fields_set__
    if fields_set is _SHARED_FIELDS_SET:
        fields_set = set()
        _set_fields_set(agg, fields_set)
    return fields_set


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple | frozenset):
        return all(_immutable(v) for v in value)
    return isinstance(value, _ATOMS)


def _prototype(cls: type[Aggregate]) -> tuple[dict[str, Any], dict[str, Any], Any] | None:
    """``cls()``'s state when copying it is provably the same as calling ``cls()`` again:
    no default factories, no validators, no user ``model_post_init`` and only immutable
    values (so copies share nothing mutable). ``None`` otherwise."""
    dec = cls.__pydantic_decorators__
    if dec.validators or dec.field_validators or dec.root_validators or dec.model_validators:
        return None
    if inspect.unwrap(cls.model_post_init) is not _BASE_POST_INIT:
        return None  # a user hook runs on every instance: keep calling it
    if any(f.default_factory is not None for f in cls.model_fields.values()):
        return None
    if any(p.default_factory is not None for p in cls.__private_attributes__.values()):
        return None
    try:
        proto = cls()
    except Exception:  # a required field: cls() raises, and so will the slow path
        return None
    private = proto.__pydantic_private__ or {}
    extra = proto.__pydantic_extra__
    if extra or proto.__pydantic_fields_set__ or not all(
            _immutable(v) for v in (*proto.__dict__.values(), *private.values())):
        return None
    return proto.__dict__, private, extra


def blank(cls: type[A], stream_id: str = "") -> A:
    """A new aggregate of ``cls`` at version 0: the same as ``cls()`` with the stream set.

    Creating a pydantic model with defaults costs several microseconds; when the default
    state is provably the same every time (see ``_prototype``), this copies a cached one
    (~4x cheaper), which matters when every command opens a new stream.

    Examples
    --------
    >>> class Counter(Aggregate):
    ...     total: int = 0
    >>> c = blank(Counter, "c-1")
    >>> (c.total, c.version, c.stream_id), blank(Counter) is not c
    ((0, 0, 'c-1'), True)
    """
    proto = cls.__blank__  # (cls, ...): a subclass sees its base's entry and makes its own
    if proto is None or proto[0] is not cls:
        found = _prototype(cls)
        proto = (cls, *found) if found is not None else (cls, None, None, None)
        type.__setattr__(cls, "__blank__", proto)
    _, state, private, extra = proto
    if state is None:
        agg = cls()
        if stream_id:
            agg.__pydantic_private__["_stream_id"] = stream_id  # type: ignore[index]
        return agg
    agg = _new(cls)
    _set_dict(agg, state.copy())
    _set_fields_set(agg, _SHARED_FIELDS_SET)
    _set_extra(agg, None if extra is None else {})  # (extra='allow': {} of its own)
    private = private.copy()
    private["_stream_id"] = stream_id
    _set_private(agg, private)
    return agg


_BASE_POST_INIT = inspect.unwrap(Aggregate.model_post_init)
