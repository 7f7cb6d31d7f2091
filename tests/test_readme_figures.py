"""The README's "Measured" rows are the recorded runs' own text (``python scripts/readme_figures.py`` writes them)."""

from pathlib import Path

import pytest

from mamba_edu.bench import cpu_scan_text, train_step_text
from mamba_edu.data import load
from mamba_edu.plot.cuda import as_called_text, ssd_text

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("text, data", [(as_called_text, "gpu_scan_public_h200"), (ssd_text, "ssd_gpu_h200"),
                                        (cpu_scan_text, "cpu_scan")])
def test_readme_quotes_the_recorded_run(text, data):
    assert text(load(data)) in README, f"README.md's row for {data} is stale: run python scripts/readme_figures.py"


def test_cpu_verdict_follows_the_public_call():
    """The CPU target is judged at me.selective_scan as called, not at the kernel alone."""
    row = dict(shape=[2, 512, 1024, 16], mambapy=dict(forward_ms=100.0, fwd_bwd_ms=100.0),
               numba=dict(forward_ms=10.0, fwd_bwd_ms=10.0),
               public=dict(forward_ms=25.0, fwd_bwd_ms=15.0, forward_ratio=0.25, fwd_bwd_ratio=0.15))
    text = cpu_scan_text(dict(rows=[row], machine=dict(load_average=[0.2, 0.2, 0.2], cores=2)))
    assert "0.25× / 0.15× (target ≤ 0.2×: missed" in text


def test_readme_quotes_the_recorded_training_step():
    import json

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gpu_train_step.json"
    record = json.loads(path.read_text())
    assert train_step_text(record) in README, "run python scripts/readme_figures.py"
