"""The benchmark runner works end to end (a scaled-down run; figures are not asserted here:
speed targets live in the benchmarks, not in timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_quick_benchmark_writes_json_with_side_by_side_ratios(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only", "c,e",
         "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    assert data["quick"] is True
    ids = {r["id"] for r in data["results"]}
    assert any(i.startswith("c") for i in ids) and any(i.startswith("e") for i in ids)
    for r in data["results"]:
        assert r["value"] > 0
        if r.get("peer"):
            assert r["peer"]["name"].startswith("eventsourcing")
            assert r["peer"]["value"] > 0 and r["ratio"] > 0
    assert "scenario" in res.stdout or "ratio" in res.stdout


def test_scenario_groups_run_in_fresh_processes_and_merge(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--only",
         "c,bulk_arrow", "--results-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert res.stderr.count("fresh process") == 2  # one per group: "c,e" and "bulk_arrow"
    data = json.loads((tmp_path / "latest.json").read_text())
    ids = [r["id"] for r in data["results"]]
    assert "bulk_arrow" in ids and any(i.startswith("c.") for i in ids)
    assert set(data["scenario_seconds"]) == {"c,e", "bulk_arrow"}
    assert sum(data["summary"].values()) == len(ids)
    assert "bulk_arrow" in res.stdout  # one merged table

