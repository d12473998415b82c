"""Private snapshot copies of a DuckDB event-store file.

DuckDB refuses any second open of a file that a writer holds, even ``read_only=True``. A
reader then copies the file into a private folder and opens the copy. The writer's journal is
copied *first*: events the writer moves into the table after that are in the database copied
next, and the journal's replay into the copy skips them by position. The replay fills the
payload columns the file remembers (``store/_payload.py``), as the writer would.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from typing import TYPE_CHECKING, Any

from allframe_lab.errors import StoreError
from allframe_lab.store._journal import journal_path, read_journal, replay
from allframe_lab.store._payload import PayloadColumns, stored

if TYPE_CHECKING:  # pragma: no cover
    import duckdb

__all__ = ["copy_database"]


def copy_database(path: str, *, attempts: int = 5,
                  owner: Any = None) -> tuple[duckdb.DuckDBPyConnection, str]:
    """Copy ``path`` (with its ``.wal`` and ``.journal``) and open the copy for writing.

    Returns the connection and the copy's folder. The folder is deleted when ``owner`` is
    garbage-collected or the interpreter exits, if it still exists then.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    StoreError
        If no consistent copy could be opened in ``attempts`` tries (a writer may checkpoint
        while the file is copied).
    """
    import duckdb

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no event store at {path!r}")
    folder = tempfile.mkdtemp(prefix="allframe-ro-")
    if owner is not None:
        weakref.finalize(owner, shutil.rmtree, folder, ignore_errors=True)
    target = os.path.join(folder, os.path.basename(path))
    last: Exception | None = None
    for _ in range(max(1, attempts)):
        try:
            journaled = read_journal(journal_path(path))
            shutil.copyfile(path, target)
            if os.path.exists(path + ".wal"):
                shutil.copyfile(path + ".wal", target + ".wal")
            elif os.path.exists(target + ".wal"):
                os.remove(target + ".wal")
            con = duckdb.connect(target)  # private copy: replaying its WAL is harmless
        except duckdb.Error as exc:  # pragma: no cover - depends on timing
            last = exc
            continue
        try:
            con.execute("SET TimeZone = 'UTC'")
            if journaled:  # the writer's payload columns are filled in the copy too
                replay(con, journaled, PayloadColumns(stored(con)))
        except BaseException:
            con.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return con, folder
    shutil.rmtree(folder, ignore_errors=True)
    raise StoreError(f"cannot open a read-only copy of {path!r}: {last}")
