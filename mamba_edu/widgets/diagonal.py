"""Lesson 3's explorer: sliders for Re λ, Im λ, Δ and the S4D state size n.

Explained in lesson 3. The figure is :func:`mamba_edu.plot.diagonal.diagonal_figure`.
"""

import ipywidgets as W

from mamba_edu.diagonal import INITS
from mamba_edu.plot.diagonal import diagonal_figure, update_diagonal_figure
from mamba_edu.widgets.base import Explorer, live_figure


def diagonal_explorer(alpha=-0.3, beta=4.0, delta=0.05, n=16, init="S4D-Lin"):
    """Explore one complex mode, state decay, the S4D kernels and the frequency response.

    Parameters
    ----------
    alpha : float in [−2, 0]
        Real part of the mode λ (decay rate; 0 = no decay).
    beta : float in [0, 10]
        Imaginary part of λ (angular frequency; the oscillation has Im λ/(2π) cycles per unit time).
    delta : float in [0.01, 0.3]
        Step size Δ (Im λ·Δ stays below π, so no aliasing).
    n : int in [1, 64]
        Number of modes of the S4D initialisations.
    init : {"S4D-Lin", "S4D-Inv", "S4D-Real"}
        Initialisation shown in the state-decay heatmap.

    Returns
    -------
    Explorer
        ``explorer.controls`` holds the sliders ``alpha``, ``beta``, ``delta``, ``n``
        and the selector ``init``; ``explorer.fig`` the live figure.
    """
    s = {"style": {"description_width": "initial"}}
    controls = {
        "alpha": W.FloatSlider(value=alpha, min=-2.0, max=0.0, step=0.05, description="Re λ", **s),
        "beta": W.FloatSlider(value=beta, min=0.0, max=10.0, step=0.1, description="Im λ", **s),
        "delta": W.FloatSlider(value=delta, min=0.01, max=0.3, step=0.01, description="Δ", **s),
        "n": W.IntSlider(value=n, min=1, max=64, step=1, description="n (S4D modes)", **s),
        "init": W.Dropdown(options=list(INITS), value=init, description="heatmap", **s),
    }
    fig = diagonal_figure(alpha, beta, delta, n, init, fig=live_figure(figsize=(11, 6)))
    return Explorer(controls, fig, update_diagonal_figure, title="Lesson 3: complex diagonal A")
