"""The ``mamba-edu`` command: open the course, report the environment, benchmark, experiment, present.

    mamba-edu lab [DIR]        open the lessons (or those in DIR) in JupyterLab (127.0.0.1, with Jupyter's token)
    mamba-edu lessons DIR      copy the lesson notebooks into DIR (to work on them anywhere)
    mamba-edu check            versions, whether CuPy and a CUDA GPU are usable, where the lessons are
    mamba-edu bench            CPU (and, where present, GPU) selective-scan timings as a table
    mamba-edu experiment NAME  run one of lesson 5's experiments; prints its result as one JSON line
    mamba-edu app LESSON       serve one lesson's explorers alone on a page (Voila), for class

Every command takes ``--help``. This module parses arguments and calls the package: the lessons' location is
:mod:`mamba_edu.course`, the timings :mod:`mamba_edu.bench`, the experiments :mod:`mamba_edu.experiments`.
Bad values are answered with ``error: …`` and exit code 2.
"""

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from mamba_edu import __version__, bench, course

EXPERIMENTS = ("selective-copying", "induction-heads")
# optional packages `mamba-edu check` reports: module -> (extra that installs it, what needs it)
OPTIONAL = {"voila": ("app", "mamba-edu app"), "huggingface_hub": ("hub", "MambaLM.from_pretrained(hub name)")}


def _error(message) -> int:
    print(f"mamba-edu: error: {message}", file=sys.stderr)
    return 2


def _positive_int(text):
    """argparse type: an integer ≥ 1 (else argparse prints ``error: …`` and exits with 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _port(text):
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1..65535, got {value}")
    return value


def lessons_dir() -> Path:
    """The folder JupyterLab opens: the clone's ``lessons/``, ``$MAMBA_EDU_LESSONS``, or the per-user copy."""
    return course.working_lessons_dir()


def _version(module: str) -> str:
    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # report, don't crash: this is a diagnostic
        return f"not available ({type(exc).__name__}: {exc})".splitlines()[0]
    try:
        return getattr(imported, "__version__", None) or importlib.metadata.version(module)
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def cmd_check(args) -> int:
    import mamba_edu

    def row(label, text):
        print(f"{label:<15} {text}")

    row("mamba_edu", f"{mamba_edu.__version__} ({Path(mamba_edu.__file__).parent})")
    row("python", f"{platform.python_version()} ({sys.executable})")
    for module in ["numpy", "scipy", "matplotlib", "torch", "numba", "ipywidgets", "ipympl", "jupyterlab", "mambapy"]:
        row(module, _version(module))
    for module, (extra, use) in OPTIONAL.items():
        found = importlib.util.find_spec(module) is not None
        row(module, _version(module) if found else f"not installed: {use} needs it ({course.install_hint(extra)})")
    row("gpu", bench.gpu_status())
    folder, kind = course.source_lessons()
    found = course.notebooks(folder)
    row("lessons", f"{folder} ({kind}, {len(found)} notebooks)")
    for notebook in found:
        row("", notebook.name)
    if not found:
        return _error(f"no lesson notebooks found; {course.install_hint()}")
    return 0


def lab_command(port: int | None = None, no_browser: bool = False, folder=None) -> list[str]:
    """The JupyterLab command line: bound to 127.0.0.1, token kept, ``--allow-root`` when root."""
    folder = lessons_dir() if folder is None else folder
    cmd = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--notebook-dir={folder}"]
    if port is not None:
        cmd.append(f"--port={port}")
    if no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def cmd_lab(args) -> int:
    try:
        folder = Path(args.dir).resolve() if args.dir else lessons_dir()
    except OSError as exc:  # no lessons found, or a per-user copy that cannot be written
        return _error(exc)
    if not course.notebooks(folder):
        return _error(f"no lesson notebooks in {folder} (set MAMBA_EDU_LESSONS, or {course.install_hint()})")
    cmd = lab_command(args.port, args.no_browser, folder)
    print("starting:", " ".join(cmd), flush=True)
    return subprocess.call(cmd)


def cmd_lessons(args) -> int:
    try:
        copied, kept = course.copy_lessons(args.dir, overwrite=args.force)
    except OSError as exc:
        return _error(exc)
    print(f"copied {len(copied)} lesson(s) into {Path(args.dir).resolve()}: {', '.join(copied) or '-'}")
    if kept:
        print(f"kept {len(kept)} already there (--force overwrites): {', '.join(kept)}")
    print(f"open them with: mamba-edu lab {shlex.quote(args.dir)}")  # the course's Python; as root too
    return 0


def cmd_bench(args) -> int:
    shape = tuple(args.shape)
    rows = bench.bench_rows(shape, repeat=args.repeat, threads=args.threads, gpu=not args.no_gpu,
                            backward=not args.forward_only)
    print(bench.format_bench(rows, shape))
    print("full benchmarks (from a clone): python benchmarks/cpu_scan.py, python benchmarks/gpu_scan.py (on a GPU)")
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
    """``["steps=50", "lr=1e-3", "stop_at=null"]`` -> ``{"steps": 50, "lr": 0.001, "stop_at": None}`` (JSON values).

    A value that is not JSON stays a string (and the configuration check then names it).
    """
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
    from mamba_edu.experiments import check_config, run_experiment

    try:
        overrides = parse_overrides(args.set)
        check_config(args.name, overrides, full=args.full)
    except ValueError as exc:
        return _error(f"--set: {exc}")
    from mamba_edu.experiments.train import _device

    try:
        _device(args.device)
    except ValueError as exc:
        return _error(f"--device: {exc}")
    result = run_experiment(args.name, full=args.full, device=args.device, **overrides)
    print(json.dumps(result, default=_jsonable, sort_keys=True))
    return 0


# -- app ------------------------------------------------------------------------------------------
def resolve_lesson(lesson: str) -> Path:
    """A lesson notebook from a number (``3``, ``03``), a name or prefix (``03_complex``), or a path."""
    path = Path(lesson)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    folder = lessons_dir()
    notebooks = course.notebooks(folder)
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
    except (ValueError, FileNotFoundError) as exc:
        return _error(exc)
    if importlib.util.find_spec("voila") is None:
        return _error(f"Voila is not installed; {course.install_hint('app')}")
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
    parser.add_argument("--version", action="version", version=f"mamba-edu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="open the lessons in JupyterLab (127.0.0.1, token kept)")
    lab.add_argument("dir", metavar="DIR", nargs="?", default=None,
                     help="a folder of lessons, e.g. one made by `mamba-edu lessons DIR` (default: "
                          "$MAMBA_EDU_LESSONS, the clone's lessons/ or the per-user copy)")
    lab.add_argument("--port", type=_port, default=None, help="port for JupyterLab (default: Jupyter's)")
    lab.add_argument("--no-browser", action="store_true", help="don't open a web browser")
    lab.set_defaults(func=cmd_lab)

    lessons = sub.add_parser("lessons", help="copy the lesson notebooks into a folder",
                             description="Copy the lesson notebooks into DIR (created if needed); notebooks "
                                         "already there are kept unless --force.")
    lessons.add_argument("dir", metavar="DIR", help="the folder to copy the lessons into")
    lessons.add_argument("--force", action="store_true", help="overwrite notebooks already in DIR")
    lessons.set_defaults(func=cmd_lessons)

    check = sub.add_parser("check", help="print versions, GPU availability and where the lessons are "
                                         "(exit code 2 when there are none)")
    check.set_defaults(func=cmd_check)

    bench_cmd = sub.add_parser("bench", help="time the selective scan on the CPU (and GPU, where present)",
                               description=bench.bench_rows.__doc__.split("\n\n")[0])
    bench_cmd.add_argument("--shape", type=_positive_int, nargs=4, default=[2, 64, 256, 16],
                           metavar=("B", "D", "L", "N"),
                           help="(b, d, l, n) of the scan (default: 2 64 256 16)")
    bench_cmd.add_argument("--repeat", type=_positive_int, default=3,
                           help="timed repeats per method, median (default 3)")
    bench_cmd.add_argument("--threads", type=_positive_int, default=2, help="CPU threads for torch (default 2)")
    bench_cmd.add_argument("--forward-only", action="store_true", help="skip the forward+backward timings")
    bench_cmd.add_argument("--no-gpu", action="store_true", help="CPU only, even where a GPU is present")
    bench_cmd.set_defaults(func=cmd_bench)

    experiment = sub.add_parser("experiment", help="run one of lesson 5's experiments; print a JSON line",
                                description="Run mamba_edu.experiments.run_experiment(NAME, full=...) and "
                                            "print the result as one JSON line.")
    experiment.add_argument("name", choices=EXPERIMENTS, help="which experiment")
    experiment.add_argument("--full", action="store_true",
                            help="the full-size run (slow); default: the quick CPU-sized one")
    experiment.add_argument("--set", action="append", metavar="KEY=VALUE",
                            help="override one configuration entry (JSON value, checked against the "
                                 "configuration), e.g. --set steps=50 (repeatable)")
    experiment.add_argument("--device", default="cpu",
                            help="where to train: cpu (default), cuda or cuda:N (on CUDA the selective scan runs "
                                 "on the CuPy kernel when CuPy is installed)")
    experiment.set_defaults(func=cmd_experiment)

    app = sub.add_parser("app", help="serve one lesson's explorers as a standalone page (Voila)",
                         description="Serve one lesson's explorers alone on a page with Voila "
                                     "(127.0.0.1, with a token): for presenting in class.")
    app.add_argument("lesson", help="lesson number (3), name or prefix (03_complex), or notebook path")
    app.add_argument("--port", type=_port, default=None, help="port for Voila (default: Voila's)")
    app.add_argument("--no-browser", action="store_true", help="don't open a web browser")
    app.set_defaults(func=cmd_app)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
