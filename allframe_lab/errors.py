"""The one exception tree of allframe-lab.

Every error the library raises on purpose derives from :class:`AllframeError` and
mixes in the builtin it resembles, so ``except ValueError`` keeps working::

    AllframeError
    ├── ModelError (TypeError)
    │   ├── ModelDefinitionError        a declaration is wrong (bad decorator use, missing handler)
    │   ├── UnknownNameError (KeyError) a name is not registered in the Model
    │   │   └── UnknownEventTypeError   a stored event type has no class in the Model
    │   └── EventDecodeError (ValueError) a stored payload does not fit its event class
    ├── StoreError (RuntimeError)
    │   ├── ConcurrencyError            expected version did not match (stream, expected, actual)
    │   ├── StoreLockedError            another process holds the DuckDB file for writing
    │   ├── ReadOnlyStoreError          a write was attempted on a read-only store
    │   └── StoreConfigError (ValueError) a store option is bad (e.g. payload_columns)
    ├── CommandError (RuntimeError)
    │   ├── ValidationError (ValueError) a command's fields are invalid (carries ALL failures)
    │   ├── DomainError                 a business rule refused a command (raise subclasses)
    │   ├── AggregateNotFoundError (LookupError)
    │   ├── IdempotencyError            an idempotency key was reused with another payload
    │   └── SagaError                   a saga step failed and was compensated, or a saga is stuck
    ├── ProjectionError (RuntimeError)  a projection handler or SQL failed
    ├── ConsistencyTimeoutError (TimeoutError) read-your-writes wait ran out
    ├── QueryError (ValueError)         a query is malformed (unknown column, bad operator)
    └── ImportFormatError (ValueError)  an event log cannot be read (names file and place)

    RedefinitionWarning (UserWarning)   a re-run cell replaced a definition in a Model

Errors carry structured fields (``stream_id``, ``expected``, ``actual`` ...) and a message
that says what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AggregateNotFoundError",
    "AllframeError",
    "CommandError",
    "ConcurrencyError",
    "ConsistencyTimeoutError",
    "DomainError",
    "EventDecodeError",
    "FieldError",
    "IdempotencyError",
    "ImportFormatError",
    "ModelDefinitionError",
    "ModelError",
    "ProjectionError",
    "QueryError",
    "ReadOnlyStoreError",
    "StoreConfigError",
    "RedefinitionWarning",
    "SagaError",
    "StoreError",
    "StoreLockedError",
    "UnknownEventTypeError",
    "UnknownNameError",
    "ValidationError",
]


class AllframeError(Exception):
    """Base class of every error allframe-lab raises on purpose."""


class ModelError(AllframeError, TypeError):
    """A problem with the declarations of a :class:`~allframe_lab.Model`."""


class ModelDefinitionError(ModelError):
    """A class or function was declared in a way the Model cannot use."""


class UnknownNameError(ModelError, KeyError):
    """A name (event type, command, aggregate, projection) is not registered.

    Parameters
    ----------
    kind : str
        What was looked up, e.g. ``"command"``.
    name : str
        The name that was not found.
    known : iterable of str
        The names that are registered, listed in the message.
    """

    def __init__(self, kind: str, name: str, known: Any = ()) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(sorted(known))
        listing = ", ".join(self.known) if self.known else "none"
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + "s"
        declare = kind.replace(" ", "_")
        super().__init__(
            f"unknown {kind} {name!r}; registered {plural}: {listing}. "
            f"Declare it on the model (e.g. @model.{declare}({name!r})) or check the spelling."
        )

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class UnknownEventTypeError(UnknownNameError):
    """A stored event's type has no class in the Model, so it cannot be decoded."""

    def __init__(self, name: str, known: Any = (), *, position: int | None = None) -> None:
        self.position = position
        super().__init__("event", name, known)
        where = f" (first met at position {position})" if position is not None else ""
        self.args = (
            f"unknown event type {name!r}{where}; the model registers: "
            f"{', '.join(self.known) or 'none'}. Declare it with "
            f"@model.event({name!r}, version=...), or give the model a fallback with "
            f"Model(..., fallback_event=GenericEvent) to read unknown types as plain payloads.",
        )


class EventDecodeError(ModelError, ValueError):
    """A stored payload does not fit the class the Model has for its type (and version)."""

    def __init__(self, type_name: str, schema_version: int, position: int, problem: str) -> None:
        self.type_name = type_name
        self.schema_version = schema_version
        self.position = position
        super().__init__(
            f"the {type_name} v{schema_version} event at position {position} does not fit its "
            f"class: {problem}. If the class changed, give new fields defaults or declare a new "
            f"version with an upcaster (@model.upcaster({type_name!r}, from_version=...))"
        )


class StoreError(AllframeError, RuntimeError):
    """A problem reported by an event store."""


class StoreConfigError(StoreError, ValueError):
    """An event store was opened or configured with a bad option (e.g. ``payload_columns``).

    The message names each bad entry and what to pass instead; nothing was changed.
    """


class ConcurrencyError(StoreError):
    """An append's expected version did not match the stream's actual version.

    Attributes
    ----------
    stream_id : str
    expected : int or str
        What the caller expected (a version, ``"ANY"``, ``"NO_STREAM"`` or ``"STREAM_EXISTS"``).
    actual : int
        The stream's version at the time of the append (0 if the stream does not exist).
    """

    def __init__(self, stream_id: str, expected: object, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, but the append expected {expected}; "
            "nothing was written. Reload the aggregate and retry the command."
        )


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file open for writing."""

    def __init__(self, path: str, detail: str = "") -> None:
        self.path = path
        super().__init__(
            f"the event store {path!r} is open for writing in another process. DuckDB allows one "
            f"writer per file: open it with read_only=True to read beside the writer, or close "
            f"the other process. ({detail})"
        )


class ReadOnlyStoreError(StoreError):
    """A write was attempted on a store opened with ``read_only=True``."""


class CommandError(AllframeError, RuntimeError):
    """A command could not be handled."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One failed constraint: the field's dotted path, what is wrong, and the value given."""

    field: str
    message: str
    input: Any = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (got {self.input!r})"


class ValidationError(CommandError, ValueError):
    """A command (or query) failed validation. It carries every failure, never just the first.

    Attributes
    ----------
    message_type : str
        The command's (or query's) type name.
    errors : tuple of FieldError
        One entry per failed constraint, in field order.

    Examples
    --------
    >>> e = ValidationError("Deposit", [FieldError("amount", "must be > 0", -5)])
    >>> print(e)
    Deposit is invalid (1 error):
      amount: must be > 0 (got -5)
    >>> e.errors[0].field
    'amount'
    """

    def __init__(self, message_type: str, errors: Sequence[FieldError]) -> None:
        self.message_type = message_type
        self.errors = tuple(errors)
        n = len(self.errors)
        lines = "\n".join(f"  {e}" for e in self.errors)
        super().__init__(f"{message_type} is invalid ({n} error{'s' if n != 1 else ''}):\n{lines}")

    def __reduce__(self) -> Any:
        return (type(self), (self.message_type, self.errors))


class DomainError(CommandError):
    """A business rule refused a command. Raise subclasses of it from command handlers.

    When it escapes the command bus, ``command`` and ``stream_id`` name the command and the
    stream it targeted (set by the bus).
    """

    command: str | None = None
    stream_id: str | None = None

    def __str__(self) -> str:
        base = super().__str__()
        if self.command is None:
            return base
        where = f" on stream {self.stream_id!r}" if self.stream_id is not None else ""
        return f"{base} [command {self.command}{where}]"


class IdempotencyError(CommandError):
    """An idempotency key was dispatched again with a different command or payload."""

    def __init__(self, key: str, detail: str) -> None:
        self.key = key
        super().__init__(
            f"idempotency key {key!r} was already used {detail}; use a new key for a new request"
        )


class SagaError(CommandError):
    """A saga could not complete: a step failed (and completed steps were compensated)."""


class AggregateNotFoundError(CommandError, LookupError):
    """An aggregate's stream does not exist."""

    def __init__(self, aggregate: str, stream_id: str) -> None:
        self.aggregate = aggregate
        self.stream_id = stream_id
        super().__init__(
            f"no {aggregate} with stream id {stream_id!r}; send its creation command first"
        )


class ProjectionError(AllframeError, RuntimeError):
    """A projection's handler or SQL failed."""


class ConsistencyTimeoutError(AllframeError, TimeoutError):
    """A read waited for projections to reach a position and the timeout ran out."""

    def __init__(self, position: int, reached: dict[str, int], timeout: float) -> None:
        self.position = position
        self.reached = dict(reached)
        self.timeout = timeout
        behind = ", ".join(f"{k} at {v}" for k, v in self.reached.items())
        super().__init__(
            f"projections or subscriptions did not reach position {position} within "
            f"{timeout:g} s ({behind}); "
            "check app.dead_letters() for parked events, or pass a longer timeout"
        )


class QueryError(AllframeError, ValueError):
    """A query is malformed: unknown table or column, or an unsupported operator."""


class ImportFormatError(AllframeError, ValueError):
    """An event log cannot be imported; nothing was written.

    Attributes
    ----------
    source : str
        The file that was read.
    where : str
        The place in it: ``"line 12"``, ``"trace 3, event 5"``, ``"row 7"``.
    """

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source = source
        self.where = where
        self.problem = problem
        super().__init__(f"{source}: {where}: {problem}; nothing was imported")


class RedefinitionWarning(UserWarning):
    """A name was declared again on a Model (a re-run notebook cell); the new one replaces it."""
