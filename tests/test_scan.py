"""Lesson 6: every scan method ≡ a float64 sequential loop written here; traces vs closed forms.

References and tolerances
-------------------------
* ``loop``: the recurrence h[t] = a[t]·h[t−1] + b[t] written out in float64/complex128 in this file.
  float64/complex128 results must match it to rtol 1e-10 (atol 1e-12 × the size of the states);
  float32/complex64 torch results to 2e-5 of the size of the states.
* gradients: ``torch.autograd.gradcheck`` (finite differences) in float64 and complex128.
* work/depth: closed forms derived in the docstrings of the trace tests below.
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import mamba_edu as me
from mamba_edu.scans.parallel import SCAN_METHODS, combine, scan, scan_trace

LENGTHS = list(range(1, 34)) + [63, 64, 65, 127, 128, 129, 255, 256, 257, 300]


def loop(a, b, h0=None):
    """The independent reference: h[t] = a[t]·h[t−1] + b[t], in float64 or complex128."""
    a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
    dtype = np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(b) or np.iscomplexobj(h0) else np.float64
    h = np.zeros(a.shape[:-1], dtype) if h0 is None else np.broadcast_to(np.asarray(h0, dtype), a.shape[:-1])
    out = np.zeros(a.shape, dtype)
    for t in range(a.shape[-1]):
        h = a[..., t] * h + b[..., t]
        out[..., t] = h
    return out


def random_steps(rng, shape, complex_=False):
    """Decays with |a| ≤ 1 (as in a stable SSM) and inputs of size ~1."""
    a = rng.uniform(-1.0, 1.0, shape)
    b = rng.normal(size=shape)
    if complex_:
        a = a * np.exp(1j * rng.uniform(0, 2 * np.pi, shape))
        b = b + 1j * rng.normal(size=shape)
    return a, b


def assert_close(h, ref, rtol=1e-10, what=""):
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(h, ref, rtol=rtol, atol=rtol * 1e-2 * scale, err_msg=what)


# ---------------------------------------------------------------------------------------------
# the operator
# ---------------------------------------------------------------------------------------------
finite = st.floats(-3, 3, allow_nan=False)
pairs = st.tuples(finite, finite)
complex_pairs = st.tuples(st.complex_numbers(max_magnitude=3), st.complex_numbers(max_magnitude=3))


@settings(max_examples=200, deadline=None)
@given(pairs, pairs, pairs)
def test_combine_is_associative(p, q, r):
    left = combine(combine(p, q), r)
    right = combine(p, combine(q, r))
    np.testing.assert_allclose(left, right, rtol=1e-12, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(complex_pairs, complex_pairs, complex_pairs)
def test_combine_is_associative_complex(p, q, r):
    np.testing.assert_allclose(combine(combine(p, q), r), combine(p, combine(q, r)), rtol=1e-12, atol=1e-11)


@settings(max_examples=100, deadline=None)
@given(pairs, pairs, finite)
def test_combine_is_the_composition_first_then_second(p, q, h):
    (a1, b1), (a2, b2) = p, q
    a, b = combine(p, q)
    np.testing.assert_allclose(a * h + b, a2 * (a1 * h + b1) + b2, rtol=1e-12, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(pairs)
def test_combine_identity(p):
    assert combine((1.0, 0.0), p) == pytest.approx(p)
    assert combine(p, (1.0, 0.0)) == pytest.approx(p)


def test_combine_is_not_commutative():
    p, q = (0.5, 1.0), (2.0, 3.0)
    assert combine(p, q) == (1.0, 5.0)  # 2·(0.5h + 1) + 3 = h + 5
    assert combine(q, p) == (1.0, 2.5)  # 0.5·(2h + 3) + 1 = h + 2.5


# ---------------------------------------------------------------------------------------------
# every method ≡ the loop
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("method", SCAN_METHODS)
def test_numpy_matches_loop_all_lengths(method, complex_, rng):
    for n in LENGTHS:
        a, b = random_steps(rng, (2, 3, n), complex_)
        h0 = rng.normal(size=(3,)) if n % 2 else None  # half of the lengths start from h0 (broadcast over b)
        h = scan(a, b, method, h0=h0)
        assert isinstance(h, np.ndarray) and h.shape == (2, 3, n)
        assert h.dtype == (np.complex128 if complex_ else np.float64)
        assert_close(h, loop(a, b, h0), what=f"{method}, n={n}")


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 8, 16, 17, 299, 300, 301, 1000])
def test_chunked_any_chunk_size(chunk_size, rng):
    for n in [1, 2, 16, 17, 100, 300]:
        a, b = random_steps(rng, (4, n), complex_=True)
        h0 = rng.normal(size=(4,)) + 1j * rng.normal(size=(4,))
        assert_close(scan(a, b, "chunked", h0=h0, chunk_size=chunk_size), loop(a, b, h0), what=f"n={n}")


@pytest.mark.parametrize("method", SCAN_METHODS)
def test_broadcasting_and_h0_shapes(method, rng):
    n = 37
    a = rng.uniform(0.5, 1.0, (3, n))  # one decay per channel, shared over the batch
    b = rng.normal(size=(2, 3, n))
    for h0 in [None, 0.7, rng.normal(size=(3,)), rng.normal(size=(2, 3)), rng.normal(size=(2, 1))]:
        h = scan(a, b, method, h0=h0)
        assert h.shape == (2, 3, n)
        assert_close(h, loop(a, b, h0))
    assert_close(scan(0.9, b, method), loop(np.full(b.shape, 0.9), b))  # a number for a


@pytest.mark.parametrize("method", SCAN_METHODS)
def test_numpy_dtypes(method):
    a32, b32 = np.full(5, 0.5, np.float32), np.ones(5, np.float32)
    assert scan(a32, b32, method).dtype == np.float64
    assert scan([0.5] * 5, [1] * 5, method).dtype == np.float64
    h = scan(a32, b32, method, h0=1j)  # a complex initial state makes the states complex
    assert h.dtype == np.complex128
    assert_close(h, loop(a32.astype(float), b32.astype(float), 1j))


@pytest.mark.parametrize("method", SCAN_METHODS)
def test_empty_sequence(method):
    h = scan(np.ones((2, 0)), np.ones((2, 0)), method)
    assert h.shape == (2, 0)


def test_top_level_name_is_this_function():
    assert me.scan is scan


# ---------------------------------------------------------------------------------------------
# torch in → torch out
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.complex64, torch.complex128])
@pytest.mark.parametrize("method", SCAN_METHODS)
def test_torch_matches_loop(method, dtype, rng):
    complex_ = dtype.is_complex
    for n in [1, 2, 7, 64, 100, 300]:
        a, b = random_steps(rng, (2, 3, n), complex_)
        h0 = rng.normal(size=(2, 3))
        ta, tb, th0 = (torch.tensor(v, dtype=dtype) for v in (a, b, h0))
        h = scan(ta, tb, method, h0=th0)
        assert isinstance(h, torch.Tensor) and h.dtype == dtype and h.shape == (2, 3, n)
        rtol = 1e-10 if dtype in (torch.float64, torch.complex128) else 2e-5
        ref = loop(*(v.numpy().astype(np.complex128) for v in (ta, tb, th0)))  # rounded inputs, exact math
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(h.numpy(), ref, rtol=rtol, atol=rtol * scale, err_msg=f"{method}, n={n}")


@pytest.mark.parametrize("method", SCAN_METHODS)
def test_torch_python_number_and_broadcast(method):
    b = torch.ones(2, 5, dtype=torch.float64)
    h = scan(0.5, b, method, h0=2.0)
    assert isinstance(h, torch.Tensor) and h.dtype == torch.float64
    np.testing.assert_allclose(h.numpy(), loop(np.full((2, 5), 0.5), np.ones((2, 5)), 2.0), rtol=1e-12)


@pytest.mark.parametrize("method", SCAN_METHODS)
def test_torch_gradients_flow(method, rng):
    """Analytic gradients (through cat/stack/reshape, no in-place writes) vs finite differences."""
    n = 11
    a = torch.tensor(rng.uniform(-1, 1, (2, n)), requires_grad=True)
    b = torch.tensor(rng.normal(size=(2, n)), requires_grad=True)
    h0 = torch.tensor(rng.normal(size=(2,)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, h0: scan(a, b, method, h0=h0), (a, b, h0))
    ac = torch.tensor(random_steps(rng, (n,), complex_=True)[0], requires_grad=True)
    bc = torch.tensor(random_steps(rng, (n,), complex_=True)[1], requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: scan(a, b, method), (ac, bc))


def test_torch_gradients_equal_across_methods(rng):
    n = 50
    a0, b0 = rng.uniform(0, 1, (3, n)), rng.normal(size=(3, n))
    w = torch.tensor(rng.normal(size=(3, n)))
    grads = {}
    for method in SCAN_METHODS:
        a, b = torch.tensor(a0, requires_grad=True), torch.tensor(b0, requires_grad=True)
        (scan(a, b, method) * w).sum().backward()
        grads[method] = (a.grad.numpy(), b.grad.numpy())
    # independent: ∂L/∂b[t] = g[t] with g[t] = w[t] + a[t+1]·g[t+1] (the reverse scan), ∂L/∂a[t] = g[t]·h[t−1]
    h, w_np, g = loop(a0, b0), w.numpy(), np.zeros((3, n))
    g[:, -1] = w_np[:, -1]
    for t in range(n - 2, -1, -1):
        g[:, t] = w_np[:, t] + a0[:, t + 1] * g[:, t + 1]
    h_prev = np.concatenate([np.zeros((3, 1)), h[:, :-1]], axis=1)
    for method, (ga, gb) in grads.items():
        np.testing.assert_allclose(gb, g, rtol=1e-10, err_msg=method)
        np.testing.assert_allclose(ga, g * h_prev, rtol=1e-10, atol=1e-12, err_msg=method)


# ---------------------------------------------------------------------------------------------
# traces: the schedules, executed here, and their work and depth against closed forms
# ---------------------------------------------------------------------------------------------
def run_trace(trace, a, b):
    """Execute a trace one operation at a time (scalar Python), returning the states h."""
    A = list(a) + [1.0] * (trace.size - trace.l)
    B = list(b) + [0.0] * (trace.size - trace.l)
    total = None
    for level in trace.levels:
        old_A, old_B = list(A), list(B)
        for dst, left, right in level.combines:
            A[dst], B[dst] = old_A[left] * old_A[right], old_A[right] * old_B[left] + old_B[right]
        for dst, src in level.copies:
            A[dst], B[dst] = old_A[src], old_B[src]
        for dst in level.clears:
            total = old_B[dst]
            A[dst], B[dst] = 1.0, 0.0
    if trace.exclusive:
        return np.array(B[1:trace.l] + [total])
    return np.array(B)


@pytest.mark.parametrize("method", SCAN_METHODS)
def test_trace_executes_to_the_scan(method, rng):
    for n in list(range(1, 40)) + [64, 100]:
        a, b = random_steps(rng, (n,))
        assert_close(run_trace(scan_trace(n, method), a, b), loop(a, b), what=f"n={n}")


def test_trace_chunked_executes_for_any_chunk_size(rng):
    for n in [1, 5, 16, 31]:
        for c in range(1, n + 3):
            a, b = random_steps(rng, (n,))
            trace = scan_trace(n, "chunked", chunk_size=c)
            assert_close(run_trace(trace, a, b), loop(a, b), what=f"n={n}, c={c}")


def test_coverage_is_the_prefix():
    for n in range(1, 70):
        for method in SCAN_METHODS:
            cov = scan_trace(n, method).coverage()
            if method == "blelloch":  # exclusive: slot i holds steps 0 … i−1
                assert cov[:n] == [None] + [(0, i - 1) for i in range(1, n)]
            else:
                assert cov == [(0, i) for i in range(n)], (method, n)


def test_hillis_steele_coverage_per_level():
    """After k levels slot i holds steps max(0, i − 2^k + 1) … i."""
    n = 21
    trace = scan_trace(n, "hillis_steele")
    for k in range(len(trace.levels) + 1):
        assert trace.coverage(k) == [(max(0, i - 2**k + 1), i) for i in range(n)]


def test_work_and_depth_sequential_and_hillis_steele():
    """Sequential: one combine per step after the first, each waiting for the last: W = D = n − 1.

    Hillis–Steele: p = ⌈log₂ n⌉ levels with offsets 2^j, j = 0…p−1; level j combines the n − 2^j slots
    i ≥ 2^j, so W = Σ_j (n − 2^j) = n·p − (2^p − 1) and D = p (for n = 2^p: n·log₂ n − (n − 1)).
    """
    for n in range(1, 301):
        p = math.ceil(math.log2(n))
        seq, hs = scan_trace(n, "sequential"), scan_trace(n, "hillis_steele")
        assert (seq.work, seq.depth) == (n - 1, n - 1)
        assert (hs.work, hs.depth) == (n * p - (2**p - 1), p), n


def test_work_and_depth_blelloch():
    """Blelloch on m = 2^p slots (p = ⌈log₂ n⌉): the up-sweep combines m/2 + m/4 + … + 1 = m − 1 pairs in p
    levels, the down-sweep the same again: W = 2(m − 1), D = 2p — work O(n) instead of O(n log n)."""
    for n in range(1, 301):
        p = math.ceil(math.log2(n))
        bl = scan_trace(n, "blelloch")
        assert (bl.size, bl.work, bl.depth) == (2**p, 2 * (2**p - 1), 2 * p), n


def test_work_and_depth_chunked():
    """Chunks of c (K = ⌈n/c⌉ of them, the last has n − (K−1)c steps).

    pass 1: every chunk scans itself, c − 1 levels, n − K combines;
    pass 2: K − 1 carries, one per level;
    pass 3: one level fixing the n − c − (K − 1) slots after chunk 0 that are not a chunk's last:
    W = (n − K) + (K − 1) + (n − c − K + 1) = 2n − c − K,  D = (c − 1) + (K − 1) + [n − c − K + 1 > 0].
    """
    for n in range(1, 120):
        for c in [None, 1, 2, 3, 4, 7, 10, n, n + 1]:
            cc = min(c or max(1, math.isqrt(n)), n)
            K = math.ceil(n / cc)
            tr = scan_trace(n, "chunked", chunk_size=c)
            assert tr.work == 2 * n - cc - K, (n, c)
            assert tr.depth == (cc - 1) + (K - 1) + (n - cc - K + 1 > 0), (n, c)


def test_default_chunk_minimises_depth_near_sqrt():
    n = 1024
    depths = {c: scan_trace(n, "chunked", chunk_size=c).depth for c in range(1, n + 1)}
    best = min(depths.values())
    assert depths[32] == best == 63  # c + n/c − 1 at c = √n
    assert scan_trace(n, "chunked").depth == best


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
ONES23 = np.ones((2, 3))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(a=np.ones(3), b=np.ones(3), method="cumsum"), "method must be one of"),
        (dict(a=np.ones((2, 3)), b=np.ones((4,))), r"a has shape \(2, 3\) and b has shape \(4,\)"),
        (dict(a=0.5, b=1.0), "scalars: they need a time axis"),
        (dict(a=ONES23, b=ONES23, h0=np.ones(3)), r"h0 has shape \(3,\).*batch shape \(2,\)"),
        (dict(a=ONES23, b=ONES23, h0=ONES23), r"h0 has shape \(2, 3\)"),
        (dict(a=np.array([0.5, np.nan]), b=np.ones(2)), "a contains NaN or inf"),
        (dict(a=np.ones(2), b=np.array([1.0, np.inf])), "b contains NaN or inf"),
        (dict(a=np.ones(2), b=np.ones(2), h0=np.nan), "h0 contains NaN or inf"),
        (dict(a=np.array(["x", "y"]), b=np.ones(2)), "a must be numeric"),
        (dict(a=torch.ones(2), b=torch.ones(2, device="meta")), "a on cpu, b on meta"),
        (dict(a=ONES23, b=ONES23, method="chunked", chunk_size=0), "chunk_size must be a positive"),
        (dict(a=ONES23, b=ONES23, method="chunked", chunk_size=2.5), "chunk_size must be a positive"),
        (dict(a=np.ones(4), b=np.ones(4), method="blelloch", chunk_size=2), "chunk_size applies only"),
    ],
)
def test_bad_input_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scan(**kwargs)


def test_bad_trace_arguments():
    with pytest.raises(ValueError, match="l must be a positive integer, got 0"):
        scan_trace(0)
    with pytest.raises(ValueError, match="method must be one of"):
        scan_trace(8, "fft")
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        scan_trace(8, "chunked", chunk_size=-1)
