"""Subscriptions: catch-up from a durable checkpoint, then live delivery after each append.

A subscription delivers events, in position order, to a handler. It first catches up from its
checkpoint (kept in the store's runtime state, so a restarted process resumes where it
stopped), then the App notifies it in-process after every append: no polling loop.

Delivery is **at least once**: the checkpoint is written after each batch, so a crash in the
middle of a batch delivers that batch's events again. DuckDB projections followed with
:meth:`Subscriptions.follow` write their checkpoint in the same transaction as their rows, so
they are effectively exactly once.

When a handler raises, the event is **parked** (see :mod:`~allframe_lab.runtime.dead_letters`)
in the same transaction as the checkpoint, and delivery continues with the next event.
"""

from __future__ import annotations

import inspect
import threading
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ConsistencyTimeoutError, UnknownNameError
from allframe_lab.runtime import dead_letters
from allframe_lab.runtime._decode import iter_decoded
from allframe_lab.runtime.projections import ParkedEventWarning

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.runtime.app import App

__all__ = ["CHECKPOINTS", "Subscription", "Subscriptions"]

#: Runtime-state namespace of subscription checkpoints.
CHECKPOINTS = "subscription_checkpoints"
#: At most this many appended records wait for the background worker in memory.
_FRESH_MAX = 10_000


@dataclass(eq=False)
class Subscription:
    """A named handler of the log, with its checkpoint.

    Attributes
    ----------
    name : str
    handler : callable
        ``handler(event)`` or ``handler(event, record)``.
    types : frozenset of str or None
        Only these event types are delivered (the checkpoint still moves past others).
    background : bool
        Deliver on a worker thread instead of in the appending thread.
    """

    name: str
    handler: Callable[..., Any]
    types: frozenset[str] | None = None
    background: bool = False
    batch_size: int = 1_000
    _with_record: bool = field(default=False, repr=False)

    @property
    def subscriber(self) -> str:
        return f"subscription:{self.name}"


class Subscriptions:
    """The App's subscriptions and followed projections (``app.subscriptions``).

    Examples
    --------
    >>> from allframe_lab import App, GenericEvent, InMemoryEventStore, Model
    >>> from allframe_lab.store import NewEvent
    >>> app = App(Model("m", fallback_event=GenericEvent), InMemoryEventStore())
    >>> seen = []
    >>> _ = app.subscribe("audit", lambda e, r: seen.append(r.position))
    >>> _ = app.store.append("s", [NewEvent("A", {})]); app._published()
    >>> seen, app.subscriptions.checkpoint("audit")
    ([1], 1)
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self._subs: dict[str, Subscription] = {}
        self._followed: dict[str, bool] = {}  # projection name -> background
        self._cond = threading.Condition(threading.RLock())
        # Deliveries hold a lock per subscriber (one for all projections: they share the
        # runner), never the condition's: a slow handler on the background thread must not
        # block appends (notify), other subscribers or readers (wait_for).
        self._delivering: dict[str, threading.RLock] = {}
        self._worker: threading.Thread | None = None
        self._wanted = 0
        # records appended since the worker's last round (contiguous; None: too many or a
        # gap), handed to followed projections so they need not read them back from the store
        self._fresh: list[Any] | None = []
        self._stop = False
        self._errors: list[BaseException] = []
        self._local = threading.local()
        self._hooks: list[Callable[[], None]] = []  # run after each delivery round (deadlines)

    # -------------------------------------------------------------- registration
    def subscribe(
        self,
        name: str,
        handler: Callable[..., Any],
        /,
        *,
        types: Collection[str] | None = None,
        from_position: int | None = None,
        background: bool = False,
        catch_up: bool = True,
    ) -> Subscription:
        """Register a handler and catch it up from its checkpoint.

        Parameters
        ----------
        name : str
            Stable name: the checkpoint and parked events are stored under it.
        handler : callable
            ``handler(event)`` or ``handler(event, record)``; exceptions park the event.
        types : collection of str, optional
            Deliver only these event types.
        from_position : int, optional
            Start after this position when the subscription has no checkpoint yet
            (default 0: the whole log; ``app.store.head_position`` for "from now on").
        background : bool, default False
            Deliver on a worker thread (the appending thread does not wait).
        catch_up : bool, default True
            Deliver the backlog now.
        """
        params = [p for p in inspect.signature(handler).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        sub = Subscription(name, handler, frozenset(types) if types is not None else None,
                           background, _with_record=len(params) >= 2)
        store = self.app.store
        if from_position is not None and store.get_state(CHECKPOINTS, name) is None:
            store.put_state(CHECKPOINTS, {name: from_position})
        with self._cond:
            self._subs[name] = sub
        if background:
            self._ensure_worker()
        if catch_up:
            self.notify(store.head_position)
        return sub

    def unsubscribe(self, name: str, /) -> None:
        """Stop delivering to a subscription (its checkpoint is kept)."""
        with self._cond:
            self._subs.pop(name, None)
            self._followed.pop(name, None)

    def follow(self, projection: str, /, *, background: bool = False) -> None:
        """Keep a projection's table live: catch it up after every append.

        Its checkpoint is written in the same transaction as its rows; events its handlers
        fail on are parked (``app.dead_letters()``).
        """
        self.app.model.projection_decl(projection)
        with self._cond:
            self._followed[projection] = background
        if background:
            self._ensure_worker()
            self.notify(self.app.store.head_position)
        else:
            self._catch_up_projection(projection)

    def __contains__(self, name: object) -> bool:
        return name in self._subs or name in self._followed

    def __iter__(self) -> Any:
        return iter([*self._subs, *self._followed])

    # -------------------------------------------------------------- delivery
    def notify(self, head: int, recorded: list[Any] | None = None) -> None:
        """Called by the App after each append: deliver to live subscribers.

        A handler that appends (a saga sending a command) triggers another notification while
        delivery is running; it is folded into the running delivery, which goes round again
        until every subscriber has seen the new head.
        """
        with self._cond:
            background = (any(s.background for s in self._subs.values())
                          or any(self._followed.values()))
            if background:
                self._wanted = max(self._wanted, head)
                self._keep_fresh(recorded)
                self._cond.notify_all()
        if self._local.__dict__.get("delivering"):
            self._local.again = True
            return
        self._local.delivering = True
        try:
            while True:
                self._local.again = False
                with self._cond:
                    subs = list(self._subs.values())
                    followed = dict(self._followed)
                for sub in subs:
                    if not sub.background:
                        self._deliver(sub)
                for name, bg in followed.items():
                    if not bg:
                        self._catch_up_projection(name, recorded)
                recorded = None  # later rounds read what handlers appended from the store
                for hook in list(self._hooks):
                    hook()
                if not self._local.again:
                    return
        finally:
            self._local.delivering = False

    def catch_up(self, name: str | None = None) -> dict[str, int]:
        """Deliver the backlog now (to one subscriber or all); returns checkpoints."""
        names = [name] if name is not None else list(self)
        for n in names:
            if n not in self._subs and n not in self._followed \
                    and n not in self.app.model.projections:
                raise UnknownNameError("subscription", n, list(self))
        if self._local.__dict__.get("delivering"):  # called from a handler: next round does it
            self._local.again = True
            return {n: self.checkpoint(n) for n in names}
        self._local.delivering = True
        try:
            out = {}
            for n in names:
                if n in self._subs:
                    out[n] = self._deliver(self._subs[n])
                else:
                    out[n] = self._catch_up_projection(n)
        finally:
            self._local.delivering = False
        if self._local.__dict__.get("again"):
            self.notify(self.app.store.head_position)
        return out

    def checkpoint(self, name: str, /) -> int:
        """The last position a subscription (or projection) has processed."""
        if name in self.app.model.projections and name not in self._subs:
            return self.app.projections.checkpoint(name)
        return int(self.app.store.get_state(CHECKPOINTS, name) or 0)

    def _deliver(self, sub: Subscription) -> int:
        store = self.app.store
        decoder = self.app.decoder
        with self._delivery_lock(sub.subscriber):  # one delivery at a time keeps order
            checkpoint = int(store.get_state(CHECKPOINTS, sub.name) or 0)
            head = store.head_position
            if checkpoint >= head:
                return checkpoint
            parked = 0
            for batch in iter_decoded(store, decoder, checkpoint + 1, head,
                                      batch_size=sub.batch_size):
                writes: dict[tuple[str, str], Any] = {}
                for event, rec in batch:
                    if sub.types is not None and rec.type not in sub.types:
                        continue
                    try:
                        if sub._with_record:
                            sub.handler(event, rec)
                        else:
                            sub.handler(event)
                    except Exception as exc:
                        rec_ = dead_letters.park_record(sub.subscriber, rec, exc)
                        writes[(dead_letters.NAMESPACE,
                                dead_letters.key(sub.subscriber, rec.position))] = rec_
                        parked += 1
                checkpoint = batch[-1][1].position
                writes[(CHECKPOINTS, sub.name)] = checkpoint
                store.append_many([], state=writes)
            if parked:
                warnings.warn(
                    f"subscription {sub.name!r} parked {parked} event(s) its handler failed "
                    "on; see app.dead_letters() and retry them after fixing the handler",
                    ParkedEventWarning, stacklevel=3)
        with self._cond:
            self._cond.notify_all()
        return checkpoint

    def _keep_fresh(self, recorded: list[Any] | None) -> None:
        """Add an append's records to those the worker hands on (call holding the lock)."""
        fresh = self._fresh
        if fresh is None or not recorded:
            return
        if fresh and fresh[-1].position + 1 != recorded[0].position:
            self._fresh = None  # a gap (someone else appended): the worker reads the store
        elif len(fresh) + len(recorded) > _FRESH_MAX:
            self._fresh = None
        else:
            fresh.extend(recorded)

    def _delivery_lock(self, key: str) -> threading.RLock:
        with self._cond:
            lock = self._delivering.get(key)
            if lock is None:
                lock = self._delivering[key] = threading.RLock()
            return lock

    def _catch_up_projection(self, name: str, recorded: list[Any] | None = None) -> int:
        runner = self.app.projections
        with self._delivery_lock("projections"):
            runner.fresh = recorded
            try:
                out = runner.catch_up(name)[name]
            finally:
                runner.fresh = None
        with self._cond:
            self._cond.notify_all()
        return out

    # -------------------------------------------------------------- background worker
    def _ensure_worker(self) -> None:
        with self._cond:
            if self._worker is not None and self._worker.is_alive():
                return
            self._stop = False
            self._worker = threading.Thread(target=self._run, name="allframe-subscriptions",
                                            daemon=True)
            self._worker.start()

    def _run(self) -> None:
        done = 0
        while True:
            with self._cond:
                while not self._stop and self._wanted <= done:
                    self._cond.wait()
                if self._stop:
                    return
                target = self._wanted
                subs = [s for s in self._subs.values() if s.background]
                followed = [n for n, bg in self._followed.items() if bg]
                fresh, self._fresh = self._fresh, []
            try:
                for sub in subs:
                    self._deliver(sub)
                for name in followed:  # the runner uses `fresh` only if it is exactly the gap
                    self._catch_up_projection(name, fresh or None)
            except BaseException as exc:  # kept for wait_for() to report
                self._errors.append(exc)
            done = target

    def close(self) -> None:
        """Stop the background worker (pending deliveries are dropped; checkpoints stay)."""
        with self._cond:
            self._stop = True
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout=5)

    # -------------------------------------------------------------- consistency
    def wait_for(self, position: int, *, names: Collection[str] | None = None,
                 timeout: float = 5.0) -> dict[str, int]:
        """Block until the given subscribers (default: all live ones) reach ``position``.

        Raises
        ------
        ConsistencyTimeoutError
            If they are still behind after ``timeout`` seconds.
        """
        wanted = list(names) if names is not None else list(self)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                reached = {n: self.checkpoint(n) for n in wanted}
                if all(v >= position for v in reached.values()):
                    return reached
                if self._errors:
                    raise self._errors.pop(0)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConsistencyTimeoutError(position, reached, timeout)
                self._cond.wait(min(left, 0.05))

    # -------------------------------------------------------------- dead letters
    def dead_letters(self, name: str | None = None) -> pd.DataFrame:
        """Parked events (of one subscriber, or all) as a DataFrame."""
        return dead_letters.parked_frame(self.app.store, self._subscriber(name))

    @property
    def dead_letter_count(self) -> int:
        """How many events are parked, over all subscribers (for metrics)."""
        return len(self.app.store.scan_state(dead_letters.NAMESPACE))

    def retry(self, name: str, /, position: int | None = None) -> dict[int, str | None]:
        """Deliver parked events of ``name`` again (one position, or all of them).

        Returns position -> ``None`` (delivered, removed from the dead letters) or the new
        error (still parked, ``attempts`` increased).
        """
        if name in self.app.model.projections and name not in self._subs:
            return self.app.projections.retry_parked(name, position)
        sub = self._subs.get(name)
        if sub is None:
            raise UnknownNameError("subscription", name, list(self))
        store = self.app.store
        out: dict[int, str | None] = {}
        writes: dict[tuple[str, str], Any] = {}
        for p in dead_letters.parked(store, sub.subscriber):
            if position is not None and p.position != position:
                continue
            rec = next(iter(store.read_all(p.position, p.position)))
            k = (dead_letters.NAMESPACE, dead_letters.key(sub.subscriber, p.position))
            try:
                event = self.app.decoder.decode(rec)
                sub.handler(event, rec) if sub._with_record else sub.handler(event)
            except Exception as exc:
                writes[k] = dead_letters.park_record(sub.subscriber, rec, exc, p.attempts + 1)
                out[p.position] = f"{type(exc).__name__}: {exc}"
            else:
                writes[k] = None
                out[p.position] = None
            store.append_many([], state=writes)  # one at a time: a crash repeats at most one
            writes = {}
        return out

    def discard(self, name: str, /, position: int | None = None) -> int:
        """Drop parked events of ``name`` (one position, or all); returns how many."""
        sub = self._subscriber(name)
        assert sub is not None
        keys = [dead_letters.key(p.subscriber, p.position)
                for p in dead_letters.parked(self.app.store, sub)
                if position is None or p.position == position]
        if keys:
            self.app.store.put_state(dead_letters.NAMESPACE, dict.fromkeys(keys))
        return len(keys)

    def _subscriber(self, name: str | None) -> str | None:
        if name is None:
            return None
        if name in self._subs:
            return self._subs[name].subscriber
        if name in self.app.model.projections:
            return f"projection:{name}"
        return f"subscription:{name}"

    def __repr__(self) -> str:
        return (f"Subscriptions(subscriptions={list(self._subs)}, "
                f"followed={list(self._followed)})")
