"""Lesson 8 explorer and figures, driven in Python: set a control, check the artists' new data.

Expected values come from closed forms written here (chunk boundaries, the cost formulas counted
from the code, the rank bound n checked by SVD), not from the plotting code.
"""

import ipywidgets as W
import numpy as np

import mamba_edu as me
from mamba_edu.plot.ssd import L_RANGE, chunk_grid, example_matrix, offdiagonal_rank, ssd_costs, ssd_figure
from mamba_edu.widgets.ssd import ssd_explorer


def test_costs_match_hand_counts():
    l, Q, p, n = 1000, 64, 8, 16  # Q does not divide l: 16 chunks, the last one padded
    c = 16
    f_seq, m_seq = (float(v) for v in ssd_costs(l, Q, p, n)["sequential"])
    f_quad, m_quad = (float(v) for v in ssd_costs(l, Q, p, n)["quadratic"])
    f_ch, m_ch = (float(v) for v in ssd_costs(l, Q, p, n)["chunked"])
    assert f_seq == 5 * l * p * n and m_seq == p * n
    assert f_quad == l * l * (2 * n + 3 + 2 * p) and m_quad == l * l
    assert f_ch == c * Q * Q * (2 * n + 3 + 2 * p) + 4 * c * Q * p * n + 2 * (c + 1) ** 2 * p * n
    assert m_ch == c * Q * Q + (c + 1) * p * n
    # one chunk of the whole length: the chunked method's blocks are the quadratic method's matrix
    assert float(ssd_costs(256, 256, p, n)["chunked"][1]) == 256 * 256 + 2 * p * n


def test_chunk_grid():
    lines, diagonal = chunk_grid(10, 4)
    assert sorted(lines) == sorted([((3.5, -0.5), (3.5, 9.5)), ((7.5, -0.5), (7.5, 9.5)),
                                    ((-0.5, 3.5), (9.5, 3.5)), ((-0.5, 7.5), (9.5, 7.5))])
    assert diagonal == [(-0.5, -0.5, 4, 4), (3.5, 3.5, 4, 4), (7.5, 7.5, 2, 2)]


def test_offdiagonal_blocks_have_rank_n():
    for n in (1, 3, 5):
        M = example_matrix(48, n, seed=n)
        assert offdiagonal_rank(M, 12) == n
        s = np.linalg.svd(M[24:, :24], compute_uv=False)  # an independent look at one block
        assert s[n] < 1e-10 * s[0] and s[n - 1] > 1e-6 * s[0]


def test_example_matrix_is_ssd_matrix():
    M = example_matrix(20, 3, seed=2)
    rng = np.random.default_rng(2)
    dt = rng.uniform(0.02, 0.3, (1, 20, 1))
    B, C = rng.standard_normal((1, 20, 1, 3)), rng.standard_normal((1, 20, 1, 3))
    x = rng.standard_normal((1, 20, 1, 1))
    y = me.ssd_scan(x, dt, np.array([-1.0]), B, C, method="sequential")
    np.testing.assert_allclose(M @ x[0, :, 0, 0], y[0, :, 0, 0], rtol=1e-10, atol=1e-12)


def test_explorer_moves_update_the_artists():
    ex = ssd_explorer(chunk_size=16, l_cost=4096)
    assert set(ex.controls) == {"chunk_size", "l_cost"}
    assert all(isinstance(w, W.SelectionSlider) for w in ex.controls.values())
    art = ex.fig.mamba_artists
    assert ex.redraws == 1
    assert len(art["grid"].get_segments()) == 2 * 3  # 64 / 16 = 4 chunks: 3 inner boundaries, both ways
    assert sum(p.get_visible() for p in art["blocks"]) == 4

    ex.controls["chunk_size"].value = 8
    assert ex.redraws == 2
    assert len(art["grid"].get_segments()) == 2 * 7
    assert sum(p.get_visible() for p in art["blocks"]) == 8
    want = ssd_costs(L_RANGE, 8, 64, 128)["chunked"]
    np.testing.assert_allclose(art["lines_FLOPs"]["chunked"].get_ydata(), want[0])
    np.testing.assert_allclose(art["lines_floats"]["chunked"].get_ydata(), want[1])
    assert "rank 4" in art["axes"][0].get_title()

    ex.controls["l_cost"].value = 65536
    x, y = art["marker_FLOPs"].get_data()
    assert list(x) == [65536] * 3
    np.testing.assert_allclose(y[0], 5 * 65536 * 64 * 128)  # the sequential method's marker
    assert list(art["vline_floats"].get_xdata()) == [65536, 65536]


def test_static_figure_has_three_panels():
    fig = ssd_figure(example_matrix(32, 2), chunk_size=8, l_cost=1024)
    assert len(fig.axes) == 3
    assert "Q = 8" in fig.axes[0].get_title()


def test_moving_only_l_leaves_panel_a_alone(monkeypatch):
    """Panel (a) depends on Q only: moving l recomputes no rank and makes none of its artists stale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    import mamba_edu.plot.ssd as plot_ssd

    ranks = []
    real_rank = plot_ssd.offdiagonal_rank
    monkeypatch.setattr(plot_ssd, "offdiagonal_rank", lambda M, Q: ranks.append(Q) or real_rank(M, Q))
    fig = ssd_figure(example_matrix(32, 2), chunk_size=8, l_cost=1024)
    assert ranks == [8]
    FigureCanvasAgg(fig).draw()  # clears the stale flag of every visible artist
    plot_ssd.update_ssd_figure(fig, chunk_size=8, l_cost=4096)
    assert ranks == [8]
    ax_m = fig.mamba_artists["axes"][0]
    art = fig.mamba_artists
    panel_a = [art["grid"], ax_m.title, *ax_m.images, *(b for b in art["blocks"] if b.get_visible())]
    assert not [a for a in panel_a if a.stale]
    assert art["marker_FLOPs"].stale and list(art["marker_FLOPs"].get_data()[0]) == [4096] * 3  # l's artists moved
    plot_ssd.update_ssd_figure(fig, chunk_size=4, l_cost=4096)
    assert ranks == [8, 4] and "Q = 4" in ax_m.get_title()
