"""DuckDB across processes: crash safety (SIGKILL), a second writer, readers beside a writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from allframe_lab.errors import ReadOnlyStoreError, StoreLockedError
from allframe_lab.store import NewEvent
from allframe_lab.store.duckdb import DuckDBEventStore

pytestmark = [pytest.mark.duckdb, pytest.mark.slow]

APPEND_LOOP = textwrap.dedent("""
    import sys
    from allframe_lab.store import NewEvent
    from allframe_lab.store.duckdb import DuckDBEventStore
    store = DuckDBEventStore(sys.argv[1])
    i = 0
    while True:
        sid = f"s{i % 7}"
        rec = store.append(sid, [NewEvent("E", {"i": i, "k": k}) for k in range(3)])
        print(rec[-1].position, flush=True)   # only after append returned
        i += 1
""")

BULK = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from datetime import datetime, timezone
    from allframe_lab.store import NewEvent
    from allframe_lab.store.duckdb import DuckDBEventStore
    store = DuckDBEventStore(sys.argv[1])
    n = 400_000
    t = pa.array([datetime(2024, 1, 1, tzinfo=timezone.utc)] * n, pa.timestamp("us", tz="UTC"))
    table = pa.table({"stream_id": [f"c{i % 5000}" for i in range(n)], "type": ["E"] * n,
                      "data": ['{"payload": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'] * n,
                      "occurred_at": t})
    print("start", flush=True)
    while True:
        store.append_arrow(table)
        print("done", store.head_position, flush=True)
""")


def _spawn(code: str, path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sigkill_during_append_loop_loses_no_returned_event(tmp_path: Path) -> None:
    path = tmp_path / "crash.duckdb"
    proc = _spawn(APPEND_LOOP, path)
    returned: list[int] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while len(returned) < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        returned.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()
    returned += [int(x) for x in rest.split()]
    assert len(returned) >= 300, proc.stderr
    store = DuckDBEventStore(path)
    head = store.head_position
    assert head >= returned[-1]  # every append that returned is durable
    assert head % 3 == 0  # no append was partly written
    positions = [r.position for r in store.read_all()]
    assert positions == list(range(1, head + 1))
    for s in range(7):
        vs = [r.version for r in store.read_stream(f"s{s}")]
        assert vs == list(range(1, len(vs) + 1)) and len(vs) % 3 == 0
    store.append("after", [NewEvent("E", {})])  # the file is writable again
    store.close()


def test_sigkill_during_bulk_import_writes_whole_batches_only(tmp_path: Path) -> None:
    path = tmp_path / "bulk.duckdb"
    proc = _spawn(BULK, path)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start", proc.stderr
    done: list[int] = []
    # let it commit one batch, then kill it in the middle of the next
    line = proc.stdout.readline()
    done.append(int(line.split()[1]))
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    rest, _ = proc.communicate()
    done += [int(x.split()[1]) for x in rest.splitlines() if x.startswith("done")]
    store = DuckDBEventStore(path)
    head = store.head_position
    assert head % 400_000 == 0 and head >= done[-1]
    assert store.stats().events == head
    store.close()


def test_second_writer_gets_a_clear_error_and_readers_work_beside(tmp_path: Path) -> None:
    path = tmp_path / "shared.duckdb"
    writer = DuckDBEventStore(path)
    writer.append("s", [NewEvent("E", {"n": 1}), NewEvent("E", {"n": 2})])
    code = textwrap.dedent(f"""
        import json
        from allframe_lab.errors import StoreLockedError
        from allframe_lab.store.duckdb import DuckDBEventStore
        out = {{}}
        try:
            DuckDBEventStore({str(path)!r})
        except StoreLockedError as exc:
            out["error"] = str(exc)
        ro = DuckDBEventStore({str(path)!r}, read_only=True)
        out["events"] = [r.data["n"] for r in ro.read_all()]
        out["copy"] = ro.is_snapshot_copy
        try:
            ro.append("s", [])
        except Exception as exc:
            out["ro_error"] = type(exc).__name__
        print(json.dumps(out))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert "read_only=True" in out["error"] and "another process" in out["error"]
    assert out["events"] == [1, 2] and out["copy"] is True
    assert out["ro_error"] == "ReadOnlyStoreError"
    writer.close()


def test_read_only_without_writer_opens_the_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "ro.duckdb"
    with DuckDBEventStore(path) as w:
        w.append("s", [NewEvent("E", {})])
    ro = DuckDBEventStore(path, read_only=True)
    assert not ro.is_snapshot_copy and ro.head_position == 1
    with pytest.raises(ReadOnlyStoreError):
        ro.append("s", [NewEvent("E", {})])
    ro.close()


def test_store_locked_error_is_typed() -> None:
    err = StoreLockedError("x.duckdb", "detail")
    assert isinstance(err, RuntimeError) and "read_only=True" in str(err)
