"""Fixtures for executing notebooks in a real Jupyter kernel (nbclient + ipykernel).

The kernel is the ``python3`` kernelspec; jupyter_client starts it with the interpreter that
runs pytest, and the repository root is put on the kernel's ``PYTHONPATH`` so it imports this
checkout of ``allframe_lab`` even when the package is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import ipykernel  # noqa: F401  (the kernel the notebooks run in)
    import nbclient
    import nbformat  # noqa: F401
except ImportError:  # pragma: no cover - the "test" extra is not installed
    nbclient = None
    collect_ignore_glob = ["test_*.py"]

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "python3"
CELL_TIMEOUT = 300  # seconds, per cell


@pytest.fixture(scope="session")
def kernel_env() -> Iterator[None]:
    """Environment inherited by kernel processes: this checkout first on the path, and no
    progress bars."""
    with pytest.MonkeyPatch.context() as mp:
        path = os.environ.get("PYTHONPATH", "")
        mp.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO_ROOT), path) if p))
        mp.setenv("TQDM_DISABLE", "1")
        yield


def execute(nb: Any, cwd: Path, *, timeout: int = CELL_TIMEOUT,
            allow_errors: bool = False) -> Any:
    """Execute ``nb`` in place in a fresh ``python3`` kernel whose working directory is ``cwd``.

    Raises ``nbclient.exceptions.CellExecutionError`` if a cell raises, unless
    ``allow_errors`` is true: then every cell runs and errors are left in the outputs.
    """
    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(cwd)}},
        allow_errors=allow_errors,
        extra_arguments=["--InteractiveShell.colors=nocolor"],  # readable tracebacks
    )
    client.execute()
    return nb


@pytest.fixture(scope="session")
def run_notebook(kernel_env: None) -> Callable[..., Any]:
    """``run_notebook(nb, cwd)`` executes a notebook node in a fresh kernel and returns it."""
    return execute
