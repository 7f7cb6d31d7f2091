"""Ship the lessons in the wheel without moving them: ``lessons/*.ipynb`` stays the one source in git.

setuptools reads everything else from pyproject.toml. This build step copies the notebooks into the built package
(``mamba_edu/lessons/``), where ``mamba-edu lessons DIR`` and ``mamba-edu lab`` find them after a wheel install;
MANIFEST.in puts them in the sdist, so a wheel built from the sdist has them too. Editable installs skip the copy:
the command line then finds the clone's ``lessons/`` folder itself.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

LESSONS = Path(__file__).resolve().parent / "lessons"


class BuildPyWithLessons(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        notebooks = sorted(LESSONS.glob("*.ipynb"))
        if not notebooks:
            raise RuntimeError(f"no lesson notebooks in {LESSONS}: the wheel would carry no course")
        target = Path(self.build_lib) / "mamba_edu" / "lessons"
        target.mkdir(parents=True, exist_ok=True)
        for notebook in notebooks:
            shutil.copyfile(notebook, target / notebook.name)


setup(cmdclass={"build_py": BuildPyWithLessons})
