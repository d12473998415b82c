"""Rows of Python projections as Arrow tables and pandas DataFrames (the runner's writes and
``as_of`` frames)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.runtime._state_cache import Packed

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SCALARS = (str, int, float, bool, type(None), datetime)


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
