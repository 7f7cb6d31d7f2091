"""The lesson-4 explorer, driven in Python: slider values change the artists to the right data.

Reference: a float64 loop written from the equations h_t = e^{Δ_t A_k} h_{t−1} + B̄_t u_t (tolerance 1e-12).
"""

import numpy as np
import pytest

from mamba_edu.plot.selective import selective_figure
from mamba_edu.selective_toy import A_SCALES, demo_tokens, last_signal, selective_toy
from mamba_edu.widgets import selective_explorer


def reference(u, is_signal, selectivity, A, delta_bias, method):
    s = np.where(is_signal, 1.0, -1.0)
    delta_sel = np.log(1 + np.exp(delta_bias + selectivity * s))
    delta_lti = np.full(len(u), np.log(1 + np.exp(delta_bias)))
    result = {"delta_sel": delta_sel, "delta_lti": delta_lti}
    for name, delta in (("sel", delta_sel), ("lti", delta_lti)):
        h = np.zeros((3, len(u)))
        for k, scale in enumerate(A_SCALES):
            a, state = A * scale, 0.0
            for t in range(len(u)):
                decay = np.exp(delta[t] * a)
                gain = (1 - decay) if method == "zoh" else delta[t] * (-a)  # B = −A: ZOH B̄ = 1 − e^{ΔA}
                state = decay * state + gain * u[t]
                h[k, t] = state
        result[f"h_{name}"], result[f"y_{name}"] = h, h.mean(0)
    return result


def artist_data(fig):
    art = fig.mamba_artists
    return {
        "delta_sel": art["delta_sel"].get_ydata(),
        "delta_lti": art["delta_lti"].get_ydata(),
        "h_sel": np.array([line.get_ydata() for line in art["h_sel"]]),
        "h_lti": np.array([line.get_ydata() for line in art["h_lti"]]),
        "y_sel": art["y_sel"].get_ydata(),
        "y_lti": art["y_lti"].get_ydata(),
    }


def assert_matches(fig, expected):
    got = artist_data(fig)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-12, atol=1e-12, err_msg=key)


def test_explorer_sliders_redraw_the_right_values():
    explorer = selective_explorer()
    u, is_signal = demo_tokens()
    assert set(explorer.controls) == {"selectivity", "A", "delta_bias", "method"}
    assert explorer.redraws == 1
    assert_matches(explorer.fig, reference(u, is_signal, 4.0, -1.0, -1.0, "zoh"))
    lines_before = [id(line) for line in explorer.fig.mamba_artists["h_sel"]]
    n_axes = len(explorer.fig.axes)

    explorer.controls["selectivity"].value = 6.5
    explorer.controls["A"].value = -2.5
    explorer.controls["delta_bias"].value = -2.0
    assert_matches(explorer.fig, reference(u, is_signal, 6.5, -2.5, -2.0, "zoh"))
    explorer.controls["method"].value = "mamba"
    assert_matches(explorer.fig, reference(u, is_signal, 6.5, -2.5, -2.0, "mamba"))
    assert explorer.redraws == 5
    # the same artists, updated in place: no new lines or axes
    assert [id(line) for line in explorer.fig.mamba_artists["h_sel"]] == lines_before
    assert len(explorer.fig.axes) == n_axes


def test_selectivity_zero_is_lti_and_selective_remembers_the_signal():
    u, is_signal = demo_tokens()
    lti = selective_toy(u, is_signal, 0.0, -1.0)
    np.testing.assert_allclose(lti["h_sel"], lti["h_lti"], rtol=0, atol=0)
    r = selective_toy(u, is_signal, 6.0, -1.0)
    target = last_signal(u, is_signal)
    after = np.arange(len(u)) >= np.argmax(is_signal)
    err_sel = np.abs(r["y_sel"] - target)[after].mean()
    err_lti = np.abs(r["y_lti"] - target)[after].mean()
    assert err_sel < 0.1 < 0.3 < err_lti, (err_sel, err_lti)


def test_static_figure_and_bad_parameters():
    fig = selective_figure(selectivity=2.0, A=-0.5)
    u, is_signal = demo_tokens()
    assert_matches(fig, reference(u, is_signal, 2.0, -0.5, -1.0, "zoh"))
    np.testing.assert_array_equal(fig.mamba_artists["target"].get_ydata(), last_signal(u, is_signal))
    with pytest.raises(ValueError, match="A must be negative, got 0.5"):
        selective_toy(u, is_signal, 1.0, 0.5)
    with pytest.raises(ValueError, match="method must be one of"):
        selective_toy(u, is_signal, 1.0, -1.0, method="bilinear")


def test_last_signal():
    np.testing.assert_array_equal(last_signal([5, 1, 2, 3], [False, True, False, True]), [0, 1, 1, 3])


@pytest.mark.parametrize("delta_bias, selectivity", [(-6.0, 8.0), (-2.0, 8.0), (-6.0, 4.0), (-1.0, 4.0), (2.0, 8.0)])
def test_every_step_size_is_inside_the_delta_panel(delta_bias, selectivity):
    """Δ_t on noise tokens is softplus(bias − selectivity), down to ≈ 8e-7 at the sliders' ends: still drawn."""
    explorer = selective_explorer()
    explorer.controls["delta_bias"].value = delta_bias
    explorer.controls["selectivity"].value = selectivity
    line = explorer.fig.mamba_artists["delta_sel"]
    bottom, top = line.axes.get_ylim()
    noise = np.log1p(np.exp(delta_bias - selectivity))  # softplus, the smallest Δ_t
    assert line.get_ydata().min() == pytest.approx(noise, rel=1e-12)
    assert bottom <= noise and line.get_ydata().max() <= top
    assert bottom >= noise / 10 or bottom == 1e-4  # not zoomed out further than a decade below the data
