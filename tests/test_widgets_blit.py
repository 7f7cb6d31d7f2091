"""Blitting repaints only what changed, looks like a full redraw, and never asks the browser for more."""

import io
import subprocess
import sys
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from mamba_edu.plot.base import nice_ceil, sticky_limit
from mamba_edu.plot.lti import lti_figure, update_lti_figure
from mamba_edu.widgets.blit import Blitter, encode_png, stale_artists


def _pixels(fig):
    return np.asarray(fig.canvas.buffer_rgba()).astype(int)


def _differing(got, fig):
    FigureCanvasAgg.draw(fig.canvas)
    return (np.abs(got - _pixels(fig)).max(axis=2) > 40).mean()


def test_blit_matches_a_full_draw_and_is_used_when_limits_stay():
    fig = lti_figure(-0.3, 2.0, fig=plt.figure(figsize=(11, 3.4)))
    FigureCanvasAgg.draw(fig.canvas)  # what the browser does when it first shows the canvas
    blitter = Blitter(fig)
    for beta in [2.5, 3.0, 3.5, 4.0]:  # β changes the lines but not the axes limits
        update_lti_figure(fig, -0.3, beta)
        assert fig.mamba_artists["impulse"] in stale_artists(fig)
        blitter.redraw()
        differing = _differing(_pixels(fig), fig)
        assert differing < 0.002, f"blitted frame differs from a full draw in {differing:.2%} of pixels"
    assert blitter.full_draws == 1 and blitter.blits == 3
    assert not fig.stale, "a figure left stale makes pyplot request another (full) redraw"
    plt.close(fig)


def test_changed_limits_force_a_full_draw():
    fig = lti_figure(-0.3, 2.0, fig=plt.figure(figsize=(11, 3.4)))
    FigureCanvasAgg.draw(fig.canvas)
    blitter = Blitter(fig)
    update_lti_figure(fig, -0.3, 2.5)
    blitter.redraw()
    update_lti_figure(fig, 0.4, 2.5)  # growing envelope: the y-limits change, so do the tick labels
    blitter.redraw()
    assert blitter.full_draws == 2 and blitter.blits == 0
    assert _differing(_pixels(fig), fig) < 0.002
    plt.close(fig)


@pytest.mark.parametrize("x, want", [(1, 1), (1.05, 2), (2, 2), (2.01, 5), (7, 10), (0.031, 0.05), (430, 500)])
def test_nice_ceil(x, want):
    assert nice_ceil(x) == pytest.approx(want)


def test_nice_ceil_rejects_non_positive():
    with pytest.raises(ValueError, match="x must be a positive finite number"):
        nice_ceil(0)


def test_sticky_limit_moves_only_when_it_must():
    assert sticky_limit(5.0, 3.0) == 5.0  # fits and fills 60 %: kept
    assert sticky_limit(5.0, 6.0) == 10.0  # does not fit: next nice number
    assert sticky_limit(5.0, 0.5) == 0.5  # fills only 10 %: shrinks
    assert sticky_limit(0.0, 3.0) == 5.0


def test_encode_png_round_trips():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[5:20] = 0  # long runs of zeros, as in diff frames
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgba))).convert("RGBA"))
    np.testing.assert_array_equal(decoded, rgba)


def test_explorer_under_ipympl_blits_and_sends_no_redraw_request():
    """In a kernel with ``%matplotlib widget``: after the browser's first draw, a slider move is
    one blitted, whole frame pushed to the browser, and nothing asks the browser for another draw
    (a stale figure used to trigger a full redraw after every move)."""
    code = textwrap.dedent("""
        import io, json
        import matplotlib
        matplotlib.use("module://ipympl.backend_nbagg")
        import numpy as np
        from PIL import Image
        from mamba_edu import widgets
        e = widgets.diagonal_explorer()
        c = e.fig.canvas
        sent = []
        c.send_event = lambda kind, **kw: sent.append(kind)
        c.send_binary = lambda data: sent.append(("png", data))
        c.handle_event({"type": "draw"})  # the browser shows the canvas and asks for a full draw
        full = [s for s in sent if isinstance(s, tuple)]
        assert e._on_screen and "draw" not in sent, sent
        sent.clear()
        e.controls["beta"].value += 0.5
        e.controls["alpha"].value -= 0.1
        frames = [s[1] for s in sent if isinstance(s, tuple)]
        assert "draw" not in sent and len(frames) == 2, sent
        assert not e.fig.stale
        last = np.asarray(Image.open(io.BytesIO(frames[-1])))
        print(json.dumps({"blits": e._blitter.blits, "full": e._blitter.full_draws,
                          "changed": float((last[..., 3] == 255).mean()), "mode": c._current_image_mode}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    import json

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["blits"] >= 1, result  # the moves were blitted, not fully redrawn
    # whole frames (a "diff" frame painted over a frame the browser skipped would corrupt the picture)
    assert result["mode"] == "full" and result["changed"] == 1.0, result


def test_untested_ipympl_falls_back_to_draw_idle():
    """Where the installed versions are not the tested ones, explorers touch no internals: draw_idle per move."""
    code = textwrap.dedent("""
        import matplotlib
        matplotlib.use("module://ipympl.backend_nbagg")
        from mamba_edu import widgets
        from mamba_edu.widgets import _ipympl
        _ipympl.tested_versions = lambda: False  # pretend an untested ipympl/matplotlib
        e = widgets.diagonal_explorer()
        c = e.fig.canvas
        assert not e._fast and "get_diff_image" not in vars(c) and "handle_draw" not in vars(c)
        calls = []
        c.draw_idle = lambda: calls.append("draw_idle")
        c.handle_event({"type": "draw"})
        e.controls["beta"].value += 0.5
        assert calls == ["draw_idle"], calls
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_private_upstream_names_appear_only_in_the_guarded_module():
    """ipympl/matplotlib internals are used in mamba_edu/widgets/_ipympl.py and nowhere else."""
    import re
    from pathlib import Path

    names = re.compile(r"_png_is_old|_last_buff|_force_full|get_diff_image|handle_draw|stale_callback")
    package = Path(__file__).resolve().parent.parent / "mamba_edu"
    users = sorted(p.name for p in package.rglob("*.py") if names.search(p.read_text()))
    assert users == ["_ipympl.py"], users


def test_tested_versions_match_the_pins():
    from pathlib import Path

    import tomllib

    from mamba_edu.widgets import _ipympl

    deps = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    pins = {d.split(">=")[0]: d for d in deps["dependencies"]}
    assert pins["matplotlib"] == "matplotlib>=3.7,<4" and pins["ipympl"] == "ipympl>=0.9.3,<0.11"
    assert _ipympl.TESTED == {"matplotlib": ((3, 7), (4, 0)), "ipympl": ((0, 9), (0, 11))}
    assert _ipympl.tested_versions()  # the environment running the tests is a tested one
