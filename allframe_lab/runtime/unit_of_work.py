"""The unit of work: commands decided against working aggregates, appended in ONE transaction.

The command bus runs every command (or batch of commands) through a unit of work. Aggregates
loaded in it are private working copies until the commit succeeds, so a refused command, a
failed expected version or a crash leaves the store and the App's cache as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import DomainError
from allframe_lab.model import Aggregate, Command
from allframe_lab.store import RecordedEvent

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.runtime.app import App
    from allframe_lab.runtime.bus import CommandContext

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """Collects the decisions of one or more commands and appends them together.

    Use cases receive it as their second argument.

    Attributes
    ----------
    context : CommandContext
        The command being handled (its ids end up in every event's metadata).
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._working: dict[tuple[str, str], Aggregate] = {}
        self._before: dict[tuple[str, str], int] = {}
        self._batches: list[tuple[str, list[Any], Any]] = []
        self.state: dict[tuple[str, str], Any] = {}
        self.context: CommandContext | None = None

    # -------------------------------------------------------------- for use cases
    def handle(self, command: Command, /) -> list[Any]:
        """Decide an aggregate command inside this unit of work; returns the new events.

        The events are appended when the unit of work commits, together with everything else
        it decided; later commands in it see their effects.
        """
        if self.context is None:
            raise RuntimeError("UnitOfWork.handle is only valid while a command is running")
        return self._decide(command, self.context)

    def load(self, aggregate: str | type[Aggregate], stream_id: str, /) -> Aggregate:
        """An aggregate as this unit of work sees it (including its undecided changes)."""
        cls = self.app.model.aggregate_class(aggregate)
        agg = self._working.get((cls.__aggregate_type__, stream_id))
        if agg is not None:
            return agg
        return self.app.repository.load(cls, stream_id)

    # -------------------------------------------------------------- for the bus
    def run(self, ctx: CommandContext) -> None:
        """Route the context's command to its use case or aggregate and record the decision."""
        self.context = ctx
        try:
            use_case = self.app.model.use_cases.get(ctx.name)
            if use_case is not None:
                start = len(self._batches)
                use_case(ctx.command, self)
                ctx._spans.append((start, len(self._batches)))
            else:
                start = len(self._batches)
                self._decide(ctx.command, ctx)
                ctx._spans.append((start, len(self._batches)))
        except DomainError as exc:
            if exc.command is None:
                exc.command = ctx.name
            if exc.stream_id is None:
                exc.stream_id = ctx.stream_id or _stream_of(self.app, ctx.command)
            raise
        finally:
            self.context = None

    def _decide(self, command: Command, ctx: CommandContext | None) -> list[Any]:
        """Decide one aggregate command against the working aggregates (``ctx``: the bus's
        context, whose ids go into the metadata; ``None`` for ``App.handle_many``)."""
        try:
            route, agg, stream_id, expected, events, new = self.app._decide(
                command, self._working, ctx.event_metadata(command) if ctx else None)
        except DomainError as exc:  # name the stream that refused (a use case touches several)
            if exc.stream_id is None:
                exc.stream_id = _stream_of(self.app, command)
            raise
        if ctx is not None and ctx.stream_id is None:
            ctx.stream_id = stream_id
        key = (route.aggregate, stream_id)
        self._before.setdefault(key, agg.version)
        if new:
            self._batches.append((stream_id, new, expected))
            if ctx is not None:
                ctx.streams.append((stream_id, agg.version + 1, agg.version + len(new)))
            for event in events:  # later commands of the batch see these
                agg.apply(event)
        return events

    def commit(self, state: Mapping[tuple[str, str], Any] | None = None
               ) -> list[list[RecordedEvent]]:
        """Append every decided batch (and runtime state) in one transaction."""
        writes = {**self.state, **(state or {})}
        try:
            recorded = self.app.store.append_many(self._batches, state=writes or None)
        except BaseException:
            self.discard()
            raise
        for key, agg in self._working.items():  # versions match the store: snapshot if due
            self.app.repository.after_append(agg, self._before.get(key, agg.version))
        flat = [r for recs in recorded for r in recs]
        if flat:
            self.app.last_position = flat[-1].position
        return recorded

    def discard(self) -> None:
        """Forget the working aggregates: their state ran ahead of the store."""
        for agg_name, stream_id in self._working:
            self.app.repository.forget(agg_name, stream_id)
        self._working.clear()

    def __repr__(self) -> str:
        return (f"<UnitOfWork aggregates={len(self._working)} "
                f"batches={len(self._batches)}>")


def _stream_of(app: App, command: Command | None) -> str | None:
    if command is None or command.__message_type__ in app.model.use_cases:
        return None
    field = app.model.route(command).stream_field
    return None if field is None else str(getattr(command, field))
