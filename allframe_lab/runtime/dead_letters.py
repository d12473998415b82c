"""Dead letters: events a subscriber (or projection) failed on, parked with the error.

Parked events live in the store's runtime state (namespace :data:`NAMESPACE`), one record per
``(subscriber, position)``, written in the same transaction as the subscriber's checkpoint (or,
for a DuckDB projection, as its rows). Processing goes on with the next event; parked events
can be listed, retried and discarded.
"""

from __future__ import annotations

import traceback as tb
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from allframe_lab.store import EventStore, RecordedEvent

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["NAMESPACE", "ParkedEvent", "key", "park_record", "parked", "parked_frame"]

#: Runtime-state namespace of parked events.
NAMESPACE = "dead_letters"


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """One parked event: who failed on it, where it is in the log, and why."""

    subscriber: str
    position: int
    stream_id: str
    type: str
    error: str
    traceback: str
    attempts: int
    parked_at: str


def key(subscriber: str, position: int) -> str:
    """The record key: subscriber name and zero-padded position (sorts by position)."""
    return f"{subscriber}/{position:015d}"


def park_record(subscriber: str, rec: RecordedEvent, exc: BaseException,
                attempts: int = 1) -> dict[str, Any]:
    """The JSON record of a failure (error text, formatted traceback, attempt count)."""
    return {
        "subscriber": subscriber, "position": rec.position, "stream_id": rec.stream_id,
        "type": rec.type, "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(tb.format_exception(exc)), "attempts": attempts,
        "parked_at": datetime.now(UTC).isoformat(),
    }


def parked(store: EventStore, subscriber: str | None = None) -> list[ParkedEvent]:
    """Parked events, by subscriber then position."""
    out = []
    for k, v in store.scan_state(NAMESPACE).items():
        if subscriber is None or k.startswith(subscriber + "/"):
            out.append(ParkedEvent(**v))
    return out


def parked_frame(store: EventStore, subscriber: str | None = None) -> pd.DataFrame:
    """Parked events as a DataFrame (one row each)."""
    import pandas as pd

    cols = list(ParkedEvent.__slots__)
    return pd.DataFrame([[getattr(p, c) for c in cols] for p in parked(store, subscriber)],
                        columns=cols)
