"""Timing the selective scan: one CPU timer, one CUDA timer, one GPU probe, and the ``mamba-edu bench`` table.

Used by the command line (``mamba-edu bench``) and by the scripts in ``benchmarks/``; the CPU kernel it times is
explained in lesson 6, the GPU kernel in lesson 7. Timers return the median over ``repeat`` calls after a warm-up
call (which also compiles numba or CUDA kernels), in seconds; ``setup()`` builds each call's arguments outside the
timed region. torch and CuPy are imported only when a function here needs them.
"""

import os
import platform
import statistics
import time

from mamba_edu._backend import gpu_available, positive_int

SLOW_AUTOGRAD_DL = 4096  # d·l above which the table skips the torch reference's backward on the CPU


def time_cpu(fn, repeat=5, setup=tuple):
    """Median wall-clock time (s) of ``fn(*setup())`` over ``repeat`` calls, after one untimed warm-up call."""
    repeat = positive_int("repeat", repeat)
    times = []
    for _ in range(repeat + 1):
        args = setup()
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def time_cuda(fn, repeat=5, setup=tuple):
    """Median GPU time (s) of ``fn(*setup())`` measured with CUDA events on torch's current stream, after a warm-up.

    The events bracket the work queued on the stream, so the host's launch overhead counts only where it stalls the GPU.
    """
    import torch

    repeat = positive_int("repeat", repeat)
    times = []
    for _ in range(repeat + 1):
        args = setup()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times[1:])


def gpu_status() -> str:
    """One line saying whether CuPy and a CUDA GPU are usable (for ``mamba-edu check``)."""
    try:
        import cupy
    except Exception as exc:
        return (f"CuPy not usable ({type(exc).__name__}); me.selective_scan runs without the CuPy kernels, "
                "me.selective_scan_cupy raises RuntimeError, and lesson 7 shows recorded H200 timings")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        return f"CuPy {cupy.__version__}, {n} CUDA device(s), device 0: {name}"
    except Exception as exc:
        return f"CuPy {cupy.__version__} installed but no CUDA GPU usable ({type(exc).__name__}: {exc})"


def machine_info(**versions) -> dict:
    """CPU, core count, load average at the time (other load inflates timings) and package versions."""
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_average": os.getloadavg(), **versions}


# -- the selective scan, three ways ---------------------------------------------------------------
def make_inputs(b, d, l, n, generator=None):
    """Random float32 selective-scan inputs ``(u, delta, A, B, C, D)`` with positive steps and a stable A.

    Shapes: u, delta (b, d, l); A (d, n); B, C (b, n, l); D (d,). ``generator``: a ``torch.Generator``
    (default: a new one seeded with 0, so every call gives the same inputs).
    """
    import torch

    g = generator if generator is not None else torch.Generator().manual_seed(0)
    u = torch.randn(b, d, l, generator=g)
    delta = 0.001 + 0.1 * torch.rand(b, d, l, generator=g)  # positive steps, as after softplus
    A = -torch.exp(torch.randn(d, n, generator=g) * 0.5)
    B = torch.randn(b, n, l, generator=g)
    C = torch.randn(b, n, l, generator=g)
    D = torch.randn(d, generator=g)
    return u, delta, A, B, C, D


def run_numba(u, delta, A, B, C, D):
    """Our fused CPU kernel, :func:`mamba_edu.scans.cpu.selective_scan_cpu` (lesson 6)."""
    from mamba_edu.scans.cpu import selective_scan_cpu

    return selective_scan_cpu(u, delta, A, B, C, D)


def run_public(u, delta, A, B, C, D):
    """What users call: :func:`mamba_edu.selective_scan` with default arguments (checks on; lesson 4).

    On torch CPU tensors it checks the inputs (shapes, NaN/inf, the sign of Δ) and dispatches to the
    fused numba kernel; ``run_numba`` times that kernel alone.
    """
    from mamba_edu.scans.selective import selective_scan

    return selective_scan(u, delta, A, B, C, D)


def run_mambapy(u, delta, A, B, C, D):
    """The anchor: mambapy's ``MambaBlock.selective_scan`` on our (b, d, l) layout (transposes included)."""
    import torch
    from mambapy.pscan import pscan

    x = u.transpose(1, 2)  # (b, l, d)
    dl = delta.transpose(1, 2)
    Bt, Ct = B.transpose(1, 2), C.transpose(1, 2)  # (b, l, n)
    deltaA = torch.exp(dl.unsqueeze(-1) * A)  # (b, l, d, n)
    deltaB = dl.unsqueeze(-1) * Bt.unsqueeze(2)
    hs = pscan(deltaA, deltaB * x.unsqueeze(-1))
    y = (hs @ Ct.unsqueeze(-1)).squeeze(3) + D * x
    return y.transpose(1, 2)


def run_torch(u, delta, A, B, C, D):
    """The readable reference, :func:`mamba_edu.scans.selective.selective_scan_ref` (lesson 4)."""
    from mamba_edu.scans.selective import selective_scan_ref

    return selective_scan_ref(u, delta, A, B, C, D)


def run_cupy(u, delta, A, B, C, D):
    """The CuPy kernel, :func:`mamba_edu.selective_scan_cupy` (lesson 7)."""
    from mamba_edu.scans.cuda import selective_scan_cupy

    return selective_scan_cupy(u, delta, A, B, C, D)


CPU_METHODS = {"public": run_public, "numba": run_numba, "mambapy": run_mambapy, "torch": run_torch}
GPU_METHODS = {"cupy": run_cupy, "torch": run_torch}


def time_scan(fn, inputs, backward=False, repeat=3, timer=time_cpu):
    """Median time (s) of one selective scan ``fn(*inputs)``: forward under ``no_grad``, or forward + backward."""
    import torch

    def setup():
        return [t.detach().clone().requires_grad_(backward) for t in inputs]

    def call(*args):
        if backward:
            out = fn(*args)
            out.backward(torch.ones_like(out))
        else:
            with torch.no_grad():
                fn(*args)

    return timer(call, repeat, setup)


def _row(device, method, fn, inputs, repeat, backward, timer):
    row = {"device": device, "method": method, "forward_ms": None, "fwd_bwd_ms": None, "note": ""}
    try:
        row["forward_ms"] = 1e3 * time_scan(fn, inputs, False, repeat, timer)
        if backward and device == "cpu" and method == "torch" and inputs[0].shape[1] * inputs[0].shape[2] > (
                SLOW_AUTOGRAD_DL):
            row["note"] = "fwd+bwd skipped: autograd through the per-step loop is slow"
        elif backward:
            row["fwd_bwd_ms"] = 1e3 * time_scan(fn, inputs, True, repeat, timer)
    except Exception as exc:  # a method unavailable here (mambapy not installed, …) is reported, not fatal
        row["note"] = f"unavailable ({type(exc).__name__}: {exc})".splitlines()[0][:80]
    return row


def bench_rows(shape, repeat=3, threads=2, gpu=True, backward=True):
    """Time the selective scan at ``shape`` = (b, d, l, n) with every method available here.

    On the CPU: our numba kernel, mambapy's parallel scan (the anchor), the torch reference; where CuPy and a
    CUDA GPU are usable, also our CuPy kernel and the torch reference on the GPU. Median of ``repeat`` calls
    after a warm-up. Returns a list of dicts ``{"device", "method", "forward_ms", "fwd_bwd_ms", "note"}``.
    """
    import torch

    torch.set_num_threads(threads)
    inputs = make_inputs(*shape)
    rows = [_row("cpu", m, fn, inputs, repeat, backward, time_cpu) for m, fn in CPU_METHODS.items()]
    if not gpu:
        return rows
    if not gpu_available():
        rows.append({"device": "gpu", "method": "-", "forward_ms": None, "fwd_bwd_ms": None,
                     "note": "no CUDA GPU usable with CuPy: " + gpu_status()})
        return rows
    inputs = [t.cuda() for t in inputs]
    rows += [_row("gpu", m, fn, inputs, repeat, backward, time_cuda) for m, fn in GPU_METHODS.items()]
    return rows


def format_bench(rows, shape) -> str:
    """The rows of :func:`bench_rows` as a text table."""
    lines = [f"selective scan, float32, (b, d, l, n) = {tuple(shape)}; median times in ms",
             f"{'device':<7}{'method':<10}{'forward':>10}{'fwd+bwd':>10}  note"]
    for r in rows:
        fwd = f"{r['forward_ms']:10.2f}" if r["forward_ms"] is not None else f"{'-':>10}"
        fb = f"{r['fwd_bwd_ms']:10.2f}" if r["fwd_bwd_ms"] is not None else f"{'-':>10}"
        lines.append(f"{r['device']:<7}{r['method']:<10}{fwd}{fb}  {r['note']}")
    return "\n".join(lines)


def cpu_scan_text(record):
    """The target row of a recorded ``benchmarks/cpu_scan.py`` run in one sentence (the README quotes it)."""
    row = record["rows"][0]
    pub, ker, ref = row["public"], row["numba"], row["mambapy"]
    met = pub["forward_ratio"] <= 0.2 and pub["fwd_bwd_ratio"] <= 0.2
    return (f"at (b, d, l, n) = {tuple(row['shape'])}: `me.selective_scan` as called (default arguments: the checks, "
            f"then the fused numba kernel) {pub['forward_ms']:.1f} ms forward / {pub['fwd_bwd_ms']:.1f} ms "
            f"forward+backward, the kernel alone {ker['forward_ms']:.1f} / {ker['fwd_bwd_ms']:.1f} ms; the PyPI "
            f"`mambapy` parallel scan {ref['forward_ms']:.1f} / {ref['fwd_bwd_ms']:.1f} ms: "
            f"{pub['forward_ratio']:.2f}× / {pub['fwd_bwd_ratio']:.2f}× (target ≤ 0.2×: {'met' if met else 'missed'}; "
            f"load average {record['machine']['load_average'][0]:.1f} on {record['machine']['cores']} cores)")


def train_step_text(record):
    """The recorded MambaLM training steps (``benchmarks/gpu_train_step.py``) in one sentence (the README quotes it).

    Each step's loss after the timed steps is quoted beside its time: a model whose loss runs away is timed,
    but it is not training the same way.
    """
    configs = {}
    for r in record["rows"]:
        key = (r["d_model"], r["n_layer"], r["batch"], r["length"])
        result = f"{r['step_ms']:.1f} ms (loss {r['loss']:.3g})" if "step_ms" in r else (
            "out of memory" if "out of memory" in r.get("error", "") else "failed")
        configs.setdefault(key, []).append(f"{r['impl']} {result}")
    return ". ".join(f"d_model {d}, {n} layers, batch {b}, l {l}: " + ", ".join(items)
                     for (d, n, b, l), items in configs.items()) + f" ({record['date'][:10]})"
