"""DuckDB event store: the embedded default.

Design (see ``docs/design.md``): a DuckDB statement costs ~0.3 ms and a commit ~1 ms, so

- the writing process keeps every stream's version and the head position in memory and checks
  expected versions there; ``UNIQUE (stream_id, version)`` stays as the safety net;
- one append is one multi-row INSERT (one statement, one transaction);
- bulk imports go through Arrow in one ``INSERT ... SELECT`` with window functions that number
  positions and versions;
- reads page through the log by position (keyset pagination), never loading it whole.

DuckDB allows one writing process per file. A second writer gets
:class:`~allframe_lab.errors.StoreLockedError`. DuckDB refuses even a read-only open while a
writer holds the file, so ``read_only=True`` then opens a private *snapshot copy* of the file
(``store.is_snapshot_copy`` is True; :meth:`refresh` takes a newer copy).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ConcurrencyError, ReadOnlyStoreError, StoreError, StoreLockedError
from allframe_lab.store._columns import _dt, _ordered, _records, _row_to_event
from allframe_lab.store._staging import stage
from allframe_lab.store.port import EventStore, StateWrites
from allframe_lab.store.records import (
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoreStats,
    StreamInfo,
)

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pyarrow as pa

__all__ = ["DuckDBEventStore", "drain", "frame", "registered", "transaction"]

_UTC = UTC

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

_BULK_INSERT = """
INSERT INTO events
SELECT $head + b.rn AS position,
       b.stream_id,
       coalesce(c.version, 0)
         + row_number() OVER (PARTITION BY b.stream_id ORDER BY b.rn) AS version,
       coalesce(TRY_CAST(b.event_id AS UUID), uuidv4()) AS event_id,
       b.type, b.schema_version, b.data::JSON, b.metadata::JSON, b.occurred_at, $now
FROM _af_bulk AS b LEFT JOIN _af_current AS c USING (stream_id)
ORDER BY position
"""


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
    con: duckdb.DuckDBPyConnection, lock: threading.RLock
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Hold ``lock`` and run a transaction on ``con``: commit on success, roll back on error."""
    with lock:
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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), default=str)


class DuckDBEventStore(EventStore):
    """Event store in a DuckDB database file (or an existing DuckDB connection).

    Parameters
    ----------
    path_or_connection : str, os.PathLike or duckdb.DuckDBPyConnection, default ":memory:"
        A database file (created if missing), ``":memory:"``, or an open connection (which the
        store uses but does not close).
    read_only : bool, default False
        Open for reading only. If another process holds the file for writing, a private
        snapshot copy of the file is opened instead (``is_snapshot_copy``).

    Raises
    ------
    StoreLockedError
        If another process holds the file for writing and ``read_only`` is False.

    Examples
    --------
    >>> from allframe_lab.store import DuckDBEventStore, NewEvent
    >>> store = DuckDBEventStore(":memory:")
    >>> recorded = store.append("order-1", [NewEvent("OrderPlaced", {"total": 30})])
    >>> recorded[0].position, recorded[0].version, store.stream_version("order-1")
    (1, 1, 1)
    >>> store.close()
    """

    def __init__(
        self,
        path_or_connection: str | os.PathLike[str] | duckdb.DuckDBPyConnection = ":memory:",
        /,
        *,
        read_only: bool = False,
    ) -> None:
        import duckdb

        self._lock = threading.RLock()
        self.read_only = read_only
        self.is_snapshot_copy = False
        self._copy_dir: str | None = None
        self._owns_connection = not isinstance(path_or_connection, duckdb.DuckDBPyConnection)
        if isinstance(path_or_connection, duckdb.DuckDBPyConnection):
            self.path = ":connection:"
            self._con = path_or_connection
        else:
            self.path = os.fspath(path_or_connection)
            self._con = self._connect(self.path)
        self._con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
        if not self.read_only:
            self._con.execute(SCHEMA)
        self._insert_sql: dict[int, str] = {}
        # streams that have snapshots (the writer's view, loaded on first need): a load of a
        # stream without one skips the snapshot query. A superset is harmless: then we query.
        self._snapshotted: set[str] | None = None
        self._closed = False
        self._load_versions()

    # -------------------------------------------------------------- opening
    def _connect(self, path: str) -> duckdb.DuckDBPyConnection:
        import duckdb

        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            return duckdb.connect(path, read_only=self.read_only and Path(path).exists())
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise StoreError(f"cannot open DuckDB file {path!r}: {exc}") from exc
            if not self.read_only:
                raise StoreLockedError(path, str(exc).splitlines()[0]) from exc
            return self._connect_copy(path)

    def _connect_copy(self, path: str) -> duckdb.DuckDBPyConnection:
        """Open a private copy of a file that a writer holds (DuckDB refuses shared opens)."""
        import duckdb

        self._copy_dir = tempfile.mkdtemp(prefix="allframe-ro-")
        target = os.path.join(self._copy_dir, os.path.basename(path))
        last: Exception | None = None
        for _ in range(5):  # the writer may checkpoint while we copy: retry
            try:
                shutil.copyfile(path, target)
                if os.path.exists(path + ".wal"):
                    shutil.copyfile(path + ".wal", target + ".wal")
                elif os.path.exists(target + ".wal"):
                    os.remove(target + ".wal")
                con = duckdb.connect(target)  # private copy: replaying its WAL is harmless
                self.is_snapshot_copy = True
                return con
            except duckdb.Error as exc:  # pragma: no cover - depends on timing
                last = exc
        raise StoreError(f"cannot open a read-only copy of {path!r}: {last}")

    def refresh(self) -> None:
        """Re-open a read-only store (a new snapshot copy if the file is held by a writer)."""
        if not self.read_only or not self._owns_connection:
            return
        with self._lock:
            self._con.close()
            self._cleanup_copy()
            self.is_snapshot_copy = False
            self._con = self._connect(self.path)
            self._con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
            self._load_versions()

    def _load_versions(self) -> None:
        if not self._has_events_table():
            self._versions: dict[str, int] = {}
            self._head = 0
            return
        rows = self._con.execute(
            "SELECT stream_id, max(version) FROM events GROUP BY stream_id"
        ).fetchall()
        self._versions = dict(rows)
        self._head = self._con.execute(
            "SELECT coalesce(max(position), 0) FROM events").fetchone()[0]

    def _has_events_table(self) -> bool:
        return bool(self._con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'events' "
            "AND schema_name = current_schema()"
        ).fetchone()[0])

    # -------------------------------------------------------------- plumbing
    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (projections write their tables through it)."""
        return self._con

    @property
    def lock(self) -> threading.RLock:
        """Lock serializing use of the connection across threads."""
        return self._lock

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the lock and run a DuckDB transaction: commit on success, roll back on error."""
        self._check_writable()
        with transaction(self._con, self._lock) as con:
            yield con

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        if self.read_only:
            raise ReadOnlyStoreError(
                f"the store {self.path!r} was opened with read_only=True; open it without "
                "read_only in the one process that writes"
            )

    def _stream_version_now(self, stream_id: str) -> int:
        if self.read_only:
            row = self._con.execute(
                "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = ?", [stream_id]
            ).fetchone()
            return int(row[0])
        return self._versions.get(stream_id, 0)

    # -------------------------------------------------------------- writing
    def append_many(
        self,
        batches: Sequence[tuple[str, Sequence[NewEvent], int | ExpectedVersion]],
        /,
        *,
        state: StateWrites | None = None,
    ) -> list[list[RecordedEvent]]:
        import duckdb

        self._check_writable()
        with self._lock:
            out, pending = stage(batches, self._versions_get, self._head, datetime.now(_UTC))
            params: list[Any] = []
            for batch in out:
                for r in batch:
                    params.extend((r.position, r.stream_id, r.version, str(r.event_id), r.type,
                                   r.schema_version, _dumps(r.data),
                                   _dumps(r.metadata) if r.metadata else "{}", r.occurred_at,
                                   r.recorded_at))
            n = len(params) // 10
            try:
                if state:
                    writes = [(ns, k, None if v is None else _dumps(v))
                              for (ns, k), v in state.items()]
                    with transaction(self._con, self._lock) as con:
                        if n:
                            self._insert(n, params)
                        self._write_state_sql(con, writes)
                elif n:
                    self._insert(n, params)
            except duckdb.ConstraintException as exc:
                self._load_versions()  # someone wrote behind our back: resync, report conflict
                sid = batches[0][0]
                raise ConcurrencyError(sid, batches[0][2], self._versions.get(sid, 0)) from exc
            self._versions.update(pending)
            self._head += n
            return out

    # -------------------------------------------------------------- runtime state
    def get_state(self, namespace: str, key: str, /) -> Any | None:
        with self._lock:
            try:
                row = self._con.execute(
                    "SELECT value::VARCHAR FROM runtime_state WHERE namespace = ? AND key = ?",
                    [namespace, key]).fetchone()
            except Exception:  # a read-only file written before runtime state existed
                return None
        return None if row is None else json.loads(row[0])

    def put_state(self, namespace: str, items: Mapping[str, Any], /) -> None:
        self._check_writable()
        writes = [(namespace, k, None if v is None else _dumps(v)) for k, v in items.items()]
        if not writes:
            return
        with transaction(self._con, self._lock) as con:
            self._write_state_sql(con, writes)

    def scan_state(self, namespace: str, /) -> dict[str, Any]:
        with self._lock:
            try:
                rows = self._con.execute(
                    "SELECT key, value::VARCHAR FROM runtime_state WHERE namespace = ? "
                    "ORDER BY key", [namespace]).fetchall()
            except Exception:  # a read-only file written before runtime state existed
                return {}
        return {k: json.loads(v) for k, v in rows}

    def _write_state_sql(self, con: duckdb.DuckDBPyConnection,
                     writes: list[tuple[str, str, str | None]]) -> None:
        now = datetime.now(_UTC)
        deletes = [(ns, k) for ns, k, v in writes if v is None]
        upserts = [(ns, k, v, now) for ns, k, v in writes if v is not None]
        for ns, k in deletes:
            con.execute("DELETE FROM runtime_state WHERE namespace = ? AND key = ?", [ns, k])
        if upserts:
            con.execute("INSERT OR REPLACE INTO runtime_state VALUES "
                        + ", ".join(["(?, ?, ?, ?)"] * len(upserts)),
                        [x for row in upserts for x in row])

    def _versions_get(self, stream_id: str) -> int:
        return self._versions.get(stream_id, 0)

    def _insert(self, n: int, params: list[Any]) -> None:
        if n <= 256:
            sql = self._insert_sql.get(n)
            if sql is None:
                row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                sql = self._insert_sql[n] = "INSERT INTO events VALUES " + ", ".join([row] * n)
            self._con.execute(sql, params)
        else:
            self._insert_arrow(params)

    def _insert_arrow(self, params: list[Any]) -> None:
        import pyarrow as pa

        cols = [params[i::10] for i in range(10)]
        tbl = pa.table({
            "position": pa.array(cols[0], pa.int64()),
            "stream_id": pa.array(cols[1], pa.string()),
            "version": pa.array(cols[2], pa.int32()),
            "event_id": pa.array(cols[3], pa.string()),
            "type": pa.array(cols[4], pa.string()),
            "schema_version": pa.array(cols[5], pa.int32()),
            "data": pa.array(cols[6], pa.string()),
            "metadata": pa.array(cols[7], pa.string()),
            "occurred_at": pa.array(cols[8], pa.timestamp("us", tz="UTC")),
            "recorded_at": pa.array(cols[9], pa.timestamp("us", tz="UTC")),
        })
        with registered(self._con, "_af_rows", tbl):
            self._con.execute(
                "INSERT INTO events SELECT position, stream_id, version, event_id::UUID, type, "
                "schema_version, data::JSON, metadata::JSON, occurred_at, recorded_at "
                "FROM _af_rows ORDER BY position"
            )

    def append_arrow(self, table: pa.Table, /) -> int:
        import pyarrow as pa
        import pyarrow.compute as pc

        from allframe_lab.store._arrow import normalize_import_table

        self._check_writable()
        table = normalize_import_table(table)
        n = table.num_rows
        if n == 0:
            return 0
        table = table.append_column("rn", pa.array(range(1, n + 1), pa.int64()))
        with self._lock:
            counts = pc.value_counts(table.column("stream_id")).to_pylist()
            added = {c["values"]: c["counts"] for c in counts}
            current = pa.table({
                "stream_id": pa.array(list(added), pa.string()),
                "version": pa.array([self._versions.get(s, 0) for s in added], pa.int32()),
            })
            with registered(self._con, "_af_bulk", table), \
                    registered(self._con, "_af_current", current), \
                    self.transaction() as con:
                con.execute(_BULK_INSERT, {"head": self._head, "now": datetime.now(_UTC)})
            for sid, k in added.items():
                self._versions[sid] = self._versions.get(sid, 0) + k
            self._head += n
            return n

    # -------------------------------------------------------------- reading
    def read_stream(
        self, stream_id: str, /, from_version: int = 1, to_version: int | None = None
    ) -> list[RecordedEvent]:
        sql = f"SELECT {_COLUMNS} FROM events WHERE stream_id = ? AND version >= ?"
        params: list[Any] = [stream_id, from_version]
        if to_version is not None:
            sql += " AND version <= ?"
            params.append(to_version)
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY version", params).fetchall()
        return [_row_to_event(r) for r in rows]

    def read_stream_columns(
        self, stream_id: str, /, from_version: int = 1, to_version: int | None = None
    ) -> pa.Table:
        """The narrow columns of one stream, in version order (the fast path for aggregate
        loads): those of :meth:`read_event_columns` but ``stream_id``, which is known."""
        sql = f"SELECT {_NARROW_STREAM} FROM events WHERE stream_id = ? AND version >= ?"
        params: list[Any] = [stream_id, from_version]
        if to_version is not None:
            sql += " AND version <= ?"
            params.append(to_version)
        return _ordered(self._arrow(sql, params), "version")

    def read_batches(
        self,
        from_position: int = 1,
        to_position: int | None = None,
        *,
        types: Collection[str] | None = None,
        until: datetime | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[RecordedEvent]]:
        # Read as Arrow columns and build the records column-wise: the payloads and metadata
        # of a batch are parsed by one json.loads each, not one per event.
        query = self._batch_query(_ARROW_COLUMNS, from_position, to_position, types, until,
                                  batch_size)
        if query is None:
            return
        sql, extra = query
        start = max(from_position, 1)
        while True:
            table = self._arrow(sql, [start, *extra])
            if not table.num_rows:
                return
            records = _records(table)
            yield records
            if len(records) < batch_size:
                return
            start = records[-1].position + 1

    def read_rows(
        self,
        from_position: int = 1,
        to_position: int | None = None,
        *,
        types: Collection[str] | None = None,
        until: datetime | None = None,
        batch_size: int = 10_000,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Raw row tuples, in position order, a batch at a time.

        Each row is ``(position, stream_id, version, event_id, type, schema_version, data,
        metadata, occurred_at_us, recorded_at_us)`` with JSON as text and times in
        microseconds since the epoch.
        """
        query = self._batch_query(_COLUMNS, from_position, to_position, types, until,
                                  batch_size)
        if query is None:
            return
        sql, extra = query
        start = max(from_position, 1)
        while True:
            with self._lock:
                rows = self._con.execute(sql, [start, *extra]).fetchall()
            if not rows:
                return
            yield rows
            if len(rows) < batch_size:
                return
            start = rows[-1][0] + 1

    @staticmethod
    def _batch_query(columns: str, from_position: int, to_position: int | None,
                     types: Collection[str] | None, until: datetime | None, batch_size: int,
                     ) -> tuple[str, list[Any]] | None:
        """A keyset-paginated query (first parameter: the start position) and its other
        parameters; ``None`` if nothing can match."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        where = ["position >= ?"]
        extra: list[Any] = []
        if to_position is not None:
            where.append("position <= ?")
            extra.append(to_position)
        if types is not None:
            types = list(types)
            if not types:
                return None
            where.append(f"type IN ({', '.join('?' * len(types))})")
            extra.extend(types)
        if until is not None:
            where.append("occurred_at <= ?")
            extra.append(until)
        return (f"SELECT {columns} FROM events WHERE {' AND '.join(where)} "
                f"ORDER BY position LIMIT {int(batch_size)}"), extra

    def read_event_columns(
        self, from_position: int = 1, to_position: int | None = None, *,
        batch_size: int = 10_000,
    ) -> Iterator[pa.Table]:
        """The narrow columns of the log for replays, a position range at a time.

        Parameters
        ----------
        from_position, to_position : int
            The first and last position to read (``None``: the head).
        batch_size : int, default 10,000
            Positions per batch.

        Yields
        ------
        pyarrow.Table
            Columns ``position`` (int64), ``stream_id``, ``version``, ``type``,
            ``schema_version``, ``data`` (the payload's JSON text) and ``occurred_us``
            (``occurred_at`` in microseconds since the epoch), in position order. Arrow
            columns cost a fraction of Python row tuples, and payloads stay in one buffer
            that the decoder hands to pydantic as one JSON array per event type.
        """
        end = self.head_position if to_position is None else min(to_position,
                                                                   self.head_position)
        start = max(from_position, 1)
        sql = f"SELECT {_NARROW} FROM events WHERE position BETWEEN ? AND ?"
        while start <= end:
            stop = min(start + batch_size - 1, end)
            table = _ordered(self._arrow(sql, [start, stop]), "position")
            if table.num_rows:
                yield table
            start = stop + 1

    def _arrow(self, sql: str, params: list[Any]) -> pa.Table:
        """Run a query and return its result as one Arrow table."""
        with self._lock:
            drain(self._con)
            rel = self._con.sql(sql, params=params)
            # DuckDB >= 1.4 names it to_arrow_table; before, arrow() returned a Table
            fetch = getattr(rel, "to_arrow_table", None) or rel.arrow
            return fetch()

    def stream_version(self, stream_id: str, /) -> int:
        with self._lock:
            return self._stream_version_now(stream_id)

    @property
    def head_position(self) -> int:
        if self.read_only:
            with self._lock:
                if not self._has_events_table():
                    return 0
                return int(self._con.execute(
                    "SELECT coalesce(max(position), 0) FROM events").fetchone()[0])
        return self._head

    def streams(self, *, prefix: str | None = None, limit: int | None = None) -> list[StreamInfo]:
        sql = ("SELECT stream_id, max(version), min(position), max(position), "
               "epoch_us(min(occurred_at)), epoch_us(max(occurred_at)) FROM events")
        params: list[Any] = []
        if prefix is not None:
            sql += " WHERE starts_with(stream_id, ?)"
            params.append(prefix)
        sql += " GROUP BY stream_id ORDER BY min(position)"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._con.execute(sql, params).fetchall()
        return [StreamInfo(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5])) for r in rows]

    def stats(self) -> StoreStats:
        with self._lock:
            if not self._has_events_table():
                return StoreStats(0, 0, 0, {}, None, None)
            n, streams, head, lo, hi = self._con.execute(
                "SELECT count(*), count(DISTINCT stream_id), coalesce(max(position), 0), "
                "epoch_us(min(occurred_at)), epoch_us(max(occurred_at)) FROM events"
            ).fetchone()
            types = self._con.execute(
                "SELECT type, count(*) FROM events GROUP BY type ORDER BY type").fetchall()
        return StoreStats(n, streams, head, dict(types), _dt(lo) if lo is not None else None,
                          _dt(hi) if hi is not None else None)

    def position_at(self, timestamp: datetime, /) -> int:
        with self._lock:
            first_after = self._con.execute(
                "SELECT min(position) FROM events WHERE occurred_at > ?", [timestamp]
            ).fetchone()[0]
        return self.head_position if first_after is None else int(first_after) - 1

    # -------------------------------------------------------------- snapshots
    def save_snapshot(self, snapshot: Snapshot, /) -> None:
        self._check_writable()
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO snapshots (stream_id, version, aggregate_type, "
                "state_version, state, recorded_at, schema_fingerprint) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [snapshot.stream_id, snapshot.version, snapshot.aggregate_type,
                 snapshot.state_version, _dumps(snapshot.state),
                 snapshot.recorded_at or datetime.now(_UTC), snapshot.schema_fingerprint],
            )
            if self._snapshotted is not None:
                self._snapshotted.add(snapshot.stream_id)

    def load_snapshot(
        self, stream_id: str, /, *, max_version: int | None = None
    ) -> Snapshot | None:
        where = " FROM snapshots WHERE stream_id = ?"
        params: list[Any] = [stream_id]
        if max_version is not None:
            where += " AND version <= ?"
            params.append(max_version)
        row = None
        with self._lock:
            if not self.read_only and stream_id not in self._snapshot_streams():
                return None
            # a read-only file written before fingerprints has no schema_fingerprint column
            for fingerprint in (", schema_fingerprint", ""):
                try:
                    row = self._con.execute(
                        "SELECT stream_id, version, aggregate_type, state_version, "
                        f"state::VARCHAR, epoch_us(recorded_at){fingerprint}{where} "
                        "ORDER BY version DESC LIMIT 1", params).fetchone()
                    break
                except Exception:  # read-only copy of a file without a snapshots table
                    continue
        if row is None:
            return None
        return Snapshot(row[0], row[1], row[2], row[3], json.loads(row[4]), _dt(row[5]),
                        row[6] if len(row) > 6 else None)

    def _snapshot_streams(self) -> set[str]:
        """The streams with snapshots, as the writing process knows them (no other process
        can write to the file)."""
        if self._snapshotted is None:
            self._snapshotted = {r[0] for r in self._con.execute(
                "SELECT DISTINCT stream_id FROM snapshots").fetchall()}
        return self._snapshotted

    # -------------------------------------------------------------- lifecycle
    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_connection:
                self._con.close()
            self._cleanup_copy()

    def _cleanup_copy(self) -> None:
        if self._copy_dir:
            shutil.rmtree(self._copy_dir, ignore_errors=True)
            self._copy_dir = None

    def __repr__(self) -> str:
        mode = "read-only copy" if self.is_snapshot_copy else (
            "read-only" if self.read_only else "read-write")
        return f"DuckDBEventStore({self.path!r}, {mode}, head_position={self.head_position})"
