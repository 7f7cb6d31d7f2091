"""CI proves the wheel: built, installed outside the repository, it carries the whole course.

Builds the wheel from a copy of the sources, installs it (``--no-deps``) into a fresh virtual environment in a
temporary folder whose dependencies come from the environment running the tests (a ``.pth`` line: reusing the
installed CPU torch keeps this fast and offline), then, from another temporary folder, runs ``mamba-edu check``,
``mamba-edu lessons DIR``, executes one copied lesson on a kernel of that environment, and starts
``mamba-edu lab --no-browser`` until it serves the lessons. No lesson name is written here.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "LICENSE", "mamba_edu", "lessons"]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """(python, mamba-edu script, environment variables, temporary folder) of a venv with only the wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp / "dist").glob("mamba_edu-*.whl")

    env_dir = tmp / "venv"
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # the dependencies (torch, jupyterlab, ...) of the environment running the tests, after the venv's own
    # site-packages; its .pth files (an editable install of this repository) are not processed
    here = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (site / "_mamba_edu_test_deps.pth").write_text("\n".join(here) + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                              "--no-index", "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr

    home = tmp / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MAMBA_EDU", "JUPYTER", "VIRTUAL_ENV"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}")
    work = tmp / "work"
    work.mkdir()
    return python, bindir / "mamba-edu", env, work, site


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd, env, cwd, timeout=300):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


@pytest.mark.slow
def test_wheel_carries_the_course(wheel_env):
    python, script, env, work, site = wheel_env
    where = _run([python, "-c", "import mamba_edu; print(mamba_edu.__file__)"], env, work)
    assert Path(where.stdout.strip()).is_relative_to(site), where.stdout + where.stderr
    packaged = sorted(p.name for p in (site / "mamba_edu" / "lessons").glob("*.ipynb"))
    assert packaged == sorted(p.name for p in (ROOT / "lessons").glob("*.ipynb"))

    # every CUDA source ships, the SSD kernels' own headers too (kernel_source pastes them in; no GPU needed)
    sources = _run([python, "-c", "from mamba_edu.scans import cuda, ssd_cuda\n"
                    "for v in cuda.KERNEL_FILES: cuda.kernel_source(v)\n"
                    "for s in ssd_cuda.KERNEL_FILES:\n"
                    "    assert not any(x.startswith('#include \"') for x in ssd_cuda.kernel_source(s).splitlines())"],
                   env, work)
    assert sources.returncode == 0, sources.stdout + sources.stderr

    check = _run([script, "check"], env, work)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"(package, {len(packaged)} notebooks)" in check.stdout and all(n in check.stdout for n in packaged)

    copy = _run([script, "lessons", "course"], env, work)
    assert copy.returncode == 0, copy.stdout + copy.stderr
    assert sorted(p.name for p in (work / "course").glob("*.ipynb")) == packaged

    # one copied lesson (the first) runs top to bottom on a kernel of the wheel's environment
    first = work / "course" / packaged[0]
    code = ("import sys, nbformat; from nbclient import NotebookClient; p = sys.argv[1];"
            "nb = nbformat.read(p, as_version=4);"
            "NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': sys.argv[2]}})"
            ".execute(); nbformat.write(nb, p)")
    executed = _run([python, "-c", code, first, first.parent], env, work, timeout=900)
    assert executed.returncode == 0, executed.stdout[-3000:] + executed.stderr[-3000:]
    outputs = [o for c in json.loads(first.read_text())["cells"] for o in c.get("outputs", [])]
    assert outputs and not [o for o in outputs if o["output_type"] == "error"]


@pytest.mark.slow
def test_wheel_lab_serves_the_packaged_lessons_from_a_user_copy(wheel_env):
    python, script, env, work, site = wheel_env
    packaged = sorted(p.name for p in (site / "mamba_edu" / "lessons").glob("*.ipynb"))
    log = work / "lab.log"
    with open(log, "w") as out:
        lab = subprocess.Popen([str(script), "lab", "--no-browser", "--port", str(_free_port())], stdout=out,
                               stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        deadline, url = time.monotonic() + 180, None
        while url is None and time.monotonic() < deadline and lab.poll() is None:
            time.sleep(0.5)
            url = re.search(r"(http://127\.0\.0\.1:\d+/)lab\?token=(\w+)", log.read_text())
        assert url, log.read_text()[-3000:]
        with urllib.request.urlopen(f"{url[1]}api/contents?token={url[2]}", timeout=30) as response:
            served = sorted(item["name"] for item in json.load(response)["content"])
    finally:
        lab.terminate()
        try:
            lab.wait(30)
        except subprocess.TimeoutExpired:
            lab.kill()
    assert served == packaged
    user_copy = Path(env["XDG_DATA_HOME"]) / "mamba-edu" / "lessons"
    assert sorted(p.name for p in user_copy.glob("*.ipynb")) == packaged
    assert not list((site / "mamba_edu" / "lessons").glob(".ipynb_checkpoints")), "lab wrote into site-packages"
