"""Every lesson in a real JupyterLab, driven by headless Chromium.

For each ``lessons/*.ipynb``: open it, run all cells, require no error output; answer and commit
every ``predict(...)`` prompt (at least three per lesson) and require a verdict and a locked Commit
button; find every explorer (ipywidgets sliders with an ipympl figure), press a key on each slider's handle and
require the figure's pixels to change, recording the keypress-to-redraw latency; save a
screenshot of each explorer to ``docs/images/<stem>_explorer.png`` (``_explorer_2.png`` ...).
"""

import re

import nbformat
import pytest
from labdriver import (
    ROOT,
    close_notebook,
    find_explorers,
    lesson_paths,
    move_slider,
    operate_predictions,
    run_all_cells,
    screenshot_explorer,
    wait_for_canvases,
)

LESSONS = lesson_paths()
IMAGES = ROOT / "docs" / "images"
EXPLORER_CALL = re.compile(r"\b\w+_explorer\s*\(")
PREDICT_CALL = re.compile(r"^predict\(", flags=re.M)


def screenshot_path(stem: str, k: int, folder=IMAGES):
    return folder / (f"{stem}_explorer.png" if k == 0 else f"{stem}_explorer_{k + 1}.png")


def _predictions(path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum(len(PREDICT_CALL.findall(c.source)) for c in nb.cells if c.cell_type == "code")


def _creates_explorer(path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and EXPLORER_CALL.search(c.source) for c in nb.cells)


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_in_jupyterlab(path, jupyter_lab, chromium, latency_log, record_property, tmp_path):
    # the course's own lessons illustrate the docs; other folders ($MAMBA_EDU_LESSONS) don't
    images = IMAGES if path.parent.resolve() == (ROOT / "lessons").resolve() else tmp_path
    page = chromium.open_notebook(jupyter_lab, path.name)
    try:
        result = run_all_cells(page)
        assert result["ok"] and not result["errors"], f"{path.name}: errors {result['errors']}"
        assert result["notRun"] == 0, f"{path.name}: {result['notRun']} code cells did not run"

        answered = operate_predictions(page)
        expected = _predictions(path)
        assert len(answered) == expected, f"{path.name}: {expected} predict() prompts, {len(answered)} rendered"
        for p in answered:
            assert p["locked"], f"{path.name}, prediction {p['index']}: Commit stayed enabled ({p['verdict']!r})"
            assert "The answer" in p["verdict"], f"{path.name}, prediction {p['index']}: {p['verdict']!r}"
        record_property("predictions", len(answered))

        explorers = find_explorers(page)
        if _creates_explorer(path):
            assert explorers, f"{path.name} creates an explorer but none rendered in JupyterLab"
        latencies = []
        for explorer in explorers:
            assert explorer.sliders, f"explorer {explorer.index} of {path.name} has no slider"
            wait_for_canvases(page, explorer)
            screenshot_explorer(page, explorer, screenshot_path(path.stem, explorer.index, images))
            for slider in explorer.sliders:
                if slider["disabled"]:
                    continue
                moved = move_slider(page, explorer, slider)
                where = f"{path.name}, explorer {explorer.index}, slider {slider['label']!r}"
                assert moved["moved"], f"{where}: the keyboard did not move the slider"
                assert moved["changed"], f"{where}: the figure did not change ({moved})"
                latencies.append(moved["latency_ms"])
        latency_log[path.stem] = latencies
        record_property("latency_ms", latencies)
    finally:
        close_notebook(page)
