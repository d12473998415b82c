"""The demo runs end to end (python -m allframe_lab.demo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from allframe_lab.demo import NOTEBOOKS, QUICKSTART, main
from allframe_lab.store.duckdb import DuckDBEventStore


def test_demo_on_the_running_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "running-example.duckdb").write_text("an old file is replaced")
    assert main(["--out", str(out), "--dataset", "running-example", "--no-notebook"]) == 0
    text = capsys.readouterr().out
    assert "expected 6 cases / 42 events / 8 activities: OK" in text
    assert "case_status" in text and "events/s" in text
    assert text.count("as of ") == 3
    with DuckDBEventStore(out / "running-example.duckdb", read_only=True) as store:
        assert store.head_position == 42


def test_demo_skips_a_missing_notebook(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    assert main(["--out", str(tmp_path), "--dataset", "running-example",
                 "--notebook", str(tmp_path / "missing.ipynb")]) == 0
    assert "SKIPPED" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.notebook
def test_full_demo_as_a_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "allframe_lab.demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "expected 13,087 cases / 262,200 events / 24 activities: OK" in proc.stdout
    assert (out / "bpic2012.duckdb").is_file()
    if (NOTEBOOKS / QUICKSTART).is_file():
        assert (out / QUICKSTART).is_file()
        assert "executed in" in proc.stdout
