"""The runtime: App, repository, projection runner, clocks and id factories.

``ProjectionRunner`` (which needs duckdb) is imported lazily.
"""

from typing import TYPE_CHECKING, Any

from allframe_lab.runtime.app import App, PointInTime
from allframe_lab.runtime.clock import Clock, ManualClock, SystemClock
from allframe_lab.runtime.ids import IdFactory, RandomIds, SequentialIds
from allframe_lab.runtime.repository import Repository

if TYPE_CHECKING:  # pragma: no cover
    from allframe_lab.runtime.projections import ProjectionHandle, ProjectionRunner

__all__ = [
    "App",
    "Clock",
    "IdFactory",
    "ManualClock",
    "PointInTime",
    "ProjectionHandle",
    "ProjectionRunner",
    "RandomIds",
    "Repository",
    "SequentialIds",
    "SystemClock",
]


def __getattr__(name: str) -> Any:
    if name in ("ProjectionRunner", "ProjectionHandle"):
        from allframe_lab.runtime import projections

        return getattr(projections, name)
    raise AttributeError(f"module 'allframe_lab.runtime' has no attribute {name!r}")
