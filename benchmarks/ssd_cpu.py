"""CPU: lesson 8's chunked SSD against the sequential recurrence, same inputs, one process.

Reproduce (from the repository root)::

    .venv/bin/python benchmarks/ssd_cpu.py            # (b, l, h, p, n) = (2, 2048, 8, 64, 64), g = 1, Q = 64
    .venv/bin/python benchmarks/ssd_cpu.py --quick    # smoke run, small shape

The recorded run used ``OPENBLAS_NUM_THREADS=1`` (numpy's matrix products on one thread: on a shared
2-core machine a second BLAS thread made the chunked numpy timings swing by 10×).

Both methods are ``me.ssd_scan`` on the same inputs (forward, float32 torch tensors under
``torch.no_grad``, and float64 numpy arrays), timed interleaved (sequential, chunked, sequential, …)
so that other load on a shared machine hits both alike; the table reports medians and the ratio.
Writes ``mamba_edu/data/ssd_cpu.json`` (the lesson reads it).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import machine_info, write_json  # noqa: E402


def make_inputs(b, l, h, p, n, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((b, l, h, p)),
        dt=rng.uniform(0.001, 0.1, (b, l, h)),
        A=-np.exp(rng.uniform(-1.0, 1.0, h)),
        B=rng.standard_normal((b, l, 1, n)),
        C=rng.standard_normal((b, l, 1, n)),
    )


def main():
    import numpy as np
    import torch

    import mamba_edu as me

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "mamba_edu" / "data" / "ssd_cpu.json"))
    opts = ap.parse_args()
    shape = (2, 256, 4, 16, 16) if opts.quick else (2, 2048, 8, 64, 64)
    arrays = make_inputs(*shape)
    inputs = {"numpy float64": arrays,
              "torch float32": {k: torch.tensor(v, dtype=torch.float32) for k, v in arrays.items()}}
    rows = []
    for label, args in inputs.items():
        times = {"sequential": [], "chunked": []}
        outs = {}
        with torch.no_grad():
            for _ in range(1 if opts.quick else opts.repeats):
                for method in times:
                    t0 = time.perf_counter()
                    outs[method] = me.ssd_scan(**args, chunk_size=opts.chunk, method=method)
                    times[method].append(time.perf_counter() - t0)
        err = float(np.abs(np.asarray(outs["chunked"]) - np.asarray(outs["sequential"])).max()
                    / np.abs(np.asarray(outs["sequential"])).max())
        med = {m: statistics.median(t) for m, t in times.items()}
        row = dict(inputs=label, sequential_s=med["sequential"], chunked_s=med["chunked"],
                   speedup=med["sequential"] / med["chunked"], rel_diff=err, repeats=len(times["chunked"]))
        rows.append(row)
        print(f"{label:14s}  sequential {med['sequential'] * 1e3:9.1f} ms   chunked {med['chunked'] * 1e3:8.1f} ms"
              f"   ×{row['speedup']:.1f}   max rel diff {err:.1e}")
    result = dict(
        shape_b_l_h_p_n=list(shape), groups=1, chunk_size=opts.chunk, rows=rows,
        note="medians of interleaved calls in one process; forward; the machine was shared with other sessions",
        machine=machine_info(torch=torch.__version__, numpy=np.__version__, threads=torch.get_num_threads(),
                             openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS", "default")),
        command="python benchmarks/ssd_cpu.py",
    )
    if not opts.quick:
        write_json(result, opts.out)


if __name__ == "__main__":
    main()
