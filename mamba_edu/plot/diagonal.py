"""Figures for lesson 3: one complex mode, the decay of the state, S4D kernels, frequency response.

``diagonal_figure(...)`` builds the six panels and keeps their artists in
``fig.mamba_artists``; ``update_diagonal_figure(fig, ...)`` sets new data on them.

(a) ``mode``      the real impulse response of one conjugate pair λ, λ̄ (ZOH with step Δ),
                  normalised so that its envelope is ±e^{Re λ·Δk}; it oscillates at Im λ/(2π)
                  cycles per unit time.
(b) ``states``    |h_k| / |h_0| of every mode of an S4D initialisation after an impulse: the
                  rows decay like e^{Re λ_m·Δk} (log-scale heatmap, time → right, mode ↓).
(c) ``lin``/``inv``/``real``  the kernels K of S4D-Lin, S4D-Inv and S4D-Real (B = C = 1).
(d) ``freq``      |H(e^{iω})| of the pair in (a); it peaks near ω = Im λ·Δ radians per sample.
"""

import matplotlib.colors
import numpy as np

from mamba_edu.diagonal import init_kernel, mode_frequency_response, mode_response, state_decay
from mamba_edu.plot.base import new_figure, set_sticky_xmax

_KERNEL_PANELS = {"S4D-Lin": "lin", "S4D-Inv": "inv", "S4D-Real": "real"}
N_OMEGA = 512


def diagonal_figure(alpha=-0.3, beta=4.0, delta=0.05, n=16, init="S4D-Lin", L=256, fig=None):
    """Build lesson 3's six-panel figure (see the module docstring).

    Parameters
    ----------
    alpha, beta : float
        The complex mode λ of panels (a) and (d).
    delta : float
        Step size Δ > 0 (all panels).
    n : int
        Number of modes of the S4D initialisations (panels b, c).
    init : {"S4D-Lin", "S4D-Inv", "S4D-Real"}
        Initialisation whose state decay panel (b) shows.
    L : int
        Number of time steps shown.
    fig : Figure, optional
        Reused (cleared) when given.

    Returns
    -------
    Figure
        With ``fig.mamba_artists`` for :func:`update_diagonal_figure`.
    """
    fig = new_figure(fig, figsize=(11, 6))
    fig.mamba_L = int(L)
    axes = fig.subplot_mosaic([["mode", "states", "freq"], ["lin", "inv", "real"]])
    art = fig.mamba_artists
    art["axes"] = axes

    ax = axes["mode"]
    (art["mode"],) = ax.plot([], [], color="C0", lw=1.2, label="2·Re K / 2|B̄|")
    envelope_label = r"$\pm e^{\mathrm{Re}\,\lambda\,\Delta k}$"
    (art["envelope_upper"],) = ax.plot([], [], "k--", lw=0.9, label=envelope_label)
    (art["envelope_lower"],) = ax.plot([], [], "k--", lw=0.9)
    ax.set_ylim(-1.1, 1.1)
    ax.set_xlabel("time t = Δk")
    ax.legend(loc="upper right", fontsize=7)

    ax = axes["states"]
    cmap = matplotlib.colormaps["viridis"]
    cmap = cmap.with_extremes(under=cmap(0.0), bad=cmap(0.0))  # underflowed (0) states: darkest
    norm = matplotlib.colors.LogNorm(vmin=1e-3, vmax=1.0)
    art["states"] = ax.imshow(np.ones((1, 1)), aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
    ax.set_xlabel("time t = Δk")
    ax.set_ylabel("mode m")
    # under panel (b), not to its right, where the label would sit beside panel (d)
    cbar = fig.colorbar(art["states"], ax=ax, location="bottom", shrink=0.9, aspect=30, extend="min")
    cbar.set_label("|h_k| / |h_0| (log scale)", fontsize=8)

    ax = axes["freq"]
    omega = np.linspace(0, np.pi, N_OMEGA)
    (art["freq"],) = ax.plot(omega, np.zeros_like(omega), color="C3", lw=1.2)
    art["freq_marker"] = ax.axvline(0.0, color="k", ls=":", lw=0.9, label="ω = Im λ·Δ")
    ax.set_xlim(0, np.pi)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("ω (radians per sample)")
    ax.set_title(r"(d) $|H(e^{i\omega})|$ / max", fontsize=9)
    ax.legend(loc="upper right", fontsize=7)

    for name, key in _KERNEL_PANELS.items():
        ax = axes[key]
        (art[f"kernel_{key}"],) = ax.plot([], [], color="C2", lw=1.0)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("time t = Δk")
        ax.set_title(f"(c) kernel K / max|K|, {name}", fontsize=9)
    update_diagonal_figure(fig, alpha, beta, delta, n, init)
    for key in ("mode", "states", "lin", "inv", "real"):  # start tight; updates move the limit in steps
        axes[key].set_xlim(0, fig.mamba_L * delta)
    # lay the panels out once, then freeze them: re-running the constrained layout on every
    # slider move would double the redraw time of this six-panel figure
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    return fig


def update_diagonal_figure(fig, alpha, beta, delta, n, init):
    """Set the data of :func:`diagonal_figure`'s artists for new slider values (no re-plotting)."""
    art, axes, L = fig.mamba_artists, fig.mamba_artists["axes"], fig.mamba_L
    t, response, envelope = mode_response(alpha, beta, delta, L)
    art["mode"].set_data(t, response)
    art["envelope_upper"].set_data(t, envelope)
    art["envelope_lower"].set_data(t, -envelope)
    # λ and Δ are on the sliders: a fixed title (an explorer repaints changed text at every move)
    title = "(a) one mode λ, λ̄: frequency f = Im λ/2π per unit time"
    if axes["mode"].get_title() != title:
        axes["mode"].set_title(title, fontsize=9)

    omega = art["freq"].get_xdata()
    art["freq"].set_ydata(mode_frequency_response(alpha, beta, delta, omega))
    art["freq_marker"].set_xdata([beta * delta] * 2)

    # panels (b) and (c) depend on the init, n and Δ only: left alone (and not repainted by an
    # explorer) when only λ moved
    if getattr(fig, "mamba_inits_shown", None) != (init, n, delta):
        fig.mamba_inits_shown = (init, n, delta)
        art["states"].set_data(state_decay(init, n, delta, L))
        art["states"].set_extent((0, t[-1] + delta, n - 0.5, -0.5))
        axes["states"].set_title(f"(b) state decay, {init}, n = {n}", fontsize=9)
        for name, key in _KERNEL_PANELS.items():
            art[f"kernel_{key}"].set_data(t, init_kernel(name, n, delta, L))
    for key in ("mode", "states", "lin", "inv", "real"):  # time axes: moved in steps only when needed
        set_sticky_xmax(axes[key], t[-1] + delta)
    return fig
