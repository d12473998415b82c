"""Aggregates: consistency boundaries whose state is a fold of their stream.

An aggregate class is a mutable pydantic model whose fields are its state. Methods marked
``@applies(...)`` fold events into the state; methods marked ``@handles(...)`` decide which
new events a command produces (they must not change the state themselves).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from allframe_lab.errors import ModelDefinitionError
from allframe_lab.model._handlers import WILDCARD, F, HandlerRef, mark
from allframe_lab.model.messages import Event

__all__ = ["Aggregate", "applier", "applies", "handles"]


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
        fn, wants_record = applier(type(self), event.__message_type__)
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
        # Fast path for state fields (apply handlers assign them once per event).
        d = self.__dict__
        if name in d:
            d[name] = value
        else:
            super().__setattr__(name, value)

    def state(self) -> dict[str, Any]:
        """The state fields as a JSON-compatible dict (what a snapshot stores)."""
        return self.model_dump(mode="json")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items())
        return (
            f"{type(self).__name__}(stream_id={self._stream_id!r}, "
            f"version={self._version}, {fields})"
        )


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
