"""The one-event append path of InMemoryEventStore (inlined for App.handle) records the same
as the general path: positions, versions, ids and the UTC normalization of occurred_at."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from allframe_lab.store import NO_STREAM, InMemoryEventStore, NewEvent


def test_one_event_append_matches_the_batch_path() -> None:
    naive = datetime(2024, 5, 1, 12, 0)
    eid = uuid.uuid4()
    one, many = InMemoryEventStore(), InMemoryEventStore()
    _ = one.append("other", [NewEvent("X", {})])
    _ = many.append("other", [NewEvent("X", {})])
    a = one.append("s", [NewEvent("A", {"n": 1}, 2, {"m": 1}, naive, eid)],
                   expected_version=NO_STREAM)
    b = many.append("s", [NewEvent("A", {"n": 1}, 2, {"m": 1}, naive, eid),
                          NewEvent("B", {})], expected_version=NO_STREAM)
    assert len(a) == 1
    ra, rb = a[0], b[0]
    assert (ra.position, ra.stream_id, ra.version, ra.event_id, ra.type, ra.schema_version,
            ra.data, ra.metadata) == (rb.position, rb.stream_id, rb.version, rb.event_id,
                                      rb.type, rb.schema_version, rb.data, rb.metadata)
    assert ra.occurred_at == naive.replace(tzinfo=UTC) and ra.occurred_at.tzinfo is UTC
    assert (ra.position, ra.version) == (2, 1)
    # no occurred_at: the store's time of recording; no event id: a fresh one
    c = one.append("s", [NewEvent("C", {})], expected_version=1)[0]
    assert c.occurred_at == c.recorded_at and c.version == 2 and c.position == 3
    assert isinstance(c.event_id, uuid.UUID) and c.event_id != eid
    assert one.read_stream("s") == [ra, c]
