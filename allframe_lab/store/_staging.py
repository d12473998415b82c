"""Staging an append: check expected versions and number the new events, before writing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from allframe_lab.errors import ConcurrencyError
from allframe_lab.store.records import (
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    check_expected_version,
    make_recorded_event,
)

Batches = Sequence[tuple[str, Sequence[NewEvent], int | ExpectedVersion]]


def stage(
    batches: Batches, version_of: Callable[[str], int], head: int, now: datetime
) -> tuple[list[list[RecordedEvent]], dict[str, int]]:
    """Number the events of ``batches`` from ``head + 1`` and check every expected version.

    Returns the recorded events per batch and each touched stream's new version. Nothing is
    written: the caller commits both only if its write succeeds.

    Raises
    ------
    ConcurrencyError
        On the first batch whose expected version does not match.
    """
    pending: dict[str, int] = {}
    out: list[list[RecordedEvent]] = []
    position = head
    for stream_id, events, expected in batches:
        actual = pending.get(stream_id)
        if actual is None:
            actual = version_of(stream_id)
        if not check_expected_version(expected, actual):
            raise ConcurrencyError(stream_id, expected, actual)
        recorded = number(stream_id, events, actual, position, now)
        position += len(recorded)
        pending[stream_id] = actual + len(recorded)
        out.append(recorded)
    return out, pending


def number(stream_id: str, events: Sequence[NewEvent], version: int, position: int,
           now: datetime) -> list[RecordedEvent]:
    """The events of one stream recorded after ``version`` and global ``position``, at time
    ``now`` (also their ``occurred_at`` when they carry none; naive times are taken as UTC)."""
    recorded = []
    for ev in events:
        position += 1
        version += 1
        occ = ev.occurred_at
        if occ is None:
            occ = now
        elif occ.tzinfo is None:
            occ = occ.replace(tzinfo=UTC)
        recorded.append(make_recorded_event(position, stream_id, version,
                                            ev.event_id or uuid.uuid4(), ev.type,
                                            ev.schema_version, ev.data, ev.metadata, occ, now))
    return recorded
