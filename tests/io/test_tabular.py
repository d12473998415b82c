"""CSV and Parquet logs: round trips through pandas files, column detection, mappings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from allframe_lab.io import LogMapping, import_log, read_log
from allframe_lab.store.duckdb import DuckDBEventStore


def small_log() -> pd.DataFrame:
    return pd.DataFrame({
        "case_id": ["007", "007", "8", "007", "8"],
        "activity": ["register", "check", "register", "decide", "decide"],
        "timestamp": ["2024-01-02T10:00:00+01:00", "2024-01-02 12:00:00",
                      "2024-01-02T09:30:00Z", "2024-01-03T00:30:00+02:00",
                      "2024-01-02T12:00:00+00:00"],
        "resource": ["ann", "bob", "ann", None, "cy"],
        "amount": [50, 20, 7, 1, 3],
    })


EXPECTED = [  # (stream, type, occurred_at UTC), in time order; equal times keep row order
    ("007", "register", datetime(2024, 1, 2, 9, 0, tzinfo=UTC)),
    ("8", "register", datetime(2024, 1, 2, 9, 30, tzinfo=UTC)),
    ("007", "check", datetime(2024, 1, 2, 12, 0, tzinfo=UTC)),
    ("8", "decide", datetime(2024, 1, 2, 12, 0, tzinfo=UTC)),
    ("007", "decide", datetime(2024, 1, 2, 22, 30, tzinfo=UTC)),
]


def stored(store: DuckDBEventStore) -> list[tuple]:
    return [(r.stream_id, r.type, r.occurred_at) for r in store.read_all()]


def test_csv_round_trip(tmp_path: Path, duck: DuckDBEventStore) -> None:
    path = tmp_path / "log.csv"
    small_log().to_csv(path, index=False)
    result = import_log(path, duck)
    assert (result.format, result.events, result.streams, result.event_types) == (
        "csv", 5, 2, 3)
    assert stored(duck) == EXPECTED
    first = duck.read_stream("007")
    assert [e.version for e in first] == [1, 2, 3]
    assert first[0].data == {"resource": "ann", "amount": 50}
    assert first[2].data == {"amount": 1}  # an empty cell is an absent attribute


def test_parquet_round_trip_with_real_timestamps(tmp_path: Path,
                                                 duck: DuckDBEventStore) -> None:
    df = small_log()
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
    df["when_naive"] = df["timestamp"].dt.tz_localize(None)
    path = tmp_path / "log.parquet"
    df.to_parquet(path)
    import_log(path, duck, mapping=LogMapping(stream_prefix="case-"))
    assert stored(duck) == [(f"case-{s}", t, at) for s, t, at in EXPECTED]
    data = duck.read_stream("case-8")[0].data
    assert data["resource"] == "ann" and data["when_naive"].startswith("2024-01-02T09:30:00")


def test_parquet_naive_and_text_timestamps_are_utc(tmp_path: Path) -> None:
    df = small_log()
    naive = df.assign(timestamp=pd.to_datetime(df["timestamp"], utc=True, format="ISO8601")
                      .dt.tz_localize(None))
    naive.to_parquet(tmp_path / "naive.parquet")
    df.to_parquet(tmp_path / "text.parquet")
    for name in ("naive.parquet", "text.parquet"):
        table = read_log(tmp_path / name)
        assert table.column("occurred_at").to_pylist() == [at for _, _, at in EXPECTED]


@pytest.mark.parametrize("names", [
    ("Case ID", "Activity", "Complete Timestamp"),
    ("CaseID", "activity", "timestamp"),
    ("case:concept:name", "concept:name", "time:timestamp"),
    ("case", "Task", "Time"),
    ("Case_Number", "Activity Name", "Start Time"),  # a start time when no completion time
])
def test_column_variants_are_detected(names: tuple[str, str, str], tmp_path: Path) -> None:
    df = small_log().rename(columns=dict(zip(["case_id", "activity", "timestamp"], names)))
    path = tmp_path / "log.csv"
    df.to_csv(path, index=False, sep=";")  # the delimiter is detected too
    table = read_log(path)
    got = list(zip(*(table.column(c).to_pylist() for c in ("stream_id", "type", "occurred_at"))))
    assert got == EXPECTED


def test_explicit_mapping_and_timestamp_format(tmp_path: Path) -> None:
    path = tmp_path / "custom.csv.gz"
    pd.DataFrame({
        "ticket": ["t1", "t1"], "step": ["open", "close"],
        "at": ["02/01/2024 10:00", "03/01/2024 11:15"], "activity": ["x", "y"],
    }).to_csv(path, index=False)
    mapping = LogMapping(case="ticket", activity="step", timestamp="at",
                         timestamp_format="%d/%m/%Y %H:%M", stream_prefix="ticket-")
    table = read_log(path, mapping=mapping)
    assert table.column("stream_id").to_pylist() == ["ticket-t1", "ticket-t1"]
    assert table.column("type").to_pylist() == ["open", "close"]
    assert table.column("occurred_at").to_pylist() == [
        datetime(2024, 1, 2, 10, tzinfo=UTC), datetime(2024, 1, 3, 11, 15, tzinfo=UTC)]
    # the unmapped "activity" column is payload, not the event type
    assert json.loads(table.column("data")[0].as_py()) == {"activity": "x"}


def test_a_log_with_only_the_envelope_has_empty_payloads(tmp_path: Path) -> None:
    path = tmp_path / "bare.csv"
    path.write_text("case_id,activity,timestamp\n1,a,2024-01-01\n")
    table = read_log(path)
    assert table.to_pylist() == [{"stream_id": "1", "type": "a", "data": "{}",
                                  "occurred_at": datetime(2024, 1, 1, tzinfo=UTC)}]


def test_mapping_resolution() -> None:
    m = LogMapping().resolve(["Case ID", "Activity", "Complete Timestamp", "Resource"])
    assert m.envelope == ("Case ID", "Activity", "Complete Timestamp")
    # an explicit name wins, even over a standard one; columns are not used twice
    m = LogMapping(activity="Resource").resolve(["case_id", "activity", "timestamp",
                                                 "Resource"])
    assert m.envelope == ("case_id", "Resource", "timestamp")
    assert LogMapping().resolve(["x"]).envelope == (
        "case:concept:name", "concept:name", "time:timestamp")
