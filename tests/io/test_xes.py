"""The XES reader: typed attributes, nesting, namespaces, gzip, payloads, order."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from allframe_lab.io import LogMapping, dataset_path, iter_xes, iter_xes_traces, read_log
from allframe_lab.io.xes import read_xes

TYPED = """<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1849-2016" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="event">
    <string key="org:resource" value="UNKNOWN"/>
    <date key="time:timestamp" value="1970-01-01T00:00:00.000+01:00"/>
  </global>
  <classifier name="Activity" keys="concept:name"/>
  <string key="creator" value="a test">
    <string key="meta" value="log-level attributes are not event data"/>
  </string>
  <trace>
    <string key="concept:name" value="c1"/>
    <int key="priority" value="3"/>
    <date key="opened" value="2024-01-01T08:00:00"/>
    <event>
      <string key="concept:name" value="Register"/>
      <date key="time:timestamp" value="2024-01-02T10:00:00.250+01:00"/>
      <int key="amount" value="-42"/>
      <float key="score" value="0.5">
        <string key="unit" value="meta-attributes are skipped"/>
      </float>
      <boolean key="urgent" value="true"/>
      <id key="ref" value="ab12"/>
      <list key="tags">
        <values>
          <string key="tag" value="x"/>
          <int key="tag" value="2"/>
        </values>
      </list>
      <container key="address">
        <string key="city" value="Eindhoven"/>
        <container key="geo"><float key="lat" value="51.4"/></container>
      </container>
    </event>
    <event>
      <string key="concept:name" value="Decide"/>
      <date key="time:timestamp" value="2024-01-02T09:00:00Z"/>
      <boolean key="urgent" value="false"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="c2"/>
    <event>
      <string key="concept:name" value="Register"/>
      <date key="time:timestamp" value="2024-01-02T09:00:00+00:00"/>
    </event>
  </trace>
</log>
"""


@pytest.fixture
def typed_xes(tmp_path: Path) -> Path:
    path = tmp_path / "typed.xes"
    path.write_text(TYPED, encoding="utf-8")
    return path


def test_typed_nested_attributes(typed_xes: Path) -> None:
    traces = list(iter_xes_traces(typed_xes))
    assert [t.attributes["concept:name"] for t in traces] == ["c1", "c2"]
    t1 = traces[0]
    assert t1.attributes["priority"] == 3
    assert t1.attributes["opened"] == datetime(2024, 1, 1, 8, tzinfo=UTC)  # naive: UTC
    e1 = t1.events[0].attributes
    assert e1["amount"] == -42 and e1["score"] == 0.5 and e1["urgent"] is True
    assert e1["ref"] == "ab12"
    assert e1["tags"] == ["x", 2]
    assert e1["address"] == {"city": "Eindhoven", "geo": {"lat": 51.4}}
    assert "unit" not in e1  # meta-attribute skipped
    assert e1["time:timestamp"].utcoffset().total_seconds() == 3600
    # globals are declarations, not values: no placeholder resource is filled in
    assert "org:resource" not in e1
    assert t1.where(t1.events[1]) == f"trace 1, event 2 (line {t1.events[1].line})"


def test_iter_xes_prefixes_trace_attributes_with_case(typed_xes: Path) -> None:
    events = list(iter_xes(typed_xes))
    assert len(events) == 3
    assert events[0]["case:concept:name"] == "c1" and events[0]["case:priority"] == 3
    assert events[0]["concept:name"] == "Register"
    assert events[2]["case:concept:name"] == "c2"


def test_read_xes_sorts_by_time_and_builds_payloads(typed_xes: Path) -> None:
    table = read_xes(typed_xes)
    rows = table.to_pylist()
    # c1 Decide (09:00Z) and c2 Register (09:00+00:00) tie and keep their file order;
    # c1 Register (10:00:00.250+01:00) is the latest
    assert [(r["stream_id"], r["type"]) for r in rows] == [
        ("c1", "Decide"), ("c2", "Register"), ("c1", "Register")]
    assert all(r["occurred_at"] == datetime(2024, 1, 2, 9, tzinfo=UTC)
               for r in rows[:2])
    assert rows[2]["occurred_at"] == datetime(2024, 1, 2, 9, 0, 0, 250_000, tzinfo=UTC)
    data = json.loads(rows[2]["data"])
    assert data == {
        "case:priority": 3, "case:opened": "2024-01-01T08:00:00+00:00",
        "amount": -42, "score": 0.5, "urgent": True, "ref": "ab12", "tags": ["x", 2],
        "address": {"city": "Eindhoven", "geo": {"lat": 51.4}},
    }
    assert json.loads(rows[0]["data"]) == {"case:priority": 3,
                                           "case:opened": "2024-01-01T08:00:00+00:00",
                                           "urgent": False}
    assert json.loads(rows[1]["data"]) == {}


def test_same_time_events_keep_file_order(tmp_path: Path) -> None:
    events = "".join(
        f'<event><string key="concept:name" value="step{i}"/>'
        f'<date key="time:timestamp" value="2024-05-01T12:00:00+00:00"/></event>'
        for i in range(20)
    )
    path = tmp_path / "ties.xes"
    path.write_text(f'<log><trace><string key="concept:name" value="k"/>{events}</trace></log>')
    assert read_log(path).column("type").to_pylist() == [f"step{i}" for i in range(20)]


def test_gzip_is_detected_from_content_and_prefix_is_applied(typed_xes: Path,
                                                              tmp_path: Path) -> None:
    packed = tmp_path / "typed.xes.gz"
    packed.write_bytes(gzip.compress(typed_xes.read_bytes()))
    assert read_log(packed).equals(read_log(typed_xes))
    # a .xes name with gzip content works too
    odd = tmp_path / "odd.xes"
    odd.write_bytes(packed.read_bytes())
    assert read_log(odd).num_rows == 3
    table = read_log(typed_xes, mapping=LogMapping(stream_prefix="case-"))
    assert table.column("stream_id").to_pylist() == ["case-c1", "case-c2", "case-c1"]


def test_case_from_an_event_attribute(tmp_path: Path) -> None:
    path = tmp_path / "ev.xes"
    path.write_text(
        '<log><trace><string key="concept:name" value="t"/>'
        '<event><string key="order" value="o1"/><string key="concept:name" value="A"/>'
        '<date key="time:timestamp" value="2024-01-01T00:00:00Z"/></event>'
        '<event><string key="order" value="o2"/><string key="concept:name" value="B"/>'
        '<date key="time:timestamp" value="2024-01-01T00:00:01Z"/></event>'
        '</trace></log>')
    table = read_log(path, mapping=LogMapping(case="order", stream_prefix="order-"))
    assert table.column("stream_id").to_pylist() == ["order-o1", "order-o2"]
    assert json.loads(table.column("data")[0].as_py()) == {"case:concept:name": "t"}


def test_string_typed_timestamps_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "s.xes"
    path.write_text('<log><trace><string key="concept:name" value="1"/><event>'
                    '<string key="concept:name" value="A"/>'
                    '<string key="time:timestamp" value="2024-01-01 10:00:00+02:00"/>'
                    '</event></trace></log>')
    assert read_log(path).column("occurred_at")[0].as_py() == datetime(
        2024, 1, 1, 8, tzinfo=UTC)


def test_running_example_matches_an_independent_parse(truth: list) -> None:
    table = read_log(dataset_path("running-example"))
    got = list(zip(table.column("stream_id").to_pylist(), table.column("type").to_pylist(),
                   table.column("occurred_at").to_pylist()))
    assert got == [(e.case, e.activity, e.at) for e in truth]


def test_progress_bar_can_be_forced(typed_xes: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert read_log(typed_xes, progress=True).num_rows == 3
    assert read_log(typed_xes, progress=False).num_rows == 3
