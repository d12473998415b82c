"""Message base classes: events and commands are frozen pydantic v2 models.

A message class gets its stable type name and schema version from the Model decorator
(``@model.event("FundsDeposited", version=1)``), never from its module or qualname, so a class
can move, and a notebook cell can be re-run, without breaking stored history.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Command", "Event", "GenericEvent", "Message", "message_type"]


class Message(BaseModel):
    """Base of events and commands: immutable, validated, JSON-serializable.

    Validation collects every error before raising once (pydantic's ``ValidationError``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    __message_type__: ClassVar[str] = ""
    __schema_version__: ClassVar[int] = 1


class Event(Message):
    """Base class of domain events: immutable facts, named in the past tense.

    Examples
    --------
    >>> from allframe_lab import Model, Event
    >>> bank = Model("bank")
    >>> @bank.event("FundsDeposited", version=1)
    ... class FundsDeposited(Event):
    ...     amount: int
    >>> FundsDeposited(amount=5).model_dump()
    {'amount': 5}
    >>> message_type(FundsDeposited)
    'FundsDeposited'
    """


class Command(Message):
    """Base class of commands: a request to change state, named in the imperative."""


class GenericEvent(Event):
    """An event whose payload is kept as given: any fields are accepted.

    Used as a Model's ``fallback_event`` for logs whose event types are not known in advance
    (imported process logs). The payload is available as ``event.model_extra`` or ``event.data``.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    @property
    def data(self) -> dict[str, Any]:
        """The payload as a plain dict."""
        return dict(self.model_extra or {})


def message_type(message: type[Message] | Message) -> str:
    """Return the stable type name a Model gave to a message class or instance.

    Raises
    ------
    TypeError
        If the class was not declared on a Model.
    """
    cls = message if isinstance(message, type) else type(message)
    name = getattr(cls, "__message_type__", "")
    if not name:
        raise TypeError(
            f"{cls.__name__} has no type name: declare it with @model.event('Name') "
            "or @model.command('Name')"
        )
    return name
