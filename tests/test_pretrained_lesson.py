"""Lesson 4's section "A real Mamba" runs with a checkpoint (MAMBA_EDU_CHECKPOINT set to a small saved model)
and without one (then on an UNTRAINED random model, labelled so in its printout and figure titles).

Only the lesson's first code cell (imports) and the section's cells are executed, in a fresh kernel whose
environment is set by the test; tests/test_notebooks.py runs the whole lesson.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mamba_edu.mamba import pretrained

LESSON = Path(__file__).resolve().parent.parent / "lessons" / "04_selective_ssm.ipynb"
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")


def run_section(env, monkeypatch):
    nb = nbformat.read(LESSON, as_version=4)
    start = next(i for i, c in enumerate(nb.cells) if c.source.startswith("## A real Mamba"))
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    nb.cells = [first_code, *nb.cells[start:]]
    for key, value in env.items():  # the kernel inherits this process's environment
        monkeypatch.setenv(key, value)
    resources = {"metadata": {"path": str(LESSON.parent)}}
    client = NotebookClient(nb, timeout=300, kernel_name="python3", resources=resources)
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    return text, images


@pytest.mark.slow
def test_section_runs_on_a_checkpoint_from_the_environment_variable(tmp_path, monkeypatch):
    from test_pretrained import byte_tokenizer_json, random_hf_model

    folder = tmp_path / "mamba-tiny-hf"
    random_hf_model(vocab=256).save_pretrained(folder)
    byte_tokenizer_json(folder / "tokenizer.json")
    text, images = run_section({pretrained.CHECKPOINT_ENV: str(folder), "HF_HUB_OFFLINE": "1"}, monkeypatch)
    assert "checkpoint mamba-tiny-hf: 3 layers, d_model 32, vocabulary 256" in text
    assert "greedy continuation (checkpoint mamba-tiny-hf): 'Mamba is a" in text
    assert "UNTRAINED" not in text and len(images) == 2


@pytest.mark.slow
def test_section_without_a_checkpoint_runs_untrained_and_says_so(tmp_path, monkeypatch):
    env = {pretrained.CHECKPOINT_ENV: "", "HF_HUB_CACHE": str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE": "1"}
    text, images = run_section(env, monkeypatch)
    assert "No checkpoint found" in text and "UNTRAINED tiny random model: 4 layers" in text
    assert "greedy continuation (UNTRAINED tiny random model)" in text and len(images) == 2
