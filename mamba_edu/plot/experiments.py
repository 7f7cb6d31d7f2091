"""Figures for lesson 5 (topic ``experiments``): example sequences of the synthetic tasks, and the experiments' results.

Pure functions: arrays or result dicts in, a matplotlib ``Figure`` out (no pyplot state, no file I/O).
``tasks_figure`` keeps its artists in ``fig.mamba_artists`` and :func:`update_tasks_figure` sets new
data on them (for :func:`mamba_edu.widgets.experiments.experiments_explorer`).
"""

import numpy as np
from matplotlib.colors import ListedColormap

from mamba_edu.experiments.tasks import FIRST_DATA, IGNORE, TRIGGER
from mamba_edu.plot.base import new_figure, set_sticky_xmax

# colours of the token strips: noise/ordinary tokens grey, markers/triggers black, data in colour
_N_COLOURS = 12
_DATA_COLOURS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9", "gold"]  # no grey (C7): grey is noise
_CMAP = ListedColormap(["0.88", "0.1"] + _DATA_COLOURS)


def _codes_copying(inputs):
    """Token ids → colour codes: 0 noise, 1 marker, 2 + (value mod 10) data."""
    inputs = np.asarray(inputs)
    return np.where(inputs >= FIRST_DATA, 2 + (inputs - FIRST_DATA) % (_N_COLOURS - 2), inputs)


def _codes_induction(inputs, targets):
    """0 ordinary token, 1 trigger, 2 the answer token (right after the first trigger)."""
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    codes = np.where(inputs == TRIGGER, 1, 0)
    for row in range(len(inputs)):
        p = np.flatnonzero(inputs[row, :-1] == TRIGGER)[0]
        codes[row, p + 1] = 2
    return codes


def tasks_figure(copying, induction, fig=None):
    """Token strips of a few example sequences of each task.

    Parameters
    ----------
    copying, induction : (inputs, targets) pairs of int arrays, shape (rows, length)
        From :func:`~mamba_edu.experiments.tasks.selective_copying_batch` and
        :func:`~mamba_edu.experiments.tasks.induction_heads_batch` (e.g. :func:`example_sequences`).
    fig : Figure, optional

    Returns
    -------
    Figure with ``fig.mamba_artists`` = {"copying", "induction", "copying_answers", "induction_answers"}.
    """
    fig = new_figure(fig, figsize=(11, 3.6))
    ax_c, ax_i = fig.subplots(2, 1)
    art = fig.mamba_artists
    kw = dict(cmap=_CMAP, vmin=-0.5, vmax=_N_COLOURS - 0.5, aspect="auto", interpolation="nearest")
    art["copying"] = ax_c.imshow(_codes_copying(copying[0]), **kw)
    art["copying_answers"] = ax_c.text(1.0, 1.02, "", transform=ax_c.transAxes, ha="right", fontsize=9)
    ax_c.set_title("selective copying: data (colour) among noise (grey), then markers (black)", loc="left", fontsize=10)
    ax_c.set(
             ylabel="example", yticks=[])
    art["induction"] = ax_i.imshow(_codes_induction(*induction), **kw)
    art["induction_answers"] = ax_i.text(1.0, 1.02, "", transform=ax_i.transAxes, ha="right", fontsize=9)
    ax_i.set_title("induction heads: trigger (black), its successor (colour), …, trigger again", loc="left",
                   fontsize=10)
    ax_i.set(
             xlabel="position", ylabel="example", yticks=[])
    update_tasks_figure(fig, copying, induction)
    for image in (art["copying"], art["induction"]):  # start tight; updates move the limit in steps
        image.axes.set_xlim(-0.5, image.get_array().shape[1] - 0.5)
    return fig


def _fit_tokens(ax, n_tokens):
    """x-limits for a strip of ``n_tokens`` tokens: moved in steps only when needed (see ``sticky_limit``), but
    never so wide that a token is narrower than a pixel: drawn "nearest", such a token could be skipped."""
    set_sticky_xmax(ax, n_tokens - 0.5, xmin=-0.5)
    if ax.get_xlim()[1] + 0.5 > ax.get_window_extent().width:
        ax.set_xlim(-0.5, n_tokens - 0.5)


def update_tasks_figure(fig, copying, induction):
    """Show new example batches in a :func:`tasks_figure` (same artists, new data)."""
    art = fig.mamba_artists
    for key, codes in (("copying", _codes_copying(copying[0])), ("induction", _codes_induction(*induction))):
        image = art[key]
        image.set_data(codes)
        image.set_extent((-0.5, codes.shape[1] - 0.5, codes.shape[0] - 0.5, -0.5))
        _fit_tokens(image.axes, codes.shape[1])
    answers = [row[row != IGNORE].tolist() for row in np.asarray(copying[1])]
    art["copying_answers"].set_text(f"answers, row 1: {answers[0]}")
    art["induction_answers"].set_text(f"answer, row 1: {int(np.asarray(induction[1])[0, -1])}")
    return fig


def accuracy_figure(results, fig=None):
    """Evaluation accuracy vs training step of the LTI and the selective model, one panel per result.

    Parameters
    ----------
    results : list of dict
        Results of :func:`~mamba_edu.experiments.run_experiment` (with their ``history``).
    """
    fig = new_figure(fig, figsize=(5.5 * len(results), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(results)))
    for ax, result in zip(axes, results):
        for kind, style in (("selective", "-o"), ("lti", "--s")):
            hist = result["history"].get(kind, [])
            ax.plot([h["step"] for h in hist], [h["accuracy"] for h in hist], style, ms=3, label=kind)
        ax.axhline(0.95, color="0.6", lw=0.8, ls=":")
        ax.set(title=result["task"], xlabel="training step", ylabel="accuracy", ylim=(-0.02, 1.02))
        ax.legend(loc="center right")
    return fig


def extrapolation_figure(result, fig=None):
    """Induction heads: accuracy vs test length, trained at ``result["config"]["length"]``."""
    fig = new_figure(fig, figsize=(5.5, 3.2))
    ax = fig.subplots()
    lengths = []
    for kind, style in (("selective", "-o"), ("lti", "--s")):
        by_length = result.get(f"{kind}_by_length")
        if not by_length:  # e.g. a recorded run that stopped before this model's evaluation
            continue
        lengths = sorted(int(k) for k in by_length)
        ax.plot(lengths, [by_length[str(k)] for k in lengths], style, label=kind)
    ax.axvline(result["config"]["length"], color="0.6", lw=0.8, ls=":", label="training length")
    ax.set(xscale="log", xlabel="test sequence length", ylabel="accuracy", ylim=(-0.02, 1.02),
           title="induction heads: extrapolation")
    ax.set_xticks(lengths, [str(k) for k in lengths])
    ax.legend()
    return fig
