"""Figures for lesson 8 (Mamba-2, state space duality): the semiseparable matrix and what each method costs.

:func:`ssd_figure` has three panels:
(a) |M| of one head (log colour scale) with the chunk grid of chunk size Q: the diagonal blocks
    (outlined) are what the chunked method computes as small attention-like matrix products; the
    off-diagonal blocks are never formed — they have rank ≤ n and reach the output through the states;
(b) floating-point operations per head against the sequence length l, for the three methods (the
    chunked one at the current Q), and a marker at the chosen l;
(c) memory of the intermediates per head (floats) against l, likewise.

The cost model of panels (b) and (c) is :func:`mamba_edu.scans.ssd.ssd_costs`, the measured rank of the
off-diagonal blocks :func:`mamba_edu.scans.ssd.offdiagonal_rank`. Arrays in, Figure out; no file I/O.
"""

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm
from matplotlib.patches import Rectangle

from mamba_edu.plot.base import new_figure
from mamba_edu.scans.ssd import offdiagonal_rank, ssd_costs  # noqa: F401  (the lesson's figures use both)

METHOD_COLORS = {"sequential": "C7", "quadratic": "C3", "chunked": "C0"}
L_RANGE = 2.0 ** np.arange(6, 17)  # sequence lengths of panels (b) and (c): 64 … 65536


def chunk_grid(l, Q):
    """Chunk boundaries of an (l, l) matrix, for panel (a).

    Returns
    -------
    lines : list of ((x0, y0), (x1, y1))
        One vertical and one horizontal line at every inner boundary k·Q (in pixel coordinates:
        entries sit at integers, so boundaries at k·Q − 0.5).
    diagonal : list of (x, y, width, height)
        The diagonal blocks (the last one shorter when Q does not divide l).
    """
    edges = np.arange(Q, l, Q) - 0.5
    lo, hi = -0.5, l - 0.5
    lines = [((e, lo), (e, hi)) for e in edges] + [((lo, e), (hi, e)) for e in edges]
    starts = np.arange(0, l, Q)
    diagonal = [(s - 0.5, s - 0.5, min(Q, l - s), min(Q, l - s)) for s in starts]
    return lines, diagonal


def ssd_figure(M, chunk_size=16, l_cost=4096, p=64, n=128, n_matrix=None, fig=None):
    """The semiseparable matrix with its chunk blocks, and the cost of each method.

    Parameters
    ----------
    M : array, shape (l, l)
        One head's matrix (:func:`mamba_edu.ssd_matrix`), shown as |M| on a log scale.
    chunk_size : int
        Q, for the grid on M and the chunked method's cost.
    l_cost : int
        Sequence length marked in panels (b) and (c).
    p, n : int
        Head dimension and state size of the cost model (Mamba-2's defaults 64 and 128).
    n_matrix : int, optional
        State size of the example M (printed beside the measured rank of its off-diagonal blocks).

    Returns
    -------
    matplotlib.figure.Figure with ``fig.mamba_artists``.
    """
    fig = new_figure(fig, figsize=(11, 3.6))
    M = np.asarray(M, dtype=float)  # signed: the rank of |M|'s blocks would not be ≤ n
    l = M.shape[0]
    ax_m, ax_f, ax_b = fig.subplots(1, 3, gridspec_kw=dict(width_ratios=[1, 1.1, 1.1]))
    fig.mamba_artists.update(axes=(ax_m, ax_f, ax_b), M=M, p=p, n=n, n_matrix=n_matrix)

    mag = np.abs(M)
    positive = mag[mag > 0]
    vmin = max(positive.min(), positive.max() * 1e-6) if positive.size else 1e-6
    ax_m.imshow(np.where(mag > 0, mag, np.nan), norm=LogNorm(vmin, max(mag.max(), vmin * 10)), cmap="viridis",
                interpolation="nearest")
    grid = LineCollection([], colors="white", linewidths=0.8)
    ax_m.add_collection(grid)
    ax_m.set(xlabel="source step s", ylabel="target step t")
    blocks = [ax_m.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec="C3", lw=1.6, visible=False)) for _ in range(l)]
    fig.mamba_artists.update(grid=grid, blocks=blocks)  # one outline per possible diagonal block, reused

    for ax, kind in ((ax_f, "FLOPs"), (ax_b, "floats")):
        lines = {}
        for method, color in METHOD_COLORS.items():
            (lines[method],) = ax.loglog(L_RANGE, np.ones_like(L_RANGE), color=color, lw=2, label=method)
        (marker,) = ax.loglog([], [], "o", color="k", ms=5, zorder=5)
        ax.axvline(l_cost, color="k", lw=0.8, ls=":")
        ax.set(xlabel="sequence length l", ylabel=f"{kind} per head")
        ax.grid(True, which="major", alpha=0.3)
        fig.mamba_artists[f"lines_{kind}"] = lines
        fig.mamba_artists[f"marker_{kind}"] = marker
        fig.mamba_artists[f"vline_{kind}"] = ax.lines[-1]
    ax_f.legend(loc="upper left", fontsize=8)
    ax_f.set_ylim(1e5, 1e15)
    ax_b.set_ylim(1e2, 1e10)
    update_ssd_figure(fig, chunk_size, l_cost)
    return fig


def update_ssd_figure(fig, chunk_size=16, l_cost=4096):
    """Set the chunk grid, the chunked cost curves and the markers for a new Q and l.

    Panel (a) and the cost curves depend on Q only: they are redrawn when Q changes, not when only l moves.
    """
    art = fig.mamba_artists
    _, ax_f, ax_b = art["axes"]
    M, p, n = art["M"], art["p"], art["n"]
    Q = int(chunk_size)
    if art.get("Q") != Q:
        art["Q"] = Q
        _draw_chunks(art, M, Q)
        costs = ssd_costs(L_RANGE, Q, p, n)
        for i, kind in enumerate(("FLOPs", "floats")):
            for method, line in art[f"lines_{kind}"].items():
                line.set_ydata(np.broadcast_to(costs[method][i], L_RANGE.shape))

    here = ssd_costs(l_cost, Q, p, n)
    for i, kind in enumerate(("FLOPs", "floats")):
        art[f"marker_{kind}"].set_data([l_cost] * 3, [float(here[m][i]) for m in METHOD_COLORS])
        art[f"vline_{kind}"].set_xdata([l_cost, l_cost])
    ratio = float(here["chunked"][0] / here["sequential"][0])
    ax_f.set_title(f"(b) FLOPs, l = {l_cost}, p = {p}, n = {n}:\nchunked = {ratio:.1f}× sequential, "
                   "nearly all in matmuls", fontsize=9)
    mem = float(here["chunked"][1] / here["quadratic"][1])
    ax_b.set_title(f"(c) memory of the intermediates:\nchunked = {mem:.2g}× quadratic's l²", fontsize=9)
    return fig


def _draw_chunks(art, M, Q):
    """Panel (a): the chunk grid and the diagonal blocks of Q, and the measured rank of the other blocks."""
    lines, diagonal = chunk_grid(M.shape[0], Q)
    art["grid"].set_segments(lines)
    for k, patch in enumerate(art["blocks"]):
        patch.set_visible(k < len(diagonal))
        if k < len(diagonal):
            patch.set_bounds(*diagonal[k])
    rank = offdiagonal_rank(M, Q)
    n_text = f" (n = {art['n_matrix']})" if art["n_matrix"] else ""
    art["axes"][0].set_title(f"(a) |M|, Q = {Q}: {len(diagonal)} diagonal blocks;\noff-diagonal rank {rank}{n_text}",
                             fontsize=9)


def example_matrix(l=64, n=4, seed=0):
    """A seeded one-head example M (l, l) for the explorer: selective Δ, B, C of state size n."""
    from mamba_edu.scans.ssd import ssd_matrix

    rng = np.random.default_rng(seed)
    dt = rng.uniform(0.02, 0.3, (1, l, 1))
    B, C = rng.standard_normal((1, l, 1, n)), rng.standard_normal((1, l, 1, n))
    return ssd_matrix(dt, np.array([-1.0]), B, C)[0, 0]
