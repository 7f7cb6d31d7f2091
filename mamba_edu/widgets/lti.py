"""Lesson 1 explorer: move the eigenvalue pair α ± iβ and watch decay and oscillation."""

import ipywidgets as W

from mamba_edu.plot.lti import lti_figure, update_lti_figure
from mamba_edu.widgets.base import Explorer, live_figure


def lti_explorer(alpha=-0.3, beta=2.0):
    """Sliders for α = Re λ and β = Im λ of the 2-state oscillator.

    Panels: (a) impulse response with envelope e^{αt}, (b) eigenvalues with the stable
    half-plane shaded, (c) the state trajectory in the (h₁, h₂) plane.

    Returns
    -------
    Explorer (an ipywidgets VBox) with ``controls["alpha"]``, ``controls["beta"]`` and
    ``fig.mamba_artists`` as documented in :func:`mamba_edu.plot.lti.lti_figure`.
    """
    controls = {
        "alpha": W.FloatSlider(value=alpha, min=-2.0, max=0.5, step=0.05, description="α = Re λ"),
        "beta": W.FloatSlider(value=beta, min=0.0, max=10.0, step=0.1, description="β = Im λ"),
    }
    fig = lti_figure(alpha, beta, fig=live_figure(figsize=(11, 3.4)))
    return Explorer(controls, fig, update_lti_figure, title="Lesson 1: a conjugate eigenvalue pair α ± iβ")
