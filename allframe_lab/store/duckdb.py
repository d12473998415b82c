"""DuckDB event store: the embedded default.

Design (see ``docs/design.md``): a DuckDB statement costs ~0.3 ms and a commit ~1 ms, so

- the writing process keeps every stream's version and the head position in memory and checks
  expected versions there; ``UNIQUE (stream_id, version)`` stays as the safety net;
- one append is one multi-row INSERT (one statement, one transaction);
- bulk imports go through Arrow in one ``INSERT ... SELECT`` with window functions that number
  positions and versions;
- reads page through the log by position (keyset pagination), never loading it whole.

A file store writes through a *journal* (``store/_journal.py``) by default: an append is
committed by one write (and fdatasync) to ``<file>.journal``, and the journaled events move into
the ``events`` table in batches and before any read of the database. A DuckDB commit costs
~0.4-1 ms, a journal append ~0.2 ms. ``journal=False`` commits every append in DuckDB.

DuckDB allows one writing process per file. A second writer gets
:class:`~allframe_lab.errors.StoreLockedError`. DuckDB refuses even a read-only open while a
writer holds the file, so ``read_only=True`` then opens a private *snapshot copy* of the file
(``store.is_snapshot_copy`` is True; :meth:`refresh` takes a newer copy).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ConcurrencyError, ReadOnlyStoreError, StoreError, StoreLockedError
from allframe_lab.store._columns import _dt, _ordered, _records, _row_to_event, fetch_arrow
from allframe_lab.store._copy import copy_database
from allframe_lab.store._journal import (
    RESET_BYTES,
    Journal,
    Row,
    close_at_exit,
    journal_path,
    journal_size,
    read_journal,
    replay,
)
from allframe_lab.store._payload import PayloadColumnsMixin, configure
from allframe_lab.store._sql import (
    _ARROW_COLUMNS,
    _COLUMNS,
    _NARROW,
    _NARROW_STREAM,
    EPOCH,
    SCHEMA,
    US,
    batch_query,
    bulk_insert_sql,
    drain,
    dumps,
    frame,
    insert_rows,
    registered,
    transaction,
)
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

__all__ = ["DuckDBEventStore", "drain", "frame", "journal_path", "registered", "transaction"]

_UTC = UTC

class DuckDBEventStore(PayloadColumnsMixin, EventStore):
    """Event store in a DuckDB database file (or an existing DuckDB connection).

    Parameters
    ----------
    path_or_connection : str, os.PathLike or duckdb.DuckDBPyConnection, default ":memory:"
        A database file (created if missing), ``":memory:"``, or an open connection (which the
        store uses but does not close).
    read_only : bool, default False
        Open for reading only. If another process holds the file for writing (or a journal
        holds events the table lacks), a private snapshot copy of the file is opened instead
        (``is_snapshot_copy``), with the journaled events in it.
    snapshot : bool, default False
        With ``read_only``: always read a private snapshot copy, so the file is never locked
        and a writer can open it at any time (:meth:`refresh` takes a newer copy).
    journal : bool, optional
        Commit appends to a write-ahead journal beside the file (``<file>.journal``) and move
        them into the ``events`` table in batches (see the module docstring). Default: on for a
        database file opened for writing, off for ``":memory:"`` and a given connection.
    fsync : bool, default True
        With the journal: ``fdatasync`` it at every append, so a returned append survives a
        power loss; ``False`` survives a crash of the process only. Without the journal,
        DuckDB syncs its own commits.
    flush_every : int, default 2,000
        With the journal: move journaled events into the table once this many are waiting.
    payload_columns : mapping of str to str, optional
        Payload fields to copy into typed columns of ``events``, e.g. ``{"amount":
        "BIGINT"}``: column ``amount`` is ``TRY_CAST(data->>'amount' AS BIGINT)``, filled by
        every write, so SQL reads it without parsing JSON (see :attr:`payload_columns`).

    Raises
    ------
    StoreLockedError
        If another process holds the file for writing and ``read_only`` is False.
    StoreConfigError
        If ``payload_columns`` has a bad name or type, or changes the type of an existing
        column.
    StoreError
        If the journal is damaged before its last line, or ``payload_columns`` names a
        column that a read-only store lacks.

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
        snapshot: bool = False,
        journal: bool | None = None,
        fsync: bool = True,
        flush_every: int = 2_000,
        payload_columns: Mapping[str, str] | None = None,
    ) -> None:
        import duckdb

        if flush_every < 1:
            raise ValueError(f"flush_every must be >= 1, got {flush_every}")
        self._lock = threading.RLock()
        self._pending: list[Row] = []  # journaled, not yet in the events table
        self._txn_depth = 0  # open transaction() blocks (appends inside them skip the journal)
        self._journal: Journal | None = None
        self.flush_every = flush_every
        self.read_only = read_only
        self.is_snapshot_copy = False
        self._copy_dir: str | None = None
        if snapshot and not read_only:
            raise ValueError("snapshot=True reads a copy: it needs read_only=True")
        self._always_copy = snapshot
        self._owns_connection = not isinstance(path_or_connection, duckdb.DuckDBPyConnection)
        if isinstance(path_or_connection, duckdb.DuckDBPyConnection):
            self.path = ":connection:"
            self._connection = path_or_connection
        else:
            self.path = os.fspath(path_or_connection)
            self._connection = self._connect(self.path)
        self._con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
        if not self.read_only:
            self._con.execute(SCHEMA)
        try:  # the payload columns (store/_payload.py): added and filled before anything else
            self._payload = configure(self._connection, payload_columns,
                                      writable=not self.read_only)
        except BaseException:
            if self._owns_connection:
                self._connection.close()
            self._cleanup_copy()
            raise
        if journal and (self.read_only or self.path in (":memory:", ":connection:")):
            raise ValueError("journal=True needs a database file opened for writing")
        if journal is None:
            journal = not self.read_only and self.path not in (":memory:", ":connection:")
        # streams that have snapshots (the writer's view, loaded on first need): a load of a
        # stream without one skips the snapshot query. A superset is harmless: then we query.
        self._snapshotted: set[str] | None = None
        self._closed = False
        self._load_versions()
        if not self.read_only and self._owns_connection and self.path != ":memory:":
            try:
                self._recover_journal()
            except BaseException:
                self._connection.close()  # release the file: the error says what to do
                raise
            if journal:
                self._journal = Journal(journal_path(self.path), fsync=fsync)
                close_at_exit(self)

    def _recover_journal(self) -> None:
        """Insert the events a previous writer left in the journal, then empty it."""
        path = journal_path(self.path)
        if not journal_size(self.path):
            return
        if replay(self._connection, read_journal(path), self._payload):
            self._load_versions()
        with open(path, "r+b") as f:  # everything in it is in the table now (or torn)
            f.truncate(0)
            os.fsync(f.fileno())

    # -------------------------------------------------------------- opening
    def _connect(self, path: str) -> duckdb.DuckDBPyConnection:
        import duckdb

        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        if self.read_only and (self._always_copy or journal_size(path)):
            return self._connect_copy(path)  # e.g. a writer's journal: replay it into a copy
        try:
            return duckdb.connect(path, read_only=self.read_only and Path(path).exists())
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise StoreError(f"cannot open DuckDB file {path!r}: {exc}") from exc
            if not self.read_only:
                raise StoreLockedError(path, str(exc).splitlines()[0]) from exc
            return self._connect_copy(path)

    def _connect_copy(self, path: str) -> duckdb.DuckDBPyConnection:
        """Open a private copy of the file (see ``store/_copy.py``)."""
        con, self._copy_dir = copy_database(path, owner=self)
        self.is_snapshot_copy = True
        return con

    def refresh(self) -> None:
        """Re-open a read-only store (a new snapshot copy if the file is held by a writer)."""
        if not self.read_only or not self._owns_connection:
            return
        with self._lock:
            self._connection.close()
            self._cleanup_copy()
            self.is_snapshot_copy = False
            self._connection = self._connect(self.path)
            self._con.execute("SET TimeZone = 'UTC'; SET enable_progress_bar = false")
            self._payload = configure(self._connection, None, writable=False)
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
    def _con(self) -> duckdb.DuckDBPyConnection:
        """The connection, with every journaled event in the ``events`` table: each use of
        the database by this class goes through here, so reads see every committed append."""
        if self._pending:
            self.flush()
        return self._connection

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (projections write their tables through it).

        With the journal, getting it moves journaled events into the ``events`` table first;
        get it again (or call :meth:`flush`) after appending, rather than keeping it.
        """
        return self._con

    @property
    def copy_path(self) -> str | None:
        """The private copy this store reads (``None`` unless :attr:`is_snapshot_copy`)."""
        if not self._copy_dir:
            return None
        return os.path.join(self._copy_dir, os.path.basename(self.path))

    @property
    def journal(self) -> Journal | None:
        """The write-ahead journal, or ``None`` if appends commit in DuckDB."""
        return self._journal

    @property
    def pending_count(self) -> int:
        """Appended events (committed in the journal) not yet in the ``events`` table."""
        return len(self._pending)

    def flush(self) -> None:
        """Move the journaled events into the ``events`` table (one INSERT, one transaction).

        Every read of the database does this first; call it before using a
        :attr:`connection` obtained before appending.

        Raises
        ------
        StoreError
            If DuckDB refuses the rows. They stay committed in the journal and are inserted
            when the file is next opened for writing.
        """
        self._flush(arrow=True)

    def _flush(self, *, arrow: bool) -> None:
        """:meth:`flush`; ``arrow=False`` inserts without importing pyarrow (at exit)."""
        with self._lock:
            rows = self._pending
            if not rows:
                return
            import duckdb

            try:
                insert_rows(self._connection, rows, arrow=arrow, begin=not self._txn_depth,
                            payload=self._payload)
            except duckdb.Error as exc:
                raise StoreError(
                    f"cannot move {len(rows):,} journaled events into {self.path!r}: {exc}. They "
                    "are committed in the journal and are inserted when the file is next opened "
                    "for writing"
                ) from exc
            self._pending = []
            self._reset_journal_if_big()

    def _reset_journal_if_big(self) -> None:
        """Empty the journal once it is big; call with every journaled event committed in the
        table (the journal only needs what the table lacks, and replay skips the rest)."""
        if self._journal is not None and not self._pending and \
                self._journal.size > RESET_BYTES:
            self._journal.reset()

    @property
    def lock(self) -> threading.RLock:
        """Lock serializing use of the connection across threads."""
        return self._lock

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the lock and run a DuckDB transaction: commit on success, roll back on error.

        Journaled events waiting for the table are inserted in the same transaction (one
        commit for both), and appends inside it commit with it, not through the journal.
        """
        self._check_writable()
        with self._lock:
            con = self._connection
            con.execute("BEGIN TRANSACTION")
            rows, self._pending = self._pending, []
            self._txn_depth += 1
            try:
                if rows:
                    insert_rows(con, rows, begin=False, payload=self._payload)
                yield con
                con.execute("COMMIT")
            except BaseException:
                self._pending = rows + self._pending  # still committed in the journal
                with contextlib.suppress(Exception):  # a failed COMMIT ended it already
                    con.execute("ROLLBACK")
                raise
            finally:
                self._txn_depth -= 1
            self._reset_journal_if_big()

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
        if self._journal is not None and not state and not self._txn_depth:
            return self._append_journaled(batches)
        with self._lock:
            out, pending, rows = self._stage(batches)
            try:
                if state:
                    writes = [(ns, k, None if v is None else dumps(v))
                              for (ns, k), v in state.items()]
                    with self.transaction() as con:
                        if rows:
                            insert_rows(con, rows, begin=False, payload=self._payload)
                        self._write_state_sql(con, writes)
                elif rows:
                    insert_rows(self._con, rows, begin=not self._txn_depth,
                                payload=self._payload)
            except duckdb.ConstraintException as exc:
                self._load_versions()  # someone wrote behind our back: resync, report conflict
                sid = batches[0][0]
                raise ConcurrencyError(sid, batches[0][2], self._versions.get(sid, 0)) from exc
            self._versions.update(pending)
            self._head += len(rows)
            return out

    def _stage(self, batches: Sequence[tuple[str, Sequence[NewEvent], int | ExpectedVersion]],
               ) -> tuple[list[list[RecordedEvent]], dict[str, int], list[Row]]:
        """Check and number an append (see ``stage``), and its rows for the table or the
        journal (payloads as JSON text, times in microseconds since the epoch)."""
        now = datetime.now(_UTC)
        out, pending = stage(batches, self._versions_get, self._head, now)
        rec_us = (now - EPOCH) // US
        rows: list[Row] = [
            (r.position, r.stream_id, r.version, str(r.event_id), r.type, r.schema_version,
             dumps(r.data), dumps(r.metadata) if r.metadata else "{}",
             rec_us if r.occurred_at is now else (r.occurred_at - EPOCH) // US, rec_us)
            for batch in out for r in batch]
        return out, pending, rows

    def _append_journaled(
        self, batches: Sequence[tuple[str, Sequence[NewEvent], int | ExpectedVersion]],
    ) -> list[list[RecordedEvent]]:
        """Commit by one journal write; the rows reach the table at the next flush."""
        journal = self._journal
        assert journal is not None
        with self._lock:
            out, pending, rows = self._stage(batches)
            if not rows:
                return out
            journal.append(rows)  # the commit point
            self._pending.extend(rows)
            self._versions.update(pending)
            self._head += len(rows)
            if len(self._pending) >= self.flush_every:
                self.flush()
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
        writes = [(namespace, k, None if v is None else dumps(v)) for k, v in items.items()]
        if not writes:
            return
        with self.transaction() as con:
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
                con.execute(bulk_insert_sql(self._payload),
                            {"head": self._head, "now": datetime.now(_UTC)})
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
        # Read as Arrow columns and build the records column-wise: the payloads of a batch
        # are parsed by one json.loads; event ids, metadata and times when first asked for.
        query = batch_query(_ARROW_COLUMNS, types, until, batch_size)
        if query is None:
            return
        for lo, hi in self._windows(from_position, to_position, batch_size):
            table = _ordered(self._arrow(query[0], [lo, hi, *query[1]]), "position")
            if table.num_rows:
                yield _records(table)

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
        query = batch_query(_COLUMNS, types, until, batch_size)
        if query is None:
            return
        for lo, hi in self._windows(from_position, to_position, batch_size):
            with self._lock:
                rows = self._con.execute(query[0] + " ORDER BY position",
                                         [lo, hi, *query[1]]).fetchall()
            if rows:
                yield rows

    def _windows(self, from_position: int, to_position: int | None, batch_size: int,
                 ) -> Iterator[tuple[int, int]]:
        """The position ranges of a batched read, ``batch_size`` positions each.

        Positions are dense (1 to the head), so a range holds ``batch_size`` events unless a
        filter leaves some out (as in the in-memory store). Each batch is read with
        ``position BETWEEN``, which DuckDB's zone maps answer from the row groups that hold
        the range: a keyset query (``position >= ? ORDER BY position LIMIT n``) sorts the
        whole rest of the log for every batch, 3x slower on 100,000 events and quadratic in
        the log's length. The writer's head (in memory) is read again before each batch, so
        events appended while reading are read too; a read-only store sees no appends.
        """
        start = max(from_position, 1)
        end = self.head_position  # a query on a read-only store: once
        while True:
            if not self.read_only:
                end = self.head_position
            if to_position is not None:
                end = min(end, to_position)
            if start > end:
                return
            stop = min(start + batch_size - 1, end)
            yield start, stop
            start = stop + 1

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
            con = self._con
            drain(con)
            return fetch_arrow(con, sql, params)

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
                 snapshot.state_version, dumps(snapshot.state),
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
        self._close(arrow=True)

    def _close(self, *, arrow: bool) -> None:
        """:meth:`close`; ``arrow=False`` flushes without importing pyarrow (at exit)."""
        with self._lock:
            if self._closed:
                return
            try:
                self._flush(arrow=arrow)
                if self._journal is not None:
                    self._journal.reset()
            finally:  # a failed flush leaves its events in the journal for the next writer
                self._closed = True
                if self._journal is not None:
                    self._journal.close()
                if self._owns_connection:
                    self._connection.close()
                self._cleanup_copy()

    def _cleanup_copy(self) -> None:
        if self._copy_dir:
            shutil.rmtree(self._copy_dir, ignore_errors=True)
            self._copy_dir = None

    def __repr__(self) -> str:
        mode = "read-only copy" if self.is_snapshot_copy else (
            "read-only" if self.read_only else "read-write")
        if self._journal is not None:
            mode += f", journal with {len(self._pending):,} events to flush"
        return f"DuckDBEventStore({self.path!r}, {mode}, head_position={self.head_position})"
