"""Streaming reader of XES event logs (IEEE 1849-2016), plain or gzip-compressed.

The file is parsed with lxml (libxml2): ``iterparse`` reports the end of each ``<trace>`` (the
tag filter runs in C) and the reader walks that trace's small tree in Python. Finished traces
are cleared and deleted behind the parser, so memory stays bounded by a few traces however
large the log is.

Why lxml: the previous reader drove the stdlib expat parser with a Python callback per element
(1.36 M start and as many end calls for BPIC 2012), and those calls, not the parsing, were the
cost. libxml2 builds each trace's tree in C (about 0.8 s for BPIC 2012); reading it back costs
an element proxy, its tag and two attribute lookups per attribute (about 0.7 s). For
:func:`read_xes` the payload JSON comes from one reused C encoder
(:func:`~allframe_lab.io._build.encode_parsed_payload`), the trace's part of it encoded once
per trace, and rows are put in time order with Arrow's stable ``sort_indices``. Date
attributes go straight to :meth:`datetime.fromisoformat`; a per-string cache would not pay off
(95 % of BPIC 2012's timestamps are distinct). :func:`read_xes` keeps the event timestamps
as text and parses them in bulk in C (:func:`~allframe_lab.io._build.timestamps_from_text`,
exactly as one at a time); a bad one is then located by reading the log again, on that error
path only. Events are handed over one at a time (no per-trace list of them), the cyclic
garbage collector is paused while rows are built, and the Arrow arrays are made from buffers
(``pa.array`` would import pandas, 0.5 s, on its first call).

Measured on BPIC 2012 (262,200 events; ``import_log`` into a DuckDB file, median of 3, the
expat and the lxml reader alternately in one session on a shared machine): parse 3.21-3.44 s
-> 2.34-2.37 s, parse + store 3.64-3.86 s -> 2.79-2.84 s (store is unchanged, about 0.42 s);
:func:`iter_xes_traces` alone 2.12 s -> 1.87 s, :func:`iter_xes` 2.19 s -> 1.64 s. The bulk
timestamps, streamed events and the rest then cut :func:`read_xes` by a further 8-10 % of
CPU time (2.77-2.81 s -> 2.53-2.60 s, A/B in one process on a loaded machine), plus the
pandas import on a fresh process's first import.

What is read:

- every ``<trace>`` (a case) with its attributes, and its ``<event>`` elements with theirs;
- typed attributes: ``string``, ``id`` -> str, ``int`` -> int, ``float`` -> float,
  ``boolean`` -> bool, ``date`` -> timezone-aware :class:`~datetime.datetime` (ISO-8601; a
  timestamp without an offset is UTC);
- ``list`` -> a list of its values, ``container`` -> a dict of its children;
- meta-attributes (attributes nested in a simple attribute) are skipped.

What is not applied: ``<extension>`` declarations (attribute names keep their prefix, e.g.
``org:resource``), ``<classifier>`` elements, log-level attributes, and ``<global>`` defaults.
Globals declare which attributes every trace/event has; their values are placeholders (e.g.
``UNKNOWN`` or a 1970 timestamp in BPIC 2012), so filling them in would hide missing data.
Element names are matched by their local name in any namespace (``<log xmlns="...">`` or
``<xes:log xmlns:xes="...">``); an undeclared prefix is malformed XML to libxml2.

Bad input raises :class:`~allframe_lab.errors.ImportFormatError` naming the place: the line
(and column) of malformed XML, ``trace 3, event 5 (line 120)`` for a bad value, ``after line
N`` for damaged gzip data. A file whose root element is not ``<log>`` is reported as not XES
even when it is also malformed further on (e.g. an HTML page saved by mistake). Malformed XML
is described in libxml2's words, at libxml2's position (a truncated file: where the data
ends). Line numbers are those of start tags (of the line a tag ends on, if it spans lines);
libxml2 keeps them in 16 bits, and past line 65535 the reader works them out from the text
around elements (see :func:`_line`).
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from allframe_lab.errors import ImportFormatError
from allframe_lab.io._build import (
    EPOCH,
    UTC,
    BadTimestampError,
    TableBuilder,
    encode_parsed_payload,
    parse_timestamp,
)
from allframe_lab.io.mapping import LogMapping
from allframe_lab.store._columns import gc_paused

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["XesEvent", "XesTrace", "iter_xes", "iter_xes_traces", "read_xes"]

#: Files larger than this (on disk) show a progress bar unless ``progress=False``.
PROGRESS_MIN_BYTES = 2_000_000

_SIMPLE = frozenset({"string", "date", "int", "float", "boolean", "id"})
#: The elements that are attributes, in any namespace (for lxml's tag filters).
_ATTRIBUTE_TAGS = tuple(f"{{*}}{kind}" for kind in (*sorted(_SIMPLE), "list", "container"))
_BOOL = {"true": True, "false": False, "1": True, "0": False}
#: How :func:`_fill` reads an element, by its local name.
_STRING, _DATE, _EVENT, _OTHER = 1, 2, 3, 4
_CODES = {"string": _STRING, "id": _STRING, "date": _DATE, "event": _EVENT}
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
_fromisoformat = datetime.fromisoformat
_MICROSECOND = timedelta(microseconds=1)
_POSITION_SUFFIX = re.compile(r", line \d+, column \d+$")

#: A trace as the parser hands it over: index, element, attributes, and an iterator of its
#: events as ``(element, attributes)``, read as they are asked for. Read the events before
#: asking for the next trace: the elements (also for line numbers, see :func:`_line`) are
#: valid until then.
_RawEvent = tuple[Any, dict[str, Any]]
_RawTrace = tuple[int, Any, dict[str, Any], Iterator[_RawEvent]]


@dataclass(frozen=True, slots=True)
class XesEvent:
    """One ``<event>``: its 1-based index in the trace, its line, its attributes."""

    index: int
    line: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class XesTrace:
    """One ``<trace>`` (a case): its 1-based index in the log, line, attributes and events."""

    index: int
    line: int
    attributes: dict[str, Any]
    events: list[XesEvent] = field(default_factory=list)

    def where(self, event: XesEvent | None = None) -> str:
        """The place for an error message, e.g. ``"trace 3, event 5 (line 120)"``."""
        if event is None:
            return f"trace {self.index} (line {self.line})"
        return f"trace {self.index}, event {event.index} (line {event.line})"


def _place(trace: int, event: int, element: Any) -> str:
    """``trace 3, event 5 (line 120)``, or ``trace 3 (line 118)`` for ``event`` 0."""
    if not event:
        return f"trace {trace} (line {_line(element)})"
    return f"trace {trace}, event {event} (line {_line(element)})"


def _line(element: Any, known: dict[Any, int] | None = None) -> int:
    """The line of an element's start tag.

    libxml2 keeps element lines in 16 bits. From line 65535 on, ``sourceline`` comes from a
    text node next to the element, which records the line where that text *ends*: the text
    after the start tag, or after an empty element. Subtracting the text's line breaks gives
    the start line back (exactly, when the tag itself does not span lines), which covers logs
    with line breaks between elements, as exporters write them. Otherwise the line is counted
    on from the nearest earlier sibling (or the parent) whose line is known, adding the line
    breaks in the text in between; ``known`` holds lines already worked out (elements to
    lines), so that doing this for each event of a trace is not quadratic.
    """
    line = _line_from_text(element)
    if line:
        return line
    breaks = 0
    node = element
    while True:  # walk back, counting the line breaks in the text in between
        before = node.getprevious()
        if before is None:
            parent = node.getparent()
            if parent is None:
                return element.sourceline or 0
            return _line(parent, known) + (parent.text or "").count("\n") + breaks
        breaks += (before.tail or "").count("\n")
        line = (known.get(before, 0) if known else 0) or _line_from_text(before)
        if line:
            return line + _breaks_inside(before) + breaks
        breaks += _breaks_inside(before)
        node = before


def _line_from_text(element: Any) -> int:
    """The line of an element from libxml2: below 65535 as it is, from then on from the text
    after its start tag (or after it, if it is empty); 0 if there is no such text."""
    line: int = element.sourceline or 0
    if line < 65535:
        return line
    text = element.text
    if isinstance(element.tag, str):
        if text:
            return line - text.count("\n")
        if len(element):
            return 0
        tail = element.tail
        return line - tail.count("\n") if tail else 0
    tail = element.tail  # a comment or processing instruction: the text after it
    return line - tail.count("\n") - (text or "").count("\n") if tail else 0


def _breaks_inside(element: Any) -> int:
    """Line breaks in the text inside an element, comments included (not in its tail)."""
    breaks = (element.text or "").count("\n")
    for node in element.iterdescendants():
        breaks += (node.text or "").count("\n") + (node.tail or "").count("\n")
    return breaks


class _Source:
    """The file object lxml reads from: decompresses, counts lines, moves the progress bar."""

    def __init__(self, raw: BinaryIO, stream: BinaryIO, bar: Any) -> None:
        self.raw = raw
        self.stream = stream
        self.bar = bar
        self.seen = 0
        self.lines = 1  # the line the data read so far ends on

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.lines += data.count(b"\n")
        pos = self.raw.tell()
        self.bar.update(pos - self.seen)
        self.seen = pos
        return data


class _Walker:
    """Reads attribute elements into values; knows the place (trace, event) for errors."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.kinds: dict[Any, str] = {}  # element tag -> local name: "{ns}event" -> "event"
        #: element tag -> how :func:`_fill` reads it: _STRING, _DATE, _EVENT or _OTHER
        self.codes: dict[Any, int] = {}
        self.trace = 0  # the open trace's index (0 before the first)
        self.event = 0  # the index of the event being read in it (0: the trace's own attributes)
        #: the key of event date attributes kept as text, for :func:`read_xes` to parse in bulk
        self.raw_dates: str | None = None
        self.root_checked = False  # the root element was seen to be <log>

    def kind(self, tag: Any) -> str:
        kind = self.kinds.get(tag)
        if kind is None:
            kind = tag.rpartition("}")[2] if isinstance(tag, str) else ""
            self.kinds[tag] = kind
        return kind

    def code(self, tag: Any) -> int:
        code = self.codes[tag] = _CODES.get(self.kind(tag), _OTHER)
        return code

    def fail(self, element: Any, problem: str) -> ImportFormatError:
        if not self.trace:
            return ImportFormatError(self.source, f"line {_line(element)}", problem)
        return ImportFormatError(self.source, _place(self.trace, self.event, element), problem)

    def attribute(self, target: dict[str, Any] | list[Any], element: Any, kind: str) -> None:
        """Put the value of an attribute element into a dict (by key) or a list (appended)."""
        if kind in _SIMPLE:  # its children are meta-attributes: skipped
            self.put(target, element, self.convert(element, kind), kind)
        elif kind == "list":
            values: list[Any] = []
            self.put(target, element, values, kind)
            for child in element:
                ckind = self.kind(child.tag)
                if ckind == "values":
                    for item in child:
                        self.attribute(values, item, self.kind(item.tag))
                else:
                    self.attribute(values, child, ckind)
        elif kind == "container":
            children: dict[str, Any] = {}
            self.put(target, element, children, kind)
            for child in element:
                self.attribute(children, child, self.kind(child.tag))
        # anything else (``values`` outside a list, unknown elements) is skipped with its
        # children; a misplaced <event> or <trace> is reported by the parse loop

    def put(self, target: dict[str, Any] | list[Any], element: Any, value: Any,
            kind: str) -> None:
        if type(target) is list:
            target.append(value)
            return
        key = element.get("key")
        if key is None:
            raise self.fail(element, f"a <{kind}> attribute has no key")
        target[key] = value  # type: ignore[index]

    def convert(self, element: Any, kind: str) -> Any:
        value = element.get("value")
        if value is None:
            raise self.fail(element, f"the <{kind}> attribute {element.get('key')!r} has no "
                            "value")
        if kind == "string" or kind == "id":
            return value
        try:
            if kind == "date":
                return parse_timestamp(value)
            if kind == "int":
                return int(value)
            if kind == "float":
                return float(value)
            return _BOOL[value.strip().lower()]
        except (ValueError, KeyError):
            what = "an ISO-8601 date" if kind == "date" else f"a valid {kind}"
            raise self.fail(element, f"the {kind} attribute {element.get('key')!r} is not "
                            f"{what}: {value!r}") from None

    def trace_attributes(self, target: dict[str, Any], elements: Any) -> None:
        """The trace's own attributes among ``elements`` (its events are read elsewhere)."""
        self.event = 0
        _fill(self, target, elements)


def _fill(walker: _Walker, target: dict[str, Any], elements: Any,
          raw_dates: str | None = None) -> None:
    """Read attribute elements into ``target``; ``<event>`` elements are skipped.

    The hot loop (1.1 M attributes in BPIC 2012): string, id and date attributes are read
    inline, dispatched on a small int per tag (no string compares); anything else, and every
    error, goes through :meth:`_Walker.attribute`. A date attribute with key ``raw_dates`` is
    kept as its text.
    """
    codes = walker.codes
    for child in elements:
        tag = child.tag
        code = codes.get(tag)
        if code is None:
            code = walker.code(tag)
        if code == _STRING:
            key = child.get("key")
            value = child.get("value")
            if key is None or value is None:
                walker.attribute(target, child, walker.kind(tag))
            else:
                target[key] = value
        elif code == _DATE:
            key = child.get("key")
            value = child.get("value")
            if key is None or value is None:
                walker.attribute(target, child, "date")
            elif key == raw_dates:
                target[key] = value
            else:
                try:
                    at = _fromisoformat(value)
                    target[key] = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
                except ValueError:  # surrounding blanks, or not a date: the careful way
                    walker.attribute(target, child, "date")
        elif code == _OTHER:
            walker.attribute(target, child, walker.kind(tag))
        # _EVENT: skipped (events are read by _events)


def _progress_bar(path: Path, size: int, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    enabled = progress if progress is not None else size >= PROGRESS_MIN_BYTES
    return tqdm(total=size, desc=f"reading {path.name}", unit="B", unit_scale=True,
                unit_divisor=1024, disable=not enabled, leave=False)


def _open(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """The file, and the stream of its (decompressed) bytes; gzip is detected by content."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    compressed = raw.read(2) == b"\x1f\x8b"
    raw.seek(0)
    stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
    return raw, stream


def _root_element(path: Path) -> tuple[str, int] | None:
    """The local name and line of the root element, read afresh from the start of the file
    (for error messages only); ``None`` if the data breaks off before it."""
    from lxml import etree

    raw, stream = _open(path)
    try:
        parser = etree.XMLPullParser(events=("start",), recover=True)
        while chunk := stream.read(1 << 16):
            parser.feed(chunk)
            for _, element in parser.read_events():
                return element.tag.rpartition("}")[2], element.sourceline or 1
    except (etree.XMLSyntaxError, *_GZIP_ERRORS):
        pass
    finally:
        raw.close()
    return None


def _not_xes(src: str, name: str, line: int) -> ImportFormatError:
    return ImportFormatError(src, f"line {line}",
                             f"the root element is <{name}>, not <log>: this is not an XES file")


def _read(source: str | os.PathLike[str], progress: bool | None,
          raw_dates: str | None = None) -> Iterator[_RawTrace]:
    """The traces of an XES file as plain tuples (see :func:`iter_xes_traces`); event date
    attributes with key ``raw_dates`` are kept as text."""
    from lxml import etree

    path = Path(source)
    src = os.fspath(source)
    size = path.stat().st_size
    raw, stream = _open(path)
    bar = _progress_bar(path, size, progress)
    feed = _Source(raw, stream, bar)
    walker = _Walker(src)
    walker.raw_dates = raw_dates
    try:
        context = etree.iterparse(
            feed, events=("end",), tag="{*}trace", collect_ids=False)
        # (comments, processing instructions and blank text are kept: see _line)
        try:
            yield from _traces(walker, context)
        except _GZIP_ERRORS as exc:
            raise ImportFormatError(
                src, f"after line {feed.lines}", f"the gzip data is damaged or truncated ({exc})",
            ) from exc
        except etree.XMLSyntaxError as exc:
            root = None if walker.root_checked else _root_element(path)
            if root is not None and root[0] != "log":
                raise _not_xes(src, *root) from None
            line, column = exc.position
            message = _POSITION_SUFFIX.sub("", exc.msg or "") or "not well-formed"
            raise ImportFormatError(src, f"line {max(line, 1)}, column {max(column, 1)}",
                                    f"malformed XML: {message}") from None
    finally:
        bar.close()
        raw.close()


def _traces(walker: _Walker, context: Any) -> Iterator[_RawTrace]:
    """The parse loop: ``iterparse`` reports the end of each ``<trace>``.

    Memory: the tree holds the last three traces at most. The one before the current trace is
    kept whole, as its consumer may still hold its elements (clearing elements that Python
    still refers to is slow in lxml) and lines past 65535 may be counted on from it (see
    :func:`_line`); the one before that is cleared but keeps its tail, which gives the line
    where the next one starts; everything older is deleted.
    """
    src = walker.source
    kind_of = walker.kind
    trace_attribute_tags = _ATTRIBUTE_TAGS
    root: Any = None
    previous: Any = None  # the last trace yielded
    older: Any = None  # the one before it
    for _, trace in context:
        if root is None:
            root = trace.getroottree().getroot()
            name = root.tag.rpartition("}")[2]
            if name != "log":
                raise _not_xes(src, name, _line(root) or 1)
            walker.root_checked = True
        log = trace.getparent()
        if log is None or kind_of(log.tag) != "log":
            outer = None  # the trace it is in, if any (still open: counted next)
            for above in trace.iterancestors("{*}trace"):
                outer = above
            raise _misplaced(walker, trace, "a <trace> must be a child of <log>", outer,
                             walker.trace + 1)
        # the log-level elements since the last trace: only now complete
        _no_events_in(walker, _between(log, previous, trace))
        if older is not None and older.getparent() is log:
            _release(older)
            while log[0] is not older:
                del log[0]
        walker.trace += 1
        trace_attrs: dict[str, Any] = {}
        walker.trace_attributes(trace_attrs, trace.iterchildren(*trace_attribute_tags))
        yield walker.trace, trace, trace_attrs, _events(walker, trace)
        older, previous = previous, trace
    if root is None:  # a log without traces
        root = context.root
        if root is None:  # pragma: no cover - libxml2 reports a document without elements
            raise ImportFormatError(src, "line 1", "no <log> element: this is not an XES file")
        name = root.tag.rpartition("}")[2]
        if name != "log":
            raise _not_xes(src, name, _line(root) or 1)
        walker.root_checked = True
    # the log-level elements after the last trace
    _no_events_in(walker, root if previous is None else previous.itersiblings())


def _events(walker: _Walker, trace: Any) -> Iterator[_RawEvent]:
    """The events of a trace as ``(element, attributes)``, read one at a time (so that no
    list of them is built and each element's proxy is freed as soon as it is used)."""
    fill = _fill
    raw_dates = walker.raw_dates
    # every <event> below the trace (found in C), so that misplaced ones are reported too
    for n, event in enumerate(trace.iter("{*}event"), 1):
        if event.getparent() is not trace:
            raise _misplaced(walker, event, _OUTSIDE_TRACE, trace, walker.trace)
        walker.event = n
        attrs: dict[str, Any] = {}
        fill(walker, attrs, event, raw_dates)
        yield event, attrs


def _release(trace: Any) -> None:
    """Free a trace's children, keeping its tail (see :func:`_traces`). A trace that began
    before line 65535 and ends near it is kept whole: lines are counted on from it."""
    line = trace.sourceline or 0
    if line >= 65535 or line + _breaks_inside(trace) < 65000:
        trace.clear(keep_tail=True)


def _between(parent: Any, first: Any, stop: Any) -> Iterator[Any]:
    """The children of ``parent`` after ``first`` (from the start if None) before ``stop``."""
    for child in (parent if first is None else first.itersiblings()):
        if child is stop:
            return
        yield child


def _no_events_in(walker: _Walker, elements: Any) -> None:
    """Report an ``<event>`` among or below log-level elements (one outside any trace)."""
    kind_of = walker.kind
    for element in elements:
        kind = kind_of(element.tag)
        if kind == "event":
            raise _outside_trace(walker.source, element)
        if kind != "trace" and len(element):
            for event in element.iter("{*}event"):
                raise _outside_trace(walker.source, event)


_OUTSIDE_TRACE = "an <event> outside a <trace> has no case; put it in a trace"


def _outside_trace(src: str, element: Any) -> ImportFormatError:
    return ImportFormatError(src, f"line {_line(element)}", _OUTSIDE_TRACE)


def _misplaced(walker: _Walker, element: Any, problem: str, trace: Any,
               index: int) -> ImportFormatError:
    """An error for an element nested where it must not be, naming the trace (with index
    ``index``) and event it is in, if any."""
    if trace is None:
        return ImportFormatError(walker.source, f"line {_line(element)}", problem)
    child = element
    while child.getparent() is not trace:
        child = child.getparent()
    event = 0
    if walker.kind(child.tag) == "event":
        event = 1 + sum(1 for _ in child.itersiblings("{*}event", preceding=True))
    return ImportFormatError(walker.source, _place(index, event, element), problem)


def iter_xes_traces(
    source: str | os.PathLike[str], /, *, progress: bool | None = None
) -> Iterator[XesTrace]:
    """Read an XES file (``.xes`` or gzip-compressed ``.xes.gz``) one trace at a time.

    Parameters
    ----------
    source : str or path
        The file; gzip compression is detected from its first bytes, not its name.
    progress : bool, optional
        Show a progress bar (bytes read). Default: only for files over 2 MB.

    Yields
    ------
    XesTrace
        Each trace with its attributes and events, in file order.

    Raises
    ------
    ImportFormatError
        If the file is not well-formed XML, not XES, a damaged or truncated gzip file, or holds
        a value that does not fit its declared type. Traces before the error were already
        yielded: collect them all before writing anything (as :func:`read_xes` does).

    Examples
    --------
    >>> from allframe_lab.io import dataset_path
    >>> first = next(iter_xes_traces(dataset_path("running-example")))
    >>> first.attributes["concept:name"], len(first.events)
    ('3', 9)
    >>> first.events[0].attributes["concept:name"], first.where(first.events[0])
    ('register request', 'trace 1, event 1 (line 23)')
    """
    for index, element, attributes, events in _read(source, progress):
        known: dict[Any, int] = {}
        out = []
        for n, (event, attrs) in enumerate(events, 1):
            line = known[event] = _line(event, known)
            out.append(XesEvent(n, line, attrs))
        yield XesTrace(index, _line(element), attributes, out)


def iter_xes(
    source: str | os.PathLike[str], /, *, progress: bool | None = None
) -> Iterator[dict[str, Any]]:
    """Read an XES file as a flat stream of event dicts, in file order.

    Each dict holds the trace's attributes prefixed with ``case:`` (as in the XES standard,
    e.g. ``case:concept:name``) and the event's own attributes (``concept:name``,
    ``time:timestamp``, ``org:resource``, ``lifecycle:transition`` ...). Dates are
    timezone-aware datetimes. See :func:`iter_xes_traces` for parameters and errors.

    Examples
    --------
    >>> from allframe_lab.io import dataset_path
    >>> e = next(iter_xes(dataset_path("running-example")))
    >>> e["case:concept:name"], e["concept:name"], e["org:resource"]
    ('3', 'register request', 'Pete')
    >>> e["time:timestamp"].isoformat()
    '2010-12-30T14:32:00+01:00'
    """
    for _, _, attributes, events in _read(source, progress):
        case = {f"case:{k}": v for k, v in attributes.items()}
        for _, event in events:
            yield {**case, **event}


def read_xes(
    source: str | os.PathLike[str],
    /,
    *,
    mapping: LogMapping | None = None,
    progress: bool | None = None,
    batch_size: int = 100_000,
) -> pa.Table:
    """Read an XES file into the import table: ``stream_id, type, data, occurred_at``.

    Rows are sorted by ``occurred_at``; events with the same time keep their file order.
    See :func:`allframe_lab.io.read_log`, which dispatches here for ``.xes`` files.

    Raises
    ------
    ImportFormatError
        For malformed files (see :func:`iter_xes_traces`), a trace without a case id, an event
        without an activity or without a timestamp (every event needs one: it becomes
        ``occurred_at``), or a timestamp that is not a date.
    """
    m = (mapping or LogMapping()).xes()
    builder = TableBuilder(batch_size)
    with gc_paused():
        try:
            _add_events(builder, source, m, progress)
            return builder.table()
        except BadTimestampError as exc:  # found in bulk: read again to name the place
            raise _bad_timestamp(source, m.envelope[2], exc) from None


def _add_events(builder: TableBuilder, source: str | os.PathLike[str], m: LogMapping,
                progress: bool | None) -> None:
    """The loop of :func:`read_xes`: one row per event into ``builder``."""
    src = os.fspath(source)
    case_key, activity_key, time_key = m.envelope
    prefix = m.stream_prefix
    encode = encode_parsed_payload
    # The standard layout (case id from the trace, activity and time from the event) takes a
    # fast path: the trace's part of the payload is encoded once per trace, not per event.
    fast = (case_key.startswith("case:") and not activity_key.startswith("case:")
            and not time_key.startswith("case:"))
    stream_id = case_json = case_head = ""
    # On the fast path the timestamps stay text, parsed in bulk by the builder (in C, see
    # _build.timestamps_from_text): about 0.15 s of BPIC 2012's per-event Python work.
    raw = time_key if fast else None
    # the parser's dicts are not shared with anyone: envelope keys are popped in place
    for index, trace_el, attributes, events in _read(source, progress, raw):
        case_attrs = {f"case:{k}": v for k, v in attributes.items()}
        if fast:
            case = case_attrs.pop(case_key, None)
            if case is None or case == "":
                raise _no_case_id(src, _place(index, 0, trace_el), "trace", case_key)
            stream_id = f"{prefix}{case}"
            case_json = encode(case_attrs)  # "{...}", joined with each event's below
            case_head = case_json[:-1] + ","  # "{...,": then the event's part without its "{"
        disjoint = case_attrs.keys().isdisjoint
        streams: list[str] = []
        types: list[str] = []
        bodies: list[str] = []
        times: list[Any] = []  # texts on the fast path, else microseconds
        for n, (event_el, ev) in enumerate(events, 1):
            if fast and disjoint(ev):
                activity = ev.pop(activity_key, None)
                at = ev.pop(time_key, None)
                body = encode(ev)
                if len(case_json) > 2:
                    body = case_head + body[1:] if len(body) > 2 else case_json
            else:
                rest = {**case_attrs, **ev}
                if not fast:
                    case = rest.pop(case_key, None)
                    if case is None or case == "":
                        raise _no_case_id(src, _place(index, n, event_el), "event", case_key)
                    stream_id = f"{prefix}{case}"
                activity = rest.pop(activity_key, None)
                at = rest.pop(time_key, None)
                body = encode(rest)
            if activity is None or activity == "":
                raise ImportFormatError(
                    src, _place(index, n, event_el),
                    f"the event has no activity attribute {activity_key!r}; give "
                    f"LogMapping(activity=...) to take it from another attribute",
                )
            if raw:
                if type(at) is not str:  # missing, or not a date: raises
                    _as_time(src, index, n, event_el, time_key, at)
                times.append(at)
            else:
                if type(at) is not datetime:
                    at = _as_time(src, index, n, event_el, time_key, at)
                times.append((at - EPOCH) // _MICROSECOND)  # _build.epoch_us(at), inlined
            streams.append(stream_id)
            types.append(activity if type(activity) is str else str(activity))
            bodies.append(body)
        builder.extend(streams, types, bodies, times)


def _bad_timestamp(source: str | os.PathLike[str], key: str,
                   error: BadTimestampError) -> ImportFormatError:
    """The error for a timestamp text found bad in bulk (``error.row``: its index among the
    events in file order), naming its place: the log is read again, on this error path only,
    by :func:`iter_xes_traces`, which reports a bad ``<date>`` itself."""
    src = os.fspath(source)
    first = 0
    for trace in iter_xes_traces(source, progress=False):
        if error.row < first + len(trace.events):
            event = trace.events[error.row - first]
            return ImportFormatError(src, trace.where(event), f"the timestamp {key!r} is not "
                                     f"an ISO-8601 date: {error.text!r}")
        first += len(trace.events)
    return ImportFormatError(src, f"event {error.row + 1}",  # pragma: no cover - not reached
                             f"the timestamp {key!r} is not an ISO-8601 date: {error.text!r}")


def _no_case_id(src: str, where: str, whose: str, key: str) -> ImportFormatError:
    return ImportFormatError(
        src, where,
        f"the {whose} has no case id attribute {key!r}; give LogMapping(case=...) to take "
        "the case id from another attribute",
    )


def _as_time(src: str, trace: int, event: int, element: Any, key: str,
             value: Any) -> datetime:
    """A timestamp given as a string attribute (some exporters do that), or an error."""
    if value is None:
        raise ImportFormatError(src, _place(trace, event, element),
                                f"the event has no timestamp attribute {key!r}; every event "
                                "needs one (it becomes occurred_at)")
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            pass
    raise ImportFormatError(src, _place(trace, event, element),
                            f"the timestamp {key!r} is not an ISO-8601 date: {value!r}")
