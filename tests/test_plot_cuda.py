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


def test_as_called_text_verdicts_follow_the_ratios():
    from mamba_edu.plot.cuda import as_called_text

    row = dict(shape=[1, 2, 3, 4], official_fwd=100.0, scan_call_fwd=60.0, target_fwd=0.6,
               official_fwd_bwd=1000.0, scan_call_fwd_bwd=950.0, target_fwd_bwd=0.9)
    text = as_called_text(dict(rounds=[[row]], date="2026-01-01"))
    assert "0.60× (≤ 0.6×: met)" in text and "0.95× (≤ 0.9×: missed)" in text
    assert "forward 60 µs vs official 100 µs" in text



def test_as_called_text_says_when_rounds_disagree():
    """A median under the target with single rounds above it is not called "met"."""
    from mamba_edu.plot.cuda import as_called_text

    rounds = [[dict(shape=[1, 2, 3, 4], official_fwd=100.0, scan_call_fwd=ours, target_fwd=1.2)]
              for ours in (130.0, 112.0, 119.0)]
    text = as_called_text(dict(rounds=rounds, date="2026-01-01"))
    assert "1.19× (≤ 1.2×: met in 2 of 3 rounds, rounds 1.12–1.30)" in text
    rounds = [[dict(rounds[0][0], scan_call_fwd=ours)] for ours in (110.0, 112.0, 119.0)]
    assert "(≤ 1.2×: met, rounds" in as_called_text(dict(rounds=rounds, date="2026-01-01"))
