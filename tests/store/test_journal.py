"""The DuckDB store's write-ahead journal: commit point, flushes, recovery, damage, failures."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from allframe_lab.errors import StoreError
from allframe_lab.store import NO_STREAM, NewEvent
from allframe_lab.store._journal import read_journal
from allframe_lab.store.duckdb import DuckDBEventStore

pytestmark = pytest.mark.duckdb


def events(n: int, start: int = 0) -> list[NewEvent]:
    return [NewEvent("E", {"i": start + i}) for i in range(n)]


def table_count(path: Path) -> int:
    """Events in the table, as another connection sees them (no flush)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        con.close()


def test_an_append_is_in_the_journal_when_it_returns_and_reads_flush(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "j.duckdb", flush_every=100)
    assert store.journal is not None and store.journal.fsync
    store.append("a", events(2), expected_version=NO_STREAM)
    store.append("b", events(1, 2))
    assert store.pending_count == 3
    rows = read_journal(store.journal.path)
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, "a", 1), (2, "a", 2), (3, "b", 1)]
    assert json.loads(rows[2][6]) == {"i": 2}
    assert store.head_position == 3 and store.stream_version("a") == 2
    # any read of the database moves the journaled events into the table first
    assert [r.data["i"] for r in store.read_stream("a")] == [0, 1]
    assert store.pending_count == 0
    assert store.connection.execute("SELECT count(*) FROM events").fetchone()[0] == 3
    assert "journal" in repr(store)
    store.close()


def test_flush_every_bounds_the_events_waiting(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "j.duckdb", flush_every=5)
    for i in range(12):
        store.append("s", events(1, i))
        assert store.pending_count < 5
    assert store.pending_count == 2  # flushed at 5 and 10
    store.close()
    assert table_count(tmp_path / "j.duckdb") == 12
    assert os.path.getsize(tmp_path / "j.duckdb.journal") == 0  # close empties the journal


def test_unflushed_events_are_recovered_when_the_file_is_reopened(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    code = textwrap.dedent(f"""
        import os
        from allframe_lab.store import NewEvent
        from allframe_lab.store.duckdb import DuckDBEventStore
        s = DuckDBEventStore({str(path)!r}, flush_every=4)
        for i in range(10):
            s.append(f"s{{i % 3}}", [NewEvent("E", {{"i": i}})])
        os._exit(0)   # no close, no flush: 2 events are only in the journal
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert table_count(path) == 8
    assert len(read_journal(str(path) + ".journal")) == 10  # flushes do not empty it
    # a reader (no writer around) sees them through a private copy
    ro = DuckDBEventStore(path, read_only=True)
    assert ro.is_snapshot_copy and ro.head_position == 10
    assert [r.data["i"] for r in ro.read_all()] == list(range(10))
    ro.close()
    # the next writer inserts them, with journal=False too, and empties the journal
    store = DuckDBEventStore(path, journal=False)
    assert store.head_position == 10 and table_count_via(store) == 10
    assert [r.version for r in store.read_stream("s0")] == [1, 2, 3, 4]
    assert os.path.getsize(str(path) + ".journal") == 0
    store.append("s0", events(1))
    assert store.stream_version("s0") == 5
    store.close()


def table_count_via(store: DuckDBEventStore) -> int:
    return store.connection.execute("SELECT count(*) FROM events").fetchone()[0]


def _line(rows: list[list[object]]) -> bytes:
    text = json.dumps(rows, separators=(",", ":"))
    return f"{zlib.crc32(text.encode()):08x} {text}\n".encode()


def _row(pos: int, version: int) -> list[object]:
    return [pos, "s", version, f"00000000-0000-4000-8000-{pos:012d}", "E", 1, '{"i":0}', "{}",
            1_700_000_000_000_000, 1_700_000_000_000_000]


def test_a_torn_last_line_is_dropped_and_a_damaged_one_before_it_raises(tmp_path: Path) -> None:
    path = tmp_path / "j.duckdb"
    DuckDBEventStore(path).close()
    journal = Path(str(path) + ".journal")
    whole = _line([_row(1, 1)]) + _line([_row(2, 2)])
    journal.write_bytes(whole + _line([_row(3, 3)])[:-9])  # the last append never returned
    store = DuckDBEventStore(path)
    assert store.head_position == 2 and store.stream_version("s") == 2
    assert journal.stat().st_size == 0
    store.close()

    damaged = _line([_row(3, 3)]).replace(b'"E"', b'"F"') + _line([_row(4, 4)])
    journal.write_bytes(damaged)
    with pytest.raises(StoreError, match="damaged at line 1"):
        DuckDBEventStore(path)
    journal.write_bytes(_line([_row(7, 1)]))
    with pytest.raises(StoreError, match="do not continue the table"):
        DuckDBEventStore(path)


def test_a_failed_journal_write_appends_nothing(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = DuckDBEventStore(tmp_path / "j.duckdb")
    store.append("s", events(2))
    assert store.journal is not None
    size = store.journal.size
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data)[:10])  # part of the line lands, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(StoreError, match="Nothing was appended"):
        store.append("s", events(3, 2))
    monkeypatch.setattr(os, "write", real_write)
    assert store.head_position == 2 and store.stream_version("s") == 2
    assert store.journal.size == size == os.path.getsize(store.journal.path)
    store.append("s", events(1, 5), expected_version=2)
    assert [r.data["i"] for r in store.read_stream("s")] == [0, 1, 5]
    store.close()


def test_journal_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="database file"):
        DuckDBEventStore(":memory:", journal=True)
    with pytest.raises(ValueError, match="flush_every"):
        DuckDBEventStore(tmp_path / "x.duckdb", flush_every=0)
    assert DuckDBEventStore(":memory:").journal is None
    store = DuckDBEventStore(tmp_path / "d.duckdb", journal=False)
    assert store.journal is None and not os.path.exists(str(tmp_path / "d.duckdb.journal"))
    store.close()


WRITER = textwrap.dedent("""
    import sys
    from allframe_lab.store import NewEvent
    from allframe_lab.store.duckdb import DuckDBEventStore
    store = DuckDBEventStore(sys.argv[1], fsync=sys.argv[2] == "1", flush_every=50)
    i = 0
    while True:
        rec = store.append(f"s{i % 5}", [NewEvent("E", {"i": i, "k": k}) for k in range(2)])
        print(rec[-1].position, flush=True)   # only after append returned
        i += 1
""")


@pytest.mark.slow
@pytest.mark.parametrize("fsync", [True, False])
def test_sigkill_loses_no_returned_append_and_readers_see_them(tmp_path: Path,
                                                               fsync: bool) -> None:
    path = tmp_path / "crash.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(int(fsync))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    returned: list[int] = []
    deadline = time.monotonic() + 60
    while len(returned) < 400 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        returned.append(int(line))
    # a reader beside the writer sees what the writer's appends returned (journal included)
    ro = DuckDBEventStore(path, read_only=True)
    assert ro.head_position >= returned[-1] and ro.head_position % 2 == 0
    ro.close()
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()
    returned += [int(x) for x in rest.split()]
    assert len(returned) >= 400, proc.stderr
    store = DuckDBEventStore(path)
    head = store.head_position
    assert head >= returned[-1] and head % 2 == 0  # no append lost, none partly written
    assert [r.position for r in store.read_all()] == list(range(1, head + 1))
    for s in range(5):
        vs = [r.version for r in store.read_stream(f"s{s}")]
        assert vs == list(range(1, len(vs) + 1))
    store.close()
