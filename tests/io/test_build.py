"""The import table's building blocks: Arrow arrays from Python lists, timestamps parsed in
bulk exactly as one at a time, and bulk-found bad timestamps reported at their place."""

from __future__ import annotations

import gc
from pathlib import Path

import pyarrow as pa
import pytest

from allframe_lab.errors import ImportFormatError
from allframe_lab.io import read_log
from allframe_lab.io._build import (
    BadTimestampError,
    epoch_us,
    parse_timestamp,
    string_array,
    timestamp_array,
    timestamps_from_text,
)
from allframe_lab.store._columns import gc_paused

# Texts where Arrow's parser and datetime.fromisoformat could disagree: each must come out as
# parse_timestamp reads it, or be reported as bad.
EDGE_TEXTS = [
    "2011-10-01T00:38:44.546+02:00", "2011-10-01T00:38:44Z", "2011-10-01T00:38:44-00:00",
    "2011-10-01T00:38:44.5Z", "2011-10-01T00:38:44.123456+14:00", "2012-02-29T00:00:00Z",
    "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "2011-01-01T00:00:00+23:59",
    # not in the common form: parsed by Python
    "2011-10-01T00:38:44", "2011-10-01 00:38:44+02:00", " 2011-10-01T00:38:44Z ",
    "2011-01-01T00:00:00+05:60", "2011-10-01T00:38:44.1234567+02:00", "2011-10-01",
    "2011-10-01T00:38:44+02:00:30.5",
]
BAD_TEXTS = ["0000-01-01T00:00:00Z", "2011-02-30T00:00:00Z", "2011-01-01T24:00:00Z",
             "2011-01-01T23:59:60Z", "2011-01-01T00:00:00+24:00", "2011-13-01T00:00:00Z",
             "yesterday", ""]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_bulk_timestamps_read_as_one_at_a_time(text: str) -> None:
    expected = epoch_us(parse_timestamp(text))
    plain = "2011-10-01T00:38:44.546+02:00"
    got = timestamps_from_text([plain, text])  # alone and next to a common one
    assert got.cast(pa.int64()).to_pylist() == [epoch_us(parse_timestamp(plain)), expected]
    assert timestamps_from_text([text]).cast(pa.int64()).to_pylist() == [expected]


@pytest.mark.parametrize("text", BAD_TEXTS)
def test_bulk_timestamps_report_the_first_bad_row(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)
    with pytest.raises(BadTimestampError) as info:
        timestamps_from_text(["2011-10-01T00:38:44Z", text, "nonsense"], first_row=10)
    assert (info.value.row, info.value.text) == (11, text)


def test_arrays_from_buffers_match_pa_array() -> None:
    for values in (["a", "bé", "", "x€😀"], ["abc", "d"], []):
        got = string_array(values)
        got.validate(full=True)
        assert got.equals(pa.array(values, pa.string()))
    micros = [0, 1_318_000_000_000_000, -5]
    got = timestamp_array(micros)
    assert got.equals(pa.array(micros, pa.timestamp("us", tz="UTC")))


def test_gc_paused_restores_the_collector() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()


def _log(events_per_trace: list[list[str]]) -> str:
    traces = []
    for case, stamps in enumerate(events_per_trace, 1):
        events = "\n".join(
            f'<event><string key="concept:name" value="A"/>{stamp}</event>' for stamp in stamps)
        traces.append(f'<trace><string key="concept:name" value="{case}"/>\n{events}\n</trace>')
    return '<?xml version="1.0"?>\n<log>\n' + "\n".join(traces) + "\n</log>\n"


GOOD_DATE = '<date key="time:timestamp" value="2024-01-01T00:00:00Z"/>'


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_bad_timestamp_found_in_bulk_names_its_place(tmp_path: Path, batch_size: int) -> None:
    # a timestamp given as a string attribute is parsed in bulk, after its element is gone
    path = tmp_path / "s.xes"
    bad = '<string key="time:timestamp" value="2024-02-30T00:00:00Z"/>'
    path.write_text(_log([[GOOD_DATE, GOOD_DATE], [GOOD_DATE, bad, GOOD_DATE]]))
    with pytest.raises(ImportFormatError) as info:
        read_log(path, batch_size=batch_size)
    assert info.value.where == "trace 2, event 2 (line 9)"
    assert "the timestamp 'time:timestamp' is not an ISO-8601 date: '2024-02-30" in str(info.value)


def test_bad_date_found_in_bulk_names_its_place(tmp_path: Path) -> None:
    path = tmp_path / "d.xes"
    bad = '<date key="time:timestamp" value="2024-01-01T25:00:00Z"/>'
    path.write_text(_log([[GOOD_DATE], [GOOD_DATE, GOOD_DATE, bad]]))
    with pytest.raises(ImportFormatError) as info:
        read_log(path, batch_size=2)
    assert info.value.where == "trace 2, event 3 (line 9)"
    assert "the date attribute 'time:timestamp' is not an ISO-8601 date" in str(info.value)


def test_timestamps_as_strings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "ok.xes"
    path.write_text(_log([['<string key="time:timestamp" value="2024-01-01T01:00:00+01:00"/>',
                           '<date key="time:timestamp" value=" 2024-01-01T00:30:00 "/>']]))
    table = read_log(path)
    assert table.column("occurred_at").cast(pa.int64()).to_pylist() == [
        epoch_us(parse_timestamp("2024-01-01T00:00:00Z")),
        epoch_us(parse_timestamp("2024-01-01T00:30:00Z"))]
