"""A small trainer for the synthetic tasks, and the experiments of lesson 6 (LTI vs selective).

Explained in lesson 6. ``run_experiment("selective-copying")`` trains the same small network twice,
once with the selective Mamba block and once with its LTI ablation, and returns a JSON-able dict.
"""

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from mamba_edu.experiments.lti import LTIMambaBlock
from mamba_edu.experiments.tasks import (
    IGNORE,
    induction_heads_batch,
    selective_copying_batch,
    selective_copying_vocab,
)
from mamba_edu.mamba.block import MambaBlock
from mamba_edu.mamba.model import MambaLM

# The quick configurations are meant to finish in a few minutes on 2 CPU cores; --full ones are larger.
# dt_min, dt_max: range of the initial step sizes Δ. For induction heads a small initial Δ (1e-4 … 1e-2
# instead of Mamba's 1e-3 … 0.1) extrapolates further: measured at 4x the training length 98-99 % vs 94 %,
# at 8x 70 % vs 51 % (recorded.py: "ih_quick", "ih_small_dt", "ih"); memory fades less over unseen distances.
# Selective copying trains with a length curriculum (curriculum_start noise tokens at step 0, growing
# linearly to n_noise over the first curriculum_fraction of the steps; see noise_curriculum) and is always
# evaluated at the full length n_noise + 2·n_data. Both models get the same batches, so the comparison
# stays fair; a selective model that learned "write data, skip noise" transfers to the longer sequences,
# an LTI kernel tied to positions does not. Measured for the quick one (recorded.py: "sc_quick"): with
# 6 data tokens of 16 values among 244 noise tokens (l = 256) the selective model reached 99.5 % after
# 1 200 steps and the LTI ablation 39.5 % after its 2 000, in 5 min 43 s for both on an idle 2-core
# machine. The LTI model answers more as the task gets easier for a position-bound filter: with 4 data
# tokens of 8 values ("sc_4data") it reached 56 % (seed 1: 64 %); with 8 data tokens ("sc_8data") 41 %, but
# there the selective model needs more than 1 500 steps. lr = 1e-2 instead of 3e-3 learned several
# times faster (93 % vs 67 % after 600 steps at 32 tokens).
# The full configurations were not measured.
CONFIGS = {
    "selective-copying": {
        "quick": dict(n_data=6, n_noise=244, n_values=16, d_model=32, n_layer=2, d_state=8, steps=2000,
                      batch=32, lr=1e-2, eval_batch=512, eval_every=100, stop_at=0.99, dt_min=0.001, dt_max=0.1,
                      curriculum_start=16, curriculum_fraction=0.5),
        "full": dict(n_data=16, n_noise=1008, n_values=16, d_model=64, n_layer=2, d_state=16, steps=10000,
                     batch=32, lr=5e-3, eval_batch=1024, eval_every=500, stop_at=0.995, dt_min=0.001, dt_max=0.1,
                     curriculum_start=32, curriculum_fraction=0.5),
    },
    "induction-heads": {
        "quick": dict(length=64, vocab_size=16, test_lengths=[64, 128, 256, 512], d_model=32, n_layer=2,
                      d_state=16, steps=1000, batch=32, lr=3e-3, eval_batch=512, eval_every=100, stop_at=0.99,
                      dt_min=1e-4, dt_max=1e-2),
        "full": dict(length=256, vocab_size=16, test_lengths=[256, 512, 1024, 2048, 4096, 8192, 16384],
                     d_model=64, n_layer=2, d_state=16, steps=10000, batch=32, lr=2e-3, eval_batch=512,
                     eval_every=500, stop_at=0.995, dt_min=1e-4, dt_max=1e-2),
    },
}
TASKS = list(CONFIGS)


def masked_accuracy(logits, targets):
    """Fraction of positions with a target (≠ IGNORE) where argmax(logits) equals it."""
    mask = targets != IGNORE
    return (logits.argmax(-1)[mask] == targets[mask]).double().mean().item()


@torch.no_grad()
def evaluate(model, inputs, targets, chunk=128):
    """Accuracy of ``model`` on a fixed evaluation set, in chunks (to bound the memory)."""
    model.eval()
    hits = total = 0
    for i in range(0, len(inputs), chunk):
        logits = model(inputs[i:i + chunk])
        mask = targets[i:i + chunk] != IGNORE
        hits += (logits.argmax(-1)[mask] == targets[i:i + chunk][mask]).sum().item()
        total += mask.sum().item()
    model.train()
    return hits / total


def train(model, make_batch, steps, lr, eval_set=None, eval_every=100, desc="train", progress=True,
          target_accuracy=None):
    """Train ``model`` with AdamW on batches ``make_batch(step) -> (inputs, targets)``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps token ids (b, l) to logits (b, l, vocab).
    make_batch : callable
        Returns a fresh (inputs, targets) batch; targets are ``IGNORE`` where nothing is asked.
    steps : int
    lr : float
        Peak learning rate (linear warm-up over 5 % of the steps, then cosine decay to 10 %).
    eval_set : (inputs, targets), optional
        Evaluated every ``eval_every`` steps and at the end.
    progress : bool
        Show a tqdm progress bar (loss and accuracy in its postfix).
    target_accuracy : float, optional
        Stop early once the evaluation accuracy reaches this.

    Returns
    -------
    dict
        ``history``: list of {"step", "loss", "accuracy"}; ``accuracy``: the final evaluation;
        ``steps``: steps run; ``seconds``: wall time.
    """
    from tqdm.auto import tqdm

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    no_decay = {id(p) for n, p in model.named_parameters() if n.endswith(("A_log", "D", "bias")) or "norm" in n}
    optim = torch.optim.AdamW([
        {"params": [p for p in params if id(p) not in no_decay], "weight_decay": 0.1},
        {"params": [p for p in params if id(p) in no_decay], "weight_decay": 0.0},
    ], lr=lr, betas=(0.9, 0.98))
    warmup = max(1, steps // 20)
    schedule = lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    sched = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    history, start, acc, loss_value = [], time.perf_counter(), None, float("nan")
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0)
    step = 0
    for step in bar:
        inputs, targets = make_batch(step)
        logits = model(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        loss_value = loss.item()
        if eval_set is not None and ((step + 1) % eval_every == 0 or step + 1 == steps):
            acc = evaluate(model, *eval_set)
            history.append({"step": step + 1, "loss": loss_value, "accuracy": acc})
            bar.set_postfix(loss=f"{loss_value:.3f}", acc=f"{acc:.3f}")
            if target_accuracy is not None and acc >= target_accuracy:
                break
    bar.close()
    if eval_set is not None and (not history or history[-1]["step"] != step + 1):
        acc = evaluate(model, *eval_set)
        history.append({"step": step + 1, "loss": loss_value, "accuracy": acc})
    return {"history": history, "accuracy": acc, "steps": step + 1, "seconds": time.perf_counter() - start}


def build_model(kind, vocab_size, d_model, n_layer, d_state, seed, embedding_std=1.0, **block_kwargs):
    """``MambaLM`` with selective (``kind="selective"``) or LTI (``kind="lti"``) blocks, seeded.

    ``embedding_std`` re-draws the (tied) embedding N(0, std²): the official 0.02 suits large
    vocabularies, but with a handful of tokens and d_model = 32 it makes training several times
    slower (measured on selective copying: 23 % vs 62 % after 300 steps); ``None`` keeps 0.02.
    ``block_kwargs`` go to every block (e.g. ``dt_min``, ``dt_max``: the range of the initial Δ).
    """
    if kind not in ("selective", "lti"):
        raise ValueError(f"kind must be 'selective' or 'lti', got {kind!r}")
    torch.manual_seed(seed)
    block_cls = MambaBlock if kind == "selective" else LTIMambaBlock
    model = MambaLM(vocab_size, d_model, n_layer, d_state=d_state, block_cls=block_cls, **block_kwargs)
    if embedding_std is not None:
        nn.init.normal_(model.backbone.embedding.weight, std=embedding_std)
    return model


def _task_data(name, cfg):
    """(vocab size, make_batch(generator, batch[, length]), evaluation sets by name) for a task.

    ``length`` is the sequence length for induction heads and the number of noise tokens for
    selective copying; ``None``: the configuration's.
    """
    if name == "selective-copying":
        vocab = selective_copying_vocab(cfg["n_values"])

        def make(gen, batch, length=None):  # ``length``: noise tokens (default: the evaluation's n_noise)
            n_noise = cfg["n_noise"] if length is None else length
            return selective_copying_batch(batch, cfg["n_data"], n_noise, cfg["n_values"], gen)

        return vocab, make, {"train": None}
    vocab = cfg["vocab_size"]

    def make(gen, batch, length=None):
        return induction_heads_batch(batch, length or cfg["length"], vocab, gen)

    return vocab, make, {"train": None, **{length: length for length in cfg["test_lengths"]}}


def noise_curriculum(step, steps, n_noise, start, fraction):
    """Noise tokens of the selective-copying training batch at ``step`` (0-based) of ``steps``.

    A length curriculum: ``start`` noise tokens at step 0, growing linearly to ``n_noise`` (the
    evaluation length) over the first ``fraction`` of the steps, then ``n_noise`` to the end.
    ``start=None`` switches it off (always ``n_noise``). Short sequences are cheaper per step and
    let the model find the rule "write data, skip noise" before it must hold the data for long.
    """
    if start is None or n_noise <= start:
        return n_noise
    ramp = fraction * steps
    if step >= ramp:
        return n_noise
    return start + int((n_noise - start) * step / ramp)


def training_batches(name, cfg, seed):
    """``make_batch(step) -> (inputs, targets)``: the training batches of ``run_experiment``.

    Seeded by ``seed`` alone, and for selective copying with the noise length of
    :func:`noise_curriculum` at each step: two calls with the same arguments give the same batches in
    the same order — how ``run_experiment`` gives both models identical training data.
    """
    _, make, _ = _task_data(name, cfg)
    gen = torch.Generator().manual_seed(seed)
    if name != "selective-copying":
        return lambda step: make(gen, cfg["batch"])
    return lambda step: make(gen, cfg["batch"], noise_curriculum(
        step, cfg["steps"], cfg["n_noise"], cfg["curriculum_start"], cfg["curriculum_fraction"]))


def _device(device):
    """``None``/"cpu"/"cuda"/"cuda:1"/torch.device → torch.device, or a ValueError saying why not."""
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device is {device!r} but torch sees no CUDA GPU (torch {torch.__version__})")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return dev


def run_experiment(name, full=False, seed=0, progress=True, device=None, **overrides):
    """Train the selective model and its LTI ablation on a synthetic task; return the results.

    Parameters
    ----------
    name : {"selective-copying", "induction-heads"}
    full : bool
        The larger configuration instead of the quick one (see ``CONFIGS``).
    seed : int
        Seeds the data and both models (each model gets the same initial seed).
    progress : bool
        tqdm progress bars.
    device : str or torch.device, optional
        Where both models train (default the CPU). On ``"cuda"`` the selective model's scan runs on the
        CuPy kernel (``selective_scan`` dispatches to it when CuPy is installed).
    **overrides
        Replace entries of the configuration (e.g. ``steps=50, n_noise=20`` for a tiny run). Both models
        get the same budget of ``steps``; each stops early once its evaluation accuracy reaches
        ``stop_at`` (``None``: never). Selective copying trains with the length curriculum of
        :func:`noise_curriculum` (``curriculum_start=None``: off), applied identically to both models
        (the same batches, see :func:`training_batches`), and always evaluates at the full length.

    Returns
    -------
    dict (JSON-able)
        ``task``, ``lti_accuracy``, ``selective_accuracy`` (at the configuration's length), ``steps`` (the
        budget), ``lti_steps`` and ``selective_steps`` (steps run),
        ``seconds`` (both trainings and evaluations), ``config``, ``history`` (accuracy vs steps for
        each model); for induction heads also ``lti_by_length`` and ``selective_by_length``
        (accuracy at each test length) and ``max_extrapolation`` (the longest test length / training
        length at which the selective model is ≥ 95 % accurate).

    Explained in lesson 6.
    """
    if name not in CONFIGS:
        raise ValueError(f"name must be one of {TASKS}, got {name!r}")
    cfg = dict(CONFIGS[name]["full" if full else "quick"])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise ValueError(f"unknown overrides {sorted(unknown)} for {name}; known: {sorted(cfg)}")
    cfg.update(overrides)
    dev = _device(device)
    vocab, make, _ = _task_data(name, cfg)
    start = time.perf_counter()
    to_dev = lambda batch: tuple(t.to(dev) for t in batch)

    eval_gen = torch.Generator().manual_seed(seed + 10_000)  # the same held-out set for both models
    eval_set = to_dev(make(eval_gen, cfg["eval_batch"]))
    extra = {}
    if name == "induction-heads":
        extra = {length: to_dev(make(eval_gen, cfg["eval_batch"], length)) for length in cfg["test_lengths"]}

    result = {"task": name, "full": bool(full), "seed": seed, "device": str(dev), "config": cfg, "history": {}}
    for kind in ("lti", "selective"):
        model = build_model(kind, vocab, cfg["d_model"], cfg["n_layer"], cfg["d_state"], seed,
                            dt_min=cfg["dt_min"], dt_max=cfg["dt_max"]).to(dev)
        batches = training_batches(name, cfg, seed)  # the same training batches for both models
        make_batch = lambda step, batches=batches: to_dev(batches(step))
        out = train(model, make_batch, cfg["steps"], cfg["lr"],
                    eval_set=eval_set, eval_every=cfg["eval_every"], desc=f"{name} {kind}", progress=progress,
                    target_accuracy=cfg["stop_at"])
        result[f"{kind}_accuracy"] = out["accuracy"]
        result[f"{kind}_steps"] = out["steps"]
        result[f"{kind}_seconds"] = out["seconds"]
        result["history"][kind] = out["history"]
        if extra:
            result[f"{kind}_by_length"] = {str(length): evaluate(model, *data) for length, data in extra.items()}
    result["steps"] = cfg["steps"]
    if name == "induction-heads":
        good = [int(k) for k, v in result["selective_by_length"].items() if v >= 0.95]
        result["max_extrapolation"] = max(good) / cfg["length"] if good else 0.0
    result["seconds"] = time.perf_counter() - start
    return result
