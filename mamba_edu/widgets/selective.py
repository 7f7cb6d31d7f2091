"""Lesson 4 explorer: make Δ depend on the token and watch the state reset on signal, hold through noise."""

import ipywidgets as W

from mamba_edu.plot.selective import selective_figure, update_selective_figure
from mamba_edu.selective_toy import demo_tokens
from mamba_edu.widgets.base import Explorer, live_figure


def selective_explorer(u=None, is_signal=None, selectivity=4.0, A=-1.0, delta_bias=-1.0, method="zoh"):
    """Sliders for the selectivity of Δ, for A and for the Δ bias; a selector for the discretization of B (``method``).

    Panels (see :func:`mamba_edu.plot.selective.selective_figure`): (a) the tokens, (b) Δ_t,
    (c) the selective model's states, (d) the LTI twin's states, (e) both outputs against the
    last signal value. With selectivity 0 the two models coincide.

    Parameters
    ----------
    u, is_signal : arrays, shape (l,), optional
        The token values and which tokens are signal (default :func:`demo_tokens`).
    selectivity, A, delta_bias : float
        Initial slider values: Δ_t = softplus(delta_bias + selectivity·s_t); channels A·(1, 2, 4).
    method : {"zoh", "mamba"}
        B̄ by zero-order hold (a gated RNN, Theorem 1) or Mamba's B̄ = ΔB.

    Returns
    -------
    Explorer (an ipywidgets VBox) with ``controls["selectivity"]``, ``controls["A"]``,
    ``controls["delta_bias"]``, ``controls["method"]``.

    Explained in lesson 4.
    """
    if u is None:
        u, is_signal = demo_tokens()
    controls = {
        "selectivity": W.FloatSlider(value=selectivity, min=0.0, max=8.0, step=0.1, description="selectivity"),
        "A": W.FloatSlider(value=A, min=-4.0, max=-0.1, step=0.05, description="A"),
        "delta_bias": W.FloatSlider(value=delta_bias, min=-6.0, max=2.0, step=0.1, description="Δ bias"),
        "method": W.Dropdown(options=[("ZOH B̄ (gated RNN)", "zoh"), ("Mamba B̄ = ΔB", "mamba")], value=method,
                           description="B̄ rule"),
    }
    fig = selective_figure(u, is_signal, selectivity, A, delta_bias, method, fig=live_figure(figsize=(11, 6.6)))
    return Explorer(controls, fig, update_selective_figure,
                    title="Lesson 4: a selective SSM remembers the signal and ignores the noise")
