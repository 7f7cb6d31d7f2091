"""Inside a trained model: what Δ, B, C and the state do on the synthetic tasks.  Explained in lesson 5.

:func:`train_selective` trains the selective ``MambaLM`` of :func:`~mamba_edu.experiments.run_experiment`
(same configurations, same data, no LTI twin) and returns the model. :func:`block_internals` re-runs one
Mamba block step by step and returns everything inside it — the conv output u, the step size Δ after
its bias and softplus, B, C and the states h — so that :func:`probe_selective_copying` and
:func:`probe_induction_heads` can measure, on held-out sequences:

* selective copying: Δ on data tokens vs noise tokens, per channel; the state holding a data token
  while noise streams past;
* induction heads: Δ at the token right after the trigger vs elsewhere, with and without the
  convolution's look-back (conv1d's taps on earlier tokens zeroed).

``scripts/probe_trained.py`` runs both and stores the figures in ``mamba_edu/data/probes.json``.
"""

import copy

import torch
import torch.nn.functional as F

from mamba_edu.experiments.tasks import FIRST_DATA, MARKER, NOISE, TRIGGER
from mamba_edu.experiments.train import _task_data, build_model, check_config, evaluate, train, training_batches
from mamba_edu.scans.sequential import sequential_scan


def train_selective(name, seed=0, progress=False, **overrides):
    """Train the selective model of ``run_experiment(name, seed=seed, **overrides)`` alone.

    Returns
    -------
    model : MambaLM (in eval mode)
    info : dict
        ``config``, ``accuracy`` (held-out, at the configuration's length), ``steps``, ``seconds``.
    """
    cfg = check_config(name, overrides)  # the same checks as run_experiment
    vocab, make, _ = _task_data(name, cfg)
    eval_set = make(torch.Generator().manual_seed(seed + 10_000), cfg["eval_batch"])
    model = build_model("selective", vocab, cfg["d_model"], cfg["n_layer"], cfg["d_state"], seed,
                        dt_min=cfg["dt_min"], dt_max=cfg["dt_max"])
    out = train(model, training_batches(name, cfg, seed), cfg["steps"], cfg["lr"], eval_set=eval_set,
                eval_every=cfg["eval_every"], desc=f"{name} selective", progress=progress,
                target_accuracy=cfg["stop_at"])
    model.eval()
    return model, {"config": cfg, "accuracy": out["accuracy"], "steps": out["steps"], "seconds": out["seconds"]}


@torch.no_grad()
def mixer_inputs(model, input_ids):
    """The (normalised) input of every layer's mixer, (b, l, d_model) each, for ``input_ids`` (b, l)."""
    inputs = []
    hooks = [layer.mixer.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
             for layer in model.backbone.layers]
    try:
        model(input_ids)
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


@torch.no_grad()
def block_internals(block, hidden, look_back=True):
    """Everything inside one selective Mamba block for ``hidden`` (b, l, d_model).

    Parameters
    ----------
    block : MambaBlock
    hidden : Tensor, shape (b, l, d_model)
        The block's input (after its RMSNorm).
    look_back : bool
        False zeroes conv1d's taps on earlier tokens: each token's u then depends on itself alone.

    Returns
    -------
    dict of float64 tensors
        ``u`` (b, d, l) the SSM input (conv1d, SiLU); ``delta`` (b, d, l) the step size after the bias
        and softplus; ``B``, ``C`` (b, n, l); ``A`` (d, n); ``h`` (b, d, n, l) the state after each token.
    """
    block = copy.deepcopy(block).double()  # the block's own layers, in float64, without touching the model
    hidden = hidden.double()
    l = hidden.shape[1]
    if not look_back:  # keep only conv1d's last tap, the one that multiplies the current token
        block.conv1d.weight[..., :-1] = 0
    u, _ = block.in_proj(hidden).transpose(1, 2).chunk(2, dim=1)  # (b, d, l)
    u = F.silu(block.conv1d(u)[..., :l])
    dt_low, B, C = torch.split(block.x_proj(u.transpose(1, 2)), [block.dt_rank, block.d_state, block.d_state], dim=-1)
    delta = F.softplus(block.dt_proj(dt_low))
    delta, B, C = delta.transpose(1, 2), B.transpose(1, 2), C.transpose(1, 2)  # (b, d, l), (b, n, l) x 2
    A = -torch.exp(block.A_log)  # (d, n)
    A_bar = torch.exp(delta[:, :, None] * A[None, :, :, None])  # (b, d, n, l)
    h = sequential_scan(A_bar, delta[:, :, None] * B[:, None] * u[:, :, None])  # every state, (b, d, n, l)
    return {"u": u, "delta": delta, "B": B, "C": C, "A": A, "h": h}


def _median(x):
    return float(x.median()) if x.numel() else float("nan")


@torch.no_grad()
def probe_selective_copying(model, inputs, layer=0, example=0):
    """Δ on data vs noise tokens, per channel, and one example of the state holding a data token.

    Parameters
    ----------
    model : MambaLM trained on selective copying
    inputs : LongTensor, shape (b, l)
        Held-out sequences (noise 0, marker 1, data ≥ 2).
    layer : int
        The layer probed.
    example : int
        The sequence used for the state trace.

    Returns
    -------
    dict (JSON-able)
        ``delta_data``, ``delta_noise``, ``delta_after_data``: per channel, the median Δ over data tokens,
        noise tokens, and noise tokens right after a data token (before the markers; "noise" excludes the
        latter); ``ratio`` and ``ratio_after_data``: data / noise and after-data / noise per channel;
        ``channels_data_larger`` / ``channels_after_data_larger``: the fraction of channels where that
        ratio exceeds 1; ``median_ratio`` / ``median_ratio_after_data``; ``example``: tokens, Δ of the most selective
        channel at every position, and that channel's state norm ``|h_t|`` after every token.
    """
    internals = block_internals(model.backbone.layers[layer].mixer, mixer_inputs(model, inputs)[layer])
    delta = internals["delta"]  # (b, d, l)
    before_markers = torch.zeros_like(inputs, dtype=torch.bool)
    before_markers[:, : inputs.shape[1] - int((inputs[0] == MARKER).sum())] = True
    is_data = (inputs >= FIRST_DATA) & before_markers
    is_noise = (inputs == NOISE) & before_markers
    after_data = torch.zeros_like(is_data)
    after_data[:, 1:] = is_data[:, :-1] & is_noise[:, 1:]  # a noise token right after a data token
    d = delta.shape[1]
    data = [_median(delta[:, c][is_data]) for c in range(d)]
    noise = [_median(delta[:, c][is_noise & ~after_data]) for c in range(d)]
    after = [_median(delta[:, c][after_data]) for c in range(d)]
    ratio = [a / b for a, b in zip(data, noise)]
    ratio_after = [a / b for a, b in zip(after, noise)]
    top = max(range(d), key=lambda c: max(ratio[c], ratio_after[c]))
    norm = internals["h"][example, top].norm(dim=0)  # (l,)
    return {
        "layer": layer,
        "delta_data": data,
        "delta_noise": noise,
        "delta_after_data": after,
        "ratio": ratio,
        "ratio_after_data": ratio_after,
        "channels_data_larger": sum(r > 1 for r in ratio) / d,
        "median_ratio": float(torch.tensor(ratio).median()),
        "channels_after_data_larger": sum(r > 1 for r in ratio_after) / d,
        "median_ratio_after_data": float(torch.tensor(ratio_after).median()),
        "example": {"tokens": inputs[example].tolist(), "channel": top,
                    "delta": delta[example, top].tolist(), "state_norm": norm.tolist()},
    }


@torch.no_grad()
def probe_induction_heads(model, inputs, targets, layer=0):
    """Δ at the token after the first trigger vs at other tokens, with and without conv1d's look-back.

    Parameters
    ----------
    model : MambaLM trained on induction heads
    inputs, targets : LongTensor, shape (b, l)
        Held-out sequences from :func:`~mamba_edu.experiments.tasks.induction_heads_batch`.
    layer : int

    Returns
    -------
    dict (JSON-able)
        For ``"with_look_back"`` and ``"without_look_back"``: ``delta_answer`` and ``delta_other`` (per
        channel, the median Δ at the answer token — right after the first trigger — and at ordinary tokens
        elsewhere) and ``ratio``; ``top_channels``: the 8 channels with the largest ratio with look-back;
        ``top_ratio_with`` / ``top_ratio_without``: the median ratio over those channels; and ``accuracy``:
        the model's accuracy with its look-back and with every layer's look-back zeroed.
    """
    hidden = mixer_inputs(model, inputs)[layer]
    block = model.backbone.layers[layer].mixer
    first = (inputs == TRIGGER).int().argmax(dim=1)  # the first trigger
    answer = torch.zeros_like(inputs, dtype=torch.bool)
    answer[torch.arange(len(inputs)), first + 1] = True
    other = (inputs != TRIGGER) & ~answer
    other[:, -1] = False
    result = {"layer": layer}
    for key, look_back in (("with_look_back", True), ("without_look_back", False)):
        delta = block_internals(block, hidden, look_back=look_back)["delta"]
        d_answer = [_median(delta[:, c][answer]) for c in range(delta.shape[1])]
        d_other = [_median(delta[:, c][other]) for c in range(delta.shape[1])]
        result[key] = {"delta_answer": d_answer, "delta_other": d_other,
                       "ratio": [a / b for a, b in zip(d_answer, d_other)]}
    ratio = result["with_look_back"]["ratio"]
    top = sorted(range(len(ratio)), key=lambda c: -ratio[c])[:8]
    result["top_channels"] = top
    for key, name in (("with_look_back", "top_ratio_with"), ("without_look_back", "top_ratio_without")):
        result[name] = float(torch.tensor([result[key]["ratio"][c] for c in top]).median())
    result["accuracy"] = {"with_look_back": evaluate(model, inputs, targets),
                          "without_look_back": _accuracy_without_look_back(model, inputs, targets)}
    return result


@torch.no_grad()
def _accuracy_without_look_back(model, inputs, targets):
    """Accuracy when every block's conv1d sees only the current token (restored afterwards)."""
    saved = [layer.mixer.conv1d.weight.detach().clone() for layer in model.backbone.layers]
    try:
        for layer in model.backbone.layers:
            layer.mixer.conv1d.weight[..., :-1] = 0.0
        return evaluate(model, inputs, targets)
    finally:
        for layer, weight in zip(model.backbone.layers, saved):
            layer.mixer.conv1d.weight.copy_(weight)


__all__ = ["block_internals", "mixer_inputs", "probe_induction_heads", "probe_selective_copying",
           "train_selective"]
