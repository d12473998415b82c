"""Helpers of the browser tests: a JupyterLab server process and a page driver.

The fixtures in ``conftest.py`` build on these; tests normally use the fixtures, and may import
:func:`write_notebook`, :func:`execute_notebook` and :data:`OUTPUT` from here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Debian's chromium; never ``playwright install``.
CHROMIUM = "/usr/bin/chromium"
#: Launch flags measured on this machine (shared/notes/jupyterlab-extension.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Selector of rendered outputs (``body.innerText`` would include the cells' source code).
OUTPUT = ".jp-OutputArea-output"
#: Where failure screenshots and server logs go (git-ignored, never committed).
ARTIFACTS = Path(__file__).resolve().parents[2] / ".browser-artifacts"
#: Plugins of the project's extension, as JupyterLab registers them.
SIDEBAR_PLUGIN = "allframe-lab-ext:sidebar"
RENDERERS_PLUGIN = "allframe-lab-ext:renderers"
EXTENSION_NAME = "allframe-lab-ext"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def code_cell(source: str) -> Any:
    import nbformat

    return nbformat.v4.new_code_cell(source)


def write_notebook(path: Path, cells: Iterable[str], *, kernel: str = "python3") -> Path:
    """Write a notebook of code cells (sources as strings) to ``path`` and return it."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def execute_notebook(path: Path, *, env: Mapping[str, str] | None = None,
                     timeout: int = 180) -> Any:
    """Run a notebook with nbclient (in a subprocess, away from playwright's event loop).

    The outputs are saved into the file, as a user's "run all, save" would; returns the
    executed notebook (nbformat node). Raises ``AssertionError`` with the log if it fails.
    """
    import nbformat

    code = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=int(sys.argv[2]), kernel_name='python3',\n"
        "               resources={'metadata': {'path': sys.argv[3]}}).execute()\n"
        "nbformat.write(nb, sys.argv[1])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), str(timeout), str(path.parent)],
        capture_output=True, text=True, timeout=timeout + 60,
        env=dict(env) if env is not None else None,
    )
    assert proc.returncode == 0, f"nbclient failed on {path}:\n{proc.stderr[-4000:]}"
    return nbformat.read(path, as_version=4)


@dataclass
class LabServer:
    """A running ``jupyter lab`` (see the ``jupyter_lab`` fixture)."""

    url: str
    root: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    notebooks: list[Path] = field(default_factory=list)

    def get(self, path: str) -> Any:
        """GET a server REST path (``/api/...``, ``/lab/api/...``) and decode its JSON."""
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        """Shut the server (and its kernels) down; kill it if it does not exit."""
        if self.process.poll() is not None:
            return
        try:
            request = urllib.request.Request(self.url + "/api/shutdown", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        except (urllib.error.URLError, OSError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def lab_environment(base: Path) -> dict[str, str]:
    """Environment of an isolated server: own config, runtime, data and IPython dirs.

    The project's labextension stays discoverable: it is installed in the venv's
    ``share/jupyter/labextensions`` (``sys.prefix``), which JupyterLab searches whatever
    ``JUPYTER_DATA_DIR`` says; the user-level data dir (which would take precedence) is
    replaced by an empty one, so a stale user copy cannot shadow it.
    """
    env = dict(os.environ)
    for name in ("config", "runtime", "data", "ipython"):
        (base / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_DATA_DIR=str(base / "data"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    # The venv's bin first, so kernels and `jupyter` subcommands are the venv's.
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    # No news/update toasts: they need the network and can cover elements.
    labconfig = base / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    return env


def start_lab(root: Path, base: Path, *, timeout: float = 90.0) -> LabServer:
    """Start ``jupyter lab`` on a free 127.0.0.1 port and wait until it answers."""
    env = lab_environment(base)
    ARTIFACTS.mkdir(exist_ok=True)
    log = base / "jupyter-lab.log"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                 "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
                 "--ServerApp.token=", "--ServerApp.password=",
                 "--ServerApp.disable_check_xsrf=True", "--allow-root",
                 f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"],
                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
            )
        server = LabServer(f"http://127.0.0.1:{port}", root, env, process, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and process.poll() is None:
            try:
                server.get("/api/status")
                return server
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last_error = str(exc)
                time.sleep(0.25)
        server.stop()
        shutil.copy(log, ARTIFACTS / "jupyter-lab.log")
    raise RuntimeError(f"jupyter lab did not start ({last_error}); log:\n{server.log_tail()}")


class LabPage:
    """Drive one JupyterLab page (see the ``lab`` fixture).

    Attributes
    ----------
    page : playwright.sync_api.Page
    server : LabServer
    console_errors : list of str
        ``console.error`` messages and uncaught page errors seen so far.
    """

    def __init__(self, page: Any, server: LabServer) -> None:
        self.page = page
        self.server = server
        self.console_errors: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text)
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.console_errors.append(f"pageerror: {e}"))

    # -- notebooks --------------------------------------------------------------------------
    def write_notebook(self, name: str, cells: Iterable[str]) -> Path:
        """Write a notebook into the server's root directory."""
        path = write_notebook(self.server.root / name, cells)
        self.server.notebooks.append(path)
        return path

    def execute_notebook(self, name: str, *, timeout: int = 180) -> Any:
        """Run a notebook of the root directory with nbclient and save its outputs."""
        return execute_notebook(self.server.root / name, env=self.server.env, timeout=timeout)

    def open(self, name: str, *, timeout: float = 90_000) -> None:
        """Open ``name`` with ``?reset`` and wait until its kernel is idle.

        Ready means: the current widget is this notebook, its cells are there and its kernel
        reports ``idle``; running cells earlier skips cells (measured).
        """
        self.page.goto(f"{self.server.url}/lab/tree/{name}?reset")
        self.page.wait_for_function(
            """(name) => {
                const app = window.jupyterapp;
                const w = app && app.shell.currentWidget;
                const kernel = w && w.sessionContext && w.sessionContext.session
                    && w.sessionContext.session.kernel;
                return !!(w && w.title.label === name && w.content && w.content.widgets
                    && w.content.widgets.length > 0 && kernel && kernel.status === 'idle');
            }""",
            arg=Path(name).name, timeout=timeout, polling=200,
        )

    def run_all(self, *, timeout_ms: int = 120_000) -> None:
        """Run every cell of the current notebook, with a watchdog, and wait for idle."""
        self.command("notebook:run-all-cells", timeout_ms=timeout_ms)
        self.wait_idle(timeout_ms=timeout_ms)

    def wait_idle(self, *, timeout_ms: int = 60_000) -> None:
        """Wait until the current notebook's kernel is idle and no cell is queued."""
        self.page.wait_for_function(
            """() => {
                const w = window.jupyterapp.shell.currentWidget;
                const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
                const pending = w.content.widgets.some(c => c.promptNode
                    && c.promptNode.textContent.includes('*'));
                return kernel && kernel.status === 'idle' && !pending;
            }""",
            timeout=timeout_ms, polling=200,
        )

    def save(self) -> None:
        self.command("docmanager:save")

    def command(self, command: str, args: Mapping[str, Any] | None = None, *,
                timeout_ms: int = 60_000) -> Any:
        """Execute a JupyterLab command; fails after ``timeout_ms`` instead of hanging."""
        return self.page.evaluate(
            """([command, args, ms]) => Promise.race([
                window.jupyterapp.commands.execute(command, args).then(() => null),
                new Promise((_, reject) => setTimeout(
                    () => reject(new Error('watchdog: ' + command + ' took over ' + ms + ' ms')),
                    ms)),
            ])""",
            [command, dict(args or {}), timeout_ms],
        )

    # -- outputs ----------------------------------------------------------------------------
    def current_id(self) -> str:
        return str(self.page.evaluate("() => window.jupyterapp.shell.currentWidget.id"))

    def outputs(self, selector: str = "") -> Any:
        """Locator of rendered outputs of the current notebook (optionally a selector inside)."""
        scope = f"[id='{self.current_id()}'] {OUTPUT}"
        return self.page.locator(f"{scope} {selector}" if selector else scope)

    def error_outputs(self) -> list[str]:
        """Texts of error outputs (tracebacks) of the current notebook."""
        scope = f"[id='{self.current_id()}']"
        loc = self.page.locator(
            f"{scope} {OUTPUT}[data-mime-type='application/vnd.jupyter.stderr'], "
            f"{scope} .jp-OutputArea-output.jp-RenderedText[data-mime-type*='error']")
        return [loc.nth(i).inner_text() for i in range(loc.count())]

    # -- sidebar and plugins ----------------------------------------------------------------
    def show_sidebar(self, panel_id: str = "allframe-sidebar") -> Any:
        """Activate a left-area panel by id and return its locator."""
        self.page.evaluate("(id) => window.jupyterapp.shell.activateById(id)", panel_id)
        loc = self.page.locator(f"#{panel_id}")
        loc.wait_for(state="visible")
        return loc

    def plugin_state(self, plugin_id: str) -> dict[str, bool]:
        """``{"registered": ..., "activated": ...}`` of a frontend plugin."""
        return dict(self.page.evaluate(
            """(id) => ({registered: window.jupyterapp.hasPlugin(id),
                         activated: window.jupyterapp.isPluginActivated(id)})""", plugin_id))

    def page_config(self) -> dict[str, Any]:
        """JupyterLab's page config (federated extensions loaded, disabled ones, ...)."""
        return dict(self.page.evaluate(
            "() => JSON.parse(document.getElementById('jupyter-config-data').textContent)"))

    def screenshot(self, name: str) -> Path:
        """Save a screenshot under the git-ignored ``.browser-artifacts/``."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path
