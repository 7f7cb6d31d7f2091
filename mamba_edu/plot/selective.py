"""Figures for lesson 4: a selective SSM remembers signal tokens and ignores noise; an LTI one cannot.

The numerics are :mod:`mamba_edu.selective_toy`. Panels: (a) the tokens, (b) Δ_t, (c) and (d) the states of the
selective and the LTI model, (e) the output y_t (mean of the channels) against the value of the last signal token.
"""

import numpy as np
from matplotlib.patches import Patch

from mamba_edu.plot.base import new_figure, set_sticky_symmetric_ylim
from mamba_edu.selective_toy import A_SCALES, demo_tokens, last_signal, selective_toy

DELTA_YLIM = (1e-4, 30.0)  # panel (b)'s log axis; its bottom moves down when some Δ is smaller


def selective_figure(u=None, is_signal=None, selectivity=4.0, A=-1.0, delta_bias=-1.0, method="zoh", fig=None):
    """Tokens, Δ_t, the states (selective vs LTI) and the output, for :func:`~mamba_edu.selective_toy.selective_toy`.

    Returns
    -------
    Figure with ``fig.mamba_artists`` = {"tokens", "delta_sel", "delta_lti", "h_sel" (3 lines),
    "h_lti" (3 lines), "y_sel", "y_lti", "target", "delta_text"} for :func:`update_selective_figure`.
    """
    if u is None:
        u, is_signal = demo_tokens()
    u, is_signal = np.asarray(u, dtype=float), np.asarray(is_signal, dtype=bool)
    t = np.arange(len(u))
    fig = new_figure(fig, figsize=(11, 6.6))
    axes = fig.subplot_mosaic([["tokens", "delta"], ["sel", "lti"], ["out", "out"]], sharex=True)
    art = fig.mamba_artists
    fig.mamba_tokens = (u, is_signal)

    ax = axes["tokens"]
    art["tokens"] = ax.bar(t, u, color=np.where(is_signal, "C1", "0.7"))
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set(title="(a) input tokens $u_t$")
    handles = [Patch(color="C1", label="signal token ($s_t$ = +1)"), Patch(color="0.7", label="noise ($s_t$ = −1)")]
    ax.legend(handles=handles, loc="lower left", fontsize=8, ncol=2)

    ax = axes["delta"]
    (art["delta_sel"],) = ax.plot(t, t * 0.0 + 1, "o-", ms=3, color="C0", label="selective $\\Delta_t$")
    (art["delta_lti"],) = ax.plot(t, t * 0.0 + 1, "--", color="C3", label="LTI $\\Delta$ (constant)")
    ax.set(title="(b) step size $\\Delta_t$ = softplus(bias + selectivity·$s_t$)", yscale="log", ylim=DELTA_YLIM)
    ax.legend(loc="lower left", fontsize=8, ncol=2)
    art["delta_text"] = ax.text(0.99, 0.95, "", transform=ax.transAxes, ha="right", va="top", fontsize=8)

    for key, title in (("sel", "(c) selective model: states $h_t$ (Δ depends on the token)"),
                       ("lti", "(d) LTI twin: states $h_t$ (same A, constant Δ)")):
        ax = axes[key]
        art[f"h_{key}"] = [
            ax.plot(t, t * 0.0, color=f"C{k}", lw=1.4, label=f"$h_t$, A·{int(scale)}")[0]
            for k, scale in enumerate(A_SCALES)
        ]
        ax.axhline(0, color="0.5", lw=0.6)
        ax.set(title=title)
        ax.legend(loc="lower left", fontsize=7, ncol=3)

    ax = axes["out"]
    target = last_signal(u, is_signal)
    (art["target"],) = ax.step(t, target, where="post", color="0.6", lw=3, alpha=0.6, label="last signal value")
    (art["y_sel"],) = ax.plot(t, t * 0.0, "o-", ms=3, color="C0", label="selective $y_t$")
    (art["y_lti"],) = ax.plot(t, t * 0.0, "s--", ms=3, color="C3", label="LTI $y_t$")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set(title="(e) output $y_t$ (mean of the channels): which one keeps the last signal?", xlabel="token t")
    ax.legend(loc="lower left", fontsize=8, ncol=3)

    update_selective_figure(fig, selectivity, A, delta_bias, method)
    return fig


def _set_ylim(ax, *arrays):
    """Symmetric y-limits around the data, moved in steps only when needed (see sticky_limit)."""
    peak = max(1e-3, max(float(np.abs(a).max()) for a in arrays)) * 1.1
    set_sticky_symmetric_ylim(ax, peak)


def update_selective_figure(fig, selectivity, A, delta_bias=-1.0, method="zoh"):
    """Set the artists of :func:`selective_figure` to new parameters (no re-plotting)."""
    art = fig.mamba_artists
    u, is_signal = fig.mamba_tokens
    r = selective_toy(u, is_signal, selectivity, A, delta_bias, method)
    art["delta_sel"].set_ydata(r["delta_sel"])
    art["delta_lti"].set_ydata(r["delta_lti"])
    # the log axis reaches down to the smallest Δ (a decade at a time): at the sliders' ends
    # Δ = softplus(−6 − 8) ≈ 8e-7 on noise, far below the usual bottom 1e-4
    smallest = max(float(r["delta_sel"].min()), 1e-300)
    bottom, top = DELTA_YLIM
    art["delta_sel"].axes.set_ylim(min(bottom, 10.0 ** np.floor(np.log10(smallest))), top)
    sig, noise = r["delta_sel"][is_signal], r["delta_sel"][~is_signal]
    art["delta_text"].set_text(
        f"selective: Δ ≈ {sig.mean():.3g} on signal, {noise.mean():.3g} on noise;  LTI: Δ = {r['delta_lti'][0]:.3g}"
    )
    for key in ("sel", "lti"):
        for line, h in zip(art[f"h_{key}"], r[f"h_{key}"]):
            line.set_ydata(h)
    _set_ylim(art["h_sel"][0].axes, r["h_sel"], r["h_lti"])
    _set_ylim(art["h_lti"][0].axes, r["h_sel"], r["h_lti"])
    art["y_sel"].set_ydata(r["y_sel"])
    art["y_lti"].set_ydata(r["y_lti"])
    _set_ylim(art["y_sel"].axes, r["y_sel"], r["y_lti"], u[is_signal])
    return fig
