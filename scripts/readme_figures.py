"""Write the README's GPU "Measured" rows from the recorded runs (tests/test_plot_cuda.py checks they agree).

    python scripts/readme_figures.py   # after benchmarks/gpu_scan.py wrote mamba_edu/data/gpu_scan_public_h200.json
"""

from pathlib import Path

from mamba_edu.data import load
from mamba_edu.plot.cuda import as_called_text, ssd_text

README = Path(__file__).resolve().parents[1] / "README.md"
ROW = "| GPU selective scan **as called**"
SSD_ROW = "| SSD (lesson 8) on an NVIDIA H200"


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
    README.write_text("\n".join(lines))
    print(f"README.md: row {i + 1} rewritten from the run of {record['date'][:10]}")


if __name__ == "__main__":
    main()
