"""Helpers shared by the figure functions: a fresh Figure, and a static PNG for the docs.

Figure functions follow one pattern (see :mod:`mamba_edu.plot.lti`)::

    fig = lti_figure(alpha, beta)          # builds axes + artists, returns a Figure
    update_lti_figure(fig, alpha, beta)    # sets new data on the same artists

The artists a later update needs are kept in ``fig.mamba_artists`` (a dict), so an
explorer (and a test) can reach them without searching the axes.
"""

import io
import math

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


def nice_ceil(x):
    """The smallest number of the form 1, 2 or 5 × 10^k that is ≥ ``x`` (``x`` > 0)."""
    x = float(x)
    if not x > 0 or not math.isfinite(x):
        raise ValueError(f"x must be a positive finite number, got {x!r}")
    scale = 10.0 ** math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * scale >= x * (1 - 1e-12):
            return m * scale
    return 10.0 * scale


def sticky_limit(current, needed, shrink=0.2):
    """An axis limit that moves only when it must.

    Keep ``current`` while ``needed`` fits under it and fills more than ``shrink`` of it;
    otherwise jump to :func:`nice_ceil` of ``needed``. Explorers use it so that most slider
    moves leave the axes (ticks, labels) as they are: then only the data has to be repainted.
    """
    if current > 0 and shrink * current <= needed <= current:
        return current
    return nice_ceil(needed)


def set_sticky_symmetric_ylim(ax, peak):
    """``ax.set_ylim(-m, m)`` with m = :func:`sticky_limit` of the current limit and ``peak``."""
    m = sticky_limit(ax.get_ylim()[1], peak)
    ax.set_ylim(-m, m)


def set_sticky_xmax(ax, xmax, xmin=0.0):
    """``ax.set_xlim(xmin, m)`` with m = :func:`sticky_limit` of the current right limit and ``xmax``."""
    ax.set_xlim(xmin, sticky_limit(ax.get_xlim()[1], xmax))
