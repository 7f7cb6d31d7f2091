"""``mamba-edu app LESSON``: the Voila page of a lesson's explorers works in Chromium.

The first lesson that creates an explorer is served the way ``mamba-edu app`` serves it (the same
generated notebook, the same Voila command line); its sliders must redraw the figure.
"""

import importlib.util
import secrets
import socket
import subprocess
import time

import nbformat
import pytest
from labdriver import Browser, _free_port, find_explorers, lesson_paths, move_slider, wait_for_canvases

from mamba_edu import cli


def _first_lesson_with_explorer():
    for path in lesson_paths():
        try:
            return path, cli.app_notebook(path)
        except ValueError:
            continue
    return None, None


@pytest.mark.slow
@pytest.mark.browser
def test_app_serves_working_explorers(tmp_path):
    assert importlib.util.find_spec("voila"), "Voila is not installed: pip install -e '.[app]'"
    lesson, nb = _first_lesson_with_explorer()
    if lesson is None:
        pytest.skip("no lesson creates an explorer yet")
    path = tmp_path / f"{lesson.stem}_explorers.ipynb"
    nbformat.write(nb, path)
    port, token = _free_port(), secrets.token_hex(8)
    cmd = cli.voila_command(path, port=port, no_browser=True, token=token)
    log = open(tmp_path / "voila.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/?token={token}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "voila.log").read_text()
            try:  # Voila serves no /api/status: wait until its port accepts connections
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "Voila did not start"
                time.sleep(0.3)
        with Browser() as browser:
            page = browser.open_url(url)
            page.wait_for_selector(".jupyter-matplotlib canvas", timeout=120_000)
            explorers = find_explorers(page)
            assert explorers, "the Voila page shows no explorer"
            explorer = explorers[0]
            wait_for_canvases(page, explorer)
            assert "Traceback" not in page.inner_text("body")
            moved = move_slider(page, explorer, explorer.sliders[0])
            assert moved["moved"] and moved["changed"], moved
            page.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
