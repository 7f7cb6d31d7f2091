"""The package metadata: pyproject and environment.yml agree; the API table resolves; the CLI works."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import tomllib

import mamba_edu
from mamba_edu import cli

ROOT = Path(__file__).resolve().parent.parent
# conda-forge spells some packages differently from PyPI (pytorch-cpu: the CPU build of torch)
CONDA_NAME = {"torch": "pytorch-cpu"}
# core dependencies that are not on conda-forge: environment.yml's `pip: -e .` installs them from PyPI
PIP_ONLY = {"mambapy"}


def _core_packages():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower() for d in deps}


def _environment():
    """(channels, conda packages, pip lines) of environment.yml (a YAML subset: read line by line)."""
    channels, names, pip, section = [], set(), [], None
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        if not line.startswith(" "):
            section = line.split(":")[0]
            continue
        if section == "channels":
            channels.append(line.strip().removeprefix("- "))
        elif m := re.match(r"^\s{6}- (.+)$", line):
            pip.append(m.group(1).strip())
        elif m := re.match(r"^\s{2}- ([A-Za-z0-9_.-]+)\s*(?:[<>=].*)?$", line):
            names.add(m.group(1).lower())
    return channels, names, pip


def test_environment_yml_and_pyproject_name_the_same_packages():
    channels, conda, pip = _environment()
    assert channels == ["conda-forge"], f"conda-forge only, got {channels}"
    expected = {CONDA_NAME.get(p, p) for p in _core_packages() - PIP_ONLY}
    assert conda - {"python", "pip"} == expected, (
        f"environment.yml lacks {sorted(expected - conda)}, has extra {sorted(conda - expected - {'python', 'pip'})}")
    assert not {"pytorch", "cpuonly"} & conda, "the CPU build on conda-forge is pytorch-cpu (no pytorch channel)"
    assert pip == ["-e ."], f"the package without extras (no test stack): got {pip}"


def test_license_is_an_spdx_string_with_its_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_public_api_names_resolve_where_implemented():
    for name in mamba_edu.__all__:
        assert callable(getattr(mamba_edu, name)), name


def test_import_is_light():
    code = "import sys, mamba_edu; print('torch' in sys.modules, 'cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_cli_check_reports_versions_gpu_and_lessons(capsys):
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    for word in ["numpy", "torch", "gpu", "lessons", "01_continuous_lti.ipynb"]:
        assert word in out


def test_lab_command_binds_localhost_and_keeps_token():
    cmd = cli.lab_command(port=8899, no_browser=True)
    assert "--ip=127.0.0.1" in cmd and "--port=8899" in cmd
    assert not any("token" in part for part in cmd)  # Jupyter's own token stays on
    assert any(part.startswith("--notebook-dir=") and part.endswith("lessons") for part in cmd)


def test_package_data_loads_with_importlib_resources():
    from mamba_edu.data import load

    assert load("cpu_scan")["rows"] and load("experiments")["runs"] and load("gpu_scan_h200")["rows"]


def _climbs_out(node):
    """A path expression that leaves mamba_edu/: ``x.parent.parent``, ``x.parents[i]``, or a ``".."`` string."""
    if isinstance(node, ast.Attribute) and node.attr == "parents":
        return True
    if isinstance(node, ast.Attribute) and node.attr == "parent" and isinstance(node.value, ast.Attribute):
        return node.value.attr == "parent"
    is_str = isinstance(node, ast.Constant) and isinstance(node.value, str)
    return is_str and bool(re.search(r"(^|/)\.\.(/|$)", node.value))


def test_no_module_reads_outside_the_package():
    """Sealed package: no module builds a path above mamba_edu/ (recorded results are package data)."""
    for path in sorted((ROOT / "mamba_edu").rglob("*.py")):
        bad = [node.lineno for node in ast.walk(ast.parse(path.read_text())) if _climbs_out(node)]
        assert not bad, f"{path.relative_to(ROOT)} lines {bad} build a path outside the package"


def test_no_lesson_reads_outside_its_folder():
    """Lessons run from a copy anywhere (``mamba-edu lessons DIR``): no ``..`` paths, no ``benchmarks/`` files."""
    import nbformat

    bad = re.compile(r"[\"']\.\.[/\"']|Path\([\"']\.\.[\"']\)|benchmarks/results")
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and bad.search(cell.source):
                raise AssertionError(f"{path.name} reads outside its folder:\n{cell.source}")


# third-party modules a lesson may import without its package being a core dependency, and why
OPTIONAL_LESSON_IMPORTS = {"cupy": "lesson 7 imports it only under `if cuda.gpu_available():` (the gpu extras)"}


def _lesson_imports():
    """{top-level module: [lesson names]} of the third-party imports in the lessons' code cells."""
    import nbformat

    found = {}
    for path in sorted((ROOT / "lessons").glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            python = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(python)):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top not in sys.stdlib_module_names and top != "mamba_edu":
                        found.setdefault(top, []).append(path.name)
    return found


def test_every_lesson_import_is_a_core_dependency():
    """A wheel installed with its default dependencies runs every lesson (the test extra is not the course's)."""
    from importlib import metadata

    core = {name.replace("_", "-") for name in _core_packages()}
    distributions = metadata.packages_distributions()
    imports = _lesson_imports()
    assert {"numpy", "torch"} <= set(imports), "the import scan found nothing"
    for module, lessons in sorted(imports.items()):
        if module in OPTIONAL_LESSON_IMPORTS:
            continue
        provided_by = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        assert provided_by & core, (f"{sorted(set(lessons))} import {module!r} (from {sorted(provided_by)}), which "
                                    f"is not in pyproject's dependencies: a wheel install cannot run that lesson")
