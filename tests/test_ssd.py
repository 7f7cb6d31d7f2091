"""me.ssd_scan / me.ssd_matrix (lesson 8) against a float64 loop, transformers' Mamba-2 SSD, the
selective scan (the duality), lesson 3's convolution kernel, and autograd.

Tolerances (max error relative to the output's largest entry): float64 paths 1e-10; float32
paths 1e-5; transformers' pure-PyTorch ``mamba2_chunk_scan`` (it computes in float32) 1e-5.
"""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import mamba_edu as me
from mamba_edu.scans.ssd import METHODS, segsum


# ---------------------------------------------------------------- independent reference
def loop_ssd(x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, h0=None):
    """Plain float64 loops over batch, head and time, written from the equations. Returns (out, state)."""
    x, dt, A, B, C = (np.asarray(a, dtype=np.float64) for a in (x, dt, A, B, C))
    b, l, h, p = x.shape
    g, n = B.shape[2:]
    out = np.zeros((b, l, h, p))
    final = np.zeros((b, h, p, n))
    for bi in range(b):
        for hi in range(h):
            gi = hi // (h // g)
            state = np.zeros((p, n)) if h0 is None else np.array(h0[bi, hi], dtype=np.float64)
            for t in range(l):
                delta = dt[bi, t, hi] + (0.0 if dt_bias is None else dt_bias[hi])
                if dt_softplus:
                    delta = math.log1p(math.exp(delta))
                state = math.exp(delta * A[hi]) * state + delta * np.outer(x[bi, t, hi], B[bi, t, gi])
                y = state @ C[bi, t, gi]
                if D is not None:
                    y = y + (D[hi] if np.ndim(D) == 1 else D[hi]) * x[bi, t, hi]
                if z is not None:
                    zz = z[bi, t, hi]
                    y = y * zz / (1 + np.exp(-zz))
                out[bi, t, hi] = y
            final[bi, hi] = state
    return out, final


def make(b=2, l=13, h=4, p=3, g=2, n=5, seed=0, extras=True):
    rng = np.random.default_rng(seed)
    args = dict(
        x=rng.standard_normal((b, l, h, p)),
        dt=rng.uniform(-3.0, 1.0, (b, l, h)),
        A=-np.exp(rng.uniform(-1.0, 1.0, h)),
        B=rng.standard_normal((b, l, g, n)),
        C=rng.standard_normal((b, l, g, n)),
    )
    if extras:
        args.update(
            D=rng.standard_normal((h, p)),
            z=rng.standard_normal((b, l, h, p)),
            dt_bias=rng.uniform(-1.0, 0.5, h),
            initial_states=rng.standard_normal((b, h, p, n)),
        )
    return args


def rel(got, ref):
    got = got.detach().cpu().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def to_torch(args, dtype=torch.float64, grad=False):
    return {k: torch.tensor(v, dtype=dtype, requires_grad=grad) for k, v in args.items()}


def ref_of(args, softplus=True):
    return loop_ssd(args["x"], args["dt"], args["A"], args["B"], args["C"], args.get("D"), args.get("z"),
                    args.get("dt_bias"), softplus, args.get("initial_states"))


# ---------------------------------------------------------------- against the float64 loop
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("l, Q", [(1, 4), (13, 4), (16, 4), (13, 64), (29, 7)])
@pytest.mark.parametrize("g", [1, 2, 4])
def test_numpy_matches_loop(method, l, Q, g):
    args = make(l=l, g=g)
    out, final = me.ssd_scan(**args, chunk_size=Q, dt_softplus=True, return_final_states=True, method=method)
    ref_out, ref_final = ref_of(args)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == ref_out.shape
    assert rel(out, ref_out) < 1e-10
    assert rel(final, ref_final) < 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_options_one_at_a_time(method):
    """Each optional argument on its own (D of both shapes, z, bias, softplus, states) against the loop."""
    full = make(l=11, h=6, p=2, g=3)
    base = {k: full[k] for k in ("x", "dt", "A", "B", "C")}
    base["dt"] = np.abs(base["dt"]) * 0.3  # Δ ≥ 0 without softplus
    cases = [{}, {"D": full["D"]}, {"D": full["D"][:, 0]}, {"z": full["z"]}, {"initial_states": full["initial_states"]}]
    for extra in cases:
        args = {**base, **extra}
        out = me.ssd_scan(**args, chunk_size=4, method=method)
        ref, _ = loop_ssd(base["x"], base["dt"], base["A"], base["B"], base["C"], extra.get("D"), extra.get("z"),
                          None, False, extra.get("initial_states"))
        assert rel(out, ref) < 1e-10, extra.keys()
    out = me.ssd_scan(**base, chunk_size=4, dt_bias=full["dt_bias"], dt_softplus=True, method=method)
    ref, _ = loop_ssd(base["x"], base["dt"], base["A"], base["B"], base["C"], dt_bias=full["dt_bias"],
                      dt_softplus=True)
    assert rel(out, ref) < 1e-10


@pytest.mark.parametrize("method", METHODS)
def test_torch_float32_and_bf16(method):
    args = make(l=21, g=1)
    ref, ref_final = ref_of(args)
    t = to_torch(args, torch.float32)
    out, final = me.ssd_scan(**t, chunk_size=8, dt_softplus=True, return_final_states=True, method=method)
    assert out.dtype == torch.float32 and final.dtype == torch.float32
    assert rel(out, ref) < 1e-5 and rel(final, ref_final) < 1e-5
    tb = to_torch(args, torch.bfloat16)
    out = me.ssd_scan(**tb, chunk_size=8, dt_softplus=True, method=method)
    assert out.dtype == torch.bfloat16  # computed in float32, returned in x's dtype like the official kernel
    exact, _ = ref_of({k: v.float().numpy() for k, v in tb.items()})
    assert rel(out, exact) < 1e-2  # bf16 has 8 bits of mantissa: the rounding of the output


def test_long_sequence_is_finite_and_exact():
    """l = 3000 with large Δ|A|: Σ ΔA reaches about −10⁴; exp(+Σ ΔA) would overflow, segment sums do not."""
    args = make(b=1, l=3000, h=2, p=2, g=1, n=3, extras=False)
    args["dt"] = np.full((1, 3000, 2), 4.0)
    assert (args["dt"][0, :, 0] * args["A"][0]).sum() < -3000
    ref, _ = ref_of(args, softplus=False)
    for method in METHODS:
        out = me.ssd_scan(**args, chunk_size=256, method=method)
        assert np.isfinite(out).all() and rel(out, ref) < 1e-10, method
    t = to_torch(args, torch.float32)
    out = me.ssd_scan(**t, chunk_size=256)
    assert torch.isfinite(out).all() and rel(out, ref) < 1e-5


@pytest.mark.parametrize("reset", [1e4, 1e6])
def test_chunked_keeps_its_digits_after_a_large_step(reset):
    """One large Δ·A inside a chunk (a reset) then small steps, l = 77 with chunks of 32 (not a multiple).

    The chunked method took its segment sums as differences a_cum[t] − a_cum[s], which lose the small
    sums after the reset: float32 relative errors 4e-4 (Δ·A = −1e4) and 2.5e-2 (−1e6), float64 1e-11 and
    6e-10. Against the float64 loop it is now as close as the quadratic form.
    """
    args = make(b=1, l=77, h=2, p=2, g=1, n=3, extras=False)
    args["dt"] = np.full((1, 77, 2), 0.05)
    args["dt"][0, [3, 40], :] = reset / -args["A"]  # Δ·A = −reset at step 3 (chunk 0) and step 40 (chunk 1)
    ref, _ = ref_of(args, softplus=False)
    out = me.ssd_scan(**args, chunk_size=32)
    assert rel(out, ref) < 1e-13
    for method in METHODS:
        out = me.ssd_scan(**to_torch(args, torch.float32), chunk_size=32, method=method)
        assert rel(out, ref) < 2e-6, method


def test_segsum():
    rng = np.random.default_rng(1)
    a = -rng.uniform(0, 1, (2, 7))
    S = segsum(a)
    for t in range(7):
        for s in range(7):
            want = a[0, s + 1:t + 1].sum() if s <= t else -np.inf
            assert S[0, t, s] == pytest.approx(want, abs=1e-14)
    St = segsum(torch.tensor(a))
    np.testing.assert_allclose(St.numpy(), S, atol=1e-14)


# ---------------------------------------------------------------- an independent implementation
def test_matches_transformers_mamba2():
    """transformers' pure-PyTorch Mamba-2 SSD (the path its Mamba2Mixer takes without the CUDA kernels)."""
    modeling = pytest.importorskip("transformers.models.mamba2.modeling_mamba2")
    fn = modeling.mamba2_chunk_scan
    fn = getattr(fn, "__wrapped__", fn)  # the hub-kernel decorator's fallback is this function itself
    args = make(b=2, l=45, h=6, p=4, g=2, n=8, seed=3)
    t = to_torch(args, torch.float32)
    D = t["D"][:, 0]  # transformers takes D of shape (h,)
    theirs, their_final = fn(t["x"], t["dt"], t["A"], t["B"], t["C"], 16, D=D, dt_bias=t["dt_bias"],
                             initial_states=t["initial_states"], dt_softplus=True, return_final_states=True)
    ours, our_final = me.ssd_scan(t["x"], t["dt"], t["A"], t["B"], t["C"], 16, D=D, dt_bias=t["dt_bias"],
                                  dt_softplus=True, initial_states=t["initial_states"], return_final_states=True)
    assert rel(ours, theirs.double().numpy()) < 1e-5
    assert rel(our_final, their_final.double().numpy()) < 1e-5
    ref, ref_final = loop_ssd(args["x"], args["dt"], args["A"], args["B"], args["C"], args["D"][:, 0], None,
                              args["dt_bias"], True, args["initial_states"])
    assert rel(theirs, ref) < 1e-5 and rel(their_final, ref_final) < 1e-5  # both agree with the loop too


# ---------------------------------------------------------------- the duality
def test_ssd_equals_selective_scan_with_scalar_A_per_head():
    """Mamba-2 is Mamba-1's selective scan with A (d, n) constant over each head's p channels and n states."""
    args = make(b=2, l=17, h=4, p=3, g=2, n=5, seed=4)
    b, l, h, p = args["x"].shape
    n = args["B"].shape[3]
    ours = me.ssd_scan(**{k: v for k, v in args.items() if k != "initial_states"}, chunk_size=5, dt_softplus=True)
    to_bdl = lambda a: a.reshape(b, l, h * p).transpose(0, 2, 1)  # (b, l, h, p) → (b, d = h·p, l)
    theirs = me.selective_scan(
        to_bdl(args["x"]),
        to_bdl(np.repeat(args["dt"][..., None], p, axis=-1)),  # one Δ per head, shared by its p channels
        np.repeat(args["A"], p)[:, None].repeat(n, axis=1),  # (d, n): scalar A per head
        args["B"].transpose(0, 2, 3, 1),  # (b, l, g, n) → (b, g, n, l): group g serves channels of its heads
        args["C"].transpose(0, 2, 3, 1),
        D=args["D"].reshape(h * p),
        z=to_bdl(args["z"]),
        delta_bias=np.repeat(args["dt_bias"], p),
        delta_softplus=True,
    )
    assert rel(ours, theirs.transpose(0, 2, 1).reshape(b, l, h, p)) < 1e-10


# ---------------------------------------------------------------- the matrix
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_matrix_applies_like_the_scan(kind):
    args = make(l=12, g=2, extras=False)
    if kind == "torch":
        args = to_torch(args)
    M = me.ssd_matrix(args["dt"], args["A"], args["B"], args["C"], dt_softplus=True)
    y = me.ssd_scan(**args, dt_softplus=True, chunk_size=5)
    M, y, x = (np.asarray(a) for a in (M, y, args["x"]))
    assert M.shape == (2, 4, 12, 12)
    assert rel(np.einsum("bhts,bshp->bthp", M, x), y) < 1e-10
    assert np.all(np.triu(M, 1) == 0)  # causal: a masked "attention" matrix


def test_matrix_of_an_lti_head_is_lesson3_kernel():
    """Constant Δ, B, C: M is Toeplitz, M[t, s] = K[t − s] with lesson 3's kernel K[k] = C·Ā^k·B̄."""
    n, l, delta, A = 4, 9, 0.3, -0.7
    rng = np.random.default_rng(5)
    Bv, Cv = rng.standard_normal(n), rng.standard_normal(n)
    M = me.ssd_matrix(np.full((1, l, 1), delta), np.array([A]), np.broadcast_to(Bv, (1, l, 1, n)),
                      np.broadcast_to(Cv, (1, l, 1, n)))[0, 0]
    K = me.ssm_kernel(np.full(n, np.exp(delta * A)), delta * Bv, Cv, l)
    toeplitz = np.array([[K[t - s] if s <= t else 0.0 for s in range(l)] for t in range(l)])
    np.testing.assert_allclose(M, toeplitz, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------- gradients
def test_gradients_chunked_equal_sequential():
    args = make(l=11, h=4, p=2, g=2, n=3, seed=6)
    grads = {}
    for method in METHODS:
        t = to_torch(args, grad=True)
        out, final = me.ssd_scan(**t, chunk_size=4, dt_softplus=True, return_final_states=True, method=method)
        w = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).reshape(out.shape)
        ((out * w).sum() + (final ** 2).sum()).backward()
        grads[method] = {k: v.grad.clone() for k, v in t.items()}
    for method in ("quadratic", "chunked"):
        for name, gr in grads["sequential"].items():
            assert torch.isfinite(grads[method][name]).all(), (method, name)
            assert rel(grads[method][name], gr.numpy()) < 1e-10, (method, name)


def test_gradcheck_chunked():
    args = make(b=1, l=6, h=2, p=2, g=1, n=2, seed=7)
    t = to_torch(args, grad=True)
    names = list(t)

    def f(*tensors):
        return me.ssd_scan(**dict(zip(names, tensors)), chunk_size=4, dt_softplus=True)

    assert torch.autograd.gradcheck(f, tuple(t.values()))


# ---------------------------------------------------------------- errors
def test_list_inputs_and_defaults():
    args = make(l=5, extras=False)
    with pytest.warns(RuntimeWarning, match="negative entries"):  # make()'s raw dt has negative entries
        out = me.ssd_scan(*(args[k].tolist() for k in ("x", "dt", "A", "B", "C")))
    assert rel(out, ref_of(args, softplus=False)[0]) < 1e-10


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(x=np.zeros((2, 13, 4))), r"x has shape \(2, 13, 4\), expected \(b, l, h, p\)"),
        (dict(dt=np.zeros((2, 13, 3))), r"dt has shape \(2, 13, 3\), expected \(b, l, h\) = \(2, 13, 4\)"),
        (dict(A=np.zeros((4, 5))), r"A has shape \(4, 5\), expected \(h,\) = \(4,\)"),
        (dict(B=np.zeros((2, 13, 3, 5)), C=np.zeros((2, 13, 3, 5))), "g = 3 groups, which does not divide h = 4"),
        (dict(C=np.zeros((2, 13, 2, 6))), r"C has shape \(2, 13, 2, 6\), expected \(b, l, g, n\) = \(2, 13, 2, 5\)"),
        (dict(D=np.zeros(3)), r"D has shape \(3,\), expected \(h,\) = \(4,\) or \(h, p\)"),
        (dict(z=np.zeros((2, 13, 4, 2))), "z has shape"),
        (dict(dt_bias=np.zeros(5)), "dt_bias has shape"),
        (dict(initial_states=np.zeros((2, 4, 3, 4))), r"initial_states has shape .* expected \(b, h, p, n\)"),
        (dict(x=np.zeros((2, 13, 4, 3), dtype=np.int64)), "x has dtype int64, expected a real floating"),
        (dict(A=np.ones(4)), "A must be ≤ 0"),
        (dict(dt=np.full((2, 13, 4), np.nan)), "dt contains NaN"),
        (dict(chunk_size=0), "chunk_size must be a positive integer, got 0"),
        (dict(method="fast"), "method must be one of"),
        (dict(x=torch.zeros(2, 13, 4, 3)), "is a numpy array but x is a torch array"),
        (dict(D=torch.zeros(4, 3)), "D is a torch array but x is a numpy array"),  # never dropped silently
        (dict(A=torch.full((4,), -1.0)), "A is a torch array but x is a numpy array"),
    ],
)
def test_clear_errors(change, match):
    args = {**make(), **change}
    with pytest.raises(ValueError, match=match):
        me.ssd_scan(**args)


def test_matrix_errors():
    args = make(extras=False)
    with pytest.raises(ValueError, match="B is a torch array but dt is a numpy array"):
        me.ssd_matrix(args["dt"], args["A"], torch.from_numpy(args["B"]), args["C"])
    with pytest.warns(RuntimeWarning, match="negative entries"):
        me.ssd_matrix(-np.abs(args["dt"]) - 0.1, args["A"], args["B"], args["C"])


def test_no_warning_for_inputs_that_require_grad():
    """The check of Δ took float() of a tensor that requires grad: torch warned "Converting a tensor with
    requires_grad=True to a scalar may lead to unexpected behavior" (once per process: hence a fresh one)."""
    code = (
        "import warnings, torch, mamba_edu as me\n"
        "warnings.simplefilter('error')\n"
        "dt = torch.rand(1, 5, 2, requires_grad=True)\n"
        "args = (torch.randn(1, 5, 2, 3), dt, -torch.rand(2), torch.randn(1, 5, 1, 4), torch.randn(1, 5, 1, 4))\n"
        "me.ssd_scan(*args, 4).sum().backward()\n"
        "me.ssd_matrix(*args[1:]).sum().backward()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_negative_delta_warns_with_its_cause():
    args = make(extras=False)
    with pytest.warns(RuntimeWarning, match=r"negative entries \(min -0.5\).*dt_softplus=True"):
        me.ssd_scan(**{**args, "dt": np.full((2, 13, 4), -0.5)})
    with pytest.raises(ValueError, match="dt has shape"):
        me.ssd_matrix(args["dt"][0], args["A"], args["B"], args["C"])
    with pytest.raises(ValueError, match="B has shape"):
        me.ssd_matrix(args["dt"], args["A"], args["B"][0], args["C"])


# ---------------------------------------------------------------- the CUDA kernels' algorithm, on the CPU
def tf32_round(a):
    """Round to TF32 (10-bit mantissa, to nearest, ties away from zero) like the kernels' __float_to_tf32."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(0x1000)) & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)


def tf32_truncate(a):
    """A float32 operand as the tensor cores read it when it is used as copied: its top 19 bits (TF32, truncated)."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32)
    return (bits & np.uint32(0xFFFFE000)).view(np.float32).astype(np.float64)


def kernels_emulated(x, dt, A, B, C, Q, D=None, z=None, dt_bias=None, dt_softplus=False, h0=None, tile=None,
                     tf32=False):
    """The five kernels of mamba_edu/scans/kernels/ssd_*.cu replayed in float64 numpy, block by block.

    Same layouts (dt_out, cs (b, h, c, Q); CB (b, c, g, Q, Q), only its tiles on and below the diagonal
    written; states (b, c, h, p, n), overwritten in place by the state passing), the same tiles
    (``ssd_cuda.tiles`` or ``tile`` to force smaller ones), padding, masks (steps past l, rows/columns
    past p or n, s ≤ t) and loop bounds (slices up to the diagonal): a check of the decomposition the
    kernels implement, without a GPU. It is a separate numpy program, so it cannot see the kernels' own
    index expressions, thread loops or barriers — only the GPU tests check those.
    ``tf32=True`` also rounds the operands the kernels compute (M, w_s x_s, bmm's C and B) to TF32 and
    truncates those they multiply as copied (the scan's C, S and x, the state's B), as the float32
    kernels do (to size the GPU tests' tolerances); otherwise all is float64. It replays the float32 tiles
    only, not the 16-bit ones (MMA16), whose roundings the GPU tests bound.
    """
    from mamba_edu.scans import ssd_cuda

    b, l, h, p = x.shape
    g, n = B.shape[2:]
    c = -(-l // Q)
    t = tile or ssd_cuda.tiles(p, n, Q)
    r16 = lambda v, m: -(-v // m) * m  # noqa: E731
    r32 = tf32_round if tf32 else (lambda a: a)
    t32 = tf32_truncate if tf32 else (lambda a: a)
    # 1. ssd_chunk_cumsum: one block per (chunk, b·h), thread s = step s
    dt_out = np.zeros((b, h, c, Q))
    cs = np.zeros((b, h, c, Q))
    for bh in range(b * h):
        bi, hi = divmod(bh, h)
        for ci in range(c):
            steps = ci * Q + np.arange(Q)
            valid = steps < l
            d = np.zeros(Q)
            d[valid] = dt[bi, steps[valid], hi] + (dt_bias[hi] if dt_bias is not None else 0.0)
            if dt_softplus:
                d[valid] = np.where(d[valid] <= 20, np.log1p(np.exp(np.minimum(d[valid], 20))), d[valid])
            dt_out[bi, hi, ci] = d
            cs[bi, hi, ci] = np.cumsum(d * A[hi])

    def rows(arr, bi, ci, s0, count, inner, width, gi=None, hi=None):
        """Stage ``count`` steps from s0 of a chunk, columns inner..inner+width, zeros past l or the row end."""
        tile_ = np.zeros((count, width))
        for s in range(count):
            step = ci * Q + s0 + s
            if step < l:
                row = arr[bi, step, gi] if gi is not None else arr[bi, step, hi]
                cols = row[inner:inner + width]
                tile_[s, :len(cols)] = cols
        return tile_

    # 2a. ssd_bmm: blocks (row tile × column tile, chunk, b·g), tiles above the diagonal skipped
    TT = t["scan"]["TT"]
    NK = r16(n, 8)
    CB = np.full((b, c, g, Q, Q), np.nan)  # never-written entries stay NaN: reading one would show
    for bi in range(b):
        for gi in range(g):
            for ci in range(c):
                for blk in range((Q // TT) ** 2):
                    rt, st = divmod(blk, Q // TT)
                    if st > rt:
                        continue
                    sC = r32(rows(C, bi, ci, rt * TT, TT, 0, NK, gi=gi))
                    sB = r32(rows(B, bi, ci, st * TT, TT, 0, NK, gi=gi))
                    CB[bi, ci, gi, rt * TT:(rt + 1) * TT, st * TT:(st + 1) * TT] = sC @ sB.T
    # 2. ssd_chunk_state: blocks (p tile × n tile, chunk, b·h), slices of KS steps
    KS, TP, TN = t["state"]["KS"], t["state"]["TP"], t["state"]["TN"]
    states = np.full((b, c, h, p, n), np.nan)
    tiles_n = -(-n // TN)
    for bh in range(b * h):
        bi, hi = divmod(bh, h)
        gi = hi // (h // g)
        for ci in range(c):
            w = np.exp(cs[bi, hi, ci, Q - 1] - cs[bi, hi, ci]) * dt_out[bi, hi, ci]
            for blk in range(-(-p // TP) * tiles_n):
                p0, n0 = (blk // tiles_n) * TP, (blk % tiles_n) * TN
                acc = np.zeros((TP, TN))
                for s0 in range(0, Q, KS):
                    sX = r32(rows(x, bi, ci, s0, KS, p0, TP, hi=hi) * w[s0:s0 + KS, None])
                    sB = t32(rows(B, bi, ci, s0, KS, n0, TN, gi=gi))
                    acc += sX.T @ sB
                pi, nj = min(TP, p - p0), min(TN, n - n0)
                states[bi, ci, hi, p0:p0 + pi, n0:n0 + nj] = acc[:pi, :nj]
    # 3. ssd_state_passing: in place, states[c] becomes the state entering chunk c
    final = np.zeros((b, h, p, n)) if h0 is None else np.array(h0, dtype=np.float64)
    for ci in range(c):
        chunk_state = states[:, ci].copy()
        states[:, ci] = final
        final = np.exp(cs[:, :, ci, Q - 1])[..., None, None] * final + chunk_state
    # 4. ssd_chunk_scan: blocks (row tile × p tile, chunk, b·h); phase 1 in slices of KN columns of n,
    # phase 2 in slices of KS steps up to the diagonal
    TT, TP, KS2 = t["scan"]["TT"], t["scan"]["TP"], t["scan"]["KS"]
    KN = ssd_cuda.scan_depth_slice(n)
    NKP = r16(NK, KN)
    out = np.full((b, l, h, p), np.nan)
    for bh in range(b * h):
        bi, hi = divmod(bh, h)
        gi = hi // (h // g)
        for ci in range(c):
            for blk in range((Q // TT) * -(-p // TP)):
                rt, p0 = divmod(blk, -(-p // TP))
                p0 *= TP
                t0 = rt * TT
                csT = cs[bi, hi, ci, t0:t0 + TT]
                # phase 1: slices of KN columns of n (zeros past n)
                sC = t32(rows(C, bi, ci, t0, TT, 0, NKP, gi=gi))
                S = np.zeros((TP, NKP))
                S[:min(TP, p - p0), :n] = states[bi, ci, hi, p0:p0 + TP]
                acc = np.zeros((TT, TP))
                for k0 in range(0, NKP, KN):
                    acc += sC[:, k0:k0 + KN] @ t32(S[:, k0:k0 + KN]).T
                acc *= np.exp(csT)[:, None]  # the decay of each row, once phase 1 is done
                # phase 2: slices of KS steps up to the diagonal
                for sb in range((t0 + TT) // KS2):
                    s0 = sb * KS2
                    sX = t32(rows(x, bi, ci, s0, KS2, p0, TP, hi=hi))
                    csS, dtS = cs[bi, hi, ci, s0:s0 + KS2], dt_out[bi, hi, ci, s0:s0 + KS2]
                    causal = (s0 + np.arange(KS2))[None, :] <= (t0 + np.arange(TT))[:, None]
                    cb = CB[bi, ci, gi, t0:t0 + TT, s0:s0 + KS2]
                    M = np.where(causal, cb * np.exp(np.where(causal, csT[:, None] - csS[None, :], -np.inf))
                                 * dtS[None, :], 0.0)
                    acc += r32(M) @ sX
                for r in range(TT):
                    step = ci * Q + t0 + r
                    if step >= l:
                        continue
                    for i in range(min(TP, p - p0)):
                        v = acc[r, i]
                        if D is not None:
                            v += (D[hi, p0 + i] if D.ndim == 2 else D[hi]) * x[bi, step, hi, p0 + i]
                        if z is not None:
                            zz = z[bi, step, hi, p0 + i]
                            v *= zz / (1 + np.exp(-zz))
                        out[bi, step, hi, p0 + i] = v
    return out, final


SMALL_TILES = {"bmm": {"TT": 16}, "state": {"KS": 16, "TP": 16, "TN": 16}, "scan": {"TT": 16, "TP": 16, "KS": 16}}


@pytest.mark.parametrize("l, Q, tile", [(1, 16, None), (63, 64, None), (64, 64, None), (65, 64, None),
                                        (130, 64, SMALL_TILES), (77, 32, SMALL_TILES), (40, 16, None)])
@pytest.mark.parametrize("g", [1, 2])
def test_cuda_kernels_algorithm_matches_loop(l, Q, tile, g):
    """The kernels' decomposition (tiles, masks, partial last chunk, groups, states) equals the float64 loop."""
    args = make(b=2, l=l, h=4, p=20, g=g, n=24, seed=l + Q)  # p, n: padded and split by the small tiles
    out, final = kernels_emulated(**{k: args[k] for k in ("x", "dt", "A", "B", "C", "D", "z", "dt_bias")}, Q=Q,
                                  dt_softplus=True, h0=args["initial_states"], tile=tile)
    ref, ref_final = ref_of(args)
    assert not np.isnan(out).any() and rel(out, ref) < 1e-10
    assert rel(final, ref_final) < 1e-10


def test_cuda_kernels_algorithm_options():
    """D of shape (h,), no z, no bias or softplus, no initial state; several p and n tiles; Q = 256."""
    args = make(b=1, l=300, h=2, p=70, g=1, n=140, seed=5)
    dt = np.abs(args["dt"]) * 0.1
    out, final = kernels_emulated(args["x"], dt, args["A"], args["B"], args["C"], 256, D=args["D"][:, 0])
    ref, ref_final = loop_ssd(args["x"], dt, args["A"], args["B"], args["C"], args["D"][:, 0])
    assert rel(out, ref) < 1e-10 and rel(final, ref_final) < 1e-10


def test_cuda_tiles_and_shared_memory_fit_sm90():
    """Every supported (p, n, Q) gets tiles of 16 x 16 tensor-core fragments whose shared memory fits an H100/H200
    block."""
    from mamba_edu.scans import ssd_cuda
    from mamba_edu.scans.cuda import SMEM_LIMIT

    for Q in ssd_cuda.CHUNK_SIZES:
        for p in range(1, ssd_cuda.MAX_P + 1):
            for n, mma16 in itertools.product(range(1, ssd_cuda.MAX_N + 1), (False, True)):
                t = ssd_cuda.tiles(p, n, Q, mma16)
                assert Q % t["state"]["KS"] == 0 and Q % t["scan"]["TT"] == 0 and t["scan"]["TT"] % t["scan"]["KS"] == 0
                assert all(v % 16 == 0 for v in (*t["state"].values(), *t["scan"].values()))
                assert t["bmm"]["TT"] == t["scan"]["TT"]  # step 4 reads the tiles step 2a wrote
                # the kernels' static_asserts: NWARPS is a multiple of a tile's 16-wide fragment columns
                for cols in (t["state"]["TN"], t["state"]["TP"], t["scan"]["TP"]):
                    assert ssd_cuda.NWARPS % (cols // 16) == 0, (p, n, Q, t)
                for step in ("bmm", "state", "scan"):
                    assert 0 < ssd_cuda.shared_bytes(step, p, n, Q, mma16) <= SMEM_LIMIT


def test_cuda_supports_says_no_without_a_gpu_or_for_other_inputs():
    """supports() never raises and sends CPU tensors, numpy, float64 and odd chunk sizes elsewhere."""
    from mamba_edu.scans import ssd_cuda

    args = to_torch(make(l=8, extras=False), torch.float32)
    assert not ssd_cuda.supports(**args)  # CPU tensors
    assert not ssd_cuda.supports(**make(l=8, extras=False))  # numpy
    assert not ssd_cuda.supports(None, None, None, None, None)
    assert not ssd_cuda.supports(**args, chunk_size=48)
    with pytest.raises(ValueError, match="step"):
        ssd_cuda.kernel_source("nope")


def test_cuda_16bit_tiles_only_for_one_aligned_16bit_dtype():
    """_mma16 (the state and scan kernels' 16-bit tiles) needs x, B, C of one 16-bit dtype, p and n multiples of 8
    and 16-byte aligned data; everything else takes the float32 (TF32) tiles."""
    from mamba_edu.scans import ssd_cuda

    def args(dtype=torch.bfloat16, p=8, n=16, **dtypes):
        t = to_torch(make(b=1, l=8, h=2, p=p, g=1, n=n, extras=False), torch.float32)
        return [t[k].to(dtypes.get(k, dtype)) for k in ("x", "B", "C")]

    assert ssd_cuda._mma16(*args()) and ssd_cuda._mma16(*args(torch.float16))
    assert not ssd_cuda._mma16(*args(torch.float32))
    assert not ssd_cuda._mma16(*args(C=torch.float32)) and not ssd_cuda._mma16(*args(B=torch.float16))
    assert not ssd_cuda._mma16(*args(p=6)) and not ssd_cuda._mma16(*args(n=12))
    x, B, C = args()
    shifted = torch.empty(x.numel() + 1, dtype=x.dtype)[1:].view(x.shape)
    assert not ssd_cuda._mma16(shifted, B, C)


def test_cuda_launch_arguments_match_the_kernel_signatures():
    """The launcher passes each kernel its arguments in the order, kind and names of the .cu signature."""
    import re

    from mamba_edu.scans import ssd_cuda

    b, l, h, p, g, n, Q = 2, 70, 4, 8, 2, 16, 32
    c = -(-l // Q)
    t = to_torch(make(b=b, l=l, h=h, p=p, g=g, n=n), torch.float32)
    f = lambda *s: torch.empty(*s)  # noqa: E731
    named = ssd_cuda._launch_args(t["x"], t["dt"], t["A"], t["B"], t["C"], t["D"], t["z"], t["dt_bias"],
                                  t["initial_states"], f(b, h, c, Q), f(b, h, c, Q), f(b, c, g, Q, Q),
                                  f(b, c, h, p, n), f(b, c, h, p, n), f(b, l, h, p), f(b, h, p, n), True)
    assert list(named) == list(ssd_cuda.STEPS)
    for step, pairs in named.items():
        src = ssd_cuda.kernel_source(step)
        sig = re.search(rf"{ssd_cuda.KERNEL_NAMES[step]}\((.*?)\)\s*{{", src, re.S).group(1)
        params = [re.match(r".*?(\w+)$", q.strip()).group(1) for q in sig.split(",")]
        pointer = ["*" in q for q in sig.split(",")]
        assert [name for name, _ in pairs] == params, step
        for (name, value), is_ptr in zip(pairs, pointer):
            assert (isinstance(value, torch.Tensor) or value is None) == is_ptr, (step, name)
    flags = dict(named["scan"])["flags"]
    assert flags == 1 | 2 | 4 and dict(named["cumsum"])["flags"] == 3 and dict(named["passing"])["pn"] == p * n


def test_tf32_rounding_stays_inside_the_gpu_tests_tolerance():
    """With the kernels' TF32 rounding replayed, the error vs float64 is that of TF32 (not 0) and inside the
    3e-3 that tests/gpu/test_ssd_cuda.py allows for float32 inputs, at its small sizes and the largest p, n."""
    assert tf32_round(np.float32(1 + 2**-11)) == 1 + 2**-10 and tf32_round(np.float32(1 + 2**-12)) == 1.0
    assert tf32_truncate(np.float32(1 + 2**-10 + 2**-11)) == 1 + 2**-10 and tf32_truncate(np.float32(-1.75)) == -1.75
    for shape, Q in [(dict(b=2, l=300, h=4, p=8, g=2, n=16), 64), (dict(b=1, l=150, h=2, p=128, g=1, n=256), 64)]:
        args = make(**shape, seed=3)
        out, final = kernels_emulated(**{k: args[k] for k in ("x", "dt", "A", "B", "C", "D", "z", "dt_bias")}, Q=Q,
                                      dt_softplus=True, h0=args["initial_states"], tf32=True)
        ref, ref_final = ref_of(args)
        assert 1e-5 < rel(out, ref) < 1e-3 and rel(final, ref_final) < 1e-3, (rel(out, ref), rel(final, ref_final))


def test_kernel_sources_paste_our_headers():
    """kernel_source (SSD and v2) hands NVRTC one source: our headers pasted in (also from CRLF, spaced or
    commented #include lines)."""
    import re

    from mamba_edu.scans import cuda, ssd_cuda

    sources = [ssd_cuda.kernel_source(step) for step in ssd_cuda.KERNEL_FILES]
    sources += [cuda.kernel_source(version) for version in cuda.KERNEL_FILES]
    for source in sources:
        assert not re.search(r'^\s*#\s*include\s+"', source, re.M)
    assert "tile_issue" in ssd_cuda.kernel_source("scan") and "to_f" in ssd_cuda.kernel_source("bmm")
    assert all("mma.sync" in ssd_cuda.kernel_source(step) for step in ("bmm", "state", "scan"))  # ssd_mma.cuh
    for source in (ssd_cuda.kernel_source("state"), cuda.kernel_source("v2")):  # cp_async.cuh, shared by both
        assert "cp.async.wait_group" in source
    lines = ('#include "ssd_types.cuh"\r\n  # include "ssd_tiles.cuh" \n'
             '#include "cp_async.cuh"  // note\n#include <mma.h>\n')
    assert cuda._LOCAL_INCLUDE.sub("X", lines) == "X\nX\nX\n#include <mma.h>\n"
