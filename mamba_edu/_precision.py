"""Half precision in, float32 inside, half precision out — and warnings for results that overflowed.

float16 has 11 significant bits and overflows above 65504; bfloat16 keeps float32's range but only 8
bits. Formulas such as ZOH's augmented matrix exponential or a 1000-step recurrence lose everything
in them (NaN, ±inf, or an accumulated error of several percent), and some torch CPU kernels (LU
solves, FFTs) do not exist for them at all. So every public numerical function computes half-precision
tensors in float32 (complex32 in complex64) and casts the results back to the caller's dtype: the
answer is then the float32 answer, rounded once.

The library's functions call :func:`widen` on their array arguments and :func:`narrow` on their
results; :func:`warn_not_finite` is the common "this output overflowed, here is why" warning.
"""

import warnings

from mamba_edu._backend import is_torch, torch_if_any


def half_dtype(*values):
    """The half-precision torch dtype the result would have had, or None.

    The dtypes of the torch tensors among ``values`` are promoted as torch does; the result is that
    dtype if it is float16, bfloat16 or complex32 (mixing float16 with bfloat16 promotes to float32,
    so it is None then).
    """
    torch = torch_if_any(*values)
    if torch is None:
        return None
    dtype = None
    for v in values:
        if is_torch(v):
            dtype = v.dtype if dtype is None else torch.promote_types(dtype, v.dtype)
    return dtype if dtype in (torch.float16, torch.bfloat16, torch.complex32) else None


def widen(*values):
    """The same values with half-precision tensors converted to float32 (complex32 to complex64).

    Everything else (numpy arrays, numbers, float32/64 tensors, None) is returned unchanged.
    """
    torch = torch_if_any(*values)
    if torch is None:
        return values
    out = []
    for v in values:
        if is_torch(v) and v.dtype in (torch.float16, torch.bfloat16):
            v = v.float()
        elif is_torch(v) and v.dtype == torch.complex32:
            v = v.to(torch.complex64)
        out.append(v)
    return tuple(out)


def narrow(result, dtype):
    """Cast a result (a tensor, or a tuple of them) back to the half dtype ``dtype`` (None: unchanged).

    A complex result of a real half dtype stays complex64 (torch has no complex bfloat16).
    """
    if dtype is None:
        return result
    if isinstance(result, tuple):
        return tuple(narrow(r, dtype) for r in result)
    torch = torch_if_any(result)
    if result.is_complex() and not dtype.is_complex:
        return result.to(torch.complex32) if dtype == torch.float16 else result
    return result.to(dtype)


def warn_not_finite(where, what, cause, stacklevel=3):
    """Warn (RuntimeWarning) that ``where``'s output ``what`` overflowed, naming the ``cause``."""
    warnings.warn(f"{where}: {what} is not finite (NaN or inf) although the inputs are: {cause}",
                  RuntimeWarning, stacklevel=stacklevel)
