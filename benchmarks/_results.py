"""Shared by the benchmark scripts: the environment record and atomic JSON result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def environment() -> dict[str, Any]:
    def ver(pkg: str) -> str | None:
        try:
            return pkg_version(pkg)
        except PackageNotFoundError:
            return None

    commit = None
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip() or None
    except Exception:
        pass
    opt = sys.flags.optimize
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "python_mode": f"-{'O' * opt} (asserts off)" if opt else "default (asserts on)",
        "optimize_flag": opt,
        "gc": "enabled (Python default) on both sides",
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": {k: ver(k) for k in ("allframe-lab", "eventsourcing", "duckdb", "pyarrow",
                                         "pydantic", "pandas", "numpy")},
        "git_commit": commit,
    }


def write_results(report: dict[str, Any], directory: Path, prefix: str = "") -> Path:
    """Write ``<prefix><UTC stamp>.json`` and ``<prefix>latest.json`` (each atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2) + "\n"
    out = directory / f"{prefix}{stamp}.json"
    for target in (out, directory / f"{prefix}latest.json"):
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
    return out
