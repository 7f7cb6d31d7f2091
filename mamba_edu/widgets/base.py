"""The one pattern every explorer follows: controls on top, a live figure below.

``Explorer(controls, fig, update)`` calls ``update(fig, **values)`` once and then whenever
a control changes; ``update`` must set new data on the figure's existing artists
(``set_data``/``set_ydata``/``set_offsets``), never rebuild the figure. Under ipympl
(``%matplotlib widget``) the figure's canvas is itself a widget; under any other backend
(Agg in tests, inline) the figure is shown as a PNG in an ``Output`` that is refreshed.

Under ipympl a slider move repaints only the artists that changed, over a saved picture of the
rest (:class:`~mamba_edu.widgets.blit.Blitter`), and pushes that frame to the browser at once;
keeping axes limits fixed while sliders move (``mamba_edu.plot.base.sticky_limit``) lets most
moves take that fast path.
"""

import ipywidgets as W
import matplotlib.pyplot as plt
from matplotlib.layout_engine import ConstrainedLayoutEngine, TightLayoutEngine

from mamba_edu.widgets import _ipympl
from mamba_edu.widgets.blit import Blitter

# Explorer figures are drawn at 84 dpi (11 inches: 924 px, which fits a notebook column): every redraw
# is a PNG whose cost grows with the pixels, and 100 dpi missed the 100 ms redraw target (README,
# "Measured"). Static figures (docs) keep 100 dpi.
LIVE_DPI = 84


def live_figure(figsize=(10, 3.2), dpi=LIVE_DPI):
    """A pyplot figure for an explorer, created without being displayed by pyplot."""
    with plt.ioff():
        fig = plt.figure(figsize=figsize, dpi=dpi, layout="constrained")
    return fig


def freeze_layout(fig):
    """Lay the figure out once, then keep the axes where they are.

    A constrained layout is re-solved at every draw, which costs as much as drawing the
    artists; slider moves only change data, so the layout can be computed once.
    """
    if not isinstance(fig.get_layout_engine(), (ConstrainedLayoutEngine, TightLayoutEngine)):
        return
    fig.draw_without_rendering()  # solve the layout with the first data (without painting an ipympl canvas)
    try:
        fig.set_layout_engine("none")
    except RuntimeError:  # e.g. a colorbar made with an incompatible engine: keep re-solving
        pass


def _is_widget_canvas(fig) -> bool:
    return isinstance(fig.canvas, W.DOMWidget)


class Explorer(W.VBox):
    """Controls (name -> widget) that redraw a figure in place.

    Attributes
    ----------
    controls : dict[str, ipywidgets.Widget]
        The sliders/selectors by name; tests set ``explorer.controls[name].value``.
    fig : matplotlib.figure.Figure
        The live figure; its artists are in ``fig.mamba_artists``.
    redraws : int
        How many times ``update`` ran (1 after construction).
    """

    def __init__(self, controls, fig, update, title=None):
        self.controls = dict(controls)
        self.fig = fig
        self._update = update
        self.redraws = 0
        self._fast = _is_widget_canvas(fig) and _ipympl.supported(fig)  # else: plain draw_idle on every move
        if _is_widget_canvas(fig):
            if self._fast:
                self._blitter = Blitter(fig)
                _ipympl.send_full_frames(fig.canvas)  # whole frames, a faster PNG encoder
                _ipympl.on_first_draw(fig.canvas, fig, self._shown)
            fig.canvas.header_visible = False
            fig.canvas.footer_visible = False
            fig.canvas.toolbar_visible = False
            fig.canvas.resizable = False
            self._view = fig.canvas
        else:
            self._view = W.Output()
        children = [W.HTML(f"<b>{title}</b>")] if title else []
        children += [W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap")), self._view]
        super().__init__(children)
        for widget in self.controls.values():
            widget.observe(self._on_change, names="value")
        self.refresh()
        freeze_layout(fig)

    _on_screen = False

    def _shown(self):
        """The browser drew the canvas (it is on screen): blit from now on, starting from a fresh background."""
        self._on_screen = True
        self._blitter.invalidate()
        # draw once more with the same values (the same picture): this finds the artists that move and keeps
        # the rest as the background, so that the first slider move is fast too
        self.refresh()

    def values(self) -> dict:
        return {name: widget.value for name, widget in self.controls.items()}

    def _on_change(self, change):
        self.refresh()

    def refresh(self):
        """Run ``update`` with the current control values and redraw."""
        with _ipympl.no_redraw_requests(self.fig):
            self._update(self.fig, **self.values())
            self.redraws += 1
            if _is_widget_canvas(self.fig):
                if self._fast and self._on_screen:
                    self._blitter.redraw()  # repaint what changed and push the image: no round trip
                else:
                    self.fig.canvas.draw_idle()  # not shown yet: the browser asks for the first full draw
        if not _is_widget_canvas(self.fig):
            from IPython.display import display

            from mamba_edu.plot.base import show_static

            self._view.clear_output(wait=True)
            with self._view:
                display(show_static(self.fig))
