"""Helpers shared by the figure functions: a fresh Figure, and a static PNG for the docs.

Figure functions follow one pattern (see :mod:`mamba_edu.plot.lti`)::

    fig = lti_figure(alpha, beta)          # builds axes + artists, returns a Figure
    update_lti_figure(fig, alpha, beta)    # sets new data on the same artists

The artists a later update needs are kept in ``fig.mamba_artists`` (a dict), so an
explorer (and a test) can reach them without searching the axes.
"""

import io

import matplotlib.figure


def new_figure(fig=None, figsize=(10, 3.2)) -> matplotlib.figure.Figure:
    """Return ``fig`` cleared, or a new pyplot-free Figure (no global state, no display)."""
    if fig is None:
        fig = matplotlib.figure.Figure(figsize=figsize, layout="constrained")
    else:
        fig.clear()
        fig.set_layout_engine("constrained")
    fig.mamba_artists = {}
    return fig


def to_png(fig, dpi=100) -> bytes:
    """Render ``fig`` to PNG bytes, whatever the notebook backend is (the figure keeps its canvas)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi)
    return buf.getvalue()


def show_static(fig, dpi=100):
    """Display ``fig`` as a static PNG image (for the docs site, where no kernel runs)."""
    from IPython.display import Image

    return Image(data=to_png(fig, dpi=dpi), format="png")
