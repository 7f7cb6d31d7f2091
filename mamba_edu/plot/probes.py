"""Figures of what a trained model does inside (lesson 5): the probes of :mod:`mamba_edu.experiments.probe`.

Both take the JSON-able dicts that the probe functions return (live, or recorded in
``mamba_edu/data/probes.json``) and return a matplotlib ``Figure``.

Explained in lesson 5.
"""

import numpy as np

from mamba_edu.plot.base import new_figure


def copying_probe_figure(probe, positions=96, fig=None):
    """Selective copying: (a) Δ per channel on data vs noise tokens; (b) one sequence through one channel.

    Parameters
    ----------
    probe : dict
        From :func:`~mamba_edu.experiments.probe.probe_selective_copying`.
    positions : int
        How many positions of the example sequence panel (b) shows.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    fig = new_figure(fig, figsize=(11, 3.6))
    ax_a, ax_b = fig.subplots(1, 2, width_ratios=[1, 1.8])
    noise = np.asarray(probe["delta_noise"])
    ax_a.loglog(noise, probe["delta_data"], "o", ms=4, color="C1", label="on the data token")
    if "delta_after_data" in probe:
        ax_a.loglog(noise, probe["delta_after_data"], "^", ms=4, color="C2", label="on the token after it")
    lo, hi = ax_a.get_xlim()[0], max(ax_a.get_ylim()[1], ax_a.get_xlim()[1])
    ax_a.plot([lo, hi], [lo, hi], "k:", lw=0.8, label="equal")
    ax_a.set(xlabel="median Δ on noise", ylabel="median Δ", title=f"(a) Δ per channel, layer {probe['layer']}")
    ax_a.legend(fontsize=7)

    ex = probe["example"]
    tokens = np.asarray(ex["tokens"][:positions])
    t = np.arange(len(tokens))
    ax_b.semilogy(t, ex["delta"][:positions], color="C0", lw=1.2, label=f"Δ_t, channel {ex['channel']}")
    for k in np.flatnonzero(tokens >= 2):
        ax_b.axvline(k, color="C1", lw=1.0, alpha=0.6)
    ax_b.set(xlabel="position t (orange: data tokens)", ylabel="Δ_t",
             title="(b) one sequence: Δ jumps at data, the state holds through noise")
    twin = ax_b.twinx()
    twin.plot(t, ex["state_norm"][:positions], color="C3", lw=1.2, label="|h_t| of that channel")
    twin.set_ylabel("|h_t|")
    lines = ax_b.get_lines()[:1] + twin.get_lines()
    ax_b.legend(lines, [line.get_label() for line in lines], fontsize=7, loc="upper left")
    return fig


def induction_probe_figure(probe, fig=None):
    """Induction heads: Δ after the trigger vs elsewhere, with and without conv1d's look-back.

    Parameters
    ----------
    probe : dict
        From :func:`~mamba_edu.experiments.probe.probe_induction_heads`.
    fig : Figure, optional

    Returns
    -------
    Figure
    """
    fig = new_figure(fig, figsize=(11, 3.4))
    ax_a, ax_b = fig.subplots(1, 2, width_ratios=[2, 1])
    with_lb = np.asarray(probe["with_look_back"]["ratio"])
    without = np.asarray(probe["without_look_back"]["ratio"])
    order = np.argsort(-with_lb)
    ax_a.semilogy(with_lb[order], "o-", ms=3, color="C0", label="with conv1d's look-back (as trained)")
    ax_a.semilogy(without[order], "s-", ms=3, color="C3", label="look-back zeroed (each token sees itself)")
    ax_a.axhline(1.0, color="k", ls=":", lw=0.8)
    ax_a.set(xlabel="channel (sorted)", ylabel="Δ after trigger / Δ elsewhere",
             title=f"(a) layer {probe['layer']}: the token after the trigger gets a large Δ")
    ax_a.legend(fontsize=7)
    acc = probe["accuracy"]
    ax_b.bar(["as trained", "look-back\nzeroed"], [acc["with_look_back"], acc["without_look_back"]],
             color=["C0", "C3"])
    ax_b.set(ylim=(0, 1.05), ylabel="accuracy", title="(b) accuracy on held-out sequences")
    return fig
