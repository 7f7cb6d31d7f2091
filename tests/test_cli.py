"""The ``mamba-edu`` command: --help everywhere, bench, experiment, app (lab and check: test_packaging)."""

import json
import re
import shlex
import subprocess
import sys

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from mamba_edu import bench, cli, course

COMMANDS = ["lab", "lessons", "check", "bench", "experiment", "app"]


# ---------------------------------------------------------------- --help
@pytest.mark.parametrize("argv", [[], *([c] for c in COMMANDS)], ids=["main", *COMMANDS])
def test_help_everywhere(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mamba-edu") and "--help" in out
    if not argv:  # the top-level help lists every command
        assert all(c in out for c in COMMANDS)


def test_console_script_help_runs():
    out = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "experiment" in out.stdout


def test_version_prints_the_package_version(capsys):
    import mamba_edu

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mamba-edu {mamba_edu.__version__}"


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ---------------------------------------------------------------- bench
def test_bench_times_every_cpu_method(capsys):
    shape = (1, 4, 16, 4)
    rows = bench.bench_rows(shape, repeat=1, gpu=False)
    cpu = {r["method"]: r for r in rows if r["device"] == "cpu"}
    assert {"numba", "mambapy"} <= set(cpu), rows
    for name in ["numba", "mambapy"]:
        assert cpu[name]["forward_ms"] > 0 and cpu[name]["fwd_bwd_ms"] > 0, cpu[name]
    table = bench.format_bench(rows, shape)
    assert "(1, 4, 16, 4)" in table and all(name in table for name in cpu)


def test_bench_command_prints_table_and_reports_missing_gpu(monkeypatch, capsys):
    monkeypatch.setattr(bench, "gpu_available", lambda: False)
    assert cli.main(["bench", "--shape", "1", "2", "8", "2", "--repeat", "1", "--forward-only"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("selective scan, float32, (b, d, l, n) = (1, 2, 8, 2)")
    numba_row = next(line for line in lines if line.split()[:2] == ["cpu", "numba"])
    assert float(numba_row.split()[2]) > 0 and numba_row.split()[3] == "-"  # forward only
    assert any(line.startswith("gpu") and "no CUDA GPU" in line for line in lines)


def test_bench_gpu_rows_plumbing_without_a_gpu(monkeypatch):
    """The GPU branch, run on the CPU: CUDA transfers, events and the CuPy kernel replaced by fakes."""
    import torch

    import mamba_edu

    class FakeEvent:
        clock = 0.0

        def __init__(self, enable_timing=True):
            self.t = None

        def record(self):
            FakeEvent.clock += 1.5
            self.t = FakeEvent.clock

        def elapsed_time(self, end):
            return end.t - self.t

    calls = []

    def fake_cupy(u, delta, A, B, C, D):
        calls.append(u.shape)
        return mamba_edu.selective_scan(u, delta, A, B, C, D)

    monkeypatch.setattr(bench, "gpu_available", lambda: True)
    monkeypatch.setitem(bench.GPU_METHODS, "cupy", fake_cupy)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self: self)
    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    rows = bench.bench_rows((1, 2, 8, 2), repeat=1, gpu=True)
    gpu = {r["method"]: r for r in rows if r["device"] == "gpu"}
    assert gpu["cupy"]["forward_ms"] == pytest.approx(1.5) and gpu["cupy"]["fwd_bwd_ms"] == pytest.approx(1.5)
    assert gpu["cupy"]["note"] == "" and calls and calls[0] == (1, 2, 8)
    assert "torch" in gpu and gpu["torch"]["forward_ms"] == pytest.approx(1.5), gpu


@pytest.mark.parametrize("argv,option", [
    (["bench", "--shape", "1", "0", "8", "2"], "--shape"), (["bench", "--threads", "0"], "--threads"),
    (["bench", "--repeat", "0"], "--repeat"), (["bench", "--repeat", "x"], "--repeat"),
    (["lab", "--port", "0"], "--port"), (["lab", "--port", "70000"], "--port"),
    (["app", "1", "--port", "-1"], "--port"),
])
def test_bad_option_values_are_errors_with_exit_code_2(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and option in err and "Traceback" not in err


# ---------------------------------------------------------------- experiment
def test_experiment_calls_run_experiment_and_prints_one_json_line(monkeypatch, capsys):
    calls = []

    def fake_run_experiment(name, full=False, device="cpu"):
        calls.append((name, full))
        return {"name": name, "accuracy": np.float32(0.75), "curve": np.arange(3), "steps": np.int64(5)}

    import mamba_edu.experiments

    monkeypatch.setattr(mamba_edu.experiments, "run_experiment", fake_run_experiment)
    assert cli.main(["experiment", "induction-heads", "--full"]) == 0
    assert cli.main(["experiment", "selective-copying"]) == 0
    assert calls == [("induction-heads", True), ("selective-copying", False)]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first == {"name": "induction-heads", "accuracy": 0.75, "curve": [0, 1, 2], "steps": 5}


def test_experiment_passes_overrides(monkeypatch, capsys):
    import mamba_edu.experiments

    calls = []
    fake = lambda name, full=False, **kw: calls.append((name, full, kw)) or {"ok": True}
    monkeypatch.setattr(mamba_edu.experiments, "run_experiment", fake)
    argv = ["experiment", "selective-copying", "--set", "steps=3", "--set", "lr=1e-3", "--set", "stop_at=null"]
    assert cli.main(argv) == 0
    assert calls == [("selective-copying", False, {"device": "cpu", "steps": 3, "lr": 1e-3, "stop_at": None})]
    assert cli.main(["experiment", "selective-copying", "--set", "steps"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_experiment_device_is_passed_on_and_checked(monkeypatch, capsys):
    import mamba_edu.experiments

    calls = []
    monkeypatch.setattr(mamba_edu.experiments, "run_experiment", lambda name, **kw: calls.append(kw) or {"ok": 1})
    assert cli.main(["experiment", "induction-heads", "--device", "cpu"]) == 0
    assert calls[-1]["device"] == "cpu"
    assert cli.main(["experiment", "induction-heads", "--device", "tpu"]) == 2
    assert "--device" in capsys.readouterr().err
    if not __import__("torch").cuda.is_available():
        assert cli.main(["experiment", "induction-heads", "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("name,item,message", [
    ("selective-copying", "steps=true", "steps must be an integer"),
    ("selective-copying", "steps=-5", "steps must be an integer ≥ 1, got -5"),
    ("selective-copying", "eval_every=0", "eval_every must be an integer ≥ 1, got 0"),
    ("selective-copying", "lr=abc", "lr must be a finite number > 0, got 'abc'"),
    ("selective-copying", "lr=-1e-3", "lr must be a finite number > 0"),
    ("selective-copying", "stop_at=2", "stop_at must be a number in [0, 1]"),
    ("selective-copying", "tag=abc", "unknown overrides ['tag']"),
    ("selective-copying", "dt_min=1", "dt_min must be ≤ dt_max"),
    ("induction-heads", "test_lengths=5", "test_lengths must be a non-empty list of integers"),
    ("induction-heads", "test_lengths=[]", "test_lengths must be a non-empty list of integers"),
    ("induction-heads", "vocab_size=2.5", "vocab_size must be an integer"),
])
def test_experiment_checks_every_value_before_running(monkeypatch, capsys, name, item, message):
    import mamba_edu.experiments

    monkeypatch.setattr(mamba_edu.experiments, "run_experiment", lambda *a, **k: pytest.fail("ran with a bad value"))
    assert cli.main(["experiment", name, "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mamba-edu: error: --set: ") and message in err and "Traceback" not in err


def test_run_experiment_checks_its_configuration_too():
    from mamba_edu.experiments import run_experiment

    with pytest.raises(ValueError, match="eval_every must be an integer ≥ 1, got 0"):
        run_experiment("induction-heads", eval_every=0, progress=False)


def test_experiment_names_are_the_experiments_tasks():
    from mamba_edu.experiments import TASKS

    assert sorted(cli.EXPERIMENTS) == sorted(TASKS)


@pytest.mark.slow
def test_experiment_runs_for_real_and_prints_one_json_line():
    tiny = ["--set", "steps=2", "--set", "eval_every=1", "--set", "eval_batch=8", "--set", "batch=4",
            "--set", "n_noise=12", "--set", "d_model=8", "--set", "n_layer=1"]
    run = subprocess.run([sys.executable, "-m", "mamba_edu.cli", "experiment", "selective-copying", *tiny],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["task"] == "selective-copying" and result["steps"] == 2
    assert 0.0 <= result["selective_accuracy"] <= 1.0 and 0.0 <= result["lti_accuracy"] <= 1.0


def test_experiment_rejects_unknown_name(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["experiment", "copying"])
    assert exit_info.value.code == 2
    assert "selective-copying" in capsys.readouterr().err


# ---------------------------------------------------------------- app
def _lesson(path, cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def fake_lessons(tmp_path, monkeypatch):
    """Two small lessons in a temporary lessons folder (MAMBA_EDU_LESSONS)."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    _lesson(tmp_path / "01_first.ipynb", [
        md("# Lesson one\nsome text"),
        code("%matplotlib widget"),
        code("from mamba_edu.widgets import lti_explorer\nalpha = -0.4\nprint('setup')"),
        code("explorer = lti_explorer(alpha=alpha, beta=1.5)\nexplorer"),
        code("print('after the explorer')"),
    ])
    _lesson(tmp_path / "02_second.ipynb", [md("# Two"), code("x = 1")])
    _lesson(tmp_path / "02_second_part_b.ipynb", [md("# Two, b"), code("x = 2")])
    monkeypatch.setenv("MAMBA_EDU_LESSONS", str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("key", ["1", "01", "01_first", "01_fi", "01_first.ipynb"])
def test_resolve_lesson(fake_lessons, key):
    assert cli.resolve_lesson(key) == fake_lessons / "01_first.ipynb"


def test_resolve_lesson_prefers_an_exact_name(fake_lessons):
    assert cli.resolve_lesson("02_second") == fake_lessons / "02_second.ipynb"


@pytest.mark.parametrize("key,message", [("7", "no lesson matches"), ("2", "several lessons match")])
def test_resolve_lesson_errors_list_the_lessons(fake_lessons, key, message):
    with pytest.raises(ValueError, match=message) as err:
        cli.resolve_lesson(key)
    assert "01_first" in str(err.value) and "02_second" in str(err.value)


def test_app_notebook_shows_only_the_explorers(fake_lessons):
    nb = cli.app_notebook(fake_lessons / "01_first.ipynb")
    sources = [c.source for c in nb.cells]
    assert nb.cells[0].cell_type == "markdown" and sources[0] == "# Lesson one"
    code = sources[1:]
    assert code[0].startswith("%%capture\n%matplotlib widget") and str(fake_lessons) in code[0]
    assert code[1:] == [
        "%%capture\n%matplotlib widget",
        "%%capture\nfrom mamba_edu.widgets import lti_explorer\nalpha = -0.4\nprint('setup')",
        "explorer = lti_explorer(alpha=alpha, beta=1.5)\nexplorer",
    ]  # the cell after the last explorer is dropped


def test_app_without_explorer_is_an_error(fake_lessons, capsys):
    with pytest.raises(ValueError, match="creates no explorer"):
        cli.app_notebook(fake_lessons / "02_second.ipynb")
    assert cli.main(["app", "02_second"]) == 2
    assert "creates no explorer" in capsys.readouterr().err


def test_voila_command_binds_localhost_with_a_token(tmp_path):
    cmd = cli.voila_command(tmp_path / "x.ipynb", port=8123, no_browser=True)
    assert cmd[1:3] == ["-m", "voila"] and "--Voila.ip=127.0.0.1" in cmd and "--token" in cmd
    assert "--port=8123" in cmd and "--no-browser" in cmd


@pytest.mark.slow
def test_app_notebook_runs_and_displays_only_the_explorer(fake_lessons):
    nb = cli.app_notebook(fake_lessons / "01_first.ipynb")
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs]
    assert not [o for _, o in outputs if o.output_type == "error"]
    shown = {i for i, _ in outputs}
    assert shown == {len(nb.cells) - 1}, "only the explorer cell may show output"
    data = outputs[-1][1].get("data", {})
    assert "application/vnd.jupyter.widget-view+json" in data


# ---------------------------------------------------------------- lessons, check, install hints
def test_lessons_copies_every_notebook_and_keeps_edits(tmp_path, capsys):
    source, _ = course.source_lessons()
    names = sorted(p.name for p in course.notebooks(source))
    assert names, "no lessons found in the clone"
    dest = tmp_path / "my course"
    assert cli.main(["lessons", str(dest)]) == 0
    assert sorted(p.name for p in dest.glob("*.ipynb")) == names
    (dest / names[0]).write_text("my edits")
    assert cli.main(["lessons", str(dest)]) == 0
    assert (dest / names[0]).read_text() == "my edits" and f"kept {len(names)}" in capsys.readouterr().out
    assert cli.main(["lessons", str(dest), "--force"]) == 0
    assert (dest / names[0]).read_bytes() == (source / names[0]).read_bytes()


def test_check_and_lessons_fail_without_lessons(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MAMBA_EDU_LESSONS", str(tmp_path / "empty"))
    assert cli.main(["check"]) == 2
    assert "no lesson notebooks found" in capsys.readouterr().err
    assert cli.main(["lessons", str(tmp_path / "dest")]) == 2
    assert cli.main(["lab", "--no-browser"]) == 2


def test_packaged_lessons_are_copied_to_a_user_folder_never_edited_in_place(tmp_path, monkeypatch):
    """A wheel install: no clone, lessons only as package data; ``lab`` works on a per-user copy."""
    packaged = tmp_path / "site-packages" / "mamba_edu" / "lessons"
    packaged.mkdir(parents=True)
    (packaged / "01_a.ipynb").write_text("{}")
    monkeypatch.delenv("MAMBA_EDU_LESSONS", raising=False)
    monkeypatch.setattr(course, "clone_root", lambda: None)
    monkeypatch.setattr(course.resources, "files", lambda package: packaged.parent)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert course.source_lessons() == (packaged, "package")
    work = cli.lessons_dir()
    assert work == tmp_path / "data" / "mamba-edu" / "lessons" and (work / "01_a.ipynb").read_text() == "{}"
    (work / "01_a.ipynb").write_text("edited")
    (packaged / "02_b.ipynb").write_text("{}")  # a newer version of the package adds a lesson
    assert cli.lessons_dir() == work
    assert (work / "01_a.ipynb").read_text() == "edited" and (work / "02_b.ipynb").exists()
    assert any(part == f"--notebook-dir={work}" for part in cli.lab_command())


def test_install_hints_match_how_the_package_was_installed(monkeypatch):
    assert course.install_hint("app") == 'pip install -e ".[app]"'  # the tests run from the clone
    monkeypatch.setattr(course, "clone_root", lambda: None)
    hint = course.install_hint("app")
    assert "-e" not in hint and "voila" in hint, hint


def test_troubleshooting_quotes_the_check_gpu_line_as_printed(monkeypatch):
    """docs/troubleshooting.md quotes what `mamba-edu check` prints without CuPy: the quote must be current."""
    from pathlib import Path

    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` raises ModuleNotFoundError
    line = bench.gpu_status()
    assert line.startswith("CuPy not usable (ModuleNotFoundError)")
    page = (Path(__file__).resolve().parent.parent / "docs" / "troubleshooting.md").read_text()
    assert f"`{line}`" in " ".join(page.split()), f"docs/troubleshooting.md should quote {line!r}"


def test_readme_names_the_lessons_with_an_explorer_and_checkers():
    """README's sentence "Lessons … have an explorer … and exercises with checkers" matches the notebooks."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    explorer, checkers = set(), set()
    for path in sorted((root / "lessons").glob("*.ipynb")):
        number = int(path.name.split("_")[0])
        try:
            cli.app_notebook(path)  # raises ValueError for a lesson that creates no explorer
            explorer.add(number)
        except ValueError:
            pass
        if re.search(r"from mamba_edu\.exercises\.\w+ import", path.read_text()):  # a lesson's checkers module
            checkers.add(number)
    assert explorer == checkers, f"explorers in lessons {sorted(explorer)}, checkers in lessons {sorted(checkers)}"
    numbers = sorted(explorer)
    runs = []  # consecutive lesson numbers as "a–b"
    for n in numbers:
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    parts = [f"{a}–{b}" if b > a else f"{a}" for a, b in runs]
    phrase = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    readme = " ".join((root / "README.md").read_text().split())
    assert f"Lessons {phrase} have an explorer" in readme, f"README should say 'Lessons {phrase} have an explorer'"


def test_check_reports_lesson_4s_mambapy_and_the_optional_packages(monkeypatch, capsys):
    """An instructor learns before class what `mamba-edu app` and hub checkpoints would lack, and how to add it."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "voila" else real(name, *a))
    assert cli.main(["check"]) == 0
    rows = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines() if line[:1] != " "}
    assert rows["mambapy"][0].isdigit(), rows["mambapy"]  # a version number, not "installed" or "not available"
    assert rows["voila"] == f"not installed: mamba-edu app needs it ({course.install_hint('app')})"
    assert rows["huggingface_hub"][0].isdigit(), rows["huggingface_hub"]  # the test extra installs it


def test_lessons_then_lab_on_that_folder(tmp_path, monkeypatch, capsys):
    """`mamba-edu lessons DIR` says how to open DIR, and that command starts JupyterLab there (a plain
    `jupyter lab DIR` may be another environment's, and refuses to run as root)."""
    dest = tmp_path / "my course"
    assert cli.main(["lessons", str(dest)]) == 0
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint == f"open them with: mamba-edu lab '{dest}'"  # quoted: the folder's name has a space
    started = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: started.append(cmd) or 0)
    assert cli.main(shlex.split(hint.removeprefix("open them with: mamba-edu ")) + ["--no-browser"]) == 0
    (cmd,) = started
    assert f"--notebook-dir={dest}" in cmd and cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert cli.main(["lab", str(tmp_path / "empty")]) == 2 and "no lesson notebooks" in capsys.readouterr().err
