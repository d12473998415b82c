"""Decoding stored events into the Model's event objects, with a fast path for raw rows."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from allframe_lab.errors import EventDecodeError, ModelError, UnknownEventTypeError
from allframe_lab.model import Event, Model
from allframe_lab.store import EventStore, RecordedEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

RowDecoder = Callable[[str], Event]


class EventDecoder:
    """Turns stored payloads into event objects; caches one decoder per (type, schema version).

    Old schema versions are upcast here, on read: payloads of one (type, version) are parsed,
    passed through the type's upcaster chain one by one, then validated in one call.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        self._json: dict[tuple[str, int], tuple[type, RowDecoder]] = {}
        self._batch: dict[tuple[str, int], tuple[type, Callable[[str], list[Event]] | None]] = {}
        self._python: dict[str, tuple[type, Callable[[Any], list[Event]]]] = {}
        self._upcasters: dict[tuple[str, int], tuple[type, Any]] = {}

    def decode(self, rec: RecordedEvent) -> Event:
        """Decode a :class:`RecordedEvent` (upcasting old schema versions).

        Raises
        ------
        UnknownEventTypeError
            If the type is not declared (and the model has no fallback).
        EventDecodeError
            If the payload does not fit its class, or an upcaster raised.
        """
        try:
            return self.model.decode(rec.type, rec.schema_version, rec.data)
        except UnknownEventTypeError as exc:
            raise UnknownEventTypeError(rec.type, exc.known, position=rec.position) from None
        except ModelError:
            raise
        except Exception as exc:
            raise EventDecodeError(rec.type, rec.schema_version, rec.position,
                                   _problem(exc)) from exc

    def upcaster(self, type_name: str, schema_version: int, position: int
                 ) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
        """The function upcasting payloads of ``(type, version)``, or ``None`` if they
        validate as stored (cached per class)."""
        cls = self._class_for(type_name, position)
        key = (type_name, schema_version)
        hit = self._upcasters.get(key)
        if hit is not None and hit[0] is cls:
            return hit[1]  # type: ignore[no-any-return]
        fn = None
        if cls is self.model.events.get(type_name) and cls.__schema_version__ != schema_version:
            fn = self.model.upcaster_function(type_name, schema_version)
        self._upcasters[key] = (cls, fn)
        return fn

    def _list_validator(self, type_name: str, cls: type) -> Callable[[Any], list[Event]]:
        hit = self._python.get(type_name)
        if hit is None or hit[0] is not cls:
            from pydantic import TypeAdapter

            hit = self._python[type_name] = (
                cls, TypeAdapter(list[cls]).validate_python)  # type: ignore[valid-type]
        return hit[1]

    def decode_records(self, records: list[RecordedEvent]) -> list[Event]:
        """Decode records; payloads of one (type, schema version) are validated in one call."""
        groups: dict[tuple[str, int], list[int]] = {}
        for i, rec in enumerate(records):
            groups.setdefault((rec.type, rec.schema_version), []).append(i)
        events: list[Any] = [None] * len(records)
        for (type_name, version), idx in groups.items():
            first = records[idx[0]]
            cls = self._class_for(type_name, first.position)
            up = self.upcaster(type_name, version, first.position)
            if len(idx) > 1:
                validate = self._list_validator(type_name, cls)
                try:
                    if up is None:
                        payloads = [records[i].data for i in idx]
                    else:
                        payloads = [up(dict(records[i].data)) for i in idx]
                    for i, e in zip(idx, validate(payloads), strict=True):
                        events[i] = e
                    continue
                except Exception:
                    pass  # decoded one by one below, to name the failing position
            for i in idx:
                events[i] = self.decode(records[i])
        return events

    def batch_decoder(self, type_name: str, schema_version: int,
                      position: int) -> Callable[[str], list[Event]] | None:
        """A function from a JSON array of payloads to events.

        Payloads of an old schema version are parsed, upcast one by one and validated in
        one call. Never ``None`` for a known type (kept in the signature for callers that
        fall back to row-by-row decoding).
        """
        cls = self._class_for(type_name, position)
        key = (type_name, schema_version)
        hit = self._batch.get(key)
        if hit is not None and hit[0] is cls:  # a re-run cell may have replaced the class
            return hit[1]
        up = self.upcaster(type_name, schema_version, position)
        fn: Callable[[str], list[Event]] | None
        if up is None:
            from pydantic import TypeAdapter

            fn = TypeAdapter(list[cls]).validate_json  # type: ignore[valid-type]
        else:
            validate = self._list_validator(type_name, cls)

            def fn(text: str, _up: Any = up, _validate: Any = validate) -> list[Event]:
                # json.loads builds dicts ~3x faster than pydantic_core.from_json here
                return _validate([_up(d) for d in json.loads(text)])  # type: ignore[no-any-return]
        self._batch[key] = (cls, fn)
        return fn

    def _class_for(self, type_name: str, position: int) -> type[Event]:
        cls = self.model.events.get(type_name) or self.model.fallback_event
        if cls is None:
            raise UnknownEventTypeError(type_name, self.model.events, position=position)
        return cls

    def json_decoder(self, type_name: str, schema_version: int, position: int) -> RowDecoder:
        """A function from the payload's JSON text to the event object."""
        cls = self._class_for(type_name, position)
        key = (type_name, schema_version)
        hit = self._json.get(key)
        if hit is not None and hit[0] is cls:  # a re-run cell may have replaced the class
            return hit[1]
        up = self.upcaster(type_name, schema_version, position)
        if up is None:
            fn: RowDecoder = cls.model_validate_json
        else:
            validate = cls.model_validate

            def fn(text: str, _up: Any = up, _validate: Any = validate) -> Event:
                return _validate(_up(json.loads(text)))  # type: ignore[no-any-return]
        self._json[key] = (cls, fn)
        return fn


def _problem(exc: BaseException) -> str:
    """How a payload failed: pydantic's message, or the upcaster's exception."""
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return str(exc)
    return f"an upcaster raised {type(exc).__name__}: {exc}"


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a replay.

    A replay creates hundreds of thousands of short-lived objects while keeping many alive
    (rows, events); CPython 3.11's generational collector then rescans the survivors again and
    again, which tripled the time of a 100,000-event projection rebuild on the project
    machine. Reference counting still frees everything that is not cyclic.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _LazyRecord:
    """The record of a narrow raw row; the full RecordedEvent is read on first need."""

    __slots__ = ("_rec", "_row", "_store")

    def __init__(self, row: tuple[Any, ...], store: EventStore) -> None:
        self._row = row
        self._store = store
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
        return self._row[3]

    @property
    def schema_version(self) -> int:
        return self._row[4]

    @property
    def occurred_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self._row[6])

    def __getattr__(self, name: str) -> Any:  # event_id, data, metadata, recorded_at
        if self._rec is None:
            p = self._row[0]
            self._rec = next(iter(self._store.read_all(p, p)))
        return getattr(self._rec, name)

    def __repr__(self) -> str:
        return f"<record position={self.position} {self.type} {self.stream_id}@{self.version}>"


def _decode_row_events(
    rows: list[tuple[Any, ...]], decoder: EventDecoder, cache: dict[tuple[str, int], RowDecoder],
) -> list[Event]:
    """Decode raw rows: payloads of one (type, schema version) are validated in one call."""
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(rows):
        key = (r[3], r[4])
        idx = groups.get(key)
        if idx is None:
            groups[key] = [i]
        else:
            idx.append(i)
    events: list[Any] = [None] * len(rows)
    for (type_name, version), idx in groups.items():
        batch = decoder.batch_decoder(type_name, version, rows[idx[0]][0])
        if batch is not None and len(idx) > 1:
            texts = [rows[i][5] for i in idx]
            try:
                decoded = batch("[" + ",".join(texts) + "]")
            except Exception:
                decoded = None  # find the failing row below, with its position
            if decoded is not None:
                for i, e in zip(idx, decoded):
                    events[i] = e
                continue
        fn = cache.get((type_name, version))
        if fn is None:
            fn = cache[(type_name, version)] = decoder.json_decoder(type_name, version,
                                                                    rows[idx[0]][0])
        for i in idx:
            try:
                events[i] = fn(rows[i][5])
            except ModelError:
                raise
            except Exception as exc:
                raise EventDecodeError(type_name, version, rows[i][0], _problem(exc)) from exc
    return events


class _LazyRecords(Sequence[Any]):
    """The records of narrow raw rows, each built only when asked for."""

    __slots__ = ("_rows", "_store")

    def __init__(self, rows: list[tuple[Any, ...]], store: EventStore) -> None:
        self._rows = rows
        self._store = store

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [_LazyRecord(r, self._store) for r in self._rows[i]]
        return _LazyRecord(self._rows[i], self._store)


def _decode_rows(
    rows: list[tuple[Any, ...]], decoder: EventDecoder, cache: dict[tuple[str, int], RowDecoder],
    store: EventStore,
) -> list[tuple[Event, Any]]:
    events = _decode_row_events(rows, decoder, cache)
    return [(e, _LazyRecord(r, store)) for e, r in zip(events, rows, strict=True)]


def decode_stream(
    store: EventStore, decoder: EventDecoder, stream_id: str, from_version: int,
    to_version: int | None,
) -> tuple[list[Event], Sequence[Any]]:
    """The events of one stream and their records (built lazily on the raw-row fast path)."""
    read_rows = getattr(store, "read_stream_rows", None)
    if read_rows is not None:
        rows = read_rows(stream_id, from_version, to_version)
        return _decode_row_events(rows, decoder, {}), _LazyRecords(rows, store)
    records = store.read_stream(stream_id, from_version, to_version)
    return decoder.decode_records(records), records


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
    read_rows = getattr(store, "read_event_rows", None)
    if read_rows is not None:
        cache: dict[tuple[str, int], RowDecoder] = {}
        for rows in read_rows(from_position, to_position, batch_size=batch_size):
            yield _decode_rows(rows, decoder, cache, store)
        return
    for batch in store.read_batches(from_position, to_position, batch_size=batch_size):
        yield list(zip(decoder.decode_records(batch), batch, strict=True))
