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
"""

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))

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

TARGET_MS = 100.0


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
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "widget_latency.json"))
    cli_args = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(cli_args)

    paths = [p for p in lesson_paths() if not args.lessons or any(p.stem.startswith(s) for s in args.lessons)]
    if not paths:
        parser.error("no lesson notebooks matched")
    lessons = {}
    with JupyterLab() as lab, Browser() as browser:
        for path in paths:
            per_slider = measure_lesson(lab, browser, path, args.moves)
            every = [x for values in per_slider.values() for x in values]
            sliders = {k: summarise(v) for k, v in per_slider.items()}
            lessons[path.stem] = {**summarise(every), "sliders": sliders}

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

    result = {
        "command": " ".join(["python", "benchmarks/widget_latency.py", *cli_args]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "target_median_ms": TARGET_MS,
        "moves_per_slider": args.moves,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_average": os.getloadavg(),
            "python": platform.python_version(),
        },
        "lessons": lessons,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
