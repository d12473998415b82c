"""The Python projections' state cache: copy-on-write marks give the states a fold from zero
gives, at any position, whichever path (as-of folds or live catch-ups with flushes) took them.

The oracle folds the raw log by hand, with its own code, into plain dicts.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allframe_lab import App, Event, Model, Projection, applies
from allframe_lab.runtime._state_cache import Packed, unpack_rows
from allframe_lab.store import DuckDBEventStore, InMemoryEventStore, NewEvent

STREAMS = ["a", "b", "c", "é-ü", "z"]


def make_model() -> Model:
    m = Model("cache")

    @m.event("Opened")
    class Opened(Event):
        owner: str

    @m.event("Moved")
    class Moved(Event):
        amount: int

    @m.event("Closed")
    class Closed(Event):
        """A payload-less event."""

    @m.projection("accounts", key="id")
    class Accounts(Projection):
        @applies("Opened")
        def opened(self, e: Any, rec: Any) -> None:  # (re)opening replaces the row
            self.rows[rec.stream_id] = {"id": rec.stream_id, "owner": e.owner, "total": 0,
                                        "n": 0}

        @applies("Moved")
        def moved(self, e: Any, rec: Any) -> None:
            row = self.rows.get(rec.stream_id)
            if row is not None:  # mutated in place: marks must not see later changes
                row["total"] += e.amount
                row["n"] += 1
                if e.amount < 0:
                    row["avg"] = row["total"] / row["n"]  # a column some rows lack

        @applies("Closed")
        def closed(self, e: Any, rec: Any) -> None:
            self.rows.pop(rec.stream_id, None)  # deleted; reopening puts it last

    return m


def oracle(events: list[tuple[str, str, dict[str, Any]]], position: int
           ) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for sid, typ, data in events[:position]:
        if typ == "Opened":  # replaces the row in place (a closed one comes back last)
            rows[sid] = {"id": sid, "owner": data["owner"], "total": 0, "n": 0}
        elif typ == "Moved" and sid in rows:
            r = rows[sid]
            r["total"] += data["amount"]
            r["n"] += 1
            if data["amount"] < 0:
                r["avg"] = r["total"] / r["n"]
        elif typ == "Closed":
            rows.pop(sid, None)
    return rows


def oracle_frame(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame(columns=["id"])
    df = pd.DataFrame.from_records(list(rows.values()))
    return df.sort_values("id", kind="stable").reset_index(drop=True)


event_st = st.tuples(
    st.sampled_from(STREAMS),
    st.sampled_from(["Opened", "Moved", "Moved", "Moved", "Closed"]),
    st.integers(-50, 100),
)


def append(store: Any, spec: list[tuple[str, str, int]]) -> list[tuple[str, str, dict[str, Any]]]:
    events = []
    for sid, typ, amount in spec:
        data: dict[str, Any] = {"Opened": {"owner": f"o-{amount}"}, "Moved": {"amount": amount},
                                "Closed": {}}[typ]
        store.append(sid, [NewEvent(typ, data)])
        events.append((sid, typ, data))
    return events


def check_state(app: App, events: list[Any], p: int) -> None:
    state = app.projections.python_state("accounts", p)
    assert state == oracle(events, p)
    assert list(state) == list(oracle(events, p))  # same row order as a fold from zero
    pd.testing.assert_frame_equal(app.projection("accounts").as_of(position=p),
                                  oracle_frame(oracle(events, p)), check_exact=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.lists(event_st, min_size=1, max_size=60), seed=st.integers(0, 2**16),
       interval=st.integers(1, 7))
def test_asof_folds_from_shared_marks_equal_a_fold_from_zero(
    spec: list[tuple[str, str, int]], seed: int, interval: int
) -> None:
    store = InMemoryEventStore()
    events = append(store, spec)
    app = App(make_model(), store)
    app.projections._interval = lambda: interval  # type: ignore[method-assign]
    rng = random.Random(seed)
    for p in [rng.randint(0, len(events)) for _ in range(12)] + [len(events)]:
        check_state(app, events, p)
    cache = app.projections._caches["accounts"]
    # every cached state (marks and recent positions) is still the exact state at its
    # position: later folds copied the rows they reached instead of mutating shared ones
    for p, state in cache.states.items():
        assert unpack_rows(state) == oracle(events, p)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.lists(event_st, min_size=2, max_size=60), cut=st.integers(1, 12),
       flush_every=st.integers(1, 20), interval=st.integers(1, 6), seed=st.integers(0, 99))
def test_marks_taken_by_live_catch_ups_with_flushes_between_them(
    spec: list[tuple[str, str, int]], cut: int, flush_every: int, interval: int, seed: int
) -> None:
    """The live path: flushes take the touched keys between two marks; the next mark must
    still copy those rows."""
    store = InMemoryEventStore()
    app = App(make_model(), store)
    app.projections.flush_every = flush_every
    app.projections._interval = lambda: interval  # type: ignore[method-assign]
    events: list[Any] = []
    for i in range(0, len(spec), cut):  # catch up after every few appends
        events += append(store, spec[i:i + cut])
        app.projections.catch_up("accounts")
        # the table: marks take touched keys from the row set, flushes must still write them
        table = app.projection("accounts").df(refresh=False)
        assert {r["id"]: (r["owner"], r["total"], r["n"]) for r in table.to_dict("records")
                } == {k: (r["owner"], r["total"], r["n"])
                      for k, r in oracle(events, len(events)).items()}
    cache = app.projections._caches["accounts"]
    for p in sorted(cache.marks):
        assert unpack_rows(cache.states[p]) == oracle(events, p)
    rng = random.Random(seed)
    for p in [rng.randint(0, len(events)) for _ in range(6)]:
        check_state(app, events, p)


def test_marks_share_the_rows_nothing_touched(tmp_path: Any) -> None:
    store = DuckDBEventStore(tmp_path / "cache.duckdb")
    events = append(store, [(s, "Opened", 1) for s in STREAMS]
                    + [("a", "Moved", 5)] * 10 + [("b", "Moved", 3)] * 10)
    app = App(make_model(), store)
    app.projections._interval = lambda: 5  # type: ignore[method-assign]
    check_state(app, events, len(events))
    cache = app.projections._caches["accounts"]
    marks = sorted(cache.marks)
    assert marks == [5, 10, 15, 20]
    at10, at15 = cache.states[10], cache.states[15]
    assert at15["c"] is at10["c"]  # untouched between 10 and 15: shared
    assert at15["a"] is not at10["a"]
    assert at15["a"].unpack()["total"] != at10["a"].unpack()["total"]
    assert all(type(r) is Packed for r in at15.values())  # cached rows are stored packed
    # 5 rows at the first mark, then only the one account moved in each interval
    assert cache.rows_copied == 5 + 1 + 1 + 1
    store.close()


def test_the_byte_budget_drops_the_densest_marks_and_keeps_results(tmp_path: Any) -> None:
    store = InMemoryEventStore()
    events = append(store, [(s, "Opened", 1) for s in STREAMS]
                    + [(STREAMS[i % 5], "Moved", i) for i in range(60)])
    app = App(make_model(), store)
    app.projections._interval = lambda: 2  # type: ignore[method-assign]
    app.projections.python_state("accounts", 1)
    cache = app.projections._caches["accounts"]
    cache.max_bytes = 3_000  # a few marks' worth
    check_state(app, events, len(events))
    assert 2 <= len(cache.marks) < len(events) // 2
    assert cache.mark_bytes <= 3_000 or len(cache.marks) == 2
    for p in range(len(events) + 1):
        check_state(app, events, p)


@pytest.mark.parametrize("keys", [
    ["b", "a", "é", "Z", "aa", "ß", "日本", ""],  # str: code point order
    [3, -1, 10**20, 0, 7],                      # int (one beyond int64)
    [2.5, 1.0, float("nan"), 0.5],              # float with NaN: pandas sorts
    ["b", None, "a"],                           # None: pandas sorts
    [1, "a", 2],                                # mixed: pandas sorts (object)
])
def test_as_of_frames_sort_like_pandas(keys: list[Any]) -> None:
    from allframe_lab.runtime._frames import rows_frame as _rows_frame

    rows = [{"k": k, "v": i} for i, k in enumerate(keys)]
    try:
        expected = pd.DataFrame.from_records(rows).sort_values("k", kind="stable")
    except TypeError:  # pandas cannot sort mixed int/str either: the runner must not hide it
        with pytest.raises(TypeError):
            _rows_frame(rows, "k", None)
        return
    pd.testing.assert_frame_equal(_rows_frame(rows, "k", None),
                                  expected.reset_index(drop=True), check_exact=True)


@pytest.mark.parametrize("values", [
    [1, None, 3],                                   # int with None: float with NaN
    [True, None, False],                            # bool with None: object
    [1.5, float("nan"), None],
    ["x", None, "z"],
    [[1, 2], [], None],                             # lists stay lists
    [{"a": 1}, None, {"b": 2}],
    [datetime(2024, 1, 1, tzinfo=UTC), None, datetime(2024, 1, 2, tzinfo=UTC)],
    [Decimal("1.10"), Decimal("2"), None],
    [10**20, 1, 2],                                 # beyond int64: object
])
def test_frames_of_packed_rows_equal_frames_of_row_dicts(values: list[Any]) -> None:
    """The packed fast path builds the same frame (values, dtypes, order) as records."""
    from allframe_lab.runtime._frames import rows_frame as _rows_frame
    from allframe_lab.runtime._frames import state_frame as _state_frame
    from allframe_lab.runtime._state_cache import StateCache

    cache = StateCache(object)
    for keys in (["b", "c", "a"], [3, 1, 2]):
        rows = [{"k": k, "v": v, "n": i} for i, (k, v) in enumerate(zip(keys, values))]
        packed = [cache.pack(r) for r in rows]
        assert all(type(p) is Packed for p in packed)
        expected = _rows_frame(rows, "k", None)
        memo: list[Any] = [None, None]
        for _ in range(2):  # the second time with the remembered order
            pd.testing.assert_frame_equal(_state_frame(packed, "k", None, memo), expected,
                                          check_exact=True)
        # mixed packed and dict rows, or different columns: the records path, same frame
        pd.testing.assert_frame_equal(_state_frame([packed[0], *rows[1:]], "k", None),
                                      expected, check_exact=True)


def test_packed_rows_unpack_to_equal_dicts_and_python_state_returns_dicts() -> None:
    store = InMemoryEventStore()
    events = append(store, [(s, "Opened", 1) for s in STREAMS]
                    + [(STREAMS[i % 5], "Moved", i) for i in range(40)])
    app = App(make_model(), store)
    app.projections._interval = lambda: 4  # type: ignore[method-assign]
    for p in (len(events), 17, 16, 16):
        state = app.projections.python_state("accounts", p)
        assert all(type(r) is dict for r in state.values())
        assert state == oracle(events, p)
    cache = app.projections._caches["accounts"]
    assert any(type(r) is Packed for s in cache.states.values() for r in s.values())
    # a fold from a packed mark unpacks the rows it touches, never the cached ones
    app.projection("accounts").as_of(position=18)
    assert unpack_rows(cache.states[16]) == oracle(events, 16)


def test_a_fold_skips_marks_the_byte_budget_would_drop() -> None:
    store = InMemoryEventStore()
    events = append(store, [(s, "Opened", 1) for s in STREAMS]
                    + [(STREAMS[i % 5], "Moved", i) for i in range(95)])
    app = App(make_model(), store)
    app.projections._interval = lambda: 2  # type: ignore[method-assign]
    app.projections.python_state("accounts", 1)
    cache = app.projections._caches["accounts"]
    cache.max_bytes = 4_000
    check_state(app, events, len(events))
    assert cache.dropped
    for p in range(len(events) + 1):  # folds that skip marks still give exact states
        check_state(app, events, p)


def test_wants_mark_only_where_the_budget_would_keep_it() -> None:
    from allframe_lab.runtime._state_cache import StateCache

    cache = StateCache(object)
    for p in (0, 10, 20, 30, 100):
        cache.put_mark(p, {}, None, None)
    assert cache.wants_mark(15)  # the budget never dropped a mark: every mark is wanted
    cache.dropped = True
    # the narrowest span a drop would leave is 20 (0..20, 10..30)
    assert not cache.wants_mark(15)  # splits a 10-wide gap: the budget would drop it
    assert cache.wants_mark(50)      # splits the 70-wide gap
    assert cache.wants_mark(150)     # beyond the last mark
