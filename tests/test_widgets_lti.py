"""The lesson-1 explorer, driven in Python: sliders move the artists to the right values."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mamba_edu.plot.lti import lti_figure
from mamba_edu.widgets import lti_explorer


@pytest.fixture
def explorer():
    e = lti_explorer(alpha=-0.3, beta=2.0)
    yield e
    plt.close(e.fig)


def test_slider_moves_update_artists_to_closed_form(explorer):
    art, t = explorer.fig.mamba_artists, explorer.fig.mamba_t
    before = art["impulse"].get_ydata().copy()
    explorer.controls["alpha"].value = -1.0
    explorer.controls["beta"].value = 4.5
    assert explorer.redraws == 3
    np.testing.assert_allclose(art["impulse"].get_ydata(), np.exp(-t) * np.cos(4.5 * t), atol=1e-12)
    np.testing.assert_allclose(art["envelope_upper"].get_ydata(), np.exp(-t))
    np.testing.assert_allclose(art["envelope_lower"].get_ydata(), -np.exp(-t))
    np.testing.assert_allclose(art["eigenvalues"].get_offsets(), [[-1.0, 4.5], [-1.0, -4.5]])
    h1, h2 = art["trajectory"].get_data()
    np.testing.assert_allclose(h2, np.exp(-t) * np.sin(4.5 * t), atol=1e-12)
    assert not np.allclose(before, art["impulse"].get_ydata())


def test_updates_reuse_the_same_figure_and_artists(explorer):
    fig, line = explorer.fig, explorer.fig.mamba_artists["impulse"]
    n_axes, n_lines = len(fig.axes), len(fig.axes[0].lines)
    for value in np.linspace(-2, 0.5, 6):
        explorer.controls["alpha"].value = float(value)
    assert explorer.fig is fig and fig.mamba_artists["impulse"] is line
    assert len(fig.axes) == n_axes and len(fig.axes[0].lines) == n_lines


def test_unstable_pair_is_outside_the_shaded_half_plane_and_grows(explorer):
    explorer.controls["alpha"].value = 0.3
    art = explorer.fig.mamba_artists
    assert (art["eigenvalues"].get_offsets()[:, 0] > 0).all()
    env = art["envelope_upper"].get_ydata()
    assert env[-1] > env[0] and art["impulse"].axes.get_ylim()[1] >= env.max()


def test_static_figure_has_three_panels():
    fig = lti_figure(-0.5, 1.0)
    assert [ax.get_title()[:3] for ax in fig.axes] == ["(a)", "(b)", "(c)"]
