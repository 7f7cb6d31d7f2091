"""The result type of every exercise checker."""

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Feedback:
    """Outcome of an exercise check: ``ok`` and a message saying why.

    ``bool(feedback)`` is ``feedback.ok``; the repr shows the message, so a notebook cell
    that ends with ``check_...(answer)`` prints it.
    """

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        return ("✅ Correct. " if self.ok else "❌ Not yet. ") + self.message

    __repr__ = __str__

    @classmethod
    def right(cls, message: str = "") -> "Feedback":
        return cls(True, message)

    @classmethod
    def wrong(cls, message: str) -> "Feedback":
        return cls(False, message)


def checker(func):
    """Decorator for every exercise checker: it keeps the promise "a checker never raises".

    The checker's own code diagnoses the answers it expects; anything it did not foresee (a
    learner's function that returns an odd type, an instructor's odd parameter) becomes
    ``Feedback.wrong`` naming the error and repeating what was expected (the first line of the
    checker's docstring) — never a traceback in the middle of a lesson. ``tests/test_checkers_fuzz.py``
    drives every function named ``check_*`` in the exercise modules with garbage and checks that
    each one carries this decorator.
    """
    expected = ((func.__doc__ or "").strip().splitlines() or [""])[0]

    @functools.wraps(func)
    def checked(*args, **kwargs):
        try:
            result = func(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 -- the promise: feedback, not a crash
            return Feedback.wrong(f"this answer could not be checked ({type(error).__name__}: {error}). "
                                  f"Expected: {expected}")
        if not isinstance(result, Feedback):  # a checker bug: still no silent pass
            return Feedback.wrong(f"the checker gave no verdict. Expected: {expected}")
        return result

    checked.never_raises = True
    return checked


def call(fn, *args, name="your function"):
    """Run the learner's ``fn(*args)``: ``(result, None)``, or ``(None, Feedback.wrong(...))`` if it raised or
    returned None (a forgotten ``return``, or ``print`` instead of ``return``)."""
    if not callable(fn):
        return None, Feedback.wrong(f"pass your function itself, got {type(fn).__name__} {fn!r:.80}")
    try:
        result = fn(*args)
    except Exception as error:  # noqa: BLE001 -- the learner's code may fail in any way
        return None, Feedback.wrong(f"{name} raised {type(error).__name__}: {error}")
    if result is None:
        return None, Feedback.wrong(f"{name} returned None: did it forget `return` (or print instead of return)?")
    return result, None


def numbers(value, what, shape=None, finite=True):
    """``value`` as a float64/complex128 array, or ``(None, Feedback.wrong(...))`` saying why not.

    Rejects None, strings, ragged lists, non-numeric objects and (unless ``finite=False``) NaN/inf;
    with ``shape``, also a different shape. Returns ``(array, None)`` when the value is usable.
    """
    if value is None:
        return None, Feedback.wrong(f"{what} is None: expected numbers" + (f" of shape {shape}" if shape else ""))
    if isinstance(value, (str, bytes)):
        return None, Feedback.wrong(f"{what} is the text {value!r}: expected numbers, not a string")
    try:
        array = np.asarray(value)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise TypeError(f"dtype {array.dtype}")
        array = array.astype(np.complex128 if np.iscomplexobj(array) else np.float64)
    except Exception:  # noqa: BLE001 -- ragged lists, tensors that need grad, odd objects
        return None, Feedback.wrong(f"{what} must be numbers (an array or list of equal-length rows), "
                                    f"got {type(value).__name__} {value!r:.80}")
    if shape is not None and array.shape != tuple(shape):
        return None, Feedback.wrong(f"{what} has shape {array.shape}, expected {tuple(shape)}")
    if finite and not np.all(np.isfinite(array)):
        return None, Feedback.wrong(f"{what} contains NaN or inf: expected finite numbers")
    return array, None


def _not_a_number(value):
    """Booleans in any container (True, [False], a bool array or tensor), times and bytes: not numbers here."""
    if isinstance(value, (bool, np.bool_, bytes, bytearray, memoryview)):
        return True
    dtype = getattr(value, "dtype", None)  # numpy arrays and scalars, torch tensors
    if dtype is not None:
        return str(dtype) == "torch.bool" or getattr(dtype, "kind", None) in ("b", "m", "M")
    if isinstance(value, (list, tuple)):
        try:
            return any(isinstance(x, (bool, np.bool_)) for x in np.asarray(value, dtype=object).ravel())
        except ValueError:  # ragged: numbers() says so
            return False
    return False


def number(value, what):
    """``value`` as one finite real number, or ``(None, Feedback.wrong(...))`` saying why not.

    Accepts a Python or numpy number, or a one-element list, array or tensor; rejects booleans, text,
    several numbers, a complex number (unless its imaginary part is 0), NaN and inf. Returns
    ``(float, None)`` when the value is usable.
    """
    array = None if _not_a_number(value) else numbers(value, what)[0]
    if array is None or array.size != 1 or np.any(array.imag):
        return None, Feedback.wrong(f"{what} must be one real, finite number, got {value!r:.80}")
    return float(array.real.item()), None
