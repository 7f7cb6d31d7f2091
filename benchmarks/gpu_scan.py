"""Time the CuPy selective scan on a CUDA GPU as users call it, beside the official kernel, and record JSON.

Reproduce (on a machine with CuPy and a CUDA GPU, from the repository root)::

    MAMBA_CSRC=/path/to/mamba/csrc/selective_scan PYTHONPATH=. python benchmarks/gpu_scan.py --rounds 3
    PYTHONPATH=. python benchmarks/gpu_scan.py --kernels       # per-kernel table (v0, v1, v2 launches alone)
    PYTHONPATH=. python benchmarks/gpu_scan.py --sweep         # also try other v2 tile shapes
    PYTHONPATH=. python benchmarks/gpu_scan.py --sanitize      # every kernel once, small (compute-sanitizer)

The main table (:func:`bench_public`) times, in one process and one run, per shape: the official
``selective_scan_cuda`` built from its public source (``benchmarks/official_kernel.py``), our v2
kernel launch alone, and the two public calls a user makes — ``me.selective_scan_cupy(...)`` and
``me.selective_scan(...)`` on CUDA tensors with default arguments (input check on) — forward and
forward+backward (through autograd, both sides), and the bf16 forward. ``--rounds 3`` repeats the
whole table three times. Setting: fp32, z + D + delta_bias + softplus, variable B/C of shape
(b, 1, n, l). Timing: CUDA events around each call, after warm-up; the median of --repeats calls.
Each column times one call in a loop of its own, as the issue's table did. The three ratio pairs
(forward, forward+backward, bf16 forward: ``me.selective_scan`` and the official call) are also taken
alternately in one loop (:func:`time_torch_pair`, columns ``*_alt``): a change in the host's speed
during a loop then reaches both alike, but each call follows the other's kernels. On the H200 that
moved our ratios up by 1-10 % (2026-12-03); the record keeps both.
"""

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mamba_edu as me  # noqa: E402
from mamba_edu.scans import cuda  # noqa: E402

SHAPES = [(8, 1536, 2048, 16), (1, 1536, 16384, 16), (16, 2048, 4096, 16), (4, 768, 1024, 16)]
TARGETS_US = {  # the targets for the fused kernel
    ("v2 forward", (8, 1536, 2048, 16)): 600.0,
    ("v2 forward", (1, 1536, 16384, 16)): 670.0,
    ("v2 forward+backward", (8, 1536, 2048, 16)): 2900.0,
}


def inputs(cp, b, d, l, n, seed=0):
    rng = cp.random.default_rng(seed)
    f32 = cp.float32
    return dict(
        u=rng.standard_normal((b, d, l), dtype=f32),
        delta=rng.uniform(-4.0, 1.0, (b, d, l)).astype(f32),
        A=-cp.exp(rng.uniform(-1.0, 1.5, (d, n))).astype(f32),
        B=rng.standard_normal((b, 1, n, l), dtype=f32),
        C=rng.standard_normal((b, 1, n, l), dtype=f32),
        D=rng.standard_normal(d, dtype=f32),
        z=rng.standard_normal((b, d, l), dtype=f32),
        delta_bias=rng.uniform(-1.0, 0.5, d).astype(f32),
    )


def time_us(cp, fn, repeats, warmup=3):
    """Median wall time of fn() on the GPU in µs (CUDA events around each call)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop) * 1e3)
    return statistics.median(times)


def copy_bandwidth(cp, nbytes=4 << 30):
    """Device-to-device copy rate in GB/s, counting bytes read plus bytes written."""
    src = cp.ones(nbytes // 4, dtype=cp.float32)
    dst = cp.empty_like(src)
    us = time_us(cp, lambda: dst.__setitem__(Ellipsis, src), 20)
    return 2 * nbytes / us / 1e3


def torch_loop(x, repeats):
    """The PyTorch per-step loop reference on the GPU (like the official selective_scan_ref)."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.from_dlpack(v) for k, v in x.items()}

    def run():
        dl = F.softplus(t["delta"] + t["delta_bias"][:, None])
        A_bar = torch.exp(dl[..., None] * t["A"][:, None, :])  # (b, d, l, n)
        Bu = dl[..., None] * t["u"][..., None] * t["B"][:, 0].transpose(1, 2)[:, None]  # (b, d, l, n)
        Ct = t["C"][:, 0].transpose(1, 2)  # (b, l, n)
        h = torch.zeros_like(A_bar[:, :, 0])
        ys = []
        for i in range(A_bar.shape[2]):
            h = A_bar[:, :, i] * h + Bu[:, :, i]
            ys.append((h * Ct[:, None, i]).sum(-1))
        y = torch.stack(ys, -1) + t["D"][:, None] * t["u"]
        return y * F.silu(t["z"])

    import cupy as cp

    return time_us(cp, run, repeats, warmup=1)


TARGETS_RATIO = {  # ours as called / official, same run (issue 12)
    "fwd": {(8, 1536, 2048, 16): 0.6, (1, 1536, 16384, 16): 0.75, (4, 768, 1024, 16): 1.2},
    "fwd_bwd": {shape: 0.9 for shape in SHAPES},
    "bf16_fwd": {(8, 1536, 2048, 16): 0.8},
}
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def time_torch(fn, repeats, warmup=3):
    """Median time of fn() in µs: CUDA events on torch's stream around each call (the call as a user makes it)."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e3)
    return statistics.median(times)


def time_torch_pair(fn_a, fn_b, repeats, warmup=3):
    """Median times of fn_a() and fn_b() in µs, taken alternately (a b, b a, a b, …) in one loop, CUDA events each."""
    import torch

    for _ in range(warmup):
        fn_a()
        fn_b()
    torch.cuda.synchronize()
    times = ([], [])
    for i in range(repeats):
        for k in ((0, 1) if i % 2 == 0 else (1, 0)):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            (fn_a, fn_b)[k]()
            stop.record()
            stop.synchronize()
            times[k].append(start.elapsed_time(stop) * 1e3)
    return statistics.median(times[0]), statistics.median(times[1])


def _timed(row, official, ours, official_key, ours_key, reps):
    """``ours`` into ``row[ours_key]`` and ``official`` into ``row[official_key]``, each in a loop of its own;
    then both again, alternately in one loop, into the ``_alt`` keys (when the official kernel is here)."""
    if official is not None:
        row[official_key] = time_torch(official, reps)
    row[ours_key] = time_torch(ours, reps)
    if official is not None:
        row[official_key + "_alt"], row[ours_key + "_alt"] = time_torch_pair(official, ours, reps)


def torch_inputs(b, d, l, n, seed=0, half=None):
    """The benchmark's inputs as torch CUDA tensors (u, delta, B, C, z in ``half`` if given)."""
    import torch

    g = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, device="cuda", generator=g)
    x = dict(u=r(b, d, l), delta=torch.rand(b, d, l, device="cuda", generator=g) * 5 - 4,
             A=-torch.exp(torch.rand(d, n, device="cuda", generator=g) * 2.5 - 1), B=r(b, 1, n, l),
             C=r(b, 1, n, l), D=r(d), z=r(b, d, l), delta_bias=torch.rand(d, device="cuda", generator=g) * 1.5 - 1)
    if half is not None:
        for k in ("u", "delta", "B", "C", "z"):
            x[k] = x[k].to(half)
    return x


def _fwd_bwd(fn, x, dout):
    """One forward + backward through autograd, as in training (fresh leaves' grads each time)."""
    leaves = {k: v.requires_grad_() for k, v in x.items()}

    def run():
        for v in leaves.values():
            v.grad = None
        fn(**leaves, delta_softplus=True).backward(dout)

    return run


def _launch_fwd_bwd(x, dout, stream):
    """Our forward (with checkpoints) and backward kernel launches alone: no checks, no autograd."""
    import torch

    b, d, l = x["u"].shape
    n = x["A"].shape[1]
    args_ = [x[k] for k in NAMES]
    out = torch.empty(b, d, l, device="cuda")
    h_chk = torch.empty(b, d, cuda.n_tiles(l), n, device="cuda")
    grads = {k: torch.empty_like(x[k2]) for k, k2 in (("du", "u"), ("ddelta", "delta"), ("dz", "z"))}
    zeros = {k: torch.zeros_like(x[k2]) for k, k2 in (("dA", "A"), ("dB", "B"), ("dC", "C"), ("dD", "D"),
                                                       ("ddelta_bias", "delta_bias"))}

    def run():
        with stream:
            cuda.scan_forward("v2", *args_, True, out=out, h_chk=h_chk)
            for v in zeros.values():
                v.zero_()
            cuda.scan_backward(*args_, True, dout, h_chk, **grads, **zeros)

    return run


def bench_public(args):
    """The main table: official kernel, our launch, and our public calls, same inputs, same process."""
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    official, official_note = None, None
    try:
        import official_kernel

        ext = official_kernel.load()
        official = lambda **kw: official_kernel.selective_scan_official(ext, **kw)
    except Exception as err:  # no source or no compiler: the table says so
        official_note = f"official kernel not available: {type(err).__name__}: {str(err)[:300]}"
        print(official_note, flush=True)
    device = torch.cuda.get_device_name()
    rounds = []
    for rnd in range(args.rounds):
        rows = []
        for shape in SHAPES:
            rows.append(bench_public_shape(shape, official, args))
            torch.cuda.empty_cache()
        rounds.append(rows)
        print(f"-- round {rnd + 1} of {args.rounds} done", flush=True)
    result = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), device=device,
        torch=torch.__version__, cupy=__import__("cupy").__version__,
        setting="fp32 (and bf16 u/delta/B/C/z), z + D + delta_bias + softplus, variable B/C (b, 1, n, l)",
        timing=f"CUDA events around each call, warm-up 3, median of {args.repeats}; all columns in one process; "
               "the *_alt columns: the official call and me.selective_scan again, taken alternately in one loop",
        official=official_note or "state-spaces/mamba csrc/selective_scan built from source for sm_90 "
                                  "(benchmarks/official_kernel.py), called through a torch.autograd.Function",
        columns=dict(
            official_fwd="official selective_scan_cuda.fwd (fp32)",
            launch_fwd="our v2 kernel launch alone (no checks, no allocation)",
            cupy_call_fwd="me.selective_scan_cupy(...) with default arguments (NaN/inf check on)",
            cupy_call_fwd_nocheck="me.selective_scan_cupy(..., check_finite=False)",
            scan_call_fwd="me.selective_scan(...) on CUDA tensors, default arguments (dispatches to the kernel)",
            official_fwd_bwd="official forward + backward through autograd",
            launch_fwd_bwd="our forward + backward kernel launches alone (no checks, no autograd)",
            cupy_call_fwd_bwd_nocheck="me.selective_scan_cupy(..., check_finite=False) forward + backward",
            scan_call_fwd_bwd="me.selective_scan forward + backward through autograd",
            official_bf16_fwd="official forward, bf16 u/delta/B/C/z",
            scan_call_bf16_fwd="me.selective_scan forward, bf16 u/delta/B/C/z",
            alt="each *_alt pair: the official call and me.selective_scan again, alternately in one loop (a b, b a, …)",
        ),
        targets=dict(fwd="scan_call_fwd / official_fwd ≤ 0.6, 0.75, -, 1.2", fwd_bwd="≤ 0.9 at every shape",
                     bf16_fwd="≤ 0.8 at (8, 1536, 2048, 16)"),
        command="MAMBA_CSRC=… PYTHONPATH=. python benchmarks/gpu_scan.py --rounds 3", rounds=rounds,
    )
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", args.output)
    print_public(result)
    return result


def bench_public_shape(shape, official, args):
    import torch

    b, d, l, n = shape
    reps = args.repeats
    x = torch_inputs(b, d, l, n)
    row = dict(shape=list(shape))
    out = torch.empty(b, d, l, device="cuda")
    stream = cuda._stream(torch.cuda.current_stream().cuda_stream)

    def launch():
        with stream:
            cuda.scan_forward("v2", *(x[k] for k in NAMES), True, out=out)

    off_fwd = None if official is None else (lambda: official(**x, delta_softplus=True))
    _timed(row, off_fwd, lambda: me.selective_scan(**x, delta_softplus=True), "official_fwd", "scan_call_fwd", reps)
    row["launch_fwd"] = time_torch(launch, reps)
    row["cupy_call_fwd"] = time_torch(lambda: me.selective_scan_cupy(**x, delta_softplus=True), reps)
    row["cupy_call_fwd_nocheck"] = time_torch(
        lambda: me.selective_scan_cupy(**x, delta_softplus=True, check_finite=False), reps)
    dout = torch.randn(b, d, l, device="cuda")
    off_fwd_bwd = None if official is None else _fwd_bwd(official, {k: v.clone() for k, v in x.items()}, dout)
    ours_fwd_bwd = _fwd_bwd(me.selective_scan, {k: v.clone() for k, v in x.items()}, dout)
    _timed(row, off_fwd_bwd, ours_fwd_bwd, "official_fwd_bwd", "scan_call_fwd_bwd", reps)
    nocheck = lambda **kw: me.selective_scan_cupy(**kw, check_finite=False)
    row["cupy_call_fwd_bwd_nocheck"] = time_torch(_fwd_bwd(nocheck, {k: v.clone() for k, v in x.items()}, dout), reps)
    row["launch_fwd_bwd"] = time_torch(_launch_fwd_bwd(x, dout, stream), reps)
    x = None  # free the fp32 inputs
    xh = torch_inputs(b, d, l, n, half=torch.bfloat16)
    off_bf16 = None if official is None else (lambda: official(**xh, delta_softplus=True))
    _timed(row, off_bf16, lambda: me.selective_scan(**xh, delta_softplus=True), "official_bf16_fwd",
           "scan_call_bf16_fwd", reps)
    for key, col, ref in (("fwd", "scan_call_fwd", "official_fwd"),
                          ("fwd_bwd", "scan_call_fwd_bwd", "official_fwd_bwd"),
                          ("bf16_fwd", "scan_call_bf16_fwd", "official_bf16_fwd")):
        if ref in row:
            row[f"ratio_{key}"] = round(row[col] / row[ref], 3)
            row[f"ratio_{key}_alt"] = round(row[col + "_alt"] / row[ref + "_alt"], 3)
            target = TARGETS_RATIO[key].get(tuple(shape))
            if target is not None:
                row[f"target_{key}"] = target
                row[f"met_{key}"] = row[f"ratio_{key}"] <= target
    row = {k: round(v, 1) if isinstance(v, float) and not k.startswith(("ratio", "target")) else v
           for k, v in row.items()}
    print(json.dumps(row), flush=True)
    return row


def print_public(result):
    cols = ["official_fwd", "launch_fwd", "cupy_call_fwd", "cupy_call_fwd_nocheck", "scan_call_fwd", "ratio_fwd",
            "official_fwd_bwd", "launch_fwd_bwd", "cupy_call_fwd_bwd_nocheck", "scan_call_fwd_bwd", "ratio_fwd_bwd",
            "official_bf16_fwd", "scan_call_bf16_fwd", "ratio_bf16_fwd", "ratio_fwd_alt", "ratio_fwd_bwd_alt",
            "ratio_bf16_fwd_alt"]
    for i, rows in enumerate(result["rounds"]):
        print(f"round {i + 1} (µs; ratio = ours as called / official)")
        print("shape".ljust(22) + "".join(c.replace("_", " ")[:13].rjust(14) for c in cols))
        for r in rows:
            print(str(tuple(r["shape"])).ljust(22) + "".join(str(r.get(c, "-")).rjust(14) for c in cols))


def bench(args):
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    device = props["name"].decode()
    bw = copy_bandwidth(cp)
    print(f"device: {device}; measured copy bandwidth {bw:.0f} GB/s", flush=True)
    rows = []
    for shape in SHAPES:
        rows += bench_shape(cp, shape, bw, args)
        cp.get_default_memory_pool().free_all_blocks()
    result = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device=device, copy_bandwidth_GBps=round(bw, 1), cupy=cp.__version__,
        setting="fp32, z + D + delta_bias + softplus, variable B/C (b, 1, n, l)",
        v2_forward=dict(cuda.FORWARD, split_below_warps=cuda.SPLIT_BELOW_WARPS, target_warps=cuda.TARGET_WARPS),
        v2_backward=dict(chunk=cuda.CHUNK, nwarps=cuda.NWARPS),
        timing="CUDA events per launch, warm-up 3, median of `repeats`",
        command="PYTHONPATH=. python benchmarks/gpu_scan.py", rows=rows,
    )
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
        print("wrote", args.output)
    return result


def bench_shape(cp, shape, bw, args):
    """Rows of the table for one (b, d, l, n)."""
    b, d, l, n = shape
    x = inputs(cp, b, d, l, n)
    io_fwd = 4 * (4 * b * d * l + 2 * b * n * l)
    io_bwd = 4 * (9 * b * d * l + 4 * b * n * l)  # reads u delta z dout B C, writes du ddelta dz dB dC
    out = cp.empty((b, d, l), dtype=cp.float32)
    h_chk = cp.empty((b, d, cuda.n_tiles(l), n), dtype=cp.float32)
    args_ = [x[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
    ref_us = torch_loop(x, 3) if l * b * d <= 8 * 1536 * 2048 and not args.quick else None
    grads = {k: cp.empty_like(x[k2]) for k, k2 in (("du", "u"), ("ddelta", "delta"), ("dz", "z"))}
    zeros = {k: cp.zeros_like(x[k2]) for k, k2 in (("dA", "A"), ("dB", "B"), ("dC", "C"), ("dD", "D"),
                                                    ("ddelta_bias", "delta_bias"))}

    def fwd_bwd():
        cuda.scan_forward("v2", *args_, True, out=out, h_chk=h_chk)
        for v in zeros.values():
            v.fill(0)
        cuda.scan_backward(*args_, True, x["z"], h_chk, **grads, **zeros)  # dout := z (any data)

    kernels = {"v2 forward": lambda: cuda.scan_forward("v2", *args_, True, out=out), "v2 forward+backward": fwd_bwd}
    if shape in SHAPES[:2] and not args.quick:
        kernels["v1 forward"] = lambda: cuda.scan_forward("v1", *args_, True, out=out)
        kernels["v0 forward"] = lambda: cuda.scan_forward("v0", *args_, True, out=out)
    rows = []
    for name, fn in kernels.items():
        reps = args.repeats if name.startswith("v2") else max(5, args.repeats // 4)
        us = time_us(cp, fn, reps)
        nbytes = io_fwd + (io_bwd if "backward" in name else 0)
        row = dict(shape=list(shape), kernel=name, us=round(us, 1), GBps=round(nbytes / us / 1e3, 1),
                   pct_copy_bw=round(100 * nbytes / us / 1e3 / bw, 1), repeats=reps,
                   speedup_vs_torch_loop=None if ref_us is None or "backward" in name else round(ref_us / us, 1),
                   target_us=TARGETS_US.get((name, shape)),
                   time_segments=cuda.time_segments(b, d, l)[0] if name.startswith("v2") else None)
        if row["target_us"] is not None:
            row["target_met"] = us <= row["target_us"]
        rows.append(row)
        print(f"{str(shape):24s} {name:22s} {us:10.1f} us {row['GBps']:8.1f} GB/s {row['pct_copy_bw']:5.1f}% "
              f"x{row['speedup_vs_torch_loop']} target={row['target_us']}", flush=True)
    if ref_us is not None:
        rows.append(dict(shape=list(shape), kernel="torch loop reference", us=round(ref_us, 1), repeats=3))
    return rows


def sweep(args):
    """Time v2's forward at other tile shapes, and its backward at other (chunk, nwarps)."""
    import cupy as cp

    forwards = [{}, dict(unroll=2), dict(tile=64, unroll=4), dict(nwarps=8, min_blocks=2),
                dict(nwarps=8, min_blocks=2, unroll=2), dict(nwarps=8, min_blocks=2, tile=64),
                dict(nwarps=2, min_blocks=8), dict(nwarps=4, min_blocks=3), dict(lpc=8, nwarps=4, min_blocks=4),
                dict(lpc=8, nwarps=8, tile=64, min_blocks=3)]
    for b, d, l, n in [SHAPES[i] for i in args.sweep_shapes]:
        x = inputs(cp, b, d, l, n)
        args_ = [x[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
        out = cp.empty((b, d, l), dtype=cp.float32)
        for fwd in forwards:
            try:
                us = time_us(cp, lambda: cuda.scan_forward("v2", *args_, True, out=out, forward=fwd), 20)  # noqa: B023
                print(f"sweep {(b, d, l, n)} forward {fwd} {cuda.time_segments(b, d, l, forward=fwd)}: {us:8.1f} us",
                  flush=True)
            except Exception as err:  # e.g. too much shared memory for this tile shape
                print(f"sweep {(b, d, l, n)} forward {fwd}: failed: {err}", flush=True)
        for chunk, nwarps in [(8, 16)] if args.quick else [(4, 16), (8, 8), (8, 16)]:
            try:
                h_chk = cp.empty((b, d, cuda.n_tiles(l, chunk), n), dtype=cp.float32)
                grads = {k: cp.empty_like(x[k2]) for k, k2 in (("du", "u"), ("ddelta", "delta"), ("dz", "z"))}
                zeros = {k: cp.zeros_like(x[k2]) for k, k2 in (("dA", "A"), ("dB", "B"), ("dC", "C"),
                                                                ("dD", "D"), ("ddelta_bias", "delta_bias"))}
                cuda.scan_forward("v2", *args_, True, out=out, h_chk=h_chk, chunk=chunk)
                us = time_us(cp, lambda: cuda.scan_backward(*args_, True, x["z"], h_chk, **grads, **zeros,  # noqa: B023
                                                            chunk=chunk, nwarps=nwarps), 10)  # noqa: B023
                print(f"sweep {(b, d, l, n)} backward chunk={chunk} nwarps={nwarps}: {us:8.1f} us", flush=True)
            except Exception as err:
                print(f"sweep {(b, d, l, n)} backward chunk={chunk} nwarps={nwarps}: failed: {err}", flush=True)
        cp.get_default_memory_pool().free_all_blocks()


def sweep_segments(args):
    """Time v2's forward with the sequence cut into k time segments (see time_segments), for several k."""
    import cupy as cp

    configs = json.loads(args.configs) if args.configs else [{}, dict(nwarps=8, min_blocks=2)]
    for b, d, l, n in [SHAPES[i] for i in args.sweep_shapes]:
        x = inputs(cp, b, d, l, n)
        args_ = [x[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
        out = cp.empty((b, d, l), dtype=cp.float32)
        print(f"segments {(b, d, l, n)}: default {cuda.time_segments(b, d, l)}", flush=True)
        for fwd in configs:
            for k in args.segments:
                if cuda.time_segments(b, d, l, forward=dict(fwd, segments=k))[0] != k:
                    continue  # l too short for k aligned segments
                us = time_us(cp, lambda: cuda.scan_forward("v2", *args_, True, out=out,  # noqa: B023
                                                           forward=dict(fwd, segments=k)), 20)  # noqa: B023
                print(f"segments {(b, d, l, n)} {fwd} k={k:3d}: {us:8.1f} us", flush=True)
        cp.get_default_memory_pool().free_all_blocks()


def ablate(args):
    """Time v2's forward with parts switched off (what each stage costs)."""
    import cupy as cp

    for b, d, l, n in SHAPES[:2]:
        x = inputs(cp, b, d, l, n)
        out = cp.empty((b, d, l), dtype=cp.float32)
        variants = {
            "all (z, D, bias, softplus)": (x["D"], x["z"], x["delta_bias"], True),
            "no softplus": (x["D"], x["z"], x["delta_bias"], False),
            "no z": (x["D"], None, x["delta_bias"], True),
            "no z, D, bias, softplus": (None, None, None, False),
        }
        for name, (D, z, bias, sp) in variants.items():
            us = time_us(cp, lambda: cuda.scan_forward("v2", x["u"], x["delta"], x["A"], x["B"], x["C"],  # noqa: B023
                                                       D, z, bias, sp, out=out), 20)  # noqa: B023
            print(f"ablate {(b, d, l, n)} {name:28s} {us:8.1f} us", flush=True)
        cp.get_default_memory_pool().free_all_blocks()


def accuracy(args):
    """Print ‖got − ref‖ / ‖ref‖ of v2 (forward at several l; gradients) against a float64 torch loop."""
    import torch
    import torch.nn.functional as F

    def ref(u, delta, A, B, C, D, z, delta_bias):  # float64 loop over time, B, C (b, 1, n, l)
        dl = F.softplus(delta + delta_bias[:, None])
        h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=u.dtype, device=u.device)
        ys = []
        for t in range(u.shape[2]):
            h = torch.exp(dl[:, :, t, None] * A) * h + dl[:, :, t, None] * B[:, :, :, t] * u[:, :, t, None]
            ys.append((C[:, :, :, t] * h).sum(-1))
        return (torch.stack(ys, -1) + D[:, None] * u) * F.silu(z), h

    gen = torch.Generator(device="cuda").manual_seed(0)
    names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")

    def make(b, d, l, n):
        r = lambda *shape: torch.randn(*shape, generator=gen, device="cuda", dtype=torch.float64)
        return dict(u=r(b, d, l), delta=r(b, d, l) - 1.5, A=-torch.exp(r(d, n)), B=r(b, 1, n, l), C=r(b, 1, n, l),
                    D=r(d), z=r(b, d, l), delta_bias=0.5 * r(d))

    rel = lambda got, want: float((got.double() - want).norm() / want.norm())
    for b, d, l, n in [(2, 5, 1, 16), (2, 5, 7, 16), (2, 5, 64, 16), (2, 5, 2048, 16), (1, 5, 16384, 16)]:
        x = make(b, d, l, n)
        want, h = ref(*(x[k] for k in names))
        got, last = cuda.selective_scan_cupy(**{k: v.float() for k, v in x.items()}, delta_softplus=True,
                                             return_last_state=True)
        print(f"accuracy forward {(b, d, l, n)}: out {rel(got, want):.2e}  last state {rel(last, h):.2e}", flush=True)
    x = make(2, 5, 2048, 16)
    dout = torch.randn(2, 5, 2048, generator=gen, device="cuda", dtype=torch.float64)
    x64 = {k: v.clone().requires_grad_() for k, v in x.items()}
    ref(*(x64[k] for k in names))[0].backward(dout)
    x32 = {k: v.float().requires_grad_() for k, v in x.items()}
    cuda.selective_scan_cupy(**x32, delta_softplus=True).backward(dout.float())
    errors = "  ".join(f"{k} {rel(x32[k].grad, x64[k].grad):.1e}" for k in names)
    print(f"accuracy gradients (2, 5, 2048, 16): {errors}")


def sweep_backward(args):
    """Time v2's backward launch alone at several (warps per block, time segments): the tuning table."""
    import torch

    for b, d, l, n in [SHAPES[i] for i in args.sweep_shapes]:
        x = torch_inputs(b, d, l, n)
        args_ = [x[k] for k in NAMES]
        stream = cuda._stream(torch.cuda.current_stream().cuda_stream)
        out = torch.empty(b, d, l, device="cuda")
        h_chk = torch.empty(b, d, cuda.n_tiles(l), n, device="cuda")
        with stream:
            cuda.scan_forward("v2", *args_, True, out=out, h_chk=h_chk)
        grads = {k: torch.empty_like(x[k2]) for k, k2 in (("du", "u"), ("ddelta", "delta"), ("dz", "z"))}
        zeros = {k: torch.zeros_like(x[k2]) for k, k2 in (("dA", "A"), ("dB", "B"), ("dC", "C"), ("dD", "D"),
                                                           ("ddelta_bias", "delta_bias"))}
        # occupancy: (chunk, warps per block, blocks per SM the compiler must fit), one time segment
        for chunk, nwarps, min_blocks in ((8, 16, None), (8, 8, 2), (4, 16, None), (4, 8, 2), (4, 8, 3), (4, 8, 4),
                                          (4, 4, 6), (8, 4, 4)):
            try:
                h_chk2 = torch.empty(b, d, cuda.n_tiles(l, chunk), n, device="cuda")
                with stream:
                    cuda.scan_forward("v2", *args_, True, out=out, h_chk=h_chk2, chunk=chunk)

                def run2(chunk=chunk, nwarps=nwarps, min_blocks=min_blocks, h_chk2=h_chk2):  # noqa: B023
                    with stream:  # noqa: B023
                        cuda.scan_backward(*args_, True, x["z"], h_chk2, **grads, **zeros,  # noqa: B023
                                           chunk=chunk, nwarps=nwarps, segments=1, min_blocks=min_blocks)

                us = time_torch(run2, 10)
                print(f"sweep-backward {(b, d, l, n)} chunk={chunk} nwarps={nwarps:2d} min_blocks={min_blocks}: "
                      f"{us:8.1f} us", flush=True)
            except Exception as err:  # e.g. too much shared memory
                print(f"sweep-backward {(b, d, l, n)} chunk={chunk} nwarps={nwarps} min_blocks={min_blocks}: "
                      f"failed {str(err)[:120]}", flush=True)
        if args.quick:
            continue
        tiles = cuda.n_tiles(l)
        for nwarps in (16, 8, 4):
            for segs in (1, 2, 3, 4, 6, 8, 12):
                if segs > tiles:
                    continue

                def run(nwarps=nwarps, segs=segs, stream=stream):
                    with stream:
                        cuda.scan_backward(*args_, True, x["z"], h_chk, **grads, **zeros, nwarps=nwarps,  # noqa: B023
                                           segments=segs)

                us = time_torch(run, 10)
                print(f"sweep-backward {(b, d, l, n)} nwarps={nwarps:2d} segments={segs:2d}: {us:8.1f} us", flush=True)
        torch.cuda.empty_cache()


def profile_call(args):
    """Where the time of the as-called forward+backward goes: GPU kernels (torch profiler) vs the wall."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    for b, d, l, n in [SHAPES[i] for i in args.sweep_shapes]:
        x = {k: v.requires_grad_() for k, v in torch_inputs(b, d, l, n).items()}
        dout = torch.randn(b, d, l, device="cuda")
        run = _fwd_bwd(me.selective_scan, x, dout)
        for _ in range(3):
            run()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                run()
            torch.cuda.synchronize()
        print(f"profile {(b, d, l, n)} (5 calls of forward+backward)")
        print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=50))


def sanitize():
    """One small launch of every kernel and layout (run under compute-sanitizer memcheck / racecheck)."""
    import cupy as cp

    for B_groups, l in [(1, 37), (None, 300)]:
        x = inputs(cp, 2, 6, l, 16)
        if B_groups is None:
            x["B"] = cp.asarray(np.random.default_rng(0).standard_normal((6, 16)), dtype=cp.float32)
        args_ = [x[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
        out = cp.empty((2, 6, l), dtype=cp.float32)
        last = cp.empty((2, 6, 16), dtype=cp.float32)
        for version in ("v0", "v1", "v2"):
            cuda.scan_forward(version, *args_, True, out=out, last_state=last)
        cuda.scan_forward("v2", *args_, True, out=out, forward=dict(lpc=4, nwarps=2, tile=16))
        cuda.scan_forward("v2", *args_, True, out=out, last_state=last, forward=dict(segments=3))
        for chunk, nwarps in [(cuda.CHUNK, cuda.NWARPS), (4, 4)]:
            h_chk = cp.empty((2, 6, cuda.n_tiles(l, chunk), 16), dtype=cp.float32)
            cuda.scan_forward("v2", *args_, True, out=out, last_state=last, h_chk=h_chk, chunk=chunk)
            grads = {k: cp.empty_like(x[k2]) for k, k2 in (("du", "u"), ("ddelta", "delta"), ("dz", "z"))}
            zeros = {k: cp.zeros_like(x[k2]) for k, k2 in (("dA", "A"), ("dB", "B"), ("dC", "C"), ("dD", "D"),
                                                            ("ddelta_bias", "delta_bias"))}
            cuda.scan_backward(*args_, True, x["z"], h_chk, **grads, **zeros, chunk=chunk, nwarps=nwarps)
        cp.cuda.runtime.deviceSynchronize()
    sanitize_public()
    print("sanitize run: all kernels launched")


def sanitize_public():
    """The public call in every mode: n from 1 to 256, bf16/fp16 (converted, and read natively without
    gradients), misaligned views, last-state gradients,
    the NaN check (clean and flagged), time segments and a batch beyond the grid's y limit."""
    import torch

    def run(b, d, l, n, half=None, shift=False, dlast=False, nan=None, grad=True):
        x = torch_inputs(b, d, l, n, half=half)
        if shift:  # contiguous views 4 bytes off a 16-byte boundary
            x = {k: torch.empty(v.numel() + 1, device="cuda", dtype=v.dtype)[1:].view(v.shape).copy_(v)
                 for k, v in x.items()}
        if nan is not None:
            x[nan].view(-1)[0] = float("nan")
        x = {k: v.requires_grad_(grad) for k, v in x.items()}
        try:
            out, last = me.selective_scan(**x, delta_softplus=True, return_last_state=True)
        except ValueError:
            assert nan is not None
            return
        if grad:
            loss = out.float().sum() + (last.sum() if dlast else 0)
            loss.backward()
        torch.cuda.synchronize()

    for n in (1, 4, 16, 48, 64, 128, 256):
        run(2, 5, 300, n)
    run(2, 6, 256, 16, half=torch.bfloat16)
    run(2, 6, 256, 16, half=torch.float16)
    for half in (torch.bfloat16, torch.float16):  # no gradient: read natively, aligned and 2 bytes off
        run(2, 6, 256, 16, half=half, grad=False)
        run(2, 6, 301, 16, half=half, grad=False, shift=True)
    run(1, 3, 5000, 16, half=torch.bfloat16, grad=False)  # time segments, natively read
    run(2, 6, 100, 16, half=torch.bfloat16, nan="z", grad=False)
    run(2, 6, 256, 16, shift=True)
    run(2, 6, 300, 16, dlast=True)
    run(1, 3, 5000, 16)  # time segments
    for name in NAMES:
        run(2, 6, 100, 16, nan=name, grad=False)
    run(70_000, 2, 8, 4)
    print("sanitize run: public call modes launched")


def profile_once(args):
    """One launch of v2 forward and backward at SHAPES[--shape], for Nsight Compute (ncu)."""
    import cupy as cp

    b, d, l, n = SHAPES[args.shape]
    x = inputs(cp, b, d, l, n)
    args_ = [x[k] for k in ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")]
    out = cp.empty((b, d, l), dtype=cp.float32)
    h_chk = cp.empty((b, d, cuda.n_tiles(l, args.chunk), n), dtype=cp.float32)
    grads = {k: cp.empty_like(x[k2]) for k, k2 in (("du", "u"), ("ddelta", "delta"), ("dz", "z"))}
    zeros = {k: cp.zeros_like(x[k2]) for k, k2 in (("dA", "A"), ("dB", "B"), ("dC", "C"), ("dD", "D"),
                                                    ("ddelta_bias", "delta_bias"))}
    cuda.scan_forward("v2", *args_, True, out=out, h_chk=h_chk, chunk=args.chunk)
    cuda.scan_backward(*args_, True, x["z"], h_chk, **grads, **zeros, chunk=args.chunk, nwarps=args.nwarps)
    cp.cuda.runtime.deviceSynchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30, help="timed launches per kernel (median reported)")
    parser.add_argument("--output", default=None, help="JSON path (default: mamba_edu/data/)")
    parser.add_argument("--sweep", action="store_true", help="also time other v2 tile shapes")
    parser.add_argument("--sanitize", action="store_true", help="only launch every kernel once, small")
    parser.add_argument("--quick", action="store_true", help="skip v0, v1 and the torch loop")
    parser.add_argument("--profile-once", action="store_true", help="one v2 forward + backward launch (for ncu)")
    parser.add_argument("--chunk", type=int, default=cuda.CHUNK, help="v2 tile: steps per lane (with --profile-once)")
    parser.add_argument("--nwarps", type=int, default=cuda.NWARPS, help="v2 tile: warps per block (--profile-once)")
    parser.add_argument("--shape", type=int, default=0, help="index into SHAPES (with --profile-once)")
    parser.add_argument("--sweep-shapes", type=int, nargs="+", default=[0, 1], help="indices into SHAPES")
    parser.add_argument("--sweep-segments", action="store_true", help="time v2's forward at several time segments")
    parser.add_argument("--segments", type=int, nargs="+", default=[1, 2, 4, 8, 16], help="with --sweep-segments")
    parser.add_argument("--configs", default=None, help='with --sweep-segments: JSON list of v2 overrides')
    parser.add_argument("--ablate", action="store_true", help="time v2's forward with parts switched off")
    parser.add_argument("--accuracy", action="store_true", help="print v2's errors against a float64 loop")
    parser.add_argument("--kernels", action="store_true", help="the per-kernel launch table (v0, v1, v2)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the main table this many times")
    parser.add_argument("--sweep-backward", action="store_true", help="time v2's backward at several tilings")
    parser.add_argument("--profile-call", action="store_true", help="torch profiler of the as-called fwd+bwd")
    args = parser.parse_args()
    if args.sweep_backward:
        return sweep_backward(args)
    if args.profile_call:
        return profile_call(args)
    if args.accuracy:
        return accuracy(args)
    if args.ablate:
        return ablate(args)
    if args.sweep_segments:
        return sweep_segments(args)
    if args.profile_once:
        return profile_once(args)
    if args.sanitize:
        return sanitize()
    if args.sweep:
        sweep(args)
    if args.kernels:
        if args.output is None:
            args.output = str(Path(__file__).resolve().parents[1] / "mamba_edu" / "data" / "gpu_scan_h200.json")
        return bench(args)
    if args.output is None:
        args.output = str(Path(__file__).resolve().parents[1] / "mamba_edu" / "data" / "gpu_scan_public_h200.json")
    bench_public(args)


if __name__ == "__main__":
    main()
