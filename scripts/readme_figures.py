"""Write the README's GPU "Measured" rows from the recorded runs (tests/test_plot_cuda.py checks they agree).

    python scripts/readme_figures.py   # after benchmarks/gpu_scan.py wrote mamba_edu/data/gpu_scan_public_h200.json
"""

import json
from pathlib import Path

from mamba_edu.bench import cpu_scan_text
from mamba_edu.data import load
from mamba_edu.plot.cuda import as_called_text, ssd_text

README = Path(__file__).resolve().parents[1] / "README.md"
TRAIN = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gpu_train_step.json"
ROW = "| GPU selective scan **as called**"
SSD_ROW = "| SSD (lesson 8) on an NVIDIA H200"
CPU_ROW = "| CPU selective scan,"
TRAIN_ROW = "| `MambaLM` training step on the H200"


def train_step_text(record):
    """The recorded MambaLM training steps (benchmarks/gpu_train_step.py) in one sentence, per configuration."""
    configs = {}
    for r in record["rows"]:
        key = (r["d_model"], r["n_layer"], r["batch"], r["length"])
        result = f"{r['step_ms']:.1f} ms" if "step_ms" in r else (
            "out of memory" if "out of memory" in r.get("error", "") else "failed")
        configs.setdefault(key, []).append(f"{r['impl']} {result}")
    return ". ".join(f"d_model {d}, {n} layers, batch {b}, l {l}: " + ", ".join(items)
                     for (d, n, b, l), items in configs.items()) + f" ({record['date'][:10]})"


def main():
    record = load("gpu_scan_public_h200")
    lines = README.read_text().split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith(ROW))
    first, _, last = lines[i].split(" | ")
    first = first.split(" (2026")[0].split(", same process")[0]
    lines[i] = " | ".join([f"{first}, same process ({record['date'][:10]})", as_called_text(record), last])
    k = next(k for k, line in enumerate(lines) if line.startswith(SSD_ROW))
    first, _, last = lines[k].split(" | ")
    lines[k] = " | ".join([first, ssd_text(load("ssd_gpu_h200")), last])
    k = next(k for k, line in enumerate(lines) if line.startswith(CPU_ROW))
    first, _, last = lines[k].split(" | ")
    lines[k] = " | ".join(["| CPU selective scan, float32, 2 threads, 2-core machine", cpu_scan_text(load("cpu_scan")),
                           last])
    k = next(k for k, line in enumerate(lines) if line.startswith(TRAIN_ROW))
    first, _, last = lines[k].split(" | ")
    lines[k] = " | ".join([first, train_step_text(json.loads(TRAIN.read_text())), last])
    README.write_text("\n".join(lines))
    print(f"README.md: row {i + 1} rewritten from the run of {record['date'][:10]}")


if __name__ == "__main__":
    main()
