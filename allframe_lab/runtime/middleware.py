"""The command bus's built-in middleware: validation, idempotency, retry on conflict.

Each is a callable ``mw(ctx, call_next)``; :func:`default_middleware` returns the standard
chain. Tracing and resilience plug in the same way (``app.bus.use(mw)``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ConcurrencyError, IdempotencyError
from allframe_lab.model.validation import validate_message

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.runtime.bus import CommandContext, Middleware

__all__ = [
    "IDEMPOTENCY_NAMESPACE",
    "IdempotencyMiddleware",
    "RetryOnConflict",
    "ValidationMiddleware",
    "default_middleware",
    "payload_hash",
]

#: Runtime-state namespace of idempotency records (one per key, kept with the events).
IDEMPOTENCY_NAMESPACE = "idempotency"

Next = Callable[["CommandContext"], None]


class ValidationMiddleware:
    """Build the command from its payload, collecting EVERY failure into one
    :class:`~allframe_lab.errors.ValidationError` (commands built in Python were validated
    when constructed)."""

    __name__ = "validation"

    def __call__(self, ctx: CommandContext, call_next: Next) -> None:
        if ctx.command is None:
            from allframe_lab.errors import UnknownNameError

            cls = ctx.app.model.commands.get(ctx.name)
            if cls is None:
                raise UnknownNameError("command", ctx.name, ctx.app.model.commands)
            ctx.command = validate_message(cls, ctx.payload or {})
        call_next(ctx)

    def __repr__(self) -> str:
        return "ValidationMiddleware()"


class IdempotencyMiddleware:
    """Dispatching an idempotency key again returns the original events and appends nothing.

    The key's record (command type, payload hash, and the stream versions it wrote) is stored
    in the event store in the same transaction as the events, so it survives a restart and
    never disagrees with the log. Reusing a key with another command or payload raises
    :class:`~allframe_lab.errors.IdempotencyError`.
    """

    __name__ = "idempotency"

    def __call__(self, ctx: CommandContext, call_next: Next) -> None:
        key = ctx.idempotency_key
        if key is None:
            call_next(ctx)
            return
        assert ctx.command is not None
        digest = payload_hash(ctx.name, ctx.command.model_dump(mode="json"))
        store = ctx.app.store
        record = store.get_state(IDEMPOTENCY_NAMESPACE, key)
        if record is None and ctx.uow is not None:  # an earlier command of the same batch
            record = ctx.uow.state.get((IDEMPOTENCY_NAMESPACE, key))
        if record is not None:
            if callable(record):
                record = record()
            if record["command"] != ctx.name or record["hash"] != digest:
                raise IdempotencyError(
                    key, f"for {record['command']} with a different payload"
                    if record["command"] == ctx.name else f"for command {record['command']}")
            ctx.recorded = [r for sid, lo, hi in record["streams"]
                            for r in store.read_stream(sid, lo, hi)]
            ctx.replayed = True
            return

        def value() -> dict[str, Any]:
            return {"command": ctx.name, "hash": digest, "command_id": ctx.command_id,
                    "correlation_id": ctx.correlation_id,
                    "streams": [list(s) for s in ctx.streams]}

        ctx.state[(IDEMPOTENCY_NAMESPACE, key)] = value
        if ctx.uow is not None:
            ctx.uow.state[(IDEMPOTENCY_NAMESPACE, key)] = value
        call_next(ctx)

    def __repr__(self) -> str:
        return "IdempotencyMiddleware()"


class RetryOnConflict:
    """Retry a command whose append lost an optimistic-concurrency race.

    The aggregate is reloaded and the handler decides again, against the new state; after
    ``attempts`` tries the :class:`~allframe_lab.errors.ConcurrencyError` is raised. Commands
    inside ``dispatch_many`` are not retried one by one (the batch is all or nothing).
    """

    __name__ = "retry_on_conflict"

    def __init__(self, attempts: int = 3) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.attempts = attempts

    def __call__(self, ctx: CommandContext, call_next: Next) -> None:
        while True:
            try:
                call_next(ctx)
                return
            except ConcurrencyError:
                if ctx.uow is not None or ctx.attempt >= self.attempts:
                    raise
                ctx.attempt += 1
                ctx.reset()

    def __repr__(self) -> str:
        return f"RetryOnConflict(attempts={self.attempts})"


def default_middleware() -> list[Middleware]:
    """The standard chain: validation, idempotency, retry on conflict (outermost first)."""
    return [ValidationMiddleware(), IdempotencyMiddleware(), RetryOnConflict()]


def payload_hash(name: str, payload: Any) -> str:
    """A stable digest of a command's type and payload (sorted-key JSON, SHA-256)."""
    text = json.dumps([name, payload], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()

