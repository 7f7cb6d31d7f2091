"""Lesson 4's toy: a selective SSM remembers signal tokens and ignores noise; its LTI twin cannot.

A sequence of "signal" and "noise" tokens u_t; three channels with real A_k = A·(1, 2, 4), one state each,
B_k = −A_k (so that every channel settles at u when u is held, a DC gain of 1) and C = 1. The step size
depends on the token:

    Δ_t = softplus(delta_bias + selectivity · s_t),     s_t = +1 for signal, −1 for noise,

so a large selectivity makes Δ big on signal (exp(Δ_t A) ≈ 0: the state *resets* to the new value) and tiny
on noise (exp(Δ_t A) ≈ 1: the state *holds*). The LTI twin uses the constant Δ = softplus(delta_bias) for every
token. The figures are :mod:`mamba_edu.plot.selective`, the explorer :mod:`mamba_edu.widgets.selective`.
"""

import numpy as np

from mamba_edu.discretization import discretize_diag
from mamba_edu.scans.selective import selective_scan

A_SCALES = np.array([1.0, 2.0, 4.0])  # the three channels: A_k = A · scale_k
METHODS = ("zoh", "mamba")  # B̄ = ZOH (gated RNN, Theorem 1) or Mamba's B̄ = ΔB


def demo_tokens(l=40, rng=None):
    """A toy sequence: 4 signal tokens (values ±0.6…1.2) among noise tokens N(0, 0.5²).

    Parameters
    ----------
    l : int
        Sequence length.
    rng : numpy.random.Generator, optional
        Draws the noise; default ``np.random.default_rng(3)``, the fixed sequence of lesson 4's figures.

    Returns
    -------
    u : ndarray, shape (l,);  is_signal : ndarray of bool, shape (l,)
    """
    rng = np.random.default_rng(3) if rng is None else rng
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


def selective_toy(u, is_signal, selectivity, A, delta_bias=-1.0, method="zoh"):
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
    method : {"zoh", "mamba"}
        The discretization of B: B̄ = (exp(ΔA) − 1)/A (ZOH) or B̄ = ΔB (Mamba's code).

    Returns
    -------
    dict with "delta_sel", "delta_lti" (l,), "h_sel", "h_lti" (3, l), "y_sel", "y_lti" (l,).
    """
    u = np.asarray(u, dtype=float)
    s = np.where(np.asarray(is_signal, dtype=bool), 1.0, -1.0)
    if A >= 0:
        raise ValueError(f"A must be negative, got {A}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    A_k = A * A_SCALES[:, None]  # (d=3, n=1)
    out = {}
    for name, pre in (("sel", delta_bias + selectivity * s), ("lti", np.full_like(u, delta_bias))):
        delta = np.log1p(np.exp(pre))  # softplus, (l,)
        delta3 = np.broadcast_to(delta, (3, len(u)))[None]  # (b=1, d=3, l)
        u3 = np.broadcast_to(u, (3, len(u)))[None]
        if method == "zoh":  # selective_scan uses B̄ = ΔB: feed φ·u, φ = B̄_zoh / (ΔB) = expm1(ΔA)/(ΔA)
            _, B_bar = discretize_diag(A_k[:, None, :], 1.0, delta3[..., None], method="zoh")  # (1, 3, l, 1)
            u3 = u3 * B_bar[..., 0] / delta3
        h = selective_scan(u3, delta3, A_k, -A_k, np.ones((3, 1)))[0]  # n = 1, C = 1: y is the state (3, l)
        out[f"delta_{name}"], out[f"h_{name}"], out[f"y_{name}"] = delta, h, h.mean(0)
    return out
