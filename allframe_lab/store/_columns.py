"""DuckDB rows and Arrow batches of the events table turned into :class:`RecordedEvent` s.

The conversions of the read paths of :class:`~allframe_lab.store.duckdb.DuckDBEventStore`,
column by column where a batch allows it (pyarrow and numpy are imported lazily).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from allframe_lab.store.records import RecordedEvent

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["json_array"]

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


def _records(table: pa.Table) -> list[RecordedEvent]:
    """RecordedEvents from an Arrow batch of ``_ARROW_COLUMNS``, built column by column."""
    def col(name: str) -> list[Any]:
        return table.column(name).to_pylist()  # type: ignore[no-any-return]

    def ints(name: str) -> list[int]:
        return table.column(name).to_numpy().tolist()  # type: ignore[no-any-return]

    def dicts(name: str) -> list[dict[str, Any]]:
        return json.loads(json_array(table.column(name).combine_chunks()))  # type: ignore[no-any-return]

    def times(name: str) -> list[datetime]:
        return _times(table.column(name).to_numpy())

    return list(map(RecordedEvent, ints("position"), col("stream_id"), ints("version"),
                    map(_uuid, col("event_id")), col("type"), ints("schema_version"),
                    dicts("data"), dicts("metadata"), times("occurred_us"),
                    times("recorded_us")))
