"""Every use of ipympl's and matplotlib's private internals by the explorers, in one guarded place.

The explorers reach into three private corners to redraw fast (lesson 1 explains the explorer pattern):

* ``Figure.stale_callback`` — pyplot's hook that asks the browser for a redraw whenever an artist turns stale;
  muted while an explorer draws itself (:func:`no_redraw_requests`);
* ``canvas.get_diff_image`` with its state ``_png_is_old``, ``_last_buff``, ``_force_full`` — replaced so that
  every frame is a whole picture in a faster PNG encoder (:func:`send_full_frames`);
* ``canvas.handle_draw`` — wrapped to learn when the browser first shows the canvas (:func:`on_first_draw`).

They are used only where :func:`supported` says the installed versions are the tested ones (matplotlib 3.x,
ipympl 0.9.3 – 0.10.x, as pinned in pyproject.toml) and the attributes exist. Anywhere else the explorers fall
back to the public ``canvas.draw_idle()`` for every move: slower, but correct.
"""

import functools
from contextlib import contextmanager
from importlib import metadata

import numpy as np

from mamba_edu.widgets.blit import encode_png

TESTED = {"matplotlib": ((3, 7), (4, 0)), "ipympl": ((0, 9), (0, 11))}  # [lowest, above highest) tested
_CANVAS_INTERNALS = ("get_diff_image", "handle_draw", "_png_is_old", "_last_buff", "_force_full")


def _version(package):
    try:
        return tuple(int(part) for part in metadata.version(package).split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return None


@functools.cache
def tested_versions() -> bool:
    """True when the installed matplotlib and ipympl are versions whose internals this module was tested on."""
    return all((v := _version(pkg)) is not None and low <= v < high for pkg, (low, high) in TESTED.items())


def supported(fig) -> bool:
    """May the explorer use the fast path on ``fig``'s canvas (tested versions, and every internal present)?"""
    canvas = fig.canvas
    return (tested_versions() and hasattr(fig, "stale_callback")
            and all(hasattr(canvas, name) for name in _CANVAS_INTERNALS))


@contextmanager
def no_redraw_requests(fig):
    """Mute pyplot's "figure is stale: ask for a redraw" callback while the explorer draws itself.

    pyplot asks the browser for a redraw whenever an artist turns stale (every set_data, and even layout
    bookkeeping while drawing); an explorer draws once itself and needs none of those. A figure without the
    hook (another matplotlib) is left alone.
    """
    if not hasattr(fig, "stale_callback"):
        yield
        return
    callback, fig.stale_callback = fig.stale_callback, None
    try:
        yield
    finally:
        fig.stale_callback = callback


def full_frame(canvas):
    """Replaces matplotlib's ``FigureCanvasWebAggCore.get_diff_image`` on explorer canvases.

    The whole picture every time, never a "diff" frame (only the changed pixels): ipympl's browser side swaps
    its image source on every frame, so of two frames that arrive close together the first may never be
    painted, and a diff painted over the wrong picture would corrupt it. With :func:`encode_png` a full frame
    costs less than Pillow's encoder needs for one (``benchmarks/png_encoder.py``).
    """
    if not canvas._png_is_old:
        return None
    pixels = np.asarray(canvas.get_renderer().buffer_rgba())
    canvas.set_image_mode("full")
    canvas._last_buff = pixels.view(np.uint32).squeeze(2).copy()  # ipympl reads it without a browser
    canvas._force_full = False
    canvas._png_is_old = False
    return encode_png(pixels)


def send_full_frames(canvas):
    """Make ``canvas`` send whole frames through :func:`full_frame` (only call where :func:`supported`)."""
    canvas.get_diff_image = functools.partial(full_frame, canvas)


def on_first_draw(canvas, fig, callback):
    """Call ``callback()`` after each full draw the browser asks for (it shows the canvas then).

    The browser's own draw runs with :func:`no_redraw_requests`; ``callback`` runs right after it.
    """
    handle_draw = canvas.handle_draw

    def handle_draw_and_note(event):
        with no_redraw_requests(fig):
            handle_draw(event)
        callback()

    canvas.handle_draw = handle_draw_and_note
