"""Time one MambaLM training step on a CUDA GPU: our kernel vs our pure-torch reference vs mambapy.

Reproduce (on a machine with CuPy and a CUDA GPU, from the repository root; mambapy from PyPI)::

    PYTHONPATH=. python benchmarks/gpu_train_step.py

A step is forward (cross-entropy on random tokens) + backward + AdamW update, in float32, timed with
``torch.cuda.synchronize`` and a wall clock around each step, median of --steps after 2 warm-up steps.
Three models of the same size, in one process:

* ``kernel``: ``me.MambaLM`` as it runs on CUDA — ``selective_scan`` dispatches to the CuPy kernel;
* ``reference``: the same model with the dispatch switched off (``selective_scan_ref``, a loop over time);
* ``mambapy``: the PyPI package's ``LM`` (pure PyTorch, its parallel scan ``pscan``).

Configurations that do not fit (out of memory) or take too long are reported as such.
"""

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import mamba_edu as me  # noqa: E402

CONFIGS = [  # (d_model, n_layer, batch, length, which)
    dict(d_model=768, n_layer=24, batch=8, length=2048, runs=("kernel", "mambapy")),
    dict(d_model=768, n_layer=4, batch=8, length=512, runs=("kernel", "reference", "mambapy")),
]
VOCAB = 1024


def build(which, d_model, n_layer):
    import torch

    if which == "mambapy":  # mambapy.lm imports its Mamba-2 (which needs mamba_ssm): build the same LM here
        from mambapy.mamba import Mamba, MambaConfig, RMSNorm

        class MambapyLM(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embedding = torch.nn.Embedding(VOCAB, d_model)
                self.mamba = Mamba(MambaConfig(d_model=d_model, n_layers=n_layer))
                self.norm_f = RMSNorm(d_model)
                self.lm_head = torch.nn.Linear(d_model, VOCAB, bias=False)
                self.lm_head.weight = self.embedding.weight

            def forward(self, tokens):
                return self.lm_head(self.norm_f(self.mamba(self.embedding(tokens))))

        return MambapyLM().cuda()
    torch.manual_seed(0)
    return me.MambaLM(VOCAB, d_model, n_layer).cuda()


def step_time(which, cfg, steps):
    """Median seconds of one training step; patches the dispatch off for ``reference``."""
    import torch
    import torch.nn.functional as F

    from mamba_edu.scans import cuda

    model = build(which, cfg["d_model"], cfg["n_layer"])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator(device="cuda").manual_seed(0)
    tokens = torch.randint(0, VOCAB, (cfg["batch"], cfg["length"] + 1), device="cuda", generator=g)
    original_scan, original_v2 = cuda.scan_if_supported, cuda._torch_v2
    kernel_calls = []  # which path ran is counted, not assumed
    cuda._torch_v2 = lambda *a, **k: kernel_calls.append(1) or original_v2(*a, **k)
    if which == "reference":  # selective_scan's CUDA branch says "not supported": the reference runs
        cuda.scan_if_supported = lambda *a, **k: None
    try:
        times = []
        for i in range(steps + 2):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            logits = model(tokens[:, :-1])
            logits = logits.logits if hasattr(logits, "logits") else logits
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            torch.cuda.synchronize()
            if i >= 2:
                times.append(time.perf_counter() - t0)
        peak = torch.cuda.max_memory_allocated() / 2**30
        step_ms = round(1e3 * statistics.median(times), 1)
        if (which == "kernel") != bool(kernel_calls):
            raise RuntimeError(f"the {which} run made {len(kernel_calls)} calls of the CUDA kernel")
        return dict(step_ms=step_ms, peak_GiB=round(peak, 1), loss=float(loss.detach()))
    finally:
        cuda.scan_if_supported, cuda._torch_v2 = original_scan, original_v2
        del model, opt
        torch.cuda.empty_cache()


def main():
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--output", default=str(Path(__file__).resolve().parent / "results" / "gpu_train_step.json"))
    args = parser.parse_args()
    rows = []
    for cfg in CONFIGS:
        for which in cfg["runs"]:
            torch.cuda.reset_peak_memory_stats()
            row = dict({k: v for k, v in cfg.items() if k != "runs"}, impl=which)
            try:
                row.update(step_time(which, cfg, args.steps if which != "reference" else 2))
            except torch.OutOfMemoryError as err:
                row["error"] = f"out of memory: {str(err)[:120]}"
                torch.cuda.empty_cache()
            except Exception as err:
                row["error"] = f"{type(err).__name__}: {str(err)[:200]}"
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=torch.cuda.get_device_name(), torch=torch.__version__,
                  setting=f"float32, vocab {VOCAB}, AdamW, forward + cross-entropy + backward + step; median of "
                          f"{args.steps} steps (reference: 2) after 2 warm-up steps",
                  command="PYTHONPATH=. python benchmarks/gpu_train_step.py", rows=rows)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", args.output)


if __name__ == "__main__":
    main()
