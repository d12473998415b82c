"""The write-ahead journal of a DuckDB event store file.

A DuckDB commit costs ~0.4-1 ms on this machine class, even on an in-memory database
(``benchmarks/run.py --only a``, rows ``a.duckdb_floor.*``), so one command per DuckDB
transaction tops out near 1,000 commands/s. With the journal, an append is *committed* when its
events are in the journal file: one ``write`` and, unless ``fsync=False``, one ``fdatasync``
(~0.16 ms here), the same guarantee as SQLite's WAL with ``synchronous=FULL``. The store then
moves journaled events into the ``events`` table in batches: one INSERT per ``flush_every``
events, and before anything reads the database. When a writer opens the file, events in the
journal that the table lacks are inserted first, so a crash loses no append that returned.

File format: ``<database>.journal``, one line per append::

    <CRC-32 of the JSON text, 8 hex digits> <JSON array of rows>\\n

where a row is ``[position, stream_id, version, event_id, type, schema_version, data,
metadata, occurred_at_us, recorded_at_us]`` (payload and metadata as JSON text, times in
microseconds since the Unix epoch, UTC). A last line cut short by a crash (no newline, or a
CRC that does not match) is an append that never returned and is dropped; a bad line before
the last one means the file is damaged and raises :class:`~allframe_lab.errors.StoreError`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import weakref
import zlib
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import StoreError
from allframe_lab.store._payload import NONE, PayloadColumns
from allframe_lab.store._sql import insert_rows

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = ["Journal", "journal_path", "journal_size", "read_journal", "replay"]

Row = tuple[int, str, int, str, str, int, str, str, int, int]

#: Reset (truncate) the journal once everything in it is in the table and it is this big.
RESET_BYTES = 8 << 20


def journal_path(database: str) -> str:
    """The journal file of a DuckDB database file."""
    return database + ".journal"


class Journal:
    """An append-only journal file with one writer (the process holding the database).

    Parameters
    ----------
    path : str
        The journal file (created if missing).
    fsync : bool, default True
        ``fdatasync`` after every append: the append survives a power loss. Without it, an
        append survives a crash of the process (the data is in the OS page cache) but not of
        the machine.
    """

    def __init__(self, path: str, *, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = os.fstat(self._fd).st_size

    def append(self, rows: list[Row]) -> None:
        """Write one append's rows as one line; on return the append is committed.

        Raises
        ------
        StoreError
            If the write fails (disk full, I/O error). The journal is cut back to where it
            was, so the failed append leaves nothing behind.
        """
        text = json.dumps(rows, separators=(",", ":"), ensure_ascii=False)
        line = f"{zlib.crc32(text.encode()):08x} {text}\n".encode()
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view):]
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError as exc:
            # (if this fails too, the reader drops the torn last line anyway)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            raise StoreError(
                f"cannot write the event store's journal {self.path!r}: {exc}. Nothing was "
                "appended; free disk space or fix the file system, then retry"
            ) from exc
        self.size += len(line)

    def reset(self) -> None:
        """Empty the journal (call only when every event in it is in the table, committed)."""
        os.ftruncate(self._fd, 0)
        if self.fsync:
            os.fsync(self._fd)
        self.size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"Journal({self.path!r}, {self.size:,} bytes, fsync={self.fsync})"


def read_journal(path: str) -> list[list[Any]]:
    """The rows of every complete append in a journal file, in the order written.

    Returns an empty list if the file does not exist.

    Raises
    ------
    StoreError
        If a line other than the last is damaged.
    """
    try:
        with open(path, "rb") as f:
            content = f.read()
    except FileNotFoundError:
        return []
    rows: list[list[Any]] = []
    lines = content.split(b"\n")
    # the text after the last newline is an append cut short by a crash (or nothing)
    for i, line in enumerate(lines[:-1]):
        crc, _, text = line.partition(b" ")
        try:
            ok = int(crc, 16) == zlib.crc32(text)
        except ValueError:
            ok = False
        if not ok:
            if i == len(lines) - 2:
                break  # torn last line: that append never returned
            raise StoreError(
                f"the event store's journal {path!r} is damaged at line {i + 1}. Move the "
                "journal away to open the database without the events it holds, or restore it "
                "from a backup"
            )
        rows.extend(json.loads(text))
    return rows


def journal_size(database: str) -> int:
    """The size of a database file's journal in bytes (0 if there is none)."""
    try:
        return os.path.getsize(journal_path(database))
    except OSError:
        return 0


def replay(con: duckdb.DuckDBPyConnection, rows: list[list[Any]],
           payload: PayloadColumns = NONE) -> int:
    """Insert the journal rows that the table lacks (positions after its head), filling the
    ``payload`` columns too; how many."""
    head = con.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
    rows = [r for r in rows if r[0] > head]
    if not rows:
        return 0
    if [r[0] for r in rows] != list(range(head + 1, head + 1 + len(rows))):
        raise StoreError(
            f"the journal's events do not continue the table (head position {head}, journal "
            f"from {rows[0][0]}): the journal belongs to another database file. Move it away "
            "and reopen"
        )
    insert_rows(con, rows, payload=payload)
    return len(rows)


#: Journaled stores still open: closed at interpreter exit, so a script that ends without
#: close() leaves an empty journal (after a crash, the next writer replays it instead).
_OPEN_JOURNALED: weakref.WeakSet[Any] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for store in list(_OPEN_JOURNALED):
        # imports fail at exit; if closing fails, the journal keeps the events for the next
        # writer
        with contextlib.suppress(Exception):
            store._close(arrow=False)


def close_at_exit(store: Any) -> None:
    """Close ``store`` (``store._close(arrow=False)``) at interpreter exit if still open."""
    _OPEN_JOURNALED.add(store)
