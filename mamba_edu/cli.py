"""The ``mamba-edu`` command: open the course, report the environment, benchmark, experiment, present.

    mamba-edu lab              open the lessons in JupyterLab (127.0.0.1, with Jupyter's token)
    mamba-edu check            versions, whether CuPy and a CUDA GPU are usable, where the lessons are
    mamba-edu bench            CPU (and, where present, GPU) selective-scan timings as a table
    mamba-edu experiment NAME  run one of lesson 5's experiments; prints its result as one JSON line
    mamba-edu app LESSON       serve one lesson's explorers alone on a page (Voila), for class

Every command takes ``--help``.
"""

import argparse
import importlib
import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ("selective-copying", "induction-heads")
SLOW_AUTOGRAD_DL = 4096  # d·l above which `bench` skips the torch reference's backward on the CPU


def lessons_dir() -> Path:
    """The folder that holds the lesson notebooks (the repository's ``lessons/``)."""
    env = os.environ.get("MAMBA_EDU_LESSONS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent / "lessons"


def _version(module: str) -> str:
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception as exc:  # report, don't crash: this is a diagnostic
        return f"not available ({type(exc).__name__}: {exc})".splitlines()[0]


def gpu_status() -> str:
    """One line saying whether CuPy and a CUDA GPU are usable."""
    try:
        import cupy
    except Exception as exc:
        return f"CuPy not usable ({type(exc).__name__}); the GPU kernels of lesson 7 will raise RuntimeError"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
        return f"CuPy {cupy.__version__}, {n} CUDA device(s), device 0: {name}"
    except Exception as exc:
        return f"CuPy {cupy.__version__} installed but no CUDA GPU usable ({type(exc).__name__}: {exc})"


def cmd_check(args) -> int:
    import mamba_edu

    print(f"mamba_edu   {mamba_edu.__version__} ({Path(mamba_edu.__file__).parent})")
    print(f"python      {platform.python_version()} ({sys.executable})")
    for module in ["numpy", "scipy", "matplotlib", "torch", "numba", "ipywidgets", "ipympl", "jupyterlab"]:
        print(f"{module:<11} {_version(module)}")
    print(f"gpu         {gpu_status()}")
    lessons = lessons_dir()
    notebooks = sorted(p.name for p in lessons.glob("*.ipynb")) if lessons.is_dir() else []
    print(f"lessons     {lessons} ({len(notebooks)} notebooks)")
    for name in notebooks:
        print(f"            {name}")
    return 0


def lab_command(port: int | None = None, no_browser: bool = False) -> list[str]:
    """The JupyterLab command line: bound to 127.0.0.1, token kept, ``--allow-root`` when root."""
    cmd = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--notebook-dir={lessons_dir()}"]
    if port is not None:
        cmd.append(f"--port={port}")
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def cmd_lab(args) -> int:
    if not lessons_dir().is_dir():
        print(f"error: lessons folder not found at {lessons_dir()} (set MAMBA_EDU_LESSONS)", file=sys.stderr)
        return 2
    cmd = lab_command(args.port, args.no_browser)
    print("starting:", " ".join(cmd))
    return subprocess.call(cmd)


# -- bench ----------------------------------------------------------------------------------------
def _load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` of the repository (not part of the installed package)."""
    path = ROOT / "benchmarks" / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"mamba_edu_benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gpu_usable() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def _gpu_time_ms(fn, inputs, backward, repeat):
    """Median CUDA-event time (ms) of ``fn(*inputs)`` (and its backward) on the GPU, after a warm-up."""
    import torch

    times = []
    for _ in range(repeat + 1):
        args = [t.detach().clone().requires_grad_(backward) for t in inputs]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        if backward:
            out = fn(*args)
            out.backward(torch.ones_like(out))
        else:
            with torch.no_grad():
                fn(*args)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    times = sorted(times[1:])
    return times[len(times) // 2]


def bench_rows(shape, repeat=3, threads=2, gpu=True, backward=True):
    """Time the selective scan at ``shape`` = (b, d, l, n) with every method available here.

    CPU methods come from ``benchmarks/cpu_scan.py`` (``METHODS``: the numba kernel, mambapy's
    parallel scan, the torch reference), timed with its ``time_call`` (median of ``repeat`` after a
    warm-up). Where CuPy and a CUDA GPU are usable, :func:`mamba_edu.selective_scan_cupy` and the
    torch reference are timed on the GPU with CUDA events. Returns a list of dicts
    ``{"device", "method", "forward_ms", "fwd_bwd_ms", "note"}``.
    """
    rows = []
    cpu = _load_benchmark("cpu_scan")
    if cpu is None:
        rows.append({"device": "cpu", "method": "-", "forward_ms": None, "fwd_bwd_ms": None,
                     "note": f"benchmarks/cpu_scan.py not found under {ROOT}"})
    else:
        import torch

        torch.set_num_threads(threads)
        inputs = cpu.make_inputs(*shape)
        for method, fn in cpu.METHODS.items():
            row = {"device": "cpu", "method": method, "forward_ms": None, "fwd_bwd_ms": None, "note": ""}
            try:
                row["forward_ms"] = 1e3 * cpu.time_call(fn, inputs, False, repeat)
                if backward and method == "torch" and shape[1] * shape[2] > SLOW_AUTOGRAD_DL:
                    row["note"] = "fwd+bwd skipped: autograd through the per-step loop is slow"
                elif backward:
                    row["fwd_bwd_ms"] = 1e3 * cpu.time_call(fn, inputs, True, repeat)
            except Exception as exc:  # a method that is unavailable here is reported, not fatal
                row["note"] = f"unavailable ({type(exc).__name__}: {exc})".splitlines()[0][:80]
            rows.append(row)
    if not gpu:
        return rows
    if not _gpu_usable():
        rows.append({"device": "gpu", "method": "-", "forward_ms": None, "fwd_bwd_ms": None,
                     "note": "no CUDA GPU usable with CuPy: " + gpu_status()})
        return rows
    import torch

    inputs = [t.cuda() for t in (cpu.make_inputs(*shape) if cpu else _make_inputs(*shape))]
    from mamba_edu.scans import selective

    gpu_methods = {"cupy": _cupy_scan}
    if hasattr(selective, "selective_scan_ref"):
        gpu_methods["torch"] = selective.selective_scan_ref
    for method, fn in gpu_methods.items():
        row = {"device": "gpu", "method": method, "forward_ms": None, "fwd_bwd_ms": None, "note": ""}
        try:
            row["forward_ms"] = _gpu_time_ms(fn, inputs, False, repeat)
            if backward:
                row["fwd_bwd_ms"] = _gpu_time_ms(fn, inputs, True, repeat)
        except Exception as exc:
            row["note"] = f"unavailable ({type(exc).__name__}: {exc})".splitlines()[0][:80]
        rows.append(row)
    torch.cuda.synchronize()
    return rows


def _cupy_scan(u, delta, A, B, C, D):
    from mamba_edu import selective_scan_cupy

    return selective_scan_cupy(u, delta, A, B, C, D)


def _make_inputs(b, d, l, n, seed=0):
    """Random selective-scan inputs (used when benchmarks/cpu_scan.py is absent)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, d, l, generator=g), 0.001 + 0.1 * torch.rand(b, d, l, generator=g),
            -torch.exp(0.5 * torch.randn(d, n, generator=g)), torch.randn(b, n, l, generator=g),
            torch.randn(b, n, l, generator=g), torch.randn(d, generator=g))


def format_bench(rows, shape) -> str:
    lines = [f"selective scan, float32, (b, d, l, n) = {tuple(shape)}; median times in ms",
             f"{'device':<7}{'method':<10}{'forward':>10}{'fwd+bwd':>10}  note"]
    for r in rows:
        fwd = f"{r['forward_ms']:10.2f}" if r["forward_ms"] is not None else f"{'-':>10}"
        fb = f"{r['fwd_bwd_ms']:10.2f}" if r["fwd_bwd_ms"] is not None else f"{'-':>10}"
        lines.append(f"{r['device']:<7}{r['method']:<10}{fwd}{fb}  {r['note']}")
    return "\n".join(lines)


def cmd_bench(args) -> int:
    shape = tuple(args.shape)
    if any(v < 1 for v in shape):
        print(f"error: --shape must be positive integers (b d l n), got {shape}", file=sys.stderr)
        return 2
    rows = bench_rows(shape, repeat=args.repeat, threads=args.threads, gpu=not args.no_gpu,
                      backward=not args.forward_only)
    print(format_bench(rows, shape))
    print("full benchmarks: python benchmarks/cpu_scan.py, python benchmarks/gpu_scan.py (on a GPU)")
    return 0


# -- experiment -----------------------------------------------------------------------------------
def _jsonable(value):
    """Make numpy/torch scalars and arrays JSON-serialisable (json.dumps ``default=``)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def parse_overrides(items) -> dict:
    """``["steps=50", "lr=1e-3", "name=x"]`` -> ``{"steps": 50, "lr": 0.001, "name": "x"}`` (JSON values)."""
    out = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def cmd_experiment(args) -> int:
    try:
        overrides = parse_overrides(args.set)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from mamba_edu.experiments import run_experiment

    result = run_experiment(args.name, full=args.full, **overrides)
    print(json.dumps(result, default=_jsonable, sort_keys=True))
    return 0


# -- app ------------------------------------------------------------------------------------------
def resolve_lesson(lesson: str) -> Path:
    """A lesson notebook from a number (``3``, ``03``), a name or prefix (``03_complex``), or a path."""
    path = Path(lesson)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    folder = lessons_dir()
    notebooks = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    key = lesson.removesuffix(".ipynb")
    prefix = f"{int(key):02d}_" if key.isdigit() else key
    matches = [p for p in notebooks if p.stem == key] or [p for p in notebooks if p.stem.startswith(prefix)]
    if len(matches) != 1:
        names = ", ".join(p.stem for p in notebooks) or f"none in {folder}"
        what = "no lesson matches" if not matches else "several lessons match"
        raise ValueError(f"{what} {lesson!r}; lessons: {names}")
    return matches[0]


def _explorer_names() -> list[str]:
    from mamba_edu import widgets

    return list(widgets.__all__)


def app_notebook(lesson: Path):
    """A notebook that shows only ``lesson``'s explorers.

    Every code cell up to the last one that creates an explorer runs (so the explorers get the
    variables they need), but only the explorer cells show output: the others run under
    ``%%capture``. The kernel starts in the lesson's folder, as in JupyterLab.
    """
    import nbformat

    nb = nbformat.read(lesson, as_version=4)
    call = re.compile(r"\b(" + "|".join(map(re.escape, _explorer_names())) + r")\s*\(")
    code = [c for c in nb.cells if c.cell_type == "code"]
    shown = [i for i, c in enumerate(code) if call.search(c.source)]
    if not shown:
        raise ValueError(f"{lesson.name} creates no explorer (none of {', '.join(_explorer_names())})")
    title = next((c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source), "")
    cells = [nbformat.v4.new_markdown_cell(title or f"# {lesson.stem}")]
    cells.append(nbformat.v4.new_code_cell(
        f"%%capture\n%matplotlib widget\nimport os\nos.chdir({str(lesson.parent)!r})"))
    for i, cell in enumerate(code[: shown[-1] + 1]):
        source = cell.source if i in shown else "%%capture\n" + cell.source
        cells.append(nbformat.v4.new_code_cell(source))
    app = nbformat.v4.new_notebook(cells=cells)
    app.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return app


def voila_command(notebook: Path, port=None, no_browser=False, token=None) -> list[str]:
    """The Voila command line: 127.0.0.1, a token (generated unless given), sources hidden."""
    cmd = [sys.executable, "-m", "voila", str(notebook), "--Voila.ip=127.0.0.1",
           f"--Voila.token={token}" if token else "--token", "--strip_sources=True", "--show_tracebacks=True"]
    if port is not None:
        cmd.append(f"--port={port}")
    if no_browser:
        cmd.append("--no-browser")
    return cmd


def cmd_app(args) -> int:
    try:
        lesson = resolve_lesson(args.lesson)
        nb = app_notebook(lesson)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if importlib.util.find_spec("voila") is None:
        print('error: Voila is not installed; pip install -e ".[app]"', file=sys.stderr)
        return 2
    import nbformat

    folder = Path(tempfile.mkdtemp(prefix="mamba_edu_app_"))
    path = folder / f"{lesson.stem}_explorers.ipynb"
    nbformat.write(nb, path)
    cmd = voila_command(path, args.port, args.no_browser)
    print("starting:", " ".join(cmd))
    return subprocess.call(cmd)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mamba-edu", description=__doc__.splitlines()[0].replace("``", ""),
        epilog="Run `mamba-edu COMMAND --help` for a command's options.")
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="open the lessons in JupyterLab (127.0.0.1, token kept)")
    lab.add_argument("--port", type=int, default=None, help="port for JupyterLab (default: Jupyter's)")
    lab.add_argument("--no-browser", action="store_true", help="don't open a web browser")
    lab.set_defaults(func=cmd_lab)

    check = sub.add_parser("check", help="print versions, GPU availability and where the lessons are")
    check.set_defaults(func=cmd_check)

    bench = sub.add_parser("bench", help="time the selective scan on the CPU (and GPU, where present)",
                           description=bench_rows.__doc__.split("\n\n")[0])
    bench.add_argument("--shape", type=int, nargs=4, default=[2, 64, 256, 16], metavar=("B", "D", "L", "N"),
                       help="(b, d, l, n) of the scan (default: 2 64 256 16)")
    bench.add_argument("--repeat", type=int, default=3, help="timed repeats per method, median (default 3)")
    bench.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    bench.add_argument("--forward-only", action="store_true", help="skip the forward+backward timings")
    bench.add_argument("--no-gpu", action="store_true", help="CPU only, even where a GPU is present")
    bench.set_defaults(func=cmd_bench)

    experiment = sub.add_parser("experiment", help="run one of lesson 5's experiments; print a JSON line",
                                description="Run mamba_edu.experiments.run_experiment(NAME, full=...) and "
                                            "print the result as one JSON line.")
    experiment.add_argument("name", choices=EXPERIMENTS, help="which experiment")
    experiment.add_argument("--full", action="store_true",
                            help="the full-size run (slow); default: the quick CPU-sized one")
    experiment.add_argument("--set", action="append", metavar="KEY=VALUE",
                            help="override one configuration entry, e.g. --set steps=50 (repeatable)")
    experiment.set_defaults(func=cmd_experiment)

    app = sub.add_parser("app", help="serve one lesson's explorers as a standalone page (Voila)",
                         description="Serve one lesson's explorers alone on a page with Voila "
                                     "(127.0.0.1, with a token): for presenting in class.")
    app.add_argument("lesson", help="lesson number (3), name or prefix (03_complex), or notebook path")
    app.add_argument("--port", type=int, default=None, help="port for Voila (default: Voila's)")
    app.add_argument("--no-browser", action="store_true", help="don't open a web browser")
    app.set_defaults(func=cmd_app)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
