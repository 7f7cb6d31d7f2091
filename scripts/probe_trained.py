"""Train the selective models of lesson 5 and record what is inside them: mamba_edu/data/probes.json.

    python scripts/probe_trained.py            # the quick configurations (selective model only)
    python scripts/probe_trained.py --small    # selective copying at 4 data tokens among 60 noise (l = 68)
    python scripts/probe_trained.py --steps 30 --out /tmp/p.json   # a smoke test

Trains with the configurations of ``mamba-edu experiment`` (seed 0, the selective model only, since the
probes look inside it), probes 256 held-out sequences per task (mamba_edu.experiments.probe) and writes
the figures with the configuration, the accuracy, the training time and the machine.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from mamba_edu.experiments.probe import probe_induction_heads, probe_selective_copying, train_selective
from mamba_edu.experiments.tasks import induction_heads_batch, selective_copying_batch

SMALL_COPYING = dict(n_data=4, n_noise=60, n_values=8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="a shorter selective-copying task: " + str(SMALL_COPYING))
    parser.add_argument("--steps", type=int, default=None, help="override both training budgets")
    parser.add_argument("--out", default=str(Path(__file__).parents[1] / "mamba_edu" / "data" / "probes.json"))
    args = parser.parse_args()
    torch.set_num_threads(2)
    steps = {} if args.steps is None else {"steps": args.steps}
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores (shared with other work), torch {torch.__version__}"
    record = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine,
              "command": "python scripts/probe_trained.py" + (" --small" if args.small else "")}

    copying = dict(SMALL_COPYING if args.small else {}, **steps)
    model, info = train_selective("selective-copying", seed=0, progress=True, **copying)
    cfg = info["config"]
    inputs, _ = selective_copying_batch(256, cfg["n_data"], cfg["n_noise"], cfg["n_values"],
                                        torch.Generator().manual_seed(123))
    record["selective_copying"] = {"train": info, "probe": probe_selective_copying(model, inputs)}
    print("selective copying:", {k: info[k] for k in ("accuracy", "steps", "seconds")}, flush=True)

    model, info = train_selective("induction-heads", seed=0, progress=True, **steps)
    cfg = info["config"]
    inputs, targets = induction_heads_batch(256, cfg["length"], cfg["vocab_size"], torch.Generator().manual_seed(123))
    record["induction_heads"] = {"train": info, "probe": probe_induction_heads(model, inputs, targets)}
    print("induction heads:", {k: info[k] for k in ("accuracy", "steps", "seconds")}, flush=True)

    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    p, q = record["selective_copying"]["probe"], record["induction_heads"]["probe"]
    print(f"copying: {p['channels_data_larger']:.0%} of channels larger Δ on data, median ratio "
          f"{p['median_ratio']:.2f}; right after data {p['channels_after_data_larger']:.0%}, "
          f"{p['median_ratio_after_data']:.2f}")
    print(f"induction: top-8 ratio {q['top_ratio_with']:.2f} with look-back, {q['top_ratio_without']:.2f} without; "
          f"accuracy {q['accuracy']}")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
