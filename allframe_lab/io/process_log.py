"""A ready-made Model for imported process logs: a ``Case`` aggregate and three SQL projections.

Imported activity names are not known in advance, so the model decodes every event as a
:class:`~allframe_lab.GenericEvent` (its ``fallback_event``) and the ``Case`` aggregate folds
any event with an ``@applies("*")`` handler.

The projections are SELECTs over the ``events`` table, so they rebuild at DuckDB speed and
time-travel with ``App(model, store).projection(name).as_of(timestamp=...)``:

======================== =====================================================================
``case_status``          one row per case: first and current (last) activity, resource of the
                         last event, start, last update, duration, event count, last position
``activity_counts``      one row per activity: events, distinct cases, first and last time
``open_cases_over_time`` one row per UTC day from the first to the last event: cases started,
                         cases whose last event (so far) happened that day, and the running
                         number of open cases (started minus finished, cumulated)
======================== =====================================================================

"Finished" needs hindsight: over a prefix of the log (``as_of``) each case's last event *so
far* counts as its end, so on the prefix's last day every case is finished and
``open_cases`` is 0. Read open cases at a past day from the projection over the whole log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from allframe_lab.model import Aggregate, GenericEvent, Model, applies

__all__ = ["ACTIVITY_COUNTS_SQL", "CASE_STATUS_SQL", "OPEN_CASES_SQL", "process_log_model"]

CASE_STATUS_SQL = """
SELECT stream_id                              AS case_id,
       arg_min(type, position)                AS first_activity,
       arg_max(type, position)                AS activity,
       arg_max(data->>'$."org:resource"', position) AS resource,
       min(occurred_at)                       AS started_at,
       max(occurred_at)                       AS updated_at,
       max(occurred_at) - min(occurred_at)    AS duration,
       count(*)                               AS events,
       max(position)                          AS last_position
FROM events
GROUP BY stream_id
ORDER BY min(position)
"""

ACTIVITY_COUNTS_SQL = """
SELECT type                      AS activity,
       count(*)                  AS events,
       count(DISTINCT stream_id) AS cases,
       min(occurred_at)          AS first_at,
       max(occurred_at)          AS last_at
FROM events
GROUP BY type
ORDER BY events DESC, activity
"""

OPEN_CASES_SQL = """
WITH cases AS (
    SELECT stream_id,
           CAST(min(occurred_at) AT TIME ZONE 'UTC' AS DATE) AS started,
           CAST(max(occurred_at) AT TIME ZONE 'UTC' AS DATE) AS last_seen
    FROM events
    GROUP BY stream_id
),
days AS (
    SELECT CAST(unnest(generate_series(CAST(min(started) AS TIMESTAMP),
                                       CAST(max(last_seen) AS TIMESTAMP),
                                       INTERVAL 1 DAY)) AS DATE) AS day
    FROM cases
),
starts AS (SELECT started AS day, count(*) AS n FROM cases GROUP BY started),
ends AS (SELECT last_seen AS day, count(*) AS n FROM cases GROUP BY last_seen)
SELECT days.day                                  AS day,
       CAST(coalesce(starts.n, 0) AS BIGINT)     AS started,
       CAST(coalesce(ends.n, 0) AS BIGINT)       AS finished,
       CAST(sum(coalesce(starts.n, 0) - coalesce(ends.n, 0))
            OVER (ORDER BY days.day) AS BIGINT)  AS open_cases
FROM days
LEFT JOIN starts ON starts.day = days.day
LEFT JOIN ends ON ends.day = days.day
ORDER BY days.day
"""


def process_log_model(name: str = "process-log", /) -> Model:
    """A Model for imported process logs (a new object on every call).

    Parameters
    ----------
    name : str, default "process-log"
        The model's name.

    Returns
    -------
    Model
        With ``fallback_event=GenericEvent``; the aggregate ``Case`` (one per stream: current
        activity, resource, started_at, updated_at, event count); and the SQL projections
        ``case_status``, ``activity_counts`` and ``open_cases_over_time``.

    Examples
    --------
    >>> from allframe_lab import App
    >>> from allframe_lab.io import dataset_path, import_log
    >>> from allframe_lab.store import InMemoryEventStore
    >>> store = InMemoryEventStore()
    >>> _ = import_log(dataset_path("running-example"), store)
    >>> app = App(process_log_model(), store)
    >>> case = app.load("Case", "3")
    >>> case.activity, case.events, case.started_at.isoformat()
    ('pay compensation', 9, '2010-12-30T13:32:00+00:00')
    >>> counts = app.projection("activity_counts").df()
    >>> counts[["activity", "events"]].head(2).values.tolist(), int(counts.events.sum())
    ([['check ticket', 9], ['decide', 9]], 42)
    >>> past = app.projection("case_status").as_of(timestamp="2011-01-01")
    >>> sorted(zip(past.case_id, past.activity))  # cases started by then, at their activity
    [('1', 'examine thoroughly'), ('2', 'examine casually'), ('3', 'check ticket')]
    """
    model = Model(name, fallback_event=GenericEvent)

    @model.aggregate("Case")
    class Case(Aggregate):
        """One case of a process log: where it is and since when."""

        activity: str | None = None
        resource: str | None = None
        started_at: datetime | None = None
        updated_at: datetime | None = None
        events: int = 0

        @applies("*")
        def _any(self, event: Any, record: Any) -> None:
            self.activity = record.type
            resource = (event.model_extra or {}).get("org:resource")
            if resource is not None:
                self.resource = str(resource)
            if self.started_at is None:
                self.started_at = record.occurred_at
            self.updated_at = record.occurred_at
            self.events += 1

    model.sql_projection("case_status", CASE_STATUS_SQL,
                         description="one row per case: current activity, start, last update")
    model.sql_projection("activity_counts", ACTIVITY_COUNTS_SQL,
                         description="events and cases per activity")
    model.sql_projection("open_cases_over_time", OPEN_CASES_SQL,
                         description="cases started, finished and open per UTC day")
    return model
