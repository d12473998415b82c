"""Rows of Python projections as Arrow tables, pandas DataFrames and SQL (the runner's writes
and ``as_of`` frames, the read side's rows)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.runtime._state_cache import Packed

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd

SCALARS = (str, int, float, bool, type(None), datetime)

#: DuckDB result types whose non-NULL values come out of ``fetchall()`` exactly as a pandas
#: frame's ``to_dict("records")`` gives them, with any duckdb >= 1.2 and pandas >= 2.1: str,
#: bool, float and int. NULLs differ (pandas gives NaN or None depending on the column's
#: dtype and the versions), and so do the other types (DECIMAL and HUGEINT become float,
#: dates and times Timestamps, lists arrays).
PLAIN_TYPES = frozenset({"VARCHAR", "BOOLEAN", "DOUBLE", "FLOAT", "BIGINT", "INTEGER",
                         "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT",
                         "UTINYINT"})


def query_records(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None
            ) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts, equal to ``frame(...).to_dict("records")``.

    A pandas frame costs ~0.7 ms to build and unpack even for one row, most of a one-row
    read. When every column has a :data:`PLAIN_TYPES` type and no value is NULL, the rows
    are built from ``fetchall()`` directly; otherwise (checked before fetching for the types,
    after it for NULLs: then the query runs again) through the frame, as before.
    """
    from allframe_lab.store.duckdb import frame

    result = con.execute(sql, params)
    names = [d[0] for d in result.description]
    if (len(set(names)) == len(names)
            and all(str(d[1]) in PLAIN_TYPES for d in result.description)):
        rows = result.fetchall()
        if not any(None in r for r in rows):
            return [dict(zip(names, r, strict=True)) for r in rows]
    return frame(con, sql, params).to_dict("records")  # type: ignore[no-any-return]


def scalars(rows: list[dict[str, Any]], names: list[str]) -> bool:
    """Whether every value of ``names`` in ``rows`` binds as a plain SQL parameter."""
    return all(isinstance(r.get(c), SCALARS) for r in rows for c in names)


def column(values: list[Any]) -> Any:
    """An Arrow array of ``values``; as text when Arrow cannot infer one type."""
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def select_with_types(names: list[str], columns: dict[str, str] | None) -> str:
    """A SELECT list that casts declared columns to their DuckDB types."""
    declared = columns or {}
    parts = [f'CAST("{c}" AS {declared[c]}) AS "{c}"' if c in declared else f'"{c}"'
             for c in names]
    return ", ".join(parts) if parts else "*"


def rows_to_arrow(rows: list[dict[str, Any]], key: str,
                   columns: dict[str, str] | None) -> Any:
    import pyarrow as pa

    names: dict[str, None] = {key: None}
    for c in columns or {}:
        names[c] = None
    for r in rows:
        for c in r:
            names[c] = None
    out = {}
    for c in names:
        col = column([r.get(c) for r in rows])
        if pa.types.is_null(col.type):  # no value seen yet: text, until a value says more
            col = col.cast(pa.string())
        out[c] = col
    return pa.table(out)


def rows_frame(rows: list[dict[str, Any]], key: str,
                columns: dict[str, str] | None) -> pd.DataFrame:
    import pandas as pd

    if not rows:
        return pd.DataFrame(columns=list(dict.fromkeys([key, *(columns or {})])))
    ordered = sorted_by_key(rows, key)
    if ordered is not None:  # half the cost of building the frame first and sorting it
        return pd.DataFrame.from_records(ordered)
    df = pd.DataFrame.from_records(rows)
    if key in df.columns:
        df = df.sort_values(key, kind="stable").reset_index(drop=True)
    return df


def state_frame(rows: list[Any], key: str, columns: dict[str, str] | None,
                 memo: list[Any] | None = None) -> pd.DataFrame:
    """:func:`_rows_frame` of cached rows, some of them :class:`Packed`.

    When every row is packed with the same columns (the usual case: one row shape per
    projection) the frame is built from the value tuples, sorted by key, which takes the
    same pandas conversion path as records of dicts at a third of the cost. ``memo``
    (``[keys, order]``) keeps the last sort: states of one projection mostly hold the same
    keys in the same order, and comparing the key lists costs a tenth of sorting them.
    """
    if rows and type(rows[0]) is Packed:
        names = rows[0][0]
        if key in names and all(type(r) is Packed and r[0] is names for r in rows):
            i = names.index(key) + 1
            keys = [r[i] for r in rows]
            kinds = set(map(type, keys))
            if kinds == {str} or kinds == {int}:  # the order pandas' stable sort gives
                import pandas as pd

                if memo is not None and memo[0] == keys:
                    order = memo[1]
                else:
                    order = sorted(range(len(keys)), key=keys.__getitem__)
                    if memo is not None:
                        memo[:] = [keys, order]
                return pd.DataFrame.from_records([rows[j][1:] for j in order],
                                                 columns=list(names))
    return rows_frame([r.unpack() if type(r) is Packed else r for r in rows], key, columns)


def sorted_by_key(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]] | None:
    """The rows in the order of their ``key`` column, sorted in Python, when that order is
    the one pandas' stable sort gives: every key is a ``str`` (code point order, which is
    UTF-8 byte order) or every key is an ``int``. ``None`` otherwise (missing keys, None,
    NaN, mixed types): the caller sorts the frame instead."""
    try:
        values = [r[key] for r in rows]
    except (KeyError, TypeError):
        return None
    kinds = set(map(type, values))
    if kinds != {str} and kinds != {int}:
        return None
    order = sorted(range(len(values)), key=values.__getitem__)  # stable, as kind="stable"
    return [rows[i] for i in order]


def update_row(con: duckdb.DuckDBPyConnection, table: str, key: str, value: Any,
               row: dict[str, Any], columns: set[str]) -> bool:
    """UPDATE the table's row whose ``key`` is ``value`` to ``row``; whether exactly one
    row matched (if not, the caller deletes and inserts, as for any other flush).

    Every column of the table is set (the key too: from ``row``, as an INSERT would),
    those ``row`` lacks to NULL: the result is the row a DELETE + INSERT leaves, in one
    statement instead of two (each costs ~0.3 ms on a DuckDB file). ``columns`` (the
    table's) must hold the keys of ``row``.
    """
    names = sorted(columns)
    sets = ", ".join(f'"{c}" = ?' for c in names)
    found = con.execute(f'UPDATE "{table}" SET {sets} WHERE "{key}" = ?',
                        [*(row.get(c) for c in names), value]).fetchone()
    return found is not None and found[0] == 1
