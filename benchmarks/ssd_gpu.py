"""Lesson 8's chunked SSD on a CUDA GPU beside the official Triton ``mamba_chunk_scan_combined``, same process.

Reproduce (on a machine with CuPy, torch, Triton and einops, from the repository root; the official
Python sources of state-spaces/mamba — ``mamba_ssm/ops/triton/{ssd_*,layernorm_gated,k_activations,
softplus}.py`` and ``mamba_ssm/utils/{torch,determinism}.py`` with empty ``__init__.py`` files — in
``benchmarks/official/triton`` (git-ignored) or a folder passed as ``--official``, never inside mamba_edu)::

    PYTHONPATH=. python benchmarks/ssd_gpu.py     # table + benchmarks/results/ssd_gpu_h200.json

Setting: forward, D (h,) + dt_bias + softplus, no z (the Mamba-2 block gates in its RMSNorm), g = 1.
Inputs fp32, or bf16 for x, dt, B, C (A, D, dt_bias fp32), like the official tests.

Ours: ``me.ssd_scan(..., method="chunked")`` — the same array-generic code — on CuPy arrays (fp32;
matrix products through cuBLAS in strict fp32, CuPy's default) and on CUDA torch tensors (fp32 strict,
fp32 with TF32 matrix products, and bf16 inputs computed in fp32). Official: Triton (its ``tl.dot``
uses TF32 tensor cores for fp32 inputs).

Clocks: "GPU" = the summed duration of every kernel and memory operation on the GPU per call
(torch.profiler / CUPTI, which sees CuPy's and Triton's kernels alike); "as called" = host wall
time of the call followed by a synchronisation, the median of --repeats calls after warm-up.
Accuracy: max |out − ref| / max |ref| against our sequential method in float64 on the GPU (a
different algorithm: one step at a time).
"""

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from mamba_edu.scans.ssd import ssd_scan  # noqa: E402

SHAPES = [(8, 2048, 24, 64, 1, 128), (1, 16384, 24, 64, 1, 128), (4, 1024, 12, 64, 1, 64)]  # (b, l, h, p, g, n)
OFFICIAL_ISSUE_US = {  # the issue's measurement (2026-12-02, H200, chunk 256), GPU time fp32 / bf16
    (8, 2048, 24, 64, 1, 128): (378.0, 226.0),
    (1, 16384, 24, 64, 1, 128): (399.0, 270.0),
    (4, 1024, 12, 64, 1, 64): (48.0, 34.0),
}


def make_inputs(shape, dtype, seed=0):
    b, l, h, p, g, n = shape
    gen = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.randn(*s, device="cuda", generator=gen)
    args = dict(
        x=r(b, l, h, p),
        dt=r(b, l, h) - 2.0,  # softplus(dt + bias) ≈ 0.01 … 1
        A=-torch.exp(torch.rand(h, device="cuda", generator=gen) * 2 - 1),
        B=r(b, l, g, n) / n**0.5,
        C=r(b, l, g, n) / n**0.5,
    )
    extras = dict(D=r(h), dt_bias=torch.rand(h, device="cuda", generator=gen) - 0.5)
    for k in ("x", "dt", "B", "C"):
        args[k] = args[k].to(dtype)
    return args, extras


def gpu_us(fn, calls=10):
    """Kernel + memory-operation time on the GPU per call (µs), from the profiler."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    total = sum(e.time_range.elapsed_us() for e in prof.events() if e.device_type == DeviceType.CUDA)
    return total / calls


def called_us(fn, repeats):
    """Median host wall time of fn() + synchronisation (µs)."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def rel_err(got, ref):
    got = torch.as_tensor(got, device="cuda").double()
    return float((got - ref).abs().max() / ref.abs().max())


def save(rows, opts):
    """Write the table so far (after every row: a run cut short keeps what it measured)."""
    import cupy

    result = dict(
        date=datetime.date.today().isoformat(),
        gpu=torch.cuda.get_device_name(),
        versions=dict(torch=torch.__version__, cupy=cupy.__version__, numpy=np.__version__,
                      triton=__import__("triton").__version__),
        setting="forward; D (h,) + dt_bias + softplus, no z; g = 1; bf16 rows: x, dt, B, C in bf16",
        clocks="gpu_us: summed kernel + memory-op time per call (torch.profiler/CUPTI); "
               "called_us: median host wall time of call + synchronize",
        issue_official_gpu_us_fp32_bf16={str(k): v for k, v in OFFICIAL_ISSUE_US.items()},
        command="PYTHONPATH=. python benchmarks/ssd_gpu.py",
        rows=rows,
    )
    out = Path(opts.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


def breakdown(cupy, official):
    """Print the GPU kernels of one call of ours (torch, fp32, Q = 128) and of the official one, first shape."""
    from torch.profiler import ProfilerActivity, profile

    args, extras = make_inputs(SHAPES[0], torch.float32)
    kw = dict(D=extras["D"], dt_bias=extras["dt_bias"], dt_softplus=True)
    calls = [("ours torch Q=128", lambda: ssd_scan(**args, chunk_size=128, **kw))]
    if official is not None:
        calls.append(("official", lambda: official(**args, chunk_size=256, **kw)))
    for name, fn in calls:
        fn()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            fn()
            torch.cuda.synchronize()
        print(f"--- {name}, {SHAPES[0]}: GPU kernels of one call")
        print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=14, max_name_column_width=60))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", default=str(Path(__file__).resolve().parent / "official" / "triton"),
                    help="folder holding the official mamba_ssm sources")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--chunks", default="64,128,256", help="our chunk sizes to try (the official runs at 256)")
    ap.add_argument("--out", default="benchmarks/results/ssd_gpu_h200.json")
    ap.add_argument("--quick", action="store_true", help="only the last (smallest) shape")
    ap.add_argument("--breakdown", action="store_true", help="also print where our GPU time goes (top kernels)")
    opts = ap.parse_args()

    import cupy

    sys.path.insert(0, str(Path(opts.official).resolve()))
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except Exception as err:  # still time ours
        print(f"official kernel unavailable: {err!r}")
        mamba_chunk_scan_combined = None

    chunks = [int(c) for c in opts.chunks.split(",")]
    if opts.breakdown:
        breakdown(cupy, mamba_chunk_scan_combined)
    rows = []
    for shape in SHAPES[-1:] if opts.quick else SHAPES:
        for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
            args, extras = make_inputs(shape, dtype)
            kw = dict(D=extras["D"], dt_bias=extras["dt_bias"], dt_softplus=True)
            # float64 reference: our sequential method, one step at a time, on the GPU
            ref = ssd_scan(**{k: v.double() for k, v in args.items()}, D=kw["D"].double(),
                           dt_bias=kw["dt_bias"].double(), dt_softplus=True, method="sequential")
            cp_args = {k: cupy.asarray(v) for k, v in args.items()} if dtype_name == "fp32" else None
            cp_kw = dict(D=cupy.asarray(kw["D"]), dt_bias=cupy.asarray(kw["dt_bias"]), dt_softplus=True)

            def call(fn, a, k, Q):
                return lambda: fn(**a, chunk_size=Q, **k)

            variants = []
            if mamba_chunk_scan_combined is not None:
                mode = "TF32 (tl.dot)" if dtype_name == "fp32" else "bf16 tensor cores"
                variants.append(("official Triton", 256, mode, call(mamba_chunk_scan_combined, args, kw, 256)))
            for Q in chunks:
                if dtype_name == "fp32":
                    variants.append(("ours CuPy", Q, "strict fp32 (cuBLAS)", call(ssd_scan, cp_args, cp_kw, Q)))
                    variants.append(("ours torch", Q, "strict fp32 (cuBLAS)", call(ssd_scan, args, kw, Q)))
                    variants.append(("ours torch TF32", Q, "TF32 (cuBLAS)", call(ssd_scan, args, kw, Q)))
                else:
                    variants.append(("ours torch", Q, "bf16 in, fp32 compute (cuBLAS)", call(ssd_scan, args, kw, Q)))
            for name, Q, math_mode, fn in variants:
                torch.backends.cuda.matmul.allow_tf32 = "TF32" in name
                try:
                    err = rel_err(fn(), ref)
                    g_us = gpu_us(fn)
                    c_us = called_us(fn, opts.repeats)
                except Exception as exc:  # report and go on
                    print(f"{name} Q={Q} {shape} {dtype_name}: failed {exc!r}")
                    continue
                finally:
                    torch.backends.cuda.matmul.allow_tf32 = False
                row = dict(shape=list(shape), dtype=dtype_name, impl=name, chunk_size=Q, math=math_mode,
                           gpu_us=round(g_us, 1), called_us=round(c_us, 1), rel_err_vs_float64=err)
                rows.append(row)
                print(f"{str(shape):28s} {dtype_name} {name:16s} Q={Q:3d}  GPU {g_us:8.1f} µs  "
                      f"as called {c_us:8.1f} µs  err {err:.1e}", flush=True)
                save(rows, opts)
            args = cp_args = ref = variants = None
            torch.cuda.empty_cache()
            cupy.get_default_memory_pool().free_all_blocks()



if __name__ == "__main__":
    main()
