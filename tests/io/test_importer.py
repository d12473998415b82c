"""import_log / read_log: one transaction, results, formats, stores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from allframe_lab.errors import ImportFormatError, ReadOnlyStoreError
from allframe_lab.io import ImportResult, dataset_path, detect_format, import_log, read_log
from allframe_lab.store import InMemoryEventStore
from allframe_lab.store.duckdb import DuckDBEventStore


def test_read_log_table_shape() -> None:
    table = read_log(dataset_path("running-example"))
    assert table.schema == pa.schema([
        ("stream_id", pa.string()), ("type", pa.string()), ("data", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC"))])
    assert table.num_rows == 42
    for text in table.column("data").to_pylist():
        data = json.loads(text)
        assert "concept:name" not in data and "time:timestamp" not in data
        assert "case:concept:name" not in data and data["case:creator"] == "Fluxicon Nitro"


def test_import_result(duck: DuckDBEventStore) -> None:
    result = import_log(dataset_path("running-example"), duck, progress=False)
    assert isinstance(result, ImportResult)
    assert (result.events, result.streams, result.event_types) == (42, 6, 8)
    assert (result.first_position, result.last_position) == (1, 42)
    assert result.first_occurred_at == datetime(2010, 12, 30, 10, 2, tzinfo=UTC)
    assert result.last_occurred_at == datetime(2011, 1, 24, 13, 56, tzinfo=UTC)
    assert result.parse_seconds > 0 and result.store_seconds > 0
    assert result.events_per_second == pytest.approx(42 / result.seconds)
    data = result.as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["first_occurred_at"] == "2010-12-30T10:02:00+00:00"
    assert "42 events in 6 streams, 8 event types" in repr(result)
    with pytest.raises(AttributeError):
        result.events = 1  # type: ignore[misc]


def test_import_into_a_store_with_events_continues_positions(duck: DuckDBEventStore) -> None:
    first = import_log(dataset_path("running-example"), duck)
    second = import_log(dataset_path("running-example"), duck)
    assert (second.first_position, second.last_position) == (43, 84)
    assert duck.stream_version("3") == 18  # versions continue each stream
    assert first.streams == second.streams == 6


def test_in_memory_store_gets_the_same_events(duck: DuckDBEventStore) -> None:
    mem = InMemoryEventStore()
    import_log(dataset_path("running-example"), mem)
    import_log(dataset_path("running-example"), duck)
    strip = [(e.position, e.stream_id, e.version, e.type, dict(e.data), e.occurred_at)
             for e in mem.read_all()]
    assert strip == [(e.position, e.stream_id, e.version, e.type, dict(e.data), e.occurred_at)
                     for e in duck.read_all()]


def test_read_only_store_refuses(tmp_path: Path) -> None:
    path = tmp_path / "ro.duckdb"
    DuckDBEventStore(path).close()
    with DuckDBEventStore(path, read_only=True) as ro, pytest.raises(ReadOnlyStoreError):
        import_log(dataset_path("running-example"), ro)


def test_empty_log(tmp_path: Path, duck: DuckDBEventStore) -> None:
    path = tmp_path / "empty.xes"
    path.write_text("<log></log>")
    result = import_log(path, duck)
    assert (result.events, result.streams, result.first_occurred_at) == (0, 0, None)
    assert (result.first_position, result.last_position) == (0, 0)
    assert duck.head_position == 0


@pytest.mark.parametrize(("name", "fmt"), [
    ("a.xes", "xes"), ("a.XES.GZ", "xes"), ("a.csv", "csv"), ("a.csv.gz", "csv"),
    ("a.parquet", "parquet"), ("a.pq", "parquet"),
])
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(name) == fmt


def test_explicit_format_overrides_the_name(tmp_path: Path) -> None:
    path = tmp_path / "log.data"
    path.write_bytes(dataset_path("running-example").read_bytes())
    with pytest.raises(ImportFormatError, match="file name"):
        read_log(path)
    assert read_log(path, format="xes").num_rows == 42


def test_import_is_cheap_to_import() -> None:
    import subprocess
    import sys

    code = ("import sys, allframe_lab.io; "
            "print([m for m in ('pyarrow', 'pandas', 'duckdb', 'tqdm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
