"""Lesson 5's explorer (topic ``experiments``): the two tasks' example sequences, redrawn in place."""

import torch

from mamba_edu.experiments.tasks import FIRST_DATA, TRIGGER, induction_heads_batch, selective_copying_batch


def gen(seed):
    return torch.Generator().manual_seed(seed)


def _expected_codes(n_data, n_noise, length, seed):
    """The colour codes of the explorer's images, computed here from the generators."""
    g = gen(seed)
    c_in, _ = selective_copying_batch(4, n_data, n_noise, 8, g)
    i_in, _ = induction_heads_batch(4, length, 16, g)
    copying = torch.where(c_in >= FIRST_DATA, 2 + (c_in - FIRST_DATA) % 10, c_in)  # noise 0, marker 1, data 2+
    induction = (i_in == TRIGGER).long()
    for row in range(4):
        p = (i_in[row, :-1] == TRIGGER).nonzero().item()
        induction[row, p + 1] = 2  # the answer token
    return copying.numpy(), induction.numpy()


def test_explorer_redraws_the_same_images_with_new_sequences():
    import numpy as np

    from mamba_edu.widgets import experiments_explorer

    explorer = experiments_explorer(n_data=4, n_noise=60, length=48, seed=0)
    art = explorer.fig.mamba_artists
    images = (art["copying"], art["induction"])
    copying, induction = _expected_codes(4, 60, 48, 0)
    assert np.array_equal(art["copying"].get_array(), copying)
    assert np.array_equal(art["induction"].get_array(), induction)
    explorer.controls["n_noise"].value = 100
    explorer.controls["length"].value = 64
    explorer.controls["seed"].value = 3
    copying, induction = _expected_codes(4, 100, 64, 3)
    assert (art["copying"], art["induction"]) == images  # same artists, new data
    assert np.array_equal(art["copying"].get_array(), copying) and copying.shape == (4, 108)
    assert np.array_equal(art["induction"].get_array(), induction) and induction.shape == (4, 64)
    assert explorer.redraws == 4


def test_every_data_token_is_drawn_at_the_most_noise():
    """At 500 noise tokens (the slider's end) the strip has 508 tokens; an x-axis stretched to 1000 made a token
    narrower than a pixel and 2 of the 16 data tokens were not drawn at all. Each must show its colour."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from mamba_edu.widgets import experiments_explorer

    explorer = experiments_explorer(n_data=4, n_noise=60, length=48, seed=0)
    explorer.controls["n_noise"].value = 500
    fig, image = explorer.fig, explorer.fig.mamba_artists["copying"]
    FigureCanvasAgg.draw(fig.canvas)
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    codes = np.asarray(image.get_array())
    to_pixels = image.axes.transData.transform
    for row, column in zip(*np.nonzero(codes >= 2)):  # the data tokens
        (x0, y), (x1, _) = to_pixels([(column - 0.5, row), (column + 0.5, row)])
        strip = pixels[int(round(fig.bbox.height - y)), int(np.floor(x0)):int(np.ceil(x1)) + 1]
        coloured = strip.max(axis=1) - strip.min(axis=1) > 60  # not grey (noise) nor black (marker)
        assert coloured.any(), f"data token at row {row}, position {column} is not drawn"
