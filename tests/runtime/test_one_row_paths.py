"""The one-row fast paths: a DSL read's ``records()``/``one()``/``first()`` without a pandas
frame, and a Python projection's flush of one changed row as one UPDATE.

Both must give exactly what the general paths give: ``df().to_dict("records")`` (same values,
same Python types, NaN/None for NULLs as pandas has them) and the table a DELETE + INSERT of
the row leaves (absent columns NULL, one row per key, deletes and first inserts included).
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from allframe_lab import App, Event, Model, Projection, SequentialIds, applies
from allframe_lab.runtime.query_dsl import col
from allframe_lab.store import EventStore, NewEvent
from tests.bank import make_bank


def same(a: Any, b: Any) -> bool:
    """Equal values of the same type (NaN equals NaN, arrays by content)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b) or (a is b)


def same_records(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    return len(got) == len(want) and all(
        list(g) == list(w) and all(same(g[k], w[k]) for k in w)
        for g, w in zip(got, want, strict=True))


# the types the fast path takes (plain) and some it leaves to the frame, each with NULLs
TYPED = """
SELECT * FROM (VALUES
  (1, 'a', 10::BIGINT, 1.5::DOUBLE, 0.1::FLOAT, true, 7::INTEGER, 3::UBIGINT, 2::TINYINT,
   1.25::DECIMAL(10, 2), 5::HUGEINT, DATE '2024-01-02', [1, 2], '{"x": 1}'::JSON),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (3, 'c', -4::BIGINT, 'nan'::DOUBLE, 2.5::FLOAT, false, -1::INTEGER, 0::UBIGINT, 0::TINYINT,
   NULL, NULL, NULL, NULL, NULL)
) t(id, s, i, d, f, b, i32, u, tiny, dec, huge, day, lst, js)
"""
PLAIN = ["id", "s", "i", "d", "f", "b", "i32", "u", "tiny"]


@pytest.fixture
def typed_app(store: EventStore) -> App:
    m = Model("typed")
    m.sql_projection("typed", TYPED)
    store.append("s", [NewEvent("Noted", {})])  # a log to build the projection over
    app = App(m, store)
    app.projections.catch_up()
    return app


@pytest.mark.parametrize("columns", [(), tuple(PLAIN), ("id", "dec"), ("id", "day", "lst"),
                                     ("id", "js", "huge"), ("s", "s")])
@pytest.mark.parametrize("row", [1, 2, 3])
def test_records_equal_the_frame_records(typed_app: App, columns: tuple[str, ...],
                                         row: int) -> None:
    t = typed_app.read().table("typed").select(*columns).where(id=row)
    want = t.df().to_dict("records")
    assert len(want) == 1
    assert same_records(t.limit(5).records(), want)
    assert same_records([t.one()], want)
    assert same_records([t.first()], want)  # type: ignore[list-item]


def test_records_of_many_rows_and_no_rows(typed_app: App) -> None:
    reads = typed_app.read()
    for q in (reads.table("typed").select(*PLAIN).order_by("id"),
              reads.table("typed").select("id", "s", "b").where(col("id") >= 2).order_by("-id"),
              reads.table("typed").where(id=99)):
        want = q.df().to_dict("records")
        assert same_records(q.limit(10).records(), want)
        assert same_records(q.records(), want)  # unlimited: the frame path
    assert reads.table("typed").where(id=99).first() is None
    plain = reads.table("typed").select(*PLAIN).where(id=1).one()
    assert [type(plain[c]) for c in PLAIN] == [int, str, int, float, float, bool, int, int, int]


def test_one_on_the_events_table_and_a_projection_without_rows(store: EventStore) -> None:
    app = App(make_bank(), store, ids=SequentialIds())
    reads = app.read()
    assert reads.table("balances").where(account_id="x").first() is None
    app.dispatch("OpenAccount", {"account_id": "a1", "owner": "ann"})
    ev = app.read().table("events").where(position=1).one()
    assert same_records([ev], app.read().table("events").where(position=1).df()
                        .to_dict("records"))
    assert ev["stream_id"] == "a1" and ev["type"] == "AccountOpened"


def make_rows_model() -> Model:
    """A projection whose rows change shape: columns come and go, rows are deleted and
    their key column is rewritten."""
    m = Model("rows")

    @m.event("Set")
    class Set(Event):
        k: str
        a: int | None = None
        b: str | None = None

    @m.event("Drop")
    class Drop(Event):
        k: str

    @m.projection("kv", key="k", columns={"a": "BIGINT"})
    class KV(Projection):
        @applies("Set")
        def set(self, e: Set) -> None:
            row: dict[str, Any] = {"k": e.k}
            if e.a is not None:
                row["a"] = e.a
            if e.b is not None:
                row["b"] = e.b
            self.rows[e.k] = row

        @applies("Drop")
        def drop(self, e: Drop) -> None:
            self.rows.pop(e.k, None)

    return m


def table_rows(app: App) -> list[tuple[Any, ...]]:
    """The table's (k, a, b) rows; a column the table does not have yet reads as NULL."""
    runner = app.projections
    with runner._lock:
        have = {r[0] for r in runner.connection.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'kv'").fetchall()}
        if not have:
            return []
        cols = ", ".join(c if c in have else f"NULL AS {c}" for c in ("k", "a", "b"))
        return runner.connection.execute(f'SELECT {cols} FROM "kv" ORDER BY k').fetchall()


def test_one_row_flushes_match_the_folded_rows(store: EventStore) -> None:
    app = App(make_rows_model(), store)
    rng = random.Random(3)
    want: dict[str, tuple[Any, ...]] = {}
    for i in range(120):
        k = f"k{rng.randrange(6)}"
        r = rng.random()
        if r < 0.2:
            store.append(k, [NewEvent("Drop", {"k": k})])
            want.pop(k, None)
        else:
            a = rng.randrange(100) if rng.random() < 0.6 else None
            b = f"b{i}" if rng.random() < 0.5 else None
            store.append(k, [NewEvent("Set", {"k": k, "a": a, "b": b})])
            want[k] = (k, a, b)
        app.projections.catch_up("kv")  # one event, one touched row: the one-row flush
        assert table_rows(app) == sorted(want.values()), i
    assert app.projection("kv").checkpoint == store.head_position
    # a new runner (as after a restart: same table, or rebuilt for an in-memory store)
    fresh = App(make_rows_model(), store)
    fresh.projections.catch_up("kv")
    assert table_rows(fresh) == sorted(want.values())
    assert fresh.read().table("kv").where(k=sorted(want)[0]).one()["k"] == sorted(want)[0]


def test_a_rewritten_key_column_is_written_as_an_insert_would(store: EventStore) -> None:
    m = Model("rekey")

    @m.event("Put")
    class Put(Event):
        k: str
        label: str

    @m.projection("labels", key="k")
    class Labels(Projection):
        @applies("Put")
        def put(self, e: Put) -> None:
            # the row's key column is not the key it is stored under (a handler's bug, but
            # the table must show what the rows hold, as DELETE + INSERT wrote it)
            self.rows[e.k] = {"k": e.label, "label": e.label}

    app = App(m, store)
    store.append("s", [NewEvent("Put", {"k": "x", "label": "x"})])
    app.projections.catch_up("labels")
    store.append("s", [NewEvent("Put", {"k": "x", "label": "y"})])
    app.projections.catch_up("labels")
    with app.projections._lock:
        rows = app.projections.connection.execute(
            'SELECT k, label FROM "labels"').fetchall()
    assert rows == [("y", "y")]
