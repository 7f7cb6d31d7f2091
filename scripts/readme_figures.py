"""Write the README's "Measured" rows (GPU scan, SSD, CPU scan, training step) from their recorded runs.

tests/test_readme_figures.py checks that the README and the records agree.

    python scripts/readme_figures.py   # after benchmarks/gpu_scan.py wrote mamba_edu/data/gpu_scan_public_h200.json
"""

import json
from pathlib import Path

from mamba_edu.bench import cpu_scan_text, train_step_text
from mamba_edu.data import load
from mamba_edu.plot.cuda import as_called_text, ssd_text

README = Path(__file__).resolve().parents[1] / "README.md"
TRAIN = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gpu_train_step.json"
ROW = "| GPU selective scan **as called**"
SSD_ROW = "| SSD (lesson 8) on an NVIDIA H200"
CPU_ROW = "| CPU selective scan,"
TRAIN_ROW = "| `MambaLM` training step on the H200"


def _rewrite(lines, prefix, text, first=None):
    """Replace the middle cell of the table row that starts with ``prefix`` (and its first cell, if given)."""
    k = next(k for k, line in enumerate(lines) if line.startswith(prefix))
    old_first, _, last = lines[k].split(" | ")
    lines[k] = " | ".join([first or old_first, text, last])


def main():
    record = load("gpu_scan_public_h200")
    lines = README.read_text().split("\n")
    first = next(line for line in lines if line.startswith(ROW)).split(" | ")[0]
    first = first.split(", same process")[0] + f", same process ({record['date'][:10]})"  # the run's date
    _rewrite(lines, ROW, as_called_text(record), first)
    _rewrite(lines, SSD_ROW, ssd_text(load("ssd_gpu_h200")))
    _rewrite(lines, CPU_ROW, cpu_scan_text(load("cpu_scan")), f"{CPU_ROW} float32, 2 threads, 2-core machine")
    _rewrite(lines, TRAIN_ROW, train_step_text(json.loads(TRAIN.read_text())))
    README.write_text("\n".join(lines))
    print("README.md: the GPU scan, SSD, CPU scan and training-step rows rewritten from their records")


if __name__ == "__main__":
    main()
