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

from importlib import import_module
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

_ARG_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


class ScanShapes(NamedTuple):
    """What :func:`check_selective_scan_inputs` found out about the inputs."""

    batch: int  # b
    dim: int  # d
    seqlen: int  # l
    dstate: int  # n
    is_complex: bool  # A is complex
    B_groups: int | None  # None: fixed B (d, n); else the number of groups g (1 for (b, n, l))
    C_groups: int | None
    B_interleaved: bool  # complex A with real B of last dimension 2l
    C_interleaved: bool
    backend: str  # "torch", "numpy" or "cupy"


def _backend(x):
    if isinstance(x, torch.Tensor):
        return "torch"
    if type(x).__module__.split(".")[0] == "cupy":
        return "cupy"
    return "numpy"


def _is_complex(x):
    return x.is_complex() if isinstance(x, torch.Tensor) else np.iscomplexobj(x)


def _is_float_or_complex(x):
    if isinstance(x, torch.Tensor):
        return x.is_floating_point() or x.is_complex()
    return np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.complexfloating)


def _all_finite(x):
    if isinstance(x, torch.Tensor):
        return bool(torch.isfinite(x).all())
    if _backend(x) == "cupy":
        import cupy

        return bool(cupy.isfinite(x).all())
    return bool(np.isfinite(x).all())


def _check_BC(name, X, b, d, l, n, is_complex):
    """Validate B or C; return (groups or None, interleaved)."""
    if X.ndim == 2:
        if tuple(X.shape) != (d, n):
            raise ValueError(f"{name} has shape {tuple(X.shape)}, expected fixed (d, n) = {(d, n)}")
        return None, False
    if X.ndim not in (3, 4):
        raise ValueError(
            f"{name} has shape {tuple(X.shape)}, expected (d, n) = {(d, n)}, (b, n, l) = {(b, n, l)} "
            f"or (b, g, n, l) = {(b, 'g', n, l)}"
        )
    if _is_complex(X) and not is_complex:
        raise ValueError(f"{name} is complex ({X.dtype}) but A is real: use a complex A or a real {name}")
    interleaved = is_complex and not _is_complex(X) and X.shape[-1] == 2 * l
    want_l = 2 * l if interleaved else l
    g = 1 if X.ndim == 3 else X.shape[1]
    expected = (b, n, want_l) if X.ndim == 3 else (b, g, n, want_l)
    if tuple(X.shape) != expected:
        lay = "(b, n, l)" if X.ndim == 3 else "(b, g, n, l)"
        raise ValueError(f"{name} has shape {tuple(X.shape)}, expected {lay} = {expected} to match u and A")
    if g < 1 or d % g != 0:
        raise ValueError(f"{name} has g = {g} groups, which does not divide d = {d} (shape {tuple(X.shape)})")
    return g, interleaved


def check_selective_scan_inputs(u, delta, A, B, C, D=None, z=None, delta_bias=None, check_finite=True):
    """Check the arguments of a selective scan; raise ``ValueError`` naming the bad one.

    Shared by every implementation (the torch reference, the CPU and CUDA kernels), so they
    all accept and reject the same inputs. Arrays must all be torch tensors (on one device),
    all CuPy arrays, or all numpy arrays; see the module docstring for the shapes.

    Parameters
    ----------
    u, delta, A, B, C, D, z, delta_bias
        As in :func:`selective_scan` (D, z, delta_bias may be ``None``).
    check_finite : bool, default True
        Also reject NaN/inf values (costs one pass over the data, and a sync on a GPU).

    Returns
    -------
    ScanShapes
        Sizes (b, d, l, n), whether A is complex, the layout of B and C, and the backend.
    """
    args = dict(zip(_ARG_NAMES, (u, delta, A, B, C, D, z, delta_bias)))
    given = {k: v for k, v in args.items() if v is not None}
    for name in ("u", "delta", "A", "B", "C"):
        if args[name] is None:
            raise ValueError(f"{name} is required, got None")
    backends = {k: _backend(v) for k, v in given.items()}
    backend = backends["u"]
    for name, kind in backends.items():
        if kind != backend:
            raise ValueError(f"{name} is a {kind} array but u is a {backend} array: pass one kind of array")
        if not hasattr(given[name], "shape") or not hasattr(given[name], "dtype"):
            raise ValueError(f"{name} must be an array, got {type(given[name]).__name__}")
        if not _is_float_or_complex(given[name]):
            raise ValueError(f"{name} has dtype {given[name].dtype}, expected a floating-point dtype")
    if backend == "torch":
        for name, x in given.items():
            if x.device != u.device:
                raise ValueError(f"{name} is on {x.device} but u is on {u.device}: use one device")
    for name in ("u", "delta", "z", "D", "delta_bias"):
        if name in given and _is_complex(given[name]):
            raise ValueError(f"{name} must be real, got dtype {given[name].dtype}")

    if u.ndim != 3:
        raise ValueError(f"u has shape {tuple(u.shape)}, expected (b, d, l)")
    b, d, l = (int(s) for s in u.shape)
    if min(b, d, l) < 1:
        raise ValueError(f"u has shape {tuple(u.shape)}, expected (b, d, l) with every size ≥ 1")
    for name in ("delta", "z"):
        if name in given and tuple(given[name].shape) != (b, d, l):
            shape = tuple(given[name].shape)
            raise ValueError(f"{name} has shape {shape}, expected (b, d, l) = {(b, d, l)} like u")
    if A.ndim != 2 or A.shape[0] != d or A.shape[1] < 1:
        raise ValueError(f"A has shape {tuple(A.shape)}, expected (d, n) with d = {d} (from u {(b, d, l)})")
    n = int(A.shape[1])
    is_complex = bool(_is_complex(A))
    B_groups, B_inter = _check_BC("B", B, b, d, l, n, is_complex)
    C_groups, C_inter = _check_BC("C", C, b, d, l, n, is_complex)
    if B_groups is not None and C_groups is not None and B_groups != C_groups:
        raise ValueError(
            f"B has shape {tuple(B.shape)} ({B_groups} group(s)) but C has shape {tuple(C.shape)} "
            f"({C_groups} group(s)): variable B and C must have the same number of groups g (official kernel)"
        )
    for name in ("D", "delta_bias"):
        if name in given and tuple(given[name].shape) != (d,):
            raise ValueError(f"{name} has shape {tuple(given[name].shape)}, expected (d,) = ({d},)")
    if check_finite:
        for name, x in given.items():
            if not _all_finite(x):
                raise ValueError(f"{name} contains NaN or inf values (shape {tuple(x.shape)})")
    return ScanShapes(b, d, l, n, is_complex, B_groups, C_groups, B_inter, C_inter, backend)


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
    """The compiled CPU kernel if it exists and supports these inputs, else None."""
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
    return cpu.selective_scan_cpu


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
        or devices, or NaN/inf values — the message names the argument and the shapes.

    Notes
    -----
    Which implementation runs:

    * torch CUDA tensors → the fused CuPy kernel :func:`mamba_edu.selective_scan_cupy` (lesson 7)
      when CuPy and a GPU are usable and the inputs suit it (real A, 1 ≤ n ≤ 256, u/delta/z/B/C in
      float32, float16 or bfloat16); otherwise (float64, complex A, no CuPy) the reference below.
    * torch CPU tensors → the compiled numba kernel (``mamba_edu.scans.cpu``, lesson 6) for float32 /
      float64 with a real A, else the readable reference :func:`selective_scan_ref`.
    * numpy → the reference in float64 / complex128, numpy out.

    All of them check the same things and give the same result within float32 rounding.

    Explained in lesson 4.
    """
    args = (u, delta, A, B, C, D, z, delta_bias)
    flags = dict(delta_softplus=bool(delta_softplus), return_last_state=bool(return_last_state))
    if isinstance(u, torch.Tensor) and u.is_cuda:  # the fused CuPy kernel, when it takes these inputs
        cuda = import_module("mamba_edu.scans.cuda")
        if cuda.supports(*args):
            return cuda.selective_scan_cupy(*args, **flags)
    if not isinstance(u, torch.Tensor) and _backend(u) == "numpy":  # lists etc. → numpy
        args = tuple(x if x is None or _backend(x) != "numpy" else np.asarray(x) for x in args)
    shapes = check_selective_scan_inputs(*args)
    if shapes.backend == "cupy":
        raise ValueError("u is a CuPy array: use mamba_edu.selective_scan_cupy for GPU arrays")
    if shapes.backend == "numpy":  # float64 / complex128 reference, numpy out
        result = selective_scan(*map(_to_torch, args), **flags)
        if return_last_state:
            return result[0].numpy(), result[1].numpy()
        return result.numpy()
    kernel = _cpu_kernel(args)
    if kernel is not None:
        return kernel(*args, **flags)
    return selective_scan_ref(*args, **flags)
