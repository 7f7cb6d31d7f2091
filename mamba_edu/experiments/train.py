"""A small trainer for the synthetic tasks, and the experiments of lesson 5 (LTI vs selective).

Explained in lesson 5. ``run_experiment("selective-copying")`` trains the same small network twice,
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

# The quick configurations finish in minutes on 2 CPU cores; --full ones are larger (not measured). Why these
# values (a small initial Δ for induction heads, a length curriculum and lr = 1e-2 for selective copying) and what
# they gave: README, "Measured", and the recorded runs in mamba_edu/data/experiments.json.
# dt_min, dt_max: range of the initial step sizes Δ. Selective copying trains with a length curriculum
# (curriculum_start noise tokens at step 0, growing linearly to n_noise over the first curriculum_fraction of the
# steps; see noise_curriculum) and is always evaluated at the full length n_noise + 2·n_data; both models get the
# same batches.
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

# What each configuration entry may hold: (kind, smallest allowed value, None allowed). "int" excludes booleans;
# "float" takes ints too; "ints" is a non-empty list of ints; "fraction" is (0, 1], "unit" [0, 1].
_RULES = {
    "steps": ("int", 1, False), "batch": ("int", 1, False), "eval_batch": ("int", 1, False),
    "eval_every": ("int", 1, False), "d_model": ("int", 1, False), "n_layer": ("int", 1, False),
    "d_state": ("int", 1, False), "n_data": ("int", 1, False), "n_noise": ("int", 0, False),
    "n_values": ("int", 1, False), "length": ("int", 2, False), "vocab_size": ("int", 2, False),
    "curriculum_start": ("int", 0, True), "lr": ("float", 0, False), "dt_min": ("float", 0, False),
    "dt_max": ("float", 0, False), "stop_at": ("unit", 0, True), "curriculum_fraction": ("fraction", 0, False),
    "test_lengths": ("ints", 2, False),
}


def _check_entry(key, value):
    kind, low, none_ok = _RULES[key]
    if value is None and none_ok:
        return None
    what = {"int": f"an integer ≥ {low}", "float": f"a finite number > {low}",
            "fraction": "a number in (0, 1]", "unit": "a number in [0, 1]",
            "ints": f"a non-empty list of integers ≥ {low}"}[kind]
    what += " or null" if none_ok else ""
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)
    if kind == "int" and is_int(value) and value >= low:
        return value
    if kind in ("float", "fraction", "unit") and (is_int(value) or isinstance(value, float)) and math.isfinite(value):
        if (value >= low if kind == "unit" else value > low) and (kind == "float" or value <= 1):
            return float(value)
    if kind == "ints" and isinstance(value, (list, tuple)) and value and all(is_int(v) and v >= low for v in value):
        return list(value)
    raise ValueError(f"{key} must be {what}, got {value!r}")


def check_config(name, overrides=None, full=False):
    """The configuration of experiment ``name`` with ``overrides`` applied, every entry checked.

    Raises ``ValueError`` naming the entry, the value and what was expected (an unknown key, a wrong type such as
    ``steps=True``, a value out of range such as ``eval_every=0`` or ``lr=-1``, ``dt_min > dt_max``).
    """
    if name not in CONFIGS:
        raise ValueError(f"name must be one of {TASKS}, got {name!r}")
    cfg = dict(CONFIGS[name]["full" if full else "quick"])
    unknown = set(overrides or {}) - set(cfg)
    if unknown:
        raise ValueError(f"unknown overrides {sorted(unknown)} for {name}; known: {sorted(cfg)}")
    cfg.update(overrides or {})
    cfg = {key: _check_entry(key, value) for key, value in cfg.items()}
    if cfg["dt_min"] > cfg["dt_max"]:
        raise ValueError(f"dt_min must be ≤ dt_max, got dt_min = {cfg['dt_min']} and dt_max = {cfg['dt_max']}")
    return cfg


def masked_accuracy(logits, targets):
    """Fraction of positions with a target (≠ IGNORE) where argmax(logits) equals it."""
    mask = targets != IGNORE
    return (logits.argmax(-1)[mask] == targets[mask]).double().mean().item()


@torch.no_grad()
def evaluate(model, inputs, targets, chunk=128):
    """Accuracy of ``model`` on a fixed evaluation set, in chunks (to bound the memory); in eval mode, then the
    mode it found is restored."""
    was_training = model.training
    model.eval()
    hits = total = 0
    for i in range(0, len(inputs), chunk):
        logits = model(inputs[i:i + chunk])
        mask = targets[i:i + chunk] != IGNORE
        hits += (logits.argmax(-1)[mask] == targets[i:i + chunk][mask]).sum().item()
        total += mask.sum().item()
    model.train(was_training)
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
    no_decay = {id(p) for n, p in model.named_parameters()  # A_log and D carry the flag (as in the official code)
                if getattr(p, "_no_weight_decay", False) or n.endswith("bias") or "norm" in n}
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
    model.train()
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
    vocabularies, but with a handful of tokens and d_model = 32 it trains several times slower
    (README, "Measured"); ``None`` keeps 0.02.
    ``block_kwargs`` go to every block (e.g. ``dt_min``, ``dt_max``: the range of the initial Δ).
    """
    if kind not in ("selective", "lti"):
        raise ValueError(f"kind must be 'selective' or 'lti', got {kind!r}")
    block_cls = MambaBlock if kind == "selective" else LTIMambaBlock
    with torch.random.fork_rng(devices=[]):  # seeded initialisation that leaves the caller's global RNG alone
        torch.manual_seed(seed)
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

    Explained in lesson 5.
    """
    cfg = check_config(name, overrides, full)
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
