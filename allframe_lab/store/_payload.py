"""Payload columns: chosen payload fields copied into typed columns of the ``events`` table.

Marten calls them *duplicated fields*. A query that reads ``data->>'amount'`` makes DuckDB
parse every payload's JSON text (~55 MB for a million ~100-byte payloads: ~37 ms per as-of
query of a SQL projection, against ~9 ms without JSON). A payload column ``amount BIGINT``
holds ``TRY_CAST(data->>'amount' AS BIGINT)`` for every event, so SQL projections, their
``as_of`` and ad-hoc SQL read a typed column instead.

The rules, in one place:

- a column is named like the top-level payload field it copies, a SQL identifier that is not
  a column of the log itself (``position``, ``data``, ...), and typed with one of
  :data:`TYPES` (aliases such as ``INT`` or ``TEXT`` are accepted and normalized);
- its value is ``TRY_CAST(data->>'<name>' AS <type>)``: NULL when the field is absent, JSON
  ``null``, or does not convert (``"abc"`` for a BIGINT); the cast is DuckDB's (``1.5`` becomes
  ``2`` in a BIGINT, an object or list field is its JSON text in a VARCHAR);
- every INSERT into ``events`` computes the columns in the same statement (the journal's
  flushes, ``journal=False`` appends, ``append_arrow``, the journal's replay on open and into
  a read-only copy), so no committed event ever has them unfilled;
- opening a store with a new column adds it and fills it for the events already stored (one
  ``UPDATE``, ~0.2 s per million events), in one transaction; the set is remembered in
  ``runtime_state`` (namespace :data:`STATE_NAMESPACE`), so a later open without the option
  keeps filling every column the table has;
- a column's type never changes in place: opening with another type for an existing column
  raises :class:`~allframe_lab.errors.StoreConfigError`; drop it first
  (:meth:`DuckDBEventStore.drop_payload_columns`), then open with the new type;
- :class:`~allframe_lab.store.InMemoryEventStore` takes the same option: the projection
  runner shows its log to DuckDB through a view that computes the columns
  (:meth:`PayloadColumns.values_as`), so a model's SQL runs unchanged on the test double.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import StoreConfigError, StoreError

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = ["BUILTIN_COLUMNS", "STATE_NAMESPACE", "TYPES", "PayloadColumns", "fill", "normalize"]

#: The columns of the ``events`` table itself; a payload column cannot take these names.
BUILTIN_COLUMNS = ("position", "stream_id", "version", "event_id", "type", "schema_version",
                   "data", "metadata", "occurred_at", "recorded_at")

#: ``runtime_state`` namespace remembering the payload columns (key: column, value: type).
STATE_NAMESPACE = "allframe.payload_columns"

#: The types a payload column may have (DuckDB scalar types; ``DECIMAL(p,s)`` too), each with
#: the spelling ``duckdb_columns()`` reports for it.
TYPES: dict[str, str] = {
    "BOOLEAN": "BOOLEAN",
    "SMALLINT": "SMALLINT",
    "INTEGER": "INTEGER",
    "BIGINT": "BIGINT",
    "HUGEINT": "HUGEINT",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "VARCHAR": "VARCHAR",
    "DATE": "DATE",
    "TIME": "TIME",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE",
    "UUID": "UUID",
}
_ALIASES = {
    "BOOL": "BOOLEAN", "INT2": "SMALLINT", "INT": "INTEGER", "INT4": "INTEGER",
    "INT8": "BIGINT", "LONG": "BIGINT", "REAL": "FLOAT", "FLOAT4": "FLOAT",
    "FLOAT8": "DOUBLE", "TEXT": "VARCHAR", "STRING": "VARCHAR",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ", "DATETIME": "TIMESTAMP",
}
_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _canonical_type(spelled: Any) -> str | None:
    """The canonical spelling of an allowed type, or ``None`` if it is not allowed."""
    if not isinstance(spelled, str):
        return None
    t = " ".join(spelled.upper().split())
    t = _ALIASES.get(t, t)
    if t in TYPES:
        return t
    m = _DECIMAL.match(t)
    if m is None:
        return None
    p, s = int(m.group(1) or 18), int(m.group(2) or (3 if m.group(1) is None else 0))
    return f"DECIMAL({p},{s})" if 1 <= p <= 38 and 0 <= s <= p else None


def _duckdb_type(canonical: str) -> str:
    """How ``duckdb_columns()`` spells a canonical type."""
    return TYPES.get(canonical, canonical)


def normalize(columns: Mapping[str, str] | None) -> dict[str, str]:
    """Check payload columns and return them with canonical type names.

    Parameters
    ----------
    columns : mapping of str to str, optional
        Column (and payload field) name to DuckDB type.

    Returns
    -------
    dict of str to str
        The same columns, types spelled canonically (``"int"`` becomes ``"INTEGER"``).

    Raises
    ------
    StoreConfigError
        Naming every bad column at once: a name that is not a SQL identifier or is a column
        of the log itself, a name given twice (DuckDB names ignore case), or a type that is
        not one of :data:`TYPES` or ``DECIMAL(p,s)``.

    Examples
    --------
    >>> normalize({"amount": "bigint", "price": "decimal(10, 2)", "note": "text"})
    {'amount': 'BIGINT', 'price': 'DECIMAL(10,2)', 'note': 'VARCHAR'}
    >>> normalize({"data": "JSON"})
    Traceback (most recent call last):
    ...
    allframe_lab.errors.StoreConfigError: bad payload_columns: 'data' is a column of the events ...
    """
    if columns is None:
        return {}
    if not isinstance(columns, Mapping):
        raise StoreConfigError(f"payload_columns must map column names to DuckDB types, e.g. "
                         f"{{'amount': 'BIGINT'}}; got {type(columns).__name__}")
    problems, out, seen = [], {}, set()
    for name, spelled in columns.items():
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{name!r} is not a SQL identifier (letters, digits, underscores; "
                            "not starting with a digit): name the column like the payload "
                            "field it copies")
            continue
        if name.lower() in BUILTIN_COLUMNS:
            problems.append(f"{name!r} is a column of the events table itself "
                            f"({', '.join(BUILTIN_COLUMNS)}): it cannot be a payload column")
            continue
        if name.lower() in seen:
            problems.append(f"{name!r} is given twice (DuckDB column names ignore case)")
            continue
        seen.add(name.lower())
        canonical = _canonical_type(spelled)
        if canonical is None:
            problems.append(f"{name!r} has type {spelled!r}; use one of "
                            f"{', '.join(TYPES)} or DECIMAL(p,s)")
            continue
        out[name] = canonical
    if problems:
        raise StoreConfigError("bad payload_columns: " + "; ".join(problems))
    return out


class PayloadColumns:
    """The payload columns of one store, and the SQL that fills them on insert.

    Parameters
    ----------
    columns : mapping of str to str
        Column name to canonical type (as :func:`normalize` returns them), in table order.

    Examples
    --------
    >>> cols = PayloadColumns({"amount": "BIGINT"})
    >>> cols.names
    ', "amount"'
    >>> cols.values("b.data")
    ', TRY_CAST(json_extract_string(b.data, \\'$."amount"\\') AS BIGINT)'
    >>> PayloadColumns({})
    PayloadColumns({})
    """

    __slots__ = ("_values", "columns", "names")

    def __init__(self, columns: Mapping[str, str] | None = None) -> None:
        self.columns: dict[str, str] = dict(columns or {})
        #: ``, "a", "b"``: appended to an INSERT's column list ('' without columns)
        self.names = "".join(f', "{n}"' for n in self.columns)
        self._values: dict[str, str] = {}

    def values(self, data: str = "data") -> str:
        """``, <expr>, ...``: the column values computed from the JSON text ``data`` (a SQL
        expression), appended to an INSERT's SELECT list ('' without columns)."""
        out = self._values.get(data)
        if out is None:
            out = self._values[data] = "".join(
                f", {fill_expression(n, t, data)}" for n, t in self.columns.items())
        return out

    def values_as(self, data: str = "data") -> str:
        """``, <expr> AS "<name>", ...``: :meth:`values` with each column named, for a
        SELECT list (a view over a log that has no payload columns of its own)."""
        return "".join(f', {fill_expression(n, t, data)} AS "{n}"'
                       for n, t in self.columns.items())

    def __bool__(self) -> bool:
        return bool(self.columns)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PayloadColumns) and other.columns == self.columns

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PayloadColumns({self.columns})"


NONE = PayloadColumns()


def fill_expression(name: str, canonical: str, data: str = "data") -> str:
    """The SQL value of payload column ``name`` computed from the JSON text ``data``."""
    return f"TRY_CAST(json_extract_string({data}, '$.\"{name}\"') AS {canonical})"


# -------------------------------------------------------------------- the database side
def stored(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The payload columns remembered in the database (``{}`` if none, or no such table)."""
    import json

    import duckdb

    try:
        rows = con.execute(
            "SELECT key, value::VARCHAR FROM runtime_state WHERE namespace = ? ORDER BY key",
            [STATE_NAMESPACE]).fetchall()
    except duckdb.CatalogException:  # a file written before runtime_state existed
        return {}
    return {k: json.loads(v)["type"] for k, v in rows}


def _table_columns(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The ``events`` table's columns beyond the built-in ones: lower-case name -> type."""
    rows = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'events' "
        "AND schema_name = current_schema()").fetchall()
    return {n.lower(): t for n, t in rows if n.lower() not in BUILTIN_COLUMNS}


def configure(con: duckdb.DuckDBPyConnection, requested: Mapping[str, str] | None, *,
              writable: bool) -> PayloadColumns:
    """Bring the ``events`` table's payload columns in line with the remembered ones plus
    ``requested``, and return them all.

    For a writable database, each column the table lacks is added and filled for the events
    already stored, and remembered, in one transaction. A read-only one must already have
    every requested column.

    Raises
    ------
    StoreConfigError
        If ``requested`` is malformed (see :func:`normalize`) or gives an existing column
        another type.
    StoreError
        If it asks a read-only database for a column it lacks.
    """
    wanted = normalize(requested)
    known = stored(con)
    spelled = {n.lower(): n for n in known}  # DuckDB names ignore case: keep the first spelling
    wanted = {spelled.get(n.lower(), n): t for n, t in wanted.items()}
    have = _table_columns(con)
    problems = []
    for name, canonical in wanted.items():
        was = known.get(name)
        if was is None:  # the table may have it (a file from before, a hand-made column)
            actual = have.get(name.lower())
            was = None if actual is None or actual == _duckdb_type(canonical) else actual
        if was is not None and was != canonical:
            problems.append(
                f"{name!r} is {was} in this store, not {canonical}: open it with "
                f"payload_columns={{{name!r}: {was!r}}} (or without the option), or call "
                f"store.drop_payload_columns({name!r}) first to give it another type")
    if problems:
        raise StoreConfigError("payload columns cannot change type in place: "
                               + "; ".join(problems))
    columns = dict(known)
    columns.update((n, t) for n, t in wanted.items() if n not in columns)
    # to add or (re)fill: new ones, and remembered ones the table lost (a hand-made DROP)
    missing = {n: t for n, t in columns.items() if n.lower() not in have or n not in known}
    if missing and not writable:
        lacking = sorted(n for n in missing if n.lower() not in have or n in wanted)
        if lacking:
            raise StoreError(
                f"the store has no payload column {', '.join(map(repr, lacking))} and is open "
                "read-only: open it once for writing with payload_columns=... to add it")
        missing = {}
    if missing:
        _add(con, missing, have)
    return PayloadColumns(columns)


def fill(con: duckdb.DuckDBPyConnection, columns: Mapping[str, str] | None = None) -> None:
    """Compute payload columns (default: the remembered ones) for every stored event, in
    the caller's transaction: after the column is added, or after ``data`` was rewritten
    (a migration that upcasts payloads in place must call this before it commits)."""
    columns = stored(con) if columns is None else columns
    if columns:
        con.execute("UPDATE events SET " + ", ".join(
            f'"{n}" = {fill_expression(n, t)}' for n, t in columns.items()))


def _add(con: duckdb.DuckDBPyConnection, columns: Mapping[str, str],
         have: Mapping[str, str]) -> None:
    """Add (if needed), fill and remember ``columns``, in one transaction."""
    import json
    from datetime import UTC, datetime

    con.execute("BEGIN TRANSACTION")
    try:
        for name, canonical in columns.items():
            if name.lower() not in have:
                con.execute(f'ALTER TABLE events ADD COLUMN "{name}" {canonical}')
        fill(con, columns)
        now = datetime.now(UTC)
        for name, canonical in columns.items():
            con.execute("INSERT OR REPLACE INTO runtime_state VALUES (?, ?, ?, ?)",
                        [STATE_NAMESPACE, name, json.dumps({"type": canonical}), now])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def drop(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """Drop payload columns from the table and forget them, in one transaction.

    Raises
    ------
    StoreError
        If a name is not a payload column of the store.
    """
    known = stored(con)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StoreError(f"no payload column {', '.join(map(repr, unknown))} in this store "
                         f"(it has {', '.join(map(repr, known)) or 'none'})")
    con.execute("BEGIN TRANSACTION")
    try:
        for name in names:
            con.execute(f'ALTER TABLE events DROP COLUMN IF EXISTS "{name}"')
            con.execute("DELETE FROM runtime_state WHERE namespace = ? AND key = ?",
                        [STATE_NAMESPACE, name])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


class PayloadColumnsMixin:
    """The payload-column API of :class:`~allframe_lab.store.DuckDBEventStore` (kept beside
    the rules it applies; the store sets ``_payload`` at open)."""

    _payload: PayloadColumns

    @property
    def payload_columns(self) -> dict[str, str]:
        """The payload columns of ``events``: name to DuckDB type, each written by every
        append as ``TRY_CAST(data->>'<name>' AS <type>)``.

        Open the store with ``payload_columns={...}`` to add columns (they are filled for
        the events already stored, and remembered in the file); see ``store/_payload.py``.

        Examples
        --------
        >>> from allframe_lab.store import DuckDBEventStore, NewEvent
        >>> store = DuckDBEventStore(":memory:", payload_columns={"total": "BIGINT"})
        >>> _ = store.append("order-1", [NewEvent("OrderPlaced", {"total": 30}),
        ...                              NewEvent("OrderShipped", {})])
        >>> store.connection.execute("SELECT total FROM events ORDER BY position").fetchall()
        [(30,), (None,)]
        >>> store.payload_columns
        {'total': 'BIGINT'}
        >>> store.drop_payload_columns("total")
        >>> store.payload_columns
        {}
        >>> store.close()
        """
        return dict(self._payload.columns)

    def drop_payload_columns(self, *names: str) -> None:
        """Drop payload columns from ``events`` and stop filling them (one transaction).

        To change a column's type, drop it, then open the store with the new type.

        Raises
        ------
        StoreError
            If a name is not a payload column of the store.
        ReadOnlyStoreError
            If the store is read-only.
        """
        store: Any = self
        store._check_writable()
        with store.lock:
            drop(store.connection, names)
            self._payload = configure(store.connection, None, writable=True)
