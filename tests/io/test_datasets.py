"""The shipped logs import with exactly the published counts, in time order, gapless."""

from __future__ import annotations

from pathlib import Path

import pytest

from allframe_lab.io import DATASETS, dataset_path, import_log
from allframe_lab.store.duckdb import DuckDBEventStore


def test_dataset_paths_exist_and_unknown_names_are_listed() -> None:
    assert set(DATASETS) == {"helpdesk", "bpic2012", "running-example"}
    for name, ds in DATASETS.items():
        path = dataset_path(name)
        assert path.is_file() and path.name == ds.filename
    with pytest.raises(KeyError, match="bpic2012, helpdesk, running-example"):
        dataset_path("nope")


def test_dataset_readme_cites_every_source() -> None:
    readme = (dataset_path("helpdesk").parent / "README.md").read_text()
    for doi in ("10.17632/39bp3vv62t.1", "10.4121/uuid:3926db30-f712-4394-aebc-75976070e91f"):
        assert doi in readme
    assert "CC BY 4.0" in readme and "van der Aalst" in readme


def check_store(store: DuckDBEventStore, name: str) -> None:
    ds = DATASETS[name]
    con = store.connection
    events, streams, types = con.execute(
        "SELECT count(*), count(DISTINCT stream_id), count(DISTINCT type) FROM events"
    ).fetchone()
    assert (streams, events, types) == (ds.traces, ds.events, ds.activities)
    assert store.head_position == ds.events
    # positions are 1..n, strictly increasing, and appended in time order
    bad_order, lo, hi, distinct = con.execute("""
        SELECT count(*) FILTER (WHERE prev_at > occurred_at OR prev_pos >= position),
               min(position), max(position), count(DISTINCT position)
        FROM (SELECT position, occurred_at,
                     lag(occurred_at) OVER (ORDER BY position) AS prev_at,
                     lag(position) OVER (ORDER BY position) AS prev_pos FROM events)
    """).fetchone()
    assert (bad_order, lo, hi, distinct) == (0, 1, ds.events, ds.events)
    # stream versions are gapless (1..n) and follow positions
    gaps = con.execute("""
        SELECT count(*) FROM (
            SELECT stream_id, min(version) AS lo, max(version) AS hi, count(*) AS n,
                   count(DISTINCT version) AS d FROM events GROUP BY stream_id)
        WHERE lo <> 1 OR hi <> n OR d <> n
    """).fetchone()[0]
    assert gaps == 0
    disorder = con.execute("""
        SELECT count(*) FROM (
            SELECT version, row_number() OVER (PARTITION BY stream_id ORDER BY position) AS rn
            FROM events) WHERE version <> rn
    """).fetchone()[0]
    assert disorder == 0


@pytest.mark.parametrize("name", [
    "running-example",
    "helpdesk",
    pytest.param("bpic2012", marks=pytest.mark.slow),
])
def test_shipped_log_imports_with_published_counts(name: str, tmp_path: Path) -> None:
    with DuckDBEventStore(tmp_path / f"{name}.duckdb") as store:
        result = import_log(dataset_path(name), store, progress=False)
        ds = DATASETS[name]
        assert (result.streams, result.events, result.event_types) == (
            ds.traces, ds.events, ds.activities)
        assert (result.first_position, result.last_position) == (1, ds.events)
        check_store(store, name)
    # the file holds everything after closing
    with DuckDBEventStore(tmp_path / f"{name}.duckdb", read_only=True) as again:
        assert again.head_position == DATASETS[name].events
