"""Records as pandas DataFrames (pandas is imported only when a frame is asked for)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from allframe_lab.store import EventStore, RecordedEvent, StreamInfo

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["correlation_frame", "events_frame", "streams_frame"]

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


CHAIN_COLUMNS = ["position", "stream_id", "version", "type", "command", "command_id",
                 "event_id", "causation_id", "command_causation_id", "depth", "occurred_at"]


def correlation_frame(store: EventStore, correlation_id: str) -> pd.DataFrame:
    """The events of one correlation id in causal order (see ``App.correlation_chain``)."""
    import pandas as pd

    con = getattr(store, "connection", None)
    if con is not None:
        from allframe_lab.store.duckdb import frame

        with store.lock:  # type: ignore[attr-defined]
            positions = frame(con, "SELECT position FROM events WHERE "
                                   "metadata->>'correlation_id' = ? ORDER BY position",
                              [correlation_id]).position.tolist()
        records = [r for p in positions for r in store.read_all(p, p)]
    else:
        records = [r for r in store.read_all()
                   if r.metadata.get("correlation_id") == correlation_id]
    depth_of_event: dict[str, int] = {}
    rows = []
    for r in records:  # positions order = causal order: a cause is recorded before its effects
        m = r.metadata
        cause = m.get("command_causation_id")
        depth = depth_of_event.get(cause, -1) + 1 if cause else 0
        depth_of_event[str(r.event_id)] = depth
        rows.append((r.position, r.stream_id, r.version, r.type, m.get("command"),
                     m.get("command_id"), str(r.event_id), m.get("causation_id"), cause, depth,
                     r.occurred_at))
    return pd.DataFrame(rows, columns=CHAIN_COLUMNS)
