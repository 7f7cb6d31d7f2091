"""Figures for lesson 4: a selective SSM remembers signal tokens and ignores noise; an LTI one cannot.

The toy (:func:`selectivity_toy`): a sequence of "signal" and "noise" tokens u_t; three channels
with real A_k = A·(1, 2, 4), one state each, B_k = −A_k (so that every channel settles at u when
u is held, a DC gain of 1) and C = 1. The step size depends on the token:

    Δ_t = softplus(delta_bias + selectivity · s_t),     s_t = +1 for signal, −1 for noise,

so a large selectivity makes Δ big on signal (exp(Δ_t A) ≈ 0: the state *resets* to the new
value) and tiny on noise (exp(Δ_t A) ≈ 1: the state *holds*). The LTI twin uses the constant
Δ = softplus(delta_bias) for every token. Panels: (a) the tokens, (b) Δ_t, (c) and (d) the
states of the selective and the LTI model, (e) the output y_t (mean of the channels) against
the value of the last signal token.
"""

import numpy as np
from matplotlib.patches import Patch

from mamba_edu.discretization import discretize_diag
from mamba_edu.plot.base import new_figure, set_sticky_symmetric_ylim
from mamba_edu.scans.selective import selective_scan

A_SCALES = np.array([1.0, 2.0, 4.0])  # the three channels: A_k = A · scale_k
RULES = ("zoh", "mamba")  # B̄ = ZOH (gated RNN, Theorem 1) or Mamba's B̄ = ΔB


def demo_tokens(l=40, seed=3):
    """A fixed toy sequence: 4 signal tokens (values ±0.6…1.2) among noise tokens N(0, 0.5²).

    Returns
    -------
    u : ndarray, shape (l,);  is_signal : ndarray of bool, shape (l,)
    """
    rng = np.random.default_rng(seed)
    u = rng.normal(scale=0.5, size=l)
    is_signal = np.zeros(l, dtype=bool)
    where = np.linspace(2, l - 8, 4).astype(int)
    is_signal[where] = True
    u[where] = np.array([1.0, -1.2, 0.6, -0.7])
    return u, is_signal


def last_signal(u, is_signal):
    """The value of the most recent signal token at every t (0 before the first one)."""
    out, value = np.zeros(len(u)), 0.0
    for t, (u_t, s) in enumerate(zip(u, is_signal)):
        value = u_t if s else value
        out[t] = value
    return out


def selectivity_toy(u, is_signal, selectivity, A, delta_bias=-1.0, rule="zoh"):
    """Run the selective toy and its LTI twin with :func:`~mamba_edu.selective_scan`.

    Parameters
    ----------
    u : array, shape (l,);  is_signal : bool array, shape (l,)
    selectivity : float
        How strongly Δ responds to the token (0: no selectivity, the model is LTI).
    A : float
        Negative; the three channels use A·(1, 2, 4).
    delta_bias : float
        Δ = softplus(delta_bias) for the LTI twin (and for the selective model when selectivity = 0).
    rule : {"zoh", "mamba"}
        B̄ = (exp(ΔA) − 1)/A (ZOH) or B̄ = ΔB (Mamba's code).

    Returns
    -------
    dict with "delta_sel", "delta_lti" (l,), "h_sel", "h_lti" (3, l), "y_sel", "y_lti" (l,).
    """
    u = np.asarray(u, dtype=float)
    s = np.where(np.asarray(is_signal, dtype=bool), 1.0, -1.0)
    if A >= 0:
        raise ValueError(f"A must be negative, got {A}")
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    A_k = A * A_SCALES[:, None]  # (d=3, n=1)
    out = {}
    for name, pre in (("sel", delta_bias + selectivity * s), ("lti", np.full_like(u, delta_bias))):
        delta = np.log1p(np.exp(pre))  # softplus, (l,)
        delta3 = np.broadcast_to(delta, (3, len(u)))[None]  # (b=1, d=3, l)
        u3 = np.broadcast_to(u, (3, len(u)))[None]
        if rule == "zoh":  # selective_scan uses B̄ = ΔB: feed φ·u, φ = B̄_zoh / (ΔB) = expm1(ΔA)/(ΔA)
            _, B_bar = discretize_diag(A_k[:, None, :], 1.0, delta3[..., None], method="zoh")  # (1, 3, l, 1)
            u3 = u3 * B_bar[..., 0] / delta3
        h = selective_scan(u3, delta3, A_k, -A_k, np.ones((3, 1)))[0]  # n = 1, C = 1: y is the state (3, l)
        out[f"delta_{name}"], out[f"h_{name}"], out[f"y_{name}"] = delta, h, h.mean(0)
    return out


def selectivity_figure(u=None, is_signal=None, selectivity=4.0, A=-1.0, delta_bias=-1.0, rule="zoh", fig=None):
    """Tokens, Δ_t, the states (selective vs LTI) and the output, for :func:`selectivity_toy`.

    Returns
    -------
    Figure with ``fig.mamba_artists`` = {"tokens", "delta_sel", "delta_lti", "h_sel" (3 lines),
    "h_lti" (3 lines), "y_sel", "y_lti", "target", "delta_text"} for :func:`update_selectivity_figure`.
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
    ax.set(title="(b) step size $\\Delta_t$ = softplus(bias + selectivity·$s_t$)", yscale="log", ylim=(1e-4, 30))
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

    update_selectivity_figure(fig, selectivity, A, delta_bias, rule)
    return fig


def _set_ylim(ax, *arrays):
    """Symmetric y-limits around the data, moved in steps only when needed (see sticky_limit)."""
    peak = max(1e-3, max(float(np.abs(a).max()) for a in arrays)) * 1.1
    set_sticky_symmetric_ylim(ax, peak)


def update_selectivity_figure(fig, selectivity, A, delta_bias=-1.0, rule="zoh"):
    """Set the artists of :func:`selectivity_figure` to new parameters (no re-plotting)."""
    art = fig.mamba_artists
    u, is_signal = fig.mamba_tokens
    r = selectivity_toy(u, is_signal, selectivity, A, delta_bias, rule)
    art["delta_sel"].set_ydata(r["delta_sel"])
    art["delta_lti"].set_ydata(r["delta_lti"])
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
