"""Where the lessons are, and how to get a writable copy of them (used by the ``mamba-edu`` command).

Three places, tried in this order:

1. ``$MAMBA_EDU_LESSONS``, if set: a folder of lesson notebooks chosen by the user;
2. the clone's ``lessons/`` folder, when the package runs from a git checkout (editable install or ``PYTHONPATH``);
3. the notebooks shipped in the wheel (``mamba_edu/lessons/``, package data). These live in site-packages and are
   never edited: ``mamba-edu lab`` works on a per-user copy (:func:`user_lessons_dir`), made on first run, and
   ``mamba-edu lessons DIR`` copies them wherever you like.

Nothing here knows the lesson names: a lesson is any ``*.ipynb`` in the folder.
"""

import os
import shutil
import sys
from importlib import metadata, resources
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def notebooks(folder) -> list:
    """The lesson notebooks (``*.ipynb``) in ``folder`` (a Path or an importlib Traversable), sorted by name."""
    if folder is None or not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.name.endswith(".ipynb")), key=lambda p: p.name)


def clone_root():
    """The repository root when the package runs from a clone (a ``pyproject.toml`` beside it), else None."""
    root = PACKAGE_ROOT.parent
    return root if (root / "pyproject.toml").is_file() and (root / "lessons").is_dir() else None


def source_lessons():
    """``(folder, kind)``: where the lessons come from; kind is ``"environment"``, ``"clone"`` or ``"package"``.

    ``folder`` is None when no lessons are found (a broken install): the command line then says so.
    """
    env = os.environ.get("MAMBA_EDU_LESSONS")
    if env:
        return Path(env), "environment"
    root = clone_root()
    if root is not None:
        return root / "lessons", "clone"
    packaged = resources.files("mamba_edu").joinpath("lessons")
    return (packaged if notebooks(packaged) else None), "package"


def user_lessons_dir() -> Path:
    """The per-user folder where ``mamba-edu lab`` keeps its copy of the packaged lessons.

    ``$XDG_DATA_HOME/mamba-edu/lessons`` (default ``~/.local/share/...``); on Windows ``%LOCALAPPDATA%``.
    """
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "mamba-edu" / "lessons"


def copy_lessons(dest, overwrite=False):
    """Copy the lessons into ``dest`` (created); return ``(copied, kept)`` lists of file names.

    A notebook already in ``dest`` is kept as it is (your edits stay) unless ``overwrite``.
    Raises ``FileNotFoundError`` when there are no lessons to copy.
    """
    folder, kind = source_lessons()
    sources = notebooks(folder)
    if not sources:
        raise FileNotFoundError(f"no lesson notebooks found ({kind}: {folder}); {install_hint()}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for src in sources:
        target = dest / src.name
        if target.exists() and not overwrite:
            kept.append(src.name)
            continue
        with src.open("rb") as fin, open(target, "wb") as fout:
            shutil.copyfileobj(fin, fout)
        copied.append(src.name)
    return copied, kept


def working_lessons_dir() -> Path:
    """A writable folder of lessons for JupyterLab: the source itself, or (for a wheel install) the per-user copy.

    The per-user copy is filled on first use, and later gets only notebooks it lacks (never overwrites).
    """
    folder, kind = source_lessons()
    if kind != "package" or folder is None:
        return Path(folder) if folder is not None else user_lessons_dir()
    copy_lessons(user_lessons_dir())
    return user_lessons_dir()


def install_hint(extra=None) -> str:
    """How to install the package (or one of its extras) the way it was installed here."""
    if clone_root() is not None:
        return f'pip install -e ".[{extra}]"' if extra else 'from the clone: pip install -e .'
    if extra is None:
        return "reinstall the mamba-edu wheel (pip install --force-reinstall mamba_edu-*.whl)"
    try:
        reqs = [r.split(";")[0].strip() for r in metadata.requires("mamba-edu") or []
                if f'extra == "{extra}"' in r.replace("'", '"')]
    except metadata.PackageNotFoundError:
        reqs = []
    return "pip install " + " ".join(f'"{r}"' for r in reqs) if reqs else f'pip install "mamba-edu[{extra}]"'
