"""The allframe-lab command line, in-process (CliRunner) and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from allframe_lab.cli import cli
from allframe_lab.io import dataset_path, import_log
from allframe_lab.store.duckdb import DuckDBEventStore

VENV_BIN = Path(sys.executable).parent


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def one_json(result: Result) -> dict:
    assert result.exit_code == 0, result.output + result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.duckdb"
    obj = one_json(run("import", str(dataset_path("running-example")), "--store", str(path),
                       "--json"))
    assert (obj["events"], obj["streams"], obj["event_types"]) == (42, 6, 8)
    return path


def test_help_on_every_command() -> None:
    assert "import" in run("--help").output
    for command in ("import", "info", "streams", "events", "replay"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "--store" in result.output, command


def test_import_text_output_and_datasets_by_name(tmp_path: Path) -> None:
    result = run("import", "running-example", "--store", str(tmp_path / "s.duckdb"))
    assert result.exit_code == 0, result.output
    assert "imported 42 events in 6 streams (8 event types)" in result.stdout


def test_import_options(tmp_path: Path) -> None:
    csv = tmp_path / "log.csv"
    csv.write_text("ticket,step,at\nt1,open,2024-01-02T10:00:00+01:00\nt1,close,2024-01-03\n")
    obj = one_json(run("import", str(csv), "--store", str(tmp_path / "s.duckdb"), "--json",
                       "--case-column", "ticket", "--activity-column", "step",
                       "--timestamp-column", "at", "--stream-prefix", "T-"))
    assert (obj["events"], obj["format"], obj["first_occurred_at"]) == (
        2, "csv", "2024-01-02T09:00:00+00:00")
    events = one_json(run("events", "--store", str(tmp_path / "s.duckdb"), "--stream", "T-t1",
                          "--json"))
    assert [e["type"] for e in events["events"]] == ["open", "close"]


def test_info(store_file: Path) -> None:
    obj = one_json(run("info", "--store", str(store_file), "--json"))
    assert (obj["events"], obj["streams"], len(obj["event_types"])) == (42, 6, 8)
    assert obj["first_occurred_at"] == "2010-12-30T10:02:00+00:00"
    assert obj["last_occurred_at"] == "2011-01-24T13:56:00+00:00"
    text = run("info", "--store", str(store_file))
    assert "event types:  8" in text.stdout


def test_streams(store_file: Path) -> None:
    obj = one_json(run("streams", "--store", str(store_file), "--json", "--limit", "2"))
    assert obj["count"] == 2 and [s["stream_id"] for s in obj["streams"]] == ["1", "2"]
    obj = one_json(run("streams", "--store", str(store_file), "--json", "--prefix", "3"))
    assert [(s["stream_id"], s["version"]) for s in obj["streams"]] == [("3", 9)]
    assert "first_occurred_at" in run("streams", "--store", str(store_file)).stdout


def test_events(store_file: Path) -> None:
    obj = one_json(run("events", "--store", str(store_file), "--stream", "3", "--json"))
    assert [e["version"] for e in obj["events"]] == list(range(1, 10))
    assert obj["events"][0]["type"] == "register request"
    assert obj["events"][0]["data"]["org:resource"] == "Pete"
    assert "pay compensation" in run("events", "--store", str(store_file), "--stream",
                                     "3").stdout
    missing = run("events", "--store", str(store_file), "--stream", "nope")
    assert missing.exit_code == 2 and "no stream 'nope'" in missing.stderr


def test_replay_formats_and_as_of(store_file: Path) -> None:
    obj = one_json(run("replay", "--store", str(store_file), "--projection", "case_status",
                       "--format", "json"))
    assert obj["position"] == 42 and obj["count"] == 6
    past = one_json(run("replay", "--store", str(store_file), "--projection", "case_status",
                        "--as-of", "2011-01-01", "--format", "json"))
    assert sorted((r["case_id"], r["activity"]) for r in past["rows"]) == [
        ("1", "examine thoroughly"), ("2", "examine casually"), ("3", "check ticket")]
    by_position = one_json(run("replay", "--store", str(store_file), "--projection",
                               "activity_counts", "--as-of", "10", "--format", "json"))
    assert by_position["position"] == 10
    assert sum(r["events"] for r in by_position["rows"]) == 10
    csv = run("replay", "--store", str(store_file), "--projection", "activity_counts",
              "--format", "csv")
    assert csv.exit_code == 0 and csv.stdout.splitlines()[0].startswith("activity,events")
    table = run("replay", "--store", str(store_file), "--projection", "open_cases_over_time")
    assert table.exit_code == 0 and "open_cases" in table.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["replay", "--projection", "nope"], "unknown projection 'nope'"),
    (["replay", "--projection", "case_status", "--as-of", "yesterday"], "as-of 'yesterday'"),
])
def test_usage_errors_exit_2(store_file: Path, args: list[str], message: str) -> None:
    result = run(*args, "--store", str(store_file))
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bad_file_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("case_id,activity,timestamp\nc1,a,2024-01-01\nc1,b,not-a-time\n")
    store = tmp_path / "s.duckdb"
    result = run("import", str(bad), "--store", str(store), "--json")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("allframe-lab: error: ImportFormatError: ")
    assert "row 2" in result.stderr and "Traceback" not in result.stderr
    with DuckDBEventStore(store, read_only=True) as s:
        assert s.head_position == 0


def test_missing_store_and_log(tmp_path: Path) -> None:
    result = run("info", "--store", str(tmp_path / "nope.duckdb"))
    assert result.exit_code == 2 and "no event store" in result.stderr
    assert not (tmp_path / "nope.duckdb").exists()
    result = run("import", str(tmp_path / "nope.xes"), "--store", str(tmp_path / "s.duckdb"))
    assert result.exit_code == 2 and "no such event log" in result.stderr


# ------------------------------------------------------------------ real processes
@pytest.mark.slow
def test_entry_point_and_module_run_as_subprocesses(tmp_path: Path) -> None:
    exe = VENV_BIN / "allframe-lab"
    assert exe.exists(), "install the package: pip install -e ."
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "replay" in out.stdout
    store = tmp_path / "s.duckdb"
    out = subprocess.run([sys.executable, "-m", "allframe_lab.cli", "import", "running-example",
                          "--store", str(store), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["events"] == 42
    bad = tmp_path / "bad.xes.gz"
    bad.write_bytes(dataset_path("helpdesk").read_bytes()[:50_000])
    out = subprocess.run([str(exe), "import", str(bad), "--store", str(store)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "damaged or truncated" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_read_commands_work_beside_a_writer(store_file: Path) -> None:
    exe = VENV_BIN / "allframe-lab"
    with DuckDBEventStore(store_file) as writer:  # this process holds the file for writing
        import_log(dataset_path("running-example"), writer)  # the readers see these too
        info = subprocess.run([str(exe), "info", "--json", "--store", str(store_file)],
                              capture_output=True, text=True, timeout=120)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["events"] == 84
        for args in (["info", "--json"], ["streams", "--json"],
                     ["events", "--stream", "1", "--json"],
                     ["replay", "--projection", "case_status", "--as-of", "20",
                      "--format", "json"],
                     ["replay", "--projection", "activity_counts", "--format", "json"]):
            out = subprocess.run([str(exe), *args, "--store", str(store_file)],
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, (args, out.stderr)
            json.loads(out.stdout)
        out = subprocess.run([str(exe), "import", "running-example", "--store",
                              str(store_file)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and "StoreLockedError" in out.stderr
