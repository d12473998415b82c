"""Timing one call for the benchmarks, with the garbage collections that ran inside it."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

# The garbage collections that ran inside the last timed() call: [(generation, ms), ...].
# Python's collector runs when allocations cross its thresholds, so a window of a fixed
# number of commands may or may not contain a full (generation 2) collection, whose cost is
# proportional to every tracked object in the process (imported modules included). The a/b
# rows record them for both sides so that a ratio can be read with its collections.
LAST_GC: list[tuple[int, float]] = []
_gc_start = [0.0]


def _gc_callback(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_start[0] = time.perf_counter()
    else:
        LAST_GC.append((info["generation"], (time.perf_counter() - _gc_start[0]) * 1000))


def timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """(seconds, result) of one call, after a full garbage collection (the collections that
    run during the call are left in ``LAST_GC``)."""
    gc.collect()
    LAST_GC.clear()
    gc.callbacks.append(_gc_callback)
    try:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        dt = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(_gc_callback)
    return dt, out


def gc_summary(collections: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    """Collections of one timed window by generation: count, ms and share of the window."""
    out: dict[str, Any] = {}
    for gen in (0, 1, 2):
        ms = [m for g, m in collections if g == gen]
        out[f"gen{gen}"] = {"count": len(ms), "ms": round(sum(ms), 2)}
    total = sum(m for _, m in collections)
    out["share_of_window"] = round(total / 1000 / seconds, 3) if seconds else None
    return out
