"""The three MIME bundles: payloads valid against the shared schemas, with fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema  # the test extra installs it: a missing one must fail, not skip
import pytest

from allframe_lab.notebook.mime import (
    GRAPH_MIME,
    TIMELINE_MIME,
    TRACE_MIME,
    graph_bundle,
    schema,
    timeline_bundle,
    trace_bundle,
    validate,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "allframe_lab" / "notebook" / "schemas"


def _check(bundle, mime):
    assert set(bundle.data) == {mime, "text/html", "text/plain"}
    assert bundle.mime_type == mime
    validate(bundle.payload)
    json.dumps(bundle.data)  # the whole bundle is JSON (it is sent to the front end)
    assert bundle.data["text/html"].strip() and bundle.data["text/plain"].strip()


def test_schema_files_are_the_ones_loaded() -> None:
    for kind in ("graph", "timeline", "trace"):
        on_disk = json.loads((SCHEMAS / f"{kind}.v1.json").read_text())
        assert schema(kind) == on_disk
        jsonschema.Draft202012Validator.check_schema(on_disk)


def test_graph_bundle_validates_and_lists_edges() -> None:
    b = graph_bundle('digraph g { "a x" -> "b"; b -> c }', title="t",
                     nodes=[{"id": "a x", "kind": "command", "label": "A"}])
    _check(b, GRAPH_MIME)
    assert b.payload["dot"].startswith("digraph")
    assert "a x -> b" in b.data["text/plain"] and "b -> c" in b.data["text/plain"]
    assert "<td>A</td>" in b.data["text/html"]  # labels from node metadata


def test_timeline_bundle_from_duckdb_records(tmp_path: Path) -> None:
    from allframe_lab.store import NewEvent
    from allframe_lab.store.duckdb import DuckDBEventStore

    with DuckDBEventStore(tmp_path / "t.duckdb") as store:
        store.append("s1", [NewEvent("Opened", {"owner": "ann", "tags": [1, 2]},
                                     metadata={"correlation_id": "c1"})])
        store.append("s2", [NewEvent("Opened", {"owner": "bob"})])
        store.append("s1", [NewEvent("Closed", {})])
        records = list(store.read_all())
    b = timeline_bundle(records, title="two")
    _check(b, TIMELINE_MIME)
    p = b.payload
    assert [lane["id"] for lane in p["lanes"]] == ["s1", "s2"]
    assert [(e["lane"], e["position"], e["version"], e["type"]) for e in p["events"]] == [
        (r.stream_id, r.position, r.version, r.type) for r in records]
    assert p["events"][0]["data"] == {"owner": "ann", "tags": [1, 2]}
    assert p["events"][0]["metadata"] == {"correlation_id": "c1"}
    assert p["events"][0]["time"].endswith("+00:00")
    assert "Opened" in b.data["text/html"] and "Closed" in b.data["text/plain"]


def test_timeline_from_mappings_with_json_text_payloads() -> None:
    b = timeline_bundle([{"stream_id": "x", "position": 3, "type": "T",
                          "occurred_at": "2024-01-01T00:00:00+00:00", "data": '{"a": 1}'}])
    _check(b, TIMELINE_MIME)
    assert b.payload["events"][0]["data"] == {"a": 1}


def test_trace_bundle_validates_orders_spans_and_marks_errors() -> None:
    spans = [
        {"trace_id": "f" * 32, "span_id": "2" * 16, "parent_id": "1" * 16, "name": "append",
         "start_ns": 1_500, "end_ns": 2_000, "status": "error",
         "attributes": {"stream_id": "a1"}},
        {"trace_id": "f" * 32, "span_id": "1" * 16, "parent_id": None, "name": "dispatch",
         "start_ns": 1_000, "end_ns": 3_000, "status": "ok"},
    ]
    b = trace_bundle(spans, title="deposit")
    _check(b, TRACE_MIME)
    lines = b.data["text/plain"].splitlines()
    assert lines[1].strip().startswith("dispatch") and lines[2].strip().startswith("append")
    assert lines[2].endswith("ERROR") and "ERROR" not in lines[1]
    assert b.payload["spans"][0]["attributes"] == {"stream_id": "a1"}


def test_validation_rejects_unknown_versions_and_fields() -> None:
    b = graph_bundle("digraph { a -> b }")
    bad = dict(b.payload, version=2)
    with pytest.raises(jsonschema.ValidationError):
        validate(bad)
    with pytest.raises(jsonschema.ValidationError):
        validate(dict(b.payload, extra=1))
    with pytest.raises(KeyError):
        validate({"schema": "allframe.nope"})
