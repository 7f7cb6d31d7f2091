"""The ``mamba-edu`` command: open the course, report the environment.

    mamba-edu lab      open the lessons in JupyterLab (127.0.0.1, with Jupyter's token)
    mamba-edu check    versions, whether CuPy and a CUDA GPU are usable, where the lessons are
"""

import argparse
import importlib
import os
import platform
import subprocess
import sys
from pathlib import Path


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
        return f"CuPy not usable ({type(exc).__name__}); the GPU kernels of lesson 5 will raise RuntimeError"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mamba-edu", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    lab = sub.add_parser("lab", help="open the lessons in JupyterLab (127.0.0.1, token kept)")
    lab.add_argument("--port", type=int, default=None, help="port for JupyterLab (default: Jupyter's)")
    lab.add_argument("--no-browser", action="store_true", help="don't open a web browser")
    lab.set_defaults(func=cmd_lab)

    check = sub.add_parser("check", help="print versions, GPU availability and where the lessons are")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
