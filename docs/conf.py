"""Sphinx configuration of the mamba_edu docs site (Sphinx + myst-nb + sphinx-book-theme).

Build it (offline; every lesson is executed, so it takes a few minutes on 2 cores)::

    .venv/bin/sphinx-build -b html docs docs/_build/html

The lessons live in ``../lessons``. Sphinx only reads files inside ``docs/``, so this file copies
every ``lessons/*.ipynb`` into ``docs/lessons/`` before the build (the copies are git-ignored)
and removes copies whose lesson is gone: a new lesson appears on the site without editing
anything here. myst-nb executes each copy (outputs are stripped in git) and fails the build on
any cell error. The widget JavaScript is not available offline, so each lesson shows static
figures (``show_static(...)`` cells) of the views its explorers make live.
"""

import os
import sys
from pathlib import Path

import nbformat

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import mamba_edu  # noqa: E402  (after the path is set)

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def sync_lessons(src: Path = ROOT / "lessons", dst: Path = DOCS / "lessons") -> list[str]:
    """Copy ``src/*.ipynb`` into ``dst`` (only when changed) and delete stale copies."""
    dst.mkdir(exist_ok=True)
    names = []
    for path in sorted(src.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nb.metadata.setdefault("kernelspec", dict(KERNELSPEC))
        text = nbformat.writes(nb)
        target = dst / path.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        names.append(path.name)
    for stale in dst.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    return names


LESSONS = sync_lessons()

# -- project ------------------------------------------------------------------------------
project = "mamba_edu"
author = "the mamba_edu authors"
copyright = "2026, the mamba_edu authors"
release = version = mamba_edu.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # ships MathJax with the site, so formulas render without a network
]
exclude_patterns = ["_build", "jupyter_execute", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
suppress_warnings = ["mystnb.unknown_mime_type"]

# -- MyST / myst-nb -------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "cache"  # execute what changed; a fresh build dir executes every lesson
nb_execution_timeout = 300  # seconds per cell
nb_execution_raise_on_error = True  # a cell error fails the build
nb_execution_show_tb = True
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget state is saved, so don't load the widget JavaScript from a CDN
# An output with both a widget view and HTML (the lessons' predict(...) prompts) shows its HTML here:
# without widget JavaScript the view would be blank. Explorers have no HTML and are unaffected.
nb_mime_priority_overrides = [("html", "text/html", 5)]

# -- autodoc ------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "member-order": "bysource", "undoc-members": False}
autodoc_typehints = "description"
autodoc_mock_imports = ["cupy"]
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

# -- HTML -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "mamba_edu: state space models, from LTI systems to Mamba's selective scan"
html_theme_options = {
    "repository_url": "https://github.com/mamba-edu/mamba-edu",
    "use_repository_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
html_static_path = []


# -- generated API sections -------------------------------------------------------------------
def _modules(package: str) -> list[str]:
    """Python modules of a mamba_edu sub-package, from the files present (lessons add modules)."""
    folder = ROOT.joinpath(*package.split("."))
    return [f"{package}.{p.stem}" for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]


def api_sections() -> str:
    """MyST text documenting the explorers and the exercise checkers that exist right now."""
    out = ["\n## Explorers (`mamba_edu.widgets`)\n"]
    for module in _modules("mamba_edu.widgets"):
        if module != "mamba_edu.widgets.base":
            out.append(f"```{{eval-rst}}\n.. automodule:: {module}\n   :members:\n```\n")
    out.append("```{eval-rst}\n.. automodule:: mamba_edu.widgets.base\n   :members: Explorer, live_figure\n```\n")
    out.append("\n## Exercise checkers (`mamba_edu.exercises`)\n")
    out.append("```{eval-rst}\n.. automodule:: mamba_edu.exercises.feedback\n   :members: Feedback\n```\n")
    for module in _modules("mamba_edu.exercises"):
        if module != "mamba_edu.exercises.feedback":
            out.append(f"```{{eval-rst}}\n.. automodule:: {module}\n   :members:\n```\n")
    out.append("\n## Figures (`mamba_edu.plot`)\n")
    for module in _modules("mamba_edu.plot"):
        out.append(f"```{{eval-rst}}\n.. automodule:: {module}\n   :members:\n```\n")
    return "\n".join(out)


def checker_table() -> str:
    """A MyST table of every ``check_*`` function in ``mamba_edu.exercises``, with its first line."""
    import importlib
    import inspect

    rows = ["| module | checker | what it checks |", "|---|---|---|"]
    for module in _modules("mamba_edu.exercises"):
        if module == "mamba_edu.exercises.feedback":
            continue
        mod = importlib.import_module(module)
        functions = sorted(inspect.getmembers(mod, inspect.isfunction), key=lambda f: f[1].__code__.co_firstlineno)
        for name, fn in functions:
            if name.startswith("check_") and fn.__module__ == module:
                doc = (inspect.getdoc(fn) or "").split("\n")[0].replace("|", "\\|")
                rows.append(f"| `{module}` | {{func}}`~{module}.{name}` | {doc} |")
    return "\n".join(rows) + "\n"


def explorer_gallery() -> str:
    """MyST figures of the explorer screenshots that the browser tests save in ``docs/images``."""
    out = []
    for name in LESSONS:
        stem = Path(name).stem
        shots = sorted((DOCS / "images").glob(f"{stem}_explorer*.png"))
        for shot in shots:
            out.append(f"```{{figure}} ../images/{shot.name}\n:alt: the explorer of {stem}\n\n"
                       f"The explorer of [{stem}]({stem}.ipynb), in JupyterLab.\n```\n")
    if not out:
        return ""
    return "\n## The explorers\n\nScreenshots taken by the browser tests (`tests/browser`).\n\n" + "\n".join(out)


def _source_read(app, docname, source):
    if docname == "lessons/index":
        source[0] += explorer_gallery()
    if docname == "api":
        source[0] = source[0].replace("<!-- generated-sections -->", api_sections())
    if docname == "instructors":
        source[0] = source[0].replace("<!-- generated-checkers -->", checker_table())


def setup(app):
    app.connect("source-read", _source_read)
