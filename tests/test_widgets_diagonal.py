"""The lesson-3 explorer, driven in Python: sliders move the artists to the right values.

The expected values are closed forms written here: ZOH for one eigenvalue
Ā = e^{Δλ}, B̄ = (e^{Δλ} − 1)/λ, then K_k = Ā^k B̄, h_k = Ā^k B̄ and H(z) = B̄ / (1 − Ā z⁻¹).
"""

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pytest

from mamba_edu.plot.diagonal import diagonal_figure
from mamba_edu.widgets import diagonal_explorer


def _zoh(lam, delta):
    lam = np.asarray(lam, dtype=complex)
    A_bar = np.exp(delta * lam)
    return A_bar, (A_bar - 1) / lam


@pytest.fixture
def explorer():
    e = diagonal_explorer(alpha=-0.3, beta=4.0, delta=0.05, n=16, init="S4D-Lin")
    yield e
    plt.close(e.fig)


def test_controls_are_plain_ipywidgets(explorer):
    c = explorer.controls
    assert set(c) == {"alpha", "beta", "delta", "n", "init"}
    for name in ("alpha", "beta", "delta"):
        assert isinstance(c[name], W.FloatSlider)
    assert isinstance(c["n"], W.IntSlider)
    assert isinstance(c["init"], W.Dropdown)
    # no aliasing anywhere in the slider ranges: Im λ·Δ < π
    assert c["beta"].max * c["delta"].max < np.pi


def test_mode_panel_follows_the_sliders(explorer):
    art = explorer.fig.mamba_artists
    before = art["mode"].get_ydata().copy()
    alpha, beta, delta = -0.4, 6.5, 0.08
    explorer.controls["alpha"].value = alpha
    explorer.controls["beta"].value = beta
    explorer.controls["delta"].value = delta
    assert explorer.redraws == 4
    L = explorer.fig.mamba_L
    k = np.arange(L)
    A_bar, B_bar = _zoh(alpha + 1j * beta, delta)
    t, y = art["mode"].get_data()
    np.testing.assert_allclose(t, delta * k, rtol=1e-14)
    np.testing.assert_allclose(y, (A_bar**k * B_bar).real / abs(B_bar), atol=1e-12)
    np.testing.assert_allclose(art["envelope_upper"].get_ydata(), np.exp(alpha * delta * k), rtol=1e-12)
    np.testing.assert_allclose(art["envelope_lower"].get_ydata(), -np.exp(alpha * delta * k), rtol=1e-12)
    assert np.all(np.abs(y) <= np.exp(alpha * delta * k) + 1e-12)
    assert not np.allclose(before, y)


@pytest.mark.parametrize("beta, delta", [(2.0, 0.1), (6.0, 0.1), (9.5, 0.3), (4.0, 0.05)])
def test_mode_oscillates_at_beta_over_two_pi(explorer, beta, delta):
    explorer.controls["alpha"].value = -0.05
    explorer.controls["beta"].value = beta
    explorer.controls["delta"].value = delta
    t, y = explorer.fig.mamba_artists["mode"].get_data()
    spectrum = np.abs(np.fft.rfft(y - y.mean()))
    freqs = np.fft.rfftfreq(len(y), d=t[1] - t[0])
    f_peak = freqs[np.argmax(spectrum)]
    assert abs(f_peak - beta / (2 * np.pi)) <= freqs[1], (f_peak, beta / (2 * np.pi), freqs[1])


def test_decay_rate_of_the_envelope(explorer):
    explorer.controls["alpha"].value = -1.25
    t, env = explorer.fig.mamba_artists["envelope_upper"].get_data()
    slope, _ = np.polyfit(t, np.log(env), 1)
    assert slope == pytest.approx(-1.25, rel=1e-9)


def test_state_heatmap_shows_each_mode_decaying(explorer):
    explorer.controls["init"].value = "S4D-Real"
    explorer.controls["n"].value = 5
    explorer.controls["delta"].value = 0.02
    image = explorer.fig.mamba_artists["states"]
    L = explorer.fig.mamba_L
    decay = np.asarray(image.get_array())
    assert decay.shape == (5, L)
    m, k = np.arange(5)[:, None], np.arange(L)[None, :]
    np.testing.assert_allclose(decay, np.exp(-(m + 1) * 0.02 * k), rtol=1e-10, atol=1e-300)
    assert image.get_extent()[1] == pytest.approx(0.02 * L)
    assert image.axes.get_ylim() == pytest.approx((4.5, -0.5))  # one row per mode, mode 0 on top
    # S4D-Lin: every mode has Re λ = −½, so all rows decay alike
    explorer.controls["init"].value = "S4D-Lin"
    decay = np.asarray(image.get_array())
    np.testing.assert_allclose(decay, np.broadcast_to(np.exp(-0.5 * 0.02 * k), (5, L)), rtol=1e-10)


@pytest.mark.parametrize("init", ["S4D-Lin", "S4D-Inv", "S4D-Real"])
def test_kernel_panels_match_closed_form(explorer, init):
    n, delta = 6, 0.04
    explorer.controls["n"].value = n
    explorer.controls["delta"].value = delta
    N = 2 * n
    lam = {
        "S4D-Lin": [complex(-0.5, np.pi * m) for m in range(n)],
        "S4D-Inv": [complex(-0.5, N / np.pi * (N / (2 * m + 1) - 1)) for m in range(n)],
        "S4D-Real": [-(m + 1.0) for m in range(n)],
    }[init]
    L = explorer.fig.mamba_L
    K = np.zeros(L, dtype=complex)
    for mode in lam:
        A_bar, B_bar = _zoh(mode, delta)
        K += A_bar ** np.arange(L) * B_bar
    K = 2 * K.real if init != "S4D-Real" else K.real
    key = {"S4D-Lin": "lin", "S4D-Inv": "inv", "S4D-Real": "real"}[init]
    np.testing.assert_allclose(explorer.fig.mamba_artists[f"kernel_{key}"].get_ydata(), K / np.abs(K).max(), atol=1e-12)


def test_frequency_response_peaks_at_beta_delta(explorer):
    alpha, beta, delta = -0.1, 5.0, 0.1
    explorer.controls["alpha"].value = alpha
    explorer.controls["beta"].value = beta
    explorer.controls["delta"].value = delta
    art = explorer.fig.mamba_artists
    omega, H = art["freq"].get_data()
    z_inv = np.exp(-1j * omega)
    H_ref = 0
    for lam in (alpha + 1j * beta, alpha - 1j * beta):
        A_bar, B_bar = _zoh(lam, delta)
        H_ref = H_ref + B_bar / (1 - A_bar * z_inv)
    np.testing.assert_allclose(H, np.abs(H_ref) / np.abs(H_ref).max(), rtol=1e-10)
    assert omega[np.argmax(H)] == pytest.approx(beta * delta, abs=2 * (omega[1] - omega[0]))
    np.testing.assert_allclose(art["freq_marker"].get_xdata(), [beta * delta] * 2)


def test_updates_reuse_the_same_figure_and_artists(explorer):
    fig, art = explorer.fig, dict(explorer.fig.mamba_artists)
    n_figures, n_axes = len(plt.get_fignums()), len(fig.axes)
    n_lines = [len(ax.lines) for ax in fig.axes]
    for value in (1, 7, 33, 64):
        explorer.controls["n"].value = value
    explorer.controls["alpha"].value = -1.0
    assert explorer.fig is fig and len(fig.axes) == n_axes
    assert [len(ax.lines) for ax in fig.axes] == n_lines
    assert all(fig.mamba_artists[key] is art[key] for key in art)
    assert len(plt.get_fignums()) == n_figures


def test_static_figure_has_six_panels_and_rejects_unknown_init():
    fig = diagonal_figure(-0.5, 3.0, 0.1, 8, "S4D-Inv")
    titles = [ax.get_title()[:3] for ax in fig.axes if ax.get_title()]
    assert sorted(titles) == ["(a)", "(b)", "(c)", "(c)", "(c)", "(d)"]
    with pytest.raises(ValueError, match="init must be one of"):
        diagonal_figure(init="S4D-Foo")


def test_frequency_response_of_a_pole_on_the_unit_circle(explorer):
    """Re λ = 0, Im λ = 0 (both sliders at their ends): Ā = 1 sits on the unit circle at ω = 0, |H(1)| = ∞.

    The panel shows the limit Re λ → 0⁻ (reference: the closed form at Re λ = −1e−12): 1 at ω = 0, 0 elsewhere;
    it showed NaN at ω = 0 and 0 everywhere else, with divide-by-zero warnings.
    """
    import warnings

    explorer.controls["delta"].value = 0.01
    explorer.controls["beta"].value = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        explorer.controls["alpha"].value = 0.0
    omega, H = explorer.fig.mamba_artists["freq"].get_data()
    z_inv = np.exp(-1j * omega)
    A_bar, B_bar = _zoh(-1e-12, 0.01)
    H_ref = np.abs(2 * B_bar / (1 - A_bar * z_inv))  # the pair λ = λ̄ = −1e−12, each B̄/(1 − Ā z⁻¹)
    np.testing.assert_allclose(H, H_ref / H_ref.max(), rtol=0, atol=1e-9)
    assert H[0] == 1.0
