"""Lesson 2 explorer: drag Δ and the eigenvalue, pick a rule, watch the discretization."""

import ipywidgets as W

from mamba_edu.discretization import METHODS
from mamba_edu.plot.discretization import LABELS, discretization_figure, update_discretization_figure
from mamba_edu.widgets.base import Explorer, live_figure


def discretization_explorer(alpha=-0.8, beta=3.0, delta=0.25, method="zoh"):
    """Sliders for Δ (log scale) and λ = α + iβ, and a selector for the rule drawn in bold.

    Panels: (a) continuous impulse response with each rule's samples, (b) the eigenvalues in the
    s-plane, (c) their z-plane images Ā with the unit circle (Euler leaves it for large Δ),
    (d) step-response error vs Δ on log–log axes with the observed orders, (e) |Ā|^k over steps.

    Returns
    -------
    Explorer (an ipywidgets VBox) with ``controls["delta"]`` (a ``FloatLogSlider``),
    ``controls["alpha"]``, ``controls["beta"]`` (``FloatSlider``) and ``controls["method"]``
    (a ``Dropdown``); the artists are documented in
    :func:`mamba_edu.plot.discretization.discretization_figure`.

    Explained in lesson 2.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(map(repr, METHODS))}")
    controls = {
        "delta": W.FloatLogSlider(value=delta, base=10, min=-2, max=0.5, step=0.05, description="Δ",
                                  readout_format=".3f"),
        "alpha": W.FloatSlider(value=alpha, min=-4.0, max=0.0, step=0.05, description="α = Re λ"),
        "beta": W.FloatSlider(value=beta, min=0.0, max=8.0, step=0.1, description="β = Im λ"),
        "method": W.Dropdown(options=[(LABELS[m], m) for m in METHODS], value=method, description="rule"),
    }
    fig = discretization_figure(alpha, beta, delta, method, fig=live_figure(figsize=(11, 6.6)))
    title = "Lesson 2: from h' = λh + u to h_k = Ā h_{k−1} + B̄ u_k"
    return Explorer(controls, fig, update_discretization_figure, title=title)
