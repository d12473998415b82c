"""Facts about the running example, derived independently of allframe_lab's XES reader
(with xml.etree.ElementTree)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

from allframe_lab.io import dataset_path


@dataclass(frozen=True)
class TruthEvent:
    case: str
    activity: str
    at: datetime
    resource: str | None
    order: int  # index in the file


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def running_example_events() -> list[TruthEvent]:
    """Events of the running example, parsed with ElementTree, in file order."""
    root = ET.parse(dataset_path("running-example")).getroot()
    out: list[TruthEvent] = []
    for trace in (t for t in root if _local(t.tag) == "trace"):
        case = next(a.get("value") for a in trace
                    if _local(a.tag) == "string" and a.get("key") == "concept:name")
        for event in (e for e in trace if _local(e.tag) == "event"):
            attrs = {a.get("key"): a.get("value") for a in event}
            at = datetime.fromisoformat(attrs["time:timestamp"]).astimezone(UTC)
            out.append(TruthEvent(case, attrs["concept:name"], at, attrs.get("org:resource"),
                                  len(out)))
    return out
