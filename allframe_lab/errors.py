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
    │   └── ReadOnlyStoreError          a write was attempted on a read-only store
    ├── CommandError (RuntimeError)
    │   ├── DomainError                 a business rule refused a command (raise subclasses)
    │   └── AggregateNotFoundError (LookupError)
    ├── ProjectionError (RuntimeError)  a projection handler or SQL failed
    └── ImportFormatError (ValueError)  an event log cannot be read (names file and place)

    RedefinitionWarning (UserWarning)   a re-run cell replaced a definition in a Model

Errors carry structured fields (``stream_id``, ``expected``, ``actual`` ...) and a message
that says what to do next.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AggregateNotFoundError",
    "AllframeError",
    "CommandError",
    "ConcurrencyError",
    "DomainError",
    "EventDecodeError",
    "ImportFormatError",
    "ModelDefinitionError",
    "ModelError",
    "ProjectionError",
    "ReadOnlyStoreError",
    "RedefinitionWarning",
    "StoreError",
    "StoreLockedError",
    "UnknownEventTypeError",
    "UnknownNameError",
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
        super().__init__(
            f"unknown {kind} {name!r}; registered {kind}s: {listing}. "
            f"Declare it on the model (e.g. @model.{kind}({name!r})) or check the spelling."
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


class DomainError(CommandError):
    """A business rule refused a command. Raise subclasses of it from command handlers."""


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
