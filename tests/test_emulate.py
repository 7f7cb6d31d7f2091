"""The numpy emulation of GPU kernel v2 against a float64 loop written here (runs on any CPU).

Tolerance: 1e-12 relative (‖got − ref‖ / ‖ref‖) in float64 — the emulation reorders the sum over
states (per lane, then across lanes), nothing else; 1e-5 when all inputs are float32.
"""

import numpy as np
import pytest

from mamba_edu.scans.emulate import selective_scan_v2_emulated, transpose_reduce


def reference_loop(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Plain float64 loop over time, one channel and one state at a time; returns (out, h)."""
    b, d, l = u.shape
    n = A.shape[1]
    out = np.zeros((b, d, l))
    h_all = np.zeros((b, d, n))
    for bi in range(b):
        for di in range(d):
            h = np.zeros(n)
            for t in range(l):
                dt = delta[bi, di, t] + (0.0 if delta_bias is None else delta_bias[di])
                if delta_softplus:
                    dt = np.log1p(np.exp(dt)) if dt <= 20 else dt
                if B.ndim == 2:
                    Bt = B[di]
                else:
                    Bg = B if B.ndim == 4 else B[:, None]
                    Bt = Bg[bi, di // (d // Bg.shape[1]), :, t]
                if C.ndim == 2:
                    Ct = C[di]
                else:
                    Cg = C if C.ndim == 4 else C[:, None]
                    Ct = Cg[bi, di // (d // Cg.shape[1]), :, t]
                h = np.exp(dt * A[di]) * h + dt * Bt * u[bi, di, t]
                y = Ct @ h + (0.0 if D is None else D[di] * u[bi, di, t])
                if z is not None:
                    y *= z[bi, di, t] / (1 + np.exp(-z[bi, di, t]))
                out[bi, di, t] = y
            h_all[bi, di] = h
    return out, h_all


def make_inputs(rng, b, d, l, n, layout="variable"):
    BC = {
        "variable": lambda: rng.standard_normal((b, n, l)),
        "grouped": lambda: rng.standard_normal((b, 3, n, l)),
        "fixed": lambda: rng.standard_normal((d, n)),
    }[layout]
    return dict(
        u=rng.standard_normal((b, d, l)), delta=rng.uniform(-4.0, 1.0, (b, d, l)),
        A=-np.exp(rng.uniform(-1.0, 1.5, (d, n))), B=BC(), C=BC(), D=rng.standard_normal(d),
        z=rng.standard_normal((b, d, l)), delta_bias=rng.uniform(-1.0, 0.5, d),
    )


def rel_err(got, ref):
    assert np.isfinite(got).all()
    return np.linalg.norm(got - ref) / np.linalg.norm(ref)


@pytest.mark.parametrize("lanes", [4, 8, 16, 32])
def test_transpose_reduce_is_a_sum_over_lanes(lanes, rng):
    p = rng.standard_normal((2, 3, lanes, lanes))
    np.testing.assert_allclose(transpose_reduce(p), p.sum(axis=-2), rtol=1e-13, atol=1e-13)


def test_transpose_reduce_rejects_bad_shapes():
    with pytest.raises(ValueError, match="lanes"):
        transpose_reduce(np.zeros((4, 8)))
    with pytest.raises(ValueError, match="power of 2"):
        transpose_reduce(np.zeros((6, 6)))


@pytest.mark.parametrize(
    "layout, n, l, chunk, lanes",
    [
        ("variable", 16, 300, 128, 16),  # l not a multiple of the tile
        ("variable", 16, 7, 128, 16),  # shorter than one block of lanes
        ("grouped", 5, 65, 16, 4),  # n not a multiple of the lanes: padding states
        ("fixed", 8, 40, 32, 32),  # more lanes than states
        ("variable", 20, 33, 8, 8),  # several states per lane
        ("variable", 16, 1, 16, 16),
    ],
)
def test_emulation_matches_float64_loop(layout, n, l, chunk, lanes, rng):
    x = make_inputs(rng, 2, 6, l, n, layout)
    ref, ref_h = reference_loop(**x, delta_softplus=True)
    out, last = selective_scan_v2_emulated(**x, delta_softplus=True, chunk=chunk, lanes_per_channel=lanes,
                                           return_last_state=True)
    assert out.dtype == np.float64 and out.shape == ref.shape and last.shape == ref_h.shape
    assert rel_err(out, ref) < 1e-12
    assert rel_err(last, ref_h) < 1e-12


def test_options_off_and_float32(rng):
    x = make_inputs(rng, 1, 3, 50, 4)
    x["delta"] = rng.uniform(0.01, 1.0, x["delta"].shape)
    for key in ("D", "z", "delta_bias"):
        x[key] = None
    ref, _ = reference_loop(**x)
    assert rel_err(selective_scan_v2_emulated(**x), ref) < 1e-12
    x32 = {k: None if v is None else v.astype(np.float32) for k, v in x.items()}
    out32 = selective_scan_v2_emulated(**x32)
    assert out32.dtype == np.float32
    assert rel_err(out32.astype(np.float64), ref) < 1e-5


def test_errors(rng):
    x = make_inputs(rng, 1, 2, 10, 4)
    with pytest.raises(ValueError, match="lanes_per_channel"):
        selective_scan_v2_emulated(**x, lanes_per_channel=6)
    with pytest.raises(ValueError, match="chunk"):
        selective_scan_v2_emulated(**x, chunk=20, lanes_per_channel=16)
    with pytest.raises(ValueError, match="B has shape"):
        selective_scan_v2_emulated(**{**x, "B": x["B"][..., :3]})
    with pytest.raises(NotImplementedError, match="real A"):
        selective_scan_v2_emulated(**{**x, "A": x["A"] + 1j})
