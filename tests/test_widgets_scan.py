"""Lesson 6 explorer and figures, driven in Python: set a control, check the artists' new data.

The expected values are computed here from closed forms (Hillis–Steele pairs and coverage,
Blelloch's tree, work/depth formulas), not from the plotting code.
"""

import math

import ipywidgets as W
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from mamba_edu.plot.scan import CURRENT, DONE, LATER, benchmark_figure, scan_figure, work_depth_figure
from mamba_edu.widgets import scan_explorer


def segments(collection):
    return sorted(tuple(map(tuple, np.round(seg, 9))) for seg in collection.get_segments())


def colors_by_level(collection, level_of_segment):
    """Map level -> set of RGBA colours used by the segments of that level."""
    out = {}
    for seg, rgba in zip(collection.get_segments(), collection.get_colors()):
        out.setdefault(level_of_segment(seg), set()).add(tuple(np.round(rgba, 6)))
    return out


def rgba(color):
    return tuple(np.round(to_rgba(color), 6))


def hillis_steele_segments(n):
    """Level k (offset 2^(k−1)): slot i ≥ 2^(k−1) absorbs slot i − 2^(k−1)."""
    segs = []
    for k in range(1, math.ceil(math.log2(n)) + 1):
        off = 2 ** (k - 1)
        segs += [((float(i - off), float(k - 1)), (float(i), float(k))) for i in range(off, n)]
    return sorted(segs)


def test_explorer_has_ordinary_sliders():
    ex = scan_explorer()
    assert set(ex.controls) == {"n", "method", "chunk_size", "step"}
    for name in ("n", "chunk_size", "step"):
        assert isinstance(ex.controls[name], W.IntSlider)
    assert isinstance(ex.controls["method"], W.SelectionSlider)
    assert ex.redraws == 1


def test_length_slider_redraws_the_schedule():
    ex = scan_explorer(n=8, method="hillis_steele")
    art = ex.fig.mamba_artists
    assert segments(art["combines"]) == hillis_steele_segments(8)
    ex.controls["n"].value = 13
    assert segments(art["combines"]) == hillis_steele_segments(13)
    # 13 slots × (⌈log₂ 13⌉ + 1) rows of nodes
    assert len(art["nodes"].get_offsets()) == 13 * 5
    # the step slider follows the number of levels and (it was at the end) shows the finished scan
    assert ex.controls["step"].max == 4 and ex.controls["step"].value == 4
    cov = [tuple(map(tuple, c)) for c in art["coverage"].get_segments()]
    assert cov == [((-0.4, i), (i + 0.4, i)) for i in range(13)]


def test_step_slider_highlights_the_level_and_coverage():
    ex = scan_explorer(n=16, method="hillis_steele")
    art = ex.fig.mamba_artists
    ex.controls["step"].value = 2
    colors = colors_by_level(art["combines"], lambda seg: int(round(seg[1][1])))
    assert colors[1] == {rgba(DONE)} and colors[2] == {rgba(CURRENT)}
    assert colors[3] == colors[4] == {rgba(LATER)}
    # after 2 levels slot i holds steps max(0, i − 3) … i
    cov = [tuple(map(tuple, c)) for c in art["coverage"].get_segments()]
    assert cov == [((max(0, i - 3) - 0.4, i), (i + 0.4, i)) for i in range(16)]
    # progress: work n·k − (2^k − 1) after k levels, depth k
    assert tuple(art["progress"].get_xdata()) == (2,) and tuple(art["progress"].get_ydata()) == (16 * 2 - 3,)
    assert "work 29/49, depth 2/4" in art["summary"].get_text()


def test_method_slider_switches_to_blelloch_tree():
    ex = scan_explorer(n=8, method="hillis_steele")
    art = ex.fig.mamba_artists
    ex.controls["method"].value = "blelloch"
    # up-sweep levels 1..3, clear root at level 4, down-sweep levels 5..7
    up = [((float(j + s // 2 - 1), float(k - 1)), (float(j + s - 1), float(k)))
          for k, s in enumerate([2, 4, 8], start=1) for j in range(0, 8, s)]
    down, copies = [], []
    for k, s in zip([5, 6, 7], [8, 4, 2]):
        for j in range(0, 8, s):
            left, right = j + s // 2 - 1, j + s - 1
            down.append(((float(left), k - 1.0), (float(right), float(k))))  # right ← prefix ∘ left subtree
            down.append(((float(right), k - 1.0), (float(right), float(k))))
            copies.append(((float(right), k - 1.0), (float(left), float(k))))  # left ← prefix
    assert segments(art["combines"]) == sorted(up + down)
    assert segments(art["copies"]) == sorted(copies)
    assert ex.controls["step"].max == 7
    # finished: exclusive scan, slot 0 empty (NaN bar), slot i holds 0 … i − 1
    cov = art["coverage"].get_segments()
    assert np.isnan(cov[0]).all()
    assert [tuple(map(tuple, c)) for c in cov[1:]] == [((-0.4, i), (i - 1 + 0.4, i)) for i in range(1, 8)]
    # work 2(m − 1) = 14, depth 2·log₂ m = 6 for every method point at this n
    offsets = {tuple(p) for p in art["methods"].get_offsets()}
    assert offsets == {(7.0, 7.0), (3.0, 8 * 3 - 7.0), (6.0, 14.0), (5.0, 2 * 8 - 3 - 3.0)}


def test_chunk_slider_changes_the_chunked_schedule():
    ex = scan_explorer(n=12, method="chunked", chunk_size=3)
    art = ex.fig.mamba_artists
    ex.controls["chunk_size"].value = 4
    c, K, n = 4, 3, 12
    # depth (c − 1) + (K − 1) + 1 = 6 levels, work 2n − c − K = 17
    assert ex.controls["step"].max == 6
    assert tuple(art["progress"].get_ydata()) == (2 * n - c - K,)
    pass2 = [((float(k * c - 1), float(c - 1 + k - 1)), (float(k * c + c - 1), float(c - 1 + k))) for k in (1, 2)]
    assert set(pass2) <= set(segments(art["combines"]))
    ex.controls["step"].value = 0  # the inputs: every slot holds just its own step
    assert [tuple(map(tuple, s)) for s in art["coverage"].get_segments()] == [
        ((i - 0.4, i), (i + 0.4, i)) for i in range(n)
    ]
    assert tuple(art["progress"].get_ydata()) == (0,)


def test_update_reuses_artists():
    ex = scan_explorer()
    before = dict(ex.fig.mamba_artists)
    n_axes = len(ex.fig.axes)
    ex.controls["n"].value = 20
    ex.controls["method"].value = "sequential"
    assert all(ex.fig.mamba_artists[k] is v for k, v in before.items())
    assert len(ex.fig.axes) == n_axes


@pytest.mark.parametrize("method", ["sequential", "hillis_steele", "blelloch", "chunked"])
def test_work_depth_figure_matches_closed_forms(method):
    lengths = np.array([2, 3, 8, 100, 1024])
    fig = work_depth_figure(lengths)
    work = fig.mamba_artists["work"][method].get_ydata()
    depth = fig.mamba_artists["depth"][method].get_ydata()
    p = np.ceil(np.log2(lengths)).astype(int)
    c = np.array([math.isqrt(n) for n in lengths])
    K = -(-lengths // c)
    expected = {
        "sequential": (lengths - 1, lengths - 1),
        "hillis_steele": (lengths * p - (2**p - 1), p),
        "blelloch": (2 * (2**p - 1), 2 * p),
        "chunked": (2 * lengths - c - K, (c - 1) + (K - 1) + (lengths - c - K + 1 > 0)),
    }[method]
    np.testing.assert_array_equal(work, expected[0])
    np.testing.assert_array_equal(depth, np.maximum(expected[1], 1))


def test_scan_figure_static_defaults_to_finished_scan():
    fig = scan_figure(5, "sequential")
    assert tuple(fig.mamba_artists["progress"].get_xdata()) == (4,)
    assert [tuple(map(tuple, s)) for s in fig.mamba_artists["coverage"].get_segments()] == [
        ((-0.4, i), (i + 0.4, i)) for i in range(5)
    ]


def test_benchmark_figure_plots_the_rows():
    record = {
        "date": "2026-11-28T22:00:00+00:00",
        "device": "NVIDIA H200",
        "rows": [
            {"shape": [8, 1536, 2048, 16], "kernel": "v2 forward", "us": 250.5, "official_us": 909.0,
             "target_us": 600.0},
            {"shape": [8, 1536, 2048, 16], "kernel": "v0 forward", "us": 4000.0},
            {"shape": [8, 1536, 2048, 16], "kernel": "torch loop reference", "us": 9.9e4},
            {"shape": [1, 1536, 16384, 16], "kernel": "v2 forward", "us": 300.0, "official_us": 1014.0},
            {"shape": [1, 1536, 16384, 16], "kernel": "broken", "us": None},
        ],
    }
    fig = benchmark_figure(record, label="recorded")
    art = fig.mamba_artists
    assert [bar.get_width() for bar in art["bars"]] == [250.5, 4000.0, 9.9e4, 300.0]
    assert list(art["official"].get_xdata()) == [909.0, 1014.0] and list(art["official"].get_ydata()) == [0, 3]
    assert list(art["targets"].get_xdata()) == [600.0]
    title = fig.axes[0].get_title()
    assert "recorded" in title and "NVIDIA H200" in title and "2026-11-28" in title
    assert art["labels"][1] == "(8, 1536, 2048, 16)  v0 forward"
    with pytest.raises(ValueError, match="no rows"):
        benchmark_figure({"rows": []})


def test_chunk_slider_is_enabled_only_for_the_chunked_scan():
    explorer = scan_explorer(n=8, method="hillis_steele", chunk_size=3)
    chunk, method = explorer.controls["chunk_size"], explorer.controls["method"]
    assert chunk.disabled
    method.value = "chunked"
    assert not chunk.disabled
    method.value = "blelloch"
    assert chunk.disabled
    assert not scan_explorer(method="chunked").controls["chunk_size"].disabled
