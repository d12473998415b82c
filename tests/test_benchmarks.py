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
