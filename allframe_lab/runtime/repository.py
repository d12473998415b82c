"""The repository: loads aggregates (snapshot + tail, or a full replay) and takes snapshots.

Snapshot policy: a snapshot is taken after an append that crosses a multiple of
``snapshot_every``, and after a load that replayed more than ``snapshot_after_replay`` events
(an aggregate's own settings win over the repository's). A snapshot is used only if it was
taken from the same state schema: same aggregate type, same declared ``state_version`` and
same fingerprint of the state's JSON Schema. Otherwise it is ignored, the stream is replayed
in full, and a new snapshot replaces it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from allframe_lab.model import Aggregate, Model
from allframe_lab.model.aggregate import applier, apply_fns, blank, folding
from allframe_lab.model.versioning import state_fingerprint
from allframe_lab.runtime._decode import EventDecoder, gc_paused, stream_chunks
from allframe_lab.runtime.clock import Clock
from allframe_lab.store import EventStore, Snapshot

__all__ = ["DEFAULT_CACHE_SIZE", "Repository"]

#: Aggregates of each type kept in memory between commands (see ``Repository``).
DEFAULT_CACHE_SIZE = 1_000


class Repository:
    """Loads aggregates from a store and keeps the latest ones in memory.

    Parameters
    ----------
    model : Model
    store : EventStore
    snapshot_every : int, optional
        Default snapshot interval (events) for aggregates that do not declare their own.
        ``None`` takes no snapshots on append.
    snapshot_after_replay : int, optional
        Default replay threshold: a load that replays more than this many events takes a
        snapshot afterwards. ``None`` takes none on load (except to rebuild an outdated one).
    aggregate_cache_size : int or None, default 1000
        How many aggregates of each aggregate type stay in memory between commands, the most
        recently used first (an LRU cache, like ``eventsourcing``'s ``AGGREGATE_CACHE_MAXSIZE``).
        An aggregate that dropped out is loaded again (snapshot + tail) when a command needs
        it. ``0`` keeps none; ``None`` keeps every aggregate ever loaded (memory grows with
        the number of streams).

    Raises
    ------
    ValueError
        If ``aggregate_cache_size`` is not ``None`` or an int >= 0.

    Examples
    --------
    >>> from allframe_lab import Model, Event, Aggregate, applies
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> m = Model("counter")
    >>> @m.event("Added")
    ... class Added(Event):
    ...     n: int
    >>> @m.aggregate("Counter", snapshot_after_replay=100)
    ... class Counter(Aggregate):
    ...     total: int = 0
    ...     @applies("Added")
    ...     def _added(self, e):
    ...         self.total += e.n
    >>> store = InMemoryEventStore()
    >>> _ = store.append("c1", [NewEvent("Added", {"n": 1})] * 150)
    >>> repo = Repository(m, store)
    >>> repo.load("Counter", "c1").total, store.load_snapshot("c1").version
    (150, 150)

    With room for one aggregate, the one used last stays in memory:

    >>> _ = store.append("c2", [NewEvent("Added", {"n": 2})])
    >>> lru = Repository(m, store, aggregate_cache_size=1)
    >>> lru.current("Counter", "c1").total, lru.current("Counter", "c2").total, lru
    (150, 2, Repository(cached=1, aggregate_cache_size=1, snapshot_every=None, ...))
    """

    def __init__(self, model: Model, store: EventStore, *, snapshot_every: int | None = None,
                 snapshot_after_replay: int | None = None,
                 decoder: EventDecoder | None = None, clock: Clock | None = None,
                 aggregate_cache_size: int | None = DEFAULT_CACHE_SIZE) -> None:
        if aggregate_cache_size is not None and (
                type(aggregate_cache_size) is not int or aggregate_cache_size < 0):
            raise ValueError(
                f"aggregate_cache_size must be an int >= 0 (0: keep no aggregate in memory) "
                f"or None (keep every one), got {aggregate_cache_size!r}")
        self.model = model
        self.store = store
        self.snapshot_every = snapshot_every
        self.snapshot_after_replay = snapshot_after_replay
        self.clock = clock  # stamps snapshots (the App's clock); None: the store's time
        self.decoder = decoder or EventDecoder(model)
        # aggregate type -> stream -> aggregate, least recently used first (nested: no key
        # tuple per stream to allocate and for the garbage collector to scan)
        self._cache: dict[str, OrderedDict[str, Aggregate]] = {}
        self.aggregate_cache_size = aggregate_cache_size
        # the model's live aggregate classes by name (a read-only view: every command looks
        # its class up here, without a call through Model.aggregate_class)
        self._classes = model.aggregates
        self._snapshot_every_of = model.snapshot_every

    def load(
        self,
        aggregate: str | type[Aggregate],
        stream_id: str,
        /,
        *,
        version: int | None = None,
        until: datetime | None = None,
        use_snapshots: bool = True,
    ) -> Aggregate:
        """Rebuild an aggregate from its stream.

        Parameters
        ----------
        aggregate : str or Aggregate subclass
        stream_id : str
        version : int, optional
            Stop at this version (time travel by version).
        until : datetime, optional
            Apply only events whose ``occurred_at`` is at or before this time.
        use_snapshots : bool, default True
            Start from the latest usable snapshot at or below ``version``.

        Returns
        -------
        Aggregate
            A new object (version 0 if the stream does not exist).

        Notes
        -----
        Without ``until``, a snapshot is taken after the load if it replayed more than the
        replay threshold, or if the latest snapshot was ignored because the state schema
        changed (see the module docstring).
        """
        cls = self.model.aggregate_class(aggregate)
        agg: Aggregate | None = None
        outdated = False
        if use_snapshots and until is None:
            snap = self.store.load_snapshot(stream_id, max_version=version)
            if snap is not None:
                agg = self._from_snapshot(cls, snap)
                outdated = agg is None
        if agg is None:
            agg = blank(cls, stream_id)
        else:
            agg._stream_id = stream_id
        replayed = self._fold(agg, stream_id, agg.version + 1, version, until)
        if until is None and use_snapshots and agg.version and (
                outdated or self._replay_due(agg, replayed)):
            self.take_snapshot(agg)
        return agg

    @staticmethod
    def _from_snapshot(cls: type[Aggregate], snap: Snapshot) -> Aggregate | None:
        """The aggregate restored from a snapshot, or ``None`` if the snapshot was taken from
        another state schema (type, declared state version or schema fingerprint differ)."""
        if (snap.aggregate_type != cls.__aggregate_type__
                or snap.state_version != cls.__state_version__
                or (snap.schema_fingerprint is not None
                    and snap.schema_fingerprint != state_fingerprint(cls))):
            return None
        try:
            agg = cls.model_validate(snap.state)
        except ValueError:  # an old snapshot (no fingerprint) that no longer fits the class
            return None
        agg._version = snap.version
        return agg

    def _replay_due(self, agg: Aggregate, replayed: int) -> bool:
        after = (self.model.snapshot_after_replay(agg.__aggregate_type__)
                 or self.snapshot_after_replay)
        return bool(after) and replayed > after  # type: ignore[operator]

    def _fold(self, agg: Aggregate, stream_id: str, from_version: int, to_version: int | None,
              until: datetime | None) -> int:
        """Apply the stream's events from ``from_version``; returns how many were read."""
        # The collector stays paused until the decoded events are freed (when _apply returns):
        # resumed earlier, its next young-generation pass would scan every one of them.
        with gc_paused():
            return self._apply(agg, stream_id, from_version, to_version, until)

    def _apply(self, agg: Aggregate, stream_id: str, from_version: int, to_version: int | None,
               until: datetime | None) -> int:
        n, chunks, records = stream_chunks(self.store, self.decoder, stream_id, from_version,
                                           to_version)
        if not n:
            return 0
        if until is not None:
            events = [event for chunk in chunks for event in chunk]
            with folding(agg):
                last = _apply_until(agg, events, records, until)
            if last >= 0:
                agg._version = records[last].version
                agg._stream_id = stream_id
            return n
        cls = type(agg)
        fns = apply_fns(cls)
        # the handler of each event class, looked up once (a class has one type name)
        handlers: dict[type, tuple[Callable[..., Any], bool]] = {}
        offset = 0
        with folding(agg):
            for events in chunks:  # each chunk applied while its events are in the caches
                kinds = set(map(type, events))
                for kind in kinds - handlers.keys():
                    handlers[kind] = (fns.get(kind.__message_type__)
                                      or applier(cls, kind.__message_type__))
                _apply_chunk(agg, events, records, offset, kinds, handlers)
                offset += len(events)
        agg._version = records[-1].version
        agg._stream_id = stream_id
        return n

    def current(self, aggregate: str, stream_id: str, /) -> Aggregate:
        """The aggregate at the stream's head, from the in-memory cache when it is current.

        The returned object is the cached one: callers must not change it. The call makes it
        the cache's most recently used aggregate of its type, and may drop the least recently
        used one (see ``aggregate_cache_size``).
        """
        cache = self._cache.get(aggregate)
        if cache is None:
            cache = self._cache[aggregate] = OrderedDict()
        agg = cache.get(stream_id)
        cls = self._classes.get(aggregate) or self.model.aggregate_class(aggregate)  # (raises)
        if agg is not None and type(agg) is not cls:
            agg = None  # the class was redefined (a re-run cell): rebuild with the new one
        head = self.store.stream_version(stream_id)
        if agg is not None and agg.__pydantic_private__["_version"] == head:  # type: ignore[index]
            # (agg.version without the property call: this is every command's path); make it
            # the most recently used: pop + set rather than move_to_end, which would raise if
            # another thread dropped the entry since the get (this puts it back instead)
            cache[stream_id] = cache.pop(stream_id, agg)
            return agg
        if agg is not None and agg.version < head:
            try:
                replayed = self._fold(agg, stream_id, agg.version + 1, None, None)
            except BaseException:
                # a handler or a payload failed part-way: the cached state is no longer the
                # one of its version; the next call rebuilds it from the store
                cache.pop(stream_id, None)
                raise
            if self._replay_due(agg, replayed):
                self.take_snapshot(agg)
        elif head == 0:  # a new stream: nothing to read
            agg = blank(cls, stream_id)
        else:
            agg = self.load(aggregate, stream_id)
        cache[stream_id] = agg
        cache.move_to_end(stream_id)  # (a stale entry that was replaced keeps its place)
        limit = self.aggregate_cache_size
        if limit is not None:
            while len(cache) > limit:
                cache.popitem(last=False)  # the least recently used
        return agg

    def forget(self, aggregate: str, stream_id: str, /) -> None:
        """Drop an aggregate from the cache (after a failed append)."""
        cache = self._cache.get(aggregate)
        if cache is not None:
            cache.pop(stream_id, None)

    def after_append(self, agg: Aggregate, old_version: int) -> Snapshot | None:
        """Take a snapshot if the append crossed a multiple of the snapshot interval."""
        every = self._snapshot_every_of(agg.__aggregate_type__) or self.snapshot_every
        if not every or (agg.__pydantic_private__["_version"]  # type: ignore[index]
                         // every == old_version // every):
            return None
        return self.take_snapshot(agg)

    def take_snapshot(self, agg: Aggregate) -> Snapshot | None:
        """Store the aggregate's state at its current version, with its state version and
        schema fingerprint (``None``, and nothing stored, on a read-only store)."""
        if self.store.read_only:
            return None
        snap = Snapshot(agg.stream_id, agg.version, agg.__aggregate_type__,
                        agg.__state_version__, agg.state(),
                        recorded_at=self.clock.peek() if self.clock is not None else None,
                        schema_fingerprint=state_fingerprint(type(agg)))
        self.store.save_snapshot(snap)
        return snap

    def __repr__(self) -> str:
        cached = sum(len(c) for c in self._cache.values())
        return (f"Repository(cached={cached}, aggregate_cache_size={self.aggregate_cache_size}, "
                f"snapshot_every={self.snapshot_every}, "
                f"snapshot_after_replay={self.snapshot_after_replay})")


def _apply_chunk(agg: Aggregate, events: list[Any], records: Sequence[Any], offset: int,
                 kinds: set[type], handlers: dict[type, tuple[Callable[..., Any], bool]]
                 ) -> None:
    """Apply a chunk of events (``records[offset:]`` are theirs) with their handlers."""
    if not any(handlers[kind][1] for kind in kinds):
        # the common case, as lean as it gets: one call per event
        if len(kinds) == 1:
            fn = handlers[next(iter(kinds))][0]
            for event in events:
                fn(agg, event)
        else:
            plain = {kind: handlers[kind][0] for kind in kinds}
            for event in events:
                plain[type(event)](agg, event)
        return
    for event, rec in zip(events, records[offset:offset + len(events)], strict=True):
        fn, wants_record = handlers[type(event)]
        if wants_record:
            fn(agg, event, rec)
        else:
            fn(agg, event)


def _apply_until(agg: Aggregate, events: list[Any], records: Sequence[Any],
                 until: datetime) -> int:
    """Apply the events that occurred at or before ``until``; the index of the last one
    applied (-1 if none)."""
    cls = type(agg)
    fns = apply_fns(cls)
    last = -1
    for i, (event, rec) in enumerate(zip(events, records, strict=True)):
        if rec.occurred_at > until:
            continue
        fn, wants_record = fns.get(event.__message_type__) or applier(cls,
                                                                      event.__message_type__)
        if wants_record:
            fn(agg, event, rec)
        else:
            fn(agg, event)
        last = i
    return last
