"""Property tests (hypothesis): any sequence of appends keeps the store's invariants."""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from allframe_lab.errors import ConcurrencyError
from allframe_lab.store import ANY, NO_STREAM, STREAM_EXISTS, InMemoryEventStore, NewEvent
from allframe_lab.store.duckdb import DuckDBEventStore

streams = st.sampled_from(["a", "b", "c", "d"])
expected = st.one_of(st.just(ANY), st.just(NO_STREAM), st.just(STREAM_EXISTS),
                     st.integers(min_value=0, max_value=6))
appends = st.lists(
    st.tuples(streams, st.integers(min_value=0, max_value=4), expected), max_size=25
)


def reference_ok(exp, actual: int) -> bool:
    if exp is ANY:
        return True
    if exp is NO_STREAM:
        return actual == 0
    if exp is STREAM_EXISTS:
        return actual > 0
    return exp == actual


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=appends)
def test_any_sequence_of_appends_keeps_invariants(ops) -> None:
    with tempfile.TemporaryDirectory() as d:
        # the journaled store flushes every 3 events, so flushes fall between and inside appends
        stores = [InMemoryEventStore(), DuckDBEventStore(Path(d) / "p.duckdb", flush_every=3),
                  DuckDBEventStore(Path(d) / "direct.duckdb", journal=False)]
        versions: dict[str, int] = {}
        log: list[tuple[str, int, int]] = []
        for sid, n, exp in ops:
            events = [NewEvent("E", {"k": len(log) + i}) for i in range(n)]
            ok = reference_ok(exp, versions.get(sid, 0))
            for s in stores:
                try:
                    s.append(sid, events, expected_version=exp)
                    assert ok
                except ConcurrencyError as err:
                    assert not ok and err.actual == versions.get(sid, 0)
            if ok:
                for _ in range(n):
                    versions[sid] = versions.get(sid, 0) + 1
                    log.append((sid, versions[sid], len(log)))
        for s in stores:
            got = [(r.stream_id, r.version, r.data["k"], r.position) for r in s.read_all()]
            assert [(a, b, c) for a, b, c, _ in got] == log
            assert [p for *_, p in got] == list(range(1, len(log) + 1))
            for sid, v in versions.items():
                assert s.stream_version(sid) == v
                assert [r.version for r in s.read_stream(sid)] == list(range(1, v + 1))
            assert s.head_position == len(log)
        for s, name in zip(stores[1:], ("p", "direct"), strict=True):
            s.close()
            reopened = DuckDBEventStore(Path(d) / f"{name}.duckdb")
            assert [(r.stream_id, r.version) for r in reopened.read_all()] == \
                [(a, b) for a, b, _ in log]
            assert all(reopened.stream_version(s) == v for s, v in versions.items())
            reopened.close()


@settings(max_examples=15, deadline=None)
@given(threads=st.integers(2, 5), per_thread=st.integers(1, 30),
       n_streams=st.integers(1, 4),
       backend=st.sampled_from(["memory", "duckdb", "duckdb-direct"]))
def test_concurrent_appends_lose_nothing(threads, per_thread, n_streams, backend) -> None:
    with tempfile.TemporaryDirectory() as d:
        store = (InMemoryEventStore() if backend == "memory"
                 else DuckDBEventStore(Path(d) / "c.duckdb", flush_every=7,
                                       journal=backend == "duckdb"))
        conflicts = [0]

        def work(k: int) -> None:
            for i in range(per_thread):
                sid = f"s{(k + i) % n_streams}"
                while True:
                    try:
                        store.append(sid, [NewEvent("E", {"t": k, "i": i})],
                                     expected_version=store.stream_version(sid))
                        break
                    except ConcurrencyError:
                        conflicts[0] += 1

        ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        got = {(r.data["t"], r.data["i"]) for r in store.read_all()}
        assert got == {(k, i) for k in range(threads) for i in range(per_thread)}
        assert store.head_position == threads * per_thread
        for s in range(n_streams):
            vs = [r.version for r in store.read_stream(f"s{s}")]
            assert vs == list(range(1, len(vs) + 1))
        store.close()
