"""``migrate``: rewrite stored events at their latest versions, on real DuckDB files.

Dry runs write nothing; counts, positions and ids are verified; the original table is kept
as a backup until dropped; a failure before the swap leaves ``events`` intact; the CLI works
in-process (CliRunner) and as a subprocess."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allframe_lab.cli import cli
from allframe_lab.errors import EventDecodeError, ReadOnlyStoreError, StoreError
from allframe_lab.runtime._decode import EventDecoder, iter_decoded
from allframe_lab.runtime.migration import (
    MigrationReport,
    backup_tables,
    drop_backups,
    migrate,
)
from allframe_lab.store import InMemoryEventStore, NewEvent
from allframe_lab.store.duckdb import DuckDBEventStore

ROOT = Path(__file__).resolve().parents[2]

MODEL_SOURCE = '''
from allframe_lab import Event, Model, added_in, renamed_from, upcasts

users = Model("users")


@users.event("UserRegistered", version=3)
class UserRegistered(Event):
    given_name: str = renamed_from("first", in_version=3)
    last: str
    email: str = added_in(3, default="")

    @upcasts(from_version=1)
    def split_name(data):
        first, _, last = data.pop("name").partition(" ")
        return {**data, "first": first, "last": last}


@users.event("UserDeleted")
class UserDeleted(Event):
    reason: str = ""
'''


def load_model(tmp_path: Path) -> Any:
    path = tmp_path / "usermodel.py"
    path.write_text(MODEL_SOURCE)
    from allframe_lab.cli import _load_model

    return _load_model(f"{path}:users"), f"{path}:users"


def fill(store: DuckDBEventStore, n: int = 50) -> None:
    for i in range(n):
        v = i % 3 + 1
        data = ({"name": f"Ann{i} Lee"} if v == 1 else
                {"first": f"Bo{i}", "last": "K"} if v == 2 else
                {"given_name": f"Cy{i}", "last": "D", "email": "c@x"})
        evs = [NewEvent("UserRegistered", data, schema_version=v)]
        if i % 5 == 0:
            evs.append(NewEvent("UserDeleted", {"reason": "spam"}))
        if i % 7 == 0:
            evs.append(NewEvent("LegacyThing", {"x": i}))  # not in the model: kept as is
        store.append(f"user-{i}", evs)


def rows(store: DuckDBEventStore) -> list[tuple[Any, ...]]:
    return store.connection.execute(
        "SELECT position, stream_id, version, event_id::VARCHAR, type, schema_version, "
        "data::VARCHAR, metadata::VARCHAR, occurred_at::VARCHAR, recorded_at::VARCHAR "
        "FROM events ORDER BY position").fetchall()


def tables(store: DuckDBEventStore) -> list[str]:
    return [r[0] for r in store.connection.execute(
        "SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.duckdb"
    store = DuckDBEventStore(path)
    fill(store)
    store.close()
    return path


def test_dry_run_reports_and_writes_nothing(store_file: Path, tmp_path: Path) -> None:
    model, _ = load_model(tmp_path)
    before = digest(store_file)
    report = migrate(store_file, model, dry_run=True)
    assert digest(store_file) == before
    assert report.dry_run and not report.swapped and report.backup_table is None
    df = report.to_frame()
    assert df.to_dict("records") == [
        {"type": "UserRegistered", "from_version": 1, "to_version": 3, "events": 17},
        {"type": "UserRegistered", "from_version": 2, "to_version": 3, "events": 17},
    ]
    assert report.unknown_types == ("LegacyThing",)
    assert report.upcast_events == 34 and report.events == 50 + 10 + 8
    assert "dry run" in repr(report) and "would upcast 34" in report.summary()


def test_migrate_swaps_verifies_and_keeps_a_backup(store_file: Path, tmp_path: Path) -> None:
    model, _ = load_model(tmp_path)
    store = DuckDBEventStore(store_file)
    store.connection.execute("CREATE INDEX events_type ON events(type)")
    original = rows(store)
    report = migrate(store, model, batch_size=7)  # several batches
    assert report.swapped and report.backup_table and report.backup_table.startswith(
        "events_backup_")
    after = rows(store)
    assert len(after) == len(original)
    for old, new in zip(original, after, strict=True):
        assert (old[:5], old[7:]) == (new[:5], new[7:])  # position, stream, version, id ...
        if old[4] == "UserRegistered":
            assert new[5] == 3
            data = json.loads(new[6])
            assert set(data) == {"given_name", "last", "email"}
        else:
            assert old[5:7] == new[5:7]  # unchanged types keep their payload byte for byte
    # the backup holds the original rows
    backup = store.connection.execute(
        f"SELECT position, schema_version, data::VARCHAR FROM {report.backup_table} "
        "ORDER BY position").fetchall()
    assert backup == [(r[0], r[5], r[6]) for r in original]
    # constraints and indexes were recreated on the new table
    idx = store.connection.execute(
        "SELECT index_name FROM duckdb_indexes() WHERE table_name = 'events'").fetchall()
    assert idx == [("events_type",)]
    with pytest.raises(Exception, match=r"[Cc]onstraint|[Dd]uplicate"):
        store.connection.execute("INSERT INTO events SELECT * FROM events LIMIT 1")
    # the open store stays consistent: appends continue positions and stream versions
    rec = store.append("user-1", [NewEvent("UserDeleted", {})])
    assert rec[0].position == len(original) + 1 and rec[0].version == 2
    assert backup_tables(store) == [report.backup_table]
    # a second run has nothing to do
    again = migrate(store, model)
    assert not again.changes and not again.swapped
    assert drop_backups(store) == [report.backup_table]
    assert backup_tables(store) == [] and "events" in tables(store)
    store.close()


def test_migrate_recomputes_payload_columns_from_the_upcast_data(store_file: Path,
                                                                 tmp_path: Path) -> None:
    model, _ = load_model(tmp_path)
    store = DuckDBEventStore(store_file, payload_columns={"last": "VARCHAR", "name": "VARCHAR"})
    before = dict(store.connection.execute(
        "SELECT position, last FROM events WHERE type = 'UserRegistered'").fetchall())
    assert None in before.values()  # v1 payloads have "name", not "last"
    migrate(store, model)
    after = store.connection.execute(
        "SELECT position, last, name, data->>'last' FROM events "
        "WHERE type = 'UserRegistered' ORDER BY position").fetchall()
    assert len(after) == len(before)
    assert all(last == from_data and last is not None for _, last, _, from_data in after)
    assert all(name is None for _, _, name, _ in after)  # upcasting removed "name"
    assert store.payload_columns == {"last": "VARCHAR", "name": "VARCHAR"}
    rec = store.append("user-x", [NewEvent("UserRegistered", {"given_name": "D", "last": "E"},
                                            schema_version=3)])
    assert store.connection.execute("SELECT last FROM events WHERE position = ?",
                                    [rec[0].position]).fetchone() == ("E",)
    store.close()


def test_failure_mid_way_leaves_events_intact(store_file: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = load_model(tmp_path)
    store = DuckDBEventStore(store_file)
    store.append("bad", [NewEvent("UserRegistered", {"nom": "x"}, schema_version=1)])
    original, names = rows(store), tables(store)
    with pytest.raises(EventDecodeError, match=r"UserRegistered v1 event at position 69"):
        migrate(store, model, batch_size=10)
    assert rows(store) == original and tables(store) == names
    # a failing verification (simulated: a copy that lost rows) swaps nothing either
    store.connection.execute("DELETE FROM events WHERE stream_id = 'bad'")
    store.close()  # re-open: the store's in-memory head must see the deletion
    store = DuckDBEventStore(store_file)
    original = rows(store)
    import allframe_lab.runtime.migration as mig

    real_copy = mig._copy

    def lossy_copy(con: Any, *args: Any) -> None:
        real_copy(con, *args)
        con.execute(f"DELETE FROM {mig.NEW_TABLE} WHERE position = 3")

    monkeypatch.setattr(mig, "_copy", lossy_copy)
    with pytest.raises(StoreError, match=r"does not match.*events is unchanged"):
        migrate(store, model)
    assert rows(store) == original and tables(store) == names
    monkeypatch.undo()
    assert migrate(store, model).swapped
    store.close()


def test_misuse_is_reported(store_file: Path, tmp_path: Path) -> None:
    model, _ = load_model(tmp_path)
    ro = DuckDBEventStore(store_file, read_only=True)
    assert migrate(ro, model, dry_run=True).upcast_events == 34
    with pytest.raises(ReadOnlyStoreError, match="migrate needs it writable"):
        migrate(ro, model)
    ro.close()
    with pytest.raises(StoreError, match="DuckDB store"):
        migrate(InMemoryEventStore(), model)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="no event store"):
        migrate(tmp_path / "missing.duckdb", model)
    with pytest.raises(StoreError, match="SQL identifier"):
        migrate(store_file, model, backup_table="events; DROP TABLE x")
    with pytest.raises(StoreError, match="not backup tables"):
        drop_backups(store_file, names=["events"])
    newer = DuckDBEventStore(tmp_path / "newer.duckdb")
    newer.append("u", [NewEvent("UserRegistered", {}, schema_version=9)])
    with pytest.raises(Exception, match="newer than the model's 3"):
        migrate(newer, model, dry_run=True)
    newer.close()


# --------------------------------------------------------------------------- property
_payloads = st.lists(
    st.tuples(st.integers(min_value=1, max_value=3),
              st.text(alphabet="abc xyz", min_size=1, max_size=8)),
    min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(items=_payloads, batch=st.integers(min_value=1, max_value=10))
def test_migrate_then_read_equals_read_with_upcasting(tmp_path: Path, items: list[Any],
                                                      batch: int) -> None:
    model, _ = load_model(tmp_path)
    store = DuckDBEventStore(":memory:")
    for i, (v, name) in enumerate(items):
        data = ({"name": name} if v == 1 else {"first": name, "last": name[::-1]} if v == 2
                else {"given_name": name, "last": "", "email": name})
        store.append(f"s{i % 4}", [NewEvent("UserRegistered", data, schema_version=v)])
    decoder = EventDecoder(model)
    before = [(r.position, e) for b in iter_decoded(store, decoder, 1, None) for e, r in b]
    migrate(store, model, batch_size=batch, backup_table="events_backup_prop")
    after = [(r.position, e) for b in iter_decoded(store, EventDecoder(model), 1, None)
             for e, r in b]
    assert after == before
    assert {r.schema_version for r in store.read_all()} == {3}
    store.close()


# --------------------------------------------------------------------------- CLI
def test_cli_dry_run_migrate_and_drop_backup(store_file: Path, tmp_path: Path) -> None:
    _, spec = load_model(tmp_path)
    runner = CliRunner()
    before = digest(store_file)
    res = runner.invoke(cli, ["migrate", "--store", str(store_file), "--model", spec,
                              "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["dry_run"] and data["upcast_events"] == 34 and not data["swapped"]
    assert digest(store_file) == before
    res = runner.invoke(cli, ["migrate", "--store", str(store_file), "--model", spec])
    assert res.exit_code == 0, res.output
    assert "UserRegistered v1 -> v3" in res.output and "original kept as events_backup_" in \
        res.output
    res = runner.invoke(cli, ["migrate", "--store", str(store_file), "--drop-backup",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["dropped_backups"][0].startswith("events_backup_")
    res = runner.invoke(cli, ["migrate", "--store", str(store_file)])
    assert res.exit_code == 2 and "give --model" in res.output
    res = runner.invoke(cli, ["migrate", "--store", str(store_file), "--model", "nope"])
    assert res.exit_code == 2 and "MODULE:ATTR" in res.output
    res = runner.invoke(cli, ["migrate", "--store", str(store_file), "--model",
                              "allframe_lab:App"])
    assert res.exit_code == 2 and "not an allframe_lab Model" in res.output


def test_cli_as_a_subprocess(store_file: Path, tmp_path: Path) -> None:
    _, spec = load_model(tmp_path)
    cmd = [sys.executable, "-m", "allframe_lab.cli", "migrate", "--store", str(store_file),
           "--model", spec, "--json", "--drop-backup"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["swapped"] and data["upcast_events"] == 34 and data["backup_table"] is None
    assert len(data["dropped_backups"]) == 1
    store = DuckDBEventStore(store_file, read_only=True)
    assert backup_tables(store) == []
    assert {r.schema_version for r in store.read_all() if r.type == "UserRegistered"} == {3}
    store.close()
    # a second process holding the file for writing: a clear error, exit 2
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, duckdb; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", str(store_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        res = subprocess.run(cmd[:-2], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert res.returncode == 2 and "StoreLockedError" in res.stderr, res.stderr
    finally:
        holder.communicate("", timeout=30)


def test_report_repr_and_frame_shape() -> None:
    r = MigrationReport("f.duckdb", False, 10, ())
    assert repr(r) == ("MigrationReport('f.duckdb', no change, events=10, upcast=0 in 0 "
                       "groups, backup=None)")
    assert list(r.to_frame().columns) == ["type", "from_version", "to_version", "events"]
