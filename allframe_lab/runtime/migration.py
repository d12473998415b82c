"""Migrating stored events to their latest schema versions (``allframe-lab migrate``).

Upcasting on read leaves stored rows untouched, which is the default. A migration rewrites a
DuckDB store's ``events`` table once, so that every event of a declared type is stored at its
declared version:

1. copy the events, a position range at a time through Arrow, into a new table created with
   the ``events`` table's own DDL (same columns and constraints); payloads of old versions
   are upcast, validated by their class and written as the class serializes them;
2. verify that the copy has the same count, positions, event ids, streams, versions, types,
   times and metadata, that unchanged payloads are byte-identical, and that no old version
   of a migrated type is left;
3. swap the tables in one DuckDB transaction (secondary indexes of ``events`` are dropped
   and re-created around the rename);
4. keep the original table as ``events_backup_<UTC timestamp>`` until
   :func:`drop_backups` (``allframe-lab migrate --drop-backup``) drops it.

If anything fails before the swap, the new table is dropped and ``events`` is untouched.
Positions and stream versions do not change, so a :class:`DuckDBEventStore` that stays open
(its in-memory stream versions, projections' checkpoints) remains consistent. Hold no other
writer on the file: DuckDB allows one writing process, and the migration holds the store's
lock while it runs.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import (
    EventDecodeError,
    ModelDefinitionError,
    ReadOnlyStoreError,
    StoreError,
)
from allframe_lab.model import Model

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from allframe_lab.store.duckdb import DuckDBEventStore

__all__ = ["MigrationChange", "MigrationReport", "backup_tables", "drop_backups", "migrate"]

BACKUP_PREFIX = "events_backup_"
NEW_TABLE = "events_migrating"
_BATCH = "_af_migrate_batch"


@dataclass(frozen=True, slots=True)
class MigrationChange:
    """Events of one type stored at an old version: how many, and from/to which version."""

    type: str
    from_version: int
    to_version: int
    events: int


@dataclass(frozen=True)
class MigrationReport:
    """What a migration changed (or, for a dry run, would change).

    Attributes
    ----------
    store : str
        The store's path.
    dry_run : bool
        True if nothing was written.
    events : int
        Events in the store.
    changes : tuple of MigrationChange
        One entry per (type, stored version) that is upcast.
    unknown_types : tuple of str
        Stored types the model does not declare (copied unchanged).
    backup_table : str or None
        The table holding the original events (``None`` if nothing was swapped, or the
        backup was dropped).
    swapped : bool
        True if the events table was replaced.
    seconds : float
        Wall time of the migration.
    dropped_backups : tuple of str
        Backup tables dropped by this call.
    """

    store: str
    dry_run: bool
    events: int
    changes: tuple[MigrationChange, ...]
    unknown_types: tuple[str, ...] = ()
    backup_table: str | None = None
    swapped: bool = False
    seconds: float = 0.0
    dropped_backups: tuple[str, ...] = field(default=())

    @property
    def upcast_events(self) -> int:
        """How many events are (or would be) rewritten."""
        return sum(c.events for c in self.changes)

    def to_frame(self) -> pd.DataFrame:
        """The changes as a DataFrame: ``type, from_version, to_version, events``."""
        import pandas as pd

        return pd.DataFrame([(c.type, c.from_version, c.to_version, c.events)
                             for c in self.changes],
                            columns=["type", "from_version", "to_version", "events"])

    def as_dict(self) -> dict[str, Any]:
        """JSON-compatible summary (what ``allframe-lab migrate --json`` prints)."""
        return {
            "store": self.store, "dry_run": self.dry_run, "events": self.events,
            "upcast_events": self.upcast_events,
            "changes": [{"type": c.type, "from_version": c.from_version,
                         "to_version": c.to_version, "events": c.events}
                        for c in self.changes],
            "unknown_types": list(self.unknown_types), "backup_table": self.backup_table,
            "swapped": self.swapped, "seconds": round(self.seconds, 3),
            "dropped_backups": list(self.dropped_backups),
        }

    def summary(self) -> str:
        """A few lines for people (what the CLI prints)."""
        verb = "would upcast" if self.dry_run else "upcast"
        lines = [f"{self.store}: {self.events:,} events; {verb} {self.upcast_events:,}"
                 + (" (dry run: nothing written)" if self.dry_run else "")]
        lines += [f"  {c.events:>10,}  {c.type} v{c.from_version} -> v{c.to_version}"
                  for c in self.changes]
        if not self.changes:
            lines.append("  every event is already at its declared version")
        if self.unknown_types:
            lines.append("  kept as stored (not declared in the model): "
                         + ", ".join(self.unknown_types))
        if self.swapped:
            lines.append(f"  verified and swapped in {self.seconds:.2f} s; original kept as "
                         f"{self.backup_table}" if self.backup_table else
                         f"  verified and swapped in {self.seconds:.2f} s")
        if self.dropped_backups:
            lines.append("  dropped backups: " + ", ".join(self.dropped_backups))
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "dry run" if self.dry_run else ("swapped" if self.swapped else "no change")
        return (f"MigrationReport({self.store!r}, {state}, events={self.events:,}, "
                f"upcast={self.upcast_events:,} in {len(self.changes)} group"
                f"{'s' if len(self.changes) != 1 else ''}, backup={self.backup_table!r})")


# --------------------------------------------------------------------------- public API
def migrate(
    store: DuckDBEventStore | str | os.PathLike[str],
    model: Model,
    /,
    *,
    dry_run: bool = False,
    batch_size: int = 100_000,
    backup_table: str | None = None,
) -> MigrationReport:
    """Rewrite a DuckDB store's events at their declared (latest) schema versions.

    Parameters
    ----------
    store : DuckDBEventStore, str or os.PathLike
        An open, writable store, or the path of a store file (opened and closed here).
    model : Model
        Declares the event classes, their versions and their upcaster chains.
    dry_run : bool, default False
        Only report what would change; write nothing.
    batch_size : int, default 100,000
        Events copied per Arrow batch (memory is about ``batch_size`` x payload size).
    backup_table : str, optional
        Name of the table that keeps the original events (default
        ``events_backup_<UTC timestamp>``).

    Returns
    -------
    MigrationReport
        Counts per (type, from version -> to version), the backup table, the time taken.

    Raises
    ------
    ReadOnlyStoreError
        If the store was opened read-only (and ``dry_run`` is False).
    ModelDefinitionError
        If a stored version is newer than the model declares.
    EventDecodeError
        If an upcast payload does not fit its class (names type, version and position);
        the events table is left untouched.
    StoreError
        If the store is not a DuckDB store, or the copy does not verify (the events table is
        left untouched).

    Examples
    --------
    >>> from allframe_lab import Model, Event, added_in
    >>> from allframe_lab.store import DuckDBEventStore, NewEvent
    >>> m = Model("users")
    >>> @m.event("UserCreated", version=2)
    ... class UserCreated(Event):
    ...     name: str
    ...     email: str = added_in(2, default="")
    >>> store = DuckDBEventStore(":memory:")
    >>> _ = store.append("u1", [NewEvent("UserCreated", {"name": "ann"}, schema_version=1)])
    >>> migrate(store, m, dry_run=True).to_frame()
              type  from_version  to_version  events
    0  UserCreated             1           2       1
    >>> report = migrate(store, m, backup_table="events_backup_doc")
    >>> report.swapped, store.read_stream("u1")[0].data
    (True, {'name': 'ann', 'email': ''})
    >>> drop_backups(store)
    ['events_backup_doc']
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    with _opened(store, read_only=dry_run) as st:
        con = st.connection
        with st.lock:
            events, changes, unknown = _plan(con, model)
            path = st.path
            if dry_run or not changes:
                return MigrationReport(path, dry_run, events, changes, unknown,
                                       seconds=time.perf_counter() - started)
            if st.read_only:
                raise ReadOnlyStoreError(
                    f"the store {path!r} was opened read-only; migrate needs it writable "
                    "(and no other process holding it)")
            backup = backup_table or _backup_name(con)
            _check_identifier(backup)
            if _table_exists(con, backup):
                raise StoreError(f"table {backup!r} already exists; choose another "
                                 "backup_table or drop it first")
            con.execute(f"DROP TABLE IF EXISTS {NEW_TABLE}")  # left by a crashed run
            try:
                con.execute(_events_ddl(con, NEW_TABLE))
                _copy(con, model, changes, batch_size)
                _verify(con, changes, st.head_position)
                _swap(st, backup)
            except BaseException:
                con.execute(f"DROP TABLE IF EXISTS {NEW_TABLE}")
                raise
    return MigrationReport(path, False, events, changes, unknown, backup, True,
                           time.perf_counter() - started)


def backup_tables(store: DuckDBEventStore | str | os.PathLike[str], /) -> list[str]:
    """The backup tables that migrations left in a store (oldest first)."""
    with _opened(store, read_only=True) as st, st.lock:
        return _backups(st.connection)


def drop_backups(store: DuckDBEventStore | str | os.PathLike[str], /,
                 *, names: list[str] | None = None) -> list[str]:
    """Drop migration backup tables (all of them, or ``names``) and reclaim their space.

    Returns
    -------
    list of str
        The tables dropped.

    Raises
    ------
    StoreError
        If a name is not a backup table of this store.
    """
    with _opened(store, read_only=False) as st, st.lock:
        con = st.connection
        found = _backups(con)
        chosen = found if names is None else list(names)
        unknown = [n for n in chosen if n not in found]
        if unknown:
            raise StoreError(f"not backup tables of {st.path!r}: {unknown}; the backups are "
                             f"{found or 'none'}")
        if st.read_only:
            raise ReadOnlyStoreError(f"the store {st.path!r} was opened read-only")
        for name in chosen:
            con.execute(f"DROP TABLE {name}")
        if chosen:
            con.execute("CHECKPOINT")
        return chosen


# --------------------------------------------------------------------------- steps
@contextmanager
def _opened(store: Any, *, read_only: bool) -> Iterator[DuckDBEventStore]:
    from allframe_lab.store.duckdb import DuckDBEventStore

    if isinstance(store, DuckDBEventStore):
        yield store
        return
    if isinstance(store, (str, os.PathLike)):
        path = os.fspath(store)
        if not os.path.isfile(path):
            raise StoreError(f"no event store at {path!r}")
        st = DuckDBEventStore(path, read_only=read_only)
        try:
            yield st
        finally:
            st.close()
        return
    raise StoreError(f"migrate rewrites a DuckDB store's events table; got "
                     f"{type(store).__name__} (other stores upcast on read only)")


def _plan(con: Any, model: Model
          ) -> tuple[int, tuple[MigrationChange, ...], tuple[str, ...]]:
    rows = con.execute("SELECT type, schema_version, count(*) FROM events "
                       "GROUP BY type, schema_version ORDER BY type, schema_version").fetchall()
    changes, unknown, total = [], [], 0
    for type_name, version, n in rows:
        total += n
        cls = model.events.get(type_name)
        if cls is None:
            if type_name not in unknown:
                unknown.append(type_name)
            continue
        target = cls.__schema_version__
        if version > target:
            raise ModelDefinitionError(
                f"{n:,} stored {type_name} events have schema version {version}, newer than "
                f"the model's {target}; migrate with the model that wrote them")
        if version < target:
            changes.append(MigrationChange(type_name, version, target, n))
    return total, tuple(changes), tuple(unknown)


def _events_ddl(con: Any, name: str) -> str:
    row = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = 'events' "
                      "AND schema_name = current_schema()").fetchone()
    if row is None:
        raise StoreError("the store has no events table")
    ddl, n = re.subn(r'^CREATE TABLE\s+"?events"?\s*\(', f"CREATE TABLE {name}(", row[0],
                     count=1, flags=re.IGNORECASE)
    if n != 1:  # pragma: no cover - DuckDB always spells it this way
        raise StoreError(f"cannot read the events table's DDL: {row[0][:80]!r}")
    return ddl


def _copy(con: Any, model: Model, changes: tuple[MigrationChange, ...],
          batch_size: int) -> None:
    import pyarrow as pa

    from allframe_lab.store.duckdb import drain, registered

    todo = {(c.type, c.from_version) for c in changes}
    head = con.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
    lo = 1
    while lo <= head:
        hi = min(lo + batch_size - 1, head)
        drain(con)  # DuckDB 2 runs no new query while a result is pending
        tbl = con.sql("SELECT * FROM events WHERE position BETWEEN $lo AND $hi "
                      "ORDER BY position", params={"lo": lo, "hi": hi}).to_arrow_table()
        types = tbl.column("type").to_pylist()
        versions = tbl.column("schema_version").to_pylist()
        groups: dict[tuple[str, int], list[int]] = {}
        for i, key in enumerate(zip(types, versions, strict=True)):
            if key in todo:
                groups.setdefault(key, []).append(i)
        if groups:
            data = tbl.column("data").to_pylist()
            positions = tbl.column("position").to_pylist()
            new_versions = list(versions)
            for (type_name, version), idx in groups.items():
                texts = _upcast_texts(model, type_name, version,
                                      [data[i] for i in idx], [positions[i] for i in idx])
                target = model.events[type_name].__schema_version__
                for i, text in zip(idx, texts, strict=True):
                    data[i] = text
                    new_versions[i] = target
            tbl = tbl.set_column(tbl.schema.get_field_index("data"), "data",
                                 pa.array(data, pa.string()))
            col = tbl.schema.get_field_index("schema_version")
            tbl = tbl.set_column(col, "schema_version",
                                 pa.array(new_versions, tbl.schema.field(col).type))
        with registered(con, _BATCH, tbl):
            con.execute(f"INSERT INTO {NEW_TABLE} SELECT * FROM {_BATCH}")
        lo = hi + 1


def _upcast_texts(model: Model, type_name: str, version: int, texts: list[str],
                  positions: list[int]) -> list[str]:
    """Upcast, validate and re-serialize payloads of one (type, version)."""
    import json

    from pydantic import TypeAdapter

    cls = model.events[type_name]
    up = model.upcaster_function(type_name, version)
    try:
        payloads = json.loads("[" + ",".join(texts) + "]")
        if up is not None:
            payloads = [up(d) for d in payloads]
        objs = TypeAdapter(list[cls]).validate_python(payloads)  # type: ignore[valid-type]
    except Exception:
        for text, pos in zip(texts, positions, strict=True):  # name the failing position
            try:
                model.decode(type_name, version, json.loads(text))
            except ModelDefinitionError:
                raise
            except Exception as exc:
                from pydantic import ValidationError

                problem = str(exc) if isinstance(exc, ValidationError) else \
                    f"an upcaster raised {type(exc).__name__}: {exc}"
                raise EventDecodeError(type_name, version, pos, problem) from exc
        raise
    return [o.model_dump_json() for o in objs]


def _verify(con: Any, changes: tuple[MigrationChange, ...], head: int) -> None:
    cols = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'events' "
        "AND schema_name = current_schema() ORDER BY column_index").fetchall()]
    same = " OR ".join(f'a."{c}" IS DISTINCT FROM b."{c}"' for c in cols
                       if c not in ("data", "schema_version", "position"))
    n_old, n_new, bad, max_new = con.execute(
        f"SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM {NEW_TABLE}), "
        f"(SELECT count(*) FROM events a FULL OUTER JOIN {NEW_TABLE} b USING (position) "
        f" WHERE a.position IS NULL OR b.position IS NULL OR {same} "
        f" OR (a.schema_version = b.schema_version AND a.data::VARCHAR <> b.data::VARCHAR)), "
        f"(SELECT coalesce(max(position), 0) FROM {NEW_TABLE})").fetchone()
    problems = []
    if n_old != n_new:
        problems.append(f"{n_new:,} events copied of {n_old:,}")
    if bad:
        problems.append(f"{bad:,} rows differ in position, id, stream, version, type, times, "
                        "metadata or an unchanged payload")
    if max_new != head:
        problems.append(f"head position {max_new:,} instead of {head:,}")
    left = con.execute(
        f"SELECT count(*) FROM {NEW_TABLE} WHERE "
        + " OR ".join("(type = ? AND schema_version = ?)" for _ in changes),
        [x for c in changes for x in (c.type, c.from_version)]).fetchone()[0]
    if left:
        problems.append(f"{left:,} events still at an old version")
    if problems:
        raise StoreError("the migrated copy does not match the events table ("
                         + "; ".join(problems) + "); nothing was swapped, events is unchanged")


def _swap(st: DuckDBEventStore, backup: str) -> None:
    from allframe_lab.store._payload import fill as fill_payload_columns
    from allframe_lab.store.duckdb import transaction

    con = st.connection
    indexes = con.execute(
        "SELECT index_name, sql FROM duckdb_indexes() WHERE table_name = 'events' "
        "AND schema_name = current_schema() AND sql IS NOT NULL").fetchall()
    with transaction(con, st.lock):
        for name, _sql in indexes:  # DuckDB cannot rename a table that has indexes
            con.execute(f'DROP INDEX "{name}"')
        con.execute(f"ALTER TABLE events RENAME TO {backup}")
        con.execute(f"ALTER TABLE {NEW_TABLE} RENAME TO events")
        for _name, sql in indexes:
            con.execute(sql)
        # the payload columns were copied as they were: compute them from the upcast data
        fill_payload_columns(con)


def _backup_name(con: Any) -> str:
    base = BACKUP_PREFIX + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name, k = base, 1
    while _table_exists(con, name):
        k += 1
        name = f"{base}_{k}"
    return name


def _backups(con: Any) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = current_schema() "
        "AND starts_with(table_name, ?) ORDER BY table_name", [BACKUP_PREFIX]).fetchall()
    return [r[0] for r in rows]


def _table_exists(con: Any, name: str) -> bool:
    return bool(con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
        "AND schema_name = current_schema()", [name]).fetchone()[0])


def _check_identifier(name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in ("events", NEW_TABLE):
        raise StoreError(f"backup table name {name!r} must be a SQL identifier (letters, "
                         "digits, underscores) other than events")
