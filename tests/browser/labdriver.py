"""Drive the lessons in a real JupyterLab with headless Chromium (PyPI ``playwright``, sync API).

Used by the browser tests (``tests/browser/test_lessons_browser.py``) and by the latency
benchmark (``benchmarks/widget_latency.py``)::

    with JupyterLab() as lab, Browser() as browser:
        page = browser.open_notebook(lab, "01_continuous_lti.ipynb")
        run_all_cells(page)                    # -> list of error outputs (empty when fine)
        for explorer in find_explorers(page):  # every explorer: sliders + an ipympl canvas
            for slider in explorer.sliders:
                ms = move_slider(page, explorer, slider)   # keypress -> redraw latency

JupyterLab serves a *copy* of ``lessons/`` (so nothing the browser does is ever saved into the
repository) in a folder whose other entries link back to the repository. Lessons read nothing
outside their folder (recorded results are package data), as from a wheel install.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# JupyterLab user settings for an unattended session: never save, render every cell, no news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def lessons_dir() -> Path:
    """The lesson folder (``$MAMBA_EDU_LESSONS`` or the repository's ``lessons/``)."""
    env = os.environ.get("MAMBA_EDU_LESSONS")
    return Path(env) if env else ROOT / "lessons"


def lesson_paths() -> list[Path]:
    return sorted(lessons_dir().glob("*.ipynb"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 (free port, random token) serving a copy of the lessons.

    Use as a context manager; ``url(path)`` gives an authenticated URL.
    """

    def __init__(self, lessons: Path | None = None, startup_timeout: float = 90.0):
        self.lessons = Path(lessons) if lessons else lessons_dir()
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(16)
        self.port = _free_port()
        self.proc = None
        self._tmp = None

    # -- the served tree ------------------------------------------------------------------
    def _prepare_tree(self) -> Path:
        self._tmp = Path(tempfile.mkdtemp(prefix="mamba_edu_lab_"))
        root = self._tmp / "root"
        root.mkdir()
        for entry in ROOT.iterdir():  # link the repository's other folders (data, benchmarks ...)
            if entry.name not in {"lessons", ".git", ".venv"}:
                (root / entry.name).symlink_to(entry)
        (root / "lessons").mkdir()
        for path in self.lessons.iterdir():
            if path.suffix == ".ipynb":
                nb = nbformat.read(path, as_version=4)
                nb.metadata.setdefault("kernelspec", dict(KERNELSPEC))  # no kernel-picker dialog
                nbformat.write(nb, root / "lessons" / path.name)
            elif not path.name.startswith("."):
                (root / "lessons" / path.name).symlink_to(path.resolve())
        settings = self._tmp / "settings"
        for rel, value in LAB_SETTINGS.items():
            target = settings / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(value))
        (self._tmp / "workspaces").mkdir()
        return root

    def command(self, root: Path) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            f"--LabApp.user_settings_dir={self._tmp / 'settings'}",
            f"--LabApp.workspaces_dir={self._tmp / 'workspaces'}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        return cmd

    def url(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def start(self) -> JupyterLab:
        root = self._prepare_tree()
        env = dict(os.environ, JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
        self.log = open(self._tmp / "jupyterlab.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            self.command(root), cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {self.startup_timeout} s")

    def log_text(self) -> str:
        return (self._tmp / "jupyterlab.log").read_text() if self._tmp else ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: Jupyter shuts its kernels down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "log", None):
            self.log.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# JavaScript run in the page ----------------------------------------------------------------
# Every drawImage on a canvas is time-stamped: ipympl paints each new frame with drawImage.
INIT_JS = """
(() => {
  window.__mtest = {draws: [], keydown: null};
  const orig = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (...args) {
    const out = orig.apply(this, args);
    window.__mtest.draws.push({t: performance.now(), canvas: this.canvas});
    return out;
  };
  document.addEventListener('keydown', () => { window.__mtest.keydown = performance.now(); }, true);
})();
"""

WAIT_READY_JS = """
async () => {
  const deadline = Date.now() + 120000;
  while (!(window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget
           && window.jupyterapp.shell.currentWidget.sessionContext)) {
    if (Date.now() > deadline) throw new Error('JupyterLab did not open the notebook');
    await new Promise(r => setTimeout(r, 200));
  }
  const panel = window.jupyterapp.shell.currentWidget;
  window.jupyterapp.shell.collapseLeft();   // the notebook gets the whole width
  window.jupyterapp.shell.collapseRight();
  await panel.context.ready;
  await panel.sessionContext.ready;
  while (!panel.sessionContext.session || !panel.sessionContext.session.kernel
         || panel.sessionContext.session.kernel.connectionStatus !== 'connected'
         || panel.sessionContext.session.kernel.status !== 'idle') {
    if (Date.now() > deadline) throw new Error('the kernel did not start');
    await new Promise(r => setTimeout(r, 200));
  }
  return true;
}
"""

RUN_ALL_JS = """
async (timeoutMs) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const deadline = Date.now() + timeoutMs;
  const timeout = new Promise((_, reject) => setTimeout(
    () => reject(new Error(`Run All did not finish within ${timeoutMs / 1000} s`)), timeoutMs));
  const ok = await Promise.race([app.commands.execute('notebook:run-all-cells'), timeout]);
  const kernel = panel.sessionContext.session.kernel;
  while (kernel.status !== 'idle') {
    if (Date.now() > deadline) throw new Error('the kernel stayed busy after Run All');
    await new Promise(r => setTimeout(r, 100));
  }
  const errors = [];
  let notRun = 0;
  const cells = panel.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') continue;
    if (cell.sharedModel.getSource().trim() && cell.executionCount === null) notRun += 1;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error')
        errors.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
    }
  }
  return {ok: ok !== false, errors, notRun};
}
"""

# Tag every explorer (the smallest widget box holding both sliders and an ipympl figure)
# and its sliders with data attributes, so Python can address them with locators.
TAG_EXPLORERS_JS = """
() => {
  const app = window.jupyterapp;  // JupyterLab; a Voila page has no app: search the whole page
  const root = app && app.shell.currentWidget ? app.shell.currentWidget.node : document.body;
  const sliders = Array.from(root.querySelectorAll('.widget-slider'))
    .filter(s => s.querySelector('.noUi-handle'));
  const boxes = [];
  for (const slider of sliders) {
    let box = slider.parentElement;
    const isExplorer = b => b.classList.contains('widget-box')
      && b.querySelector('.jupyter-matplotlib canvas');
    while (box && box !== root && !isExplorer(box)) box = box.parentElement;
    if (!box || box === root) continue;
    let k = boxes.indexOf(box);
    if (k < 0) {
      boxes.push(box);
      k = boxes.length - 1;
      box.dataset.mtestExplorer = String(k);
      box.__sliders = [];
    }
    slider.dataset.mtestSlider = `${k}-${box.__sliders.length}`;
    box.__sliders.push(slider);
  }
  return boxes.map((box, k) => ({
    index: k,
    sliders: box.__sliders.map(s => {
      const label = s.querySelector('.widget-label');
      const handle = s.querySelector('.noUi-handle');
      return {id: s.dataset.mtestSlider,
              label: label ? label.textContent.trim() : '',
              disabled: handle.hasAttribute('disabled') || s.classList.contains('mod-disabled')};
    }),
  }));
}
"""

CANVAS_STATE_JS = """
(k) => {
  const box = document.querySelector(`[data-mtest-explorer="${k}"]`);
  const canvases = Array.from(box.querySelectorAll('.jupyter-matplotlib canvas')).filter(c => c.width > 0);
  let hash = 2166136261 >>> 0;
  for (const c of canvases) {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < data.length; i += 4) {
      hash ^= (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16));
      hash = Math.imul(hash, 16777619) >>> 0;
    }
  }
  return {hash, draws: window.__mtest.draws.length, canvases: canvases.length};
}
"""

# Resolve when the explorer's canvases show different pixels than `before`; the latency is the
# time from the keydown to the drawImage that produced the new pixels.
WAIT_REDRAW_JS = """
async ([k, before, timeoutMs]) => {
  const box = document.querySelector(`[data-mtest-explorer="${k}"]`);
  const canvases = new Set(box.querySelectorAll('.jupyter-matplotlib canvas'));
  const t0 = performance.now();
  const hashOf = () => {
    let hash = 2166136261 >>> 0;
    for (const c of canvases) {
      if (!c.width) continue;
      const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < data.length; i += 4) {
        hash ^= (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16));
        hash = Math.imul(hash, 16777619) >>> 0;
      }
    }
    return hash;
  };
  let seen = before.draws;
  while (performance.now() - t0 < timeoutMs) {
    const draws = window.__mtest.draws;
    let last = null;
    for (let i = seen; i < draws.length; i++)
      if (canvases.has(draws[i].canvas)) last = draws[i].t;
    seen = draws.length;
    if (last !== null && hashOf() !== before.hash)
      return {changed: true, latency: last - window.__mtest.keydown};
    await new Promise(r => requestAnimationFrame(r));
  }
  return {changed: false, latency: null};
}
"""


@dataclass
class Explorer:
    index: int
    sliders: list[dict] = field(default_factory=list)


class Browser:
    """Headless Chromium from ``/usr/bin/chromium`` (never downloaded by playwright)."""

    def __init__(self, viewport=(1600, 1000)):
        self.viewport = viewport

    def __enter__(self):
        from playwright.sync_api import sync_playwright  # optional dependency: imported lazily

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        return self

    def __exit__(self, *exc):
        self.browser.close()
        self._pw.stop()

    def open_notebook(self, lab: JupyterLab, name: str, timeout_ms: float = 120_000):
        """A new page with lesson ``name`` open in a fresh workspace and its kernel idle."""
        width, height = self.viewport
        page = self.browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(timeout_ms)
        page.add_init_script(INIT_JS)
        workspace = "w" + secrets.token_hex(4)
        page.goto(lab.url(f"lab/workspaces/{workspace}/tree/lessons/{name}"))
        page.evaluate(WAIT_READY_JS)
        return page


    def open_url(self, url: str, timeout_ms: float = 120_000):
        """A new page at ``url`` (e.g. a Voila app) with the redraw timing hooks installed."""
        width, height = self.viewport
        page = self.browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(timeout_ms)
        page.add_init_script(INIT_JS)
        page.goto(url)
        return page


def run_all_cells(page, timeout_s: float = 600) -> dict:
    """Run every cell (JupyterLab's *Run All*); return ``{ok, errors, notRun}``."""
    return page.evaluate(RUN_ALL_JS, 1000 * timeout_s)


def close_notebook(page):
    """Shut the notebook's kernel down and close the page."""
    try:
        page.evaluate("async () => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
    finally:
        page.close()


def find_explorers(page, stable_ms: float = 1500, timeout_ms: float = 30_000) -> list[Explorer]:
    """Every rendered explorer (a widget box with sliders and an ipympl canvas) in the page.

    Widget views render just after the kernel goes idle, so the page is searched until the
    explorers and their sliders have stayed the same for ``stable_ms``.
    """
    found, since, start = None, 0.0, time.monotonic()
    while True:
        now = page.evaluate(TAG_EXPLORERS_JS)
        key = [len(e["sliders"]) for e in now]
        if key != found:
            found, since = key, time.monotonic()
        elif time.monotonic() - since >= stable_ms / 1000 or time.monotonic() - start > timeout_ms / 1000:
            return [Explorer(e["index"], e["sliders"]) for e in now]
        page.wait_for_timeout(250)


def explorer_locator(page, explorer: Explorer):
    return page.locator(f'[data-mtest-explorer="{explorer.index}"]')


# Painted = a canvas shows more than one colour, and nothing was drawn on it for `quietMs`.
PAINTED_JS = """
([k, quietMs]) => {
  const box = document.querySelector(`[data-mtest-explorer="${k}"]`);
  const now = performance.now();
  return Array.from(box.querySelectorAll('.jupyter-matplotlib canvas')).some(c => {
    if (!c.width || !c.height) return false;
    const draws = window.__mtest.draws.filter(d => d.canvas === c);
    if (!draws.length || now - draws[draws.length - 1].t < quietMs) return false;
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 4; i < data.length; i += 4)
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) return true;
    return false;
  });
}
"""


def wait_for_canvases(page, explorer: Explorer, timeout_ms: float = 60_000, quiet_ms: float = 400):
    """Wait until the explorer's ipympl figure shows a painted image and has stopped redrawing."""
    page.wait_for_function(PAINTED_JS, arg=[explorer.index, quiet_ms], timeout=timeout_ms, polling=100)


def move_slider(page, explorer: Explorer, slider: dict, key: str = "PageUp", timeout_ms: float = 30_000):
    """Press ``key`` on the slider's handle (the opposite key if the value did not move).

    Returns ``{"moved", "changed", "latency_ms", "value_before", "value_after"}``: whether the
    slider's value moved, whether the explorer's canvas pixels changed, and the time from the
    keydown to the drawImage that painted the new pixels.
    """
    handle = page.locator(f'[data-mtest-slider="{slider["id"]}"] .noUi-handle').first
    handle.scroll_into_view_if_needed()
    handle.focus()

    def value():  # aria-valuetext has the full value; aria-valuenow is rounded to one decimal
        return handle.get_attribute("aria-valuetext") or handle.get_attribute("aria-valuenow")

    value_before = value()
    result = {"moved": False, "changed": False, "latency_ms": None, "value_before": value_before}
    opposite = {"PageUp": "PageDown", "PageDown": "PageUp", "ArrowUp": "ArrowDown", "ArrowDown": "ArrowUp"}
    for k in (key, opposite.get(key, key)):
        before = page.evaluate(CANVAS_STATE_JS, explorer.index)
        page.keyboard.press(k)
        value_after = value()
        if value_after == value_before:
            continue  # at the end of its range: try the other direction
        result.update(moved=True, value_after=value_after)
        out = page.evaluate(WAIT_REDRAW_JS, [explorer.index, before, timeout_ms])
        result.update(changed=out["changed"], latency_ms=out["latency"])
        break
    return result


def screenshot_explorer(page, explorer: Explorer, path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    explorer_locator(page, explorer).screenshot(path=str(path), animations="disabled")


def operate_predictions(page, timeout_ms: float = 30_000) -> list[dict]:
    """Answer every ``predict(...)`` prompt in the page the way a learner does, and commit it.

    Clicks the first choice (or types 1 into a number prompt), presses **Commit**, and waits for the
    verdict. Returns one ``{"index", "verdict", "locked"}`` per prompt: the verdict's text and
    whether the Commit button is disabled afterwards (a commit is final).
    """
    boxes = page.locator(".mamba-predict")
    results = []
    for i in range(boxes.count()):
        box = boxes.nth(i)
        box.scroll_into_view_if_needed()
        choices = box.locator(".mamba-predict-entry button")
        commit = box.locator("button.mamba-predict-commit")
        verdict = box.locator(".mamba-predict-verdict")
        for _ in range(3):  # a click that lands before the widget view is wired up is lost: answer again
            if choices.count():
                choices.first.click()
                # the choice reached the widget's model (ipywidgets marks the selected toggle mod-active); its
                # update then goes to the kernel before the Commit click's message
                box.locator(".mamba-predict-entry button.mod-active").first.wait_for(timeout=timeout_ms)
            else:
                entry = box.locator(".mamba-predict-entry input")
                entry.fill("1")
                entry.press("Enter")
            commit.click()
            verdict.filter(has_text=re.compile("Correct|Not yet|Pick an answer")).wait_for(timeout=timeout_ms)
            if "Pick an answer" not in verdict.inner_text():
                break
        results.append({"index": i, "verdict": verdict.inner_text(), "locked": commit.is_disabled()})
    return results
