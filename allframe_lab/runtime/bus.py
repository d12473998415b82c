"""The command bus: routes commands by type name through an ordered middleware chain.

A command travels as a :class:`CommandContext` through the middleware chain (validation,
idempotency, retry on conflict, then any hooks added with :meth:`CommandBus.use`, such as
tracing) to the terminal step, which runs the command's use case or aggregate handler in a
:class:`~allframe_lab.runtime.unit_of_work.UnitOfWork` and appends the events in one
transaction.

A middleware is a callable ``mw(ctx, call_next) -> None``: it may inspect or change the
context, call ``call_next(ctx)`` zero or one time, and look at ``ctx.recorded`` afterwards.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import UnknownNameError
from allframe_lab.model import Command
from allframe_lab.runtime.unit_of_work import UnitOfWork
from allframe_lab.store import RecordedEvent

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.runtime.app import App

__all__ = ["CommandBus", "CommandContext", "Middleware"]

Middleware = Callable[["CommandContext", Callable[["CommandContext"], None]], None]


@dataclass(eq=False)
class CommandContext:
    """One command on its way through the bus.

    Attributes
    ----------
    name : str
        The command's type name.
    command : Command or None
        The command object (``None`` until validation built it from ``payload``).
    payload : mapping or None
        Raw fields, when the command was dispatched by name.
    command_id, correlation_id : str
        The command's id, and the id of the request it belongs to (its own id when it
        starts a request). Every event it causes carries both (``causation_id`` = command id).
    causation_id : str or None
        The id of the message that caused this command (a saga's triggering event).
    idempotency_key : str or None
    metadata : dict
        Extra metadata copied into every event.
    stream_id : str or None
        The stream of the first aggregate the command touched.
    recorded : list of RecordedEvent or None
        The stored events, once committed (or replayed for a repeated idempotency key).
    replayed : bool
        True when the events come from an earlier dispatch with the same idempotency key.
    """

    name: str
    command: Command | None
    payload: Mapping[str, Any] | None
    command_id: str
    correlation_id: str
    causation_id: str | None = None
    idempotency_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    stream_id: str | None = None
    recorded: list[RecordedEvent] | None = None
    replayed: bool = False
    attempt: int = 1
    uow: UnitOfWork | None = None
    state: dict[tuple[str, str], Any] = field(default_factory=dict)
    streams: list[tuple[str, int, int]] = field(default_factory=list)
    app: App | None = field(default=None, repr=False)
    _spans: list[tuple[int, int]] = field(default_factory=list)

    def event_metadata(self, command: Command) -> dict[str, Any]:
        """Metadata for the events a command of this context decides."""
        meta = {"command": command.__message_type__, "command_id": self.command_id,
                "correlation_id": self.correlation_id, "causation_id": self.command_id}
        if self.causation_id is not None:
            meta["command_causation_id"] = self.causation_id
        if self.metadata:
            meta.update(self.metadata)
        return meta

    def reset(self) -> None:
        """Forget a failed attempt's decisions (before a retry)."""
        self.stream_id = None
        self.recorded = None
        self.streams.clear()
        self._spans.clear()

    def __repr__(self) -> str:
        n = None if self.recorded is None else len(self.recorded)
        return (f"<CommandContext {self.name} id={self.command_id} "
                f"correlation={self.correlation_id} stream={self.stream_id!r} recorded={n}>")


class CommandBus:
    """Dispatches commands through the middleware chain to their handlers.

    Parameters
    ----------
    app : App
    middleware : sequence of Middleware, optional
        The chain, outermost first. Defaults to validation, idempotency and retry on conflict
        (see :mod:`allframe_lab.runtime.middleware`).

    Examples
    --------
    >>> from allframe_lab import (App, Aggregate, Command, Event, InMemoryEventStore, Model,
    ...                           SequentialIds, applies, handles)
    >>> m = Model("notes")
    >>> @m.event("Noted")
    ... class Noted(Event):
    ...     text: str
    >>> @m.command("Note", stream="note_id", creates=True)
    ... class Note(Command):
    ...     note_id: str
    ...     text: str
    >>> @m.aggregate("Notepad")
    ... class Notepad(Aggregate):
    ...     @applies("Noted")
    ...     def _noted(self, e):
    ...         pass
    ...     @handles("Note")
    ...     def note(self, c):
    ...         return Noted(text=c.text)
    >>> app = App(m, InMemoryEventStore(), ids=SequentialIds())
    >>> calls = []
    >>> def audit(ctx, call_next):
    ...     calls.append(ctx.name)
    ...     call_next(ctx)
    >>> app.bus.use(audit)
    >>> [r.type for r in app.dispatch("Note", {"note_id": "n1", "text": "hi"})]
    ['Noted']
    >>> calls
    ['Note']
    """

    def __init__(self, app: App, middleware: Sequence[Middleware] | None = None) -> None:
        from allframe_lab.runtime.middleware import default_middleware

        self.app = app
        self.middleware: list[Middleware] = list(
            default_middleware() if middleware is None else middleware)
        self._lock = threading.RLock()
        self._chain: Callable[[CommandContext], None] | None = None
        self._queue: queue.SimpleQueue[Any] | None = None
        self._worker: threading.Thread | None = None

    # -------------------------------------------------------------- configuration
    def use(self, middleware: Middleware, /, *, index: int | None = None) -> None:
        """Add a middleware: at the end of the chain (innermost) or at ``index``."""
        with self._lock:
            if index is None:
                self.middleware.append(middleware)
            else:
                self.middleware.insert(index, middleware)
            self._chain = None

    def _build(self) -> Callable[[CommandContext], None]:
        chain = self._terminal
        for mw in reversed(self.middleware):
            chain = _link(mw, chain)
        self._chain = chain
        return chain

    # -------------------------------------------------------------- dispatching
    def context(
        self,
        command: Command | str,
        payload: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> CommandContext:
        """Build the context a command travels in (ids assigned here)."""
        if isinstance(command, str):
            name, obj = command, None
            if name not in self.app.model.commands:
                raise UnknownNameError("command", name, self.app.model.commands)
        elif isinstance(command, Command):
            name, obj = command.__message_type__, command
            if payload is not None:
                raise TypeError("pass either a Command object or a name and a payload")
            if not name or self.app.model.commands.get(name) is None:
                raise UnknownNameError("command", name or type(command).__name__,
                                       self.app.model.commands)
        else:
            raise TypeError(f"dispatch needs a Command or a command name, got {command!r}")
        command_id = self.app.ids.new_id_str()
        return CommandContext(name, obj, payload, command_id, correlation_id or command_id,
                              causation_id, idempotency_key, dict(metadata or {}),
                              app=self.app)

    def dispatch(self, command: Command | str, payload: Mapping[str, Any] | None = None,
                 **options: Any) -> list[RecordedEvent]:
        """Run one command through the chain; returns the recorded events.

        See :meth:`App.dispatch` for the parameters and errors.
        """
        ctx = self.context(command, payload, **options)
        self.run(ctx)
        return ctx.recorded or []

    def run(self, ctx: CommandContext) -> CommandContext:
        """Run a prepared context through the chain (commits it)."""
        with self._lock:
            (self._chain or self._build())(ctx)
        self.app._published(None if ctx.replayed else ctx.recorded)
        return ctx

    def dispatch_many(self, commands: Iterable[Command | CommandContext | tuple[str, Mapping[
            str, Any]]]) -> list[list[RecordedEvent]]:
        """Run commands in order through the chain and append all their events in ONE
        transaction. All or nothing: any failure raises and writes nothing."""
        from allframe_lab.runtime._decode import gc_paused

        with self._lock, gc_paused():  # many short-lived objects: the cyclic GC only costs
            uow = UnitOfWork(self.app)
            contexts = []
            chain = self._chain or self._build()
            for item in commands:
                if isinstance(item, CommandContext):
                    ctx = item
                elif isinstance(item, tuple):
                    ctx = self.context(item[0], item[1])
                else:
                    ctx = self.context(item)
                ctx.uow = uow
                try:
                    chain(ctx)
                except BaseException:
                    uow.discard()
                    raise
                contexts.append(ctx)
            state: dict[tuple[str, str], Any] = {}
            for ctx in contexts:
                state.update(ctx.state)
            recorded = uow.commit(_resolve(state))
            first: dict[str, int] = {}  # idempotency key -> index of its first command
            out: list[list[RecordedEvent]] = []
            for i, ctx in enumerate(contexts):
                key = ctx.idempotency_key
                if not ctx.replayed:
                    out.append(_collect(ctx, recorded))
                    if key is not None:
                        first.setdefault(key, i)
                elif key in first:  # a key repeated inside this batch: the first one's events
                    out.append(list(out[first[key]]))
                else:
                    out.append(ctx.recorded or [])
            for ctx, recs in zip(contexts, out, strict=True):
                ctx.recorded = recs
        self.app._published([r for recs in recorded for r in recs])
        return out

    def submit(self, command: Command | str, payload: Mapping[str, Any] | None = None,
               **options: Any) -> Future[list[RecordedEvent]]:
        """Queue a command; it runs on the bus's worker thread in submission order.

        Returns
        -------
        concurrent.futures.Future
            Resolves to the recorded events, or to the command's error.
        """
        ctx = self.context(command, payload, **options)
        fut: Future[list[RecordedEvent]] = Future()
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._queue = queue.SimpleQueue()
                self._worker = threading.Thread(target=self._work, name="allframe-bus",
                                                daemon=True)
                self._worker.start()
            assert self._queue is not None
            self._queue.put((ctx, fut))
        return fut

    def _work(self) -> None:
        assert self._queue is not None
        q = self._queue
        while True:
            ctx, fut = q.get()
            if ctx is None:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                self.run(ctx)
            except BaseException as exc:  # handed to the caller through the future
                fut.set_exception(exc)
            else:
                fut.set_result(ctx.recorded or [])

    def drain(self) -> None:
        """Wait until every submitted command has run."""
        with self._lock:
            worker, q = self._worker, self._queue
            self._worker = None
        if worker is not None and q is not None:
            q.put((None, None))
            worker.join()

    # -------------------------------------------------------------- terminal step
    def _terminal(self, ctx: CommandContext) -> None:
        if ctx.command is None:  # no validation middleware in the chain
            from allframe_lab.model.validation import validate_message

            ctx.command = validate_message(self.app.model.commands[ctx.name], ctx.payload or {})
        if ctx.uow is not None:  # inside dispatch_many: the batch commits at the end
            ctx.uow.run(ctx)
            return
        uow = UnitOfWork(self.app)
        try:
            uow.run(ctx)
        except BaseException:
            uow.discard()
            raise
        recorded = uow.commit(_resolve(ctx.state))
        ctx.recorded = _collect(ctx, recorded)

    def __repr__(self) -> str:
        names = [getattr(m, "__name__", type(m).__name__) for m in self.middleware]
        return f"CommandBus(middleware={names})"


def _link(mw: Middleware, nxt: Callable[[CommandContext], None]
          ) -> Callable[[CommandContext], None]:
    def step(ctx: CommandContext) -> None:
        mw(ctx, nxt)

    return step


def _resolve(state: Mapping[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    """State values may be callables computed at commit time (after the decisions)."""
    return {k: (v() if callable(v) else v) for k, v in state.items()}


def _collect(ctx: CommandContext, recorded: list[list[RecordedEvent]]) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    for start, end in ctx._spans:
        for recs in recorded[start:end]:
            out.extend(recs)
    return out
