"""The projection runner: materializes a Model's projections as DuckDB tables.

- **SQL projections** rebuild in one ``CREATE OR REPLACE TABLE ... AS`` statement over the log
  prefix ``position <= head``; ``as_of`` runs the same SELECT over ``position <= p``.
- **Python projections** fold events through their handlers into keyed rows, and write the rows
  they touched back in batches (DELETE by key + INSERT from Arrow). ``as_of`` folds from the
  nearest cached intermediate state, so repeated jumps are fast.

Both store their checkpoint (the last position folded) in ``projection_checkpoints`` in the
same transaction as their rows. With a DuckDB store the tables live in the store's database;
with an in-memory store they live in a private in-memory DuckDB database.
"""

from __future__ import annotations

import json
import operator
import threading
import warnings
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import ProjectionError
from allframe_lab.model import Model, Projection, SqlProjection
from allframe_lab.model.aggregate import apply_fns
from allframe_lab.runtime import dead_letters
from allframe_lab.runtime._decode import DecodedBatch, EventDecoder, gc_paused, iter_decoded
from allframe_lab.runtime._frames import (
    column,
    rows_to_arrow,
    scalars,
    select_with_types,
    state_frame,
    update_row,
)
from allframe_lab.runtime._state_cache import CopyOnWriteRows, StateCache
from allframe_lab.store import AsOf, EventStore
from allframe_lab.store._payload import PayloadColumns
from allframe_lab.store.duckdb import drain, frame, registered, transaction

if TYPE_CHECKING:  # pragma: no cover
    import duckdb
    import pandas as pd

__all__ = ["ParkedEventWarning", "ProjectionHandle", "ProjectionRunner"]


#: Flushes with at most this many touched rows use parameterized SQL instead of Arrow.
_SMALL_FLUSH = 64
_position = operator.attrgetter("position")

class ParkedEventWarning(RuntimeWarning):
    """A projection's handler failed on events; they were parked and processing went on."""


def _skip(inst: Projection, event: Any) -> None:
    """The handler of events a projection has no handler for."""


def _subscriber(name: str) -> str:
    return f"projection:{name}"

_CHECKPOINTS = """
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name       VARCHAR PRIMARY KEY,
    kind       VARCHAR NOT NULL,
    position   BIGINT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
)
"""


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool | None) -> Any:
    """A tqdm bar for long replays (by default from 50,000 events on)."""
    if enabled is False or (enabled is None and total < 50_000):
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="ev", unit_scale=True, leave=False)


class ProjectionRunner:
    """Runs a Model's projections against a store.

    Parameters
    ----------
    model : Model
    store : EventStore
        A :class:`~allframe_lab.store.DuckDBEventStore` (tables go into its database) or
        any other store (tables go into a private in-memory DuckDB database).
    flush_every : int, default 50_000
        A Python projection writes its touched rows and checkpoint every this many events.
    """

    def __init__(self, model: Model, store: EventStore, *, flush_every: int = 50_000,
                 decoder: EventDecoder | None = None, on_error: str = "park") -> None:
        import duckdb

        self.model = model
        self.store = store
        self.flush_every = flush_every
        if on_error not in ("park", "raise"):
            raise ValueError(f"on_error must be 'park' or 'raise', got {on_error!r}")
        self.on_error = on_error
        self._parked: list[tuple[str, Any]] = []  # (name, record) not yet written
        self.decoder = decoder or EventDecoder(model)
        self._own_con: duckdb.DuckDBPyConnection | None = None
        if getattr(store, "connection", None) is not None:
            self._lock = store.lock  # type: ignore[attr-defined]
            self._events_rel = "main.events"
        else:
            self._own_con = duckdb.connect()
            self._own_con.execute("SET TimeZone = 'UTC'")
            self._lock = threading.RLock()
            self._events_rel = "_af_events"
        self._mirrored = -1
        self._writable = not getattr(store, "read_only", False)
        if self._writable:
            with self._lock:
                self._con.execute(_CHECKPOINTS)
        self._live: dict[str, Projection] = {}
        self._table_columns: dict[str, set[str]] = {}
        self._checkpoints: dict[str, int] = {}  # committed checkpoints (this writer's)
        #: Records the App just appended (set around live catch-ups, see Subscriptions).
        self.fresh: list[Any] | None = None
        self._pending_checkpoints: dict[str, int] = {}
        self._caches: dict[str, StateCache] = {}
        #: name -> what the live instance touched around its last mark (see _put_mark)
        self._mark_bases: dict[str, _MarkBase] = {}

    # -------------------------------------------------------------- access
    def __getitem__(self, name: str) -> ProjectionHandle:
        self.model.projection_decl(name)
        return ProjectionHandle(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.model.projections)

    def __len__(self) -> int:
        return len(self.model.projections)

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        # asked of the store at every use: a journaled DuckDB store moves the events it has
        # not written into its table yet before it hands out its connection
        if self._own_con is not None:
            return self._own_con
        return self.store.connection  # type: ignore[attr-defined, no-any-return]

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        return self._con

    @property
    def events_relation(self) -> str:
        """The SQL name of the log in :attr:`connection` (``main.events`` for a DuckDB store;
        a view of the in-memory log otherwise, refreshed by :meth:`sql`)."""
        return self._events_rel

    def sql(self, query: str, params: Any = None) -> pd.DataFrame:
        """Run a query against the projection tables (and ``events``) and return a DataFrame.

        Call :meth:`catch_up` first to see the latest events in the tables.
        """
        with self._lock:
            self._mirror()
            return frame(self._con, query, params)

    def _mirror(self) -> None:
        """For non-DuckDB stores: expose the log to DuckDB as the view ``_af_events``."""
        if self._events_rel != "_af_events":
            return
        head = self.store.head_position
        if head == self._mirrored:
            return
        to_arrow = getattr(self.store, "to_arrow", None)
        if to_arrow is None:
            raise ProjectionError(f"{type(self.store).__name__} cannot be mirrored into DuckDB")
        drain(self._con)
        payload = getattr(self.store, "payload_columns", None)
        if payload:  # as a DuckDB store's columns: computed from data, in a view over the log
            self._con.register("_af_events_log", to_arrow())
            columns = PayloadColumns(payload).values_as()
            self._con.execute("CREATE OR REPLACE TEMP VIEW _af_events AS "
                              f"SELECT *{columns} FROM _af_events_log")
        else:
            self._con.register("_af_events", to_arrow())
        self._mirrored = head

    # -------------------------------------------------------------- checkpoints
    def checkpoint(self, name: str) -> int:
        """The last position the projection's table reflects (0 if never built)."""
        cached = self._checkpoints.get(name)
        if cached is not None:
            return cached
        with self._lock:
            try:
                row = self._con.execute(
                    "SELECT position FROM projection_checkpoints WHERE name = ?", [name]
                ).fetchone()
            except Exception:  # a read-only store whose file has no checkpoints yet
                return 0
        if row is None:
            return 0
        if self._writable:  # this process is the only writer: remember it
            self._checkpoints[name] = int(row[0])
        return int(row[0])

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self._pending_checkpoints.clear()
        # a DuckDB store's own transaction also inserts its journaled events: one commit
        block = (transaction(self._own_con, self._lock) if self._own_con is not None
                 else self.store.transaction())  # type: ignore[attr-defined]
        try:
            with block as con:
                yield con
        except BaseException:
            self._pending_checkpoints.clear()
            raise
        self._committed()

    def _set_checkpoint(self, con: duckdb.DuckDBPyConnection, name: str, kind: str,
                        position: int) -> None:
        """Write the checkpoint inside the caller's transaction; :meth:`_committed` records
        it in memory once the transaction committed."""
        if name in self._checkpoints:  # the row exists: an UPDATE costs a third of an upsert
            con.execute("UPDATE projection_checkpoints SET position = ?, updated_at = ? "
                        "WHERE name = ?", [position, datetime.now(UTC), name])
        else:
            con.execute("INSERT OR REPLACE INTO projection_checkpoints VALUES (?, ?, ?, ?)",
                        [name, kind, position, datetime.now(UTC)])
        self._pending_checkpoints[name] = position

    def _committed(self) -> None:
        self._checkpoints.update(self._pending_checkpoints)
        self._pending_checkpoints.clear()

    def _require_writable(self, name: str) -> None:
        if not self._writable:
            raise ProjectionError(
                f"cannot update projection {name!r}: the store is read-only. Read it with "
                ".df(refresh=False) or .as_of(...), or open the store for writing"
            )

    # -------------------------------------------------------------- catch up / rebuild
    def catch_up(self, name: str | None = None, *, progress: bool | None = None) -> dict[str, int]:
        """Bring projections up to the store's head; return each one's checkpoint."""
        names = [name] if name is not None else list(self.model.projections)
        out = {}
        for n in names:
            decl = self.model.projection_decl(n)
            if isinstance(decl, SqlProjection):
                out[n] = self._catch_up_sql(decl)
            else:
                out[n] = self._catch_up_python(n, decl, progress)
        return out

    def rebuild(self, name: str | None = None, *, progress: bool | None = None) -> dict[str, int]:
        """Drop projections' tables and checkpoints and build them again from position 1."""
        names = [name] if name is not None else list(self.model.projections)
        for n in names:
            decl = self.model.projection_decl(n)
            self._require_writable(n)
            table = decl.table if isinstance(decl, SqlProjection) else decl.__table__
            with self._transaction() as con:
                con.execute(f'DROP TABLE IF EXISTS "{table}"')
                con.execute("DELETE FROM projection_checkpoints WHERE name = ?", [n])
            self._live.pop(n, None)
            self._caches.pop(n, None)
            self._mark_bases.pop(n, None)
            self._table_columns.pop(table, None)
            self._checkpoints.pop(n, None)
        return self.catch_up(name, progress=progress)

    def _catch_up_sql(self, decl: SqlProjection) -> int:
        head = self.store.head_position
        if self.checkpoint(decl.name) == head and self._table_exists(decl.table):
            return head
        self._require_writable(decl.name)
        with self._lock:
            self._mirror()
            sql = self._prefix_sql(decl.sql, "position <= ?")
            try:
                with self._transaction() as con:
                    con.execute(f'CREATE OR REPLACE TABLE "{decl.table}" AS {sql}', [head])
                    self._table_columns.pop(decl.table, None)
                    self._set_checkpoint(con, decl.name, "sql", head)
            except Exception as exc:
                raise ProjectionError(f"SQL projection {decl.name!r} failed: {exc}") from exc
        return head

    def _prefix_sql(self, sql: str, condition: str) -> str:
        return (f"WITH events AS (SELECT * FROM {self._events_rel} WHERE {condition}) "
                f"SELECT * FROM ({sql})")

    def _table_exists(self, table: str) -> bool:
        with self._lock:
            return bool(self._con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
                "AND schema_name = current_schema()", [table]).fetchone()[0])

    def _catch_up_python(self, name: str, decl: type[Projection], progress: bool | None) -> int:
        head = self.store.head_position
        checkpoint = self.checkpoint(name)
        inst = self._live.get(name)
        if inst is None or type(inst) is not decl:
            inst = decl(self._load_rows(decl) if checkpoint else None)
            self._live[name] = inst
        if checkpoint >= head:
            return checkpoint
        self._require_writable(name)
        bar = _progress(head - checkpoint, f"projection {name}", progress)
        try:
            with gc_paused():
                self._fold_into(name, decl, inst, checkpoint, head, bar)
        except ProjectionError:
            self._live.pop(name, None)  # in-memory rows are ahead of the table: reload later
            raise
        finally:
            bar.close()
        self._flush(name, decl, inst, head)
        return head

    def _fold_into(self, name: str, decl: type[Projection], inst: Projection, checkpoint: int,
                   head: int, bar: Any) -> None:
        since_flush = 0
        cache = self._cache_for(name, decl)
        interval = self._interval()
        next_mark = (checkpoint // interval + 1) * interval
        fresh = self.fresh
        if fresh and fresh[0].position == checkpoint + 1 and fresh[-1].position == head:
            # the events the App just appended: no need to read them back from the store
            batches: Any = [DecodedBatch(self.decoder.decode_records(fresh), fresh)]
        else:
            batches = iter_decoded(self.store, self.decoder, checkpoint + 1, head)
        # Projection.handle's lookup, done once per event class: saves a call and two dict
        # lookups per event on long replays. A subclass that overrides handle() gets it called.
        fns = apply_fns(decl) if type(inst).handle is Projection.handle else None
        handlers: dict[type, tuple[Any, bool]] = {}

        def lookup(cls: type) -> tuple[Any, bool]:
            if fns is None:
                found = (type(inst).handle, True)
            else:
                found = fns.get(cls.__message_type__) or fns.get("*") or (_skip, False)
            handlers[cls] = found
            return found

        for batch in batches:
            events, records = _unzip(batch)
            # each run of events up to the next mark, then the mark (states kept for fast
            # time travel): found by bisection, not by a test per event
            start, n = 0, len(events)
            while start < n:
                stop = n if records[-1].position <= next_mark else bisect_right(
                    records, next_mark, start, key=_position)
                if start < stop:
                    self._handle_all(name, inst, events[start:stop], records[start:stop],
                                     handlers.get, lookup)
                if stop < n:
                    if cache.wants_mark(next_mark):
                        self._put_mark(name, cache, inst, next_mark)
                    next_mark += interval
                start = stop
            since_flush += n
            bar.update(n)
            if since_flush >= self.flush_every:
                self._flush(name, decl, inst, records[-1].position)
                since_flush = 0

    def _handle_all(self, name: str, inst: Projection, events: list[Any], records: list[Any],
                    known: Any, lookup: Any) -> None:
        """Apply events (with their records) to a live projection; a handler's failure
        parks the event or raises, as the runner's ``on_error`` says."""
        for event, rec in zip(events, records, strict=True):
            try:
                fn, wants_record = known(type(event)) or lookup(type(event))
                if wants_record:
                    fn(inst, event, rec)
                else:
                    fn(inst, event)
            except Exception as exc:
                if self.on_error == "park":
                    self._parked.append((name, dead_letters.park_record(
                        _subscriber(name), rec, exc)))
                    continue
                raise ProjectionError(
                    f"projection {name!r} failed on {rec.type} at position "
                    f"{rec.position} (stream {rec.stream_id!r}): {exc!r}; the table keeps its "
                    "last checkpoint. Fix the handler and call catch_up()"
                ) from exc

    def _load_rows(self, decl: type[Projection]) -> dict[Any, dict[str, Any]]:
        if not self._table_exists(decl.__table__):
            return {}
        with self._lock:
            df = frame(self._con, f'SELECT * FROM "{decl.__table__}"')
        key = decl.__key__
        return {r[key]: r for r in df.astype(object).where(df.notna(), None).to_dict("records")}

    def _flush(self, name: str, decl: type[Projection], inst: Projection, position: int | None,
               extra_writes: dict[tuple[str, str], Any] | None = None) -> None:
        """Write the rows touched since the last flush, the checkpoint and parked events in
        ONE transaction (under the store's lock: the connection is shared)."""
        with self._lock:
            touched = inst.rows.take_touched()
            base = self._mark_bases.get(name)
            if base is not None and base.inst is inst:
                base.flushed.update(touched)  # the next mark must still copy these rows
                touched |= base.unflushed  # a mark took these from the rows: write them too
                base.unflushed = set()
            table = decl.__table__
            rows = [inst.rows._rows[k] for k in touched if k in inst.rows._rows]
            parked = self._take_parked(name, extra_writes)
            if not (touched or parked) and position is not None \
                    and self._checkpoints.get(name) == position:
                return  # the table and its checkpoint are current: nothing to write
            write_state = getattr(self.store, "_write_state_sql", None)
            known = self._known_columns(table)
            written: list[str] = []
            names = list(dict.fromkeys([decl.__key__, *(decl.__columns__ or {}),
                                        *(c for r in rows for c in r)]))
            with self._transaction() as con:
                if rows or (known is not None and touched):
                    if (known is not None and set(names) <= known
                            and len(touched) <= _SMALL_FLUSH and scalars(rows, names)):
                        self._write_small(con, table, decl.__key__, touched, rows, names,
                                          known)
                    else:
                        written = self._write_arrow(con, decl, touched, rows)
                # else: no row yet -> the table is created with the first rows, so its
                # column types come from real values
                if position is not None:
                    self._set_checkpoint(con, name, "python", position)
                if parked and write_state is not None:  # same database: same transaction
                    write_state(con, [(ns, k, None if v is None else json.dumps(v))
                                      for (ns, k), v in parked.items()])
            if written:  # committed: the table has the columns it had and those written
                self._table_columns[table] = (known or set()) | set(written)
        if parked and write_state is None:
            self.store.put_state(dead_letters.NAMESPACE, {k: v for (_, k), v in parked.items()})
        if parked:
            n = sum(1 for v in parked.values() if v is not None)
            if n:
                warnings.warn(
                    f"projection {name!r} parked {n} event(s) its handlers failed on; see "
                    "app.dead_letters() and retry them after fixing the handler",
                    ParkedEventWarning, stacklevel=4)

    def _known_columns(self, table: str) -> set[str] | None:
        """The table's columns (cached), or None if it does not exist."""
        cols = self._table_columns.get(table)
        if cols is None and self._table_exists(table):
            with self._lock:
                cols = self._table_columns[table] = {r[0] for r in self._con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                    "AND schema_name = current_schema()", [table]).fetchall()}
        return cols

    def _write_small(self, con: duckdb.DuckDBPyConnection, table: str, key: str,
                     touched: Any, rows: list[dict[str, Any]], names: list[str],
                     known: set[str]) -> None:
        """A few rows: parameterized DELETE + INSERT (no Arrow registration round trips);
        one row already in the table: one UPDATE (see :func:`update_row`)."""
        keys = list(touched)
        if len(rows) == 1 and len(keys) == 1 and update_row(con, table, key, keys[0],
                                                            rows[0], known):
            return
        if keys:
            con.execute(f'DELETE FROM "{table}" WHERE "{key}" IN ({", ".join("?" * len(keys))})',
                        keys)
        if rows:
            cols = ", ".join(f'"{c}"' for c in names)
            marks = "(" + ", ".join("?" * len(names)) + ")"
            con.execute(f'INSERT INTO "{table}" ({cols}) VALUES '
                        + ", ".join([marks] * len(rows)),
                        [r.get(c) for r in rows for c in names])

    def _write_arrow(self, con: duckdb.DuckDBPyConnection, decl: type[Projection],
                     touched: Any, rows: list[dict[str, Any]]) -> list[str]:
        """Upsert ``rows`` and delete the other ``touched`` keys; the columns written."""
        import pyarrow as pa

        table, key = decl.__table__, decl.__key__
        upserts = rows_to_arrow(rows, key, decl.__columns__)
        keys = pa.table({"k": column(list(touched))})
        select = select_with_types(upserts.column_names, decl.__columns__)
        with registered(con, "_af_up", upserts), registered(con, "_af_keys", keys):
            known = self._known_columns(table)
            if known is None:
                con.execute(f'CREATE TABLE "{table}" AS SELECT {select} FROM _af_up LIMIT 0')
            else:
                if not set(upserts.column_names) <= known:
                    self._add_missing_columns(con, table, select)
                if touched:
                    con.execute(f'DELETE FROM "{table}" WHERE "{key}" IN '
                                "(SELECT k FROM _af_keys)")
            if rows:
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT {select} FROM _af_up')
        self._table_columns.pop(table, None)  # re-read, unless the caller commits (_flush)
        return upserts.column_names  # type: ignore[no-any-return]

    def _take_parked(self, name: str, extra: dict[tuple[str, str], Any] | None
                     ) -> dict[tuple[str, str], Any]:
        mine = [r for n, r in self._parked if n == name]
        self._parked = [(n, r) for n, r in self._parked if n != name]
        out = {(dead_letters.NAMESPACE, dead_letters.key(r["subscriber"], r["position"])): r
               for r in mine}
        out.update(extra or {})
        return out

    def retry_parked(self, name: str, position: int | None = None) -> dict[int, str | None]:
        """Apply parked events of a Python projection again (after fixing its handler).

        Each event that now succeeds is written to the table and removed from the dead
        letters in one transaction; one that fails again stays parked with its attempt count
        increased.

        Returns
        -------
        dict of int to str or None
            Position -> ``None`` if it succeeded, else the new error.
        """
        decl = self.model.projection_decl(name)
        if isinstance(decl, SqlProjection):
            raise ProjectionError(f"{name!r} is a SQL projection: it parks nothing")
        self._require_writable(name)
        self.catch_up(name)
        inst = self._live[name]
        sub = _subscriber(name)
        records = [p for p in dead_letters.parked(self.store, sub)
                   if position is None or p.position == position]
        writes: dict[tuple[str, str], Any] = {}
        out: dict[int, str | None] = {}
        for p in records:
            rec = next(iter(self.store.read_all(p.position, p.position)))
            k = (dead_letters.NAMESPACE, dead_letters.key(sub, p.position))
            try:
                inst.handle(self.decoder.decode(rec), rec)
            except Exception as exc:
                writes[k] = dead_letters.park_record(sub, rec, exc, p.attempts + 1)
                out[p.position] = f"{type(exc).__name__}: {exc}"
            else:
                writes[k] = None
                out[p.position] = None
        if writes:
            self._flush(name, decl, inst, None, extra_writes=writes)
        return out

    def _add_missing_columns(self, con: duckdb.DuckDBPyConnection, table: str,
                             select: str) -> None:
        have = {r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [table]).fetchall()}
        types = con.execute(f"DESCRIBE SELECT {select} FROM _af_up").fetchall()
        for col, duck_type, *_ in types:
            if col not in have:
                con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{col}" {duck_type}')

    # -------------------------------------------------------------- reading
    def table(self, name: str, *, refresh: bool = True) -> pd.DataFrame:
        """The projection's table as a DataFrame (caught up first unless ``refresh=False``)."""
        decl = self.model.projection_decl(name)
        if refresh and self._writable:
            self.catch_up(name)
        table = decl.table if isinstance(decl, SqlProjection) else decl.__table__
        order = "" if isinstance(decl, SqlProjection) else f' ORDER BY "{decl.__key__}"'
        if not self._table_exists(table):
            return self.as_of(name, AsOf(position=self.store.head_position))
        with self._lock:
            return frame(self._con, f'SELECT * FROM "{table}"{order}')

    def resolve(self, as_of: AsOf) -> int:
        """The log position an :class:`AsOf` stands for."""
        if as_of.position is not None:
            return min(as_of.position, self.store.head_position)
        assert as_of.timestamp is not None
        return self.store.position_at(as_of.timestamp)

    def as_of(self, name: str, as_of: AsOf) -> pd.DataFrame:
        """The projection as it was at a position or timestamp, as a DataFrame.

        Nothing is written: the runner's tables and checkpoints stay as they are.
        """
        decl = self.model.projection_decl(name)
        position = self.resolve(as_of)
        if isinstance(decl, SqlProjection):
            with self._lock:
                self._mirror()
                try:
                    return frame(self._con, self._prefix_sql(decl.sql, "position <= ?"),
                                 [position])
                except Exception as exc:
                    raise ProjectionError(f"SQL projection {name!r} failed: {exc}") from exc
        # the collector paused for the frame too: its ~one tuple per row are freed by reference
        # counting, and a collection in between would rescan the cached states' rows
        with gc_paused():
            rows = self._python_state(name, decl, position)
            return state_frame(list(rows.values()), decl.__key__, decl.__columns__,
                                self._cache_for(name, decl).sort_memo)

    def _cache_for(self, name: str, decl: type[Projection]) -> StateCache:
        cache = self._caches.get(name)
        if cache is None or cache.decl is not decl:  # new, or the class was redefined
            cache = self._caches[name] = StateCache(decl)
        return cache

    def _interval(self) -> int:
        """Events between marks: the log in ~250 steps, at least 2,000 events.

        Marks copy (packed) only the rows touched since the previous one, so they are cheap
        enough to be this dense; a fold for ``as_of`` then reads at most 0.4% of the log. The
        cache's byte budget may keep fewer (see :class:`StateCache`).
        """
        return max(2_000, self.store.head_position // 250)

    def _put_mark(self, name: str, cache: StateCache, inst: Projection, position: int) -> None:
        """Cache the live instance's rows at ``position`` as a copy-on-write mark.

        The rows touched since the previous mark are those :meth:`_flush` took since then
        plus the ones touched since; the mark takes the latter from the row set (so the next
        mark does not copy them again) and keeps them for the next flush to write.
        """
        touched = inst.rows.take_touched()
        base = self._mark_bases.get(name)
        if base is not None and base.inst is inst:
            cache.put_mark(position, inst.rows._rows, base.flushed | touched, base.position)
            base.unflushed |= touched
            base.position, base.flushed = position, set()
        else:  # a new live instance: nothing known to share
            cache.put_mark(position, inst.rows._rows, None, None)
            self._mark_bases[name] = _MarkBase(inst, position, set(), touched)

    def python_state(self, name: str, position: int) -> dict[Any, dict[str, Any]]:
        """A Python projection's rows at ``position`` (do not mutate them)."""
        decl = self.model.projection_decl(name)
        if isinstance(decl, SqlProjection):
            raise ProjectionError(f"{name!r} is a SQL projection: use as_of()")
        self._python_state(name, decl, position)
        return self._cache_for(name, decl).state(position)

    def _python_state(self, name: str, decl: type[Projection], position: int
                      ) -> dict[Any, Any]:
        """The state at ``position`` as cached (rows may be :class:`Packed`): folded from the
        nearest cached state, which is then cached at ``position`` too."""
        cache = self._cache_for(name, decl)
        start, rows = cache.nearest(position)
        if start == position and rows is not None:
            return rows
        interval = self._interval()
        inst = decl(None)
        if rows is not None:  # start from the cached state; copy only the rows reached
            inst.rows = CopyOnWriteRows(rows)
        next_mark = (start // interval + 1) * interval
        since = start if rows is not None else None  # the cached state inst started from
        # Projection.handle's lookup once per event class, as in _fold_into
        fns = apply_fns(decl) if type(inst).handle is Projection.handle else None
        handlers: dict[type, tuple[Any, bool] | None] = {}
        with gc_paused():
            for batch in iter_decoded(self.store, self.decoder, start + 1, position):
                for event, rec in batch:
                    if rec.position > next_mark:  # share the rows untouched since `since`
                        if cache.wants_mark(next_mark):  # else the touched keys add up
                            cache.put_mark(next_mark, inst.rows._rows,
                                           inst.rows.take_touched(), since)
                            since = next_mark
                        next_mark += interval
                    if fns is None:
                        inst.handle(event, rec)
                        continue
                    cls = type(event)
                    if cls not in handlers:
                        handlers[cls] = fns.get(event.__message_type__) or fns.get("*")
                    found = handlers[cls]
                    if found is not None:
                        if found[1]:
                            found[0](inst, event, rec)
                        else:
                            found[0](inst, event)
        state = inst.rows._rows
        # pack the rows this fold owns: the state is cached, and a frame is built fastest
        # from packed rows (tuples of values)
        owned = inst.rows._own if isinstance(inst.rows, CopyOnWriteRows) else state.keys()
        for k in list(owned):
            state[k] = cache.pack(state[k])
        cache.put(position, state)
        return state


def _unzip(batch: Any) -> tuple[list[Any], list[Any]]:
    """The events and records of a batch of :func:`iter_decoded` (or of any sequence of
    ``(event, record)`` pairs)."""
    if type(batch) is DecodedBatch:
        records = batch.records
        return batch.events, records if type(records) is list else list(records)
    return [e for e, _ in batch], [r for _, r in batch]


class _MarkBase:
    """The live instance's last mark: its position, the keys flushes took since (the next
    mark copies them) and the keys the mark took from the row set that no flush wrote yet."""

    __slots__ = ("flushed", "inst", "position", "unflushed")

    def __init__(self, inst: Projection, position: int, flushed: set[Any],
                 unflushed: set[Any]) -> None:
        self.inst = inst
        self.position = position
        self.flushed = flushed
        self.unflushed = unflushed


class ProjectionHandle:
    """One projection, bound to its runner: read it, time-travel it, rebuild it.

    Examples
    --------
    >>> from allframe_lab import App, Model
    >>> from allframe_lab.store import InMemoryEventStore, NewEvent
    >>> m = Model("log")
    >>> _ = m.sql_projection("per_type", "SELECT type, count(*) AS n FROM events GROUP BY type")
    >>> store = InMemoryEventStore()
    >>> _ = store.append("s", [NewEvent("A", {}), NewEvent("B", {}), NewEvent("A", {})])
    >>> app = App(m, store)
    >>> app.projection("per_type").df().sort_values("type").to_dict("records")
    [{'type': 'A', 'n': 2}, {'type': 'B', 'n': 1}]
    >>> app.projection("per_type").as_of(position=1).to_dict("records")
    [{'type': 'A', 'n': 1}]
    """

    def __init__(self, runner: ProjectionRunner, name: str) -> None:
        self.runner = runner
        self.name = name

    @property
    def kind(self) -> str:
        decl = self.runner.model.projection_decl(self.name)
        return "sql" if isinstance(decl, SqlProjection) else "python"

    @property
    def table_name(self) -> str:
        decl = self.runner.model.projection_decl(self.name)
        return decl.table if isinstance(decl, SqlProjection) else decl.__table__

    @property
    def checkpoint(self) -> int:
        """The last position the stored table reflects."""
        return self.runner.checkpoint(self.name)

    def df(self, *, refresh: bool = True) -> pd.DataFrame:
        """The table as a DataFrame, caught up to the head first (unless ``refresh=False``)."""
        return self.runner.table(self.name, refresh=refresh)

    def catch_up(self, *, progress: bool | None = None) -> int:
        """Fold the events after the checkpoint; return the new checkpoint."""
        return self.runner.catch_up(self.name, progress=progress)[self.name]

    def rebuild(self, *, progress: bool | None = None) -> int:
        """Rebuild from position 1, with a progress bar for long logs."""
        return self.runner.rebuild(self.name, progress=progress)[self.name]

    def as_of(self, *, position: int | None = None,
              timestamp: datetime | str | None = None) -> pd.DataFrame:
        """The projection at a past position or ``occurred_at`` timestamp.

        Parameters
        ----------
        position : int, optional
            A global position (clamped to the head).
        timestamp : datetime or ISO-8601 str, optional
            Resolved to the last position whose event occurred at or before it.
        """
        if isinstance(timestamp, str):
            timestamp = datetime.fromisoformat(timestamp)
        return self.runner.as_of(self.name, AsOf(position=position, timestamp=timestamp))

    def __repr__(self) -> str:
        return (f"<ProjectionHandle {self.name!r} ({self.kind}) table={self.table_name!r} "
                f"checkpoint={self.checkpoint}>")
