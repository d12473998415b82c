"""A Python projection over the built-in process-log model (shared by tests and benchmarks)."""

from __future__ import annotations

from typing import Any

from allframe_lab import Model, Projection, applies


def add_case_progress(model: Model) -> None:
    """Declare ``case_progress``: events, current activity, last position and time per case."""

    @model.projection("case_progress", key="case_id")
    class CaseProgress(Projection):
        @applies("*")
        def _any(self, event: Any, rec: Any) -> None:
            row = self.rows.get(rec.stream_id)
            if row is None:
                row = self.rows[rec.stream_id] = {"case_id": rec.stream_id, "events": 0}
            row["events"] += 1
            row["activity"] = rec.type
            row["last_position"] = rec.position
            row["updated_at"] = rec.occurred_at
