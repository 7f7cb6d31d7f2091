"""The one helper layer under the numerics: which array library an input belongs to, conversions, checks.

Every module that accepts numpy arrays, torch tensors (and, for the GPU scan, CuPy arrays) asks here instead of
writing its own test. Nothing here imports torch or CuPy just to ask: a torch tensor is recognised by the modules
that define its type and its bases, and torch is only used once the caller has passed a tensor (so it is already
imported).
Public functions check their inputs once, at the boundary; the helpers below are what they check with.
"""

import functools
import sys

import numpy as np


def backend(x) -> str:
    """``"torch"``, ``"cupy"`` or ``"numpy"`` (anything else — lists, numbers — counts as numpy).

    Read from the modules that define ``x``'s type and its bases, so that a subclass defined elsewhere
    (of ``torch.Tensor``, say) belongs to its library too.
    """
    for cls in type(x).__mro__:
        root = cls.__module__.split(".")[0]
        if root in ("torch", "cupy"):
            return root
    return "numpy"


def one_kind(args, required):
    """Check a dict of named arguments (None = not given): the ``required`` names are given, and every given
    one is an array of one kind, the kind of the first required name. Returns ``(kind, given)``; a
    ``ValueError`` names the culprit."""
    for name in required:
        if args[name] is None:
            raise ValueError(f"{name} is required, got None")
    given = {k: v for k, v in args.items() if v is not None}
    first = required[0]
    kind = backend(given[first])
    for name, value in given.items():
        if backend(value) != kind:
            raise ValueError(f"{name} is a {backend(value)} array but {first} is a {kind} array: "
                             "pass one kind of array")
        if not hasattr(value, "shape") or not hasattr(value, "dtype"):
            raise ValueError(f"{name} must be an array, got {type(value).__name__}")
    return kind, given


def is_torch(x) -> bool:
    """True for a torch tensor (never imports torch)."""
    return backend(x) == "torch"


def torch_if_any(*values):
    """The torch module if any value is a torch tensor, else None (never imports torch itself)."""
    return sys.modules["torch"] if any(is_torch(v) for v in values) else None


def is_complex(x) -> bool:
    """Complex dtype, for a numpy/CuPy array or a torch tensor."""
    return x.is_complex() if is_torch(x) else bool(np.iscomplexobj(x))


def all_finite(x) -> bool:
    """No NaN or inf anywhere in ``x`` (numpy, torch or CuPy; one pass, and a sync on a GPU)."""
    kind = backend(x)
    if kind == "torch":
        return bool(sys.modules["torch"].isfinite(x).all())
    if kind == "cupy":
        return bool(sys.modules["cupy"].isfinite(x).all())
    return bool(np.isfinite(x).all())


def float_array(value, name, finite=False) -> np.ndarray:
    """``value`` as a numpy float64 (or complex128 if complex) array; ``ValueError`` naming ``name`` otherwise.

    Booleans and integers become float64; strings, objects and (with ``finite``) NaN/inf are refused.
    """
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.complex128 if np.iscomplexobj(arr) else np.float64)
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {np.count_nonzero(~np.isfinite(arr))} non-finite entries")
    return arr


def float_tensors(named) -> list:
    """The torch counterpart of :func:`float_array`: named values, at least one a torch tensor, as tensors
    of one dtype on one device (a list, in the order of ``named``).

    The one rule of every public function that takes tensors (lessons 2, 3 and 6):

    * dtype: promoted as torch promotes tensors. Tensors, numpy arrays and lists with at least one
      dimension take part (a float64 numpy array beside a float32 tensor gives float64; a list of Python
      floats counts as float32, as ``torch.tensor`` makes it); numbers and 0-d values do not widen the
      result (as Python numbers in torch). Integers and booleans become torch's default float dtype (as
      numpy inputs become float64); complex if any value is complex (at least complex64).
    * device: the tensors' one device.

    ``ValueError`` naming the argument: a non-numeric value, tensors on different devices. Half
    precision is :mod:`mamba_edu._precision`'s (callers widen first).
    """
    torch = torch_if_any(*named.values())
    tensors = {name: v for name, v in named.items() if is_torch(v)}
    devices = {v.device for v in tensors.values()}
    if len(devices) > 1:
        where = ", ".join(f"{name} on {v.device}" for name, v in tensors.items())
        raise ValueError(f"the tensors must be on one device, got {where}")
    device = devices.pop()
    out, dtypes = [], [v.dtype for v in tensors.values()]
    for name, v in named.items():
        if not is_torch(v):
            arr = np.asarray(v)
            if arr.dtype.kind not in "biufc":
                raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
            if isinstance(v, np.ndarray) or arr.ndim == 0:
                v = torch.as_tensor(arr if arr.ndim == 0 else np.ascontiguousarray(arr), device=device)  # any strides
            else:  # a list or tuple: the dtype torch.tensor gives it
                v = torch.as_tensor(v, device=device)
            if v.dim() >= 1:
                dtypes.append(v.dtype)
        out.append(v)
    dtype = functools.reduce(torch.promote_types, dtypes)
    if not (dtype.is_floating_point or dtype.is_complex):
        dtype = torch.get_default_dtype()  # integers and booleans
    if any(v.is_complex() for v in out) and not dtype.is_complex:
        dtype = torch.complex64 if dtype in (torch.float16, torch.bfloat16) else dtype.to_complex()
    return [v.to(dtype) for v in out]


def positive_int(name, value, meaning=None) -> int:
    """``value`` as an int ≥ 1 (a bool is not an int here); ``ValueError`` naming ``name`` and ``meaning``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        what = f" ({meaning})" if meaning else ""
        raise ValueError(f"{name} must be a positive integer{what}, got {value!r}")
    return int(value)


@functools.cache
def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA GPU (never raises; asked once per process)."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False
