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
