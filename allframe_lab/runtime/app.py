"""The App: composition root of a session (model + store + clock + ids)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import AggregateNotFoundError, CommandError, ConcurrencyError
from allframe_lab.model import Aggregate, Command, Event, Model, Query
from allframe_lab.runtime._decode import EventDecoder
from allframe_lab.runtime.clock import Clock, SystemClock
from allframe_lab.runtime.ids import IdFactory, RandomIds
from allframe_lab.runtime.repository import DEFAULT_CACHE_SIZE, Repository
from allframe_lab.store import NO_STREAM, AsOf, EventStore, RecordedEvent
from allframe_lab.store.records import make_new_event

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.runtime.bus import CommandBus
    from allframe_lab.runtime.projections import ProjectionHandle, ProjectionRunner
    from allframe_lab.runtime.queries import QueryBus, ReadSide
    from allframe_lab.runtime.sagas import SagaRunner
    from allframe_lab.runtime.subscriptions import Subscription, Subscriptions

__all__ = ["App", "PointInTime"]


class App:
    """Runs commands against an event store and reads aggregates and projections.

    Parameters
    ----------
    model : Model
    store : EventStore
    clock : Clock, default SystemClock()
        Source of ``occurred_at`` for new events.
    ids : IdFactory, default RandomIds()
        Source of event and command ids.
    snapshot_every : int, optional
        Snapshot aggregates every this many events (an aggregate's own setting wins).
    snapshot_after_replay : int, optional
        Snapshot an aggregate after a load that replayed more than this many events.
    aggregate_cache_size : int or None, default 1000
        Aggregates of each type kept in memory between commands, least recently used dropped
        first (reloaded from snapshot + tail when needed again); ``0`` keeps none, ``None``
        keeps all. See :class:`~allframe_lab.runtime.repository.Repository`.

    Examples
    --------
    >>> from allframe_lab import App, Model, Event, Command, Aggregate, applies, handles
    >>> from allframe_lab import ManualClock, SequentialIds
    >>> from allframe_lab.store import InMemoryEventStore
    >>> bank = Model("bank")
    >>> @bank.event("Opened")
    ... class Opened(Event):
    ...     owner: str
    >>> @bank.event("Deposited")
    ... class Deposited(Event):
    ...     amount: int
    >>> @bank.command("Open", stream="account_id", creates=True)
    ... class Open(Command):
    ...     account_id: str
    ...     owner: str
    >>> @bank.command("Deposit", stream="account_id")
    ... class Deposit(Command):
    ...     account_id: str
    ...     amount: int
    >>> @bank.aggregate("Account")
    ... class Account(Aggregate):
    ...     owner: str = ""
    ...     balance: int = 0
    ...     @applies("Opened")
    ...     def _opened(self, e):
    ...         self.owner = e.owner
    ...     @applies("Deposited")
    ...     def _deposited(self, e):
    ...         self.balance += e.amount
    ...     @handles("Open")
    ...     def open(self, c):
    ...         return Opened(owner=c.owner)
    ...     @handles("Deposit")
    ...     def deposit(self, c):
    ...         return Deposited(amount=c.amount)
    >>> app = App(bank, InMemoryEventStore(), clock=ManualClock(), ids=SequentialIds())
    >>> _ = app.handle(Open(account_id="a1", owner="ann"))
    >>> [r.version for r in app.handle(Deposit(account_id="a1", amount=5))]
    [2]
    >>> app.load("Account", "a1").balance, app.load("Account", "a1", version=1).balance
    (5, 0)
    """

    def __init__(
        self,
        model: Model,
        store: EventStore,
        /,
        *,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        snapshot_every: int | None = None,
        snapshot_after_replay: int | None = None,
        aggregate_cache_size: int | None = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.model = model
        self.store = store
        self.clock = clock or SystemClock()
        self.ids = ids or RandomIds()
        self.decoder = EventDecoder(model)
        self.repository = Repository(model, store, snapshot_every=snapshot_every,
                                     snapshot_after_replay=snapshot_after_replay,
                                     decoder=self.decoder, clock=self.clock,
                                     aggregate_cache_size=aggregate_cache_size)
        self.last_position = 0
        if model.sagas and not getattr(store, "read_only", False):
            self.sagas.start()

    # -------------------------------------------------------------- commands
    def handle(self, command: Command, /) -> list[RecordedEvent]:
        """Run one command: load its aggregate, decide, append with the expected version.

        Returns
        -------
        list of RecordedEvent
            The events the command produced, as stored.

        Raises
        ------
        UnknownNameError
            If the command type is not declared or no aggregate handles it.
        AggregateNotFoundError
            If the command needs an existing aggregate and its stream is empty.
        ConcurrencyError
            If the stream moved on between load and append (or a creation command targets an
            existing stream). Nothing is written.
        DomainError
            Raised by the handler when a business rule refuses the command.
        """
        route, agg, stream_id, expected, events, new = self._decide(command, None)
        if not new:
            return []
        private = agg.__pydantic_private__  # agg.version without the property call
        old_version = private["_version"]  # type: ignore[index]
        try:
            recorded = self.store.append(stream_id, new, expected_version=expected)
        except ConcurrencyError:
            self.repository.forget(route.aggregate, stream_id)
            raise
        if len(events) == 1:
            agg.apply(events[0], recorded[0])
        else:
            for event, rec in zip(events, recorded, strict=True):
                agg.apply(event, rec)
        self.repository.after_append(agg, old_version)
        self.last_position = recorded[-1].position
        subs = self.__dict__.get("subscriptions")  # what _published does, one call less
        if subs is not None:
            subs.notify(self.store.head_position, recorded)
        return recorded

    def handle_many(self, commands: Iterable[Command], /) -> list[list[RecordedEvent]]:
        """Run commands in order and append all their events in ONE transaction.

        Each command sees the effects of the commands before it in the batch. The batch is
        all or nothing: if any handler refuses its command or any expected version fails,
        nothing is written and the error is raised. One durable append (a journal fsync, or a
        DuckDB commit with ``journal=False``) then covers the whole batch: the way to the
        highest command throughput on a durable store.

        Returns
        -------
        list of list of RecordedEvent
            The events of each command, in order.
        """
        from allframe_lab.runtime.unit_of_work import UnitOfWork

        uow = UnitOfWork(self)
        spans = []
        try:
            for command in commands:
                start = len(uow._batches)
                uow._decide(command, None)
                spans.append((start, len(uow._batches)))
        except BaseException:
            uow.discard()  # the working aggregates ran ahead of the store: drop them
            raise
        recorded = uow.commit()
        flat = [r for recs in recorded for r in recs]
        if flat:
            self._published(flat)
        return [[r for recs in recorded[a:b] for r in recs] for a, b in spans]

    # -------------------------------------------------------------- command bus
    @cached_property
    def bus(self) -> CommandBus:
        """The command bus (middleware chain: validation, idempotency, retry on conflict)."""
        from allframe_lab.runtime.bus import CommandBus

        return CommandBus(self)

    def dispatch(
        self,
        command: Command | str,
        payload: Mapping[str, Any] | None = None,
        /,
        *,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        """Send a command through the command bus and return the events it recorded.

        Parameters
        ----------
        command : Command or str
            A command object, or a command type name with ``payload``.
        payload : mapping, optional
            The command's fields when ``command`` is a name; validated with every error
            collected.
        idempotency_key : str, optional
            Dispatching the same key again returns the original events and appends nothing;
            the key is stored with the events and survives a restart.
        correlation_id : str, optional
            The request this command belongs to (default: the command's own id).
        causation_id : str, optional
            The id of the message that caused this command.
        metadata : mapping, optional
            Extra metadata copied into every recorded event.

        Returns
        -------
        list of RecordedEvent
            Each event's metadata carries ``command``, ``command_id``, ``correlation_id`` and
            ``causation_id`` (the command id).

        Raises
        ------
        UnknownNameError
            The command is not declared (the message lists the known ones).
        ValidationError
            The payload is invalid; ``.errors`` holds every failure.
        DomainError
            A handler refused the command (``.command`` and ``.stream_id`` say which).
        IdempotencyError
            The key was used before with another command or payload.
        ConcurrencyError
            The stream kept moving after the retries; nothing was written.
        """
        return self.bus.dispatch(command, payload, idempotency_key=idempotency_key,
                                 correlation_id=correlation_id, causation_id=causation_id,
                                 metadata=metadata)

    def dispatch_many(self, commands: Iterable[Any], /) -> list[list[RecordedEvent]]:
        """Send commands through the bus and append all their events in ONE transaction.

        Items are Command objects or ``(name, payload)`` pairs. All or nothing: the first
        failure raises and nothing is written.
        """
        return self.bus.dispatch_many(commands)

    def submit(self, command: Command | str, payload: Mapping[str, Any] | None = None, /,
               **options: Any) -> Future[list[RecordedEvent]]:
        """Queue a command for the bus's worker thread (applied in submission order)."""
        return self.bus.submit(command, payload, **options)

    def _published(self, recorded: list[RecordedEvent] | None = None) -> None:
        """Tell live subscriptions and projections that the log grew (``recorded``: the
        events just appended, which live projections fold without reading them back)."""
        subs = self.__dict__.get("subscriptions")
        if subs is not None:
            subs.notify(self.store.head_position, recorded)

    def _decide(self, command: Command, working: dict[tuple[str, str], Aggregate] | None,
                meta: dict[str, Any] | None = None) -> Any:
        """Route a command, load its aggregate, run its handler, build the new events.

        ``working``: the unit of work's aggregates by (aggregate, stream), or ``None`` to
        decide against the repository's current aggregate (``App.handle``).
        """
        route = self.model.route(command)
        if route.stream_field is None:
            raise CommandError(
                f"command {route.command!r} has no stream field: declare it with "
                f"@model.command({route.command!r}, stream='<field>')"
            )
        stream_id = str(getattr(command, route.stream_field))
        if working is None:
            agg = self.repository.current(route.aggregate, stream_id)
        else:
            key = (route.aggregate, stream_id)
            agg = working.get(key)
            if agg is None:
                agg = working[key] = self.repository.current(route.aggregate, stream_id)
        private = agg.__pydantic_private__  # agg.version without the property call
        version = private["_version"]  # type: ignore[index]
        if route.creates:
            if version:
                raise ConcurrencyError(stream_id, NO_STREAM, version)
            expected: Any = NO_STREAM
            private["_stream_id"] = stream_id  # type: ignore[index]
        else:
            if not version:
                raise AggregateNotFoundError(route.aggregate, stream_id)
            expected = version
        result = getattr(agg, route.method)(command)
        if isinstance(result, Event) and result.__message_type__:  # the common case: one event
            events = [result]
        else:
            events = _as_events(result, route.command)
            if not events:
                return route, agg, stream_id, expected, events, []
        if meta is None:
            command_id = self.ids.new_id_str()
            meta = {"command": route.command, "command_id": command_id,
                    "correlation_id": command_id, "causation_id": command_id}
        now = self.clock.now()
        new_id = self.ids.new_id
        new = []
        for e in events:
            # the serializer call of e.model_dump(mode="json"), without its argument handling
            new.append(make_new_event(e.__message_type__,
                                      e.__pydantic_serializer__.to_python(e, mode="json"),
                                      e.__schema_version__, meta, now, new_id()))
        return route, agg, stream_id, expected, events, new

    # -------------------------------------------------------------- aggregates
    def load(
        self,
        aggregate: str | type[Aggregate],
        stream_id: str,
        /,
        *,
        version: int | None = None,
        as_of: AsOf | datetime | None = None,
    ) -> Aggregate:
        """An aggregate's state: current, at a version, or as of a timestamp/position.

        Parameters
        ----------
        aggregate : str or Aggregate subclass
        stream_id : str
        version : int, optional
            The aggregate at this version of its stream.
        as_of : AsOf or datetime, optional
            ``AsOf(timestamp=t)`` (or a datetime) applies the events that occurred at or before
            ``t``; ``AsOf(position=p)`` those at global positions ``<= p``.

        Returns
        -------
        Aggregate
            A new object; changing it does not affect the App.
        """
        if isinstance(as_of, datetime):
            as_of = AsOf(timestamp=as_of)
        if as_of is not None and as_of.timestamp is not None:
            return self.repository.load(aggregate, stream_id, version=version,
                                        until=as_of.timestamp)
        if as_of is not None and as_of.position is not None:
            recs = self.store.read_stream(stream_id, 1, version)
            version = max((r.version for r in recs if r.position <= as_of.position), default=0)
            if version == 0:
                cls = self.model.aggregate_class(aggregate)
                agg = cls()
                agg._stream_id = stream_id
                return agg
        return self.repository.load(aggregate, stream_id, version=version)

    # -------------------------------------------------------------- projections
    @cached_property
    def projections(self) -> ProjectionRunner:
        """The projection runner (tables in the store's DuckDB database)."""
        from allframe_lab.runtime.projections import ProjectionRunner

        return ProjectionRunner(self.model, self.store, decoder=self.decoder)

    def projection(self, name: str, /) -> ProjectionHandle:
        """A projection by name: ``.df()``, ``.as_of(...)``, ``.rebuild()``."""
        return self.projections[name]

    def sql(self, query: str, params: Any = None) -> pd.DataFrame:
        """Run SQL over the store's tables (``events``, projections) and return a DataFrame."""
        return self.projections.sql(query, params)

    # -------------------------------------------------------------- subscriptions
    @cached_property
    def subscriptions(self) -> Subscriptions:
        """Subscriptions and followed projections (live after each append)."""
        from allframe_lab.runtime.subscriptions import Subscriptions

        return Subscriptions(self)

    def subscribe(self, name: str, handler: Callable[..., Any], /, **options: Any
                  ) -> Subscription:
        """Deliver the log to ``handler(event[, record])``: catch up, then live.

        See :meth:`Subscriptions.subscribe` for the options. Events the handler fails on are
        parked (:meth:`dead_letters`) and delivery goes on.
        """
        return self.subscriptions.subscribe(name, handler, **options)

    def follow(self, projection: str, /, *, background: bool = False) -> None:
        """Keep a projection's table up to date after every append (see :meth:`query`)."""
        self.subscriptions.follow(projection, background=background)

    def dead_letters(self, name: str | None = None, /) -> pd.DataFrame:
        """Parked events (a subscriber's, or all), with error, traceback and attempts."""
        return self.subscriptions.dead_letters(name)

    @property
    def dead_letter_count(self) -> int:
        """The number of parked events (a gauge for metrics)."""
        return self.subscriptions.dead_letter_count

    def retry_dead_letters(self, name: str, /, position: int | None = None
                           ) -> dict[int, str | None]:
        """Deliver parked events again (after a fix); see :meth:`Subscriptions.retry`."""
        return self.subscriptions.retry(name, position)

    def discard_dead_letters(self, name: str, /, position: int | None = None) -> int:
        """Drop parked events of a subscriber; returns how many."""
        return self.subscriptions.discard(name, position)

    def wait_for(self, position: int | None = None, /, *, timeout: float = 5.0
                 ) -> dict[str, int]:
        """Block until live subscriptions and followed projections reach ``position``
        (default: this App's last write). Raises ConsistencyTimeoutError on timeout."""
        return self.subscriptions.wait_for(
            self.last_position if position is None else position, timeout=timeout)

    # -------------------------------------------------------------- sagas
    @cached_property
    def sagas(self) -> SagaRunner:
        """The saga runner: ``app.sagas.start()``, ``.instances()``, ``.fire_due()``."""
        from allframe_lab.runtime.sagas import SagaRunner

        return SagaRunner(self)

    # -------------------------------------------------------------- queries
    @cached_property
    def queries(self) -> QueryBus:
        """The query bus: queries routed by name to handlers that read projections."""
        from allframe_lab.runtime.queries import QueryBus

        return QueryBus(self)

    def query(self, query: Query | str, payload: Mapping[str, Any] | None = None, /, *,
              consistent: bool = True, position: int | None = None,
              timeout: float = 5.0) -> Any:
        """Answer a query with its handler, reading projections.

        Parameters
        ----------
        query : Query or str
            A query object, or a query name with ``payload``.
        consistent : bool, default True
            Read your writes: projections are brought to ``position`` first (default: the
            position of this App's last command).
        position : int, optional
            The log position the read must reflect.
        timeout : float, default 5.0
            Seconds to wait for background projections before
            :class:`~allframe_lab.errors.ConsistencyTimeoutError`.
        """
        return self.queries.ask(query, payload, consistent=consistent, position=position,
                                timeout=timeout)

    def read(self, *, consistent: bool = True, position: int | None = None,
             timeout: float = 5.0) -> ReadSide:
        """The read side: projections as tables, the query DSL and raw SQL."""
        return self.queries.read_side(consistent=consistent, position=position,
                                      timeout=timeout)

    def correlation_chain(self, correlation_id: str, /) -> pd.DataFrame:
        """Every event of one request (a correlation id), in causal order, as a DataFrame.

        Columns: position, stream_id, version, type, command, command_id, causation_id,
        command_causation_id (the event that made a saga send the command), depth (0 for the
        events of the originating command, +1 per saga hop).
        """
        from allframe_lab.runtime.frames import correlation_frame

        return correlation_frame(self.store, correlation_id)

    # -------------------------------------------------------------- time travel
    def as_of(self, *, position: int | None = None,
              timestamp: datetime | str | None = None) -> PointInTime:
        """The whole store as it was at a position or timestamp.

        Examples
        --------
        >>> from allframe_lab import App, Model
        >>> from allframe_lab.store import InMemoryEventStore, NewEvent
        >>> store = InMemoryEventStore()
        >>> _ = store.append("s", [NewEvent("A", {}), NewEvent("B", {})])
        >>> App(Model("m"), store).as_of(position=1).events().type.tolist()
        ['A']
        """
        if isinstance(timestamp, str):
            timestamp = datetime.fromisoformat(timestamp)
        return PointInTime(self, AsOf(position=position, timestamp=timestamp))

    # -------------------------------------------------------------- reading
    def events(self, stream_id: str | None = None, /, *, limit: int | None = None,
               to_position: int | None = None) -> pd.DataFrame:
        """Events as a DataFrame: one stream's, or the log's (first ``limit`` rows)."""
        from allframe_lab.runtime.frames import events_frame

        if stream_id is not None:
            recs = [r for r in self.store.read_stream(stream_id)
                    if to_position is None or r.position <= to_position]
        else:
            recs = []
            for batch in self.store.read_batches(1, to_position,
                                                 batch_size=min(limit or 10_000, 10_000)):
                recs.extend(batch)
                if limit is not None and len(recs) >= limit:
                    break
        return events_frame(recs[:limit] if limit is not None else recs)

    def streams(self, *, prefix: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Streams with their version, positions and time range, as a DataFrame."""
        from allframe_lab.runtime.frames import streams_frame

        return streams_frame(self.store.streams(prefix=prefix, limit=limit))

    def close(self) -> None:
        """Stop background workers and close the store."""
        if "bus" in self.__dict__:
            self.bus.drain()
        if "subscriptions" in self.__dict__:
            self.subscriptions.close()
        self.store.close()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"App(model={self.model.name!r}, store={self.store!r}, clock={self.clock!r}, "
                f"ids={self.ids!r})")


class PointInTime:
    """A read-only view of the store at a past position or timestamp."""

    def __init__(self, app: App, as_of: AsOf) -> None:
        self.app = app
        self.as_of = as_of

    @cached_property
    def position(self) -> int:
        """The global position this view ends at."""
        return self.app.projections.resolve(self.as_of) if self.as_of.timestamp else min(
            self.as_of.position or 0, self.app.store.head_position)

    def load(self, aggregate: str | type[Aggregate], stream_id: str, /) -> Aggregate:
        """An aggregate as it was at this point."""
        return self.app.load(aggregate, stream_id, as_of=AsOf(position=self.position))

    def projection(self, name: str, /) -> pd.DataFrame:
        """A projection as it was at this point."""
        return self.app.projections.as_of(name, AsOf(position=self.position))

    def events(self, stream_id: str | None = None, /, *, limit: int | None = None
               ) -> pd.DataFrame:
        """Events up to this point."""
        return self.app.events(stream_id, limit=limit, to_position=self.position)

    def __repr__(self) -> str:
        return f"<PointInTime position={self.position} ({self.as_of})>"


def _as_events(result: Any, command: str) -> list[Event]:
    if result is None:
        return []
    items: Iterable[Any] = [result] if isinstance(result, Event) else result
    events = list(items)
    for e in events:
        if not isinstance(e, Event) or not e.__message_type__:
            raise CommandError(
                f"the handler of {command!r} returned {e!r}; return declared Event objects "
                "(one, a list, or None)"
            )
    return events
