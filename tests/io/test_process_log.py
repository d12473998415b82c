"""The process-log model on the running example, checked against an independent parse;
and its speed on BPIC 2012."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from io_truth import TruthEvent

from allframe_lab import App, GenericEvent
from allframe_lab.io import dataset_path, import_log, process_log_model
from allframe_lab.store.duckdb import DuckDBEventStore

CUT = datetime(2011, 1, 6, 12, 0, tzinfo=UTC)  # the middle of the running example


def expected_case_status(events: list[TruthEvent]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for position, e in enumerate(events, start=1):
        row = out.setdefault(e.case, {"first_activity": e.activity, "started_at": e.at,
                                      "events": 0})
        row.update(activity=e.activity, resource=e.resource, updated_at=e.at,
                   last_position=position, duration=e.at - row["started_at"])
        row["events"] += 1
    return out


def frame_rows(df, key: str) -> dict[str, dict]:
    rows = {}
    for rec in df.to_dict("records"):
        k = rec.pop(key)
        for col, v in rec.items():
            if hasattr(v, "to_pydatetime"):
                rec[col] = v.to_pydatetime()
            elif hasattr(v, "to_pytimedelta"):
                rec[col] = v.to_pytimedelta()
            elif hasattr(v, "item"):
                rec[col] = v.item()
        rows[k] = rec
    return rows


@pytest.fixture
def app(tmp_path: Path) -> App:
    store = DuckDBEventStore(tmp_path / "running.duckdb")
    import_log(dataset_path("running-example"), store)
    app = App(process_log_model(), store)
    yield app
    app.close()


def test_model_declarations() -> None:
    model = process_log_model()
    assert model.fallback_event is GenericEvent
    assert set(model.projections) == {"case_status", "activity_counts", "open_cases_over_time"}
    assert set(model.aggregates) == {"Case"}
    assert process_log_model() is not model  # a new model each call


def test_case_status(app: App, truth: list[TruthEvent]) -> None:
    assert app.projection("case_status").rebuild() == 42
    got = frame_rows(app.projection("case_status").df(), "case_id")
    assert got == expected_case_status(truth)


def test_activity_counts(app: App, truth: list[TruthEvent]) -> None:
    df = app.projection("activity_counts").df()
    counts = Counter(e.activity for e in truth)
    cases = {a: len({e.case for e in truth if e.activity == a}) for a in counts}
    expected = sorted(counts, key=lambda a: (-counts[a], a))
    assert df["activity"].tolist() == expected
    assert dict(zip(df["activity"], df["events"].tolist())) == dict(counts)
    assert dict(zip(df["activity"], df["cases"].tolist())) == cases


def expected_open_cases(events: list[TruthEvent]) -> list[tuple[date, int, int, int]]:
    starts: dict[str, date] = {}
    ends: dict[str, date] = {}
    for e in events:
        starts.setdefault(e.case, e.at.date())
        ends[e.case] = e.at.date()
    day, last = min(starts.values()), max(ends.values())
    out, open_ = [], 0
    while day <= last:
        s = sum(1 for d in starts.values() if d == day)
        f = sum(1 for d in ends.values() if d == day)
        open_ += s - f
        out.append((day, s, f, open_))
        day += timedelta(days=1)
    return out


def test_open_cases_over_time(app: App, truth: list[TruthEvent]) -> None:
    df = app.projection("open_cases_over_time").df()
    got = [(d.date(), s, f, o) for d, s, f, o in
           zip(df["day"], df["started"], df["finished"], df["open_cases"])]
    assert got == expected_open_cases(truth)
    assert got[-1][3] == 0 and sum(r[1] for r in got) == 6


def test_as_of_a_timestamp_is_the_earlier_state(app: App, truth: list[TruthEvent]) -> None:
    prefix = [e for e in truth if e.at <= CUT]
    assert 0 < len(prefix) < len(truth)
    status = app.projection("case_status")
    status.rebuild()
    past = frame_rows(status.as_of(timestamp=CUT), "case_id")
    assert past == expected_case_status(prefix)
    assert frame_rows(status.as_of(timestamp=CUT.isoformat()), "case_id") == past
    assert frame_rows(status.as_of(position=len(prefix)), "case_id") == past
    # the stored table is untouched by time travel
    assert frame_rows(status.df(refresh=False), "case_id") == expected_case_status(truth)
    counts = app.projection("activity_counts").as_of(timestamp=CUT)
    assert int(counts["events"].sum()) == len(prefix)
    days = app.projection("open_cases_over_time").as_of(timestamp=CUT)
    assert [(d.date(), s, f, o) for d, s, f, o in zip(
        days["day"], days["started"], days["finished"], days["open_cases"])
    ] == expected_open_cases(prefix)


def test_case_aggregate(app: App, truth: list[TruthEvent]) -> None:
    expected = expected_case_status(truth)
    for case, row in expected.items():
        agg = app.load("Case", case)
        assert (agg.activity, agg.events, agg.started_at, agg.updated_at, agg.resource) == (
            row["activity"], row["events"], row["started_at"], row["updated_at"],
            row["resource"])
        assert agg.version == row["events"]
    before = expected_case_status([e for e in truth if e.at <= CUT])
    for case, row in before.items():
        agg = app.load("Case", case, as_of=CUT)
        assert (agg.activity, agg.events) == (row["activity"], row["events"])


@pytest.mark.slow
def test_bpic2012_projections_are_fast(tmp_path: Path) -> None:
    path = tmp_path / "bpic2012.duckdb"
    with DuckDBEventStore(path) as store:
        import_log(dataset_path("bpic2012"), store, progress=False)
        app = App(process_log_model(), store)
        timings = {}
        for name in app.projections:
            t0 = time.perf_counter()
            assert app.projection(name).rebuild() == 262_200
            timings[name] = time.perf_counter() - t0
        assert max(timings.values()) < 1.0, timings
        status = app.projection("case_status").df(refresh=False)
        assert len(status) == 13_087 and int(status["events"].sum()) == 262_200
        counts = app.projection("activity_counts").df(refresh=False)
        assert len(counts) == 24 and int(counts["events"].sum()) == 262_200
        days = app.projection("open_cases_over_time").df(refresh=False)
        assert int(days["started"].sum()) == int(days["finished"].sum()) == 13_087
        assert int(days["open_cases"].min()) >= 0
        stats = store.stats()
        mid = stats.first_occurred_at + (stats.last_occurred_at - stats.first_occurred_at) / 2
        t0 = time.perf_counter()
        past = app.projection("case_status").as_of(timestamp=mid)
        assert time.perf_counter() - t0 < 1.0
        assert 0 < len(past) < 13_087
        assert past["updated_at"].max() <= mid
    # time travel works read-only on the file, too
    with DuckDBEventStore(path, read_only=True) as ro:
        again = App(process_log_model(), ro).projection("case_status").as_of(timestamp=mid)
        assert len(again) == len(past)
