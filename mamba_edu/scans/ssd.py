"""Mamba-2's state space duality (SSD): one scan, three ways to compute it.  Explained in lesson 8.

Mamba-2 keeps Mamba's selective SSM but makes A a *scalar* per head. Every one of the h heads
has p channels that share Δ_t, A and the state's decay, and a state of shape (p, n)::

    Δ_t  = softplus(dt_t + dt_bias)                   (bias and softplus optional)
    h_t  = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ           h_t: (p, n) per head,  x_t: (p,),  B_t, C_t: (n,)
    y_t  = h_t C_t + D x_t                             then   out = y · silu(z)

Unrolled, y = M x per head and channel, with the lower-triangular (semiseparable) matrix

    M[t, s] = L[t, s] · (C_t · B_s) · Δ_s,    L[t, s] = exp(Δ_{s+1} A + … + Δ_t A)   (s ≤ t), 0 above,

a *masked attention* matrix: C plays the query, B the key, x the value and L the causal mask
with decay. :func:`ssd_scan` computes the same thing three ways (``method=``):

``"sequential"``  the recurrence, one step at a time (O(l) steps of O(p·n) work);
``"quadratic"``   M as a matrix, y = M x (attention form: O(l²) work and memory);
``"chunked"``     SSD: chunks of Q steps; inside a chunk the quadratic form (matrix
                  products), between chunks the states, passed on by a short scan.

The exponent of L is a *segment sum* Σ_{s<k≤t} Δ_k A ≤ 0 (A < 0, Δ ≥ 0), so exp never
overflows; the code never forms exp(+Σ ΔA) (a product of growing and shrinking factors).

Shapes (the official ``mamba_chunk_scan_combined`` layout: time second, heads third)
---------------------------------------------------------------------------------------
x, z        : (b, l, h, p)   input (``u`` elsewhere in the course) and gate; p = head dimension
dt          : (b, l, h)      one step size per head and token
A           : (h,)           one negative scalar per head
B, C        : (b, l, g, n)   g groups divide h; head i uses group i // (h / g)
D           : (h,) or (h, p)
dt_bias     : (h,)
initial / final states : (b, h, p, n)
out         : (b, l, h, p)

The chunked algorithm is written once against a tiny array namespace (:class:`_Ops`), so the
same lines run on numpy, torch (CPU or CUDA, differentiable) and CuPy (GPU: the intra-chunk
work is batched matrix products, i.e. cuBLAS).
"""

import math
import warnings

import numpy as np

from mamba_edu._backend import backend, one_kind
from mamba_edu.scans.checks import SSD_METHODS as METHODS  # noqa: F401  (public: ssd.METHODS)
from mamba_edu.scans.checks import check_ssd_inputs as _check  # shared with the CUDA kernels (ssd_cuda)


# ---------------------------------------------------------------- the array namespace shim
class _Ops:
    """The dozen array operations the algorithms need, for numpy, CuPy (same API) or torch."""

    def __init__(self, kind):
        self.kind = kind
        if kind == "torch":
            import torch

            self.m = torch
        elif kind == "cupy":
            import cupy

            self.m = cupy
        else:
            self.m = np

    # creation
    def zeros(self, shape, like):
        if self.kind == "torch":
            return self.m.zeros(shape, dtype=like.dtype, device=like.device)
        return self.m.zeros(shape, dtype=like.dtype)

    def tril(self, q, like, k=0):
        """Boolean lower-triangular mask (q, q) with ones where column ≤ row + k."""
        if self.kind == "torch":
            return self.m.ones(q, q, dtype=self.m.bool, device=like.device).tril(k)
        return self.m.tri(q, q, k, dtype=bool)

    # elementwise
    def exp(self, a):
        return self.m.exp(a)

    def where(self, mask, a, b):
        return self.m.where(mask, a, b)  # b may be a Python scalar (no host-to-device copy)

    def softplus(self, a):
        if self.kind == "torch":
            return self.m.nn.functional.softplus(a)
        return self.m.logaddexp(0, a)

    def silu(self, a):
        if self.kind == "torch":
            return self.m.nn.functional.silu(a)
        return a / (1 + self.m.exp(-a))

    # reductions, shapes, products
    def cumsum(self, a, axis):
        if self.kind == "torch":
            return self.m.cumsum(a, dim=axis)
        return self.m.cumsum(a, axis=axis)

    def moveaxis(self, a, src, dst):
        return self.m.moveaxis(a, src, dst)

    def concat(self, arrays, axis):
        if self.kind == "torch":
            return self.m.cat(arrays, dim=axis)
        return self.m.concatenate(arrays, axis=axis)

    def pad_time(self, a, extra):
        """Append ``extra`` zeros along axis 1 (time)."""
        if extra == 0:
            return a
        return self.concat([a, self.zeros((a.shape[0], extra, *a.shape[2:]), a)], axis=1)

    def matmul(self, a, b):
        if self.kind == "numpy":  # numpy runs stacked products through BLAS only on contiguous blocks
            a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
        return self.m.matmul(a, b)

    def einsum(self, spec, *arrays):
        return self.m.einsum(spec, *arrays)

    def astype(self, a, like):
        if self.kind == "torch":
            return a.to(like.dtype)
        return a.astype(like.dtype, copy=False)


_kind = backend  # "torch", "cupy" or "numpy"


# ---------------------------------------------------------------- the three methods
def segsum(a, ops=None):
    """Segment sums S[..., t, s] = a[s+1] + … + a[t] for s ≤ t, and −inf above the diagonal.

    Built from a cumulative sum of masked copies (not as a difference of two cumulative sums),
    so each entry is a plain sum of the terms it covers — accurate even over long sequences.

    Parameters
    ----------
    a : array, shape (..., T)
    Returns
    -------
    array, shape (..., T, T); ``exp`` of it is the decay matrix L (zeros above the diagonal).
    """
    ops = ops or _Ops(_kind(a))
    T = a.shape[-1]
    rep = ops.where(ops.tril(T, a, -1), a[..., :, None], 0.0)  # rep[..., t, s] = a[t] for s < t, else 0
    S = ops.cumsum(rep, axis=-2)  # S[t, s] = a[s+1] + … + a[t]
    return ops.where(ops.tril(T, a, 0), S, -math.inf)


def _heads_by_group(a, g):
    """(b, l, h, ...) → (b, l, g, h/g, ...): head i = (group i // (h/g), member i % (h/g))."""
    return a.reshape(a.shape[0], a.shape[1], g, a.shape[2] // g, *a.shape[3:])


def _sequential(x, dt, A, B, C, h0, ops):
    """The recurrence, one step at a time. x (b, l, h, p), dt (b, l, h) → y, final state (b, h, p, n)."""
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    xg, dtg = _heads_by_group(x, g), _heads_by_group(dt, g)  # (b, l, g, r, p), (b, l, g, r)
    Ag = A.reshape(g, h // g)
    state = ops.zeros((b, g, h // g, p, n), x) if h0 is None else h0.reshape(b, g, h // g, p, n)
    ys = []
    for t in range(l):
        decay = ops.exp(dtg[:, t] * Ag)[..., None, None]  # exp(Δ_t A): (b, g, r, 1, 1)
        inp = (dtg[:, t, :, :, None] * xg[:, t])[..., None] * B[:, t, :, None, None, :]  # Δ_t x_t B_tᵀ
        state = decay * state + inp  # (b, g, r, p, n)
        ys.append(ops.einsum("bgrpn,bgn->bgrp", state, C[:, t]))  # h_t C_t
    y = ops.concat([yt[:, None] for yt in ys], axis=1)  # (b, l, g, r, p)
    return y.reshape(b, l, h, p), state.reshape(b, h, p, n)


def _quadratic(x, dt, A, B, C, h0, ops):
    """The attention form y = M x with the full (l, l) semiseparable matrix M per head."""
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    r = h // g
    a = ops.moveaxis(_heads_by_group(dt * A, g), 1, -1)  # Δ_t A: (b, g, r, l)
    L = ops.exp(segsum(a, ops))  # (b, g, r, l, l)
    CB = ops.matmul(ops.moveaxis(C, 1, 2), ops.moveaxis(ops.moveaxis(B, 1, 2), -1, -2))  # (b, g, l, l)
    M = L * CB[:, :, None]  # (b, g, r, l, l): M[t, s] without Δ_s
    xdt = ops.moveaxis(_heads_by_group(x * dt[..., None], g), 1, 3)  # Δ_s x_s: (b, g, r, l, p)
    y = ops.matmul(M, xdt)  # (b, g, r, l, p)
    # the state after the last step: the last row of L weights every input
    Bg = ops.moveaxis(B, 1, 2)[:, :, None]  # (b, g, 1, l, n)
    final = ops.matmul(ops.moveaxis(xdt * L[..., -1, :, None], -1, -2), Bg)  # (b, g, r, p, n)
    if h0 is not None:
        h0g = h0.reshape(b, g, r, p, n)
        decay_from_start = ops.exp(ops.cumsum(a, axis=-1))  # exp(Δ_1 A + … + Δ_t A) ≤ 1: (b, g, r, l)
        Cg = ops.moveaxis(C, 1, 2)[:, :, None]  # (b, g, 1, l, n)
        y = y + decay_from_start[..., None] * ops.matmul(Cg, ops.moveaxis(h0g, -1, -2))
        final = final + decay_from_start[..., -1, None, None] * h0g
    y = ops.moveaxis(y, 3, 1).reshape(b, l, h, p)
    return y, final.reshape(b, h, p, n)


def _chunked(x, dt, A, B, C, h0, Q, ops):
    """SSD: the quadratic form inside chunks of Q steps, states passed between chunks.

    The sequence is padded to c·Q steps with Δ = 0 (decay 1, no input), which leaves the
    state unchanged, so any l works and the final state is the state after step l.
    """
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    r = h // g
    c = -(-l // Q)  # number of chunks
    x, dt, B, C = (ops.pad_time(t, c * Q - l) for t in (x, dt, B, C))

    # chunk layout: batch dims (b, c, g, r), then the Q positions of the chunk
    a = dt.reshape(b, c, Q, g, r) * A.reshape(g, r)  # Δ_t A
    a = ops.moveaxis(a, 2, -1)  # (b, c, g, r, Q)
    a_cum = ops.cumsum(a, axis=-1)  # running sum inside each chunk, ≤ 0
    xdt = ops.moveaxis((x * dt[..., None]).reshape(b, c, Q, g, r, p), 2, 4)  # Δ_s x_s: (b, c, g, r, Q, p)
    Bc = ops.moveaxis(B.reshape(b, c, Q, g, n), 2, 3)[:, :, :, None]  # (b, c, g, 1, Q, n)
    Cc = ops.moveaxis(C.reshape(b, c, Q, g, n), 2, 3)[:, :, :, None]  # (b, c, g, 1, Q, n)

    # 1. intra-chunk "attention": the diagonal blocks of M, as matrix products. The segment sums are
    #    plain sums (segsum), not differences a_cum[t] − a_cum[s]: after one large Δ·A (a reset, say
    #    −1e4) those subtract two large numbers and keep few digits of the small sums after it
    seg = segsum(a, ops)  # Σ_{s<k≤t} Δ_k A inside the chunk, −inf above the diagonal: (…, Q, Q)
    L = ops.exp(seg)  # 0 above the diagonal, never exp(+…)
    CB = ops.matmul(Cc, ops.moveaxis(Bc, -1, -2))  # C_t · B_s: (b, c, g, 1, Q, Q)
    y_diag = ops.matmul(L * CB, xdt)  # (b, c, g, r, Q, p)

    # 2. chunk states: what each chunk alone leaves in the state at its end. The r heads of a group
    #    share B, so they stack into the rows of one matrix product per group: (r·p, Q) @ (Q, n)
    decay_to_end = ops.exp(seg[..., -1, :])  # exp(Σ_{s<k≤Q} Δ_k A), the last row: (b, c, g, r, Q)
    xw = ops.moveaxis(xdt * decay_to_end[..., None], -1, -2).reshape(b, c, g, r * p, Q)
    states = ops.matmul(xw, Bc[:, :, :, 0]).reshape(b, c, g, r, p, n)

    # 3. state passing: h_c = exp(chunk total) · h_{c−1} + states_c — a scan over c chunks,
    #    written as a (c+1)×(c+1) lower-triangular matrix (itself semiseparable)
    h_init = ops.zeros((b, 1, g, r, p, n), states) if h0 is None else ops.astype(h0.reshape(b, 1, g, r, p, n), states)
    states = ops.concat([h_init, states], axis=1)  # (b, c+1, g, r, p, n)
    totals = ops.concat([ops.zeros((b, g, r, 1), a), ops.moveaxis(a_cum[..., -1], 1, -1)], axis=-1)  # (b, g, r, c+1)
    decay_chunks = ops.exp(segsum(totals, ops))  # (b, g, r, c+1, c+1)
    flat = ops.moveaxis(states, 1, 3).reshape(b, g, r, c + 1, p * n)
    passed = ops.matmul(decay_chunks, flat).reshape(b, g, r, c + 1, p, n)
    final = passed[:, :, :, -1]  # (b, g, r, p, n)

    # 4. state → output: the off-diagonal blocks, through the states entering each chunk (rank n);
    #    again one product per group, the heads side by side as columns: (Q, n) @ (n, r·p)
    h_prev = ops.moveaxis(passed[:, :, :, :-1], (3, 5), (1, 3)).reshape(b, c, g, n, r * p)
    y_off = ops.matmul(Cc[:, :, :, 0], h_prev).reshape(b, c, g, Q, r, p)
    y_off = y_off * ops.moveaxis(ops.exp(a_cum), -1, 3)[..., None]  # decay from the chunk's start

    y = ops.moveaxis(y_diag, 4, 3) + y_off  # (b, c, g, Q, r, p)
    y = ops.moveaxis(y, 2, 3).reshape(b, c * Q, h, p)[:, :l]
    return y, final.reshape(b, h, p, n)


# ---------------------------------------------------------------- checks and the public calls
def _work_dtype(kind, arrays):
    """numpy: float64; torch / CuPy: float32 or wider (float64 if any input is float64)."""
    if kind == "numpy":
        return np.float64
    if kind == "torch":
        import torch

        dtype = torch.float32
        for a in arrays:
            if a is not None:
                dtype = torch.promote_types(dtype, a.dtype)
        return dtype
    dtype = np.float32
    for a in arrays:
        if a is not None:
            dtype = np.promote_types(dtype, a.dtype)
    return dtype


def _convert(a, kind, dtype):
    if a is None:
        return None
    if kind == "torch":
        return a.to(dtype)
    if kind == "numpy":
        return np.asarray(a, dtype=dtype)
    return a.astype(dtype, copy=False)


def _discretize_dt(dt, dt_bias, dt_softplus, ops):
    """Δ = softplus(dt + dt_bias) (bias and softplus optional): (b, l, h)."""
    if dt_bias is not None:
        dt = dt + dt_bias
    return ops.softplus(dt) if dt_softplus else dt


def _check_delta(delta, kind, like):
    """Warn when Δ (after the bias and softplus) is negative: with A ≤ 0 the decay exp(ΔA) then exceeds 1 and
    the state can grow without bound. A warning, not an error, as in ``selective_scan`` (the official kernels
    accept any Δ). Checked on the CPU only (on a GPU it would force a synchronisation)."""
    if kind == "numpy" or (kind == "torch" and like.device.type == "cpu"):
        low = float((delta.detach() if kind == "torch" else delta).min())  # no "tensor that requires grad" warning
        if low < 0:
            warnings.warn(f"dt (after dt_bias and the softplus) has negative entries (min {low:g}): the state "
                          "grows instead of decaying; pass dt_softplus=True or a non-negative dt",
                          RuntimeWarning, stacklevel=3)


def ssd_scan(
    x,
    dt,
    A,
    B,
    C,
    chunk_size=64,
    D=None,
    z=None,
    dt_bias=None,
    dt_softplus=False,
    initial_states=None,
    return_final_states=False,
    method="chunked",
):
    """Mamba-2's SSD scan, with the official ``mamba_chunk_scan_combined`` semantics.

    Per head, h_t = exp(Δ_t A) h_{t−1} + Δ_t x_t B_tᵀ and y_t = h_t C_t + D x_t, then
    out = y · silu(z). The arguments come in the official order (``chunk_size`` may be given
    by position, as there); pass the rest by keyword.

    Parameters
    ----------
    x : array, shape (b, l, h, p)
        Input: h heads of p channels each.
    dt : array, shape (b, l, h)
        Step sizes before the optional bias and softplus; Δ must end up ≥ 0.
    A : array, shape (h,)
        One scalar per head, ≤ 0 (the state decays by exp(Δ A) per step).
    B, C : array, shape (b, l, g, n)
        Input and output vectors; g groups divide h, head i uses group i // (h/g).
    chunk_size : int, default 64
        Chunk length Q of the chunked method (any l works: the last chunk is padded).
    D : array, shape (h,) or (h, p), optional
        Skip connection: adds D·x.
    z : array, shape (b, l, h, p), optional
        Gate: the output (after D) is multiplied by silu(z).
    dt_bias : array, shape (h,), optional
        Added to dt before the softplus.
    dt_softplus : bool, default False
        Δ = softplus(dt + dt_bias).
    initial_states : array, shape (b, h, p, n), optional
        The state before the first step (zeros if None).
    return_final_states : bool, default False
        Also return the state after step l.
    method : {"chunked", "quadratic", "sequential"}
        How to compute it (all give the same result; see the module docstring).

    Returns
    -------
    out : array, shape (b, l, h, p)
        numpy in → float64 numpy out; torch in → torch out in x's dtype and device
        (differentiable); CuPy in → CuPy out in x's dtype. Computation runs in float64 for
        numpy, in float32 (or wider) for torch and CuPy.
    final_states : array, shape (b, h, p, n)
        Only with ``return_final_states=True``; in the computation's dtype.

    Raises
    ------
    ValueError
        On a wrong shape, g not dividing h, a non-floating dtype, mixed array kinds or devices,
        an unknown method or a bad chunk_size; for CPU inputs also on NaN/inf or A > 0.

    Notes
    -----
    Which code runs: ``method="chunked"`` with torch CUDA tensors (float32, float16 or bfloat16; no argument requiring
    grad while grad mode is on; chunk_size in 16, 32, 64, 128, 256; p ≤ 128, n ≤ 256) runs the fused
    CUDA kernels of :func:`mamba_edu.scans.ssd_cuda.ssd_scan_cuda` when CuPy sees a GPU: five
    launches, no host synchronisation, matrix products on tensor cores in TF32 (errors of about
    1e-4 … 1e-3 of the output's scale against float64, like the official Triton kernel), the output
    in x's dtype and final states in float32. Everything else — numpy, CPU tensors, CuPy arrays,
    gradients, float64, other sizes, the other methods — runs the array-generic code of this module
    (strict float32 matrix products on CuPy; torch's TF32 setting applies to CUDA tensors).
    Neither path checks NaN/inf, A ≤ 0 or a negative Δ on a GPU (that would cost a synchronisation).

    Explained in lesson 8.
    """
    if method == "chunked" and _kind(x) == "torch" and getattr(x, "is_cuda", False):
        from mamba_edu.scans import ssd_cuda

        if ssd_cuda.supports(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states):
            return ssd_cuda.ssd_scan_cuda(x, dt, A, B, C, chunk_size, D=D, z=z, dt_bias=dt_bias,
                                          dt_softplus=dt_softplus, initial_states=initial_states,
                                          return_final_states=return_final_states)
    if _kind(x) == "numpy":  # lists etc. → numpy (other kinds stay, for the check to name them)
        x, dt, A, B, C, D, z, dt_bias, initial_states = (
            np.asarray(a) if a is not None and _kind(a) == "numpy" else a
            for a in (x, dt, A, B, C, D, z, dt_bias, initial_states)
        )
    kind = _check(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, method)
    ops = _Ops(kind)
    work = _work_dtype(kind, (x, dt, A, B, C, D, z, dt_bias, initial_states))
    x_, dt_, A_, B_, C_, D_, z_, bias_, h0 = (
        _convert(a, kind, work) for a in (x, dt, A, B, C, D, z, dt_bias, initial_states)
    )
    delta = _discretize_dt(dt_, bias_, dt_softplus, ops)
    _check_delta(delta, kind, x)
    if method == "sequential":
        y, final = _sequential(x_, delta, A_, B_, C_, h0, ops)
    elif method == "quadratic":
        y, final = _quadratic(x_, delta, A_, B_, C_, h0, ops)
    else:
        y, final = _chunked(x_, delta, A_, B_, C_, h0, int(chunk_size), ops)
    if D_ is not None:
        y = y + x_ * (D_[:, None] if D_.ndim == 1 else D_)
    if z_ is not None:
        y = y * ops.silu(z_)
    out = y if kind == "numpy" else ops.astype(y, x)
    return (out, final) if return_final_states else out


def ssd_costs(l, Q, p=64, n=128):
    """FLOPs and intermediate memory (floats) of one head's scan, for each method.

    Counted from :func:`mamba_edu.ssd_scan`'s code (multiply-adds count 2 FLOPs; exponentials
    and masks count 1 per entry), for sequence length l, chunk size Q, head dimension p and
    state size n:

    * sequential: per step the state update (3pn) and the read-out (2pn): 5·l·p·n FLOPs; keeps
      one state (p·n floats);
    * quadratic: C Bᵀ (2l²n), the decay matrix (≈ 3l²: segment sums, exp, mask), M x (2l²p); keeps M (l²);
    * chunked with c = ⌈l/Q⌉ chunks: per chunk the quadratic form of size Q (2Q²n + 3Q² + 2Q²p),
      its state (2Qpn) and its read-out (2Qpn), plus the state passing as a (c+1)² matrix
      product (2(c+1)²pn); keeps c blocks of Q² and c+1 states of p·n.

    Parameters
    ----------
    l, Q, p, n : int or array of int (broadcast)

    Returns
    -------
    dict method → (flops, floats), each an array (or float) of the broadcast shape.
    """
    l, Q = np.asarray(l, dtype=float), np.asarray(Q, dtype=float)
    c = np.ceil(l / Q)
    seq = (5 * l * p * n, p * n + 0 * l)
    quad = (l**2 * (2 * n + 3 + 2 * p), l**2)
    chunk = (c * Q**2 * (2 * n + 3 + 2 * p) + 4 * c * Q * p * n + 2 * (c + 1) ** 2 * p * n,
             c * Q**2 + (c + 1) * p * n)
    return {"sequential": seq, "quadratic": quad, "chunked": chunk}


def offdiagonal_rank(M, Q, tol=1e-9):
    """The largest numerical rank among the off-diagonal blocks M[chunk i, chunk j], i > j (0 if none)."""
    l = M.shape[-1]
    ranks = [0]
    for i in range(Q, l, Q):
        block = M[i:i + Q, :i]  # everything left of the diagonal block, below it: still rank ≤ n
        s = np.linalg.svd(block, compute_uv=False)
        ranks.append(int((s > tol * max(s[0], 1e-300)).sum()))
    return max(ranks)


def ssd_matrix(dt, A, B, C, dt_bias=None, dt_softplus=False):
    """The semiseparable matrix M of each head, so that y = M x (without D and z).

    M[t, s] = L[t, s] · (C_t · B_s) · Δ_s with L[t, s] = exp(Σ_{s<k≤t} Δ_k A) for s ≤ t and 0
    above the diagonal — a masked, attention-like matrix. O(l²) memory: for small l (lessons).

    Parameters
    ----------
    dt : array, shape (b, l, h)
    A : array, shape (h,)
    B, C : array, shape (b, l, g, n)
    dt_bias : array, shape (h,), optional
    dt_softplus : bool, default False

    Returns
    -------
    M : array, shape (b, h, l, l)
        ``out[:, :, i, :] == M[:, i] @ x[:, :, i, :]`` for ``ssd_scan(x, dt, A, B, C)`` (any method).

    Explained in lesson 8.
    """
    if _kind(dt) == "numpy":  # lists etc. → numpy (other kinds stay, for the check to name them)
        dt, A, B, C, dt_bias = (np.asarray(a) if a is not None and _kind(a) == "numpy" else a
                                for a in (dt, A, B, C, dt_bias))
    one_kind(dict(dt=dt, A=A, B=B, C=C, dt_bias=dt_bias), ("dt", "A", "B", "C"))  # named as the caller named them
    if getattr(dt, "ndim", 0) != 3:
        raise ValueError(f"dt has shape {tuple(getattr(dt, 'shape', ()))}, expected (b, l, h)")
    b, l, h = dt.shape
    like_x = dt[..., None]  # a stand-in x of shape (b, l, h, 1) for the shared checks
    kind = _check(like_x, dt, A, B, C, 1, None, None, dt_bias, None, "quadratic")
    ops = _Ops(kind)
    work = _work_dtype(kind, (dt, A, B, C, dt_bias))
    dt_, A_, B_, C_, bias_ = (_convert(a, kind, work) for a in (dt, A, B, C, dt_bias))
    delta = _discretize_dt(dt_, bias_, dt_softplus, ops)
    _check_delta(delta, kind, dt)
    g = B.shape[2]
    a = ops.moveaxis(_heads_by_group(delta * A_, g), 1, -1)  # (b, g, r, l)
    L = ops.exp(segsum(a, ops))  # (b, g, r, l, l)
    CB = ops.matmul(ops.moveaxis(C_, 1, 2), ops.moveaxis(ops.moveaxis(B_, 1, 2), -1, -2))  # (b, g, l, l)
    delta_s = ops.moveaxis(_heads_by_group(delta, g), 1, -1)[..., None, :]  # Δ_s along columns
    M = L * CB[:, :, None] * delta_s
    return M.reshape(b, h, l, l)
