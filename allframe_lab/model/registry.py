"""The Model: a named namespace of events, commands, aggregates and projections.

A Model is an ordinary object, never a process-global registry. Everything in it is keyed by
name, so re-running a notebook cell replaces a definition (with a
:class:`~allframe_lab.errors.RedefinitionWarning`) instead of failing, and stale class objects
held elsewhere keep working through their names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from allframe_lab.errors import (
    ModelDefinitionError,
    RedefinitionWarning,
    UnknownEventTypeError,
    UnknownNameError,
)
from allframe_lab.model._handlers import collect
from allframe_lab.model.aggregate import Aggregate
from allframe_lab.model.info import (
    AggregateInfo,
    CommandInfo,
    EventInfo,
    ModelInfo,
    ProjectionInfo,
)
from allframe_lab.model.messages import Command, Event
from allframe_lab.model.projection import Projection, SqlProjection

__all__ = ["CommandRoute", "Model"]

T = TypeVar("T", bound=type)
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class CommandRoute:
    """Where a command goes: the aggregate and method that handle it, and its stream field."""

    command: str
    aggregate: str
    method: str
    stream_field: str | None
    creates: bool


class Model:
    """A named namespace of an event-sourced system's declarations.

    Parameters
    ----------
    name : str
        The model's name (shown in reprs, used as the exported package's name).
    fallback_event : type[Event], optional
        Class used to decode stored events whose type is not declared (e.g.
        :class:`~allframe_lab.GenericEvent` for imported logs). Without it, such events raise
        :class:`~allframe_lab.errors.UnknownEventTypeError`.

    Examples
    --------
    >>> from allframe_lab import Model, Event, Command, Aggregate, applies, handles
    >>> bank = Model("bank")
    >>> @bank.event("AccountOpened")
    ... class AccountOpened(Event):
    ...     owner: str
    >>> @bank.command("OpenAccount", stream="account_id", creates=True)
    ... class OpenAccount(Command):
    ...     account_id: str
    ...     owner: str
    >>> @bank.aggregate("Account")
    ... class Account(Aggregate):
    ...     owner: str = ""
    ...     @applies("AccountOpened")
    ...     def _opened(self, e):
    ...         self.owner = e.owner
    ...     @handles("OpenAccount")
    ...     def open(self, c):
    ...         return AccountOpened(owner=c.owner)
    >>> bank
    Model('bank', events=1, commands=1, aggregates=1, projections=0)
    """

    def __init__(self, name: str, /, *, fallback_event: type[Event] | None = None) -> None:
        self.name = name
        self.fallback_event = fallback_event
        self._events: dict[str, type[Event]] = {}
        self._commands: dict[str, type[Command]] = {}
        self._command_opts: dict[str, tuple[str | None, bool]] = {}
        self._aggregates: dict[str, type[Aggregate]] = {}
        self._snapshot_every: dict[str, int | None] = {}
        self._projections: dict[str, type[Projection] | SqlProjection] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    # ------------------------------------------------------------------ declarations
    def _register(self, table: dict[str, Any], kind: str, name: str, value: Any) -> None:
        if not name or not isinstance(name, str):
            raise ModelDefinitionError(f"a {kind} needs a non-empty string name, got {name!r}")
        if name in table:
            warnings.warn(
                f"{kind} {name!r} redefined in model {self.name!r}; the new definition replaces it",
                RedefinitionWarning,
                stacklevel=3,
            )
        table[name] = value

    def event(self, name: str | type | None = None, /, *, version: int = 1) -> Any:
        """Declare an event class under a stable type name and schema version.

        Parameters
        ----------
        name : str
            The stable type name stored with every event (defaults to the class name when the
            decorator is used bare, but an explicit name survives class renames).
        version : int, default 1
            The schema version of this class. Older stored versions are upcast on read.

        Raises
        ------
        ModelDefinitionError
            If the class is not an :class:`Event` subclass or ``version < 1``.
        """
        if isinstance(name, type):
            return self.event(None)(name)

        def decorate(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, Event)):
                raise ModelDefinitionError(
                    f"@{self.name}.event needs a subclass of allframe_lab.Event, got {cls!r}"
                )
            if not isinstance(version, int) or version < 1:
                raise ModelDefinitionError(f"event version must be an int >= 1, got {version!r}")
            type_name = name or cls.__name__
            type.__setattr__(cls, "__message_type__", type_name)
            type.__setattr__(cls, "__schema_version__", version)
            self._register(self._events, "event", type_name, cls)
            return cls

        return decorate

    def command(
        self,
        name: str | type | None = None,
        /,
        *,
        stream: str | None = None,
        creates: bool = False,
    ) -> Any:
        """Declare a command class.

        Parameters
        ----------
        name : str
            The command's type name.
        stream : str, optional
            The field whose value is the target aggregate's stream id. Defaults to a field
            named ``stream_id`` if the command has one.
        creates : bool, default False
            The command creates its aggregate: it is appended with expected version
            ``NO_STREAM``. Other commands need an existing stream.
        """
        if isinstance(name, type):
            return self.command(None)(name)

        def decorate(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, Command)):
                raise ModelDefinitionError(
                    f"@{self.name}.command needs a subclass of allframe_lab.Command, got {cls!r}"
                )
            field = stream or ("stream_id" if "stream_id" in cls.model_fields else None)
            if field is not None and field not in cls.model_fields:
                raise ModelDefinitionError(
                    f"command {cls.__name__} has no field {field!r} to take its stream id from; "
                    f"its fields are {sorted(cls.model_fields)}"
                )
            type_name = name or cls.__name__
            type.__setattr__(cls, "__message_type__", type_name)
            self._register(self._commands, "command", type_name, cls)
            self._command_opts[type_name] = (field, creates)
            return cls

        return decorate

    def aggregate(
        self,
        name: str | type | None = None,
        /,
        *,
        snapshot_every: int | None = None,
        state_version: int = 1,
    ) -> Any:
        """Declare an aggregate class (a subclass of :class:`Aggregate`).

        Parameters
        ----------
        name : str
            The aggregate's name.
        snapshot_every : int, optional
            Take a snapshot every this many events (overrides the App's default).
        state_version : int, default 1
            Version of the state's schema; snapshots of another version are ignored.
        """
        if isinstance(name, type):
            return self.aggregate(None)(name)

        def decorate(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, Aggregate)):
                raise ModelDefinitionError(
                    f"@{self.name}.aggregate needs a subclass of allframe_lab.Aggregate, "
                    f"got {cls!r}"
                )
            if snapshot_every is not None and snapshot_every < 1:
                raise ModelDefinitionError(f"snapshot_every must be >= 1, got {snapshot_every}")
            type_name = name or cls.__name__
            type.__setattr__(cls, "__aggregate_type__", type_name)
            type.__setattr__(cls, "__state_version__", state_version)
            type.__setattr__(cls, "__appliers__", collect(cls, "applies"))
            type.__setattr__(cls, "__handlers__", collect(cls, "handles"))
            if "__apply_fns__" in cls.__dict__:
                type.__delattr__(cls, "__apply_fns__")
            self._register(self._aggregates, "aggregate", type_name, cls)
            self._snapshot_every[type_name] = snapshot_every
            return cls

        return decorate

    def projection(
        self,
        name: str | type | None = None,
        /,
        *,
        key: str = "stream_id",
        table: str | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> Any:
        """Declare a Python projection class (a subclass of :class:`Projection`).

        Parameters
        ----------
        name : str
            The projection's name.
        key : str, default "stream_id"
            The column that identifies a row; ``self.rows`` is keyed by its value.
        table : str, optional
            DuckDB table to write (defaults to the name).
        columns : mapping of str to str, optional
            DuckDB column types, e.g. ``{"balance": "BIGINT"}``; others are inferred.
        """
        if isinstance(name, type):
            return self.projection(None)(name)

        def decorate(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, Projection)):
                raise ModelDefinitionError(
                    f"@{self.name}.projection needs a subclass of allframe_lab.Projection, "
                    f"got {cls!r}"
                )
            type_name = name or cls.__name__
            _check_identifier(table or type_name, "table")
            type.__setattr__(cls, "__projection_name__", type_name)
            type.__setattr__(cls, "__table__", table or type_name)
            type.__setattr__(cls, "__key__", key)
            type.__setattr__(cls, "__columns__", dict(columns) if columns else None)
            type.__setattr__(cls, "__appliers__", collect(cls, "applies"))
            if "__apply_fns__" in cls.__dict__:
                type.__delattr__(cls, "__apply_fns__")
            self._register(self._projections, "projection", type_name, cls)
            return cls

        return decorate

    def sql_projection(
        self, name: str, sql: str, /, *, table: str | None = None, description: str = ""
    ) -> SqlProjection:
        """Declare a projection as a SELECT over the ``events`` table.

        Examples
        --------
        >>> from allframe_lab import Model
        >>> m = Model("log")
        >>> p = m.sql_projection("type_counts",
        ...     "SELECT type, count(*) AS n FROM events GROUP BY type")
        >>> p.table
        'type_counts'
        """
        if not sql.strip().lower().startswith(("select", "with", "from")):
            raise ModelDefinitionError(
                f"SQL projection {name!r} must be a SELECT (or WITH ... SELECT) over events"
            )
        _check_identifier(table or name, "table")
        proj = SqlProjection(name=name, sql=sql.strip().rstrip(";"), table=table or name,
                             description=description)
        self._register(self._projections, "projection", name, proj)
        return proj

    def upcaster(self, event: str, /, *, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Declare a pure function that moves a stored payload from ``from_version`` to the next.

        Examples
        --------
        >>> from allframe_lab import Model, Event
        >>> m = Model("users")
        >>> @m.event("UserCreated", version=2)
        ... class UserCreated(Event):
        ...     name: str
        ...     email: str = ""
        >>> @m.upcaster("UserCreated", from_version=1)
        ... def add_email(data):
        ...     return {**data, "email": ""}
        >>> m.decode("UserCreated", 1, {"name": "ann"})
        UserCreated(name='ann', email='')
        """

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(event, from_version)] = fn
            return fn

        return decorate

    # ------------------------------------------------------------------ lookups
    @property
    def events(self) -> Mapping[str, type[Event]]:
        return MappingProxyType(self._events)

    @property
    def commands(self) -> Mapping[str, type[Command]]:
        return MappingProxyType(self._commands)

    @property
    def aggregates(self) -> Mapping[str, type[Aggregate]]:
        return MappingProxyType(self._aggregates)

    @property
    def projections(self) -> Mapping[str, type[Projection] | SqlProjection]:
        return MappingProxyType(self._projections)

    def event_class(self, name: str, /) -> type[Event]:
        """The class registered for an event type name.

        Raises
        ------
        UnknownEventTypeError
            If no class is registered and the model has no ``fallback_event``.
        """
        cls = self._events.get(name)
        if cls is None:
            if self.fallback_event is not None:
                return self.fallback_event
            raise UnknownEventTypeError(name, self._events)
        return cls

    def aggregate_class(self, name: str | type[Aggregate], /) -> type[Aggregate]:
        if isinstance(name, type):
            name = name.__aggregate_type__
        try:
            return self._aggregates[name]
        except KeyError:
            raise UnknownNameError("aggregate", name, self._aggregates) from None

    def projection_decl(self, name: str, /) -> type[Projection] | SqlProjection:
        try:
            return self._projections[name]
        except KeyError:
            raise UnknownNameError("projection", name, self._projections) from None

    def snapshot_every(self, aggregate: str) -> int | None:
        return self._snapshot_every.get(aggregate)

    def route(self, command: Command | str, /) -> CommandRoute:
        """Find the aggregate method that handles a command (by the command's type name).

        Raises
        ------
        UnknownNameError
            If the command is not declared, or no aggregate handles it.
        """
        name = command if isinstance(command, str) else command.__message_type__
        if name not in self._commands:
            raise UnknownNameError("command", name or type(command).__name__, self._commands)
        field, creates = self._command_opts[name]
        for agg_name, agg in self._aggregates.items():
            ref = agg.__handlers__.get(name)
            if ref is not None:
                return CommandRoute(name, agg_name, ref.method, field, creates)
        raise ModelDefinitionError(
            f"no aggregate handles command {name!r}; mark a method with @handles({name!r})"
        )

    # ------------------------------------------------------------------ decoding
    def decode(
        self, type_name: str, schema_version: int, data: Mapping[str, Any], /
    ) -> Event:
        """Turn a stored payload into an event object, upcasting old schema versions first.

        Raises
        ------
        UnknownEventTypeError
            If the type is not declared (and there is no fallback).
        ModelDefinitionError
            If an upcaster step is missing between the stored and the declared version.
        pydantic.ValidationError
            If the payload does not fit the class.
        """
        cls = self._events.get(type_name)
        if cls is None:
            if self.fallback_event is None:
                raise UnknownEventTypeError(type_name, self._events)
            return self.fallback_event.model_validate(data)
        target = cls.__schema_version__
        if schema_version != target:
            data = self.upcast(type_name, schema_version, target, data)
        return cls.model_validate(data)

    def upcast(
        self, type_name: str, from_version: int, to_version: int, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply the upcaster chain ``from_version -> ... -> to_version`` to a payload."""
        if from_version > to_version:
            raise ModelDefinitionError(
                f"stored {type_name} has schema version {from_version}, newer than the declared "
                f"{to_version}; declare @model.event({type_name!r}, version={from_version})"
            )
        out = dict(data)
        for v in range(from_version, to_version):
            step = self._upcasters.get((type_name, v))
            if step is None:
                raise ModelDefinitionError(
                    f"no upcaster for {type_name} v{v} -> v{v + 1}; declare "
                    f"@model.upcaster({type_name!r}, from_version={v})"
                )
            out = step(out)
        return out

    # ------------------------------------------------------------------ introspection
    def info(self) -> ModelInfo:
        """Describe the model as frozen data."""
        routes: dict[str, str] = {}
        for agg_name, agg in self._aggregates.items():
            for cmd in agg.__handlers__:
                routes[cmd] = agg_name
        events = tuple(
            EventInfo(n, c.__schema_version__, c.__name__, tuple(c.model_fields),
                      c.model_json_schema())
            for n, c in self._events.items()
        )
        commands = tuple(
            CommandInfo(n, c.__name__, tuple(c.model_fields), self._command_opts[n][0],
                        self._command_opts[n][1], routes.get(n), c.model_json_schema())
            for n, c in self._commands.items()
        )
        aggregates = tuple(
            AggregateInfo(n, a.__name__, tuple(a.model_fields), tuple(a.__appliers__),
                          tuple(a.__handlers__), self._snapshot_every.get(n))
            for n, a in self._aggregates.items()
        )
        projections = tuple(
            ProjectionInfo(n, "sql", p.table, None, (), p.sql)
            if isinstance(p, SqlProjection)
            else ProjectionInfo(n, "python", p.__table__, p.__key__, tuple(p.__appliers__), None)
            for n, p in self._projections.items()
        )
        return ModelInfo(self.name, events, commands, aggregates, projections)

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, events={len(self._events)}, commands={len(self._commands)}, "
            f"aggregates={len(self._aggregates)}, projections={len(self._projections)})"
        )


def _check_identifier(name: str, what: str) -> None:
    if not name.replace("_", "a").isalnum() or name[0].isdigit():
        raise ModelDefinitionError(
            f"{what} name {name!r} must be a SQL identifier (letters, digits, underscores)"
        )
