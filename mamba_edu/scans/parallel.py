"""Parallel scans of the linear recurrence h[t] = a[t]·h[t−1] + b[t].

Explained in lesson 6. Step t of the recurrence is the affine map f_t(h) = a[t]·h + b[t]; the
state after step t is (f_t ∘ … ∘ f_0)(h0). Composing two affine maps gives an affine map, so a
pair (a, b) stands for a whole stretch of steps, and :func:`combine` (first stretch, then second)

    (a₁, b₁) ∘ (a₂, b₂) = (a₁·a₂,  a₂·b₁ + b₂)

is *associative* (but not commutative), with identity (1, 0). Associativity is all a prefix scan
needs: the stretches can be combined in any grouping, e.g. as a tree of depth log₂ l.

The loop and three parallel groupings, each also available as a :class:`ScanTrace` (which slots
combine at each level) for the lesson's explorer:

==================  =================================  ==============================
method              work (number of combines)           depth (levels that must wait)
==================  =================================  ==============================
``sequential``      l − 1                               l − 1
``hillis_steele``   l·⌈log₂ l⌉ − (2^⌈log₂ l⌉ − 1)      ⌈log₂ l⌉
``blelloch``        2(m − 1), m = 2^⌈log₂ l⌉            2·log₂ m
``chunked`` (c)     2l − c − K, K = ⌈l / c⌉            (c − 1) + (K − 1) + 1
==================  =================================  ==============================

(for ``chunked`` the last term is 0 when there is nothing to fix up, e.g. K = 1.)

Glossary: a, b (..., l) decay and input of each step (Mamba: a = exp(Δ·A), b = Δ·B·u);
h (..., l) the states; h0 (...) the state before step 0; l the sequence length.
"""

import math
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from mamba_edu._backend import all_finite, float_tensors, is_torch, positive_int
from mamba_edu._precision import half_dtype, narrow, warn_not_finite, widen
from mamba_edu.scans.sequential import sequential_scan

SCAN_METHODS = ("sequential", "hillis_steele", "blelloch", "chunked")


# ----------------------------------------------------------------------------------------------
# the associative operator
# ----------------------------------------------------------------------------------------------
def combine(first, second):
    """Compose two stretches of the recurrence: apply ``first``, then ``second``.

    (a₁, b₁) ∘ (a₂, b₂) = (a₁·a₂, a₂·b₁ + b₂), because a₂·(a₁·h + b₁) + b₂ = (a₁a₂)·h + (a₂b₁ + b₂).

    Parameters
    ----------
    first, second : tuple (a, b) of arrays, tensors or numbers (broadcastable)
        Each pair is the affine map h ↦ a·h + b of one stretch of steps.

    Returns
    -------
    tuple (a, b)
        The affine map of the two stretches in order. Associative, identity (1, 0), not commutative.

    Explained in lesson 6.
    """
    a1, b1 = first
    a2, b2 = second
    return _times(a1, a2), _times(a2, b1) + b2


def _times(x, y):
    """x·y, and exactly 0 where a factor is 0 — even where the other factor overflowed to inf.

    A stretch of growing steps (|a| > 1) can overflow its product of a's to inf while a later step
    with a = 0 resets the state: the true product is 0, but inf·0 is NaN in floating point, and one
    NaN spreads through the whole tree. The inputs are finite, so an inf here always stands for a
    finite number too large to store, and 0 times it is 0.

    Only those NaNs are replaced: elsewhere x·y is already 0 where a factor is 0, and it keeps its
    gradient (∂(x·y)/∂x = y is not 0 where x = 0, which a mask on every zero factor would lose).
    """
    product = x * y
    if is_torch(product):
        torch = sys.modules["torch"]
        zero_times_inf = product.isnan() & ((x == 0) | (y == 0))
        return torch.where(zero_times_inf, torch.zeros_like(product), product)
    if isinstance(product, np.ndarray):
        zero_times_inf = np.isnan(product) & ((np.asarray(x) == 0) | (np.asarray(y) == 0))
        return np.where(zero_times_inf, 0, product).astype(product.dtype, copy=False)
    return product * 0 if (x == 0 or y == 0) else product


# ----------------------------------------------------------------------------------------------
# small numpy/torch helpers (the algorithms below work on both)
# ----------------------------------------------------------------------------------------------
def _cat(parts):
    if is_torch(parts[0]):
        return sys.modules["torch"].cat(parts, dim=-1)
    return np.concatenate(parts, axis=-1)


def _stack(parts):
    if is_torch(parts[0]):
        return sys.modules["torch"].stack(parts, dim=-1)
    return np.stack(parts, axis=-1)


def _full_like(x, value):
    """An array or tensor like ``x`` filled with ``value`` (not ``x*0 + value``, which is NaN where x is inf)."""
    return (sys.modules["torch"] if is_torch(x) else np).full_like(x, value)


def _pad_identity(a, b, size):
    """Append identity steps (a = 1, b = 0) so the last axis has ``size`` entries; they change nothing."""
    extra = size - a.shape[-1]
    if extra == 0:
        return a, b
    ones = _full_like(a[..., :1], 1)  # same type, dtype, device (and batch shape) as a
    return _cat([a] + [ones] * extra), _cat([b] + [_full_like(b[..., :1], 0)] * extra)


def _blocks(x, size):  # (..., m) -> (..., m/size, size)
    return x.reshape(*x.shape[:-1], x.shape[-1] // size, size)


def _flat(x):  # (..., k, size) -> (..., k·size)
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


# ----------------------------------------------------------------------------------------------
# the algorithms (inputs already checked; h0 already folded into b[..., 0])
# ----------------------------------------------------------------------------------------------
def hillis_steele(a, b):
    """Hillis–Steele inclusive scan: at offset k = 1, 2, 4, …, every slot i ≥ k absorbs slot i − k.

    After the level with offset k, slot i holds the composition of steps max(0, i − 2k + 1) … i.
    ⌈log₂ l⌉ levels (depth), but l − k combines per level: work l·⌈log₂ l⌉ − (2^⌈log₂ l⌉ − 1).

    Parameters
    ----------
    a, b : ndarray or torch.Tensor, shape (..., l)

    Returns
    -------
    h : shape (..., l), the states with h[−1] = 0.

    Explained in lesson 6.
    """
    A, B = a, b
    k = 1
    while k < a.shape[-1]:
        A_new, B_new = combine((A[..., :-k], B[..., :-k]), (A[..., k:], B[..., k:]))  # slot i absorbs i − k
        A, B = _cat([A[..., :k], A_new]), _cat([B[..., :k], B_new])
        k *= 2
    return B


def blelloch(a, b):
    """Blelloch's work-efficient scan: an up-sweep (reduce) tree, then a down-sweep tree.

    The length is padded with identity steps to m = 2^⌈log₂ l⌉. The up-sweep combines pairs
    into a balanced tree (m − 1 combines); the root (the whole sequence) is saved and replaced
    by the identity; the down-sweep hands every node the composition of everything to its left
    (m − 1 combines), which leaves the *exclusive* scan. The inclusive scan (the states) is the
    exclusive one shifted by one slot, with the saved root as the last state.

    Parameters
    ----------
    a, b : ndarray or torch.Tensor, shape (..., l)

    Returns
    -------
    h : shape (..., l), the states with h[−1] = 0.

    Explained in lesson 6.
    """
    l = a.shape[-1]
    m = 1 << (l - 1).bit_length()  # next power of two ≥ l
    A, B = _pad_identity(a, b, m)
    size = 2
    while size <= m:  # up-sweep: in each block of `size`, the right half's last slot absorbs the left half's
        A, B = _blocks(A, size), _blocks(B, size)
        i, j = size // 2 - 1, size - 1
        A_j, B_j = combine((A[..., i], B[..., i]), (A[..., j], B[..., j]))
        A, B = _flat(_cat([A[..., :j], A_j[..., None]])), _flat(_cat([B[..., :j], B_j[..., None]]))
        size *= 2
    total_b = B[..., -1:]  # the root: the whole sequence, h[l − 1]
    A = _cat([A[..., :-1], _full_like(A[..., -1:], 1)])  # root := identity (1, 0)
    B = _cat([B[..., :-1], _full_like(B[..., -1:], 0)])
    size = m
    while size >= 2:  # down-sweep: left child gets the prefix p, right child gets p ∘ (left subtree)
        A, B = _blocks(A, size), _blocks(B, size)
        i, j = size // 2 - 1, size - 1
        A_j, B_j = combine((A[..., j], B[..., j]), (A[..., i], B[..., i]))
        A = _flat(_cat([A[..., :i], A[..., j : j + 1], A[..., i + 1 : j], A_j[..., None]]))
        B = _flat(_cat([B[..., :i], B[..., j : j + 1], B[..., i + 1 : j], B_j[..., None]]))
        size //= 2
    return _cat([B[..., 1:], total_b])[..., :l]  # exclusive → inclusive


def chunked(a, b, chunk_size=None):
    """Two-pass chunked scan, the structure of the GPU kernel: scan chunks, then carry across them.

    Pass 1 scans every chunk of ``chunk_size`` steps from an empty state (all chunks at once);
    pass 2 carries the state from chunk to chunk (K = ⌈l / c⌉ sequential steps); pass 3 applies
    the state entering each chunk to the chunk's own prefixes. Depth ≈ c + K, smallest near
    c = √l; work ≈ 2l.

    Parameters
    ----------
    a, b : ndarray or torch.Tensor, shape (..., l)
    chunk_size : int, optional
        Steps per chunk c (default ⌊√l⌋, at least 1).

    Returns
    -------
    h : shape (..., l), the states with h[−1] = 0.

    Explained in lesson 6.
    """
    l = a.shape[-1]
    c = min(chunk_size or max(1, math.isqrt(l)), l)
    K = -(-l // c)  # number of chunks, ⌈l / c⌉
    A, B = _pad_identity(a, b, K * c)
    A, B = _blocks(A, c), _blocks(B, c)  # (..., K, c)
    # pass 1: every chunk scanned on its own: (A_loc, B_loc)[k, s] = steps kc … kc + s
    prefixes = [(A[..., 0], B[..., 0])]
    for s in range(1, c):
        prefixes.append(combine(prefixes[-1], (A[..., s], B[..., s])))
    A_loc, B_loc = _stack([p[0] for p in prefixes]), _stack([p[1] for p in prefixes])  # (..., K, c)
    # pass 2: the state entering chunk k, h_in[k] = A_loc[k−1, −1]·h_in[k−1] + B_loc[k−1, −1]
    h_in = [_full_like(B_loc[..., 0, 0], 0)]
    for k in range(1, K):
        h_in.append(_times(A_loc[..., k - 1, -1], h_in[-1]) + B_loc[..., k - 1, -1])
    h_in = _stack(h_in)  # (..., K)
    # pass 3: h = A_loc·h_in + B_loc, i.e. combine((·, h_in), (A_loc, B_loc)) for every slot at once
    h = _times(A_loc, h_in[..., None]) + B_loc
    return _flat(h)[..., :l]


# ----------------------------------------------------------------------------------------------
# the public entry point
# ----------------------------------------------------------------------------------------------
def scan(a, b, method="sequential", h0=None, *, chunk_size=None):
    """First-order linear recurrence h[t] = a[t]·h[t−1] + b[t] along the last axis.

    Every method gives the same states (up to rounding); they differ in how the steps are
    grouped, i.e. in work and depth (see the module docstring and :func:`scan_trace`).

    Parameters
    ----------
    a, b : ndarray or torch.Tensor, shape (..., l), broadcastable to each other
        Decay and input of each step, real or complex, **time along the last axis** (a column
        vector (l, 1) is l sequences of length 1: this warns). Numpy (or lists/numbers) in → numpy
        out (float64 or complex128); torch in → torch out (same dtype and device, differentiable;
        float16/bfloat16 are scanned in float32 and cast back). Integers and booleans become floats
        (numpy float64, torch its default dtype); numbers, lists or arrays beside tensors take their dtype.
    method : {"sequential", "hillis_steele", "blelloch", "chunked"}
    h0 : ndarray or torch.Tensor, shape broadcastable to (...), optional
        State before step 0 (default 0).
    chunk_size : int, optional
        Steps per chunk for ``method="chunked"`` (default ⌊√l⌋).

    Returns
    -------
    h : shape (..., l)
        h[..., t] = a[..., t]·h[..., t−1] + b[..., t], with h[..., −1] = h0.

    Raises
    ------
    ValueError
        Unknown method; shapes that do not broadcast or have no time axis; h0 not broadcastable to
        the batch shape; non-numeric or non-finite inputs; tensors on different devices; a bad
        chunk size.

    Warns
    -----
    RuntimeWarning
        States that overflow (|a| > 1 grows geometrically), naming the cause. Where only a parallel
        grouping overflowed (a product of many a's) but the sequential states are finite, those
        states are taken from the sequential scan and the warning says how many.
    UserWarning
        A time axis of length 1 after a longer axis (a column vector).

    Notes
    -----
    Overflow is handled (above); *underflow* is not: where |a| spans more than ~300 orders of
    magnitude in one sequence (e.g. a = [1e200, 1e-122, 1e-196]), a parallel grouping can form a
    product of tiny a's that underflows to a subnormal number (few correct digits) or to 0 while the
    sequential state is still a normal number.

    Examples
    --------
    >>> import numpy as np, mamba_edu as me
    >>> me.scan(np.array([0.5, 0.5, 0.5]), np.array([1.0, 1.0, 1.0]), method="blelloch")
    array([1.  , 1.5 , 1.75])

    Explained in lesson 6.
    """
    if method not in SCAN_METHODS:
        raise ValueError(f"method must be one of {SCAN_METHODS}, got {method!r}")
    if chunk_size is not None:
        if method != "chunked":
            raise ValueError(f"chunk_size applies only to method='chunked', got method={method!r}")
        chunk_size = positive_int("chunk_size", chunk_size)
    half = half_dtype(a, b, h0)  # float16/bfloat16: scanned in float32, cast back at the end
    a, b, h0 = _check_inputs(*widen(a, b, h0))
    if a.shape[-1] == 0:
        return narrow(b * 1, half)  # nothing to scan: an empty (..., 0) result of the right type
    if a.ndim >= 2 and a.shape[-1] == 1 and a.shape[-2] > 1:
        warnings.warn(f"a and b have shape {tuple(a.shape)}: read as {a.shape[-2]} sequences of length 1, because "
                      f"time is the LAST axis. For one sequence of length {a.shape[-2]} pass a[..., 0] and "
                      "b[..., 0] (a column vector x[:, None] is the usual cause).", UserWarning, stacklevel=2)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, with its cause
        if method == "sequential":
            h = sequential_scan(a, b, h0)
        else:
            b_in = b
            if h0 is not None:  # fold the initial state into the first step: b[0] ← a[0]·h0 + b[0]
                b_in = _cat([_times(a[..., :1], h0[..., None]) + b[..., :1], b[..., 1:]])
            if method == "hillis_steele":
                h = hillis_steele(a, b_in)
            elif method == "blelloch":
                h = blelloch(a, b_in)
            else:
                h = chunked(a, b_in, chunk_size)
        if not all_finite(h):
            h = _explain_overflow(h, a, b, h0, method)
    return narrow(h, half)


def _explain_overflow(h, a, b, h0, method):
    """Warn about non-finite states; keep the sequential scan's states where only a grouping overflowed.

    The sequential scan's states are the definition. A parallel grouping also forms products of many
    a's, which can overflow (|a| > 1 over a long stretch) where the states themselves are still finite:
    those states are taken from the sequential scan, and the warning says how many.
    """
    if method != "sequential":
        reference = sequential_scan(a, b, h0)
        lost = ~_isfinite(h) & _isfinite(reference)
        count = int(lost.sum())
        if count:
            h = sys.modules["torch"].where(lost, reference, h) if is_torch(h) else np.where(lost, reference, h)
            warnings.warn(f"scan(method={method!r}): products of a over long stretches overflowed at {count} "
                          "state(s) where the sequential scan is finite (|a| > 1 grows geometrically); those "
                          "states were recomputed sequentially", RuntimeWarning, stacklevel=3)
    bad = ~_isfinite(h)
    if bool(bad.any()):
        first = int(bad.reshape(-1, bad.shape[-1]).any(0).nonzero()[0][0])
        largest = float(abs(a).max())
        cause = (f"|a| is up to {largest:.6g} > 1, an unstable recurrence that grows geometrically"
                 if largest > 1 else "b is so large that the states exceed the largest float of this dtype")
        warn_not_finite(f"scan(method={method!r})", f"h from step {first} on", cause, stacklevel=4)
    return h


def _isfinite(x):
    return x.isfinite() if is_torch(x) else np.isfinite(x)


def _check_inputs(a, b, h0):
    """Validate and broadcast (a, b, h0) to one type, dtype, device and shape (..., l)."""
    names = {"a": a, "b": b} if h0 is None else {"a": a, "b": b, "h0": h0}
    if any(is_torch(v) for v in names.values()):
        names = dict(zip(names, float_tensors(names)))
    else:
        for k, v in names.items():
            arr = np.asarray(v)
            if arr.dtype.kind not in "biufc":
                raise ValueError(f"{k} must be numeric (real or complex), got dtype {arr.dtype}")
            names[k] = arr
        dtype = np.result_type(*[v.dtype for v in names.values()], np.float64)
        names = {k: v.astype(dtype, copy=False) for k, v in names.items()}
    a, b = names["a"], names["b"]
    try:
        shape = np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise ValueError(f"a has shape {tuple(a.shape)} and b has shape {tuple(b.shape)}: they must "
                         "broadcast to one shape (..., l) with time along the last axis") from None
    if len(shape) == 0:
        raise ValueError("a and b are scalars: they need a time axis (shape (..., l), time last)")
    for k, v in names.items():
        finite = np.isfinite(v).all() if isinstance(v, np.ndarray) else bool(v.isfinite().all())
        if not finite:
            raise ValueError(f"{k} contains NaN or inf values; the scan needs finite inputs")
    if isinstance(a, np.ndarray):
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    else:
        a, b = a.expand(shape), b.expand(shape)
    h0 = names.get("h0")
    if h0 is not None:
        batch = shape[:-1]
        try:
            ok = np.broadcast_shapes(tuple(h0.shape), batch) == batch
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"h0 has shape {tuple(h0.shape)}, expected a shape broadcastable to the batch "
                             f"shape {batch} (the shape of a and b without their last, time axis)")
        h0 = np.broadcast_to(h0, batch) if isinstance(h0, np.ndarray) else h0.expand(batch)
    return a, b, h0


# ----------------------------------------------------------------------------------------------
# traces: which slots combine at each level (for the explorer, and to count work and depth)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    """One level of a scan: operations that run at the same time, all reading the values before the level.

    Attributes
    ----------
    phase : str
        What the level does, e.g. ``"offset 4"``, ``"up-sweep"``, ``"pass 2: carry"``.
    combines : tuple of (dst, left, right)
        x[dst] ← x[left] ∘ x[right] (see :func:`combine`).
    copies : tuple of (dst, src)
        x[dst] ← x[src] (Blelloch's down-sweep moves the prefix to the left child).
    clears : tuple of int
        x[dst] ← identity (1, 0) (Blelloch's root, before the down-sweep).
    """

    phase: str
    combines: tuple = ()
    copies: tuple = ()
    clears: tuple = ()


@dataclass(frozen=True)
class ScanTrace:
    """The schedule of a scan over ``l`` steps, level by level.

    Attributes
    ----------
    method : str
    l : int
        Sequence length.
    size : int
        Slots used: l, or the padded power of two m for Blelloch (slots ≥ l hold the identity).
    levels : tuple of Level
    exclusive : bool
        True for Blelloch: after the last level slot i holds steps 0 … i − 1, and the state
        h[i] is slot i + 1 (the last state is the root saved before it was cleared).
    """

    method: str
    l: int
    size: int
    levels: tuple
    exclusive: bool = False

    @property
    def work(self) -> int:
        """Number of combines (copies and clears are free)."""
        return sum(len(level.combines) for level in self.levels)

    @property
    def depth(self) -> int:
        """Number of levels that combine anything (each must wait for the one before)."""
        return sum(1 for level in self.levels if level.combines)

    def coverage(self, levels_done=None):
        """Which steps each slot has combined after the first ``levels_done`` levels.

        Returns a list of ``size`` entries: ``(lo, hi)`` if the slot holds steps lo … hi, or
        ``None`` for the identity (an empty stretch). Raises ``AssertionError`` if a level
        combines stretches that are not adjacent and in order (which would break the scan).
        """
        done = len(self.levels) if levels_done is None else levels_done
        slots = [(i, i) if i < self.l else None for i in range(self.size)]
        for level in self.levels[:done]:
            new = list(slots)
            for dst, left, right in level.combines:
                p, q = slots[left], slots[right]
                assert p is None or q is None or p[1] + 1 == q[0], f"{level.phase}: {p} ∘ {q} is not adjacent"
                new[dst] = q if p is None else p if q is None else (p[0], q[1])
            for dst, src in level.copies:
                new[dst] = slots[src]
            for dst in level.clears:
                new[dst] = None
            slots = new
        return slots


def scan_trace(l, method="hillis_steele", chunk_size=None):
    """The schedule (which slots combine at each level) of ``scan(..., method)`` for length ``l``.

    Parameters
    ----------
    l : int
        Sequence length, ≥ 1.
    method : {"sequential", "hillis_steele", "blelloch", "chunked"}
    chunk_size : int, optional
        For ``"chunked"`` (default ⌊√l⌋, as in :func:`chunked`).

    Returns
    -------
    ScanTrace
        With ``.levels``, ``.work``, ``.depth`` and ``.coverage(k)``.

    Explained in lesson 6.
    """
    l = positive_int("l", l)
    if method not in SCAN_METHODS:
        raise ValueError(f"method must be one of {SCAN_METHODS}, got {method!r}")
    levels = []
    if method == "sequential":
        levels = [Level(f"step {t}", combines=((t, t - 1, t),)) for t in range(1, l)]
        return ScanTrace(method, l, l, tuple(levels))
    if method == "hillis_steele":
        k = 1
        while k < l:
            levels.append(Level(f"offset {k}", combines=tuple((i, i - k, i) for i in range(k, l))))
            k *= 2
        return ScanTrace(method, l, l, tuple(levels))
    if method == "blelloch":
        m = 1 << (l - 1).bit_length()
        size = 2
        while size <= m:
            ops = tuple((j + size - 1, j + size // 2 - 1, j + size - 1) for j in range(0, m, size))
            levels.append(Level(f"up-sweep, blocks of {size}", combines=ops))
            size *= 2
        levels.append(Level("clear root", clears=(m - 1,)))
        size = m
        while size >= 2:
            i, j = size // 2 - 1, size - 1  # left child's last slot, right child's last slot (in a block)
            starts = range(0, m, size)
            levels.append(Level(f"down-sweep, blocks of {size}",
                                combines=tuple((s + j, s + j, s + i) for s in starts),  # right ← p ∘ left
                                copies=tuple((s + i, s + j) for s in starts)))  # left ← p
            size //= 2
        return ScanTrace(method, l, m, tuple(levels), exclusive=True)
    if chunk_size is not None:
        positive_int("chunk_size", chunk_size)
    c = min(int(chunk_size or max(1, math.isqrt(l))), l)
    K = -(-l // c)
    for s in range(1, c):
        ops = tuple((k * c + s, k * c + s - 1, k * c + s) for k in range(K) if k * c + s < l)
        levels.append(Level(f"pass 1: step {s} in every chunk", combines=ops))
    last = [min(k * c + c - 1, l - 1) for k in range(K)]
    for k in range(1, K):
        levels.append(Level(f"pass 2: carry into chunk {k}", combines=((last[k], k * c - 1, last[k]),)))
    fix = tuple((t, k * c - 1, t) for k in range(1, K) for t in range(k * c, last[k]))
    if fix:
        levels.append(Level("pass 3: fix up", combines=fix))
    return ScanTrace(method, l, l, tuple(levels))
