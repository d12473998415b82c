"""The time-travel widget without a browser: position -> kernel-side state -> shown rows.

Every point the widget shows is checked against an oracle that does not use the as-of
machinery: a fresh replay of the log prefix into a new App (Python projection), a plain fold
of the records (SQL projection), and SQL straight over the ``events`` table (BPIC 2012).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from allframe_lab import App, ManualClock, SequentialIds
from allframe_lab.errors import UnknownNameError
from allframe_lab.notebook.time_travel import TimeTravel
from allframe_lab.store import InMemoryEventStore, NewEvent
from allframe_lab.store.duckdb import DuckDBEventStore
from tests.bank import make_bank
from tests.process_logs import add_case_progress

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
ACCOUNTS = 12


@pytest.fixture
def bank_log(tmp_path: Path) -> Iterator[App]:
    """A bank on a real DuckDB file: 12 accounts, ~240 events, interleaved, one per minute."""
    bank = make_bank()
    app = App(bank, DuckDBEventStore(tmp_path / "bank.duckdb"),
              clock=ManualClock(T0, tick=timedelta(minutes=1)), ids=SequentialIds())
    rng = random.Random(7)
    cmd = bank.commands
    balance: dict[str, int] = {}
    for i in range(240):
        if len(balance) < ACCOUNTS and (i % 9 == 0 or not balance):
            acc = f"acc-{len(balance):02d}"
            app.handle(cmd["OpenAccount"](account_id=acc, owner=f"owner {acc}"))
            balance[acc] = 0
            continue
        acc = rng.choice(sorted(balance))
        if balance[acc] > 10 and rng.random() < 0.3:
            amount = rng.randint(1, balance[acc])
            app.handle(cmd["Withdraw"](account_id=acc, amount=amount))
            balance[acc] -= amount
        else:
            amount = rng.randint(1, 100)
            app.handle(cmd["Deposit"](account_id=acc, amount=amount))
            balance[acc] += amount
    yield app
    app.close()


# ------------------------------------------------------------------------------ oracles
def replayed_balances(app: App, position: int) -> dict[str, dict[str, Any]]:
    """Oracle of the Python projection: copy the prefix into a new store, replay from 1."""
    store = InMemoryEventStore()
    for rec in app.store.read_all(1, position):
        store.append(rec.stream_id, [NewEvent(rec.type, rec.data, rec.schema_version,
                                              rec.metadata, rec.occurred_at, rec.event_id)])
    fresh = App(make_bank(), store)
    df = fresh.projection("balances").df()
    return {r["account_id"]: r for r in df.to_dict("records")}


def folded_totals(app: App, position: int) -> dict[str, dict[str, Any]]:
    """Oracle of the SQL projection ``totals``: a plain fold of the records."""
    out: dict[str, dict[str, Any]] = {}
    for rec in app.store.read_all(1, position):
        row = out.setdefault(rec.stream_id, {"account_id": rec.stream_id, "balance": 0,
                                             "events": 0})
        sign = {"FundsDeposited": 1, "FundsWithdrawn": -1}.get(rec.type, 0)
        row["balance"] += sign * rec.data.get("amount", 0)
        row["events"] += 1
    return out


def diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
         ) -> tuple[set[str], int]:
    changed = {k for k, row in after.items() if before.get(k) != row}
    return changed, sum(1 for k in before if k not in after)


def shown(tt: TimeTravel, key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in tt.rows}


def check_point(tt: TimeTravel, oracle: dict[str, dict[str, Any]], key: str) -> None:
    rows = shown(tt, key)
    assert len(tt.rows) == len(rows), "a row is shown twice"
    assert tt.total_rows == len(oracle)
    for k, row in rows.items():
        assert {c: row[c] for c in oracle[k]} == oracle[k], (tt.position, k)
    flagged = {r[key] for r, f in zip(tt.rows, tt.row_changed, strict=True) if f}
    assert flagged == set(tt.changed_keys) & set(rows)


# ------------------------------------------------------------------------------ tests
@pytest.mark.duckdb
@pytest.mark.parametrize("projection", ["balances", "totals"])
def test_every_move_shows_the_oracle_table_and_its_changed_rows(bank_log: App,
                                                                projection: str) -> None:
    head = bank_log.store.head_position
    oracle = replayed_balances if projection == "balances" else folded_totals
    tt = TimeTravel(bank_log, projection=projection, key="account_id", max_rows=100,
                    position=40)
    assert tt.projection_kind == ("python" if projection == "balances" else "sql")
    before = oracle(bank_log, 40)
    check_point(tt, before, "account_id")
    assert tt.changed_keys == [] and not any(tt.row_changed)  # nothing to compare with yet

    rng = random.Random(3)
    moves: list[tuple[str, int]] = [("step", 1), ("step", 1), ("step", -1), ("step", 25),
                                    ("step", -60), ("step", 10_000), ("step", -10_000)]
    moves += [("goto", rng.randint(1, head)) for _ in range(6)]
    for kind, n in moves:
        prev = tt.position
        if kind == "step":
            tt.step(n)
            expected = max(1, min(head, prev + n))
        else:
            tt.goto(position=n)
            expected = n
        assert tt.position == tt.shown_position == expected
        after = oracle(bank_log, expected)
        check_point(tt, after, "account_id")
        changed, removed = diff(before, after)
        assert set(tt.changed_keys) == changed, (prev, expected)
        assert tt.changed_count == len(changed) and tt.removed_count == removed
        if expected != prev:  # every bank event changes its account's row
            touched = {r.stream_id for r in bank_log.store.read_all(
                min(prev, expected) + 1, max(prev, expected))}
            assert changed == touched & set(after)
        before = after


@pytest.mark.duckdb
def test_the_event_the_timestamp_and_the_aggregate_at_the_cursor(bank_log: App) -> None:
    tt = TimeTravel(bank_log, projection="balances", aggregate="Account", position=100)
    rec = next(iter(bank_log.store.read_all(100, 100)))
    assert tt.event["position"] == 100
    assert (tt.event["type"], tt.event["stream_id"], tt.event["version"], tt.event["data"]) == (
        rec.type, rec.stream_id, rec.version, rec.data)
    assert tt.timestamp == (T0 + timedelta(minutes=99)).isoformat()
    # the aggregate follows the cursor's stream; its state is a fold of the prefix
    state = tt.aggregate_state
    assert (state["aggregate"], state["stream_id"], state["version"]) == (
        "Account", rec.stream_id, rec.version)
    assert state["state"]["balance"] == replayed_balances(bank_log, 100)[rec.stream_id][
        "balance"]

    # a fixed stream keeps its state until one of its own events is passed
    tt.stream_id = "acc-00"
    versions = []
    for _ in range(5):
        tt.step(1)
        versions.append(tt.aggregate_state["version"])
    own = [r.version for r in bank_log.store.read_stream("acc-00") if r.position <= 105]
    assert versions[-1] == max(own)

    # date-time control: the last position that occurred by the time
    tt.goto(timestamp="2024-03-01T09:30:30")  # naive = UTC; 90.5 minutes after T0
    assert tt.position == 91 and tt.timestamp == (T0 + timedelta(minutes=90)).isoformat()
    tt.goto(timestamp=datetime(2020, 1, 1, tzinfo=UTC))
    assert tt.position == 1  # clamped to the first event
    tt.goto(timestamp=T0 + timedelta(days=30))
    assert tt.position == bank_log.store.head_position


@pytest.mark.duckdb
def test_the_browser_path_sets_position_and_sends_messages(bank_log: App) -> None:
    tt = TimeTravel(bank_log, projection="totals", position=10)
    tt.position = 57  # what the slider does through the comm
    assert tt.shown_position == 57
    assert shown(tt, "account_id") == {k: {**v} for k, v in folded_totals(bank_log, 57).items()}
    tt.position = 10_000  # clamped to the head
    assert tt.position == tt.shown_position == bank_log.store.head_position
    tt._on_frontend_msg(tt, {"type": "goto_timestamp", "timestamp": "2024-03-01T08:19:00"}, [])
    assert tt.position == 20 and tt.error == ""
    tt._on_frontend_msg(tt, {"type": "goto_timestamp", "timestamp": "not a time"}, [])
    assert tt.position == 20 and "ValueError" in tt.error
    tt.projection = "balances"  # the projection picker
    assert tt.projection_kind == "python"
    assert shown(tt, "account_id") == replayed_balances(bank_log, 20)


@pytest.mark.duckdb
def test_rows_are_bounded_changed_first(bank_log: App) -> None:
    tt = TimeTravel(bank_log, projection="balances", max_rows=4, position=200)
    assert len(tt.rows) == 4 and tt.total_rows == ACCOUNTS
    assert [r["account_id"] for r in tt.rows] == [f"acc-{i:02d}" for i in range(4)]
    tt.goto(position=60)  # many accounts change: the first 4 changed ones are shown
    assert tt.changed_count > 4 and tt.row_changed == [True] * 4
    assert [r["account_id"] for r in tt.rows] == sorted(tt.changed_keys)[:4]
    tt.step(1)  # one account changes: it comes first, then the table's first rows
    assert tt.row_changed == [True, False, False, False]
    rest = [r["account_id"] for r in tt.rows[1:]]
    assert rest == sorted(k for k in replayed_balances(bank_log, 61)
                          if k != tt.rows[0]["account_id"])[:3]


def test_new_events_after_opening_are_reached_with_refresh() -> None:
    bank = make_bank()
    app = App(bank, InMemoryEventStore(), ids=SequentialIds())
    app.handle(bank.commands["OpenAccount"](account_id="x", owner="o"))
    tt = TimeTravel(app, projection="totals")
    assert (tt.head, tt.position, tt.total_rows) == (1, 1, 1)
    app.handle(bank.commands["Deposit"](account_id="x", amount=5))
    tt.refresh()
    assert tt.head == 2
    tt.step(1)
    assert tt.position == 2 and tt.rows == [{"account_id": "x", "balance": 5, "events": 2}]


def test_an_empty_store_and_unknown_names() -> None:
    app = App(make_bank(), InMemoryEventStore())
    tt = TimeTravel(app, projection="balances")
    assert (tt.position, tt.head, tt.rows, tt.event, tt.total_rows) == (0, 0, [], {}, 0)
    tt.step(5)
    assert tt.position == 0
    with pytest.raises(UnknownNameError, match="balance"):
        TimeTravel(app, projection="balance")
    with pytest.raises(UnknownNameError, match="Acount"):
        TimeTravel(app, aggregate="Acount")
    with pytest.raises(ValueError, match="exactly one"):
        tt.goto()


# ------------------------------------------------------------------------------ BPIC 2012
ORACLE_SQL = """
SELECT stream_id AS case_id, count(*) AS events, arg_max(type, position) AS activity,
       max(position) AS last_position
FROM events WHERE position <= ? GROUP BY stream_id
"""


@pytest.mark.slow
@pytest.mark.duckdb
def test_bpic2012_sql_and_python_projections_match_sql_over_events(bpic_path: Path) -> None:
    from allframe_lab.io import process_log_model

    model = process_log_model()
    add_case_progress(model)
    app = App(model, DuckDBEventStore(bpic_path, read_only=True))
    head = app.store.head_position
    assert head == 262_200

    def oracle(p: int) -> dict[str, dict[str, Any]]:
        df = app.sql(ORACLE_SQL, [p])
        return {r["case_id"]: r for r in df.to_dict("records")}

    cols = ("events", "activity", "last_position")
    try:
        for projection in ("case_status", "case_progress"):
            tt = TimeTravel(app, projection=projection, key="case_id", max_rows=30,
                            position=150_000)
            before = oracle(150_000)
            rng = random.Random(11)
            for target in [150_001, 150_000, 150_000 + 500, rng.randint(1, head), head,
                           rng.randint(1, head)]:
                prev = tt.position
                tt.goto(position=target)
                after = oracle(target)
                assert tt.total_rows == len(after)
                for row in tt.rows:
                    expect = after[row["case_id"]]
                    assert {c: row[c] for c in cols} == {c: expect[c] for c in cols}
                lo, hi = min(prev, target), max(prev, target)
                moved = set(app.sql("SELECT DISTINCT stream_id FROM events WHERE position > ? "
                                    "AND position <= ?", [lo, hi]).stream_id)
                assert set(tt.changed_keys) == moved & set(after), (projection, prev, target)
                assert tt.removed_count == len(set(before) - set(after))
                assert tt.event["position"] == target
                before = after
    finally:
        app.close()


@pytest.mark.slow
def test_the_benchmark_runs_through_run_py_and_writes_its_rows(tmp_path: Path) -> None:
    """``make bench`` includes the time-travel scenario (figures are not asserted here)."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    res = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "run.py"), "--quick", "--only",
         "time_travel", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=root)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    rows = {r["id"]: r for r in json.loads((tmp_path / "latest.json").read_text())["results"]}
    for name in ("case_status", "case_progress"):
        for move in ("step+1", "step-1", "step+N", "step-N", "jump", "steps", "reopen"):
            row = rows[f"time_travel.{name}.{move}"]
            assert row["unit"] == "ms" and row["value"] > 0
            assert row["status"] in ("pass", "fail") and row["target"]["op"] == "<="
    assert "time_travel.case_status.steps" in res.stdout
