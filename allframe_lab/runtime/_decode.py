"""Decoding stored events into the Model's event objects, with a columnar fast path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import EventDecodeError, ModelError, UnknownEventTypeError
from allframe_lab.model import Event, Model
from allframe_lab.store import EventStore, RecordedEvent
from allframe_lab.store._columns import gc_paused, json_array, shared_strings

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

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
        self._dict: dict[tuple[str, int], tuple[type, Callable[[Any], Event]]] = {}
        self._last: dict[str, tuple[type, int, Callable[[Any], Event]]] = {}  # see decode()
        self._events = model.events  # a live read-only view of the registered classes

    def decode(self, rec: RecordedEvent) -> Event:
        """Decode a :class:`RecordedEvent` (upcasting old schema versions).

        Raises
        ------
        UnknownEventTypeError
            If the type is not declared (and the model has no fallback).
        EventDecodeError
            If the payload does not fit its class, or an upcaster raised.
        """
        type_name = rec.type
        # The last decoder of each declared type, checked against the record's schema
        # version and the class the model has now (a re-run cell may have replaced it):
        # no key tuple to build and hash per record, as the (type, version) cache needs.
        try:
            last = self._last.get(type_name)
            if last is not None and last[1] == rec.schema_version \
                    and last[0] is self._events.get(type_name):
                return last[2](rec.data)
            cls = self._events.get(type_name) or self.model.fallback_event
            hit = self._dict.get((type_name, rec.schema_version))
            if hit is None or hit[0] is not cls:  # new, or a re-run cell replaced the class
                hit = self._dict_decoder(type_name, rec.schema_version, rec.position)
            if hit[0] is self._events.get(type_name):  # declared (not the fallback class)
                self._last[type_name] = (hit[0], rec.schema_version, hit[1])
            return hit[1](rec.data)
        except ModelError:
            raise
        except Exception as exc:
            raise EventDecodeError(type_name, rec.schema_version, rec.position,
                                   _problem(exc)) from exc

    def _dict_decoder(self, type_name: str, schema_version: int, position: int
                      ) -> tuple[type, Callable[[Any], Event]]:
        """``Model.decode`` for one (type, schema version), looked up once: the upcaster
        chain (if any), then the class's validator."""
        cls = self._class_for(type_name, position)
        up = self.upcaster(type_name, schema_version, position)
        from pydantic import BaseModel

        validate: Callable[[Any], Event]
        if getattr(cls.model_validate, "__func__", None) is BaseModel.model_validate.__func__:
            validate = cls.__pydantic_validator__.validate_python  # what model_validate calls
        else:
            validate = cls.model_validate  # a class that customizes it
        fn = validate
        if up is not None:
            def fn(data: Any, _up: Any = up, _validate: Any = validate) -> Event:
                return _validate(_up(dict(data)))  # type: ignore[no-any-return]
        hit = self._dict[(type_name, schema_version)] = (cls, fn)
        return hit

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


class _WideFields:
    """The wide fields (event id, data, metadata, recorded_at) of one batch of records.

    Read from the store in ONE query for the whole batch when a handler first asks for one
    of them, so a projection that reads ``rec.metadata`` costs one extra query per batch, not
    one per event.
    """

    __slots__ = ("_by_position", "_read")

    def __init__(self, read: Callable[[], Iterable[RecordedEvent]]) -> None:
        self._read = read
        self._by_position: dict[int, RecordedEvent] | None = None

    def record(self, position: int) -> RecordedEvent:
        if self._by_position is None:
            self._by_position = {r.position: r for r in self._read()}
        return self._by_position[position]


class _LazyRecord(tuple):  # type: ignore[type-arg]
    """The record of a narrow row; the other fields are read from the store on first need.

    A tuple ``(position, stream_id, version, type, schema_version, occurred_us, wide)``
    whose fields are read through C-level getters: a replay makes one per event, and a tuple
    built by ``map`` costs half an object with ``__init__`` (measured on 100,000 records).
    ``wide`` (:class:`_WideFields`) is shared by the records of one batch.
    """

    position = property(itemgetter(0))
    stream_id = property(itemgetter(1))
    version = property(itemgetter(2))
    type = property(itemgetter(3))
    schema_version = property(itemgetter(4))

    @property
    def occurred_at(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self[5])

    def __getattr__(self, name: str) -> Any:  # event_id, data, metadata, recorded_at
        if name.startswith("__"):  # protocol probes (copy, pickle): not record fields
            raise AttributeError(name)
        return getattr(self[6].record(self[0]), name)

    def __eq__(self, other: object) -> bool:  # a record, not a tuple: equal to itself only
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<record position={self[0]} {self[3]} {self[1]}@{self[2]}>"


def _decode_group(decoder: EventDecoder, type_name: str, version: int, texts: pa.Array,
                  positions: Any) -> list[Event]:
    """Decode the payloads of one (type, schema version): one pydantic call for all.

    ``positions`` (a numpy array) are the payloads' positions. If the batch fails, the
    payloads are decoded one by one to name the failing position.
    """
    first = int(positions[0])
    batch = decoder.batch_decoder(type_name, version, first)
    if batch is not None:
        text = json_array(texts)
        try:
            return batch(text)
        except Exception:
            pass  # decoded one by one below
    fn = decoder.json_decoder(type_name, version, first)
    out = []
    for text, position in zip(texts.to_pylist(), positions.tolist(), strict=True):
        try:
            out.append(fn(text))
        except ModelError:
            raise
        except Exception as exc:
            raise EventDecodeError(type_name, version, position, _problem(exc)) from exc
    return out


def _decode_table(table: pa.Table, decoder: EventDecoder) -> list[Event]:
    """Decode the events of a narrow Arrow batch (see ``DuckDBEventStore.read_event_columns``).

    Rows are grouped by (type, schema version) with Arrow and numpy; each group's payloads
    are validated by one pydantic call on one JSON array, then put back in row order.
    """
    import numpy as np

    n = table.num_rows
    if n == 0:
        return []
    kinds = table.column("type").combine_chunks().dictionary_encode()
    names = kinds.dictionary.to_pylist()
    kind = kinds.indices.to_numpy(zero_copy_only=False)
    versions = table.column("schema_version").to_numpy()
    positions = table.column("position").to_numpy()
    data = table.column("data").combine_chunks()
    if len(names) == 1 and (versions == versions[0]).all():
        return _decode_group(decoder, names[0], int(versions[0]), data, positions)
    events: list[Any] = [None] * n
    for k, type_name in enumerate(names):
        of_type = kind == k
        for version in np.unique(versions[of_type]).tolist():
            idx = np.flatnonzero(of_type & (versions == version))
            decoded = _decode_group(decoder, type_name, version, data.take(idx),
                                    positions[idx])
            for i, e in zip(idx.tolist(), decoded, strict=True):
                events[i] = e
    return events


def _records(table: pa.Table, store: EventStore, stream_id: str | None = None
             ) -> list[_LazyRecord]:
    """The lazy records of a narrow Arrow batch (of one stream: ``stream_id``)."""
    def ints(name: str) -> list[int]:
        return table.column(name).to_numpy().tolist()  # type: ignore[no-any-return]

    sids = (repeat(stream_id) if stream_id is not None
            else shared_strings(table.column("stream_id")))
    positions, versions = ints("position"), ints("version")
    wide = _wide_fields(store, stream_id, positions, versions)
    return list(map(_LazyRecord, zip(positions, sids, versions,
                                     shared_strings(table.column("type")), ints("schema_version"),
                                     ints("occurred_us"), repeat(wide))))


def _wide_fields(store: EventStore, stream_id: str | None, positions: list[int],
                 versions: list[int]) -> _WideFields:
    """The shared wide-field reader of one batch: a version range of one stream, or a
    position range of the log (batches of ``read_event_columns`` are contiguous)."""
    if stream_id is not None:
        lo, hi = min(versions, default=1), max(versions, default=0)
        return _WideFields(lambda: store.read_stream(stream_id, lo, hi))
    lo, hi = min(positions, default=1), max(positions, default=0)
    return _WideFields(lambda: store.read_all(lo, hi))


_RECORD_COLUMNS = ("position", "stream_id", "version", "type", "schema_version", "occurred_us")


class _LazyRecords(Sequence[Any]):
    """The records of a narrow Arrow batch, built when first asked for."""

    __slots__ = ("_asked", "_rows", "_store", "_stream_id", "_table")

    # An aggregate load asks for one record (the last, for the version); a fold whose
    # handlers take the record asks for all: rows are converted one by one for the first
    # few, then all at once.
    _ONE_BY_ONE = 4

    def __init__(self, table: pa.Table, store: EventStore, stream_id: str) -> None:
        self._table = table
        self._store = store
        self._stream_id = stream_id
        self._rows: list[_LazyRecord] | None = None
        self._asked = 0

    def __len__(self) -> int:
        return self._table.num_rows  # type: ignore[no-any-return]

    def __getitem__(self, i: Any) -> Any:
        if self._rows is None and not isinstance(i, slice) and self._asked < self._ONE_BY_ONE:
            self._asked += 1
            one = self._table.slice(range(len(self))[i], 1).to_pylist()[0]
            one["stream_id"] = self._stream_id
            wide = _wide_fields(self._store, self._stream_id, [one["position"]],
                                [one["version"]])
            return _LazyRecord((*(one[c] for c in _RECORD_COLUMNS), wide))
        if self._rows is None:
            self._rows = _records(self._table, self._store, self._stream_id)
        return self._rows[i]


def decode_stream(
    store: EventStore, decoder: EventDecoder, stream_id: str, from_version: int,
    to_version: int | None,
) -> tuple[list[Event], Sequence[Any]]:
    """The events of one stream and their records (built lazily on the columnar fast path):
    :func:`stream_chunks`, all chunks at once."""
    _, chunks, records = stream_chunks(store, decoder, stream_id, from_version, to_version)
    with gc_paused():
        events = [event for chunk in chunks for event in chunk]
    return events, records


#: Events per chunk of :func:`stream_chunks`: their objects (~0.5 kB each) stay in the CPU
#: caches from decoding to applying, and each chunk reuses the memory the last one freed.
STREAM_CHUNK = 1_000


def stream_chunks(
    store: EventStore, decoder: EventDecoder, stream_id: str, from_version: int,
    to_version: int | None, *, size: int | None = None,
) -> tuple[int, Iterator[list[Event]], Sequence[Any]]:
    """:func:`decode_stream` in chunks: ``(count, chunks, records)``.

    The events are decoded a chunk of ``size`` at a time, as ``chunks`` is iterated: a
    replay that applies each chunk before decoding the next keeps a chunk's events in the
    CPU caches (5,000 events decoded at once take ~2.5 MB, which a load after a garbage
    collection also has to fault in from the OS), at the cost of a decode error surfacing
    only when its chunk is reached. ``records`` are all the stream's, as in
    :func:`decode_stream`. ``size`` defaults to :data:`STREAM_CHUNK`.
    """
    size = size or STREAM_CHUNK
    read_columns = getattr(store, "read_stream_columns", None)
    if read_columns is not None:
        table = read_columns(stream_id, from_version, to_version)
        n = table.num_rows
        chunks = (_decode_table(table.slice(lo, size), decoder) for lo in range(0, n, size))
        return n, chunks, _LazyRecords(table, store, stream_id)
    records = store.read_stream(stream_id, from_version, to_version)
    return len(records), (decoder.decode_records(records[lo:lo + size])
                          for lo in range(0, len(records), size)), records


class DecodedBatch(Sequence[tuple[Event, Any]]):
    """One batch of a replay: ``(event, record)`` pairs, kept as two lists.

    Iterating yields the pairs (made by ``zip`` as they are read, not stored: a replay of
    a million events allocates no million pairs); a loop that wants the lists takes
    :attr:`events` and :attr:`records`.
    """

    __slots__ = ("events", "records")

    def __init__(self, events: list[Event], records: Sequence[Any]) -> None:
        if len(events) != len(records):
            raise ValueError(f"{len(events)} events but {len(records)} records")
        self.events = events
        self.records = records

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return list(zip(self.events[i], self.records[i], strict=True))
        return self.events[i], self.records[i]

    def __iter__(self) -> Iterator[tuple[Event, Any]]:
        return zip(self.events, self.records)  # (equal lengths: checked by __init__)

    def __repr__(self) -> str:
        return f"<DecodedBatch of {len(self.events)} events>"


def iter_decoded(
    store: EventStore,
    decoder: EventDecoder,
    from_position: int,
    to_position: int | None,
    *,
    batch_size: int = 10_000,
) -> Iterator[DecodedBatch]:
    """Yield batches of ``(event, record)`` pairs from the log, in position order.

    Uses the DuckDB store's columnar path when available: payloads are validated straight
    from JSON text and the full record is read lazily.
    """
    read_columns = getattr(store, "read_event_columns", None)
    if read_columns is not None:
        for table in read_columns(from_position, to_position, batch_size=batch_size):
            with gc_paused():  # per batch: the consumer runs with the collector as it had it
                events = _decode_table(table, decoder)
                records = _records(table, store)
            yield DecodedBatch(events, records)
        return
    for batch in store.read_batches(from_position, to_position, batch_size=batch_size):
        yield DecodedBatch(decoder.decode_records(batch), batch)
