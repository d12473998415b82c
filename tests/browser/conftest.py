"""Fixtures of the browser tests: JupyterLab in Debian's headless chromium via playwright.

Every test under ``tests/browser`` is marked ``browser`` (``-m browser`` / ``-m "not browser"``).
Chromium must be at ``/usr/bin/chromium`` (``make test`` installs it from Debian); without it
the tests FAIL, they do not skip. Never run ``playwright install``.

Fixtures
--------
jupyter_lab : LabServer (session)
    A ``jupyter lab`` on a free 127.0.0.1 port: no token or password, ``--allow-root``,
    ``--LabApp.expose_app_in_browser=True`` (``window.jupyterapp``), isolated
    ``JUPYTER_CONFIG_DIR``/``JUPYTER_RUNTIME_DIR``/``JUPYTER_DATA_DIR``/``IPYTHONDIR`` (the
    venv's labextensions stay visible), news toasts disabled. ``.url``, ``.root`` (its root
    directory, a tmp dir: notebooks go there), ``.env`` (use it for subprocesses that must
    see the same Jupyter dirs), ``.get(path)`` (REST JSON). Shut down in teardown.
lab_root : Path (session)
    ``jupyter_lab.root``.
browser : playwright Browser (session)
    ``/usr/bin/chromium`` launched with the flags of the measured recipe (``_lab.CHROMIUM_ARGS``).
page : playwright Page (function)
    A page in a fresh browser context (1400x900); closed after the test. When the test fails,
    a screenshot goes to ``.browser-artifacts/<test name>.png`` (git-ignored).
lab : LabPage (function)
    The driver most tests want, around ``page``:

    - ``lab.write_notebook(name, [source, ...])`` writes a notebook into the root dir;
    - ``lab.execute_notebook(name)`` runs it with nbclient (subprocess) and saves outputs;
    - ``lab.open(name)`` opens ``/lab/tree/<name>?reset`` and waits until the notebook's cells
      are there and its kernel is idle (running cells before that skips cells);
    - ``lab.run_all()`` runs all cells through ``notebook:run-all-cells`` with a watchdog,
      then waits for idle; ``lab.command(id, args)`` runs any JupyterLab command likewise;
    - ``lab.outputs(selector)`` is a locator scoped to ``.jp-OutputArea-output`` of the
      CURRENT notebook (never ``body.innerText``: it includes cell sources);
    - ``lab.error_outputs()`` lists traceback/stderr output texts (assert it is empty);
    - ``lab.show_sidebar(id)``, ``lab.plugin_state(id)``, ``lab.page_config()``,
      ``lab.screenshot(name)``, ``lab.console_errors``.

Example::

    @pytest.mark.browser
    def test_something(lab):
        lab.write_notebook("t.ipynb", ["from allframe_lab import Model", "Model('m')"])
        lab.open("t.ipynb")
        lab.run_all()
        assert lab.error_outputs() == []
        expect(lab.outputs(".my-widget")).to_have_count(1)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser._lab import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    LabPage,
    LabServer,
    start_lab,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``browser``."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    base = tmp_path_factory.mktemp("jupyter")
    root = tmp_path_factory.mktemp("lab-root")
    server = start_lab(root, base)
    try:
        yield server
    finally:
        server.stop()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "jupyter-lab.log").write_text(server.log_tail(200_000))


@pytest.fixture(scope="session")
def lab_root(jupyter_lab: LabServer) -> Path:
    return jupyter_lab.root


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's chromium. `make test` "
            "installs it (apt-get install -y chromium); do not use `playwright install`.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        if request.node.stash.get(_FAILED, False):
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            except Exception:  # the page may be gone; the failure itself is what matters
                pass
        context.close()


@pytest.fixture
def lab(page: Any, jupyter_lab: LabServer) -> LabPage:
    return LabPage(page, jupyter_lab)
