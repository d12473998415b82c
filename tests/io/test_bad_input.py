"""Bad input raises ImportFormatError naming the place, and writes nothing."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from allframe_lab.errors import ImportFormatError
from allframe_lab.io import dataset_path, import_log
from allframe_lab.store import InMemoryEventStore, NewEvent
from allframe_lab.store.duckdb import DuckDBEventStore

EVENT = ('<event><string key="concept:name" value="{a}"/>'
         '<date key="time:timestamp" value="{t}"/></event>')
GOOD_EVENT = EVENT.format(a="A", t="2024-01-01T00:00:00Z")


def xes(*traces: str) -> str:
    return '<?xml version="1.0"?>\n<log>\n' + "\n".join(traces) + "\n</log>\n"


def trace(case: str | None, *events: str) -> str:
    name = f'<string key="concept:name" value="{case}"/>' if case is not None else ""
    return "<trace>" + name + "\n" + "\n".join(events) + "\n</trace>"


def write(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path
    return make


def truncated_gz(tmp: Path) -> Path:
    data = dataset_path("helpdesk").read_bytes()
    path = tmp / "truncated.xes.gz"
    path.write_bytes(data[: int(len(data) * 0.9)])  # fails after thousands of good traces
    return path


def garbled_gz(tmp: Path) -> Path:
    data = bytearray(dataset_path("helpdesk").read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(64)
    path = tmp / "garbled.xes.gz"
    path.write_bytes(bytes(data))
    return path


def truncated_xml(tmp: Path) -> Path:
    text = dataset_path("running-example").read_text()
    path = tmp / "cut.xes"
    path.write_text(text[: len(text) * 2 // 3])
    return path


CASES = {
    "truncated .xes.gz": (truncated_gz, r"after line \d+", "damaged or truncated"),
    "garbled .xes.gz": (garbled_gz, r"line \d+", ""),
    "truncated XML": (truncated_xml, r"line \d+, column \d+", "malformed XML"),
    "garbled XML": (write("garbled.xes", xes(trace("1", GOOD_EVENT), "<trace><event <</trace>")),
                    r"^line 6, column 15$", "malformed XML: error parsing attribute name"),
    "gzip of garbage": (write("junk.xes.gz", gzip.compress(b"<log><trace></log>")),
                        r"line 1, column \d+", "tag mismatch: trace line 1 and log"),
    "HTML page": (write("page.xes", "<html>\n<body><p>saved by mistake</body>\n</html>"),
                  "^line 1$", "root element is <html>, not <log>"),
    "not XES": (write("page.xes", "<html><body/></html>"), "line 1",
                "not <log>"),
    "bad timestamp": (write("t.xes", xes(trace("1", GOOD_EVENT,
                                                EVENT.format(a="B", t="2024-13-45")))),
                      r"^trace 1, event 2 \(line 5\)$", "'time:timestamp' is not an ISO-8601"),
    "bad int": (write("i.xes", xes(trace("1", '<event><int key="n" value="x1"/></event>'))),
                r"trace 1, event 1", "not a valid int"),
    "missing case id": (write("c.xes", xes(trace("1", GOOD_EVENT), trace(None, GOOD_EVENT))),
                        r"^trace 2 \(line 6\)$", "no case id attribute 'case:concept:name'"),
    "missing activity": (write("a.xes", xes(trace("1", GOOD_EVENT, GOOD_EVENT,
                                                  '<event><date key="time:timestamp" '
                                                  'value="2024-01-01T00:00:00Z"/></event>'))),
                         r"^trace 1, event 3 \(line 6\)$", "no activity attribute"),
    "missing timestamp": (write("m.xes", xes(trace("1", '<event><string key="concept:name" '
                                                       'value="A"/></event>'))),
                          r"trace 1, event 1", "no timestamp attribute 'time:timestamp'"),
    "event outside a trace": (write("o.xes", xes(GOOD_EVENT)), r"line 3",
                              "outside a <trace>"),
    "CSV missing a column": (write("log.csv", "case_id,timestamp\nc1,2024-01-01\n"),
                             "^header$", "found no activity column"),
    "CSV missing a named column": (write("log2.csv", "case_id,activity,when\nc1,a,2024\n"),
                                   "^header$", "found no timestamp column"),
    "CSV bad timestamp": (write("t.csv", "case_id,activity,timestamp\nc1,a,2024-01-01\n"
                                         "c1,b,2024-01-01T10:00\nc2,a,yesterday\n"),
                          "^row 3$", "bad timestamp 'yesterday'"),
    "CSV missing timestamp": (write("mt.csv", "case_id,activity,timestamp\nc1,a,\n"),
                              "^row 1$", "no timestamp"),
    "CSV missing case id": (write("c.csv", "case_id,activity,timestamp\nc1,a,2024-01-01\n"
                                           ",b,2024-01-01\n"), "^row 2$", "no case id"),
    "CSV missing activity": (write("a.csv", "case_id,activity,timestamp\nc1, ,2024-01-01\n"),
                             "^row 1$", "no activity"),
    "CSV ragged row": (write("r.csv", "case_id,activity,timestamp\nc1,a,2024-01-01\n"
                                      "c1,b,2024-01-02,extra\n"),
                       r"^row 2 \(line 3\)$", "cannot parse the CSV"),
    "not Parquet": (write("x.parquet", b"PAR1 this is not parquet"), "^file$",
                    "cannot read it as Parquet"),
    "unknown format": (write("log.json", "{}"), "^file name$", "format"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_names_the_place_and_writes_nothing(case: str, tmp_path: Path) -> None:
    make, where, problem = CASES[case]
    path = make(tmp_path)
    with DuckDBEventStore(tmp_path / "events.duckdb") as store:
        with pytest.raises(ImportFormatError) as info:
            import_log(path, store, progress=False)
        err = info.value
        assert err.source == str(path)
        assert re.search(where, err.where), err.where
        assert problem in err.problem, err.problem
        assert str(path) in str(err) and "nothing was imported" in str(err)
        assert store.head_position == 0
        assert store.stats().events == 0
    with DuckDBEventStore(tmp_path / "events.duckdb", read_only=True) as again:
        assert again.head_position == 0


def test_a_failed_import_leaves_existing_events_alone(tmp_path: Path) -> None:
    with DuckDBEventStore(tmp_path / "events.duckdb") as store:
        store.append("s", [NewEvent("A", {}), NewEvent("B", {})])
        with pytest.raises(ImportFormatError):
            import_log(truncated_gz(tmp_path), store, progress=False)
        assert store.head_position == 2
        assert store.stats().streams == 1
        result = import_log(dataset_path("running-example"), store, progress=False)
        assert (result.first_position, result.last_position) == (3, 44)


def test_the_in_memory_store_is_left_empty_too(tmp_path: Path) -> None:
    store = InMemoryEventStore()
    with pytest.raises(ImportFormatError, match="trace 1, event 2"):
        import_log(write("t.xes", xes(trace("1", GOOD_EVENT, EVENT.format(a="B", t="x"))))(
            tmp_path), store)
    assert store.head_position == 0


def test_a_missing_file_is_not_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        import_log(tmp_path / "nope.xes", InMemoryEventStore())


def test_import_format_error_is_a_value_error() -> None:
    assert issubclass(ImportFormatError, ValueError)
