"""The docs site: its pages are consistent with the code, and it builds offline with every lesson executed.

The build test runs the documented command (``sphinx-build -b html docs docs/_build/html``) into a
temporary folder with execution forced, so a cell error in any lesson fails it.
"""

import re
import runpy
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import mamba_edu

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LESSONS = sorted((ROOT / "lessons").glob("*.ipynb"))


def test_api_page_documents_every_public_name():
    text = (DOCS / "api.md").read_text()
    missing = [name for name in mamba_edu.__all__ if f"mamba_edu.{name}\n" not in text]
    assert not missing, f"docs/api.md lacks {missing}"


def test_every_page_is_in_the_index_toctree():
    index = (DOCS / "index.md").read_text()
    pages = [p.stem for p in DOCS.glob("*.md") if p.stem != "index"] + ["lessons/index"]
    assert not [p for p in pages if f"\n{p}\n" not in index]


def test_seed_post_errors_page_cites_lines_lesson_cells_and_existing_tests():
    text = (DOCS / "seed_post_errors.md").read_text()
    errors = text.split("## Not errors")[0]
    rows = [r for r in errors.splitlines() if re.match(r"^\| L\d", r)]
    assert len(rows) >= 15, f"docs/seed_post_errors.md lists {len(rows)} errors"
    for row in rows:  # each row: the post's line, its claim, the correction, and a lesson cell that shows it
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and all(cells), row
        lesson, index = re.fullmatch(r"`(lessons/\d\d_\w+\.ipynb)` cell (\d+)", cells[3]).groups()
        assert (ROOT / lesson).is_file(), f"{lesson} (cited in docs/seed_post_errors.md) does not exist"
        assert int(index) < len(nbformat.read(ROOT / lesson, as_version=4).cells), row
    cited = set(re.findall(r"(tests/[\w/]+\.py)::(\w+)", text))
    assert len(cited) >= 5
    for path, name in sorted(cited):
        source = ROOT / path
        assert source.is_file(), f"{path} (cited in docs/seed_post_errors.md) does not exist"
        assert re.search(rf"^def {name}\(", source.read_text(), flags=re.M), f"{path} has no {name}"


def test_conf_copies_the_lessons_adds_a_kernelspec_and_removes_stale_copies(tmp_path):
    sync_lessons = runpy.run_path(str(DOCS / "conf.py"))["sync_lessons"]
    src, dst = tmp_path / "lessons", tmp_path / "docs_lessons"
    src.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), src / "01_a.ipynb")
    dst.mkdir()
    (dst / "00_gone.ipynb").write_text("{}")
    assert sync_lessons(src, dst) == ["01_a.ipynb"]
    assert sorted(p.name for p in dst.iterdir()) == ["01_a.ipynb"]
    copy = nbformat.read(dst / "01_a.ipynb", as_version=4)
    assert copy.metadata.kernelspec.name == "python3" and copy.cells[0].source == "1 + 1"
    nb = nbformat.read(src / "01_a.ipynb", as_version=4)
    nb.cells[0].source = "2 + 2"
    nbformat.write(nb, src / "01_a.ipynb")
    sync_lessons(src, dst)
    assert nbformat.read(dst / "01_a.ipynb", as_version=4).cells[0].source == "2 + 2"


def test_docs_lesson_copies_are_git_ignored():
    assert "*.ipynb" in (DOCS / "lessons" / ".gitignore").read_text().split()


@pytest.mark.slow
def test_docs_build_offline_with_every_lesson_executed(tmp_path):
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", str(DOCS), str(out), "-d", str(tmp_path / "doctrees"),
           "-D", "nb_execution_mode=force", "-q"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=1500)
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"sphinx-build failed:\n{log[-5000:]}"
    for problem in ["failed to import", "toctree contains reference to nonexisting", "isn't included in any"]:
        assert problem not in log, f"{problem!r} in the build log:\n{log[-5000:]}"
    for lesson in LESSONS:  # every lesson rendered, with at least one static figure
        page = out / "lessons" / f"{lesson.stem}.html"
        assert page.is_file(), f"no page for {lesson.name}"
        html = page.read_text()
        assert "<img" in html, f"{page.name} shows no figure"
        assert 'class="output traceback' not in html and "Traceback (most recent call last)" not in html
        # every predict(...) prompt shows its question with the answer folded (no kernel on the site)
        assert html.count('class="mamba-predict-static"') >= 3 and html.count("<details>") >= 3, page.name
    api = (out / "api.html").read_text()
    assert not [name for name in mamba_edu.__all__ if f'id="mamba_edu.{name}"' not in api]
    for page in ["notation", "install", "instructors", "seed_post_errors", "index"]:
        assert (out / f"{page}.html").is_file()
    assert "check_" in (out / "instructors.html").read_text()  # the generated table of checkers
