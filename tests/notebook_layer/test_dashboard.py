"""The Panel dashboard without a browser: layout over a real DuckDB file, slider -> table, a
writer process beside it, traces, and the CLI command's argument handling.

Oracles are computed independently of the projection SQL: plain SQL or pandas over the
``events`` table of the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import panel as pn
import pytest
from click.testing import CliRunner

from allframe_lab import App
from allframe_lab.cli import cli
from allframe_lab.errors import StoreLockedError, UnknownNameError
from allframe_lab.io import dataset_path, import_log, process_log_model
from allframe_lab.notebook.dashboard import Dashboard, dashboard, load_model
from allframe_lab.store import InMemoryEventStore, NewEvent
from allframe_lab.store.duckdb import DuckDBEventStore

pytestmark = pytest.mark.duckdb


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DuckDB file with the shipped helpdesk log (21,348 events, 4,580 streams)."""
    path = tmp_path_factory.mktemp("dash") / "helpdesk.duckdb"
    with DuckDBEventStore(path) as store:
        import_log(dataset_path("helpdesk"), store)
    return path


def events_of(path: Path) -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("SELECT position, stream_id, type FROM events ORDER BY position").df()
    finally:
        con.close()


@pytest.fixture
def board(helpdesk: Path) -> Iterator[Dashboard]:
    b = dashboard(helpdesk, model=process_log_model(), projection="activity_counts")
    yield b
    b.close()


def test_layout_builds_over_a_duckdb_file(helpdesk: Path, board: Dashboard) -> None:
    ev = events_of(helpdesk)
    head = len(ev)
    assert isinstance(board.layout, pn.Column)
    assert [tab.name for tab in board.tabs.objects] == [
        "Overview", "Streams", "Projections", "Traces"]
    root = board.layout.get_root()  # the Bokeh model tree a browser would receive
    assert root.select_one({"type": type(board.slider.get_root())}) is not None
    # overview: counts and types from the file
    assert f'data-head-position="{head}"' in board.header.object
    assert f"{ev.stream_id.nunique():,}" in board.overview_pane.object
    expected = ev.type.value_counts()
    got = board.types_table.value.set_index("type").events
    assert got.to_dict() == expected.to_dict()
    # the slider spans the log and starts at the head
    assert (board.slider.start, board.slider.end, board.slider.value) == (1, head, head)
    assert board.projection_select.options == ["case_status", "activity_counts",
                                               "open_cases_over_time"]
    assert "read-only snapshot copy" in board.header.object
    assert board.render_seconds > 0


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.37, 0.8, 1.0])
def test_slider_sets_the_table_to_the_projection_as_of_that_position(
        helpdesk: Path, board: Dashboard, fraction: float) -> None:
    ev = events_of(helpdesk)
    position = max(1, int(len(ev) * fraction))
    board.slider.value = position
    table = board.projection_table.value
    oracle = ev[ev.position <= position].type.value_counts()
    assert table.set_index("activity").events.to_dict() == oracle.to_dict()
    assert f'data-position="{position}"' in board.position_pane.object
    assert f'data-rows="{len(oracle)}"' in board.position_pane.object


def test_slider_with_case_status_matches_a_pandas_fold(helpdesk: Path,
                                                      board: Dashboard) -> None:
    ev = events_of(helpdesk)
    board.projection_select.value = "case_status"
    for position in (5, 1234, len(ev) // 2):
        board.slider.value = position
        prefix = ev[ev.position <= position]
        last = prefix.groupby("stream_id").type.last()  # rows are in position order
        got = board.projection_table.value.set_index("case_id")
        assert got.activity.to_dict() == last.to_dict()
        assert got.events.to_dict() == prefix.groupby("stream_id").size().to_dict()
        # the exact frame keeps durations as timedeltas; the table shows hours (sortable)
        exact = board.projection_frame.set_index("case_id").duration
        assert str(exact.dtype).startswith("timedelta")
        hours = (exact.dt.total_seconds() / 3600).round(3)
        assert got.duration.to_dict() == hours.to_dict()
        assert board.projection_table.titles["duration"] == "duration (h)"


def test_step_buttons_move_the_slider(board: Dashboard) -> None:
    head = board.slider.end
    board.back_button.clicks += 1
    assert board.slider.value == head - 1
    board.forward_button.clicks += 1
    board.forward_button.clicks += 1  # clamped at the head
    assert board.slider.value == head


def test_stream_browser_filters_by_id_and_type(helpdesk: Path, board: Dashboard) -> None:
    ev = events_of(helpdesk)
    board.stream_filter.value = "case 12"
    ids = set(ev.stream_id[ev.stream_id.str.lower().str.contains("case 12")])
    assert set(board.streams_table.value.stream_id) == ids
    assert f"{len(ids):,} streams" in board.streams_count.object
    board.stream_filter.value = ""
    board.type_filter.value = "Require upgrade"
    with_type = set(ev.stream_id[ev.type == "Require upgrade"])
    assert set(board.streams_table.value.stream_id) == with_type
    # picking a stream shows its events in version order
    board.streams_table.selection = [0]
    sid = board.streams_table.value.stream_id.iloc[0]
    shown = board.events_table.value
    mine = ev[ev.stream_id == sid]
    assert shown.position.tolist() == mine.position.tolist()
    assert shown.type.tolist() == mine.type.tolist()
    assert json.loads(shown.data.iloc[0])  # payload shown as JSON text
    assert f'data-stream-id="{sid}"' in board.stream_title.object


def test_no_traces_yet_then_spans_from_a_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with DuckDBEventStore(path) as store:
        store.append("s", [NewEvent("A", {})])
    board = dashboard(path)
    try:
        assert "has no projections" in board.position_pane.object  # no model given
        assert "No traces yet" in board.traces_pane.object
        assert not board.spans_table.visible
        spans = [
            {"trace_id": "a" * 32, "span_id": "1" * 16, "parent_id": None,
             "name": "dispatch Deposit", "start_ns": 1_000, "end_ns": 5_001_000,
             "status": "ok", "attributes": {"stream_id": "s"}},
            {"trace_id": "a" * 32, "span_id": "2" * 16, "parent_id": "1" * 16,
             "name": "append", "start_ns": 2_000_000, "end_ns": 3_000_000, "status": "error"},
        ]
        (tmp_path / "t.duckdb.spans.jsonl").write_text(
            "\n".join(json.dumps(s) for s in spans) + "\n")
        board.refresh()
        assert board.spans_table.visible
        table = board.spans_table.value
        assert table.name.tolist() == ["dispatch Deposit", "append"]
        assert table.duration_ms.tolist() == [5.0, 1.0]
        assert board.traces_pane.object.count('class="allframe-dashboard-span"') == 2
    finally:
        board.close()


def test_traces_from_an_in_memory_exporter_hook() -> None:
    class Exporter:  # the shape of OpenTelemetry's InMemorySpanExporter
        def get_finished_spans(self) -> list[object]:
            from types import SimpleNamespace as NS

            ctx = NS(trace_id=0xABC, span_id=0x1)
            return [NS(context=ctx, parent=None, name="handle Open", start_time=10,
                       end_time=2_000_010, status=NS(status_code=NS(name="OK")),
                       attributes={"command": "Open"})]

    store = InMemoryEventStore()
    store.append("s", [NewEvent("A", {})])
    board = dashboard(App(process_log_model(), store), traces=Exporter())
    row = board.spans_table.value.iloc[0]
    assert (row.trace_id, row.span_id, row["name"], row.status) == (
        f"{0xABC:032x}", f"{1:016x}", "handle Open", "ok")
    assert row.duration_ms == 2.0


WRITER = textwrap.dedent("""
    import sys
    from allframe_lab.store import NewEvent
    from allframe_lab.store.duckdb import DuckDBEventStore
    store = DuckDBEventStore(sys.argv[1])          # holds the file for writing
    for line in sys.stdin:                         # "N": append N events, print the head
        n = int(line)
        store.append("w", [NewEvent("Written", {"i": i}) for i in range(n)])
        print(store.head_position, flush=True)
""")


def _writer(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _write(proc: subprocess.Popen[str], n: int) -> int:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{n}\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    return int(line)


@pytest.mark.slow
def test_opens_read_only_beside_a_writer_process_and_refresh_sees_new_events(
        tmp_path: Path) -> None:
    path = tmp_path / "shared.duckdb"
    with DuckDBEventStore(path) as store:
        import_log(dataset_path("running-example"), store)
    proc = _writer(path)
    try:
        head = _write(proc, 3)  # the writer now holds the file, 45 events
        board = dashboard(path, model="allframe_lab.io:process_log_model",
                          projection="activity_counts")
        try:
            assert board.slider.end == head == 45
            assert board.projection_table.value.set_index("activity").events["Written"] == 3
            head = _write(proc, 5)  # written after the dashboard opened: not seen yet
            assert board.slider.end == 45
            board.refresh()
            assert (board.slider.end, board.slider.value) == (head, head) == (50, 50)
            counts = board.projection_table.value.set_index("activity").events
            assert counts["Written"] == 8 and counts.sum() == 50
            board.slider.value = 42  # time travel on the fresh copy: before the writer
            assert "Written" not in set(board.projection_table.value.activity)
        finally:
            board.close()
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=30)


@pytest.mark.slow
def test_a_writer_can_open_the_file_while_the_dashboard_is_open(tmp_path: Path) -> None:
    path = tmp_path / "later.duckdb"
    with DuckDBEventStore(path) as store:
        store.append("s", [NewEvent("A", {})])
    board = dashboard(path)  # snapshot copy: no lock on the file
    proc = _writer(path)
    try:
        assert _write(proc, 2) == 3
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=30)
        board.close()
    # snapshot=False holds DuckDB's shared lock: a writer is refused meanwhile
    board = dashboard(path, snapshot=False)
    try:
        assert board.data.mode == "read-only"
        with pytest.raises(StoreLockedError):
            subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
                from allframe_lab.store.duckdb import DuckDBEventStore
                DuckDBEventStore({str(path)!r})
            """)], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:  # pragma: no cover - message shown on fail
        assert "StoreLockedError" in exc.stderr, exc.stderr
    finally:
        board.close()


def test_snapshot_copy_is_deleted_on_close(helpdesk: Path) -> None:
    board = dashboard(helpdesk)
    copy = Path(board.data.store.copy_path)
    assert copy.is_file() and copy != helpdesk and board.data.store.path == str(helpdesk)
    board.close()
    assert not copy.parent.exists()


def test_inline_in_a_notebook_uses_the_apps_live_store(tmp_path: Path) -> None:
    store = InMemoryEventStore()
    import_log(dataset_path("running-example"), store)
    app = App(process_log_model(), store)
    board = dashboard(app)
    assert board.data.mode == "live (this process's store)"
    bundle = board._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "text/html" in data and data["text/plain"].startswith("<Dashboard")
    assert pn.panel(board) is board.layout
    store.append("extra", [NewEvent("Late", {})])
    board.refresh()
    assert board.slider.end == 43


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="allframe-lab import"):
        dashboard(tmp_path / "missing.duckdb")
    with pytest.raises(UnknownNameError):
        dashboard(App(process_log_model(), InMemoryEventStore()), projection="nope")
    with pytest.raises(TypeError, match="MODULE:ATTR"):
        load_model("no_colon")
    with pytest.raises(TypeError, match="cannot import"):
        load_model("no_such_module_xyz:model")
    with pytest.raises(TypeError, match="not an allframe_lab Model"):
        load_model("json:__name__")


def test_empty_store_builds(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    DuckDBEventStore(path).close()
    board = dashboard(path)
    try:
        assert board.slider.disabled and board.slider.value == 0
        assert 'data-head-position="0"' in board.header.object
        assert board.projection_table.value is None or board.projection_table.value.empty
    finally:
        board.close()


# ---------------------------------------------------------------------------------- CLI
def test_cli_dashboard_help() -> None:
    result = CliRunner().invoke(cli, ["dashboard", "--help"])
    assert result.exit_code == 0
    for option in ("--store", "--port", "--model", "--projection"):
        assert option in result.output


@pytest.mark.parametrize(("args", "message"), [
    (["--store", "{missing}"], "no event store"),
    (["--store", "{store}", "--projection", "nope"], "UnknownNameError"),
    (["--store", "{store}", "--model", "nocolon"], "MODULE:ATTR"),
    (["--store", "{store}", "--port", "70000"], "70000"),
])
def test_cli_dashboard_errors_are_one_line_with_exit_2(helpdesk: Path, tmp_path: Path,
                                                       args: list[str], message: str) -> None:
    args = [a.format(missing=tmp_path / "nope.duckdb", store=helpdesk) for a in args]
    result = CliRunner().invoke(cli, ["dashboard", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    if "--port" not in args:
        assert len(result.stderr.strip().splitlines()) == 1


def test_workbench_dashboard_shows_the_same_layout_inline() -> None:
    from allframe_lab.notebook.workbench import Workbench

    store = InMemoryEventStore()
    import_log(dataset_path("running-example"), store)
    board = Workbench(App(process_log_model(), store)).dashboard(projection="activity_counts")
    assert isinstance(board, Dashboard)
    assert board.data.app.store is store
    board.slider.value = 10
    assert int(board.projection_table.value.events.sum()) == 10


def test_importing_the_module_does_not_import_panel() -> None:
    code = ("import sys, allframe_lab.notebook.dashboard; "
            "print([m for m in ('panel', 'bokeh', 'param') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"
