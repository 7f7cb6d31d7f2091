"""Figures for lesson 1: a conjugate eigenvalue pair α ± iβ and what it does.

Three panels for the 2-state oscillator A = [[α, −β], [β, α]] (:func:`mamba_edu.lti.oscillator`):
(a) the impulse response e^{αt} cos βt inside its envelope ±e^{αt},
(b) the eigenvalues on the complex plane, stable half-plane (Re λ < 0) shaded,
(c) the state trajectory h(t) = e^{αt}[cos βt, sin βt] in the (h₁, h₂) plane.
"""

import numpy as np

from mamba_edu.lti import oscillator
from mamba_edu.plot.base import new_figure, sticky_limit

DEFAULT_T = np.linspace(0.0, 10.0, 400)
EIG_LIMITS = (-2.5, 1.0, -10.5, 10.5)  # re_min, re_max, im_min, im_max shown in panel (b)


def _oscillator_curves(alpha, beta, t):
    ssm = oscillator(alpha, beta)
    impulse = ssm.impulse_response(t)
    envelope = np.exp(alpha * t)
    # impulse-driven state: h(t) = e^{At} B, read off y = C h with C = e1 and C = e2
    h1 = impulse
    h2 = np.exp(alpha * t) * np.sin(beta * t)
    return ssm, impulse, envelope, h1, h2


def lti_figure(alpha=-0.3, beta=2.0, t=None, fig=None):
    """Impulse response, eigenvalues and state trajectory of the α ± iβ oscillator.

    Parameters
    ----------
    alpha, beta : float
        Real and imaginary part of the eigenvalue pair α ± iβ.
    t : ndarray, shape (l,), optional
        Times (default 0..10, 400 points).
    fig : matplotlib Figure, optional
        Figure to draw into (cleared); a new one if omitted.

    Returns
    -------
    Figure with ``fig.mamba_artists`` = {"impulse", "envelope_upper", "envelope_lower",
    "eigenvalues", "trajectory", "start"} for :func:`update_lti_figure`.
    """
    t = DEFAULT_T if t is None else np.asarray(t, dtype=float)
    fig = new_figure(fig, figsize=(11, 3.4))
    ax_imp, ax_eig, ax_traj = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.6, 1, 1]})
    art = fig.mamba_artists
    fig.mamba_t = t

    ax_imp.set(title="(a) impulse response $K(t)=Ce^{At}B$", xlabel="t")
    (art["impulse"],) = ax_imp.plot(t, t * 0, color="C0", lw=2, label="$e^{\\alpha t}\\cos\\beta t$")
    (art["envelope_upper"],) = ax_imp.plot(t, t * 0, "--", color="C3", lw=1, label="envelope $\\pm e^{\\alpha t}$")
    (art["envelope_lower"],) = ax_imp.plot(t, t * 0, "--", color="C3", lw=1)
    ax_imp.axhline(0, color="0.7", lw=0.8)
    ax_imp.legend(loc="upper right", fontsize=8)

    re_min, re_max, im_min, im_max = EIG_LIMITS
    ax_eig.axvspan(re_min, 0, color="C2", alpha=0.12, label="stable: Re λ < 0")
    ax_eig.axvline(0, color="0.5", lw=0.8)
    ax_eig.axhline(0, color="0.5", lw=0.8)
    art["eigenvalues"] = ax_eig.scatter([0, 0], [0, 0], marker="x", s=60, color="C3", zorder=3, label="λ = α ± iβ")
    ax_eig.set(title="(b) eigenvalues of A", xlabel="Re λ", ylabel="Im λ", xlim=(re_min, re_max), ylim=(im_min, im_max))
    ax_eig.legend(loc="upper left", fontsize=8)

    (art["trajectory"],) = ax_traj.plot(t * 0, t * 0, color="C0", lw=1.5)
    (art["start"],) = ax_traj.plot([1], [0], "o", color="C1", label="h(0) = B")
    ax_traj.set(title="(c) state trajectory", xlabel="$h_1$", ylabel="$h_2$", aspect="equal")
    ax_traj.legend(loc="upper right", fontsize=8)

    update_lti_figure(fig, alpha, beta)
    return fig


def update_lti_figure(fig, alpha, beta):
    """Set the artists of :func:`lti_figure` to the pair α ± iβ (no re-plotting)."""
    art, t = fig.mamba_artists, fig.mamba_t
    _, impulse, envelope, h1, h2 = _oscillator_curves(alpha, beta, t)
    art["impulse"].set_ydata(impulse)
    art["envelope_upper"].set_ydata(envelope)
    art["envelope_lower"].set_ydata(-envelope)
    art["eigenvalues"].set_offsets([[alpha, beta], [alpha, -beta]])
    art["trajectory"].set_data(h1, h2)
    # keep growing (unstable) responses on screen, but cap the zoom so decay stays readable; the
    # limits move in steps (1, 2, 5, 10, ...) only when they must, so most moves repaint only the data
    peak = min(max(1.05, float(envelope.max()) * 1.05), 1e3)
    m = sticky_limit(art["impulse"].axes.get_ylim()[1], peak)
    art["impulse"].axes.set_ylim(-m, m)
    art["trajectory"].axes.set_xlim(-m, m)
    art["trajectory"].axes.set_ylim(-m, m)
    return fig
