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
    QueryInfo,
    SagaInfo,
)
from allframe_lab.model.messages import Command, Event, Query
from allframe_lab.model.projection import Projection, SqlProjection
from allframe_lab.model.versioning import UpcasterChain, build_chain, check_step

__all__ = ["CommandRoute", "Model"]

T = TypeVar("T", bound=type)
F = TypeVar("F", bound=Callable[..., Any])
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
        self._chains: dict[str, UpcasterChain] = {}
        self._snapshot_after_replay: dict[str, int | None] = {}
        self._queries: dict[str, type[Query]] = {}
        self._routes: dict[str, CommandRoute] = {}
        self._query_handlers: dict[str, Callable[..., Any]] = {}
        self._use_cases: dict[str, Callable[..., Any]] = {}
        self._sagas: dict[str, type] = {}

    # ------------------------------------------------------------------ declarations
    def _register(self, table: dict[str, Any], kind: str, name: str, value: Any) -> None:
        if not name or not isinstance(name, str):
            raise ModelDefinitionError(f"a {kind} needs a non-empty string name, got {name!r}")
        self._routes.clear()  # any (re)definition may change where a command goes
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
            Every step ``v -> v+1`` below ``version`` must be covered, when the class is
            declared, by an upcaster (inline ``@upcasts(from_version=v)``, or
            ``@model.upcaster(name, from_version=v)`` declared before) or by fields marked
            ``added_in(v+1, ...)`` / ``renamed_from(..., in_version=v+1)``.

        Raises
        ------
        ModelDefinitionError
            If the class is not an :class:`Event` subclass, ``version < 1``, or the upcaster
            chain has a gap, a step declared twice, or a step past ``version`` or backwards.

        Examples
        --------
        >>> from allframe_lab import Model, Event, added_in, upcasts
        >>> m = Model("users")
        >>> @m.event("UserCreated", version=3)
        ... class UserCreated(Event):
        ...     full_name: str
        ...     email: str = added_in(3, default="")
        ...     @upcasts(from_version=1)
        ...     def rename(data):
        ...         return {"full_name": data["name"]}
        >>> m.decode("UserCreated", 1, {"name": "ann"})
        UserCreated(full_name='ann', email='')
        >>> @m.event("UserRenamed", version=2)  # doctest: +ELLIPSIS
        ... class UserRenamed(Event):
        ...     full_name: str
        Traceback (most recent call last):
        ...
        allframe_lab.errors.ModelDefinitionError: the upcaster chain of UserRenamed ...
          - UserRenamed is declared at version 2, but nothing moves a payload from v1 to v2. ...
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
            chain = build_chain(type_name, cls, version, self._standalone(type_name))
            type.__setattr__(cls, "__message_type__", type_name)
            type.__setattr__(cls, "__schema_version__", version)
            self._register(self._events, "event", type_name, cls)
            self._chains[type_name] = chain
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
        snapshot_after_replay: int | None = None,
        state_version: int = 1,
    ) -> Any:
        """Declare an aggregate class (a subclass of :class:`Aggregate`).

        Parameters
        ----------
        name : str
            The aggregate's name.
        snapshot_every : int, optional
            Take a snapshot every this many events (overrides the App's default).
        snapshot_after_replay : int, optional
            Take a snapshot after a load that replayed more than this many events
            (overrides the App's default).
        state_version : int, default 1
            Version of the state's schema; snapshots of another version are ignored (and
            rebuilt). Snapshots also store a fingerprint of the state's JSON Schema, so a
            changed schema is detected even when this number is not raised.
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
            if snapshot_after_replay is not None and snapshot_after_replay < 1:
                raise ModelDefinitionError(
                    f"snapshot_after_replay must be >= 1, got {snapshot_after_replay}")
            type_name = name or cls.__name__
            type.__setattr__(cls, "__aggregate_type__", type_name)
            type.__setattr__(cls, "__state_version__", state_version)
            type.__setattr__(cls, "__appliers__", collect(cls, "applies"))
            type.__setattr__(cls, "__handlers__", collect(cls, "handles"))
            for cached in ("__apply_fns__", "__apply_cache__"):
                if cached in cls.__dict__:
                    type.__delattr__(cls, cached)
            self._register(self._aggregates, "aggregate", type_name, cls)
            self._snapshot_every[type_name] = snapshot_every
            self._snapshot_after_replay[type_name] = snapshot_after_replay
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

    def upcaster(self, event: str, /, *, from_version: int,
                 to_version: int | None = None) -> Callable[[Upcaster], Upcaster]:
        """Declare a pure function that moves a stored payload from ``from_version`` to the next.

        Declare it *before* the event class whose chain needs it (the chain is checked when
        the event is declared), or inline in the class with
        :func:`~allframe_lab.model.versioning.upcasts`. Declaring a step again replaces it
        (with a :class:`~allframe_lab.errors.RedefinitionWarning`).

        Parameters
        ----------
        event : str
            The event's type name.
        from_version : int
            The version the function reads; it returns version ``from_version + 1``.
        to_version : int, optional
            Must be ``from_version + 1`` when given.

        Raises
        ------
        ModelDefinitionError
            If the step goes backwards or skips versions, or (for an event already declared
            at a later version) the step is also declared inline.

        Examples
        --------
        >>> from allframe_lab import Model, Event
        >>> m = Model("users")
        >>> @m.upcaster("UserCreated", from_version=1)
        ... def rename(data):
        ...     return {"full_name": data["name"]}
        >>> @m.event("UserCreated", version=2)
        ... class UserCreated(Event):
        ...     full_name: str
        >>> m.decode("UserCreated", 1, {"name": "ann"})
        UserCreated(full_name='ann')
        """
        check_step(f"@{self.name}.upcaster({event!r})", from_version, to_version)

        def decorate(fn: Upcaster) -> Upcaster:
            if not callable(fn):
                raise ModelDefinitionError(f"@model.upcaster needs a function, got {fn!r}")
            cls = self._events.get(event)
            if cls is not None and from_version >= cls.__schema_version__:
                cls = None  # ahead of a version bump: checked when the event is re-declared
            if cls is not None:  # re-check the declared event's chain with this step
                standalone = {**self._standalone(event), from_version: fn}
                chain = build_chain(event, cls, cls.__schema_version__, standalone)
            key = (event, from_version)
            if key in self._upcasters:
                warnings.warn(
                    f"upcaster {event} v{from_version} -> v{from_version + 1} redefined in "
                    f"model {self.name!r}; the new function replaces it",
                    RedefinitionWarning, stacklevel=2)
            self._upcasters[key] = fn
            if cls is not None:
                self._chains[event] = chain
            return fn

        return decorate

    def _standalone(self, event: str) -> dict[int, Upcaster]:
        return {v: fn for (e, v), fn in self._upcasters.items() if e == event}

    def upcaster_chain(self, event: str, /) -> UpcasterChain:
        """The validated upcaster chain of a declared event type (its steps and their sources).

        Examples
        --------
        >>> from allframe_lab import Model, Event, added_in
        >>> m = Model("users")
        >>> @m.event("UserCreated", version=2)
        ... class UserCreated(Event):
        ...     name: str
        ...     email: str = added_in(2, default="")
        >>> m.upcaster_chain("UserCreated")
        <UpcasterChain UserCreated v1->v2: v1->v2: add email>
        """
        if event not in self._events:
            raise UnknownEventTypeError(event, self._events)
        return self._chains[event]

    def query(self, name: str | type | None = None, /) -> Any:
        """Declare a query class (a subclass of :class:`Query`) under a stable name.

        Answer it with a function marked ``@model.query_handler(name)``.
        """
        if isinstance(name, type):
            return self.query(None)(name)

        def decorate(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, Query)):
                raise ModelDefinitionError(
                    f"@{self.name}.query needs a subclass of allframe_lab.Query, got {cls!r}"
                )
            type_name = name or cls.__name__
            type.__setattr__(cls, "__message_type__", type_name)
            self._register(self._queries, "query", type_name, cls)
            return cls

        return decorate

    def query_handler(self, query: str, /) -> Callable[[F], F]:
        """Declare the function that answers a query: ``fn(query, reads) -> result``.

        ``reads`` is a :class:`~allframe_lab.runtime.queries.ReadSide`: projections as
        tables, the query DSL and raw SQL, caught up to the caller's last write.
        """

        def decorate(fn: F) -> F:
            self._register(self._query_handlers, "query handler", query, fn)
            return fn

        return decorate

    def use_case(self, command: str, /) -> Callable[[F], F]:
        """Declare a free function that handles a command: ``fn(command, uow) -> None``.

        A use case may touch several aggregates: ``uow.handle(other_command)`` runs an
        aggregate's command handler, and everything it decides is appended in ONE transaction
        when the use case returns (all or nothing). ``uow.load(aggregate, stream_id)`` reads.
        """

        def decorate(fn: F) -> F:
            if command not in self._commands:
                raise ModelDefinitionError(
                    f"declare command {command!r} with @{self.name}.command before its use case"
                )
            self._register(self._use_cases, "use case", command, fn)
            return fn

        return decorate

    def saga(self, name: str | None = None, /, *, correlation: str) -> Any:
        """Declare a saga (process manager): a subclass of :class:`~allframe_lab.model.saga.Saga`.

        Parameters
        ----------
        name : str
            The saga's name (its instances and checkpoint are stored under it).
        correlation : str
            The event payload field whose value identifies an instance (e.g. ``transfer_id``).

        Raises
        ------
        ModelDefinitionError
            If the class has no ``@starts`` method or names a missing compensation.
        """
        from allframe_lab.model.saga import Saga, collect_saga

        def decorate(cls: T) -> T:
            if not (isinstance(cls, type) and issubclass(cls, Saga)):
                raise ModelDefinitionError(
                    f"@{self.name}.saga needs a subclass of allframe_lab.Saga, got {cls!r}"
                )
            collect_saga(cls)
            type_name = name or cls.__name__
            type.__setattr__(cls, "__saga_name__", type_name)
            type.__setattr__(cls, "__correlation__", correlation)
            self._register(self._sagas, "saga", type_name, cls)
            return cls

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

    @property
    def queries(self) -> Mapping[str, type[Query]]:
        return MappingProxyType(self._queries)

    @property
    def query_handlers(self) -> Mapping[str, Callable[..., Any]]:
        return MappingProxyType(self._query_handlers)

    @property
    def use_cases(self) -> Mapping[str, Callable[..., Any]]:
        return MappingProxyType(self._use_cases)

    @property
    def sagas(self) -> Mapping[str, type]:
        return MappingProxyType(self._sagas)

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

    def snapshot_after_replay(self, aggregate: str) -> int | None:
        """The aggregate's own replay threshold for snapshots (``None``: the App's)."""
        return self._snapshot_after_replay.get(aggregate)

    def route(self, command: Command | str, /) -> CommandRoute:
        """Find the aggregate method that handles a command (by the command's type name).

        Raises
        ------
        UnknownNameError
            If the command is not declared, or no aggregate handles it.
        """
        name = command if isinstance(command, str) else command.__message_type__
        cached = self._routes.get(name)
        if cached is not None:
            return cached
        if name not in self._commands:
            raise UnknownNameError("command", name or type(command).__name__, self._commands)
        field, creates = self._command_opts[name]
        for agg_name, agg in self._aggregates.items():
            ref = agg.__handlers__.get(name)
            if ref is not None:
                route = self._routes[name] = CommandRoute(name, agg_name, ref.method, field,
                                                          creates)
                return route
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

    def upcaster_function(self, type_name: str, from_version: int, /
                          ) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """One function upcasting a payload of ``from_version`` to the declared version.

        ``None`` if the payload validates as it is (same version, or the remaining steps only
        add fields with defaults). The function may change the dict it gets: pass one you own.

        Raises
        ------
        ModelDefinitionError
            If ``from_version`` is newer than the declared version, or below 1.
        """
        cls = self._events[type_name]
        target = cls.__schema_version__
        if from_version == target:
            return None
        self._check_upcast(type_name, from_version, target)
        chain = self._chains[type_name]
        if not chain.needs_transform(from_version):
            return None
        return chain.function(from_version)

    def _check_upcast(self, type_name: str, from_version: int, to_version: int) -> None:
        if from_version > to_version:
            raise ModelDefinitionError(
                f"stored {type_name} has schema version {from_version}, newer than the declared "
                f"{to_version}; declare @model.event({type_name!r}, version={from_version}) "
                "(the data was written by a newer model)"
            )
        if from_version < 1:
            raise ModelDefinitionError(f"stored {type_name} has schema version {from_version}; "
                                       "versions start at 1")

    def upcast(
        self, type_name: str, from_version: int, to_version: int, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Apply the upcaster chain ``from_version -> ... -> to_version`` to a copy of a payload.

        Raises
        ------
        UnknownEventTypeError
            If the event type is not declared.
        ModelDefinitionError
            If ``from_version`` is newer than ``to_version``, or ``to_version`` is past the
            declared version.

        Examples
        --------
        >>> from allframe_lab import Model, Event, added_in, renamed_from
        >>> m = Model("users")
        >>> @m.event("UserCreated", version=3)
        ... class UserCreated(Event):
        ...     full_name: str = renamed_from("name", in_version=2)
        ...     email: str = added_in(3, default="")
        >>> m.upcast("UserCreated", 1, 2, {"name": "ann"})
        {'full_name': 'ann'}
        >>> m.upcast("UserCreated", 1, 3, {"name": "ann"})
        {'full_name': 'ann', 'email': ''}
        """
        self._check_upcast(type_name, from_version, to_version)
        if from_version == to_version:
            return dict(data)
        if type_name not in self._events:
            raise UnknownEventTypeError(type_name, self._events)
        chain = self._chains[type_name]
        if to_version > chain.version:
            raise ModelDefinitionError(
                f"{type_name} is declared at version {chain.version}; cannot upcast to "
                f"v{to_version}")
        return chain.upcast(data, from_version, to_version)

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
        queries = tuple(
            QueryInfo(n, q.__name__, tuple(q.model_fields), n in self._query_handlers,
                      q.model_json_schema())
            for n, q in self._queries.items()
        )
        sagas = tuple(
            SagaInfo(n, c.__name__, c.__correlation__, tuple(c.__starts__),
                     tuple(c.__reacts__), tuple(st.name for st in c.__steps__),
                     tuple(st.compensate for st in c.__steps__),
                     tuple(st.wait_for for st in c.__steps__))
            for n, c in self._sagas.items()
        )
        return ModelInfo(self.name, events, commands, aggregates, projections, queries,
                         tuple(self._use_cases), sagas)

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
