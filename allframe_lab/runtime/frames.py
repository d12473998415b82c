"""Records as pandas DataFrames (pandas is imported only when a frame is asked for)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from allframe_lab.store import RecordedEvent, StreamInfo

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["events_frame", "streams_frame"]

EVENT_COLUMNS = ["position", "stream_id", "version", "type", "occurred_at", "data", "metadata",
                 "schema_version", "event_id", "recorded_at"]


def events_frame(records: Sequence[RecordedEvent]) -> pd.DataFrame:
    """One row per event, columns as in :data:`EVENT_COLUMNS`."""
    import pandas as pd

    return pd.DataFrame(
        [(r.position, r.stream_id, r.version, r.type, r.occurred_at, dict(r.data),
          dict(r.metadata), r.schema_version, str(r.event_id), r.recorded_at) for r in records],
        columns=EVENT_COLUMNS,
    )


def streams_frame(streams: Sequence[StreamInfo]) -> pd.DataFrame:
    """One row per stream."""
    import pandas as pd

    return pd.DataFrame(
        [(s.stream_id, s.version, s.first_position, s.last_position, s.first_occurred_at,
          s.last_occurred_at) for s in streams],
        columns=["stream_id", "version", "first_position", "last_position",
                 "first_occurred_at", "last_occurred_at"],
    )
