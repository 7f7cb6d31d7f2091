"""The explorers' PNG encoder (``mamba_edu.widgets.blit.encode_png``) vs Pillow, on real explorer frames.

Reproduce (one process, the encoders interleaved, medians; other load on the machine inflates all of them alike)::

    .venv/bin/python benchmarks/png_encoder.py            # table + benchmarks/results/png_encoder.json

ipympl sends every redraw as a PNG, so the encoder sits on every slider move. Pillow is timed at
``compress_level=1`` (its fastest zlib level, the fair comparison) and at its default. Every encoder's output
is decoded and checked to be the same picture.
"""

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.common import machine_info, write_json  # noqa: E402
from mamba_edu import widgets  # noqa: E402
from mamba_edu.widgets.blit import encode_png  # noqa: E402


def pillow(rgba, level):
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="png", compress_level=level)
    return buffer.getvalue()


ENCODERS = {"encode_png": encode_png, "pillow_level_1": lambda a: pillow(a, 1),
            "pillow_default": lambda a: pillow(a, 6)}


def frame(explorer_name):
    """The RGBA pixels (h, w, 4) of an explorer's figure, drawn with its defaults."""
    explorer = getattr(widgets, explorer_name)()
    explorer.fig.canvas.draw()
    return np.asarray(explorer.fig.canvas.get_renderer().buffer_rgba()).copy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=25, help="timed rounds (interleaved), median")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "png_encoder.json"))
    args = parser.parse_args(argv)
    rows = []
    for name in ("selective_explorer", "diagonal_explorer"):
        rgba = frame(name)
        for encode in ENCODERS.values():  # warm-up, and the same picture back
            assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode(rgba)))), rgba)
        times = {k: [] for k in ENCODERS}
        for _ in range(args.repeat):
            for key, encode in ENCODERS.items():
                start = time.perf_counter()
                encode(rgba)
                times[key].append(time.perf_counter() - start)
        row = {"explorer": name, "shape": list(rgba.shape)}
        for key, encode in ENCODERS.items():
            row[key] = {"ms": 1e3 * statistics.median(times[key]), "kib": len(encode(rgba)) / 1024}
        row["ratio_encode_png_to_pillow_level_1"] = row["encode_png"]["ms"] / row["pillow_level_1"]["ms"]
        rows.append(row)
        print(f"{name:<20} {rgba.shape}  " + "  ".join(f"{k} {row[k]['ms']:.1f} ms ({row[k]['kib']:.0f} KiB)"
                                                        for k in ENCODERS)
              + f"  encode_png / pillow level 1 = {row['ratio_encode_png_to_pillow_level_1']:.2f}")
    import PIL

    write_json({"command": "python benchmarks/png_encoder.py", "repeat": args.repeat, "rows": rows,
                "machine": machine_info(pillow=PIL.__version__, numpy=np.__version__)}, args.out)


if __name__ == "__main__":
    main()
