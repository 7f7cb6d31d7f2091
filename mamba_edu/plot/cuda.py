"""Lesson 7's benchmark figure: the GPU scan as users call it, beside the official kernel (recorded run).

:func:`as_called_summary` reduces the recorded H200 run (``mamba_edu.data.load("gpu_scan_public_h200")``,
written by ``benchmarks/gpu_scan.py``) to the median over its rounds per shape and column;
:func:`as_called_figure` draws, per shape, the official kernel, our kernel launch alone and our public call
as it is called (default arguments, input check on), for the fp32 forward, fp32 forward+backward and bf16
forward; :func:`as_called_text` writes the same medians as the sentence the README quotes.
"""

import statistics

import numpy as np
from matplotlib.ticker import NullFormatter

from mamba_edu.plot.base import new_figure

PANELS = (  # (title, official column, [(label, our column), ...])
    ("forward, fp32", "official_fwd", [("our kernel launch alone", "launch_fwd"),
                                       ("me.selective_scan as called", "scan_call_fwd")]),
    ("forward + backward, fp32", "official_fwd_bwd", [("our kernel launches alone", "launch_fwd_bwd"),
                                                      ("me.selective_scan as called", "scan_call_fwd_bwd")]),
    ("forward, bf16 inputs", "official_bf16_fwd", [("me.selective_scan as called", "scan_call_bf16_fwd")]),
)


def as_called_summary(record):
    """``{shape: {column: median µs over the rounds}}`` of a recorded ``gpu_scan.py`` run (shapes as tuples)."""
    rounds = record["rounds"]
    shapes = [tuple(r["shape"]) for r in rounds[0]]
    summary = {}
    for i, shape in enumerate(shapes):
        rows = [rnd[i] for rnd in rounds]
        cols = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        summary[shape] = {k: statistics.median(r[k] for r in rows if k in r) for k in sorted(cols)}
    return summary


def as_called_figure(record, fig=None):
    """Three panels of horizontal bars (µs, one group per shape); each of ours is labelled with its ratio
    to the official kernel in the same run (median of the rounds). Artists: ``fig.mamba_artists["ratios"]``
    maps (panel title, shape, our column) to the ratio printed."""
    summary = as_called_summary(record)
    shapes = list(summary)
    fig = new_figure(fig, figsize=(11, 4.0))
    axes = fig.subplots(1, len(PANELS), sharey=True)
    ratios = {}
    color = lambda col: ("0.35" if col.startswith("official") else "tab:blue" if col.startswith("launch")
                         else "tab:orange")
    handles = {}
    for ax, (title, ref, ours) in zip(axes, PANELS):
        bars = [("official kernel", ref)] + ours
        height = 0.8 / len(bars)
        y = np.arange(len(shapes))
        for j, (label, col) in enumerate(bars):
            values = [summary[s].get(col, np.nan) for s in shapes]
            bar = ax.barh(y + j * height, values, height, color=color(col))
            handles.setdefault(color(col), (bar, "official kernel" if col == ref else label))
            if col == ref:
                continue
            for k, s in enumerate(shapes):
                if col in summary[s] and ref in summary[s]:
                    ratio = summary[s][col] / summary[s][ref]
                    ratios[(title, s, col)] = ratio
                    ax.text(summary[s][col], k + j * height, f" {ratio:.2f}×", va="center", fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("µs (log scale)")
        ax.margins(x=0.25)
    axes[0].set_yticks(np.arange(len(shapes)) + 0.4 - 0.4 / len(PANELS[0][2]))
    axes[0].set_yticklabels([f"(b, d, l, n) =\n{s}" for s in shapes], fontsize=8)
    fig.legend(*zip(*handles.values()), loc="outside lower center", ncol=3, fontsize=8)
    fig.suptitle(f"recorded on {record['device']}, {record['date'][:10]}: median of {len(record['rounds'])} rounds "
                 "(ratio = ours / official, same run)", fontsize=9)
    fig.mamba_artists["ratios"] = ratios
    return fig


def _joined(values, fmt):
    return " / ".join("–" if v is None else format(v, fmt) for v in values)


def _verdict(ratio, rounds, target):
    """"met"/"missed" when every round agrees (or there is one), else how many rounds met the target."""
    if len(rounds) <= 1:
        return "met" if ratio <= target else "missed"
    met = sum(q <= target for q in rounds)
    return "met" if met == len(rounds) else "missed" if met == 0 else f"met in {met} of {len(rounds)} rounds"


def as_called_text(record):
    """The recorded run in one paragraph of text (the README's "Measured" row is this text, checked by a test).

    Medians over the rounds, per shape in the record's order; ratios are ours as called over the official
    kernel in the same run (ratio of the medians, with the range of the single rounds' ratios where a
    target is set); against the targets recorded with the run: "met"/"missed" when every round agrees,
    else "met in k of N rounds".
    """
    summary = as_called_summary(record)
    shapes = list(summary)
    targets = record["rounds"][0]

    def times(key, unit="µs"):
        scale, fmt = (1000, ".2f") if unit == "ms" else (1, ".0f")
        return _joined([None if key not in summary[s] else summary[s][key] / scale for s in shapes], fmt) + f" {unit}"

    def compare(name, ours, ref, key, unit="µs"):
        ratios = [summary[s][ours] / summary[s][ref] if ours in summary[s] and ref in summary[s] else None
                  for s in shapes]
        rounds = [[rnd[i][ours] / rnd[i][ref] for rnd in record["rounds"] if ours in rnd[i] and ref in rnd[i]]
                  for i in range(len(shapes))]
        verdicts = ["–" if row.get(f"target_{key}") is None or q is None
                    else f"≤ {row[f'target_{key}']:g}×: {_verdict(q, r, row[f'target_{key}'])}"
                    + (f", rounds {min(r):.2f}–{max(r):.2f}" if len(r) > 1 else "")
                    for row, q, r in zip(targets, ratios, rounds)]
        return (f"{name} {times(ours, unit)} vs official {times(ref, unit)}, {_joined(ratios, '.2f')}× "
                f"({'; '.join(verdicts)}). ")

    return (
        f"at (b, d, l, n) = {' / '.join(str(s) for s in shapes)}, median of {len(record['rounds'])} rounds: "
        + compare("forward", "scan_call_fwd", "official_fwd", "fwd")
        + compare("Forward+backward", "scan_call_fwd_bwd", "official_fwd_bwd", "fwd_bwd", "ms")
        + compare("bf16 forward", "scan_call_bf16_fwd", "official_bf16_fwd", "bf16_fwd")
        + f"Our launches alone: forward {times('launch_fwd')}, forward+backward {times('launch_fwd_bwd', 'ms')}. "
        f"With check_finite=False: forward {times('cupy_call_fwd_nocheck')}, forward+backward "
        f"{times('cupy_call_fwd_bwd_nocheck', 'ms')}"
    )


def ssd_text(record):
    """Lesson 8's recorded SSD run (``mamba_edu.data.load("ssd_gpu_h200")``) in one paragraph (the README quotes it).

    Which code was measured (the record's ``code``), then per shape and input type: our best chunk size
    and the default chunk size (what a plain ``me.ssd_scan(...)`` call meets), in GPU time and as called,
    over the official Triton kernel in the same run; then the profiler's GPU time per call of the same
    code (the record's ``kernels``), where the record has it.
    """
    verdict = lambda ok: "met" if ok else "missed"
    parts = []
    for s in sorted(record["summary"], key=lambda s: (s["shape"][0] == 1, -s["shape"][1], s["dtype"])):
        parts.append(f"{tuple(s['shape'])} {s['dtype']}: GPU {s['best_gpu_us']:.0f} µs (Q = {s['best_gpu_chunk']}) vs "
                     f"official {s['official_gpu_us']:.0f} µs, {s['gpu_ratio']:.2f}× ({verdict(s['gpu_target_met'])}); "
                     f"as called {s['best_called_us']:.0f} vs {s['official_called_us']:.0f} µs, "
                     f"{s['called_ratio']:.2f}× ({verdict(s['called_target_met'])}); default chunk size: "
                     f"{s['default_gpu_ratio']:.2f}× GPU, {s['default_called_ratio']:.2f}× as called")
    text = (f"{record.get('code', 'our fused CUDA kernels')}. Our fused CUDA kernels (tensor cores: TF32 for fp32, "
            "bf16 for bf16 inputs) through `me.ssd_scan`, beside the official Triton `mamba_chunk_scan_combined` "
            "in the same run (targets: GPU time ≤ 1.5×, as called ≤ 1.0×): " + " · ".join(parts) + ".")
    rows = record.get("kernels", {}).get("rows", [])
    if rows:
        text += (" Profiler, GPU time per call of `me.ssd_scan` (the same code, another process of the same "
                 "session): " + "; ".join(f"{tuple(r['shape'])} {r['dtype']} Q = {r['chunk_size']}: "
                                          f"{r['total_gpu_us']:.0f} µs" for r in rows))
    return text
