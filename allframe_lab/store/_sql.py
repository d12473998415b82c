"""DuckDB plumbing of the event store: the schema, column lists, connection helpers and
row inserts shared by :mod:`allframe_lab.store.duckdb` and the journal's replay."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from allframe_lab.store._payload import NONE, PayloadColumns

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

__all__ = ["SCHEMA", "drain", "frame", "registered", "transaction"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    position       BIGINT PRIMARY KEY,
    stream_id      VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    event_id       UUID NOT NULL,
    type           VARCHAR NOT NULL,
    schema_version INTEGER NOT NULL,
    data           JSON NOT NULL,
    metadata       JSON NOT NULL,
    occurred_at    TIMESTAMPTZ NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE TABLE IF NOT EXISTS snapshots (
    stream_id      VARCHAR NOT NULL,
    version        INTEGER NOT NULL,
    aggregate_type VARCHAR NOT NULL,
    state_version  INTEGER NOT NULL,
    state          JSON NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (stream_id, version)
);
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS schema_fingerprint VARCHAR;
CREATE TABLE IF NOT EXISTS runtime_state (
    namespace      VARCHAR NOT NULL,
    key            VARCHAR NOT NULL,
    value          JSON NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (namespace, key)
);
"""

_COLUMNS = (
    "position, stream_id, version, event_id::VARCHAR, type, schema_version, data::VARCHAR, "
    "metadata::VARCHAR, epoch_us(occurred_at), epoch_us(recorded_at)"
)

_ARROW_COLUMNS = (
    "position, stream_id, version, event_id::VARCHAR AS event_id, type, schema_version, "
    "data::VARCHAR AS data, metadata::VARCHAR AS metadata, "
    "epoch_us(occurred_at) AS occurred_us, epoch_us(recorded_at) AS recorded_us"
)

# the columns that replays and aggregate loads need (no event id, metadata, recorded_at)
_NARROW = ("position, stream_id, version, type, schema_version, data::VARCHAR AS data, "
           "epoch_us(occurred_at) AS occurred_us")
_NARROW_STREAM = _NARROW.replace(" stream_id,", "")

#: The ``events`` table's own columns, in order: every INSERT names them (the table may have
#: payload columns after them, see ``store/_payload.py``).
EVENT_COLUMNS = ("position, stream_id, version, event_id, type, schema_version, data, metadata, "
                 "occurred_at, recorded_at")

_BULK_INSERT = """
INSERT INTO events ({columns}{payload_names})
SELECT $head + b.rn AS position,
       b.stream_id,
       coalesce(c.version, 0)
         + row_number() OVER (PARTITION BY b.stream_id ORDER BY b.rn) AS version,
       coalesce(TRY_CAST(b.event_id AS UUID), uuidv4()) AS event_id,
       b.type, b.schema_version, b.data::JSON, b.metadata::JSON, b.occurred_at, $now
       {payload_values}
FROM _af_bulk AS b LEFT JOIN _af_current AS c USING (stream_id)
ORDER BY position
"""


def bulk_insert_sql(payload: PayloadColumns = NONE) -> str:
    """The INSERT of ``append_arrow``: rows of the Arrow table ``_af_bulk`` numbered after the
    head (``$head``) and each stream's version in ``_af_current``, payload columns filled."""
    return _BULK_INSERT.format(columns=EVENT_COLUMNS, payload_names=payload.names,
                               payload_values=payload.values("b.data"))


def batch_query(columns: str, types: Collection[str] | None, until: datetime | None,
                batch_size: int) -> tuple[str, list[Any]] | None:
    """The query of one batch of a batched read (first two parameters: the position
    range) and its other parameters; ``None`` if nothing can match."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    where = ["position BETWEEN ? AND ?"]
    extra: list[Any] = []
    if types is not None:
        types = list(types)
        if not types:
            return None
        where.append(f"type IN ({', '.join('?' * len(types))})")
        extra.extend(types)
    if until is not None:
        where.append("occurred_at <= ?")
        extra.append(until)
    return f"SELECT {columns} FROM events WHERE {' AND '.join(where)}", extra


def drain(con: duckdb.DuckDBPyConnection) -> None:
    """Finish a pending result on ``con`` (DuckDB 2 refuses ``register`` while one is open)."""
    complete = getattr(con, "complete", None)
    if complete is not None:
        complete()


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: Any) -> Iterator[None]:
    """Expose an Arrow table to SQL as ``name`` for the duration of the block."""
    drain(con)
    con.register(name, table)
    try:
        yield
    finally:
        drain(con)
        con.unregister(name)


@contextmanager
def transaction(
    con: duckdb.DuckDBPyConnection, lock: threading.RLock | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Hold ``lock`` (if given) and run a transaction on ``con``: commit on success, roll
    back on error."""
    with lock or contextlib.nullcontext():
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """Run a query and return a pandas DataFrame.

    DuckDB 2.0's ``.df()`` calls a pandas API that pandas 3.1 deprecates (``drop(inplace=)``)
    for time zone columns; that warning is about DuckDB's internals, not the caller's code,
    so it is silenced here.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The inplace keyword",
                                category=DeprecationWarning)
        return con.execute(sql, params).df()


def dumps(obj: Any) -> str:
    """Compact JSON text of a payload or metadata (non-JSON values as ``str``)."""
    return json.dumps(obj, separators=(",", ":"), default=str)


US = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def insert_columns(con: duckdb.DuckDBPyConnection, cols: Sequence[Sequence[Any]],
                   payload: PayloadColumns = NONE) -> None:
    """INSERT rows given as the events table's 10 columns (times in microseconds since the
    epoch) through Arrow: one statement, which fills the ``payload`` columns too."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")

    def times(values: Sequence[int]) -> pa.Array:
        return pa.array(values, pa.int64()).cast(ts)

    tbl = pa.table({
        "position": pa.array(cols[0], pa.int64()),
        "stream_id": pa.array(cols[1], pa.string()),
        "version": pa.array(cols[2], pa.int32()),
        "event_id": pa.array(cols[3], pa.string()),
        "type": pa.array(cols[4], pa.string()),
        "schema_version": pa.array(cols[5], pa.int32()),
        "data": pa.array(cols[6], pa.string()),
        "metadata": pa.array(cols[7], pa.string()),
        "occurred_at": times(cols[8]),
        "recorded_at": times(cols[9]),
    })
    with registered(con, "_af_rows", tbl):
        con.execute(
            f"INSERT INTO events ({EVENT_COLUMNS}{payload.names}) SELECT position, stream_id, "
            "version, event_id::UUID, type, schema_version, data::JSON, metadata::JSON, "
            f"occurred_at, recorded_at{payload.values()} FROM _af_rows ORDER BY position"
        )


_VALUES_ROWS = 64


def insert_rows(con: duckdb.DuckDBPyConnection, rows: Sequence[Sequence[Any]], *,
                arrow: bool = True, begin: bool = True,
                payload: PayloadColumns = NONE) -> None:
    """INSERT rows shaped like the journal's (see ``store/_journal.py``): through Arrow (one
    statement), or as VALUES statements for a few rows (no pyarrow/pandas import: a short
    script's appends, or a flush at interpreter exit, when imports fail), in one transaction
    of its own unless ``begin`` is False (the caller's). Each statement also fills the
    ``payload`` columns of its rows."""
    if arrow and len(rows) > _VALUES_ROWS:
        insert_columns(con, list(zip(*rows, strict=True)), payload)
        return
    one = "(?, ?, ?, ?, ?, ?, ?, ?, make_timestamp(?::BIGINT), make_timestamp(?::BIGINT))"
    chunks = [rows[i:i + _VALUES_ROWS] for i in range(0, len(rows), _VALUES_ROWS)]
    if begin and len(chunks) > 1:
        with transaction(con):
            for chunk in chunks:
                _insert_values(con, one, chunk, payload)
    else:
        for chunk in chunks:
            _insert_values(con, one, chunk, payload)


def _insert_values(con: duckdb.DuckDBPyConnection, one: str,
                   chunk: Sequence[Sequence[Any]], payload: PayloadColumns) -> None:
    params = [x for r in chunk for x in r]
    if payload:
        # each row's payload columns are computed from its data text, passed once more per
        # column: ~0.05 ms per statement, where INSERT ... SELECT * FROM (VALUES ...) costs
        # ~0.3 ms more to plan than a plain INSERT ... VALUES
        k = len(payload.columns)
        one = one[:-1] + payload.values("?") + ")"
        params = [x for r in chunk for x in (*r, *[r[6]] * k)]
    con.execute(f"INSERT INTO events ({EVENT_COLUMNS}{payload.names}) VALUES "
                + ", ".join([one] * len(chunk)), params)
