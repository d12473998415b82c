"""Building the import table (stream_id, type, data, occurred_at) a batch at a time."""

from __future__ import annotations

import array
import contextlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

UTC = UTC
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

#: Column names and order of the tables that :func:`~allframe_lab.io.read_log` returns.
TABLE_COLUMNS = ("stream_id", "type", "data", "occurred_at")


def table_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([
        ("stream_id", pa.string()),
        ("type", pa.string()),
        ("data", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
    ])


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; one without an offset is taken as UTC.

    Raises
    ------
    ValueError
        If the text is not ISO-8601.
    """
    dt = datetime.fromisoformat(text.strip())
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def epoch_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    return (dt - EPOCH) // _US


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                           default=_json_default).encode


_encode_strict = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                                  default=_json_default).encode


def encode_payload(attributes: Mapping[str, Any]) -> str:
    """JSON text of a payload whose values are never None (fast path; NaN values dropped)."""
    try:
        return _encode_strict(attributes)
    except ValueError:  # NaN or infinity: not JSON
        return payload_json(attributes)


try:  # the C encoder behind json.dumps, made once instead of once per call
    from json.encoder import c_make_encoder as _c_make_encoder
    from json.encoder import encode_basestring as _encode_basestring
except ImportError:  # pragma: no cover - interpreters without the _json accelerator
    _c_make_encoder = None

_encode_parsed = None if _c_make_encoder is None else _c_make_encoder(
    None, _json_default, _encode_basestring, None, ":", ",", False, False, False)


def encode_parsed_payload(attributes: Mapping[str, Any]) -> str:
    """:func:`encode_payload` (same text) for payloads a reader has just built.

    ``json.JSONEncoder.encode`` sets up a new C encoder and a cycle-check table on every call,
    about half its cost for a small payload; this reuses one encoder without the cycle check,
    which is safe only for freshly built values (dicts, lists, scalars: no reference cycles).
    """
    if _encode_parsed is None:  # pragma: no cover
        return encode_payload(attributes)
    try:
        return "".join(_encode_parsed(attributes, 0))
    except ValueError:  # NaN or infinity: not JSON
        return payload_json(attributes)


def payload_json(attributes: Mapping[str, Any]) -> str:
    """JSON text of a payload; ``None``, NaN and infinite values are left out (absent)."""
    clean = {k: v for k, v in attributes.items()
             if v is not None and not (isinstance(v, float) and not math.isfinite(v))}
    return _encode(clean)


class TableBuilder:
    """Accumulates events as Python lists and turns them into Arrow every ``batch_size`` rows.

    Keeping at most one batch of Python objects alive bounds memory on large logs.
    """

    def __init__(self, batch_size: int = 100_000) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.rows = 0
        self._batches: list[pa.RecordBatch] = []
        self._reset()

    def _reset(self) -> None:
        self._stream: list[str] = []
        self._type: list[str] = []
        self._data: list[str] = []
        self._at: list[int] = []

    def add(self, stream_id: str, type_: str, data: str, occurred_at_us: int) -> None:
        self._stream.append(stream_id)
        self._type.append(type_)
        self._data.append(data)
        self._at.append(occurred_at_us)
        self.rows += 1
        if len(self._stream) >= self.batch_size:
            self._flush()

    def extend(self, stream_ids: list[str], types: list[str], data: list[str],
               occurred_at: list[int] | list[str]) -> None:
        """Add several rows at once (e.g. one trace's events); the batch may end up that many
        rows over ``batch_size`` before it is converted.

        ``occurred_at`` holds microseconds since the epoch, or ISO-8601 texts (parsed in bulk
        when the batch is converted, see :func:`timestamps_from_text`); a batch holds one kind.

        Raises
        ------
        BadTimestampError
            If a text is not an ISO-8601 date (``row``: its index among all rows added).
        """
        self._stream += stream_ids
        self._type += types
        self._data += data
        self._at += occurred_at  # type: ignore[arg-type]
        self.rows += len(stream_ids)
        if len(self._stream) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._stream:
            return
        at = self._at
        if at and type(at[0]) is str:
            occurred = timestamps_from_text(at, first_row=self.rows - len(at))  # type: ignore
        else:
            occurred = timestamp_array(at)
        self._batches.append(pa.record_batch(
            [string_array(self._stream), string_array(self._type), string_array(self._data),
             occurred],
            schema=table_schema(),
        ))
        self._reset()

    def table(self) -> pa.Table:
        """All rows, sorted by ``occurred_at`` (stable: equal times keep file order)."""
        import pyarrow as pa

        self._flush()
        table = pa.Table.from_batches(self._batches, schema=table_schema())
        self._batches = []
        return sort_by_time(table)


# ``pa.array(list)`` imports pandas on its first call (to check for pandas objects): about
# 0.5 s of a fresh import_log, for nothing. The two helpers below build the arrays from their
# buffers instead, which is as fast (a join, an encode and a running sum, all in C).
_MAX_INT32 = 2**31 - 1


def string_array(values: list[str]) -> pa.Array:
    """A ``pa.string()`` array of Python strings (none of them None)."""
    import pyarrow as pa

    text = "".join(values)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: let pa.array report them
        return pa.array(values, pa.string())
    if len(data) > _MAX_INT32:  # too big for 32-bit offsets: pa.array splits it in chunks
        return pa.array(values, pa.string())
    # byte lengths: the character counts if all is ASCII, else each string's UTF-8 length
    lengths = map(len, values) if len(data) == len(text) else (
        len(v.encode("utf-8")) for v in values)
    offsets = array.array("i", accumulate(lengths, initial=0))
    return pa.Array.from_buffers(pa.string(), len(values),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def timestamp_array(epoch_us: list[int]) -> pa.Array:
    """A ``timestamp[us, tz=UTC]`` array of microseconds since the epoch."""
    import pyarrow as pa

    return pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), len(epoch_us),
                                 [None, pa.py_buffer(array.array("q", epoch_us))])


class BadTimestampError(ValueError):
    """A timestamp text that is not ISO-8601 (internal: the reader turns it into an
    :class:`~allframe_lab.errors.ImportFormatError` naming the place)."""

    def __init__(self, row: int, text: str) -> None:
        super().__init__(f"row {row}: not an ISO-8601 date: {text!r}")
        self.row = row
        self.text = text


#: Timestamps that Arrow's parser and :func:`parse_timestamp` read alike: year 0001-9999 (Arrow
#: also takes 0000), ``T``, 1-6 fraction digits, offset ``Z`` or ``+hh:mm`` (no blanks). Checked
#: on the edge cases in tests/io/test_build.py; anything else is parsed by Python.
_PLAIN_ISO = (r"^(?:[1-9]\d{3}|\d[1-9]\d{2}|\d{2}[1-9]\d|\d{3}[1-9])-\d\d-\d\dT"
              r"\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)$")


def timestamps_from_text(texts: list[str], first_row: int = 0) -> pa.Array:
    """``timestamp[us, tz=UTC]`` from ISO-8601 texts, exactly as :func:`parse_timestamp` reads
    them (no offset: UTC), but in bulk.

    Texts in the common form (:data:`_PLAIN_ISO`, e.g. ``2011-10-01T00:38:44.546+02:00``) are
    parsed by Arrow in C, about ten times faster than one :meth:`datetime.fromisoformat` and
    one subtraction per event; a batch with any other text is parsed by Python, text by text.

    Raises
    ------
    BadTimestampError
        For the first text that is not ISO-8601, with its row (``first_row`` + index).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow_type = pa.timestamp("us", tz="UTC")
    strings = string_array(texts)
    if pc.all(pc.match_substring_regex(strings, _PLAIN_ISO)).as_py():
        # e.g. 2011-02-30 fails the cast: the loop below, where Python names the text
        with contextlib.suppress(pa.ArrowInvalid):
            return pc.cast(strings, arrow_type)
    micros = []
    for i, text in enumerate(texts):
        try:
            micros.append(epoch_us(parse_timestamp(text)))
        except ValueError:
            raise BadTimestampError(first_row + i, text) from None
    return timestamp_array(micros)


def sort_by_time(table: pa.Table) -> pa.Table:
    """Sort rows by ``occurred_at``; rows with the same time keep their order (stable sort)."""
    import pyarrow.compute as pc

    table = table.combine_chunks()
    if table.num_rows < 2:
        return table
    # sort_indices is a stable sort (documented), so equal times keep their order
    return table.take(pc.sort_indices(table.column("occurred_at")))
