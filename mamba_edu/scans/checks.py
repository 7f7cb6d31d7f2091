"""Argument checks shared by every implementation: the selective scan (lesson 4) and SSD (lesson 8).

The torch reference (:mod:`mamba_edu.scans.selective`), the compiled CPU kernel (:mod:`mamba_edu.scans.cpu`), the
CuPy kernel (:mod:`mamba_edu.scans.cuda`) and the numpy emulation (:mod:`mamba_edu.scans.emulate`) all accept and
reject the same inputs because they call the one checker here. Shapes (the official ``selective_scan_fn`` layout):
u, delta, z (b, d, l); A (d, n) real or complex; B, C (b, n, l), (b, g, n, l) or (d, n) — or, with complex A, real
with last dimension 2l (interleaved re, im); D, delta_bias (d,).

This module imports neither torch nor CuPy: it recognises their arrays by the module that defines them, so the
kernels can use it without importing the torch reference.
"""

from typing import NamedTuple

import numpy as np

from mamba_edu._backend import all_finite, is_complex, is_torch, one_kind, positive_int

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


def _is_float_or_complex(x):
    if is_torch(x):
        return x.is_floating_point() or x.is_complex()
    return np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.complexfloating)


def _check_BC(name, X, b, d, l, n, A_complex):
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
    if is_complex(X) and not A_complex:
        raise ValueError(f"{name} is complex ({X.dtype}) but A is real: use a complex A or a real {name}")
    interleaved = A_complex and not is_complex(X) and X.shape[-1] == 2 * l
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
    kind_u, given = one_kind(args, ("u", "delta", "A", "B", "C"))
    for name in given:
        if not _is_float_or_complex(given[name]):
            raise ValueError(f"{name} has dtype {given[name].dtype}, expected a floating-point dtype")
    if kind_u == "torch":
        for name, x in given.items():
            if x.device != u.device:
                raise ValueError(f"{name} is on {x.device} but u is on {u.device}: use one device")
    for name in ("u", "delta", "z", "D", "delta_bias"):
        if name in given and is_complex(given[name]):
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
    A_complex = is_complex(A)
    B_groups, B_inter = _check_BC("B", B, b, d, l, n, A_complex)
    C_groups, C_inter = _check_BC("C", C, b, d, l, n, A_complex)
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
            if not all_finite(x):
                raise ValueError(f"{name} contains NaN or inf values (shape {tuple(x.shape)})")
    return ScanShapes(b, d, l, n, A_complex, B_groups, C_groups, B_inter, C_inter, kind_u)


# ---------------------------------------------------------------- Mamba-2 SSD (lesson 8)
SSD_METHODS = ("sequential", "quadratic", "chunked")


def check_ssd_inputs(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, method):
    """Check the arguments of :func:`mamba_edu.ssd_scan` at the public boundary; return the array kind.

    Shared by the array-generic code (:mod:`mamba_edu.scans.ssd`) and the CUDA kernels
    (:mod:`mamba_edu.scans.ssd_cuda`). Explained in lesson 8.
    """
    args = dict(x=x, dt=dt, A=A, B=B, C=C, D=D, z=z, dt_bias=dt_bias, initial_states=initial_states)
    kind, given = one_kind(args, ("x", "dt", "A", "B", "C"))
    for name, v in given.items():
        floating = v.is_floating_point() if kind == "torch" else np.issubdtype(v.dtype, np.floating)
        if not floating:
            raise ValueError(f"{name} has dtype {v.dtype}, expected a real floating-point dtype")
        if kind == "torch" and v.device != x.device:
            raise ValueError(f"{name} is on {v.device} but x is on {x.device}: use one device")
    if method not in SSD_METHODS:
        raise ValueError(f"method must be one of {SSD_METHODS}, got {method!r}")
    positive_int("chunk_size", chunk_size)

    if x.ndim != 4 or min(x.shape) < 1:
        raise ValueError(f"x has shape {tuple(x.shape)}, expected (b, l, h, p) with every size ≥ 1")
    b, l, h, p = (int(s) for s in x.shape)
    if tuple(dt.shape) != (b, l, h):
        raise ValueError(f"dt has shape {tuple(dt.shape)}, expected (b, l, h) = {(b, l, h)} to match x")
    if tuple(A.shape) != (h,):
        raise ValueError(f"A has shape {tuple(A.shape)}, expected (h,) = ({h},): one scalar per head")
    if B.ndim != 4 or tuple(B.shape[:2]) != (b, l) or min(B.shape) < 1:
        raise ValueError(f"B has shape {tuple(B.shape)}, expected (b, l, g, n) with (b, l) = {(b, l)}")
    g, n = int(B.shape[2]), int(B.shape[3])
    if h % g != 0:
        raise ValueError(f"B has g = {g} groups, which does not divide h = {h} heads (B shape {tuple(B.shape)})")
    if tuple(C.shape) != (b, l, g, n):
        raise ValueError(f"C has shape {tuple(C.shape)}, expected (b, l, g, n) = {(b, l, g, n)} like B")
    if D is not None and tuple(D.shape) not in ((h,), (h, p)):
        raise ValueError(f"D has shape {tuple(D.shape)}, expected (h,) = ({h},) or (h, p) = {(h, p)}")
    if z is not None and tuple(z.shape) != (b, l, h, p):
        raise ValueError(f"z has shape {tuple(z.shape)}, expected (b, l, h, p) = {(b, l, h, p)} like x")
    if dt_bias is not None and tuple(dt_bias.shape) != (h,):
        raise ValueError(f"dt_bias has shape {tuple(dt_bias.shape)}, expected (h,) = ({h},)")
    if initial_states is not None and tuple(initial_states.shape) != (b, h, p, n):
        raise ValueError(
            f"initial_states has shape {tuple(initial_states.shape)}, expected (b, h, p, n) = {(b, h, p, n)}"
        )
    on_cpu = kind == "numpy" or (kind == "torch" and x.device.type == "cpu")
    if on_cpu:  # a finiteness scan on a GPU would force a synchronisation: skipped there
        for name, v in given.items():
            if not all_finite(v.detach() if kind == "torch" else v):
                raise ValueError(f"{name} contains NaN or inf values (shape {tuple(v.shape)})")
        A_max = float(A.detach().max() if kind == "torch" else A.max())
        if A_max > 0:
            raise ValueError(f"A must be ≤ 0 (a decaying state; Mamba-2 uses A = −exp(A_log)), got max {A_max}")
    return kind
