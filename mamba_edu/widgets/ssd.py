"""Lesson 8 explorer: the chunk size Q cuts the semiseparable matrix M into blocks; what each method costs."""

import ipywidgets as W

from mamba_edu.plot.ssd import example_matrix, ssd_figure, update_ssd_figure
from mamba_edu.widgets.base import Explorer, live_figure

CHUNKS = (2, 4, 8, 16, 32, 64, 128, 256)
LENGTHS = tuple(2**k for k in range(8, 17))  # 256 … 65536


def ssd_explorer(chunk_size=16, l_cost=4096, l_matrix=64, n_matrix=4, p=64, n=128, seed=0):
    """Sliders for the chunk size Q and the sequence length l of the cost panels.

    Panels (see :func:`mamba_edu.plot.ssd.ssd_figure`): (a) |M| of one head of length ``l_matrix``
    with the chunk grid — diagonal blocks computed as matrix products, off-diagonal blocks of rank
    ≤ n reached through the states; (b) FLOPs and (c) memory per head of the three methods
    against l, at head dimension ``p`` and state size ``n``.

    Returns
    -------
    Explorer (an ipywidgets VBox) with ``controls`` "chunk_size" and "l_cost".
    """
    controls = {
        "chunk_size": W.SelectionSlider(options=CHUNKS, value=chunk_size, description="chunk Q"),
        "l_cost": W.SelectionSlider(options=LENGTHS, value=l_cost, description="length l"),
    }
    M = example_matrix(l_matrix, n_matrix, seed)
    fig = ssd_figure(M, chunk_size, l_cost, p, n, n_matrix=n_matrix, fig=live_figure(figsize=(11, 3.8)))
    return Explorer(controls, fig, update_ssd_figure, title="Lesson 8: the chunks of the semiseparable matrix")
