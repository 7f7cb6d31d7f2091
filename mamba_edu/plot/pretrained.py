"""Figures for lesson 4's "A real Mamba": the learned spectrum of A and the Δ a model gives each token.

Arrays in, Figure out. Every figure takes a ``label`` that becomes its title and says where the
numbers come from (a checkpoint's name, or "UNTRAINED …" for a random model): no figure may look as if
it came from a trained model when it did not. The numbers come from
:func:`mamba_edu.mamba.pretrained.learned_A` and :func:`mamba_edu.mamba.pretrained.delta_per_token`.
"""

import numpy as np

from mamba_edu.mamba.pretrained import timescale_summary
from mamba_edu.plot.base import new_figure


def _check_label(label):
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"label must say where the weights come from (a non-empty str), got {label!r}")


def a_spectrum_figure(A, label, fig=None):
    """The learned −A = exp(A_log) of every layer against S4D-Real's initial values 1, 2, …, n.

    Parameters
    ----------
    A : array_like, shape (n_layer, d_inner, d_state)
        A = −exp(A_log) of each layer (real, negative).
    label : str
        Where the weights come from; the figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        (a) per layer, the median over channels of −A[:, k] against the state index k = 1 … n (log scale),
        the band of the first and the last layer's 10–90 % quantiles, S4D-Real's −A = k dashed;
        (b) log10 of median(−A[:, k]) / k per layer and state: how far training moved each timescale.
    """
    _check_label(label)
    A = np.asarray(A, dtype=float)
    if A.ndim != 3 or A.shape[-1] < 1:
        raise ValueError(f"A has shape {A.shape}, expected (n_layer, d_inner, d_state)")
    if not np.all(A < 0):
        raise ValueError(f"A must be negative (A = −exp(A_log)), got max {A.max()}")
    n_layer, n = A.shape[0], A.shape[-1]
    median, k = timescale_summary(A)  # (n_layer, n), S4D-Real's 1…n
    neg = -A
    fig = new_figure(fig, figsize=(10, 3.6))
    ax, ax_ratio = fig.subplots(1, 2, width_ratios=[1.1, 1])
    colors = _layer_colors(n_layer)
    for i in range(n_layer):
        ax.plot(k, median[i], color=colors[i], lw=1.2, label=f"layer {i}" if i in (0, n_layer - 1) else None)
    for i in sorted({0, n_layer - 1}):
        lo, hi = np.quantile(neg[i], [0.1, 0.9], axis=0)
        ax.fill_between(k, lo, hi, color=colors[i], alpha=0.15, lw=0)
    ax.plot(k, k, "k--", lw=1.5, label="S4D-Real init: −A = k")
    ax.set(yscale="log", xlabel="state index k", ylabel="−A (median over channels)", title="(a) learned −A per layer")
    ax.legend(fontsize=8)
    ratio = np.log10(median / k)  # (n_layer, n)
    lim = max(np.abs(ratio).max(), 0.1)
    im = ax_ratio.imshow(ratio, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower",
                         extent=(0.5, n + 0.5, -0.5, n_layer - 0.5))  # fmt: skip
    fig.colorbar(im, ax=ax_ratio, label="log10(median −A / k)")
    ax_ratio.set(xlabel="state index k", ylabel="layer", title="(b) how far each median moved from S4D-Real")
    ax_ratio.set_yticks(_layer_ticks(n_layer))
    fig.suptitle(label, fontweight="bold")
    fig.mamba_artists = {"median_lines": ax.lines[:n_layer], "ratio_image": im}
    return fig


def delta_tokens_figure(delta, tokens, label, fig=None):
    """Δₜ per token and layer for one sentence: which tokens does the model write into its state?

    Parameters
    ----------
    delta : array_like, shape (n_layer, l, d_inner)
        Δ of every layer, token and channel (softplus already applied), for one sequence.
    tokens : sequence of str, length l
        The tokens, as text (x tick labels).
    label : str
        Where the weights come from; the figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        (a) mean Δ over channels and layers per token (a large Δ writes the token into the state,
        Ā = exp(ΔA) → 0; a small Δ keeps the state and skips the token); (b) the mean over channels,
        per layer and token, relative to that layer's mean over the sentence (log2 scale).
    """
    _check_label(label)
    delta = np.asarray(delta, dtype=float)
    if delta.ndim != 3:
        raise ValueError(f"delta has shape {delta.shape}, expected (n_layer, l, d_inner)")
    n_layer, l, _ = delta.shape
    if len(tokens) != l:
        raise ValueError(f"tokens has length {len(tokens)}, expected l = {l} (delta has shape {delta.shape})")
    if not np.all(delta > 0):
        raise ValueError(f"delta must be positive (softplus), got min {delta.min()}")
    per_layer = delta.mean(axis=2)  # (n_layer, l)
    fig = new_figure(fig, figsize=(10, 4.8))
    ax_bar, ax_map = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.4])
    x = np.arange(l)
    bars = ax_bar.bar(x, per_layer.mean(axis=0), color="tab:blue")
    ax_bar.set(ylabel="mean Δ", title=r"(a) $\Delta_t$ per token, mean over layers and channels")
    relative = np.log2(per_layer / per_layer.mean(axis=1, keepdims=True))
    lim = max(np.abs(relative).max(), 0.1)
    im = ax_map.imshow(relative, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, origin="lower",
                       extent=(-0.5, l - 0.5, -0.5, n_layer - 0.5))  # fmt: skip
    fig.colorbar(im, ax=[ax_bar, ax_map], label="log2(Δ / layer's mean)", shrink=0.6)
    ax_map.set(ylabel="layer", title="(b) per layer, relative to the layer's mean over the sentence")
    ax_map.set_yticks(_layer_ticks(n_layer))
    ax_map.set_xticks(x, [_show_token(t) for t in tokens], rotation=60, ha="right", fontsize=8)
    fig.suptitle(label, fontweight="bold")
    fig.mamba_artists = {"bars": bars, "relative_image": im}
    return fig


def _layer_ticks(n_layer, most=8):
    return np.unique(np.linspace(0, n_layer - 1, min(n_layer, most)).round().astype(int))


def _show_token(token):
    """A token as a tick label: spaces as ␣, control characters escaped."""
    return repr(str(token))[1:-1].replace(" ", "␣")


def _layer_colors(n_layer):
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0, 0.9, n_layer))
