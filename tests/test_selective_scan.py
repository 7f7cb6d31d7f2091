"""selective_scan against an independent float64 loop, scipy's lfilter, mambapy, and autograd.

Tolerances: float64 paths agree with the loop to 1e-10 (relative to the output's scale), float32
paths to 2e-5; mambapy (float32) to 1e-5.
"""

import itertools
import sys
import types

import mambapy.mamba
import numpy as np
import pytest
import scipy.signal
import torch

from mamba_edu import selective_scan
from mamba_edu.scans.checks import check_selective_scan_inputs
from mamba_edu.scans.selective import selective_scan_ref

b, d, l, n = 2, 4, 6, 3


# ---------------------------------------------------------------- independent reference
def loop_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """A float64 / complex128 loop over batch, channel and time, written from the equations.

    B and C are complex (not interleaved) when A is complex. Returns (out, last_state).
    """
    u, delta, A = np.asarray(u, float), np.asarray(delta, float), np.asarray(A)
    B, C = np.asarray(B), np.asarray(C)
    bb, dd, ll = u.shape
    nn = A.shape[1]

    def vector(X, bi, di, t):  # the (n,) vector used by channel di at time t
        if X.ndim == 2:
            return X[di]
        if X.ndim == 3:
            return X[bi, :, t]
        return X[bi, di // (dd // X.shape[1]), :, t]

    out = np.zeros((bb, dd, ll))
    last = np.zeros((bb, dd, nn), dtype=complex)
    for bi in range(bb):
        for di in range(dd):
            h = np.zeros(nn, dtype=complex)
            for t in range(ll):
                dt = delta[bi, di, t] + (0.0 if delta_bias is None else delta_bias[di])
                if delta_softplus:
                    dt = np.log1p(np.exp(dt))
                h = np.exp(dt * A[di]) * h + dt * vector(B, bi, di, t) * u[bi, di, t]
                y = np.sum(vector(C, bi, di, t) * h)
                y = 2 * y.real if np.iscomplexobj(A) else y.real
                if D is not None:
                    y += D[di] * u[bi, di, t]
                if z is not None:
                    y *= z[bi, di, t] / (1 + np.exp(-z[bi, di, t]))
                out[bi, di, t] = y
            last[bi, di] = h
    return out, (last if np.iscomplexobj(A) else last.real)


def make_inputs(rng, layout_B="variable", layout_C="variable", complex_A=False, g=2, size=(b, d, l, n)):
    bb, dd, ll, nn = size
    A = -np.exp(rng.normal(size=(dd, nn)))
    if complex_A:
        A = A + 1j * rng.normal(scale=3.0, size=(dd, nn))

    def vectors(layout):
        shape = {"fixed": (dd, nn), "variable": (bb, nn, ll), "grouped": (bb, g, nn, ll)}[layout]
        X = rng.normal(size=shape)
        return X + 1j * rng.normal(size=shape) if complex_A else X

    return dict(
        u=rng.normal(size=(bb, dd, ll)),
        delta=rng.normal(size=(bb, dd, ll)) * 0.5 + 0.2,  # some negative: fine only with softplus
        A=A,
        B=vectors(layout_B),
        C=vectors(layout_C),
        D=rng.normal(size=dd),
        z=rng.normal(size=(bb, dd, ll)),
        delta_bias=rng.normal(size=dd) * 0.3,
    )


def pick(inputs, use_D, use_z, use_bias):
    args = {k: inputs[k] for k in ("u", "delta", "A", "B", "C")}
    args["D"] = inputs["D"] if use_D else None
    args["z"] = inputs["z"] if use_z else None
    args["delta_bias"] = inputs["delta_bias"] if use_bias else None
    return args


def to_torch(args, dtype=torch.float64):
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return {
        k: None if v is None else torch.tensor(v, dtype=cdtype if np.iscomplexobj(v) else dtype)
        for k, v in args.items()
    }


def assert_close(actual, expected, rtol):
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(actual - expected).max())
    assert err <= rtol * scale, f"max error {err:.3g} > {rtol:g} × scale {scale:.3g}"
    return err


# ---------------------------------------------------------------- every argument combination
LAYOUTS = ["fixed", "variable", "grouped"]
# variable B and C must share g (the official kernel's rule): (variable, grouped) is an error case below
LAYOUT_PAIRS = [p for p in itertools.product(LAYOUTS, LAYOUTS) if set(p) != {"variable", "grouped"}]
COMBOS = list(itertools.product([False, True], repeat=4))  # D, z, delta_bias, softplus


@pytest.mark.parametrize("complex_A", [False, True], ids=["realA", "complexA"])
@pytest.mark.parametrize("layout_B,layout_C", LAYOUT_PAIRS)
def test_matches_float64_loop_all_combinations(rng, complex_A, layout_B, layout_C):
    inputs = make_inputs(rng, layout_B, layout_C, complex_A)
    for use_D, use_z, use_bias, softplus in COMBOS:
        args = pick(inputs, use_D, use_z, use_bias)
        if not softplus:  # Δ must stay positive without softplus
            args["delta"] = np.abs(args["delta"]) + 0.05
            if use_bias:
                args["delta_bias"] = np.abs(args["delta_bias"])
        ref_out, ref_last = loop_scan(**args, delta_softplus=softplus)

        out, last = selective_scan(**args, delta_softplus=softplus, return_last_state=True)  # numpy path
        assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (b, d, l)
        assert last.shape == (b, d, n) and last.dtype == (np.complex128 if complex_A else np.float64)
        assert_close(out, ref_out, 1e-10)
        assert_close(last, ref_last, 1e-10)

        targs = to_torch(args)
        for fn in (selective_scan, selective_scan_ref):
            out_t, last_t = fn(**targs, delta_softplus=softplus, return_last_state=True)
            assert out_t.dtype == torch.float64
            assert_close(out_t.numpy(), ref_out, 1e-10)
            assert_close(last_t.numpy(), ref_last, 1e-10)

        out32 = selective_scan(**to_torch(args, torch.float32), delta_softplus=softplus)
        assert out32.dtype == torch.float32
        assert_close(out32.numpy(), ref_out, 2e-5)


def test_complex_interleaved_layout_equals_complex_layout(rng):
    inputs = make_inputs(rng, "grouped", "grouped", complex_A=True)
    args = pick(inputs, True, True, True)

    def interleave(X):  # complex (..., l) → real (..., 2l) = re, im, re, im, ...
        return np.stack([X.real, X.imag], axis=-1).reshape(*X.shape[:-1], 2 * X.shape[-1])

    inter = dict(args, B=interleave(args["B"]), C=interleave(args["C"]))
    ref_out, ref_last = loop_scan(**args, delta_softplus=True)
    for a in (inter, to_torch(inter)):
        out, last = selective_scan(**a, delta_softplus=True, return_last_state=True)
        assert_close(np.asarray(out), ref_out, 1e-10)
        assert_close(np.asarray(last), ref_last, 1e-10)


def test_lti_special_case_matches_scipy_lfilter(rng):
    """Constant Δ and fixed B, C: each state is the first-order filter h_t = e^{ΔA} h_{t−1} + ΔB u_t."""
    inputs = make_inputs(rng, "fixed", "fixed", size=(1, 3, 50, 4))
    u, A, B, C = inputs["u"], inputs["A"], inputs["B"], inputs["C"]
    delta = np.full_like(u, 0.3)
    out = selective_scan(u, delta, A, B, C)
    expected = np.zeros_like(u)
    for di in range(3):
        for k in range(4):
            h = scipy.signal.lfilter([0.3 * B[di, k]], [1.0, -np.exp(0.3 * A[di, k])], u[0, di])
            expected[0, di] += C[di, k] * h
    assert_close(out, expected, 1e-12)


def test_long_sequence_is_numerically_safe(rng):
    """cumsum(ΔA) reaches −4·10⁴ here: a scan that forms exp(−cumsum) would overflow to inf."""
    ll = 4000
    u = rng.normal(size=(1, 2, ll))
    delta = np.full((1, 2, ll), 1.0)
    A = np.array([[-10.0, -0.5], [-3.0, -0.01]])
    B, C = rng.normal(size=(1, 2, ll)), rng.normal(size=(1, 2, ll))
    out = selective_scan(u, delta, A, B, C)
    assert np.all(np.isfinite(out))
    assert_close(out, loop_scan(u, delta, A, B, C)[0], 1e-10)


def test_state_is_per_channel_not_collapsed(rng):
    """Two channels with the same input but different A keep different states (b, d, n)."""
    u = np.ones((1, 2, 5))
    A = np.array([[-0.1, -1.0], [-2.0, -5.0]])
    _, last = selective_scan(u, np.full((1, 2, 5), 0.5), A, np.ones((1, 2, 5)), np.ones((1, 2, 5)),
                             return_last_state=True)
    assert last.shape == (1, 2, 2)
    expected = np.array([[sum(0.5 * np.exp(0.5 * a * k) for k in range(5)) for a in row] for row in A])
    np.testing.assert_allclose(last[0], expected, rtol=1e-12)


# ---------------------------------------------------------------- mambapy
def test_matches_mambapy_selective_scans(rng):
    """mambapy's sequential and parallel (pscan) scans: layout (b, l, d), Δ already softplus'd, D, no z."""
    bb, dd, ll, nn = 2, 8, 16, 4
    block = mambapy.mamba.MambaBlock(mambapy.mamba.MambaConfig(d_model=dd // 2, n_layers=1, d_state=nn))
    g = torch.Generator().manual_seed(0)
    u = torch.randn(bb, dd, ll, generator=g)
    delta = torch.nn.functional.softplus(torch.randn(bb, dd, ll, generator=g))
    A = -torch.rand(dd, nn, generator=g) * 3
    B, C = torch.randn(bb, nn, ll, generator=g), torch.randn(bb, nn, ll, generator=g)
    D = torch.randn(dd, generator=g)
    ours = selective_scan(u, delta, A, B, C, D)
    args = (u.transpose(1, 2), delta.transpose(1, 2), A, B.transpose(1, 2), C.transpose(1, 2), D)
    for theirs in (block.selective_scan_seq(*args), block.selective_scan(*args)):
        err = assert_close(ours.numpy(), theirs.transpose(1, 2).numpy(), 1e-5)
        print(f"max |selective_scan − mambapy| = {err:.2e}")


# ---------------------------------------------------------------- autograd
@pytest.mark.parametrize("complex_A", [False, True], ids=["realA", "complexA"])
@pytest.mark.parametrize("fn", [selective_scan, selective_scan_ref], ids=["dispatch", "ref"])
def test_gradcheck_float64(rng, fn, complex_A):
    inputs = make_inputs(rng, "grouped", "grouped", complex_A, g=2, size=(1, 2, 4, 2))
    args = {k: v.requires_grad_() for k, v in to_torch(pick(inputs, True, True, True)).items()}
    names = list(args)

    def f(*tensors):
        return fn(**dict(zip(names, tensors)), delta_softplus=True)

    assert torch.autograd.gradcheck(f, tuple(args.values()), eps=1e-6, atol=1e-7)


def test_gradcheck_fixed_B_C_without_softplus(rng):
    inputs = make_inputs(rng, "fixed", "fixed", size=(1, 2, 3, 2))
    args = to_torch(pick(inputs, True, False, False))
    args["delta"] = args["delta"].abs() + 0.1
    args = {k: v.requires_grad_() for k, v in args.items() if v is not None}
    names = list(args)
    assert torch.autograd.gradcheck(lambda *t: selective_scan(**dict(zip(names, t))), tuple(args.values()))


# ---------------------------------------------------------------- the CPU-kernel hook
def test_dispatches_to_cpu_kernel_and_falls_back(rng, monkeypatch):
    args = to_torch(pick(make_inputs(rng), True, True, True), torch.float32)
    calls = []
    fake = types.ModuleType("mamba_edu.scans.cpu")
    fake.supports = lambda *a: True
    fake.run_unchecked = lambda *a, **k: calls.append(k) or "from the kernel"
    monkeypatch.setitem(sys.modules, "mamba_edu.scans.cpu", fake)
    assert selective_scan(**args, delta_softplus=True) == "from the kernel"
    assert calls == [{"delta_softplus": True, "return_last_state": False}]

    fake.supports = lambda *a: False  # unsupported inputs → readable reference
    expected = selective_scan_ref(**args, delta_softplus=True)
    torch.testing.assert_close(selective_scan(**args, delta_softplus=True), expected, rtol=0, atol=0)

    monkeypatch.setitem(sys.modules, "mamba_edu.scans.cpu", None)  # import fails → reference
    torch.testing.assert_close(selective_scan(**args, delta_softplus=True), expected, rtol=0, atol=0)


def test_complex_A_never_goes_to_cpu_kernel(rng, monkeypatch):
    fake = types.ModuleType("mamba_edu.scans.cpu")
    fake.run_unchecked = lambda *a, **k: pytest.fail("complex A was sent to the real-only kernel")
    monkeypatch.setitem(sys.modules, "mamba_edu.scans.cpu", fake)
    args = to_torch(pick(make_inputs(rng, complex_A=True), False, False, False))
    selective_scan(**args, delta_softplus=True)


# ---------------------------------------------------------------- errors
def _bad_cases():
    rng = np.random.default_rng(1)
    good = pick(make_inputs(rng, g=2), True, True, True)
    cases = [
        ("u", dict(u=good["u"][0]), r"u has shape \(4, 6\)"),
        ("delta", dict(delta=good["delta"][:, :, :5]), r"delta has shape \(2, 4, 5\), expected \(b, d, l\)"),
        ("z", dict(z=good["z"][:1]), r"z has shape \(1, 4, 6\)"),
        ("A", dict(A=good["A"][:3]), r"A has shape \(3, 3\), expected \(d, n\) with d = 4"),
        ("B", dict(B=good["B"][:, :2]), r"B has shape \(2, 2, 6\), expected \(b, n, l\) = \(2, 3, 6\)"),
        ("C", dict(C=np.zeros((2, 3, 3, 6))), r"C has g = 3 groups, which does not divide d = 4"),
        ("C", dict(C=np.zeros((4, 2))), r"C has shape \(4, 2\), expected fixed \(d, n\) = \(4, 3\)"),
        ("B", dict(B=good["B"] + 1j), r"B is complex .* but A is real"),
        ("B", dict(B=np.zeros((2, 2, 3, 6))), r"B has shape \(2, 2, 3, 6\) \(2 group\(s\)\) but C has shape"),
        ("D", dict(D=np.ones(3)), r"D has shape \(3,\), expected \(d,\) = \(4,\)"),
        ("delta_bias", dict(delta_bias=np.ones((4, 1))), r"delta_bias has shape \(4, 1\)"),
        ("u", dict(u=np.where(good["u"] > 1, np.nan, good["u"])), r"u contains NaN or inf"),
        ("A", dict(A=np.full((4, 3), -np.inf)), r"A contains NaN or inf"),
        ("u", dict(u=good["u"].astype(np.int64)), r"u has dtype int64, expected a floating-point dtype"),
        ("z", dict(z=good["z"] + 0j), r"z must be real"),
        ("delta", dict(delta=torch.tensor(good["delta"])), r"delta is a torch array but u is a numpy array"),
    ]
    return cases


BAD = _bad_cases()


@pytest.mark.parametrize("name,change,message", BAD, ids=[f"{c[0]}{i}" for i, c in enumerate(BAD)])
def test_bad_input_raises_value_error_naming_argument(rng, name, change, message):
    args = dict(pick(make_inputs(np.random.default_rng(1), g=2), True, True, True), **change)
    with pytest.raises(ValueError, match=message):
        selective_scan(**args, delta_softplus=True)
    with pytest.raises(ValueError, match=message):
        check_selective_scan_inputs(**args)


def test_torch_dtype_and_missing_argument_errors(rng):
    args = to_torch(pick(make_inputs(rng), True, True, True))
    with pytest.raises(ValueError, match=r"u has dtype torch.int64"):
        selective_scan(**dict(args, u=args["u"].long()))
    with pytest.raises(ValueError, match=r"B is required"):
        selective_scan(**dict(args, B=None))


def test_accepts_lists_and_returns_numpy():
    out = selective_scan([[[1.0, 0.0, 0.0]]], [[[1.0, 1.0, 1.0]]], [[-1.0]], [[1.0]], [[1.0]])
    np.testing.assert_allclose(out, [[[1.0, np.exp(-1), np.exp(-2)]]], rtol=1e-14)


@pytest.mark.parametrize("kind", ["numpy", "torch float32 (CPU kernel)", "torch float64"])
def test_inputs_are_checked_once_per_call(rng, monkeypatch, kind):
    """A public function validates once: neither the CPU kernel nor the reference checks again inside."""
    import mamba_edu.scans.checks as checks
    import mamba_edu.scans.cpu as cpu
    import mamba_edu.scans.selective as selective

    calls = []
    original = checks.check_selective_scan_inputs

    def counting(*a, **k):
        calls.append(1)
        return original(*a, **k)

    for module in (checks, cpu, selective):
        monkeypatch.setattr(module, "check_selective_scan_inputs", counting, raising=False)
    args = pick(make_inputs(rng), True, True, True)
    if kind != "numpy":
        args = to_torch(args, torch.float32 if "32" in kind else torch.float64)
    selective_scan(**args, delta_softplus=True)
    assert len(calls) == 1
