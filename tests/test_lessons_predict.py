"""Every lesson asks the learner to predict before it shows: at least three ``predict(...)`` prompts each."""

import re
from pathlib import Path

import nbformat
import pytest

LESSONS = sorted((Path(__file__).resolve().parent.parent / "lessons").glob("*.ipynb"))
PREDICT_CALL = re.compile(r"^predict\(", flags=re.M)


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_has_three_predictions_each_followed_by_a_cell(path):
    cells = nbformat.read(path, as_version=4).cells
    at = [i for i, c in enumerate(cells) if c.cell_type == "code" and PREDICT_CALL.search(c.source)]
    assert len(at) >= 3, f"{path.name} has {len(at)} predict() prompts, expected at least 3"
    imported = min(i for i, c in enumerate(cells) if "import predict" in c.source)
    assert imported < at[0], f"{path.name}: predict is used before it is imported"
    assert at[-1] < len(cells) - 1, f"{path.name}: a prediction needs a cell after it that reveals the answer"
    for i in at:
        assert len(PREDICT_CALL.findall(cells[i].source)) == 1, f"{path.name} cell {i}: one prediction per cell"
