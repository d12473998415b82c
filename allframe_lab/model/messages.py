"""Message base classes: events and commands are frozen pydantic v2 models.

A message class gets its stable type name and schema version from the Model decorator
(``@model.event("FundsDeposited", version=1)``), never from its module or qualname, so a class
can move, and a notebook cell can be re-run, without breaking stored history.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pydantic
from pydantic import BaseModel, ConfigDict

__all__ = ["Command", "Event", "GenericEvent", "Message", "Query", "message_type"]


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


class _Validated(Message):
    """A message whose constructor reports ALL failures as one project ValidationError."""

    def __init__(self, /, **data: Any) -> None:
        # What BaseModel.__init__ does, called directly: one Python frame less per command.
        try:
            validated = self.__pydantic_validator__.validate_python(data, self_instance=self)
        except pydantic.ValidationError as exc:
            from allframe_lab.model.validation import ValidationError, field_errors

            raise ValidationError(type(self).__message_type__ or type(self).__name__,
                                  field_errors(exc)) from None
        if validated is not self:  # as BaseModel.__init__: a model validator replaced it
            import warnings

            warnings.warn("a model validator of a message returned a value other than `self`; "
                          "the returned object is ignored", stacklevel=2)

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Validate a mapping (or instance); failures raise the project ValidationError."""
        if isinstance(obj, dict) and not args and not kwargs:
            return cls(**obj)
        return super().model_validate(obj, *args, **kwargs)


class Command(_Validated):
    """Base class of commands: a request to change state, named in the imperative.

    Constructing an invalid command raises :class:`~allframe_lab.errors.ValidationError`
    with every failed constraint (see :mod:`allframe_lab.model.constraints`).
    """


class Query(_Validated):
    """Base class of queries: a request to read, answered by a query handler from projections."""


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
