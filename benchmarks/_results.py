"""Shared by the benchmark scripts: result rows, the environment record, one fresh process per
scenario group, the printed table and atomic JSON result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- results
@dataclass
class Target:
    text: str
    kind: str      # "ratio": compare `ratio` (allframe / peer); "absolute": compare `value`
    op: str        # ">=" or "<="
    value: float

    def met(self, x: float) -> bool:
        return x >= self.value if self.op == ">=" else x <= self.value


@dataclass
class Row:
    id: str
    scenario: str
    title: str
    variant: str
    unit: str
    better: str                      # "higher" or "lower"
    value: float | None = None       # allframe-lab median
    samples: list[float] | None = None
    peer: dict[str, Any] | None = None   # {"name", "value", "samples"}
    ratio: float | None = None       # value / peer value
    target: Target | None = None
    status: str = "info"             # pass | fail | info | skipped | error
    note: str = ""
    gc: dict[str, Any] | None = None   # a/b memory rows: collections per sample, both sides

    def finish(self) -> Row:
        # the median of the samples, unless the row brings its own statistic (the p95/p99
        # rows of time_travel.py and cqrs.py)
        if self.samples and self.value is None:
            self.value = statistics.median(self.samples)
        if self.peer and self.peer.get("samples") and self.peer.get("value") is None:
            self.peer["value"] = statistics.median(self.peer["samples"])
        if self.value is not None and self.peer and self.peer.get("value"):
            self.ratio = self.value / self.peer["value"]
        if self.status in ("skipped", "error"):
            return self
        if self.target is None or self.value is None:
            self.status = "info"
        else:
            x = self.ratio if self.target.kind == "ratio" else self.value
            self.status = "info" if x is None else ("pass" if self.target.met(x) else "fail")
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Row:
        """A row from the dicts that time_travel.py, cqrs.py and upcasting.py return."""
        return cls(**{**d, "target": Target(**d["target"]) if d.get("target") else None})


def row_json(r: Row) -> dict[str, Any]:
    """A row as it goes into the results JSON."""
    d = asdict(r)
    d["target"] = asdict(r.target) if r.target else None
    return d


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


def run_isolated(script: Path, groups: list[str], quick: bool,
                 log: Callable[[str], None]) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run ``script --only GROUP --in-process`` in a fresh interpreter per group, as pyperf
    runs benchmarks in worker processes: objects one scenario leaves behind would otherwise
    add to the garbage-collection passes of the next (the command scenarios measured ~20%
    slower after the others). The child's progress goes to stderr; its rows come back
    through its JSON file. Python flags (``-O``) are passed on."""
    results: list[dict[str, Any]] = []
    timings: dict[str, float] = {}
    flags = ["-" + "O" * sys.flags.optimize] if sys.flags.optimize else []
    for group in groups:
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, *flags, str(script), "--only", group, "--in-process",
                   "--results-dir", out, *(["--quick"] if quick else [])]
            log(f"{group}: fresh process")
            proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, check=False)
            latest = Path(out) / "latest.json"
            if not latest.exists():
                results.append({"id": f"{group}.error", "scenario": group, "title": group,
                                "variant": "", "unit": "", "better": "", "value": None,
                                "samples": [], "peer": None, "ratio": None, "target": None,
                                "status": "error",
                                "note": f"the scenario's process exited with {proc.returncode}"})
                continue
            child = json.loads(latest.read_text())
            results.extend(child["results"])
            timings.update(child["scenario_seconds"])
    return results, timings


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "-"
    if unit == "events/s":
        return f"{x:,.0f}"
    if unit == "ms":
        return f"{x:,.2f}" if x < 10 else f"{x:,.1f}"
    if unit == "s":
        return f"{x:,.3f}"
    if unit == "MB":
        return f"{x:,.0f}"
    return f"{x:,.4g}"


def _ratio(r: dict[str, Any]) -> str:
    x = r["ratio"]
    if x is None:
        return "-"
    if r["better"] == "lower":
        return f"{x:.3f} ({1 / x:.1f}x faster)" if x < 1 else f"{x:.2f} ({x:.1f}x slower)"
    return f"{x:.2f}x"


def format_table(report: dict[str, Any]) -> str:
    env = report["env"]
    lines = [
        f"allframe-lab benchmarks {'(QUICK, scaled down) ' if report['quick'] else ''}"
        f"- {report['created_utc']}",
        f"Python {env['python']} {env['python_mode']}; eventsourcing "
        f"{env['packages']['eventsourcing']}, duckdb {env['packages']['duckdb']}, pyarrow "
        f"{env['packages']['pyarrow']}, pydantic {env['packages']['pydantic']}; "
        f"{env['cpu_count']} CPUs; {env['platform']}",
        "values: medians; ratio = allframe-lab / eventsourcing (same unit)",
        "",
    ]
    header = ("id", "unit", "allframe-lab", "eventsourcing", "ratio", "target", "status")
    cells = [header]
    for r in report["results"]:
        peer = r["peer"]["value"] if r["peer"] else None
        cells.append((r["id"], r["unit"], _fmt(r["value"], r["unit"]),
                      _fmt(peer, r["unit"]) if r["peer"] else "-", _ratio(r),
                      r["target"]["text"] if r["target"] else "-", r["status"].upper()))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    right = {2, 3}
    for i, c in enumerate(cells):
        lines.append("  ".join(s.rjust(w) if j in right else s.ljust(w)
                               for j, (s, w) in enumerate(zip(c, widths, strict=True))).rstrip())
        if i == 0:
            lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    lines.append("")
    for r in report["results"]:
        extra = f" [{r['variant']}]" if r["variant"] else ""
        lines.append(f"{r['id']}: {r['title']}{extra}")
        if r["note"]:
            lines.append(f"    note: {r['note']}")
    lines.append("")
    lines.extend(f"* {n}" for n in report["notes"])
    s = report["summary"]
    lines.append("")
    lines.append("summary: " + ", ".join(f"{k} {v}" for k, v in sorted(s.items()))
                 + f"; wall time {report['wall_s']:.0f} s")
    return "\n".join(lines)
