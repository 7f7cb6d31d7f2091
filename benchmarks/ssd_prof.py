"""Where the fused SSD kernels' GPU time goes: torch-profiler time per kernel and per call (lesson 8's kernels).

Run on a GPU from the repository root: ``python benchmarks/ssd_prof.py`` (about a minute). Prints, for each
shape, dtype and chunk size, the GPU µs per call of every kernel (ssd_chunk_scan, ssd_chunk_state, ...) and
their total. ``--min-blocks scan=0,state=3`` overrides ``ssd_cuda.MIN_BLOCKS`` (the register budget of the two
matrix-product kernels), ``--slice 32`` ``ssd_cuda.SLICE`` (the pipelined slices' length) and
``--buffers 3`` ``ssd_cuda.BUFFERS`` (stage buffers) and ``--float32-tiles`` sends 16-bit inputs through the
float32 (TF32) tiles instead of the 16-bit ones, for A/B comparisons; ``--shapes small`` runs the
smallest shape only.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ssd_gpu  # noqa: E402  (the benchmark's inputs and its profiler clock)

import mamba_edu as me  # noqa: E402
from mamba_edu.scans import ssd_cuda  # noqa: E402

SHAPES = {"first": (8, 2048, 24, 64, 1, 128), "long": (1, 16384, 24, 64, 1, 128), "small": (4, 1024, 12, 64, 1, 64)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default="first,small", help=f"comma-separated names among {sorted(SHAPES)}")
    ap.add_argument("--chunks", default="256,64")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--min-blocks", default="", help="e.g. scan=0,state=3 (0: the compiler's choice)")
    ap.add_argument("--slice", type=int, default=ssd_cuda.SLICE, help="ssd_cuda.SLICE (32 or 64)")
    ap.add_argument("--buffers", type=int, default=ssd_cuda.BUFFERS, help="ssd_cuda.BUFFERS (2 or 3)")
    ap.add_argument("--float32-tiles", action="store_true", help="16-bit inputs on the TF32 tiles (no MMA16)")
    ap.add_argument("--json", default="", help="also write the rows here (the data file's `kernels` record)")
    opts = ap.parse_args()
    defaults = (dict(ssd_cuda.MIN_BLOCKS), ssd_cuda.SLICE, ssd_cuda.BUFFERS)
    if opts.float32_tiles:
        ssd_cuda._mma16 = lambda *a: False

    def knobs(min_blocks, slice_, buffers):
        ssd_cuda.MIN_BLOCKS.clear()
        ssd_cuda.MIN_BLOCKS.update(min_blocks)
        ssd_cuda.SLICE, ssd_cuda.BUFFERS = slice_, buffers
        ssd_cuda.tiles.cache_clear()
        ssd_cuda._plan.cache_clear()

    chosen = dict(defaults[0])
    for item in filter(None, opts.min_blocks.split(",")):
        step, value = item.split("=")
        chosen[step] = int(value)
    chosen = (chosen, opts.slice, opts.buffers)
    print("MIN_BLOCKS", chosen[0], "SLICE", chosen[1], "BUFFERS", chosen[2], "(defaults:", defaults, ")", flush=True)
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    rows = []
    for name in opts.shapes.split(","):
        shape = SHAPES[name]
        for dname in opts.dtypes.split(","):
            args, extras = ssd_gpu.make_inputs(shape, dtypes[dname])
            kw = dict(D=extras["D"], dt_bias=extras["dt_bias"], dt_softplus=True)
            for Q in (int(q) for q in opts.chunks.split(",")):
                fn = lambda: me.ssd_scan(**args, chunk_size=Q, **kw)  # noqa: B023, E731
                same = ""
                if chosen != defaults:  # the knobs change no arithmetic: the output must keep its bits
                    knobs(*defaults)
                    ref = fn()
                    knobs(*chosen)
                    out = fn()
                    diff = (out.float() - ref.float()).abs().max().item()
                    same = "  same bits as the defaults" if torch.equal(out, ref) else f"  DIFFERS by {diff:.2e}"
                times = ssd_gpu.per_kernel_us(fn, calls=5)
                ours = {k: v for k, v in times.items() if k.startswith("ssd_")}
                parts = " | ".join(f"{k[4:]} {v:6.1f}" for k, v in sorted(ours.items(), key=lambda kv: -kv[1]))
                print(f"{name:5s} {str(shape):26s} {dname} Q={Q:3d}  total {sum(ours.values()):7.1f} µs  "
                      f"(all GPU work {sum(times.values()):7.1f})  {parts}{same}", flush=True)
                by_time = sorted(ours.items(), key=lambda kv: -kv[1])
                rows.append(dict(shape=list(shape), dtype=dname, chunk_size=Q,
                                 kernels_gpu_us={k: round(v, 1) for k, v in by_time},
                                 total_gpu_us=round(sum(ours.values()), 1)))
            args = ref = out = None
            torch.cuda.empty_cache()
    if opts.json:
        how = "torch.profiler, GPU time per kernel per call of me.ssd_scan (benchmarks/ssd_prof.py, mean of 5 calls)"
        Path(opts.json).write_text(json.dumps(dict(how=how, rows=rows), indent=1) + "\n")


if __name__ == "__main__":
    main()
