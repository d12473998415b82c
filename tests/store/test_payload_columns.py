"""Payload columns of the DuckDB store: filled by every write path, added and backfilled at
open, remembered, validated; SQL projections over them match their JSON versions."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from allframe_lab.errors import ReadOnlyStoreError, StoreConfigError, StoreError
from allframe_lab.store import ANY, NewEvent
from allframe_lab.store.duckdb import DuckDBEventStore

pytestmark = pytest.mark.duckdb

AMOUNT = {"amount": "BIGINT"}

#: payloads and the ``amount`` each must give: absent, JSON null and uncastable are NULL
PAYLOADS: list[tuple[dict[str, Any], int | None]] = [
    ({"amount": 5}, 5),
    ({"owner": "ann"}, None),
    ({"amount": "abc"}, None),
    ({"amount": None}, None),
    ({"amount": "42"}, 42),
    ({"amount": -7, "ref": "x" * 50}, -7),
]


def payload_events(n: int) -> tuple[list[NewEvent], list[int | None]]:
    """n events cycling through PAYLOADS, and the amounts expected for them."""
    picked = [PAYLOADS[i % len(PAYLOADS)] for i in range(n)]
    return [NewEvent("E", dict(p)) for p, _ in picked], [a for _, a in picked]


def amounts(store: DuckDBEventStore, column: str = "amount") -> list[Any]:
    return [r[0] for r in store.connection.execute(
        f"SELECT {column} FROM events ORDER BY position").fetchall()]


def file_amounts(path: Path) -> list[Any]:
    """The column as another connection sees it (no flush through the store)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT amount FROM events ORDER BY position")
                .fetchall()]
    finally:
        con.close()


# ------------------------------------------------------------------ every write path
@pytest.mark.parametrize("n", [6, 150])  # VALUES statements / one Arrow INSERT
@pytest.mark.parametrize("journal", [True, False])
def test_appends_fill_the_columns(tmp_path: Path, n: int, journal: bool) -> None:
    path = tmp_path / "p.duckdb"
    store = DuckDBEventStore(path, payload_columns=AMOUNT, journal=journal, flush_every=10_000)
    evs, expected = payload_events(n)
    store.append_many([(f"s{i % 4}", [e], ANY) for i, e in enumerate(evs)]
                      if n < 10 else [("s", evs, ANY)])
    assert store.pending_count == (n if journal else 0)
    assert amounts(store) == expected  # the flush filled them
    store.close()
    assert file_amounts(path) == expected


def test_transactions_and_state_writes_fill_the_columns(tmp_path: Path) -> None:
    store = DuckDBEventStore(tmp_path / "p.duckdb", payload_columns=AMOUNT)
    store.append("a", [NewEvent("E", {"amount": 1})])  # journaled, inserted by the transaction
    with store.transaction():
        store.append("a", [NewEvent("E", {"amount": 2})])
    store.append_many([("b", [NewEvent("E", {"amount": 3})], ANY)], state={("ns", "k"): 1})
    assert amounts(store) == [1, 2, 3]
    store.close()


def test_append_arrow_fills_the_columns(tmp_path: Path) -> None:
    import pyarrow as pa

    store = DuckDBEventStore(tmp_path / "p.duckdb", payload_columns={"amount": "BIGINT",
                                                                      "ref": "VARCHAR"})
    store.append("s", [NewEvent("E", {"amount": 1, "ref": "first"})])
    evs, expected = payload_events(12)
    table = pa.table({
        "stream_id": [f"s{i % 3}" for i in range(12)],
        "type": ["E"] * 12,
        "data": [json.dumps(e.data) for e in evs],
        "occurred_at": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 12,
                                pa.timestamp("us", tz="UTC")),
    })
    assert store.append_arrow(table) == 12
    assert amounts(store) == [1, *expected]
    assert amounts(store, "ref")[:2] == ["first", None]
    assert amounts(store, "ref")[6] == "x" * 50
    store.close()


def test_the_replay_of_an_unflushed_journal_fills_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    code = textwrap.dedent(f"""
        import os
        from allframe_lab.store import NewEvent
        from allframe_lab.store.duckdb import DuckDBEventStore
        s = DuckDBEventStore({str(path)!r}, payload_columns={{"amount": "BIGINT"}},
                             flush_every=4)
        for i in range(10):
            s.append(f"s{{i % 3}}", [NewEvent("E", {{"amount": i}})])
        os._exit(0)   # no close, no flush: 2 events are only in the journal
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert file_amounts(path) == list(range(8))
    # a reader replays the journal into its private copy, filling the column
    ro = DuckDBEventStore(path, read_only=True)
    assert ro.is_snapshot_copy and ro.payload_columns == AMOUNT
    assert amounts(ro) == list(range(10))
    ro.close()
    # the next writer (opened without the option: it is remembered) replays it too
    store = DuckDBEventStore(path, journal=False)
    assert store.payload_columns == AMOUNT
    assert amounts(store) == list(range(10))
    store.close()


WRITER = textwrap.dedent("""
    import sys
    from allframe_lab.store import NewEvent
    from allframe_lab.store.duckdb import DuckDBEventStore
    s = DuckDBEventStore(sys.argv[1], payload_columns={"amount": "BIGINT"}, flush_every=4)
    for i in range(10):
        s.append("s", [NewEvent("E", {"amount": i})])
    print("ready", flush=True)
    sys.stdin.readline()   # hold the file until told to stop
    s.close()
""")


def test_a_read_only_copy_beside_a_writer_has_the_columns_filled(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n", \
            proc.stderr.read() if proc.stderr else ""
        ro = DuckDBEventStore(path, read_only=True)
        assert ro.is_snapshot_copy  # the writer holds the file; 2 events only journaled
        assert amounts(ro) == list(range(10))
        with pytest.raises(ReadOnlyStoreError):
            ro.drop_payload_columns("amount")
        ro.close()
    finally:
        proc.communicate("stop\n", timeout=60)
    assert proc.returncode == 0


# ------------------------------------------------------------------ opening
def test_a_new_column_is_added_and_backfilled_at_open_then_remembered(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    store = DuckDBEventStore(path)
    evs, expected = payload_events(100)
    store.append("s", evs)
    assert store.payload_columns == {}
    store.close()
    store = DuckDBEventStore(path, payload_columns={"amount": "int8"})  # an alias of BIGINT
    assert store.payload_columns == AMOUNT
    assert amounts(store) == expected
    store.close()
    store = DuckDBEventStore(path)  # no option: still filled
    assert store.payload_columns == AMOUNT
    store.append("s", [NewEvent("E", {"amount": 9})])
    store.close()
    assert file_amounts(path)[-1] == 9
    # a second column adds to the first; a differently cased name is the same column
    store = DuckDBEventStore(path, payload_columns={"AMOUNT": "BIGINT", "owner": "VARCHAR"})
    assert store.payload_columns == {"amount": "BIGINT", "owner": "VARCHAR"}
    assert amounts(store, "owner")[1] == "ann"
    store.close()


def test_another_type_for_an_existing_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    store = DuckDBEventStore(path, payload_columns=AMOUNT)
    store.append("s", [NewEvent("E", {"amount": 1.5})])
    store.close()
    with pytest.raises(StoreConfigError, match=r"'amount' is BIGINT in this store, not DOUBLE.*"
                                         r"drop_payload_columns"):
        DuckDBEventStore(path, payload_columns={"amount": "DOUBLE"})
    # the failed open released the file; dropping then re-adding changes the type
    store = DuckDBEventStore(path)
    assert amounts(store) == [2]  # DuckDB's cast rounds 1.5 to a BIGINT
    store.drop_payload_columns("amount")
    assert store.payload_columns == {}
    with pytest.raises(StoreError, match="no payload column 'amount'"):
        store.drop_payload_columns("amount")
    store.close()
    store = DuckDBEventStore(path, payload_columns={"amount": "DOUBLE"})
    assert amounts(store) == [1.5]
    store.close()


def test_a_read_only_store_cannot_add_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.duckdb"
    store = DuckDBEventStore(path, payload_columns=AMOUNT)
    store.append("s", [NewEvent("E", {"amount": 1})])
    store.close()
    ro = DuckDBEventStore(path, read_only=True, payload_columns=AMOUNT)  # it has it: fine
    assert ro.payload_columns == AMOUNT and amounts(ro) == [1]
    ro.close()
    with pytest.raises(StoreError, match=r"no payload column 'owner'.*open it once for writing"):
        DuckDBEventStore(path, read_only=True, payload_columns={"owner": "VARCHAR"})


@pytest.mark.parametrize(("columns", "problem"), [
    ({"data": "VARCHAR"}, "column of the events table itself"),
    ({"Position": "BIGINT"}, "column of the events table itself"),
    ({"1st": "BIGINT"}, "not a SQL identifier"),
    ({"a b": "BIGINT"}, "not a SQL identifier"),
    ({'x"; DROP TABLE events; --': "BIGINT"}, "not a SQL identifier"),
    ({"amount": "JSON"}, "has type 'JSON'; use one of BOOLEAN"),
    ({"amount": "BIGINT; DROP TABLE events"}, "has type"),
    ({"amount": "DECIMAL(40,2)"}, "has type"),
    ({"amount": 5}, "has type 5"),
    ({"amount": "BIGINT", "AMOUNT": "BIGINT"}, "given twice"),
    (["amount"], "must map column names to DuckDB types"),
])
def test_bad_names_and_types_are_refused(tmp_path: Path, columns: Any, problem: str) -> None:
    with pytest.raises(StoreConfigError, match="payload_columns") as err:
        DuckDBEventStore(tmp_path / "p.duckdb", payload_columns=columns)
    assert problem in str(err.value)
    assert DuckDBEventStore(tmp_path / "p.duckdb").payload_columns == {}  # nothing changed


def test_every_bad_column_is_reported_at_once() -> None:
    with pytest.raises(ValueError) as err:  # StoreConfigError is a ValueError
        DuckDBEventStore(":memory:", payload_columns={"type": "VARCHAR", "n": "BLOB",
                                                      "ok": "BIGINT"})
    assert "'type'" in str(err.value) and "'n'" in str(err.value)


@pytest.mark.parametrize(("spelled", "value", "expected"), [
    ("INTEGER", 7, 7),
    ("DOUBLE", 2.5, 2.5),
    ("DECIMAL(10,2)", "12.345", Decimal("12.35")),
    ("BOOLEAN", True, True),
    ("VARCHAR", {"nested": 1}, '{"nested":1}'),
    ("DATE", "2024-02-29", date(2024, 2, 29)),
    ("TIMESTAMPTZ", "2024-02-29T12:00:00+01:00",
     int(datetime(2024, 2, 29, 11, tzinfo=UTC).timestamp() * 1e6)),
    ("TIMESTAMPTZ", "not a time", None),
])
def test_types_convert_with_try_cast(spelled: str, value: Any, expected: Any) -> None:
    store = DuckDBEventStore(":memory:", payload_columns={"v": spelled})
    store.append("s", [NewEvent("E", {"v": value})])
    got = amounts(store, "epoch_us(v)" if spelled == "TIMESTAMPTZ" else "v")[0]
    assert got == expected
    store.close()


# ------------------------------------------------------------------ SQL projections
def test_a_sql_projection_over_the_column_matches_its_json_version(tmp_path: Path) -> None:
    import pandas as pd

    from allframe_lab import App, Model

    m = Model("bank")
    m.sql_projection("json", "SELECT stream_id, count(*) AS n, sum(coalesce(TRY_CAST("
                     "data->>'amount' AS BIGINT), 0)) AS balance FROM events GROUP BY stream_id")
    m.sql_projection("typed", "SELECT stream_id, count(*) AS n, sum(coalesce(amount, 0)) "
                     "AS balance FROM events GROUP BY stream_id")
    path = tmp_path / "p.duckdb"
    store = DuckDBEventStore(path)
    evs, _ = payload_events(300)
    for i in range(0, 300, 30):
        store.append(f"acc-{i % 7}", evs[i:i + 30])
    store.close()
    app = App(m, DuckDBEventStore(path, payload_columns=AMOUNT))

    def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
        key = ["stream_id"]
        pd.testing.assert_frame_equal(a.sort_values(key).reset_index(drop=True),
                                      b.sort_values(key).reset_index(drop=True))

    app.store.append("acc-new", [NewEvent("E", {"amount": 1000})])  # after the backfill
    for position in (1, 37, 150, 301):
        typed = app.projection("typed").as_of(position=position)
        assert typed["n"].sum() == position
        same(app.projection("json").as_of(position=position), typed)
    app.projection("json").rebuild()
    app.projection("typed").rebuild()
    same(app.projection("json").df(), app.projection("typed").df())
    assert app.projection("typed").df()["balance"].sum() == sum(
        a or 0 for a in amounts(app.store))
    app.close()


def test_the_in_memory_store_shows_the_same_columns_to_sql(tmp_path: Path) -> None:
    """A model's SQL over payload columns runs unchanged on the in-memory test double."""
    import pandas as pd

    from allframe_lab import App, Model
    from allframe_lab.store import InMemoryEventStore

    m = Model("bank")
    m.sql_projection("typed", "SELECT stream_id, count(*) AS n, sum(coalesce(amount, 0)) "
                     "AS balance FROM events GROUP BY stream_id ORDER BY stream_id")
    evs, _ = payload_events(90)
    frames = []
    for store in (InMemoryEventStore(payload_columns=AMOUNT),
                  DuckDBEventStore(tmp_path / "p.duckdb", payload_columns=AMOUNT)):
        assert store.payload_columns == AMOUNT
        for i in range(0, 90, 9):
            store.append(f"acc-{i % 4}", evs[i:i + 9])
        with App(m, store) as app:
            frames.append((app.projection("typed").as_of(position=40),
                           app.projection("typed").df()))
            store.append("acc-late", [NewEvent("E", {"amount": 7})])  # the mirror refreshes
            frames[-1] += (app.projection("typed").df(),)
            log = app.projections.events_relation  # `events` in SQL projections
            rows = app.read().sql(f"SELECT amount FROM {log} ORDER BY position LIMIT 6")
            assert [None if pd.isna(a) else a for a in rows["amount"]] == [5, None, None,
                                                                           None, 42, -7]
    for memory, duck in zip(*frames, strict=True):
        assert memory.to_dict("records") == duck.to_dict("records")
    assert frames[0][2]["n"].sum() == 91


def test_the_in_memory_store_checks_the_option_too() -> None:
    from allframe_lab.store import InMemoryEventStore

    with pytest.raises(StoreConfigError, match="column of the events table itself"):
        InMemoryEventStore(payload_columns={"data": "VARCHAR"})
    assert InMemoryEventStore().payload_columns == {}
