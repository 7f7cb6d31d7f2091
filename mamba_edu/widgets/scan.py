"""Lesson 6 explorer: walk level by level through a parallel scan and count its work and depth."""

import ipywidgets as W

from mamba_edu.plot.scan import _trace, scan_figure, update_scan_figure
from mamba_edu.scans.parallel import SCAN_METHODS
from mamba_edu.widgets.base import Explorer, live_figure

# short readouts (a slider's readout is narrow); the figure's title spells the method out
METHOD_LABELS = {"sequential": "loop", "hillis_steele": "H–Steele", "blelloch": "Blelloch", "chunked": "chunked"}


def scan_explorer(n=8, method="hillis_steele", chunk_size=3):
    """Sliders for the sequence length, the method, the chunk size and the level shown.

    Panels (see :func:`mamba_edu.plot.scan.scan_figure`): (a) which slots combine at each level,
    (b) the stretch of steps every slot holds after the current level, (c) work against depth
    for all methods, with the current method's progress so far.

    Returns
    -------
    Explorer (an ipywidgets VBox) with ``controls`` "n", "method", "chunk_size" and "step";
    the step slider's maximum follows the number of levels of the current schedule, and the
    chunk slider is disabled unless the method is "chunked".
    """
    levels = len(_trace(n, method, chunk_size).levels)
    controls = {
        "n": W.IntSlider(value=n, min=2, max=32, description="length l"),
        "method": W.SelectionSlider(options=[(METHOD_LABELS[m], m) for m in SCAN_METHODS], value=method,
                                    description="method"),
        "chunk_size": W.IntSlider(value=chunk_size, min=1, max=16, description="chunk c"),
        "step": W.IntSlider(value=levels, min=0, max=levels, description="level"),
    }

    def follow_levels(change):
        """Keep the step slider's range equal to the current schedule's levels (shown: all of them)."""
        total = len(_trace(controls["n"].value, controls["method"].value, controls["chunk_size"].value).levels)
        step = controls["step"]
        at_end = step.value == step.max
        step.max = total
        if at_end:
            step.value = total

    def enable_chunk(change=None):
        """The chunk size only matters for the chunked scan: the slider is disabled otherwise."""
        controls["chunk_size"].disabled = controls["method"].value != "chunked"

    for name in ("n", "method", "chunk_size"):  # registered before Explorer's own observers, so they run first
        controls[name].observe(follow_levels, names="value")
    controls["method"].observe(enable_chunk, names="value")
    enable_chunk()
    fig = scan_figure(n, method, levels, chunk_size, fig=live_figure(figsize=(11, 3.8)))
    return Explorer(controls, fig, update_scan_figure, title="Lesson 6: the levels of a parallel scan")
