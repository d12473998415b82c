"""Readers of tabular process logs: CSV (optionally gzip-compressed) and Parquet.

One row is one event. The case, activity and timestamp columns are found with a
:class:`~allframe_lab.io.LogMapping` (``case:concept:name`` / ``case_id`` / ``Case ID`` ...);
every other column goes into the JSON payload (null values are left out).

Rows are counted from 1, the CSV header not included: ``row 7`` is the seventh data row
(line 8 of a CSV file whose fields hold no line breaks).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ImportFormatError
from allframe_lab.io._build import payload_json, sort_by_time, table_schema
from allframe_lab.io.mapping import CANDIDATES, LogMapping

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["arrow_to_import_table", "read_csv", "read_parquet"]

_DELIMITERS = ",;\t|"


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    if gz:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _header(path: Path, src: str) -> tuple[list[str], str]:
    """The CSV header and its delimiter (the most frequent of ``, ; TAB |`` in line 1)."""
    try:
        with _open_text(path) as f:
            first = f.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise ImportFormatError(src, "line 1", f"cannot read the CSV header ({exc})") from exc
    if not first.strip():
        raise ImportFormatError(src, "line 1", "the file is empty: a CSV log needs a header")
    delimiter = max(_DELIMITERS, key=first.count)
    return next(csv.reader([first], delimiter=delimiter)), delimiter


def _locate_csv_problem(path: Path, delimiter: str, width: int) -> str:
    """Find the first data row whose field count differs from the header's."""
    try:
        with _open_text(path) as f:
            reader = csv.reader(f, delimiter=delimiter)
            next(reader, None)
            for i, fields in enumerate(reader, start=1):
                if fields and len(fields) != width:
                    return f"row {i} (line {reader.line_num})"
    except (OSError, EOFError, UnicodeDecodeError, csv.Error):
        pass
    return "CSV body"


def read_csv(
    source: str | os.PathLike[str],
    /,
    *,
    mapping: LogMapping | None = None,
    batch_size: int = 100_000,
) -> pa.Table:
    """Read a CSV process log (``.csv`` or ``.csv.gz``) into the import table.

    Parameters
    ----------
    source : str or path
    mapping : LogMapping, optional
        Which columns hold case, activity and timestamp (default: detected from the header).
    batch_size : int
        Rows whose payloads are encoded at a time.

    Returns
    -------
    pyarrow.Table
        ``stream_id, type, data, occurred_at``, sorted by ``occurred_at`` (stable).

    Raises
    ------
    ImportFormatError
        A required column is missing (``header``), a row has the wrong number of fields, or a
        row has no case id, no activity, or a bad timestamp (``row N``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.csv"
    >>> _ = path.write_text("case_id,activity,timestamp,cost\\n"
    ...                     "c1,register,2024-01-02T10:00:00+01:00,50\\n"
    ...                     "c1,decide,2024-01-02 12:00:00,\\n")
    >>> read_csv(path).to_pydict()["data"]
    ['{"cost":50}', '{}']
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = Path(source)
    src = os.fspath(source)
    columns, delimiter = _header(path, src)
    m = _require_columns(src, "header", columns, mapping or LogMapping())
    # the envelope columns are read as text: case ids keep leading zeros, and timestamps are
    # parsed here so that an error can name the row
    types = {c: pa.string() for c in m.envelope}
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types,
                                                 strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise ImportFormatError(src, _locate_csv_problem(path, delimiter, len(columns)),
                                f"cannot parse the CSV ({exc})") from exc
    return arrow_to_import_table(table, mapping=m, source=src, batch_size=batch_size)


def read_parquet(
    source: str | os.PathLike[str],
    /,
    *,
    mapping: LogMapping | None = None,
    batch_size: int = 100_000,
) -> pa.Table:
    """Read a Parquet process log into the import table (see :func:`read_csv`).

    A timestamp column may be a Parquet timestamp (naive values are UTC) or ISO-8601 text.

    Raises
    ------
    ImportFormatError
        The file is not Parquet, a required column is missing (``schema``), or a row has no
        case id, no activity or a bad timestamp (``row N``).

    Examples
    --------
    >>> import tempfile, pathlib, pandas as pd
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "log.parquet"
    >>> pd.DataFrame({"Case ID": [7, 7], "Activity": ["open", "close"],
    ...               "Timestamp": pd.to_datetime(["2024-01-02 10:00", "2024-01-02 09:00"]),
    ...               }).to_parquet(path)
    >>> read_parquet(path).select(["stream_id", "type"]).to_pylist()
    [{'stream_id': '7', 'type': 'close'}, {'stream_id': '7', 'type': 'open'}]
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = os.fspath(source)
    try:
        table = pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ImportFormatError(src, "file", f"cannot read it as Parquet ({exc})") from exc
    return arrow_to_import_table(table, mapping=mapping, source=src, batch_size=batch_size)


def _require_columns(src: str, where: str, columns: list[str], given: LogMapping) -> LogMapping:
    """Resolve the mapping against the columns; a missing envelope column is an error."""
    m = given.resolve(columns)
    for field, name in zip(("case", "activity", "timestamp"), m.envelope):
        if name in columns:
            continue
        if getattr(given, field) is None:
            tried = ", ".join(CANDIDATES[field])
            problem = (f"found no {field} column (looked for {tried}, ignoring case and "
                       f"punctuation)")
        else:
            problem = f"missing required {field} column {name!r}"
        raise ImportFormatError(
            src, where,
            f"{problem}; the columns are {columns}. Name it with LogMapping({field}=...) "
            f"or the CLI option --{field}-column",
        )
    return m


def _first_bad(mask: Any) -> int:
    """0-based index of the first True in a boolean Arrow array."""
    import pyarrow.compute as pc

    return int(pc.index(mask, True).as_py())


def arrow_to_import_table(
    table: pa.Table,
    /,
    *,
    mapping: LogMapping | None = None,
    source: str = "<table>",
    batch_size: int = 100_000,
) -> pa.Table:
    """Turn an Arrow table with one event per row into the import table.

    Parameters
    ----------
    table : pyarrow.Table
        Rows in file order; the envelope columns are found with ``mapping``.
    mapping : LogMapping, optional
    source : str
        Named in error messages.
    batch_size : int
        Rows whose payloads are encoded at a time.

    Returns
    -------
    pyarrow.Table
        ``stream_id, type, data, occurred_at``, sorted by ``occurred_at`` (stable).

    Examples
    --------
    >>> import pyarrow as pa
    >>> raw = pa.table({"case_id": ["a"], "activity": ["go"],
    ...                 "timestamp": ["2024-01-01T12:00:00+02:00"], "n": [1]})
    >>> row = arrow_to_import_table(raw).to_pylist()[0]
    >>> row["stream_id"], row["type"], row["data"], row["occurred_at"].isoformat()
    ('a', 'go', '{"n":1}', '2024-01-01T10:00:00+00:00')
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = table.column_names
    m = _require_columns(source, "schema", columns, mapping or LogMapping())
    case_col, activity_col, time_col = m.envelope

    def text(name: str, what: str) -> pa.ChunkedArray:
        col = table.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            if pa.types.is_floating(col.type):
                raise ImportFormatError(source, f"column {name!r}",
                                        f"the {what} column holds floats; cast it to text first")
            col = col.cast(pa.string())
        bad = pc.or_kleene(pc.is_null(col), pc.equal(pc.utf8_trim_whitespace(col), ""))
        bad = pc.fill_null(bad, True)
        if pc.any(bad).as_py():
            row = _first_bad(bad) + 1
            raise ImportFormatError(source, f"row {row}",
                                    f"no {what} (column {name!r} is empty)")
        return col.cast(pa.string())

    case = text(case_col, "case id")
    if m.stream_prefix:
        case = pc.binary_join_element_wise(m.stream_prefix, case, "")
    activity = text(activity_col, "activity")
    occurred = _timestamps(table.column(time_col), time_col, m.timestamp_format, source)

    rest = table.drop_columns([case_col, activity_col, time_col])
    if rest.num_columns:
        data: list[str] = []
        for batch in rest.to_batches(max_chunksize=batch_size):
            data.extend(payload_json(row) for row in batch.to_pylist())
        data_arr = pa.array(data, pa.string())
    else:
        data_arr = pa.array(["{}"] * table.num_rows, pa.string())
    out = pa.Table.from_arrays([case, activity, data_arr, occurred], schema=table_schema())
    return sort_by_time(out)


def _timestamps(col: Any, name: str, fmt: str | None, source: str) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.timestamp("us", tz="UTC")
    if col.null_count:
        row = _first_bad(pc.is_null(col)) + 1
        raise ImportFormatError(source, f"row {row}",
                                f"no timestamp (column {name!r} is empty); every event needs one")
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            col = col.cast(pa.timestamp(col.type.unit, tz="UTC"))
        return col.cast(target, safe=False)
    if pa.types.is_date(col.type):
        return col.cast(pa.timestamp("us")).cast(target)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        raise ImportFormatError(source, f"column {name!r}",
                                f"the timestamp column has type {col.type}, not a time or text")
    import pandas as pd

    text = col.to_pandas()
    parsed = pd.to_datetime(text, utc=True, format=fmt or "ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(bad.argmax())
        expected = f"the format {fmt!r}" if fmt else (
            "ISO-8601 (e.g. 2012-01-15T10:00:00+01:00); for another layout give its strptime "
            "format: LogMapping(timestamp_format='%d/%m/%Y %H:%M') or --timestamp-format")
        raise ImportFormatError(source, f"row {row + 1}",
                                f"bad timestamp {text.iloc[row]!r} in column {name!r}; "
                                f"expected {expected}")
    return pa.array(parsed, type=pa.timestamp(parsed.dt.unit, tz="UTC")).cast(target, safe=False)
