"""DuckDB rows and Arrow batches of the events table turned into :class:`RecordedEvent` s.

The conversions of the read paths of :class:`~allframe_lab.store.duckdb.DuckDBEventStore`,
column by column where a batch allows it (pyarrow and numpy are imported lazily).
"""

from __future__ import annotations

import gc
import json
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import FrozenInstanceError, fields
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import TYPE_CHECKING, Any

from allframe_lab.store.records import RecordedEvent

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

__all__ = ["fetch_arrow", "json_array", "shared_strings"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY_META: dict[str, Any] = {}


def _dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _row_to_event(r: tuple[Any, ...]) -> RecordedEvent:
    meta = r[7]
    return RecordedEvent(
        r[0], r[1], r[2], uuid.UUID(r[3]), r[4], r[5], json.loads(r[6]),
        _EMPTY_META if meta == "{}" else json.loads(meta),
        _EPOCH + timedelta(microseconds=r[8]), _EPOCH + timedelta(microseconds=r[9]),
    )


def _ordered(table: pa.Table, column: str) -> pa.Table:
    """``table`` sorted by ``column`` (ascending, unique values).

    Reads leave out ``ORDER BY``: DuckDB returns a table's rows in insertion order (unless
    ``preserve_insertion_order`` is off) and the log is written in position order, so the rows
    usually come sorted; checking that costs a fraction of DuckDB's sort (a third of a
    10,000-row read). If they do not, Arrow sorts them.
    """
    values = table.column(column).to_numpy()
    if len(values) > 1 and not (values[1:] > values[:-1]).all():
        table = table.sort_by(column)
    return table


def json_array(texts: pa.Array) -> str:
    """One JSON array of JSON texts (an Arrow string array), joined by Arrow: no Python
    string per element."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.large_string())  # a joined batch may pass 2 GiB of string
    one = pa.LargeListArray.from_arrays(pa.array([0, len(texts)], pa.int64()), texts)
    return "[" + pc.binary_join(one, pa.scalar(",", pa.large_string()))[0].as_py() + "]"


def _uuid(text: str, _new: Any = object.__new__, _set: Any = object.__setattr__,
          _unknown: Any = uuid.SafeUUID.unknown) -> uuid.UUID:
    """``uuid.UUID(text)`` for the canonical text DuckDB writes, at a third of the cost.

    UUID.__init__ accepts many spellings and checks each; DuckDB's text is always the
    canonical 36-character form, so the integer is parsed directly and set the way
    UUID.__init__ sets it (its two slots).
    """
    u = _new(uuid.UUID)
    _set(u, "int", int(text.replace("-", ""), 16))
    _set(u, "is_safe", _unknown)
    return u  # type: ignore[no-any-return]


def _times(us: Any) -> list[datetime]:
    """UTC datetimes from a numpy array of microseconds since the epoch.

    Equal neighbours share one datetime object (datetimes are immutable): all events of one
    append have the same ``recorded_at``, so a batch usually holds a few long runs.
    """
    import numpy as np

    n = len(us)
    starts = np.flatnonzero(us[1:] != us[:-1]) + 1
    if len(starts) >= n // 4:
        return [_EPOCH + timedelta(microseconds=x) for x in us.tolist()]
    edges = np.concatenate(([0], starts, [n]))
    values = np.empty(len(edges) - 1, dtype=object)
    values[:] = [_EPOCH + timedelta(microseconds=x) for x in us[edges[:-1]].tolist()]
    return np.repeat(values, np.diff(edges)).tolist()  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- lazy records
# The fields a reader of a batch nearly always needs are set when the batch is read; the
# others are converted from the batch's Arrow columns, for the whole batch at once, the first
# time any record of the batch is asked for one (a fold or a projection rarely reads them;
# parsing 10,000 metadata objects, event ids and datetimes it does not read cost more than
# the rest of the read).
_EAGER = ("position", "stream_id", "version", "type", "schema_version", "data")
_LAZY = ("event_id", "metadata", "occurred_at", "recorded_at")
_FIELDS = tuple(f.name for f in fields(RecordedEvent))  # the dataclass's order
_SLOT_SET = {name: RecordedEvent.__dict__[name].__set__ for name in _FIELDS}


def _column(table: pa.Table, name: str) -> list[Any]:
    """One Arrow column as a list of the Python values of its record field."""
    if name == "event_id":
        return list(map(_uuid, table.column("event_id").to_pylist()))
    if name == "metadata":
        return json.loads(json_array(table.column("metadata").combine_chunks()))  # type: ignore[no-any-return]
    if name in ("occurred_at", "recorded_at"):
        return _times(table.column(name[:-3] + "_us").to_numpy())
    if name == "data":
        return json.loads(json_array(table.column("data").combine_chunks()))  # type: ignore[no-any-return]
    if name in ("stream_id", "type"):
        return shared_strings(table.column(name))
    return table.column(name).to_numpy().tolist()  # type: ignore[no-any-return]


def shared_strings(column: Any) -> list[str]:
    """A string column as Python strings, one object per distinct value.

    A batch repeats few types and streams: building each distinct string once costs half
    of one string per row, and a string used again keeps its hash, which dict lookups by
    ``rec.stream_id`` or ``rec.type`` (a fold's rows, a decoder's caches) then reuse.
    """
    encoded = column.combine_chunks().dictionary_encode()
    values = encoded.dictionary.to_pylist()
    return list(map(values.__getitem__, encoded.indices.to_numpy(zero_copy_only=False).tolist()))


class _Batch:
    """The Arrow columns of one read batch; a field's values are converted for the whole
    batch on first need (thread-safe: a race converts twice, with equal results)."""

    __slots__ = ("_first", "_rows", "_table", "_values")

    def __init__(self, table: pa.Table, positions: list[int]) -> None:
        self._table = table
        self._values: dict[str, list[Any]] = {}
        self._first = positions[0]
        # batches are usually a contiguous position range: then the row is an offset
        contiguous = positions[-1] - positions[0] == len(positions) - 1
        self._rows = None if contiguous else {p: i for i, p in enumerate(positions)}

    def value(self, name: str, position: int) -> Any:
        values = self._values.get(name)
        if values is None:
            with gc_paused():
                values = self._values[name] = _column(self._table, name)
        row = position - self._first if self._rows is None else self._rows[position]
        return values[row]


class _ColumnarRecord(RecordedEvent):
    """A :class:`RecordedEvent` read from an Arrow batch, whose ``event_id``, ``metadata``,
    ``occurred_at`` and ``recorded_at`` are converted on first access.

    It is a RecordedEvent in every way a caller can see: same fields and values, equal to
    (and hashing like) the RecordedEvent with the same fields, same repr, frozen; copies and
    pickles are plain RecordedEvents. Only ``type(record)`` tells them apart.
    """

    __slots__ = ("_batch",)

    def __getattr__(self, name: str) -> Any:
        # called only when a slot is unset: one of the lazy fields, read once
        if name in _LAZY:
            value = self._batch.value(name, self.position)
            _SLOT_SET[name](self, value)
            return value
        raise AttributeError(f"'RecordedEvent' object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def _field_values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecordedEvent):
            return self._field_values() == tuple(getattr(other, name) for name in _FIELDS)
        return NotImplemented

    __hash__ = RecordedEvent.__hash__  # defining __eq__ would otherwise remove it

    def __repr__(self) -> str:
        return "RecordedEvent(" + ", ".join(
            f"{name}={getattr(self, name)!r}" for name in _FIELDS) + ")"

    def __reduce__(self) -> tuple[Any, ...]:
        return RecordedEvent, self._field_values()


_new_record = object.__new__
_SET_BATCH = _ColumnarRecord.__dict__["_batch"].__set__


def _records(table: pa.Table) -> list[RecordedEvent]:
    """The records of an Arrow batch of ``_ARROW_COLUMNS`` (in position order).

    The eager fields are set column by column (one ``map`` per field over the batch's
    records: a third cheaper than calling a constructor per record); the others are
    converted on first access (see :class:`_ColumnarRecord`).
    """
    n = table.num_rows
    if not n:
        return []
    with gc_paused():
        records: list[RecordedEvent] = list(map(_new_record, repeat(_ColumnarRecord, n)))
        positions = _column(table, "position")
        batch = _Batch(table, positions)
        for name in _EAGER:
            values = positions if name == "position" else _column(table, name)
            deque(map(_SLOT_SET[name], records, values), maxlen=0)
        deque(map(_SET_BATCH, records, repeat(batch, n)), maxlen=0)
    return records


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while many small objects are built and kept.

    Building a batch of records, replaying a stream or reading an event log makes tens of
    thousands of objects that survive (none in a reference cycle); with the collector on,
    every 700 new containers start a collection, and the older generations' collections
    rescan every live object of the process: building a 10,000-event batch took 2.5x as
    long, a 100,000-event projection rebuild 3x. Reference counting still frees everything;
    the collector is switched back on (if it was on) when the block ends, also on errors.
    The one copy of this, shared by the store, the runtime and the readers (``io``).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --------------------------------------------------------------------------- fetching
_SUBMIT_WORKS: bool | None = None  # None: not tried yet


def fetch_arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pa.Table:
    """Run one query on ``con`` and return its result as one Arrow table.

    ``con.sql(sql, params=...).to_arrow_table()`` is DuckDB's public way. In DuckDB 2 it
    parses and binds the statement to build a lazy relation, then parses, binds and runs it
    again to read it: 0.5 ms of the 1.4 ms that reading 5,000 events of one stream takes.
    ``con._submit``, which that relation calls to run the statement, does it in one trip. It
    is not public API, so it is used only while it exists and accepts this call: if it is
    missing or its signature changed (AttributeError, TypeError), the public way is used
    from then on. Errors of the query itself (DuckDB's exceptions) propagate either way.
    """
    global _SUBMIT_WORKS
    if _SUBMIT_WORKS is not False:
        try:
            table = con._submit(sql, params, "arrow", 131_072).arrow_table()  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            _SUBMIT_WORKS = False
        else:
            _SUBMIT_WORKS = True
            return table
    rel = con.sql(sql, params=params)
    # DuckDB >= 1.4 names it to_arrow_table; before, arrow() returned a Table
    fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
    return fetch()
