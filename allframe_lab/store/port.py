"""The event-store port: one small ABC that every backend implements.

Every backend passes the same contract test suite (``tests/store/contract.py``) and raises the
same errors: :class:`~allframe_lab.errors.ConcurrencyError` for an expected-version conflict,
:class:`~allframe_lab.errors.ReadOnlyStoreError` for a write to a read-only store.
"""

from __future__ import annotations

import abc
from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.store.records import (
    ANY,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreStats,
    StreamInfo,
)

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["ARROW_COLUMNS", "EventStore", "StateWrites"]

#: Runtime state written atomically with events: ``{(namespace, key): value or None}``.
#: ``None`` deletes the key. Values are JSON-compatible.
StateWrites = Mapping[tuple[str, str], Any]

#: Columns accepted by :meth:`EventStore.append_arrow`; the first four are required.
ARROW_COLUMNS = ("stream_id", "type", "data", "occurred_at", "metadata", "schema_version",
                 "event_id")


class EventStore(abc.ABC):
    """Port of an append-only event store with streams and a global order.

    Positions are global, 1-based and strictly increasing; versions are 1-based and gapless
    inside a stream; ``(stream_id, version)`` and ``event_id`` are unique.
    """

    read_only: bool = False

    # -------------------------------------------------------------- writing
    def append(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        /,
        *,
        expected_version: int | ExpectedVersion = ANY,
    ) -> list[RecordedEvent]:
        """Append events to one stream, atomically: all are stored or none.

        Parameters
        ----------
        stream_id : str
        events : sequence of NewEvent
            May be empty (then only the expected version is checked).
        expected_version : int, ANY, NO_STREAM or STREAM_EXISTS
            Optimistic-concurrency guard.

        Returns
        -------
        list of RecordedEvent
            The stored events, with positions and versions.

        Raises
        ------
        ConcurrencyError
            If the stream's version does not satisfy ``expected_version``; nothing is written.
        ReadOnlyStoreError
            If the store was opened read-only.
        """
        return self.append_many([(stream_id, events, expected_version)])[0]

    @abc.abstractmethod
    def append_many(
        self,
        batches: Sequence[tuple[str, Sequence[NewEvent], int | ExpectedVersion]],
        /,
        *,
        state: StateWrites | None = None,
    ) -> list[list[RecordedEvent]]:
        """Append to several streams in one transaction: every batch is stored or none.

        Each item is ``(stream_id, events, expected_version)``; batches for the same stream
        are applied in order. ``state`` entries (see :meth:`put_state`) are written in the
        same transaction, so runtime records such as idempotency keys never disagree with
        the log.
        """

    @abc.abstractmethod
    def append_arrow(self, table: pa.Table, /) -> int:
        """Bulk-append an Arrow table of events in one transaction (for imports).

        Columns: ``stream_id``, ``type``, ``data`` (JSON text), ``occurred_at`` (timestamp, UTC)
        are required; ``metadata`` (JSON text), ``schema_version``, ``event_id`` are optional.
        Rows are appended in table order; versions continue each stream (expected version ANY).

        Returns
        -------
        int
            The number of events appended.
        """

    # -------------------------------------------------------------- reading
    @abc.abstractmethod
    def read_stream(
        self, stream_id: str, /, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        """Events of one stream with ``from_version <= version <= to_version``, in order.

        An unknown stream gives an empty list.
        """

    @abc.abstractmethod
    def read_batches(
        self,
        from_position: int = 1,
        to_position: int | None = None,
        *,
        types: Collection[str] | None = None,
        until: datetime | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[RecordedEvent]]:
        """Yield the log in position order, ``batch_size`` events at a time.

        Parameters
        ----------
        from_position, to_position : int
            Inclusive bounds on the global position.
        types : collection of str, optional
            Only these event types.
        until : datetime, optional
            Only events whose ``occurred_at`` is at or before this time.
        batch_size : int
            Events per batch; the whole store is never loaded at once.
        """

    def read_all(
        self,
        from_position: int = 1,
        to_position: int | None = None,
        *,
        types: Collection[str] | None = None,
        until: datetime | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[RecordedEvent]:
        """Iterate over the log in position order, reading ``batch_size`` events at a time.

        Same parameters as :meth:`read_batches`.
        """
        for batch in self.read_batches(
            from_position, to_position, types=types, until=until, batch_size=batch_size
        ):
            yield from batch

    @abc.abstractmethod
    def stream_version(self, stream_id: str, /) -> int:
        """The stream's version (0 if it does not exist)."""

    @property
    @abc.abstractmethod
    def head_position(self) -> int:
        """The position of the last event (0 for an empty store)."""

    @abc.abstractmethod
    def streams(self, *, prefix: str | None = None, limit: int | None = None) -> list[StreamInfo]:
        """List streams, ordered by their first position."""

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Counts of events, streams and event types, and the ``occurred_at`` range."""

    @abc.abstractmethod
    def position_at(self, timestamp: datetime, /) -> int:
        """The end of the longest prefix of the log whose events all occurred at or before
        ``timestamp`` (0 if the first event is later).

        For a log appended in time order (imports, an App with a clock) this is the last
        position that occurred by ``timestamp``; for any log it never includes a later event.
        """

    # -------------------------------------------------------------- snapshots
    @abc.abstractmethod
    def save_snapshot(self, snapshot: Snapshot, /) -> None:
        """Store an aggregate snapshot (replacing one at the same stream and version)."""

    @abc.abstractmethod
    def load_snapshot(
        self, stream_id: str, /, *, max_version: int | None = None
    ) -> Snapshot | None:
        """The latest snapshot of the stream with ``version <= max_version``, if any."""

    # -------------------------------------------------------------- runtime state
    @abc.abstractmethod
    def get_state(self, namespace: str, key: str, /) -> Any | None:
        """A runtime record (idempotency key, subscription checkpoint, saga instance, parked
        event ...) by namespace and key, or ``None``.

        Examples
        --------
        >>> from allframe_lab.store import InMemoryEventStore
        >>> store = InMemoryEventStore()
        >>> store.put_state("checkpoints", {"mailer": 42})
        >>> store.get_state("checkpoints", "mailer"), store.get_state("checkpoints", "other")
        (42, None)
        """

    @abc.abstractmethod
    def put_state(self, namespace: str, items: Mapping[str, Any], /) -> None:
        """Write runtime records of one namespace in one transaction (``None`` deletes a key).

        Values must be JSON-compatible; they are stored as JSON and survive a restart of a
        durable store.
        """

    @abc.abstractmethod
    def scan_state(self, namespace: str, /) -> dict[str, Any]:
        """All records of a namespace, ordered by key."""

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. The store cannot be used afterwards."""

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
