"""Lesson 7's as-called benchmark figure, from the recorded H200 run."""

import statistics

from mamba_edu.data import load
from mamba_edu.plot.cuda import PANELS, as_called_figure, as_called_summary


def test_summary_is_the_median_of_the_rounds():
    rec = load("gpu_scan_public_h200")
    summary = as_called_summary(rec)
    assert "H200" in rec["device"] and len(rec["rounds"]) >= 3
    shape = (8, 1536, 2048, 16)
    want = statistics.median(rnd[0]["scan_call_fwd"] for rnd in rec["rounds"])
    assert summary[shape]["scan_call_fwd"] == want
    assert all(v > 0 for cols in summary.values() for v in cols.values())


def test_figure_labels_each_bar_with_its_ratio_to_the_official_kernel():
    rec = load("gpu_scan_public_h200")
    summary = as_called_summary(rec)
    fig = as_called_figure(rec)
    ratios = fig.mamba_artists["ratios"]
    assert len(fig.axes) == len(PANELS)
    title, ref, ours = PANELS[0]
    for shape in summary:
        got = ratios[(title, shape, "scan_call_fwd")]
        assert abs(got - summary[shape]["scan_call_fwd"] / summary[shape][ref]) < 1e-12
