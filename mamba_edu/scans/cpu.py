"""A fused, compiled CPU kernel for Mamba's selective scan (forward and backward).

Explained in lesson 6. Same arguments, shapes and semantics as :func:`mamba_edu.selective_scan`
(the official ``selective_scan_fn``) for torch CPU tensors with a *real* A and input-dependent
B, C; :func:`mamba_edu.selective_scan` calls it automatically when :func:`supports` says yes,
and keeps the readable pure-torch path as the reference and the fallback.

Why a compiled kernel? Eager torch code materialises (b, d, l, n) tensors for Ā, B̄u and h and is
memory-bound; autograd through a per-step loop keeps l graph nodes. The kernel mirrors the GPU
kernel of lesson 7 instead:

* one worker per channel (b·d of them, run in parallel with ``numba.prange``);
* the n states of that channel live in a small local array and are updated in a loop over time,
  so nothing of size (b, d, l, n) is ever written to memory in the forward pass;
* Ā_t = exp(Δ_t A) is computed on the fly: no cumulative product exp(ΣΔA), which would overflow
  or underflow in float32 (Δ·|A| = 50 gives exp(-50) ≈ 2e-22 per step, harmless here);
* the backward pass recomputes the forward scan of a channel into an (l, n) scratch buffer,
  then runs the *reverse* scan  g_t = Ā_{t+1} g_{t+1} + C_t ∂L/∂y_t  and reads every gradient off
  g_t and h_{t-1}. Gradients of B and C are sums over the channels that share them; each worker
  adds into its own partial buffer, and the buffers are summed at the end (no races).

Importing this module imports numba (``mamba_edu.selective_scan`` imports it only when a torch CPU
scan runs). The kernels compile on their first call, about 10 s per dtype, and numba caches the
machine code on disk (``__pycache__``), so later processes start in well under a second.

Glossary: u input (b, d, l); delta Δ (b, d, l); A (d, n); B, C (b, n, l) or (b, g, n, l);
D, delta_bias (d,); z gate (b, d, l); h state (b, d, n); y output (b, d, l).
"""

import functools
import math

import numba
import numpy as np
from numba import prange

# reassociation lets LLVM vectorise the sums over the n states; no "no-NaN/no-inf" assumptions
_FAST = {"contract", "reassoc", "nsz", "arcp"}
_jit = numba.njit(parallel=True, cache=True, fastmath=_FAST)  # compiled on first call, cached on disk


@numba.njit(inline="always", fastmath={"contract"})
def _step_size(raw, bias, softplus):
    """Δ = softplus(raw + bias) exactly as the official kernel (identity above 20)."""
    v = raw + bias
    if softplus and v <= 20.0:
        v = math.log1p(math.exp(v))
    return v


@_jit
def _forward(u, delta, A, B, C, D, z, bias, softplus, has_z, out, last_state):
    # u, delta, z, out: (b, d, l); A: (d, n); B, C: (b, g, l, n)  (time-major per group)
    # D, bias: (d,); last_state: (b, d, n)
    b, d, l = u.shape
    g, n = B.shape[1], A.shape[1]
    per_group = d // g
    for k in prange(b * d):  # one worker per (batch, channel)
        bi, di = k // d, k % d
        gi = di // per_group
        h = np.zeros(n, dtype=u.dtype)  # this channel's n states
        a = np.empty(n, dtype=u.dtype)
        dt1 = np.empty(1, dtype=u.dtype)  # keeps Δ_t in u's dtype (float32 exp in float32)
        Arow = A[di]
        for t in range(l):
            dt1[0] = _step_size(delta[bi, di, t], bias[di], softplus)
            dt = dt1[0]
            ut = u[bi, di, t]
            dtu = dt * ut
            Bt, Ct = B[bi, gi, t], C[bi, gi, t]  # rows (n,)
            for j in range(n):
                a[j] = math.exp(dt * Arow[j])
            y = 0.0
            for j in range(n):
                h[j] = a[j] * h[j] + dtu * Bt[j]
                y += h[j] * Ct[j]
            y += D[di] * ut
            if has_z:
                zt = z[bi, di, t]
                y *= zt / (1.0 + math.exp(-zt))  # silu(z)
            out[bi, di, t] = y
        for j in range(n):
            last_state[bi, di, j] = h[j]

@_jit
def _backward(u, delta, A, B, C, D, z, bias, softplus, has_z, gout, glast,
             gu, gdelta, gz, gA_b, gD_b, gbias_b, gB_part, gC_part):
    # glast: ∂L/∂(last state) (b, d, n), where the reverse scan starts
    # gradients: gu, gdelta, gz (b, d, l); gA_b (b, d, n); gD_b, gbias_b (b, d) — summed over b later;
    # gB_part, gC_part (b, g, parts, l, n): one partial sum per worker, summed over parts later
    b, d, l = u.shape
    g, n = B.shape[1], A.shape[1]
    per_group = d // g
    parts = gB_part.shape[2]
    for k in prange(b * g * parts):  # one worker per (batch, group, slice of the group's channels)
        bi, rest = k // (g * parts), k % (g * parts)
        gi, p = rest // parts, rest % parts
        lo = gi * per_group + (p * per_group) // parts
        hi = gi * per_group + ((p + 1) * per_group) // parts
        hs = np.zeros((l + 1, n), dtype=u.dtype)  # hs[t + 1] = h_t of one channel (recomputed), hs[0] = 0
        As = np.empty((l, n), dtype=u.dtype)  # Ā_t = exp(Δ_t A)
        dts = np.empty(l, dtype=u.dtype)
        ys = np.empty(l, dtype=u.dtype)  # y before the gate
        gh = np.empty(n, dtype=u.dtype)  # ∂L/∂h_t, carried backwards in time
        gA = np.empty(n, dtype=u.dtype)
        for di in range(lo, hi):
            Arow = A[di]
            # 1) forward again, keeping h_t and Ā_t (never exp(+ΣΔA): each step on its own)
            for t in range(l):
                dts[t] = _step_size(delta[bi, di, t], bias[di], softplus)
                dt = dts[t]
                dtu = dt * u[bi, di, t]
                a, h_prev, h, Bt, Ct = As[t], hs[t], hs[t + 1], B[bi, gi, t], C[bi, gi, t]  # rows (n,)
                for j in range(n):
                    a[j] = math.exp(dt * Arow[j])
                y = 0.0
                for j in range(n):
                    h[j] = a[j] * h_prev[j] + dtu * Bt[j]
                    y += h[j] * Ct[j]
                ys[t] = y + D[di] * u[bi, di, t]
            # 2) reverse scan: gh_t = Ā_{t+1} gh_{t+1} + C_t gy_t, from gh = ∂L/∂(last state) after the last step
            gh[:] = glast[bi, di]
            gA[:] = 0.0
            gD = 0.0
            gbias = 0.0
            for t in range(l - 1, -1, -1):
                ut = u[bi, di, t]
                dt = dts[t]
                gy = gout[bi, di, t]
                if has_z:
                    zt = z[bi, di, t]
                    sig = 1.0 / (1.0 + math.exp(-zt))
                    gz[bi, di, t] = gy * ys[t] * sig * (1.0 + zt * (1.0 - sig))
                    gy = gy * zt * sig
                gD += gy * ut
                a, h_prev, h, Bt, Ct = As[t], hs[t], hs[t + 1], B[bi, gi, t], C[bi, gi, t]
                gBt, gCt = gB_part[bi, gi, p, t], gC_part[bi, gi, p, t]
                dtu = dt * ut
                gut = 0.0
                gdt_A = 0.0
                for j in range(n):
                    gCt[j] += gy * h[j]
                    gj = gh[j] + gy * Ct[j]  # ∂L/∂h_t
                    ga = gj * h_prev[j] * a[j]  # ∂L/∂(Δ_t A_j) through Ā_t
                    gBt[j] += gj * dtu
                    gut += gj * Bt[j]
                    gdt_A += ga * Arow[j]
                    gA[j] += ga * dt
                    gh[j] = gj * a[j]  # becomes Ā_t gh_t for step t-1
                gdt = gut * ut + gdt_A  # Σ_j gj B_j u + Σ_j ga_j A_j
                gut = gut * dt + gy * D[di]
                if softplus and delta[bi, di, t] + bias[di] <= 20.0:
                    gdt *= 1.0 / (1.0 + math.exp(-(delta[bi, di, t] + bias[di])))
                gu[bi, di, t] = gut
                gdelta[bi, di, t] = gdt
                gbias += gdt
            for j in range(n):
                gA_b[bi, di, j] = gA[j]
            gD_b[bi, di] = gD
            gbias_b[bi, di] = gbias


def supports(u, delta, A, B, C, D=None, z=None, delta_bias=None) -> bool:
    """Whether :func:`selective_scan_cpu` handles these inputs (else use the torch reference).

    True for torch CPU tensors of one dtype, float32 or float64, with a real A (d, n) and
    input-dependent B, C of shape (b, n, l) or (b, g, n, l); D, z, delta_bias optional. Does not
    check the shapes in detail (:func:`selective_scan_cpu` does, and raises ``ValueError``).
    """
    try:
        import torch
    except ImportError:
        return False
    tensors = [t for t in (u, delta, A, B, C, D, z, delta_bias) if t is not None]
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return False
    if any(t.device.type != "cpu" or t.dtype != u.dtype for t in tensors):
        return False
    if u.dtype not in (torch.float32, torch.float64):
        return False
    return u.dim() == 3 and A.dim() == 2 and B.dim() in (3, 4) and C.dim() in (3, 4)


def _as_groups(M):
    """(b, n, l) or (b, g, n, l) -> contiguous (b, g, l, n): time-major, states contiguous."""
    if M.dim() == 3:
        M = M.unsqueeze(1)
    return M.transpose(-1, -2).contiguous()


def _parts(b, g, per_group):
    """How many slices to cut each group's channels into for the backward workers."""
    want = 4 * numba.get_num_threads()
    return max(1, min(per_group, -(-want // (b * g))))


def _np(t):
    return t.detach().contiguous().numpy()


@functools.cache
def _make_function():
    import torch

    class SelectiveScanCPU(torch.autograd.Function):
        """Autograd wrapper: the numba forward, and the hand-written reverse-scan backward."""

        @staticmethod
        def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
            b, d, l = u.shape
            n = A.shape[1]
            Bg, Cg = _as_groups(B), _as_groups(C)
            Dv = D if D is not None else torch.zeros(d, dtype=u.dtype)
            bias = delta_bias if delta_bias is not None else torch.zeros(d, dtype=u.dtype)
            out = torch.empty(b, d, l, dtype=u.dtype)
            last_state = torch.empty(b, d, n, dtype=u.dtype)
            zz = z if z is not None else u
            _forward(_np(u), _np(delta), _np(A), _np(Bg), _np(Cg), _np(Dv), _np(zz), _np(bias),
                           bool(delta_softplus), z is not None, out.numpy(), last_state.numpy())
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias)
            ctx.delta_softplus = bool(delta_softplus)
            return out, last_state  # differentiable (the official kernel drops its gradient)

        @staticmethod
        def backward(ctx, gout, glast):
            u, delta, A, B, C, D, z, delta_bias = ctx.saved_tensors
            b, d, l = u.shape
            n = A.shape[1]
            Bg, Cg = _as_groups(B), _as_groups(C)
            g = Bg.shape[1]
            parts = _parts(b, g, d // g)
            Dv = D if D is not None else torch.zeros(d, dtype=u.dtype)
            bias = delta_bias if delta_bias is not None else torch.zeros(d, dtype=u.dtype)
            zz = z if z is not None else u
            gu, gdelta, gz = (torch.empty(b, d, l, dtype=u.dtype) for _ in range(3))
            gA_b = torch.empty(b, d, n, dtype=torch.float64)
            gD_b = torch.empty(b, d, dtype=torch.float64)
            gbias_b = torch.empty(b, d, dtype=torch.float64)
            gB_part = torch.zeros(b, g, parts, l, n, dtype=u.dtype)
            gC_part = torch.zeros(b, g, parts, l, n, dtype=u.dtype)
            _backward(_np(u), _np(delta), _np(A), _np(Bg), _np(Cg), _np(Dv), _np(zz), _np(bias),
                            ctx.delta_softplus, z is not None, _np(gout), _np(glast),
                            gu.numpy(), gdelta.numpy(), gz.numpy(), gA_b.numpy(), gD_b.numpy(),
                            gbias_b.numpy(), gB_part.numpy(), gC_part.numpy())

            def back_to_layout(part, M):  # (b, g, parts, l, n) -> M's layout (b, n, l) or (b, g, n, l)
                G = part.sum(2).transpose(-1, -2)
                return G.squeeze(1) if M.dim() == 3 else G

            return (
                gu,
                gdelta,
                gA_b.sum(0).to(u.dtype),
                back_to_layout(gB_part, B),
                back_to_layout(gC_part, C),
                gD_b.sum(0).to(u.dtype) if D is not None else None,
                gz if z is not None else None,
                gbias_b.sum(0).to(u.dtype) if delta_bias is not None else None,
                None,
            )

    return SelectiveScanCPU


def selective_scan_cpu(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                       return_last_state=False):
    """Mamba's selective scan on the CPU: a fused numba kernel, differentiable.

    Explained in lesson 6. For each batch b, channel d and state n (h_{-1} = 0)::

        Δ_t  = softplus(delta_t + delta_bias)   (softplus only if delta_softplus)
        h_t  = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t
        y_t  = C_t · h_t + D u_t,   out_t = y_t · silu(z_t)   (the gate only if z is given)

    Parameters
    ----------
    u, delta : torch.Tensor, shape (b, d, l)
        Input and (pre-softplus) step size; float32 or float64 on the CPU.
    A : torch.Tensor, shape (d, n)
        Real state matrix (diagonal per channel), usually negative.
    B, C : torch.Tensor, shape (b, n, l) or (b, g, n, l)
        Input-dependent input/output matrices; with g groups, channel k uses group k // (d // g).
    D, delta_bias : torch.Tensor, shape (d,), optional
    z : torch.Tensor, shape (b, d, l), optional
        Gate.
    delta_softplus : bool
    return_last_state : bool
        Also return h at the last step, shape (b, d, n). Gradients through it enter the reverse scan
        exactly (the official CUDA kernel marks it non-differentiable and drops them).

    Returns
    -------
    out : torch.Tensor, shape (b, d, l), same dtype as u
    last_state : torch.Tensor, shape (b, d, n), only if ``return_last_state``

    Raises
    ------
    ValueError
        If the inputs are not of a kind this kernel handles (see :func:`supports`), or their
        shapes disagree.
    """
    from mamba_edu.scans.checks import check_selective_scan_inputs

    check_selective_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    if not supports(u, delta, A, B, C, D, z, delta_bias):
        raise ValueError(
            "selective_scan_cpu needs torch CPU tensors of one dtype (float32 or float64), a real A of shape "
            "(d, n) and input-dependent B, C of shape (b, n, l) or (b, g, n, l); got "
            f"u {getattr(u, 'dtype', type(u))} on {getattr(u, 'device', '?')}, A {getattr(A, 'dtype', type(A))} "
            f"{tuple(A.shape)}, B {tuple(B.shape)}, C {tuple(C.shape)}; use mamba_edu.selective_scan instead"
        )
    return run_unchecked(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def run_unchecked(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
    """:func:`selective_scan_cpu` without its checks, for callers that checked the inputs already.

    ``mamba_edu.selective_scan`` checks once with :func:`~mamba_edu.scans.checks.check_selective_scan_inputs` and
    asks :func:`supports` before it calls this (a public function validates once; internal calls never re-validate).
    """
    out, last_state = _make_function().apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return (out, last_state) if return_last_state else out
