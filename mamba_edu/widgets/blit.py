"""Fast redraws for explorers: repaint only the artists a slider changed (blitting).

A full Agg draw of a multi-panel figure re-renders every tick label, title and legend, which
costs far more than the lines that actually move. :class:`Blitter` keeps a picture of the
figure *without* the moving artists (the background) and, after an update, pastes the
background back and draws only the artists that became stale. It falls back to a full
draw whenever the background may be out of date: on the first draw, when any axes' limits
or position changed (tick labels move), or when an artist outside the remembered set changed.

Which artists moved is read from matplotlib's own ``stale`` flags, so explorers need no
bookkeeping: their update functions just call ``set_data`` and friends. Legends sit on top of
the lines they describe; their text never changes, so their pixels are kept too (legend frames
are made opaque for that) and pasted back over the redrawn lines.

Used by :class:`mamba_edu.widgets.base.Explorer` under ipympl (``%matplotlib widget``).
"""

import struct
import zlib

import numpy as np
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.legend import Legend
from matplotlib.spines import Spine


def _view_key(fig):
    """What the background depends on besides the artists: each axes' limits, ticks, labels, position."""
    return tuple(
        (ax.get_xlim(), ax.get_ylim(), tuple(ax.get_xticks()), tuple(ax.get_yticks()),
         ax.get_xlabel(), ax.get_ylabel(), tuple(np.round(ax.get_position().bounds, 5)))  # layout jitter
        for ax in fig.axes
    )


def stale_artists(fig):
    """The artists of ``fig`` changed since they were last drawn (their ``stale`` flag is set).

    Axis and spine objects are left out: they go stale whenever limits are set, even to the
    same values; :func:`_view_key` tells whether they really changed.
    """
    found = [a for a in fig.get_children() if a.stale and a not in fig.axes and a is not fig.patch]
    for ax in fig.axes:
        found += [a for a in ax.get_children() if a.stale and not isinstance(a, (Axis, Spine)) and a is not ax.patch]
    return found


class Blitter:
    """Redraw ``fig`` after an update by repainting only what changed.

    Call :meth:`redraw` after the update function has set new data. ``full_draws`` and
    ``blits`` count which path was taken (for tests and benchmarks).
    """

    def __init__(self, fig):
        self.fig = fig
        self.background = None
        self.view = None
        self.moving = []  # artists left out of the background, drawn on top at every redraw
        self.legends = []  # (legend, its pixels): pasted over the moving artists
        self.full_draws = 0
        self.blits = 0

    def invalidate(self):
        """Forget the background: the next :meth:`redraw` draws the whole figure."""
        self.background = None

    def redraw(self):
        """Repaint the figure after an update and send it to the browser (ipympl) with ``canvas.blit``."""
        fig, canvas = self.fig, self.fig.canvas
        changed = [a for a in stale_artists(fig) if not isinstance(a, Legend)]
        reusable = (
            self.background is not None
            and _view_key(fig) == self.view
            and set(map(id, changed)) <= set(map(id, self.moving))
        )
        if reusable:
            canvas.restore_region(self.background)
            self._draw_moving()
            for _, pixels in self.legends:
                canvas.restore_region(pixels)
            self.blits += 1
        else:
            self._draw_background(changed)
            self._draw_moving()
            self.legends = []
            for legend in self._legends_over(self.moving):
                fig.draw_artist(legend)
                box = legend.get_window_extent().padded(2)
                self.legends.append((legend, canvas.copy_from_bbox(box)))
            self.full_draws += 1
        # everything on screen is up to date now; a figure left "stale" would make pyplot ask the
        # browser for a full redraw after the next message from it (IPython's post_execute hook)
        for ax in fig.axes:
            ax.stale = False
        fig.stale = False
        canvas.blit(fig.bbox)  # ipympl: send the new pixels (as a diff image) to the browser

    def _draw_moving(self):
        for artist in sorted(self.moving, key=lambda a: a.get_zorder()):
            self.fig.draw_artist(artist)

    @staticmethod
    def _legends_over(artists):
        """The legends of the axes that hold ``artists``, with opaque frames (their pixels are reused)."""
        legends = []
        for ax in {id(a.axes): a.axes for a in artists if getattr(a, "axes", None) is not None}.values():
            legend = ax.get_legend()
            if legend is not None:
                legend.get_frame().set_alpha(1.0)
                legends.append(legend)
        return legends

    def _draw_background(self, changed):
        fig = self.fig
        # what moved before may move again (another slider): keep it out of the background too
        moving = list({id(a): a for a in [*self.moving, *changed]}.values())
        hidden = moving + self._legends_over(moving)
        for artist in hidden:
            artist.set_animated(True)  # left out of the Agg draw below
        try:
            FigureCanvasAgg.draw(fig.canvas)  # plain Agg draw: nothing is sent to the browser yet
            self.background = fig.canvas.copy_from_bbox(fig.bbox)
        finally:
            for artist in hidden:
                artist.set_animated(False)
        self.view = _view_key(fig)
        self.moving = moving


def encode_png(rgba, level=1):
    """PNG bytes of an RGBA image (uint8 array (h, w, 4)): no row filters, fast zlib.

    ipympl sends every frame as a PNG; this one is faster than Pillow even at Pillow's fastest level, at a
    similar size (README, "Measured"; ``benchmarks/png_encoder.py``).
    """
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w, _ = rgba.shape
    rows = np.zeros((h, 1 + 4 * w), dtype=np.uint8)  # each row: filter type 0 ("none"), then its pixels
    rows[:, 1:] = rgba.reshape(h, 4 * w)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8 bits per channel, RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), level))
            + chunk(b"IEND", b""))
