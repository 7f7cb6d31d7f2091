"""Figures for lesson 2: one mode h' = λh + u discretized with step Δ by five rules.

Five panels, every rule drawn in its own colour, the selected one in bold:
(a) the continuous impulse response Re e^{λt}, the exact response to a unit-area pulse held for
    one step (dashed, what ZOH reproduces exactly) and each rule's samples Re(Ā^{k−1} B̄)/Δ at t = kΔ;
(b) the eigenvalue pair λ, λ̄ in the s-plane (stable half-plane shaded);
(c) their images in the z-plane — e^{λΔ} (ZOH and Mamba), (1+λΔ/2)/(1−λΔ/2) (bilinear),
    1+λΔ (Euler), 1/(1−λΔ) (backward Euler) — with their paths as Δ grows and the unit circle;
(d) the step-response error against Δ on log–log axes, with the observed orders;
(e) the state's decay |Ā|^k over steps k: Δ small keeps the state, Δ large resets it.
"""

from functools import lru_cache

import numpy as np

from mamba_edu.discretization import METHODS, discretize_diag, error_order, phi1, step_response_error
from mamba_edu.plot.base import new_figure

T_END = 8.0  # horizon of panel (a)
DEFAULT_T = np.linspace(0.0, T_END, 400)
ERROR_DELTAS = np.logspace(-3, 0.5, 22)  # Δ grid of panel (d)
ERROR_T_END = 4.0
# orders are fitted on Δ ≤ FIT_BELOW (the 4 smallest Δ): the error is ∝ Δ^p only once |λ|²Δ·T is small; at
# |λ| ≈ 8 a fit on Δ ≤ 0.03 gave forward Euler p ≈ 1.9 and backward Euler p ≈ 0.5 (both are first order)
FIT_BELOW = 0.0032
LOCUS_DELTAS = np.logspace(-3, 1, 200)  # Δ grid of the z-plane paths
DECAY_STEPS = np.arange(41)  # k in panel (e)
MAX_MARKERS = 80
COLORS = {"zoh": "C0", "bilinear": "C1", "euler": "C3", "backward_euler": "C2", "mamba": "C4"}
LABELS = {"zoh": "ZOH", "bilinear": "bilinear", "euler": "Euler", "backward_euler": "backward Euler",
          "mamba": "Mamba (B̄=ΔB)"}
POLE_METHODS = ("zoh", "bilinear", "euler", "backward_euler")  # Mamba's Ā is ZOH's


def impulse_samples(lam, delta, method, t_end=T_END):
    """Discrete response to a unit-area pulse u_1 = 1/Δ: t_k = kΔ and y_k = Re(Ā^{k−1} B̄)/Δ.

    Returns
    -------
    t, y : ndarray, shape (k,)
        At most ``MAX_MARKERS`` evenly spaced samples with 0 < t_k ≤ ``t_end`` (NaN where the
        recurrence overflows).

    Explained in lesson 2.
    """
    A_bar, B_bar = discretize_diag(complex(lam), 1.0, delta, method)
    k = np.arange(1, max(1, int(np.floor(t_end / delta + 1e-9))) + 1)
    if k.size > MAX_MARKERS:
        k = np.unique(np.linspace(1, k[-1], MAX_MARKERS).round().astype(int))
    with np.errstate(over="ignore", invalid="ignore"):
        y = (A_bar ** (k - 1) * B_bar).real / delta
    return k * delta, np.where(np.isfinite(y), y, np.nan)


def pulse_response(lam, delta, t):
    """Exact Re y(t) of h' = λh + u, y = h, for u = 1/Δ on (0, Δ] and 0 after (the held pulse).

    y(t) = (1/Δ) ∫_{max(0, t−Δ)}^{t} e^{λτ} dτ = (w/Δ) e^{λa} phi1(λw), a = max(0, t−Δ), w = t − a.
    """
    t = np.asarray(t, dtype=float)
    a = np.maximum(0.0, t - delta)
    w = t - a
    return (w / delta * np.exp(lam * a) * phi1(lam * w + 0j)).real


def pole_images(lam, delta):
    """z-plane image Ā(λ, Δ) of the eigenvalue for each rule in ``POLE_METHODS`` (a dict)."""
    return {m: complex(discretize_diag(complex(lam), 1.0, delta, m)[0]) for m in POLE_METHODS}


@lru_cache(maxsize=128)
def _error_curves(lam):
    """Step-response error on ``ERROR_DELTAS`` and the fitted order for every rule (cached per λ)."""
    curves, orders = {}, {}
    fit = ERROR_DELTAS <= FIT_BELOW
    for m in METHODS:
        err = step_response_error(lam, ERROR_DELTAS, m, t_end=ERROR_T_END)
        curves[m] = err
        orders[m] = None if err[fit].max() < 1e-9 else error_order(ERROR_DELTAS[fit], err[fit])
    return curves, orders


def orders_text(orders):
    """'observed order p (error ∝ Δ^p): ZOH exact · bilinear 2.00 · ...'."""
    parts = [f"{LABELS[m]} {'exact' if p is None else f'{p:.2f}'}" for m, p in orders.items()]
    return f"order p (error ∝ Δ^p, Δ ≤ {FIT_BELOW:.2g}):\n" + "\n".join(parts)


def _emphasize(artists, bold):
    for artist in artists:
        artist.set_alpha(1.0 if bold else 0.3)
        artist.set_zorder(3 if bold else 2)
        if artist.get_linestyle() not in ("None", ""):
            artist.set_linewidth(2.0 if bold else 0.8)


def discretization_figure(alpha=-0.8, beta=3.0, delta=0.25, method="zoh", t=None, fig=None):
    """Impulse samples, pole maps, error orders and state decay of one discretized mode.

    Parameters
    ----------
    alpha, beta : float
        The eigenvalue λ = α + iβ (the mode and its conjugate; y = Re h).
    delta : float
        Step size Δ > 0.
    method : str
        The rule drawn in bold, one of :data:`mamba_edu.discretization.METHODS`.
    t : ndarray, shape (l,), optional
        Times of the continuous curves in panel (a) (default 0..8, 400 points).
    fig : matplotlib Figure, optional
        Figure to draw into (cleared); a new one if omitted.

    Returns
    -------
    Figure with ``fig.mamba_artists``: "impulse", "pulse", "s_poles", "delta_line", "orders" and,
    per rule m, f"samples_{m}", f"error_{m}", f"decay_{m}" (and f"locus_{m}", f"pole_{m}" for
    m in ``POLE_METHODS``), for :func:`update_discretization_figure`.

    Explained in lesson 2.
    """
    t = DEFAULT_T if t is None else np.asarray(t, dtype=float)
    fig = new_figure(fig, figsize=(11, 6.6))
    grid = fig.add_gridspec(2, 3)
    ax_imp, ax_s = fig.add_subplot(grid[0, :2]), fig.add_subplot(grid[0, 2])
    ax_z, ax_err, ax_dec = (fig.add_subplot(grid[1, i]) for i in range(3))
    art = fig.mamba_artists
    fig.mamba_t = t

    title = "(a) impulse response; samples $y_k = \\mathrm{Re}(\\bar A^{k-1}\\bar B)/\\Delta$, $t = k\\Delta$"
    ax_imp.set(title=title, xlabel="t", xlim=(0, t[-1]), ylim=(-1.15, 1.15))
    (art["impulse"],) = ax_imp.plot(t, t * 0, color="k", lw=1.5, label="$\\mathrm{Re}\\,e^{\\lambda t}$")
    (art["pulse"],) = ax_imp.plot(t, t * 0, "--", color="0.45", lw=1.2, label="exact, pulse held for Δ")
    for m in METHODS:
        (art[f"samples_{m}"],) = ax_imp.plot([], [], "o", ms=4, color=COLORS[m], label=LABELS[m])
    ax_imp.axhline(0, color="0.8", lw=0.8)
    ax_imp.legend(loc="upper right", fontsize=7, ncol=2)

    ax_s.axvspan(-5, 0, color="C2", alpha=0.12, label="stable: Re λ < 0")
    ax_s.axvline(0, color="0.5", lw=0.8)
    ax_s.axhline(0, color="0.5", lw=0.8)
    art["s_poles"] = ax_s.scatter([0, 0], [0, 0], marker="x", s=60, color="k", zorder=3, label="λ, λ̄")
    ax_s.set(title="(b) s-plane: eigenvalues λ", xlabel="Re λ", ylabel="Im λ")
    ax_s.set(xlim=(-4.5, 0.5), ylim=(-8.5, 8.5))
    ax_s.legend(loc="upper left", fontsize=7)

    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    ax_z.plot(circle.real, circle.imag, color="0.3", lw=1)
    ax_z.axhline(0, color="0.8", lw=0.8)
    ax_z.axvline(0, color="0.8", lw=0.8)
    for m in POLE_METHODS:
        (art[f"locus_{m}"],) = ax_z.plot([], [], "-", lw=0.8, color=COLORS[m])
        label = "ZOH = Mamba: $e^{\\lambda\\Delta}$" if m == "zoh" else LABELS[m]
        (art[f"pole_{m}"],) = ax_z.plot([], [], "o", ms=6, color=COLORS[m], label=label)
    ax_z.set(title="(c) z-plane: $\\bar A$ (paths: Δ from 0.001 to 10)", xlabel="Re z", ylabel="Im z",
             xlim=(-2.0, 2.0), ylim=(-2.0, 2.0), aspect="equal")
    ax_z.legend(loc="lower left", fontsize=6)

    for m in METHODS:
        (art[f"error_{m}"],) = ax_err.loglog(ERROR_DELTAS, np.ones_like(ERROR_DELTAS), ".-", color=COLORS[m])
    art["delta_line"] = ax_err.axvline(delta, color="k", ls=":", lw=1)
    box = {"facecolor": "white", "alpha": 0.8, "lw": 0}
    art["orders"] = ax_err.text(0.98, 0.2, "", transform=ax_err.transAxes, ha="right", va="bottom",
                                multialignment="left", fontsize=6.5, bbox=box)
    ax_err.set(title="(d) step-response error vs Δ", xlabel="Δ", ylabel="max |h_k − h(kΔ)|")
    ax_err.set_ylim(1e-17, 1e3)

    for m in METHODS:
        (art[f"decay_{m}"],) = ax_dec.plot(DECAY_STEPS, DECAY_STEPS * 0.0, ".-", ms=3, color=COLORS[m])
    ax_dec.axhline(1, color="0.6", lw=0.8)
    ax_dec.set(title="(e) memory: $|\\bar A|^k$ over steps", xlabel="step k", ylim=(0, 1.6),
               xlim=(0, DECAY_STEPS[-1]))

    update_discretization_figure(fig, alpha, beta, delta, method)
    return fig


def update_discretization_figure(fig, alpha, beta, delta, method):
    """Set the artists of :func:`discretization_figure` to λ = α + iβ, step Δ and ``method``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(map(repr, METHODS))}")
    if not (np.isfinite(delta) and delta > 0):
        raise ValueError(f"delta must be positive and finite, got {delta}")
    art, t = fig.mamba_artists, fig.mamba_t
    lam = complex(alpha, beta)

    art["impulse"].set_ydata((np.exp(lam * t)).real)
    art["pulse"].set_ydata(pulse_response(lam, delta, t))
    art["s_poles"].set_offsets([[alpha, beta], [alpha, -beta]])
    images = pole_images(lam, delta)
    paths = {m: discretize_diag(lam, 1.0, LOCUS_DELTAS, m)[0] for m in POLE_METHODS}
    for m in POLE_METHODS:
        z = np.array([images[m], images[m].conjugate()])
        art[f"pole_{m}"].set_data(z.real, z.imag)
        path = paths[m]
        art[f"locus_{m}"].set_data(np.r_[path.real, np.nan, path.real], np.r_[path.imag, np.nan, -path.imag])

    curves, orders = _error_curves(lam)
    art["delta_line"].set_xdata([delta, delta])
    art["orders"].set_text(orders_text(orders))
    for m in METHODS:
        ts, ys = impulse_samples(lam, delta, m, t_end=t[-1])
        art[f"samples_{m}"].set_data(ts, ys)
        err = curves[m]
        art[f"error_{m}"].set_ydata(np.where(np.isfinite(err), np.maximum(err, 1e-17), np.nan))
        A_bar = discretize_diag(lam, 1.0, delta, m)[0]
        with np.errstate(over="ignore"):
            art[f"decay_{m}"].set_ydata(np.abs(A_bar) ** DECAY_STEPS)
        _emphasize([art[f"{kind}_{m}"] for kind in ("samples", "error", "decay")], m == method)
    for m in POLE_METHODS:  # Mamba's poles are ZOH's
        _emphasize([art[f"pole_{m}"], art[f"locus_{m}"]], m == method or (m == "zoh" and method == "mamba"))
    return fig
