"""Lesson 5's explorer (topic ``experiments``): example sequences of the two tasks, redrawn as the sliders move."""

import ipywidgets as W

from mamba_edu.experiments.tasks import example_sequences
from mamba_edu.plot.experiments import tasks_figure, update_tasks_figure
from mamba_edu.widgets.base import Explorer, live_figure


def experiments_explorer(n_data=4, n_noise=60, length=48, seed=0):
    """Sliders for the number of data tokens, the amount of noise, the induction length and the seed.

    Returns
    -------
    :class:`~mamba_edu.widgets.base.Explorer`
        Its figure is :func:`~mamba_edu.plot.experiments.tasks_figure`; every change draws a new
        batch (``example_sequences``) into the same two images.

    Explained in lesson 5.
    """
    controls = {
        "n_data": W.IntSlider(value=n_data, min=1, max=16, description="data tokens"),
        "n_noise": W.IntSlider(value=n_noise, min=0, max=500, step=10, description="noise tokens"),
        "length": W.IntSlider(value=length, min=8, max=256, step=8, description="induction l"),
        "seed": W.IntSlider(value=seed, min=0, max=20, description="seed"),
    }
    fig = live_figure(figsize=(11, 3.6))
    tasks_figure(*_examples(n_data, n_noise, length, seed).values(), fig=fig)

    def update(fig, n_data, n_noise, length, seed):
        update_tasks_figure(fig, *_examples(n_data, n_noise, length, seed).values())

    return Explorer(controls, fig, update, title="Lesson 5: the selective copying and induction heads tasks")


def _examples(n_data, n_noise, length, seed):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return example_sequences(n_rows=4, n_data=n_data, n_noise=n_noise, length=length, generator=generator)
