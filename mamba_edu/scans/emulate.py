"""A numpy emulation of the fused GPU kernel v2 (forward), step by step.  Explained in lesson 7.

On a machine without a GPU the lesson runs this instead of ``scans/kernels/v2_forward.cu``: the
same data flow, with numpy arrays standing in for registers, shared memory and warp shuffles, so
it gives the kernel's result (to rounding) and shows *how* the kernel gets it:

1. **Tiles.** Time is cut into tiles of ``chunk`` steps (the kernel copies one tile of u, delta, z,
   B, C into shared memory while it computes the previous one). A *pre-pass* turns each tile's
   delta into Δ = softplus(delta + delta_bias), Δ·u and silu(z), once per element.
2. **States across lanes.** Each channel (b, d) gets ``lanes_per_channel`` threads ("lanes"); lane
   s owns the states s, s + lanes, … and runs their recurrences sequentially in registers,
   h_t = exp(Δ_t A) h_{t−1} + Δ_t B_t u_t. No scan between threads is needed.
3. **Transpose-reduce.** y_t = Σ_s C_t[s] h_t[s] is a sum across lanes. Over a block of ``lanes``
   steps each lane collects its partial sums p[lane, k]; then log₂(lanes) rounds of exchanges with
   the lane 2^j away (:func:`transpose_reduce`) leave lane k holding y of step k of the block.
4. **Epilogue.** out = (y + D·u) · silu(z), written by lane k for step k.

Glossary: u input (b, d, l); delta Δ (b, d, l); A (d, n); B, C (b, n, l), (b, g, n, l) or (d, n);
D, delta_bias (d,); z gate (b, d, l); h state (b, d, n); y, out (b, d, l).
"""

import numpy as np

from mamba_edu.scans.checks import check_selective_scan_inputs


def transpose_reduce(p):
    """Sum partial sums across lanes the way v2's warp shuffles do.

    Parameters
    ----------
    p : array, shape (..., lanes, lanes)
        p[..., i, k] is lane i's partial sum for step k of a block (lanes a power of 2).

    Returns
    -------
    array, shape (..., lanes)
        Element k (held by lane k) is Σ_i p[..., i, k].

    Each round halves the values a lane holds: with partner = lane XOR m, a lane whose bit m is
    set keeps the upper half of its values (steps with bit m set) and *sends* the lower half; the
    partner does the opposite; each adds what it receives to what it keeps. After log₂(lanes)
    rounds every lane holds one full sum, for the step equal to its own index — with
    lanes − 1 shuffles per lane instead of lanes·log₂(lanes) for separate reductions.

    Explained in lesson 7.
    """
    p = np.asarray(p)
    lanes = p.shape[-1]
    if p.ndim < 2 or p.shape[-2] != lanes or lanes & (lanes - 1):
        raise ValueError(f"p has shape {p.shape}, expected (..., lanes, lanes) with lanes a power of 2")
    lane = np.arange(lanes)
    m = lanes // 2
    while m >= 1:
        upper = ((lane & m) != 0)[:, None]  # (lanes, 1): does this lane keep the upper half?
        low, high = p[..., :m], p[..., m : 2 * m]  # (..., lanes, m)
        keep = np.where(upper, high, low)
        send = np.where(upper, low, high)
        p = keep + send[..., lane ^ m, :]  # __shfl_xor_sync(send, m)
        m //= 2
    return p[..., 0]


def _per_channel(X, groups, b, d, n, dtype):
    """B or C → (b, d, n, l) view, or fixed (d, n) → (1, d, n, 1)."""
    X = np.asarray(X, dtype=dtype)
    if groups is None:
        return X[None, :, :, None]
    if X.ndim == 3:
        X = X[:, None]
    return np.repeat(X, d // groups, axis=1)  # group k serves channels k·d/g … (k+1)·d/g − 1


def selective_scan_v2_emulated(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                               chunk=128, lanes_per_channel=16, return_last_state=False):
    """Run the v2 forward kernel's algorithm in numpy (tiles, lanes, transpose-reduce).

    Parameters
    ----------
    u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state
        As in :func:`mamba_edu.selective_scan` (numpy arrays; real A).
    chunk : int, default 128
        Steps per tile (the kernel's ``TILE``): a multiple of ``lanes_per_channel``.
    lanes_per_channel : {4, 8, 16, 32}, default 16
        Lanes sharing one channel's n states (the kernel's ``LPC``); lane s owns states s, s + LPC, …

    Returns
    -------
    out : ndarray, shape (b, d, l)
        float64 (float32 if all inputs are float32, like the kernel).
    last_state : ndarray, shape (b, d, n)
        Only with ``return_last_state=True``.

    Explained in lesson 7.
    """
    args = tuple(None if x is None else np.asarray(x) for x in (u, delta, A, B, C, D, z, delta_bias))
    shapes = check_selective_scan_inputs(*args)
    if shapes.is_complex:
        raise NotImplementedError("the v2 kernel (and this emulation) supports a real A only")
    lanes = int(lanes_per_channel)
    if lanes not in (4, 8, 16, 32):
        raise ValueError(f"lanes_per_channel must be 4, 8, 16 or 32, got {lanes_per_channel}")
    if int(chunk) < 1 or int(chunk) % lanes:
        raise ValueError(f"chunk must be a positive multiple of lanes_per_channel = {lanes}, got {chunk}")
    chunk = int(chunk)
    u, delta, A, B, C, D, z, delta_bias = args
    b, d, l, n = shapes.batch, shapes.dim, shapes.seqlen, shapes.dstate
    dtype = np.float32 if all(x.dtype == np.float32 for x in args if x is not None) else np.float64
    spl = -(-n // lanes)  # states per lane

    # lane s owns states s + lanes·i; padding states (≥ n) get A = B = C = 0 and stay 0
    def by_lane(X):  # (..., n, l) or (..., n, 1) → (..., lanes, spl, l)
        pad = [(0, 0)] * X.ndim
        pad[-2] = (0, lanes * spl - n)
        X = np.pad(X, pad)
        return np.swapaxes(X.reshape(*X.shape[:-2], spl, lanes, X.shape[-1]), -3, -2)

    A_lane = by_lane(np.asarray(A, dtype=dtype)[:, :, None])[..., 0]  # (d, lanes, spl)
    B_lane = by_lane(_per_channel(B, shapes.B_groups, b, d, n, dtype))  # (b|1, d, lanes, spl, l|1)
    C_lane = by_lane(_per_channel(C, shapes.C_groups, b, d, n, dtype))
    h = np.zeros((b, d, lanes, spl), dtype=dtype)  # the registers: each lane's states
    out = np.empty((b, d, l), dtype=dtype)

    for t0 in range(0, l, chunk):  # ---- one tile ----
        t1 = min(t0 + chunk, l)
        # pre-pass, once per element: Δ, Δ·u, silu(z)
        dl = delta[:, :, t0:t1].astype(dtype)
        if delta_bias is not None:
            dl = dl + delta_bias.astype(dtype)[:, None]
        if delta_softplus:
            dl = np.where(dl <= 20, np.log1p(np.exp(np.minimum(dl, 20))), dl)
        du = dl * u[:, :, t0:t1]
        for j0 in range(t0, t1, lanes):  # ---- a block of `lanes` steps ----
            steps = min(lanes, t1 - j0)
            p = np.zeros((b, d, lanes, lanes), dtype=dtype)  # p[..., lane, k]: lane's part of y at step j0 + k
            for k in range(steps):
                t = j0 + k
                Bt = B_lane[..., t if B_lane.shape[-1] > 1 else 0]  # (b|1, d, lanes, spl)
                Ct = C_lane[..., t if C_lane.shape[-1] > 1 else 0]
                A_bar = np.exp(dl[:, :, t - t0, None, None] * A_lane)  # (b, d, lanes, spl)
                h = A_bar * h + du[:, :, t - t0, None, None] * Bt
                p[..., k] = (Ct * h).sum(-1)  # sum over the lane's own states
            y = transpose_reduce(p)[..., :steps]  # lane k now holds y at step j0 + k
            if D is not None:
                y = y + D.astype(dtype)[:, None] * u[:, :, j0 : j0 + steps]
            if z is not None:
                zt = z[:, :, j0 : j0 + steps].astype(dtype)
                y = y * zt / (1 + np.exp(-zt))
            out[:, :, j0 : j0 + steps] = y
    if return_last_state:
        last = np.swapaxes(h, -1, -2).reshape(b, d, lanes * spl)[:, :, :n]  # undo the lane layout
        return out, last
    return out
