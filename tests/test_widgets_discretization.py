"""The lesson-2 explorer, driven in Python: controls move the artists to independently computed values.

References are written out here: closed forms for Ā, B̄ and the pole images, scipy quadrature for the
held-pulse response, and a float64 loop of the recurrence for the step-response error. Tolerance 1e-12
unless stated.
"""

import cmath
import math
import re

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pytest
import scipy.integrate

from mamba_edu.plot.discretization import (
    DECAY_STEPS,
    ERROR_DELTAS,
    ERROR_T_END,
    discretization_figure,
    update_discretization_figure,
)
from mamba_edu.widgets import discretization_explorer

# Ā and B̄ of one eigenvalue, with B = 1, written out for each rule
RULES = {
    "zoh": lambda z, dt: (cmath.exp(z), (cmath.exp(z) - 1) / z * dt if z else dt),
    "mamba": lambda z, dt: (cmath.exp(z), dt),
    "euler": lambda z, dt: (1 + z, dt),
    "backward_euler": lambda z, dt: (1 / (1 - z), dt / (1 - z)),
    "bilinear": lambda z, dt: ((1 + z / 2) / (1 - z / 2), dt / (1 - z / 2)),
}


@pytest.fixture
def explorer():
    e = discretization_explorer(alpha=-0.8, beta=3.0, delta=0.25, method="zoh")
    yield e
    plt.close(e.fig)


def test_controls_are_ordinary_widgets(explorer):
    c = explorer.controls
    assert isinstance(c["delta"], W.FloatLogSlider) and c["delta"].base == 10
    assert isinstance(c["alpha"], W.FloatSlider) and isinstance(c["beta"], W.FloatSlider)
    assert isinstance(c["method"], W.Dropdown)
    assert {v for _, v in c["method"].options} == set(RULES)


def test_sliders_move_samples_poles_and_decay_to_closed_forms(explorer):
    art = explorer.fig.mamba_artists
    before = art["samples_euler"].get_ydata().copy()
    explorer.controls["delta"].value = 0.5
    explorer.controls["alpha"].value = -1.5
    explorer.controls["beta"].value = 2.0
    assert explorer.redraws == 4
    lam, dt = complex(-1.5, 2.0), explorer.controls["delta"].value
    assert abs(dt - 0.5) < 1e-12
    np.testing.assert_allclose(art["s_poles"].get_offsets(), [[-1.5, 2.0], [-1.5, -2.0]])
    for m, rule in RULES.items():
        A_bar, B_bar = rule(lam * dt, dt)
        t, y = art[f"samples_{m}"].get_data()
        k = np.arange(1, 17)  # 8 / 0.5 = 16 samples
        np.testing.assert_allclose(t, k * dt, rtol=1e-12)
        np.testing.assert_allclose(y, [(A_bar ** (j - 1) * B_bar).real / dt for j in k], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(art[f"decay_{m}"].get_ydata(), abs(A_bar) ** DECAY_STEPS, rtol=1e-12)
        if m != "mamba":
            zx, zy = art[f"pole_{m}"].get_data()
            np.testing.assert_allclose(zx + 1j * np.asarray(zy), [A_bar, A_bar.conjugate()], rtol=1e-12)
    assert before.size == 32  # Δ = 0.25 before: twice as many samples over 0 < t ≤ 8


def test_continuous_and_held_pulse_curves(explorer):
    explorer.controls["delta"].value = 1.0
    explorer.controls["alpha"].value = -0.5
    art, t = explorer.fig.mamba_artists, explorer.fig.mamba_t
    lam, dt = complex(-0.5, 3.0), explorer.controls["delta"].value
    np.testing.assert_allclose(art["impulse"].get_ydata(), np.exp(-0.5 * t) * np.cos(3.0 * t), atol=1e-12)
    pulse = art["pulse"].get_ydata()
    for i in (0, 7, 50, 51, 200, 399):
        ref = scipy.integrate.quad(lambda s: (cmath.exp(lam * s)).real / dt, max(0.0, t[i] - dt), t[i])[0]
        assert abs(pulse[i] - ref) < 1e-10
    # ZOH reproduces the held-pulse response exactly at the sample times
    ts, ys = art["samples_zoh"].get_data()
    exact = [scipy.integrate.quad(lambda s: (cmath.exp(lam * s)).real / dt, tk - dt, tk)[0] for tk in ts]
    np.testing.assert_allclose(ys, exact, atol=1e-10)


def _step_error_loop(lam, dt, rule, t_end):
    A_bar, B_bar = rule(lam * dt, dt)
    h, worst = 0j, 0.0
    for k in range(1, int(math.floor(t_end / dt + 1e-9)) + 1):
        h = A_bar * h + B_bar
        t = k * dt
        exact = (cmath.exp(lam * t) - 1) / lam if lam else t
        worst = max(worst, abs(h - exact))
    return worst


def test_error_curves_and_orders(explorer):
    explorer.controls["alpha"].value = -1.0
    explorer.controls["beta"].value = 0.0
    art = explorer.fig.mamba_artists
    for m, rule in RULES.items():
        shown = art[f"error_{m}"].get_ydata()
        for i in (0, 9, 19):
            ref = _step_error_loop(-1.0, ERROR_DELTAS[i], rule, ERROR_T_END)
            if m == "zoh":
                assert shown[i] < 1e-13 and ref < 1e-13  # exact for a held (step) input: round-off only
            else:
                assert abs(shown[i] - ref) <= 1e-9 * ref + 1e-12  # round-off of ~1e4 steps
    orders = dict(re.findall(r"^(.+?) (exact|\d\.\d\d)$", art["orders"].get_text(), flags=re.M))
    assert orders["ZOH"] == "exact"
    assert abs(float(orders["bilinear"]) - 2) < 0.05
    for name in ("Euler", "backward Euler", "Mamba (B̄=ΔB)"):
        assert abs(float(orders[name]) - 1) < 0.05
    explorer.controls["delta"].value = 0.1
    assert tuple(art["delta_line"].get_xdata()) == pytest.approx((0.1, 0.1))


@pytest.mark.parametrize("alpha", [0.0, -0.25, -0.8])
def test_orders_at_the_largest_frequency_are_the_rules_orders(explorer, alpha):
    """β = 8 (the slider's end): Euler and backward Euler are first order, bilinear second, ZOH exact.

    Fitted on Δ ≤ 0.03 the readout said Euler 1.86 and backward Euler 0.50 at α = 0 (1.47 and 0.84 at
    α = −0.8): there |λ|²Δ·t is not small and the error is not yet ∝ Δ^p.
    """
    explorer.controls["alpha"].value = alpha
    explorer.controls["beta"].value = 8.0
    text = explorer.fig.mamba_artists["orders"].get_text()
    orders = dict(re.findall(r"^(.+?) (exact|\d\.\d\d)$", text, flags=re.M))
    assert orders["ZOH"] == "exact"
    assert abs(float(orders["bilinear"]) - 2) < 0.05
    for name in ("Euler", "backward Euler", "Mamba (B̄=ΔB)"):
        assert abs(float(orders[name]) - 1) < 0.15, (name, orders[name])


def test_euler_leaves_the_unit_circle_and_zoh_does_not(explorer):
    explorer.controls["alpha"].value = -1.0
    explorer.controls["beta"].value = 0.0
    explorer.controls["delta"].value = 10**0.4  # Δ ≈ 2.51 > 2/|λ|
    art = explorer.fig.mamba_artists
    euler, zoh = art["pole_euler"].get_data(), art["pole_zoh"].get_data()
    assert np.hypot(*euler).min() > 1.4 and np.hypot(*zoh).max() < 0.1
    assert art["decay_euler"].get_ydata()[-1] > 1e6  # |Ā|^k grows
    explorer.controls["delta"].value = 0.1
    assert np.hypot(*art["pole_euler"].get_data()).max() < 1


def test_method_selector_emphasises_one_rule(explorer):
    art = explorer.fig.mamba_artists
    assert art["samples_zoh"].get_alpha() == 1.0 and art["samples_euler"].get_alpha() < 1
    explorer.controls["method"].value = "euler"
    assert art["samples_euler"].get_alpha() == 1.0 and art["samples_zoh"].get_alpha() < 1
    assert art["error_euler"].get_linewidth() > art["error_zoh"].get_linewidth()
    explorer.controls["method"].value = "mamba"  # Mamba's Ā is ZOH's: its poles are the ZOH poles
    assert art["pole_zoh"].get_alpha() == 1.0 and art["samples_mamba"].get_alpha() == 1.0


def test_updates_reuse_the_same_figure_and_artists(explorer):
    fig, line = explorer.fig, explorer.fig.mamba_artists["samples_zoh"]
    n_axes, n_lines = len(fig.axes), [len(ax.lines) for ax in fig.axes]
    for value in (0.01, 0.3, 3.0):
        explorer.controls["delta"].value = value
    explorer.controls["alpha"].value = 0.0
    explorer.controls["beta"].value = 0.0
    assert explorer.fig is fig and fig.mamba_artists["samples_zoh"] is line
    assert len(fig.axes) == n_axes and [len(ax.lines) for ax in fig.axes] == n_lines


def test_static_figure_and_bad_values():
    fig = discretization_figure(-0.5, 1.0, 0.3, "bilinear")
    assert [ax.get_title()[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)", "(d)", "(e)"]
    with pytest.raises(ValueError, match="method"):
        update_discretization_figure(fig, -0.5, 1.0, 0.3, "tustin")
    with pytest.raises(ValueError, match="delta"):
        update_discretization_figure(fig, -0.5, 1.0, 0.0, "zoh")
    with pytest.raises(ValueError, match="method"):
        discretization_explorer(method="rk4")
