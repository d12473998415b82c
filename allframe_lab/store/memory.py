"""In-memory event store: the reference implementation and public test double.

It raises the same errors as the durable backends and passes the same contract suite.
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import threading
import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ConcurrencyError
from allframe_lab.store._payload import normalize
from allframe_lab.store._staging import number, stage
from allframe_lab.store.port import EventStore, StateWrites
from allframe_lab.store.records import (
    ANY,
    NO_STREAM,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreStats,
    StreamInfo,
    check_expected_version,
)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["InMemoryEventStore"]

_UTC = UTC


_stream_of = operator.attrgetter("stream_id")


def _state_items(state: StateWrites) -> list[tuple[str, str, str | None]]:
    """Validate and serialize state writes up front, so a bad value writes nothing."""
    out = []
    for (namespace, key), value in state.items():
        out.append((namespace, key, None if value is None else json.dumps(value)))
    return out


class InMemoryEventStore(EventStore):
    """Event store kept in Python lists; nothing survives the process.

    Parameters
    ----------
    payload_columns : mapping of str to str, optional
        Payload fields that SQL over the log sees as typed columns, as in
        :class:`~allframe_lab.store.DuckDBEventStore` (see :attr:`payload_columns`).

    Raises
    ------
    StoreConfigError
        If ``payload_columns`` has a bad name or type.

    Examples
    --------
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent, NO_STREAM
    >>> store = InMemoryEventStore()
    >>> [e.position for e in store.append("a-1", [NewEvent("Opened", {"owner": "ann"})],
    ...                                   expected_version=NO_STREAM)]
    [1]
    >>> store.stream_version("a-1"), store.head_position
    (1, 1)
    """

    def __init__(self, *, payload_columns: Mapping[str, str] | None = None) -> None:
        self._payload = normalize(payload_columns)
        self._lock = threading.RLock()
        self._events: list[RecordedEvent] = []
        # stream -> indexes into _events: a range while the stream's events sit together in
        # the log (one command after another on a stream, bulk loads: an O(1) append, and no
        # object for the garbage collector to scan, which adds up over many streams), a list
        # once another stream's events come in between. Both read as a sequence of ints.
        self._streams: dict[str, range | list[int]] = {}
        self._snapshots: dict[str, list[Snapshot]] = {}
        self._state: dict[str, dict[str, Any]] = {}

    # -------------------------------------------------------------- writing
    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        /,
        *,
        expected_version: int | ExpectedVersion = ANY,
    ) -> list[RecordedEvent]:
        # One stream (what App.handle appends): append_many's checks, without its batching.
        with self._lock:
            idx = self._streams.get(stream_id)
            actual = len(idx) if idx else 0
            # the two cases of App.handle first (an existing stream at the expected version,
            # a new stream), then every other case with check_expected_version
            if not ((expected_version == actual and type(expected_version) is int)
                    or (expected_version is NO_STREAM and not actual)
                    ) and not check_expected_version(expected_version, actual):
                raise ConcurrencyError(stream_id, expected_version, actual)
            base = len(self._events)
            recorded = number(stream_id, events, actual, base, datetime.now(_UTC))
            if recorded:
                self._events.extend(recorded)
                if idx is None:  # a new stream: what _index does, one call less
                    self._streams[stream_id] = range(base, base + len(recorded))
                else:
                    self._index(stream_id, base, base + len(recorded))
            return recorded

    def append_many(
        self,
        batches: Sequence[tuple[str, Sequence[NewEvent], int | ExpectedVersion]],
        /,
        *,
        state: StateWrites | None = None,
    ) -> list[list[RecordedEvent]]:
        with self._lock:
            out, _ = stage(batches, self.stream_version, len(self._events), datetime.now(_UTC))
            writes = _state_items(state) if state else ()
            self._commit([rec for batch in out for rec in batch])
            self._write_state(writes)
            return out

    # -------------------------------------------------------------- runtime state
    def get_state(self, namespace: str, key: str, /) -> Any | None:
        with self._lock:
            value = self._state.get(namespace, {}).get(key)
        return None if value is None else json.loads(value)

    def put_state(self, namespace: str, items: Mapping[str, Any], /) -> None:
        writes = _state_items({(namespace, k): v for k, v in items.items()})
        with self._lock:
            self._write_state(writes)

    def scan_state(self, namespace: str, /) -> dict[str, Any]:
        with self._lock:
            ns = self._state.get(namespace, {})
            return {k: json.loads(ns[k]) for k in sorted(ns)}

    def _write_state(self, writes: Iterable[tuple[str, str, str | None]]) -> None:
        for namespace, key, value in writes:
            if value is None:
                self._state.get(namespace, {}).pop(key, None)
            else:
                self._state.setdefault(namespace, {})[key] = value

    def _commit(self, staged: list[RecordedEvent]) -> None:
        start = len(self._events)
        self._events.extend(staged)
        for stream_id, run in itertools.groupby(staged, key=_stream_of):
            stop = start + sum(1 for _ in run)
            self._index(stream_id, start, stop)
            start = stop

    def _index(self, stream_id: str, start: int, stop: int) -> None:
        """Note that ``_events[start:stop]`` (just appended) belong to ``stream_id``."""
        idx = self._streams.get(stream_id)
        if idx is None:
            self._streams[stream_id] = range(start, stop)
        elif type(idx) is range and idx.stop == start:
            self._streams[stream_id] = range(idx.start, stop)
        else:
            if type(idx) is range:
                idx = self._streams[stream_id] = list(idx)
            idx.extend(range(start, stop))

    def append_arrow(self, table: pa.Table, /) -> int:
        from allframe_lab.store._arrow import normalize_import_table

        table = normalize_import_table(table)
        now = datetime.now(_UTC)
        with self._lock:
            versions: dict[str, int] = {}
            staged = []
            position = len(self._events)
            cols = table.to_pydict()
            for sid, typ, data, occ, meta, sv, eid in zip(
                cols["stream_id"], cols["type"], cols["data"], cols["occurred_at"],
                cols["metadata"], cols["schema_version"], cols["event_id"], strict=True,
            ):
                position += 1
                v = versions.get(sid)
                if v is None:
                    v = len(self._streams.get(sid, ()))
                v += 1
                versions[sid] = v
                staged.append(
                    RecordedEvent(position, sid, v, uuid.UUID(eid) if eid else uuid.uuid4(),
                                  typ, sv, json.loads(data), json.loads(meta) if meta else {},
                                  occ, now)
                )
            self._commit(staged)
            return len(staged)

    # -------------------------------------------------------------- reading
    def read_stream(
        self, stream_id: str, /, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        with self._lock:
            idx = self._streams.get(stream_id, [])
            lo = max(from_version, 1) - 1
            hi = len(idx) if to_version is None else min(to_version, len(idx))
            return [self._events[i] for i in idx[lo:hi]]

    def read_batches(
        self,
        from_position: int = 1,
        to_position: int | None = None,
        *,
        types: Collection[str] | None = None,
        until: datetime | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[RecordedEvent]]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        wanted = frozenset(types) if types is not None else None
        start = max(from_position, 1) - 1
        while True:
            with self._lock:
                stop = len(self._events) if to_position is None else min(to_position,
                                                                           len(self._events))
                chunk = self._events[start:min(start + batch_size, stop)]
            if not chunk:
                return
            start += len(chunk)
            if wanted is not None or until is not None:
                chunk = [
                    e for e in chunk
                    if (wanted is None or e.type in wanted)
                    and (until is None or e.occurred_at <= until)
                ]
            if chunk:
                yield chunk

    def stream_version(self, stream_id: str, /) -> int:
        idx = self._streams.get(stream_id)
        return len(idx) if idx else 0

    @property
    def head_position(self) -> int:
        return len(self._events)

    def streams(self, *, prefix: str | None = None, limit: int | None = None) -> list[StreamInfo]:
        with self._lock:
            out = []
            for sid, idx in self._streams.items():
                if prefix is not None and not sid.startswith(prefix):
                    continue
                evs = [self._events[i] for i in idx]
                out.append(StreamInfo(sid, len(idx), evs[0].position, evs[-1].position,
                                      min(e.occurred_at for e in evs),
                                      max(e.occurred_at for e in evs)))
            out.sort(key=lambda s: s.first_position)
            return out[:limit] if limit is not None else out

    def stats(self) -> StoreStats:
        with self._lock:
            counts = Counter(e.type for e in self._events)
            times = [e.occurred_at for e in self._events]
            return StoreStats(len(self._events), len(self._streams), len(self._events),
                              dict(sorted(counts.items())), min(times, default=None),
                              max(times, default=None))

    def position_at(self, timestamp: datetime, /) -> int:
        with self._lock:
            for e in self._events:
                if e.occurred_at > timestamp:
                    return e.position - 1
            return len(self._events)

    def to_arrow(self, to_position: int | None = None) -> pa.Table:
        """The log (up to ``to_position``) as an Arrow table shaped like the DuckDB table."""
        from allframe_lab.store._arrow import events_to_arrow

        with self._lock:
            evs = self._events if to_position is None else self._events[:to_position]
            return events_to_arrow(evs)

    @property
    def payload_columns(self) -> dict[str, str]:
        """Payload fields that SQL over this store's log sees as typed columns, as a
        :class:`~allframe_lab.store.DuckDBEventStore` opened with the same
        ``payload_columns`` stores them: name to DuckDB type, each
        ``TRY_CAST(data->>'<name>' AS <type>)`` (computed when SQL reads the log: here they
        keep SQL projections portable between the stores, they do not make them faster).

        Examples
        --------
        >>> store = InMemoryEventStore(payload_columns={"total": "bigint"})
        >>> store.payload_columns
        {'total': 'BIGINT'}
        """
        return dict(self._payload)

    # -------------------------------------------------------------- snapshots
    def save_snapshot(self, snapshot: Snapshot, /) -> None:
        with self._lock:
            snaps = [s for s in self._snapshots.get(snapshot.stream_id, [])
                     if s.version != snapshot.version]
            snaps.append(snapshot)
            snaps.sort(key=lambda s: s.version)
            self._snapshots[snapshot.stream_id] = snaps

    def load_snapshot(
        self, stream_id: str, /, *, max_version: int | None = None
    ) -> Snapshot | None:
        with self._lock:
            snaps = self._snapshots.get(stream_id, [])
            if max_version is None:
                return snaps[-1] if snaps else None
            i = bisect.bisect_right([s.version for s in snaps], max_version)
            return snaps[i - 1] if i else None

    def __repr__(self) -> str:
        return (f"InMemoryEventStore(events={len(self._events)}, "
                f"streams={len(self._streams)})")
