"""Decoding stored events into the Model's event objects, with a fast path for raw rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

from allframe_lab.errors import UnknownEventTypeError
from allframe_lab.model import Event, Model
from allframe_lab.store import EventStore, RecordedEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

RowDecoder = Callable[[str], Event]


class EventDecoder:
    """Turns stored payloads into event objects; caches one decoder per (type, schema version)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self._json: dict[tuple[str, int], RowDecoder] = {}

    def decode(self, rec: RecordedEvent) -> Event:
        """Decode a :class:`RecordedEvent` (upcasting old schema versions)."""
        try:
            return self.model.decode(rec.type, rec.schema_version, rec.data)
        except UnknownEventTypeError as exc:
            raise UnknownEventTypeError(rec.type, exc.known, position=rec.position) from None

    def json_decoder(self, type_name: str, schema_version: int, position: int) -> RowDecoder:
        """A function from the payload's JSON text to the event object."""
        key = (type_name, schema_version)
        fn = self._json.get(key)
        if fn is not None:
            return fn
        model = self.model
        cls = model.events.get(type_name)
        if cls is None:
            fallback = model.fallback_event
            if fallback is None:
                raise UnknownEventTypeError(type_name, model.events, position=position)
            fn = fallback.model_validate_json
        elif cls.__schema_version__ == schema_version:
            fn = cls.model_validate_json
        else:
            def fn(text: str, _t: str = type_name, _v: int = schema_version) -> Event:
                return model.decode(_t, _v, json.loads(text))
        self._json[key] = fn
        return fn


def row_record(r: tuple[Any, ...]) -> RecordedEvent:
    """Build a RecordedEvent from a DuckDB raw row (see ``DuckDBEventStore.read_rows``)."""
    return RecordedEvent(
        r[0], r[1], r[2], uuid.UUID(r[3]), r[4], r[5], json.loads(r[6]), json.loads(r[7]),
        _EPOCH + timedelta(microseconds=r[8]), _EPOCH + timedelta(microseconds=r[9]),
    )


class _LazyRecord:
    """A RecordedEvent built on first attribute access (handlers rarely need all of it)."""

    __slots__ = ("_rec", "_row")

    def __init__(self, row: tuple[Any, ...]) -> None:
        self._row = row
        self._rec: RecordedEvent | None = None

    @property
    def position(self) -> int:
        return self._row[0]

    @property
    def stream_id(self) -> str:
        return self._row[1]

    @property
    def version(self) -> int:
        return self._row[2]

    @property
    def type(self) -> str:
        return self._row[4]

    @property
    def occurred_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self._row[8])

    def __getattr__(self, name: str) -> Any:
        if self._rec is None:
            self._rec = row_record(self._row)
        return getattr(self._rec, name)


def _decode_rows(
    rows: list[tuple[Any, ...]], decoder: EventDecoder, cache: dict[tuple[str, int], RowDecoder]
) -> list[tuple[Event, Any]]:
    out = []
    for r in rows:
        fn = cache.get((r[4], r[5]))
        if fn is None:
            fn = cache[(r[4], r[5])] = decoder.json_decoder(r[4], r[5], r[0])
        out.append((fn(r[6]), _LazyRecord(r)))
    return out


def iter_stream_decoded(
    store: EventStore, decoder: EventDecoder, stream_id: str, from_version: int,
    to_version: int | None,
) -> list[tuple[Event, Any]]:
    """``(event, record)`` pairs of one stream (raw-row fast path when the store has one)."""
    read_rows = getattr(store, "read_stream_rows", None)
    if read_rows is not None:
        return _decode_rows(read_rows(stream_id, from_version, to_version), decoder, {})
    return [(decoder.decode(rec), rec)
            for rec in store.read_stream(stream_id, from_version, to_version)]


def iter_decoded(
    store: EventStore,
    decoder: EventDecoder,
    from_position: int,
    to_position: int | None,
    *,
    batch_size: int = 10_000,
) -> Iterator[list[tuple[Event, Any]]]:
    """Yield batches of ``(event, record)`` pairs from the log, in position order.

    Uses the DuckDB store's raw-row path when available: payloads are validated straight
    from JSON text and the record is built lazily.
    """
    read_rows = getattr(store, "read_rows", None)
    if read_rows is not None:
        cache: dict[tuple[str, int], RowDecoder] = {}
        for rows in read_rows(from_position, to_position, batch_size=batch_size):
            yield _decode_rows(rows, decoder, cache)
        return
    for batch in store.read_batches(from_position, to_position, batch_size=batch_size):
        yield [(decoder.decode(rec), rec) for rec in batch]
