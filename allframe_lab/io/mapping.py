"""How the columns of a process log map onto events: case id, activity, timestamp.

A process log (XES, CSV, Parquet) has one row per event. Three of its attributes become the
event's envelope; everything else becomes the JSON payload (``data``):

=================== ======================== ==========================================
log attribute       XES standard name        becomes
=================== ======================== ==========================================
case id             ``case:concept:name``    ``stream_id`` (with an optional prefix)
activity            ``concept:name``         the event ``type``
timestamp           ``time:timestamp``       ``occurred_at`` (UTC)
=================== ======================== ==========================================

Tabular logs often use other names (``case_id``, ``Activity``, ``Complete Timestamp`` ...):
leave a field as ``None`` and :meth:`LogMapping.resolve` picks the first known variant that the
file has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

__all__ = ["CANDIDATES", "XES_ACTIVITY", "XES_CASE", "XES_TIMESTAMP", "LogMapping"]

XES_CASE = "case:concept:name"
XES_ACTIVITY = "concept:name"
XES_TIMESTAMP = "time:timestamp"

#: Column names recognised when a field of :class:`LogMapping` is left as ``None``, in order of
#: preference. Names are compared after lower-casing and dropping everything but letters and
#: digits, so ``Case ID``, ``case_id``, ``CaseID`` and ``case-id`` all match ``caseid``.
CANDIDATES: dict[str, tuple[str, ...]] = {
    "case": ("case:concept:name", "case_id", "case", "case_name", "case_number", "trace_id",
             "trace", "process_instance", "instance_id"),
    "activity": ("concept:name", "activity", "activity_name", "activity_id", "event_name",
                 "task", "action", "event"),
    "timestamp": ("time:timestamp", "timestamp", "complete_timestamp", "completetime",
                  "end_timestamp", "event_time", "datetime", "time", "date",
                  "start_timestamp", "start_time"),
}


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


@dataclass(frozen=True, slots=True)
class LogMapping:
    """Which attributes of a process log give each event's stream, type and time.

    Parameters
    ----------
    case : str, optional
        Attribute (column) holding the case id; it becomes the ``stream_id``. In XES, trace
        attributes are prefixed with ``case:``, so the trace's name is ``case:concept:name``.
        ``None`` (default): the XES name, else a common variant found in the file
        (see :data:`CANDIDATES`).
    activity : str, optional
        Attribute holding the activity name; it becomes the event ``type``.
        ``None``: ``concept:name`` or a variant such as ``activity`` / ``Activity``.
    timestamp : str, optional
        Attribute holding the time the event occurred; it becomes ``occurred_at``.
        ``None``: ``time:timestamp`` or a variant such as ``timestamp`` / ``Complete Timestamp``.
    stream_prefix : str, default ""
        Prepended to every case id, e.g. ``"case-"`` gives streams ``case-173688``.
    timestamp_format : str, optional
        For tabular logs whose timestamps are not ISO-8601: a ``strptime`` format such as
        ``"%Y/%m/%d %H:%M:%S"``. Timestamps without an offset are taken as UTC.

    Examples
    --------
    >>> LogMapping().resolve(["Case ID", "Activity", "Complete Timestamp", "Resource"])
    LogMapping(case='Case ID', activity='Activity', timestamp='Complete Timestamp', stream_prefix='', timestamp_format=None)
    >>> LogMapping(stream_prefix="loan-").xes().case
    'case:concept:name'
    """  # noqa: E501

    case: str | None = None
    activity: str | None = None
    timestamp: str | None = None
    stream_prefix: str = ""
    timestamp_format: str | None = None

    def xes(self) -> LogMapping:
        """This mapping with unset fields filled with the XES standard names."""
        return replace(
            self,
            case=self.case or XES_CASE,
            activity=self.activity or XES_ACTIVITY,
            timestamp=self.timestamp or XES_TIMESTAMP,
        )

    def resolve(self, columns: Sequence[str]) -> LogMapping:
        """Fill unset fields from the columns a tabular log has.

        An explicitly given name is kept as it is (a missing column is reported by the reader,
        naming it). For an unset field, the first name of :data:`CANDIDATES` that matches a
        column (ignoring case, spaces and punctuation) is taken; if none matches, the XES name
        is kept so that the error names what was expected.
        """
        by_norm: dict[str, str] = {}
        for c in columns:
            by_norm.setdefault(_norm(c), c)
        found: dict[str, str] = {}
        for field in ("case", "activity", "timestamp"):
            given = getattr(self, field)
            if given is not None:
                found[field] = given
                continue
            for cand in CANDIDATES[field]:
                hit = by_norm.get(_norm(cand))
                if hit is not None and hit not in found.values():
                    found[field] = hit
                    break
            else:
                found[field] = {"case": XES_CASE, "activity": XES_ACTIVITY,
                                "timestamp": XES_TIMESTAMP}[field]
        return replace(self, **found)

    @property
    def envelope(self) -> tuple[str, str, str]:
        """The three envelope attributes ``(case, activity, timestamp)`` (after resolving)."""
        m = self if None not in (self.case, self.activity, self.timestamp) else self.xes()
        return (m.case, m.activity, m.timestamp)  # type: ignore[return-value]
