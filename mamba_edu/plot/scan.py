"""Figures for lesson 6: how the parallel scans group the steps, and what that costs.

:func:`scan_figure` has three panels for one schedule (:func:`mamba_edu.scans.parallel.scan_trace`):
(a) the levels of the schedule: row k shows the slots after level k, and the lines into a slot come
    from the slots it combined (dashed: a copy); the current level is red, later ones grey;
(b) what every slot holds after the current level: a bar from step lo to step hi (the stretch of
    steps it has composed); the scan is done when every slot i reaches back to step 0;
(c) work (combines) against depth (levels) for all four methods at this length, with the current
    method's progress so far as a star.

:func:`work_depth_figure` plots work and depth against the sequence length, and
:func:`benchmark_figure` the recorded (or live) GPU timings of lesson 7's kernels.
"""

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.ticker import MaxNLocator

from mamba_edu.plot.base import new_figure, sticky_limit
from mamba_edu.scans.parallel import SCAN_METHODS, scan_trace

DONE, CURRENT, LATER = "C0", "C3", (0.86, 0.86, 0.86)
METHOD_COLORS = dict(zip(SCAN_METHODS, ["C7", "C0", "C2", "C1"]))


def _trace(n, method, chunk_size):
    return scan_trace(n, method, chunk_size=chunk_size if method == "chunked" else None)


def schedule_segments(trace):
    """Line segments of panel (a): for each level k (1-based), its combines and copies.

    Returns
    -------
    combine_segments, copy_segments : lists of ((x0, y0), (x1, y1))
        A combine x[dst] ← x[left] ∘ x[right] at level k gives the segment (left, k−1) → (dst, k),
        and (right, k−1) → (dst, k) when right ≠ dst; a copy x[dst] ← x[src] gives (src, k−1) → (dst, k).
    combine_levels, copy_levels : lists of int
        The level of each segment.
    """
    comb, comb_lv, copy, copy_lv = [], [], [], []
    for k, level in enumerate(trace.levels, start=1):
        for dst, left, right in level.combines:
            for src in (left, right) if right != dst else (left,):
                comb.append(((src, k - 1), (dst, k)))
                comb_lv.append(k)
        for dst, src in level.copies:
            copy.append(((src, k - 1), (dst, k)))
            copy_lv.append(k)
    return comb, comb_lv, copy, copy_lv


def coverage_segments(trace, step):
    """Bars of panel (b): slot i → ((lo − 0.4, i), (hi + 0.4, i)), or a NaN segment for the identity."""
    segments = []
    for i, cov in enumerate(trace.coverage(step)):
        lo, hi = cov if cov is not None else (np.nan, np.nan)
        segments.append(((lo - 0.4, i), (hi + 0.4, i)))
    return segments


def progress(trace, step):
    """(depth, work) after the first ``step`` levels of ``trace``."""
    done = trace.levels[:step]
    return sum(1 for lv in done if lv.combines), sum(len(lv.combines) for lv in done)


def _level_colors(levels, step):
    return [CURRENT if k == step else DONE if k < step else LATER for k in levels]


def scan_figure(n=8, method="hillis_steele", step=None, chunk_size=3, fig=None):
    """The schedule of one scan, what each slot holds after level ``step``, and work vs depth.

    Parameters
    ----------
    n : int
        Sequence length l (≥ 2 reads best; up to ~64 stays legible).
    method : {"sequential", "hillis_steele", "blelloch", "chunked"}
    step : int, optional
        Levels done, 0 … number of levels (default: all, the finished scan).
    chunk_size : int
        Chunk size c for ``"chunked"`` (ignored otherwise).
    fig : matplotlib Figure, optional
        Figure to draw into (cleared); a new one if omitted.

    Returns
    -------
    Figure with ``fig.mamba_artists`` = {"nodes", "combines", "copies", "coverage", "goal",
    "methods", "progress", "labels", "summary"} for :func:`update_scan_figure`.
    """
    fig = new_figure(fig, figsize=(11, 3.8))
    ax_tree, ax_cov, ax_cost = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.5, 1, 1]})
    art = fig.mamba_artists
    art["nodes"] = ax_tree.scatter([], [], s=18, zorder=3)
    art["combines"] = ax_tree.add_collection(LineCollection([], linewidths=1.4))
    art["copies"] = ax_tree.add_collection(LineCollection([], linewidths=1.2, linestyles="--"))
    ax_tree.set(xlabel="slot (time step)", ylabel="after level")

    art["goal"] = ax_cov.add_collection(LineCollection([], linewidths=7, colors=[LATER]))
    art["coverage"] = ax_cov.add_collection(LineCollection([], linewidths=4, colors=[DONE]))
    ax_cov.set(title="(b) steps each slot has composed", xlabel="steps lo … hi", ylabel="slot")

    art["methods"] = ax_cost.scatter([0] * 4, [0] * 4, s=40, c=[METHOD_COLORS[m] for m in SCAN_METHODS], zorder=3)
    art["labels"] = [ax_cost.text(0, 0, name, fontsize=8) for name in SCAN_METHODS]
    (art["progress"],) = ax_cost.plot([0], [0], "*", ms=14, color=CURRENT, zorder=4, label="so far")
    ax_cost.set(title="(c) work vs depth", xlabel="depth (levels)", ylabel="work (combines)")
    ax_cost.legend(loc="lower right", fontsize=8)
    art["summary"] = ax_cost.text(0.02, 0.98, "", transform=ax_cost.transAxes, va="top", fontsize=8)
    for ax in (ax_tree, ax_cov, ax_cost):  # slots, levels, steps and counts are whole numbers
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))

    update_scan_figure(fig, n, method, step, chunk_size)
    return fig


def update_scan_figure(fig, n, method, step=None, chunk_size=3):
    """Set the artists of :func:`scan_figure` to a new length, method, level or chunk size."""
    art = fig.mamba_artists
    trace = _trace(n, method, chunk_size)
    n_levels = len(trace.levels)
    # axes limits that depend on the length only (not on the method, level or chunk size), so that
    # most slider moves leave the axes alone and only the data is repainted
    others = {name: trace if name == method else _trace(n, name, chunk_size) for name in SCAN_METHODS}
    size = max(t.size for t in others.values())
    most_levels = max(len(t.levels) for t in others.values())
    step = n_levels if step is None else int(np.clip(step, 0, n_levels))
    fig.mamba_state = {"trace": trace, "step": step}

    # (a) the schedule
    rows, slots = np.meshgrid(np.arange(n_levels + 1), np.arange(trace.size), indexing="ij")
    art["nodes"].set_offsets(np.column_stack([slots.ravel(), rows.ravel()]))
    node_colors = np.where((rows <= step) & (slots < n), "k", "0.8").ravel()
    art["nodes"].set_facecolor(node_colors)
    art["nodes"].set_edgecolor(node_colors)
    comb, comb_lv, copy, copy_lv = schedule_segments(trace)
    art["combines"].set_segments(comb)
    art["combines"].set_color(_level_colors(comb_lv, step))
    art["copies"].set_segments(copy)
    art["copies"].set_color(_level_colors(copy_lv, step))
    ax = art["nodes"].axes
    ax.set_xlim(-0.7, size - 0.3)
    ax.set_ylim(most_levels + 0.6, -0.6)
    phase = trace.levels[step - 1].phase if step else "the inputs"
    ax.set_title(f"(a) {method}, l = {n}: level {step}/{n_levels}, {phase}", fontsize=10)

    # (b) coverage, against the goal (inclusive: steps 0 … i; Blelloch's exclusive: 0 … i − 1)
    art["coverage"].set_segments(coverage_segments(trace, step))
    goal = [((-0.4, i), ((i - 1 if trace.exclusive else i) + 0.4, i)) for i in range(trace.size)]
    art["goal"].set_segments(goal)
    ax = art["coverage"].axes
    ax.set_xlim(-0.7, size - 0.3)
    ax.set_ylim(size - 0.4, -0.6)

    # (c) work vs depth of every method at this length, and the current method's progress
    points = []
    for name, label in zip(SCAN_METHODS, art["labels"]):
        t = others[name]
        points.append((t.depth, t.work))
        label.set_position((t.depth, t.work))
        label.set_fontweight("bold" if name == method else "normal")
    art["methods"].set_offsets(points)
    depth_so_far, work_so_far = progress(trace, step)
    art["progress"].set_data([depth_so_far], [work_so_far])
    art["summary"].set_text(f"{method}: work {work_so_far}/{trace.work}, depth {depth_so_far}/{trace.depth}\n"
                            f"sequential: work {n - 1}, depth {n - 1}")
    ax = art["methods"].axes
    ax.set_xlim(-0.5, sticky_limit(ax.get_xlim()[1], max(p[0] for p in points) * 1.25 + 1))
    ax.set_ylim(-0.5, sticky_limit(ax.get_ylim()[1], max(p[1] for p in points) * 1.3 + 1))
    return fig


def work_depth_figure(lengths=None, chunk_size=None, fig=None):
    """Work and depth of the four methods against the sequence length (log–log).

    Parameters
    ----------
    lengths : array of int, optional
        Sequence lengths (default 2, 4, …, 4096 and the lengths in between on a log grid).
    chunk_size : int, optional
        For ``"chunked"`` (default ⌊√l⌋ at each length, which minimises its depth).
    fig : matplotlib Figure, optional

    Returns
    -------
    Figure with ``fig.mamba_artists`` = {"work": {method: Line2D}, "depth": {method: Line2D}}.
    """
    lengths = np.unique(np.geomspace(2, 4096, 40).astype(int)) if lengths is None else np.asarray(lengths)
    fig = new_figure(fig, figsize=(10, 3.4))
    ax_w, ax_d = fig.subplots(1, 2)
    art = fig.mamba_artists
    art["work"], art["depth"] = {}, {}
    for method in SCAN_METHODS:
        traces = [_trace(int(n), method, chunk_size) for n in lengths]
        style = dict(color=METHOD_COLORS[method], label=method, marker=".", ms=4)
        (art["work"][method],) = ax_w.plot(lengths, [t.work for t in traces], **style)
        (art["depth"][method],) = ax_d.plot(lengths, [max(t.depth, 1) for t in traces], **style)
    ax_w.set(xscale="log", yscale="log", xlabel="sequence length l", ylabel="combines", title="work")
    ax_d.set(xscale="log", yscale="log", xlabel="sequence length l", ylabel="levels", title="depth")
    ax_w.legend(fontsize=8)
    return fig


def benchmark_figure(record, label="recorded", fig=None):
    """Kernel timings (µs, log scale) per shape, as written by ``benchmarks/gpu_scan.py``.

    Parameters
    ----------
    record : dict
        ``{"date", "device", "rows": [{"shape": (b, d, l, n), "kernel": str, "us": float,
        "official_us"?: float, "target_us"?: float}, ...]}`` (see
        :func:`mamba_edu.scans.cuda.recorded_benchmark`).
    label : str
        Says where the numbers come from, e.g. ``"recorded"`` or ``"live"``; shown in the title.
    fig : matplotlib Figure, optional

    Returns
    -------
    Figure with ``fig.mamba_artists`` = {"bars": BarContainer (one bar per row, in row order),
    "official": Line2D, "targets": Line2D, "labels": [str]}: the official kernel's and the
    target times as markers on the bars of the rows that have them.
    """
    rows = [r for r in record["rows"] if r.get("us") is not None]
    if not rows:
        raise ValueError("record has no rows with a time 'us' to plot")
    fig = new_figure(fig, figsize=(10, 0.32 * len(rows) + 1.4))
    ax = fig.subplots()
    art = fig.mamba_artists
    labels = [f"{tuple(r['shape'])}  {r['kernel']}" for r in rows]
    y = np.arange(len(rows))
    kernel_names = sorted({r["kernel"] for r in rows})
    colors = [f"C{kernel_names.index(r['kernel']) % 10}" for r in rows]
    art["bars"] = ax.barh(y, [r["us"] for r in rows], color=colors)
    for yi, r in zip(y, rows):  # the value, right of the bar and of its markers
        right = max(r["us"], r.get("official_us") or 0, r.get("target_us") or 0)
        ax.text(right * 1.12, yi, f"{r['us']:.0f} µs", va="center", fontsize=7)
    has = lambda key: [(r[key], yi) for yi, r in zip(y, rows) if r.get(key) is not None]
    off, tgt = has("official_us"), has("target_us")
    (art["official"],) = ax.plot([v for v, _ in off], [yi for _, yi in off], "k|", ms=14, mew=2,
                                 label="official Mamba kernel")
    (art["targets"],) = ax.plot([v for v, _ in tgt], [yi for _, yi in tgt], "D", ms=6, mfc="gold", mec="k",
                                label="target")
    art["labels"] = labels
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time per call (µs, log scale)")
    ax.set_title(f"{label}: {record.get('device', '?')}, {record.get('date', '?')}", fontsize=10)
    if off or tgt:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_xlim(right=max(r["us"] for r in rows) * 4)
    return fig
