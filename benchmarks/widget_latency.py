"""Keypress-to-redraw latency of every lesson's explorers, in a real JupyterLab (headless Chromium).

Reproduce (2-core machine; other load on it inflates the numbers)::

    .venv/bin/python benchmarks/widget_latency.py              # all lessons, 6 moves per slider
    .venv/bin/python benchmarks/widget_latency.py --moves 2 --lessons 01 03

For each lesson the script starts JupyterLab on 127.0.0.1 (a copy of ``lessons/``), runs all
cells, then presses PageUp/PageDown on the handle of every slider of every explorer, ``--moves``
times each, and measures in the page the time from the keydown to the ``drawImage`` that
painted the changed figure (the full round trip: widget sync -> kernel update -> Agg render ->
PNG to the browser -> canvas). It prints median and p90 per lesson (target: median <= 100 ms)
and writes ``benchmarks/results/widget_latency.json``. This is a benchmark, not a test: it
asserts nothing about time (``tests/browser`` asserts that every slider redraws its figure).

Two references help read the numbers: a one-line baseline explorer measured the same way (the floor
of the pipeline on this machine, under its current load), and each explorer's in-process Agg draw
time, with its layout engine and with the layout frozen (``--no-baseline`` skips the former).
"""

import argparse
import contextlib
import datetime
import io
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT))
import numpy as np  # noqa: E402
from labdriver import (  # noqa: E402
    Browser,
    JupyterLab,
    close_notebook,
    find_explorers,
    lesson_paths,
    move_slider,
    run_all_cells,
    wait_for_canvases,
)

from benchmarks.common import machine_info, write_json  # noqa: E402

TARGET_MS = 100.0

# A one-line explorer: the floor of the pipeline (widget sync, kernel, Agg, PNG, canvas) here.
BASELINE_CELL = """import numpy as np, ipywidgets as W
from mamba_edu.widgets.base import Explorer, live_figure
t = np.linspace(0, 10, 200)
fig = live_figure(figsize=(6, 2.5))
ax = fig.add_subplot(111)
(line,) = ax.plot(t, np.sin(t))
ax.set_ylim(-2.5, 2.5)
fig.mamba_artists = {"line": line}
def update(fig, a):
    fig.mamba_artists["line"].set_ydata(a * np.sin(t))
Explorer({"a": W.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description="a")}, fig, update)"""


def baseline_lesson(folder: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%matplotlib widget"),
                                         nbformat.v4.new_code_cell(BASELINE_CELL)])
    path = folder / "00_baseline_one_line.ipynb"
    nbformat.write(nb, path)
    return path


def agg_draw_ms(lesson: Path, repeat: int = 5) -> dict:
    """In-process Agg draw time (ms) of each explorer the lesson creates, built with its defaults.

    ``draw_ms`` with the figure's layout engine (constrained layout is re-solved at every draw),
    ``draw_frozen_layout_ms`` after ``fig.set_layout_engine("none")``: what freezing the layout
    after the first draw would save.
    """
    import re

    import matplotlib
    import nbformat

    matplotlib.use("Agg")
    from mamba_edu import widgets

    source = "\n".join(c.source for c in nbformat.read(lesson, as_version=4).cells if c.cell_type == "code")
    out = {}
    for name in widgets.__all__:
        if not re.search(rf"\b{name}\s*\(", source):
            continue
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the Agg fallback displays a PNG
                fig = getattr(widgets, name)().fig
        except Exception as exc:  # an explorer that needs arguments: report, don't guess
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue

        def median_draw(fig=fig):
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                fig.canvas.draw()
                times.append(1e3 * (time.perf_counter() - start))
            return float(np.median(times))

        fig.canvas.draw()
        with_engine = median_draw()
        fig.set_layout_engine("none")
        out[name] = {"draw_ms": with_engine, "draw_frozen_layout_ms": median_draw(),
                     "size_px": [int(v) for v in fig.get_size_inches() * fig.dpi]}
    return out


def measure_lesson(lab, browser, path, moves):
    """Latencies (ms) per slider of every explorer of one lesson: {"explorer k / label": [...]}."""
    page = browser.open_notebook(lab, path.name)
    try:
        result = run_all_cells(page)
        if result["errors"]:
            raise RuntimeError(f"{path.name} raised errors in JupyterLab: {result['errors']}")
        per_slider = {}
        for explorer in find_explorers(page):
            wait_for_canvases(page, explorer)
            for slider in explorer.sliders:
                if slider["disabled"]:
                    continue
                values = []
                for i in range(moves):
                    out = move_slider(page, explorer, slider, key="PageUp" if i % 2 == 0 else "PageDown")
                    if out["changed"]:
                        values.append(out["latency_ms"])
                per_slider[f"explorer {explorer.index} / {slider['label'] or slider['id']}"] = values
        return per_slider
    finally:
        close_notebook(page)


def summarise(values):
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return {"moves": 0, "median_ms": None, "p90_ms": None, "max_ms": None}
    return {
        "moves": int(v.size),
        "median_ms": float(np.median(v)),
        "p90_ms": float(np.percentile(v, 90)),
        "max_ms": float(v.max()),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=6, help="keypresses per slider (default 6)")
    parser.add_argument("--lessons", nargs="*", default=None, help="lesson name prefixes (default: all)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the one-line baseline explorer")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "widget_latency.json"))
    cli_args = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(cli_args)

    paths = [p for p in lesson_paths() if not args.lessons or any(p.stem.startswith(s) for s in args.lessons)]
    if not paths:
        parser.error("no lesson notebooks matched")
    lessons = {}
    with Browser() as browser:
        if not args.no_baseline:
            with tempfile.TemporaryDirectory() as tmp:
                baseline = baseline_lesson(Path(tmp))  # written before JupyterLab copies the folder
                with JupyterLab(lessons=Path(tmp)) as lab:
                    per_slider = measure_lesson(lab, browser, baseline, args.moves)
                every = [x for values in per_slider.values() for x in values]
                sliders = {k: summarise(v) for k, v in per_slider.items()}
                lessons["(baseline: one line)"] = {**summarise(every), "sliders": sliders}
        with JupyterLab() as lab:
            for path in paths:
                per_slider = measure_lesson(lab, browser, path, args.moves)
                every = [x for values in per_slider.values() for x in values]
                sliders = {k: summarise(v) for k, v in per_slider.items()}
                lessons[path.stem] = {**summarise(every), "sliders": sliders, "agg": agg_draw_ms(path)}

    print(f"{'lesson':<28}{'sliders':>8}{'moves':>7}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}  target")
    for stem, r in lessons.items():
        if r["moves"] == 0:
            print(f"{stem:<28}{len(r['sliders']):>8}{0:>7}{'—':>11}{'—':>9}{'—':>9}  (no explorer)")
            continue
        verdict = "met" if r["median_ms"] <= TARGET_MS else "MISSED"
        print(f"{stem:<28}{len(r['sliders']):>8}{r['moves']:>7}{r['median_ms']:>11.0f}{r['p90_ms']:>9.0f}"
              f"{r['max_ms']:>9.0f}  {verdict}")
        for name, s in r["sliders"].items():
            if s["moves"]:
                print(f"    {name:<40}{s['median_ms']:>8.0f}{s['p90_ms']:>9.0f}")
        for name, a in r.get("agg", {}).items():
            if "draw_ms" in a:
                print(f"    {name}: Agg draw {a['draw_ms']:.0f} ms ({a['size_px'][0]}x{a['size_px'][1]} px), "
                      f"{a['draw_frozen_layout_ms']:.0f} ms with the layout frozen")

    result = {
        "command": " ".join(["python", "benchmarks/widget_latency.py", *cli_args]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "target_median_ms": TARGET_MS,
        "moves_per_slider": args.moves,
        "machine": machine_info(python=platform.python_version()),
        "lessons": lessons,
    }
    write_json(result, args.out)


if __name__ == "__main__":
    main()
