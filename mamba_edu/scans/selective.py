"""Mamba's selective scan, with the official ``selective_scan_fn`` semantics.  Explained in lesson 4.

For every batch element b and channel d, an independent diagonal SSM with n states runs over
time, with a step size Δ and input/output vectors B, C that may change at every step::

    Δ_t      = softplus(delta_t + delta_bias)          (bias and softplus optional)
    A_bar_t  = exp(Δ_t A)                              exact (ZOH) for a diagonal A
    B_bar_t  = Δ_t B_t                                 Mamba's simplified rule (not ZOH)
    h_t      = A_bar_t ⊙ h_{t−1} + B_bar_t u_t         h: (b, d, n) — one state per channel
    y_t      = C_t · h_t  (+ D u_t)                    then   out = y · silu(z)

Shapes (the official layout, time last)
---------------------------------------
u, delta, z : (b, d, l)
A           : (d, n) real, or complex (then y = 2·Re(C·h): each state stands for a conjugate pair)
B, C        : (b, n, l) variable, (b, g, n, l) grouped (g divides d; channel d uses group d // (d/g)),
              or (d, n) fixed; variable B and C have the same g ((b, n, l) counts as g = 1).
              With complex A, variable B/C are complex tensors of those shapes,
              or real tensors in the official interleaved layout with last dimension 2l (re, im, re, im, …).
D, delta_bias : (d,)
out : (b, d, l);  last state (with ``return_last_state=True``): (b, d, n)

:func:`selective_scan_ref` is the readable reference (a loop over time, numerically safe: it
never forms exp(+cumsum(ΔA)) or anything else that grows). :func:`selective_scan` checks the
inputs and uses a compiled CPU kernel (``mamba_edu.scans.cpu``) when one is available.
"""

import sys
import warnings
from importlib import import_module

import numpy as np
import torch
import torch.nn.functional as F

from mamba_edu._backend import all_finite, backend
from mamba_edu._precision import warn_not_finite
from mamba_edu.scans.checks import check_selective_scan_inputs


def _per_channel(X, groups, interleaved, shape, real, work):
    """B or C in any layout → (b, d, n, l) in dtype ``work`` (expanded views, no copies per channel)."""
    b, d, n, l = shape
    if groups is None:  # fixed (d, n)
        return X.to(work)[None, :, :, None].expand(b, d, n, l)
    if interleaved:  # real (..., 2l) → complex (..., l): pairs (re, im)
        X = torch.view_as_complex(X.to(real).unflatten(-1, (-1, 2)).contiguous())
    X = X.to(work)
    if X.ndim == 3:  # (b, n, l): shared by every channel
        return X.unsqueeze(1).expand(-1, d, -1, -1)
    return X.repeat_interleave(d // groups, dim=1)  # group k serves channels k·d/g … (k+1)·d/g − 1


def selective_scan_ref(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """The readable reference selective scan: a loop over time in plain torch (differentiable).

    Same arguments and result as :func:`selective_scan` (torch tensors only); computes in
    float32 or wider and returns ``out`` in ``u``'s dtype, like the official reference.
    Every step multiplies the state by exp(Δ_t A) with Re(Δ_t A) ≤ 0 for a stable A, so
    nothing can overflow.

    Explained in lesson 4.
    """
    shapes = check_selective_scan_inputs(u, delta, A, B, C, D, z, delta_bias)
    return _reference(shapes, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


def _reference(shapes, u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state):
    """The body of :func:`selective_scan_ref` for inputs already checked (``shapes``: what the check found)."""
    b, d, l, n = shapes.batch, shapes.dim, shapes.seqlen, shapes.dstate
    real = torch.promote_types(u.dtype, torch.float32)
    for x in (delta, A, B, C):
        real = torch.promote_types(real, x.real.dtype if x.is_complex() else x.dtype)
    cplx = torch.complex128 if real == torch.float64 else torch.complex64
    work = cplx if shapes.is_complex else real  # dtype of A, B, C and the state h

    u_ = u.to(real)
    delta = delta.to(real)
    if delta_bias is not None:
        delta = delta + delta_bias.to(real)[:, None]  # bias before softplus
    if delta_softplus:
        delta = F.softplus(delta)
    A = A.to(work)

    B_ = _per_channel(B, shapes.B_groups, shapes.B_interleaved, (b, d, n, l), real, work)  # (b, d, n, l)
    C_ = _per_channel(C, shapes.C_groups, shapes.C_interleaved, (b, d, n, l), real, work)

    h = torch.zeros(b, d, n, dtype=work, device=u.device)  # one state per channel: (b, d, n)
    ys = []
    for t in range(l):
        delta_t = delta[:, :, t, None]  # (b, d, 1)
        A_bar = torch.exp(delta_t * A)  # (b, d, n), exact ZOH for diagonal A
        B_bar = delta_t * B_[..., t]  # (b, d, n), Mamba's B̄ = ΔB
        h = A_bar * h + B_bar * u_[:, :, t, None]
        y_t = (C_[..., t] * h).sum(-1)  # (b, d)
        ys.append(2 * y_t.real if shapes.is_complex else y_t)
    y = torch.stack(ys, dim=-1)  # (b, d, l)

    out = y if D is None else y + D.to(real)[:, None] * u_
    if z is not None:
        out = out * F.silu(z.to(real))
    out = out.to(u.dtype)
    return (out, h) if return_last_state else out


def _to_torch(x):
    """numpy → torch float64 / complex128 (None stays None)."""
    if x is None:
        return None
    dtype = np.complex128 if np.iscomplexobj(x) else np.float64
    return torch.from_numpy(np.ascontiguousarray(x, dtype=dtype))


def _cpu_kernel(args):
    """The compiled CPU kernel (its unchecked entry) if it exists and supports these inputs, else None."""
    u, A = args[0], args[2]
    if u.device.type != "cpu" or A.is_complex():
        return None
    try:
        cpu = import_module("mamba_edu.scans.cpu")
    except ImportError:
        return None
    supports = getattr(cpu, "supports", None)
    if supports is not None and not supports(*args):  # supports(u, delta, A, B, C, D, z, delta_bias)
        return None
    return cpu.run_unchecked


def _cuda():
    """The CUDA module, imported on the first call that needs it (after that, a dictionary lookup)."""
    return sys.modules.get("mamba_edu.scans.cuda") or import_module("mamba_edu.scans.cuda")


def selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False
):
    """Mamba's selective scan (the official ``selective_scan_fn`` semantics).

    Parameters
    ----------
    u : array, shape (b, d, l)
        Input, one sequence per channel.
    delta : array, shape (b, d, l)
        Step sizes Δ before the optional bias and softplus.
    A : array, shape (d, n), real or complex
        Diagonal state matrices (one row of eigenvalues per channel). Complex A: y = 2·Re(C·h).
    B, C : array, shape (b, n, l), (b, g, n, l) or (d, n)
        Input and output vectors: variable (one per step), grouped (g | d) or fixed. With
        complex A, variable B/C are complex, or real with last dimension 2l (interleaved re, im).
    D : array, shape (d,), optional
        Skip connection: adds D·u.
    z : array, shape (b, d, l), optional
        Gate: the output is multiplied by silu(z).
    delta_bias : array, shape (d,), optional
        Added to delta before the softplus.
    delta_softplus : bool, default False
        Apply Δ = softplus(delta + delta_bias).
    return_last_state : bool, default False
        Also return the state after the last step.

    Returns
    -------
    out : array, shape (b, d, l)
        numpy in → numpy float64 out; torch in → torch out in u's dtype and device (differentiable).
    last_state : array, shape (b, d, n)
        Only with ``return_last_state=True`` (complex if A is complex).

    Raises
    ------
    ValueError
        On a wrong shape, a g that does not divide d, a non-floating dtype, mixed array kinds
        or devices, or NaN/inf values — the message names the argument and the shapes. On the CUDA
        kernel with gradients on, the NaN/inf error is raised by the backward (see
        :func:`mamba_edu.selective_scan_cupy`, ``check_finite``).

    Notes
    -----
    Which implementation runs:

    * torch CUDA tensors → the fused CuPy kernel :func:`mamba_edu.selective_scan_cupy` (lesson 7)
      when CuPy and a GPU are usable and the inputs suit it (real A, 1 ≤ n ≤ 256, u/delta/z/B/C in
      float32, float16 or bfloat16); a complex64 A with n ≤ 64 → the plain complex kernel
      (:mod:`mamba_edu.scans.cuda_complex`); otherwise (float64, complex128, no CuPy) the reference below.
    * torch CPU tensors → the compiled numba kernel (``mamba_edu.scans.cpu``, lesson 6) for float32 /
      float64 with a real A, else the readable reference :func:`selective_scan_ref`.
    * numpy → the reference in float64 / complex128, numpy out.

    All of them check the same things and give the same result within float32 rounding.

    Explained in lesson 4.
    """
    args = (u, delta, A, B, C, D, z, delta_bias)
    flags = dict(delta_softplus=bool(delta_softplus), return_last_state=bool(return_last_state))
    if isinstance(u, torch.Tensor) and u.is_cuda:  # the fused CuPy kernel, when it takes these inputs
        result = _cuda().scan_if_supported(args, flags["delta_softplus"], flags["return_last_state"])
        if result is not None:
            return result
    if backend(u) == "numpy":  # lists etc. → numpy
        args = tuple(x if x is None or backend(x) != "numpy" else np.asarray(x) for x in args)
    shapes = check_selective_scan_inputs(*args)  # the one check; the kernel and reference below do not repeat it
    if shapes.backend == "cupy":
        raise ValueError("u is a CuPy array: use mamba_edu.selective_scan_cupy for GPU arrays")
    numpy_in = shapes.backend == "numpy"
    if numpy_in:  # computed in float64 / complex128 torch, numpy out
        args = tuple(map(_to_torch, args))
    u, delta, A, B, C, D, z, delta_bias = args
    step = delta.detach() + (0 if delta_bias is None else delta_bias.detach()[:, None])  # Δ before softplus
    negative = not delta_softplus and bool((step < 0).any())
    if negative:
        warnings.warn(f"selective_scan: delta (+ delta_bias) has negative entries (min {float(step.min()):.4g}) "
                      "and delta_softplus=False: a negative step makes exp(delta*A) > 1 for a stable A, so the "
                      "state grows instead of decaying. Mamba passes delta_softplus=True.", RuntimeWarning,
                      stacklevel=2)
    kernel = _cpu_kernel(args)
    result = kernel(*args, **flags) if kernel is not None else _reference(shapes, *args, **flags)
    out = result[0] if return_last_state else result
    if isinstance(out, torch.Tensor) and not all_finite(out):
        re_A = float((A.real if A.is_complex() else A).detach().max())
        if negative:
            cause = "delta has negative entries (see the warning above)"
        elif re_A > 0:
            cause = f"A has entries with a positive real part (max {re_A:.4g}): exp(delta*A) > 1 grows every step"
        else:
            cause = "the inputs are so large that the states exceed the largest float of this dtype"
        warn_not_finite("selective_scan", "the output", cause)
    if numpy_in:
        return (result[0].numpy(), result[1].numpy()) if return_last_state else result.numpy()
    return result
