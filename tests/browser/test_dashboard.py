"""The Panel dashboard in Debian's headless chromium: ``allframe-lab dashboard`` as a real
subprocess on a free port, the page renders, moving the slider changes the projection table to
the values of an independent SQL oracle over the store file.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from allframe_lab.io import dataset_path, import_log
from allframe_lab.store.duckdb import DuckDBEventStore
from tests.browser._lab import free_port

CLI = Path(sys.executable).parent / "allframe-lab"
TABLE = ".allframe-dashboard-projection-table"


@dataclass
class Served:
    url: str
    store: Path
    head: int
    tmpdir: Path
    proc: subprocess.Popen[str]
    lines: list[str]


def oracle(store: Path, position: int) -> dict[str, int]:
    """activity_counts as of ``position``: events per type, by plain SQL on the file."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        rows = con.execute("SELECT type, count(*) FROM events WHERE position <= ? GROUP BY type",
                           [position]).fetchall()
    finally:
        con.close()
    return {t: int(n) for t, n in rows}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("dashboard")
    store = folder / "helpdesk.duckdb"
    with DuckDBEventStore(store) as s:
        import_log(dataset_path("helpdesk"), s)
        head = s.head_position
    tmpdir = folder / "tmp"  # the server's snapshot copies go here: checked after it stops
    tmpdir.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        [str(CLI), "dashboard", "--store", str(store), "--port", str(port),
         "--projection", "activity_counts"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)})
    lines: list[str] = []
    found: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "serving" in line:
                found.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        line = found.get(timeout=90)
    except queue.Empty:
        proc.kill()
        pytest.fail("the dashboard did not start:\n" + "".join(lines))
    url = f"http://127.0.0.1:{port}/"
    assert url in line, line
    served = Served(url, store, head, tmpdir, proc, lines)
    try:
        yield served
    finally:
        proc.terminate()  # SIGTERM: the server stops and deletes its snapshot copies
        code = proc.wait(timeout=30)
        assert code == 0, "".join(lines)
        assert list(tmpdir.iterdir()) == [], "snapshot copies were left behind"


def table_values(page: Any) -> dict[str, int]:
    rows = page.locator(f"{TABLE} .tabulator-row")
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        activity = row.locator('[tabulator-field="activity"]').inner_text().strip()
        events = row.locator('[tabulator-field="events"]').inner_text().strip()
        out[activity] = int(events.replace(",", ""))
    return out


def wait_for_table(page: Any, expected: dict[str, int], timeout: float = 30.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    got: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            got = table_values(page)
        except Exception:  # a row re-rendered while it was read: read again
            got = {}
        if got == expected:
            return got
        time.sleep(0.1)
    return got


def shown_position(page: Any) -> int:
    return int(page.locator("[data-position]").first.get_attribute("data-position"))


def test_dashboard_renders_its_tabs(served: Served, page: Any) -> None:
    external: list[str] = []
    page.on("request", lambda r: external.append(r.url) if "127.0.0.1" not in r.url else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.perf_counter()
    page.goto(served.url)
    header = page.locator(f'[data-head-position="{served.head}"]')
    header.wait_for()
    page.locator(".allframe-dashboard-types .tabulator-row").first.wait_for()
    print(f"\npage load (navigation to first table rows): {time.perf_counter() - t0:.2f} s")
    assert "read-only snapshot copy" in header.inner_text()
    assert page.locator(".allframe-dashboard-types .tabulator-row").count() == 14
    for tab in ("Overview", "Streams", "Projections", "Traces"):
        assert page.get_by_text(tab, exact=True).count() >= 1, tab
    page.get_by_text("Traces", exact=True).first.click()
    assert page.locator('[data-spans="0"]').inner_text().startswith("No traces yet")
    page.get_by_text("Streams", exact=True).first.click()
    page.locator(".allframe-dashboard-streams .tabulator-row").first.click()
    title = page.locator("[data-stream-id]")
    title.wait_for()
    assert title.inner_text().endswith("events")
    assert errors == []
    assert external == []  # everything is served locally: works offline


def test_moving_the_slider_changes_the_table_to_the_expected_values(served: Served,
                                                                    page: Any) -> None:
    page.goto(served.url)
    page.locator(f'[data-head-position="{served.head}"]').wait_for()
    page.get_by_text("Projections", exact=True).first.click()
    page.locator(f"{TABLE} .tabulator-row").first.wait_for()
    assert shown_position(page) == served.head
    at_head = oracle(served.store, served.head)
    assert wait_for_table(page, at_head) == at_head

    track = page.locator(".allframe-dashboard-slider .noUi-base").bounding_box()
    assert track is not None
    page.mouse.click(track["x"] + track["width"] * 0.25, track["y"] + track["height"] / 2)
    deadline = time.monotonic() + 30
    while shown_position(page) == served.head and time.monotonic() < deadline:
        time.sleep(0.1)
    position = shown_position(page)
    assert 0 < position < served.head
    assert abs(position - served.head * 0.25) < served.head * 0.05  # where it was clicked
    expected = oracle(served.store, position)
    assert expected != at_head
    assert wait_for_table(page, expected) == expected

    # the step button moves one event back, and the table follows
    page.locator(".allframe-dashboard-back button").click()
    deadline = time.monotonic() + 30
    while shown_position(page) == position and time.monotonic() < deadline:
        time.sleep(0.1)
    assert shown_position(page) == position - 1
    expected = oracle(served.store, position - 1)
    assert wait_for_table(page, expected) == expected
