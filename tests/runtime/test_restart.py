"""A process killed (SIGKILL) in the middle of a subscription and a followed projection.

A child process runs a subscription and a followed Python projection over a DuckDB file and is
killed three times: during the subscription's catch-up, during the projection's catch-up, and
during live appends. After each kill the file is reopened:

- the projection's table always equals an oracle folded from the log up to its checkpoint
  (rows and checkpoint are written in one transaction), and after catching up it equals the
  oracle of the whole log: no event skipped, none applied twice;
- the subscription resumes right after its durable checkpoint: every position is delivered at
  least once, in order, and only the events of the last uncommitted batch are delivered twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from allframe_lab import App, Projection, SequentialIds, applies
from allframe_lab.store.duckdb import DuckDBEventStore
from tests.bank import make_bank

pytestmark = [pytest.mark.duckdb, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BACKLOG = 25_000  # events written before the first child starts
# The projection writes rows + checkpoint every FLUSH_EVERY events, checked once per read
# batch (10,000 events), so a catch-up of BACKLOG events writes a few intermediate checkpoints.
FLUSH_EVERY = 50
BATCH = 1_000  # the subscription's batch (its checkpoint is written after each)


def make_model():
    """The bank plus ``ledger``: per account, the sum and the NUMBER of deposits applied."""
    bank = make_bank()

    @bank.projection("ledger", key="account_id", columns={
        "account_id": "VARCHAR", "total": "BIGINT", "applied": "BIGINT"})
    class Ledger(Projection):
        @applies("AccountOpened")
        def opened(self, e, rec) -> None:
            self.rows[rec.stream_id] = {"account_id": rec.stream_id, "total": 0, "applied": 0}

        @applies("FundsDeposited")
        def deposited(self, e, rec) -> None:
            if rec.position % 4 == 0:
                time.sleep(0.0001)  # slow enough for a kill to land in the middle
            row = self.rows[rec.stream_id]
            row["total"] += e.amount
            row["applied"] += 1

    return bank


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[3])
    from allframe_lab import App, SequentialIds
    from allframe_lab.store.duckdb import DuckDBEventStore
    from tests.runtime.test_restart import FLUSH_EVERY, make_model

    path, log_path, _, round_ = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    app = App(make_model(), DuckDBEventStore(path), ids=SequentialIds(seed=int(round_)))
    app.projections.flush_every = FLUSH_EVERY
    log = open(log_path, "a", buffering=1)

    def deliver(event, record):
        log.write(f"{round_} {record.position}\\n")  # line-buffered: visible at once
        if record.position % 4 == 0:
            time.sleep(0.0001)

    app.subscribe("audit", deliver)
    print("subscribed", time.perf_counter(), flush=True)
    app.follow("ledger")
    print("followed", time.perf_counter(), flush=True)
    i = 0
    while True:
        recs = app.dispatch("Deposit", {"account_id": f"acc-{i % 5}", "amount": i % 17 + 1})
        print("appended", recs[-1].position, flush=True)
        i += 1
""")


def oracle(store: DuckDBEventStore, to_position: int) -> dict[str, tuple[int, int]]:
    out: dict[str, list[int]] = {}
    for r in store.read_all(to_position=to_position):
        if r.type == "AccountOpened":
            out[r.stream_id] = [0, 0]
        elif r.type == "FundsDeposited":
            out[r.stream_id][0] += r.data["amount"]
            out[r.stream_id][1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


def ledger_table(app: App) -> dict[str, tuple[int, int]]:
    if "ledger" not in app.sql("SELECT table_name FROM duckdb_tables()").table_name.tolist():
        return {}
    df = app.sql("SELECT * FROM ledger")
    return {r.account_id: (int(r.total), int(r.applied)) for r in df.itertuples()}


def run_child_and_kill(path: Path, log: Path, round_: int, wait_for: str,
                       extra_lines: int = 0, delay: float = 0.0) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(log), str(ROOT), str(round_)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    deadline = time.monotonic() + 90
    assert proc.stdout is not None
    try:
        if wait_for == "log":  # kill during the subscription's catch-up
            while time.monotonic() < deadline and proc.poll() is None:
                done = [x for x in log.read_text().split("\n") if x.startswith(f"{round_} ")] \
                    if log.exists() else []
                if len(done) >= extra_lines:
                    break
                time.sleep(0.01)
        else:
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
                if line.startswith(wait_for):
                    break
            for _ in range(extra_lines):
                lines.append(proc.stdout.readline().strip())
        time.sleep(delay)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err
    assert lines or wait_for == "log", err
    return lines


def check_after_kill(path: Path) -> tuple[int, int]:
    """Reopen the file: the projection equals the oracle at ITS checkpoint. Returns the
    checkpoints (subscription, projection)."""
    with App(make_model(), DuckDBEventStore(path)) as app:
        p_ck = app.projections.checkpoint("ledger")
        assert ledger_table(app) == (oracle(app.store, p_ck) if p_ck else {})
        return app.subscriptions.checkpoint("audit"), p_ck


def delivered(log: Path) -> list[tuple[int, int]]:
    rows = [x.split() for x in log.read_text().split("\n") if x.strip()]
    return [(int(r), int(p)) for r, p in rows]


def test_sigkill_resumes_from_checkpoints_exactly_once_for_the_projection(tmp_path: Path
                                                                          ) -> None:
    path, log = tmp_path / "restart.duckdb", tmp_path / "delivered.log"
    with App(make_model(), DuckDBEventStore(path), ids=SequentialIds()) as app:
        app.dispatch_many([("OpenAccount", {"account_id": f"acc-{i}", "owner": str(i)})
                           for i in range(5)])
        app.dispatch_many([("Deposit", {"account_id": f"acc-{i % 5}", "amount": i % 13 + 1})
                           for i in range(BACKLOG - 5)])
    checkpoints = [(0, 0)]
    # 1. during the subscription's catch-up (BACKLOG events, batches of BATCH)
    run_child_and_kill(path, log, 1, "log", extra_lines=BATCH + BATCH // 2)
    checkpoints.append(check_after_kill(path))
    # 2. during the projection's catch-up (it starts once the subscription caught up)
    run_child_and_kill(path, log, 2, "subscribed", delay=0.9)
    checkpoints.append(check_after_kill(path))
    # 3. during live appends (each one delivered to both, then the next)
    lines = run_child_and_kill(path, log, 3, "followed", extra_lines=40)
    checkpoints.append(check_after_kill(path))
    assert sum(1 for x in lines if x.startswith("appended")) >= 40
    # 4. a last run without a kill: everything caught up
    seen_final: list[int] = []
    with App(make_model(), DuckDBEventStore(path), ids=SequentialIds(seed=9)) as app:
        app.subscribe("audit", lambda e, r: seen_final.append(r.position))
        app.follow("ledger")
        head = app.store.head_position
        assert ledger_table(app) == oracle(app.store, head)  # no event skipped or doubled
        assert app.projections.checkpoint("ledger") == app.subscriptions.checkpoint(
            "audit") == head
        assert app.dead_letter_count == 0

    # the subscription: each run resumed right after the previous run's durable checkpoint
    log_rows = delivered(log) + [(4, p) for p in seen_final]
    for round_ in (1, 2, 3, 4):
        mine = [p for r, p in log_rows if r == round_]
        sub_ck_before = checkpoints[round_ - 1][0]
        if mine:
            assert mine[0] == sub_ck_before + 1, (round_, mine[:3], sub_ck_before)
            assert mine == list(range(mine[0], mine[0] + len(mine)))  # in order, no gap
    everything = [p for _, p in log_rows]
    assert set(everything) == set(range(1, head + 1))  # at least once
    # at most the last uncommitted batch of a killed run was delivered again
    duplicates = {p for p in everything if everything.count(p) > 1}
    for p in duplicates:
        assert any(ck < p <= ck + BATCH for ck, _ in checkpoints[1:4]), p
    # the kills did land in the middle of the work
    assert checkpoints[1][0] < BACKLOG
    print("checkpoints after each kill (subscription, projection):", checkpoints[1:],
          "last delivered per run:", [max(p for r, p in log_rows if r == k) for k in (1, 2, 3)],
          "duplicates:", len(duplicates))
