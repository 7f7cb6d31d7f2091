"""CPU selective scan: our fused numba kernel vs mambapy's parallel scan vs the torch reference.

Reproduce (idle machine, 2 threads, the issue's target shape and the scaling in l and d)::

    .venv/bin/python benchmarks/cpu_scan.py                 # full run: mamba_edu/data/cpu_scan.json
    .venv/bin/python benchmarks/cpu_scan.py --quick         # smoke run (small shapes, one repeat): a temp file

Every row times the same computation, y = selective scan(u, Δ, A, B, C, D) in float32, forward
(under ``torch.no_grad``) and forward+backward (``out.backward(grad)`` into every input):

* ``public``  ``me.selective_scan(u, delta, A, B, C, D)`` as a user calls it (default arguments: the input
  checks, then the numba kernel) — the figure to quote;
* ``numba``   :func:`mamba_edu.scans.cpu.selective_scan_cpu`, the kernel alone (ours);
* ``mambapy`` ``mambapy.pscan.pscan`` with its hand-written backward, applied exactly as in
  mambapy's ``MambaBlock.selective_scan`` (the anchor of the 0.2x target);
* ``torch``   the readable reference ``mamba_edu.scans.selective.selective_scan_ref`` (forward only
  at large shapes: autograd through its per-step loop is very slow), when it is available.

It also reports the one-time numba compile cost (fresh process, empty cache) and the peak memory
that one forward+backward adds on top of its inputs (growth of ``VmHWM`` in a fresh process, Linux).
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "mamba_edu" / "data" / "cpu_scan.json"  # read by lesson 6 and the docs
sys.path.insert(0, str(ROOT))
from benchmarks.common import write_json  # noqa: E402
from mamba_edu.bench import CPU_METHODS as METHODS  # noqa: E402
from mamba_edu.bench import machine_info, make_inputs, time_scan  # noqa: E402


def peak_memory_mb(method, shape):
    """Peak memory (MiB) one forward+backward adds on top of its inputs, in a fresh subprocess (Linux).

    The kernels are first warmed up (compiled) on tiny inputs; then the inputs are made and the
    growth of the peak resident set (``VmHWM`` in /proc/self/status: unlike ``ru_maxrss`` it is
    not inherited from this process across exec) over one call is reported.
    """
    hwm = "int([x for x in open('/proc/self/status') if x.startswith('VmHWM')][0].split()[1])"
    code = (
        f"import gc,sys,torch; sys.path.insert(0, {str(ROOT)!r}); import mamba_edu.bench as m;"
        f"w=[t.requires_grad_() for t in m.make_inputs(1, 4, 8, 4)]; m.CPU_METHODS[{method!r}](*w).sum().backward();"
        f"inp=[t.requires_grad_() for t in m.make_inputs(*{tuple(shape)!r})]; gc.collect(); base={hwm};"
        f"out=m.CPU_METHODS[{method!r}](*inp); out.backward(torch.ones_like(out)); print(({hwm}-base)/1024)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    try:
        return float(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def compile_seconds():
    """One-time cost: import + compile the numba kernels in a fresh process (no on-disk cache used)."""
    code = (
        "import os,sys,time; sys.path.insert(0, %r); os.environ['NUMBA_CACHE_DIR']=%r;"
        "import torch; from mamba_edu.scans.cpu import selective_scan_cpu as f;"
        "t=[x.requires_grad_() for x in [torch.randn(1,2,8), torch.rand(1,2,8), -torch.rand(2,4),"
        " torch.randn(1,4,8), torch.randn(1,4,8)]];"
        "s=time.perf_counter(); f(*t).sum().backward(); print(time.perf_counter()-s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([sys.executable, "-c", code % (str(ROOT), tmp)], capture_output=True, text=True)
    try:
        return float(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small shapes, 1 repeat")
    parser.add_argument("--threads", type=int, default=2, help="torch and numba threads (default 2)")
    parser.add_argument("--repeat", type=int, default=None, help="timed repeats per cell (median)")
    parser.add_argument("--no-scaling", action="store_true", help="only the target shape")
    parser.add_argument("--out", default=None,
                        help="JSON path (default: the package data mamba_edu/data/cpu_scan.json; --quick: a temp file)")
    args = parser.parse_args(argv)

    import numba
    import torch

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    repeat = args.repeat or (1 if args.quick else 5)
    target = (2, 64, 128, 16) if args.quick else (2, 512, 1024, 16)
    ls = [256, 512] if args.quick else [256, 512, 1024, 2048, 4096, 8192]
    ds = [32, 64] if args.quick else [128, 256, 512, 1024, 2048]
    shapes = [("target", target)]
    if not args.no_scaling:
        shapes += [("scale l", (target[0], target[1], l, 16)) for l in ls if l != target[2]]
        shapes += [("scale d", (target[0], d, target[2], 16)) for d in ds if d != target[1]]

    try:
        import mamba_edu.scans.selective  # noqa: F401

        have_ref = True
    except ImportError:
        have_ref = False

    rows = []
    print(f"{'shape (b, d, l, n)':<24}{'method':<9}{'forward ms':>12}{'fwd+bwd ms':>12}{'fwd ratio':>11}"
          f"{'f+b ratio':>11}")
    for label, shape in shapes:
        inputs = make_inputs(*shape)
        cell = {"label": label, "shape": list(shape)}
        for method in ["mambapy", "public", "numba"] + (["torch"] if have_ref else []):
            fwd = time_scan(METHODS[method], inputs, False, repeat)
            # autograd through the reference's per-step loop is ~40 s at the target shape: small shapes only
            do_bwd = method != "torch" or shape[1] * shape[2] <= 64 * 1024
            fb = time_scan(METHODS[method], inputs, True, repeat) if do_bwd else None
            cell[method] = {"forward_ms": fwd * 1e3, "fwd_bwd_ms": fb * 1e3 if fb is not None else None}
        base = cell["mambapy"]
        for method in ["mambapy", "public", "numba"] + (["torch"] if have_ref else []):
            r = cell[method]
            r["forward_ratio"] = r["forward_ms"] / base["forward_ms"]
            r["fwd_bwd_ratio"] = r["fwd_bwd_ms"] / base["fwd_bwd_ms"] if r["fwd_bwd_ms"] else None
            fb = f"{r['fwd_bwd_ms']:12.1f}" if r["fwd_bwd_ms"] else f"{'—':>12}"
            fbr = f"{r['fwd_bwd_ratio']:10.2f}x" if r["fwd_bwd_ratio"] else f"{'—':>11}"
            print(f"{str(shape):<24}{method:<9}{r['forward_ms']:12.1f}{fb}{r['forward_ratio']:10.2f}x{fbr}")
        rows.append(cell)
        sys.stdout.flush()

    memory = {m: peak_memory_mb(m, target) for m in ["mambapy", "public", "numba"]}
    compile_s = compile_seconds()
    print(f"peak memory growth of one forward+backward at {target}: "
          + ", ".join(f"{m} {v:.0f} MiB" if v is not None else f"{m} ?" for m, v in memory.items()))
    print(f"one-time numba compile (fresh process, empty cache): {compile_s:.1f} s" if compile_s else
          "compile time: not measured")
    t = rows[0]["public"]  # the target is judged at the call users make
    verdict = t["forward_ratio"] <= 0.2 and t["fwd_bwd_ratio"] <= 0.2
    print(f"target {target}: me.selective_scan forward {t['forward_ratio']:.2f}x, forward+backward "
          f"{t['fwd_bwd_ratio']:.2f}x of mambapy -> {'meets' if verdict else 'misses'} the 0.2x target")

    result = {
        "command": "python benchmarks/cpu_scan.py" + (" --quick" if args.quick else ""),
        "threads": args.threads,
        "repeat": repeat,
        "dtype": "float32",
        "machine": machine_info(torch=torch.__version__, numba=numba.__version__),
        "rows": rows,
        "peak_memory_mib": memory,
        "compile_seconds": compile_s,
        "meets_target": verdict,
    }
    if args.out is None:  # a smoke run never overwrites the recorded results
        args.out = Path(tempfile.gettempdir()) / "cpu_scan_quick.json" if args.quick else DATA
    write_json(result, args.out)


if __name__ == "__main__":
    main()
