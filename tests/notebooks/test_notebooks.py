"""Every tutorial in ``notebooks/`` runs top to bottom in a fresh kernel without an error.

New notebooks are picked up by the glob. Each runs in its own temporary working directory
(so a notebook that writes files leaves nothing in the checkout), with a 300 s limit per cell.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_errors(path: Path, tmp_path: Path, run_notebook) -> None:
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    run_notebook(nb, tmp_path)  # raises CellExecutionError, naming the cell, on the first error
    elapsed = time.perf_counter() - started
    errors = [
        (i, f"{out.get('ename')}: {out.get('evalue')}")
        for i, cell in enumerate(nb.cells)
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors, f"{path.name}: error outputs in cells {errors}"
    executed = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert all(c.get("execution_count") for c in executed), f"{path.name}: a cell did not run"
    print(f"{path.name}: {len(executed)} code cells in {elapsed:.1f} s")


def test_notebooks_are_committed_without_outputs() -> None:
    """Tutorials are stored clean: outputs are produced by running them, never committed."""
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        dirty = [i for i, c in enumerate(nb.cells)
                 if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
        assert not dirty, f"{path.name}: cells {dirty} have saved outputs; clear them"


def test_there_is_a_notebook_to_run() -> None:
    assert (NOTEBOOKS_DIR / "01_quickstart.ipynb") in NOTEBOOKS
