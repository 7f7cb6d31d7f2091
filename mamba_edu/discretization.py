"""From continuous time to a recurrence: discretizing h'(t) = A h(t) + B u(t) with a step Δ.

Explained in lesson 2. Every rule turns the ODE into ``h[k] = A_bar h[k-1] + B_bar u[k]``:

==================  =============================  ================================
method              A_bar                          B_bar
==================  =============================  ================================
``"zoh"``           exp(ΔA)                        (∫₀^Δ exp(τA) dτ) B = A⁻¹(exp(ΔA) − I) B
``"bilinear"``      (I − ΔA/2)⁻¹ (I + ΔA/2)        (I − ΔA/2)⁻¹ ΔB
``"euler"``         I + ΔA                         ΔB
``"backward_euler"`` (I − ΔA)⁻¹                    (I − ΔA)⁻¹ ΔB
``"mamba"``         exp(ΔA)                        ΔB
==================  =============================  ================================

ZOH ("zero-order hold") is exact when ``u`` is constant over each step. Mamba keeps ZOH's
exact ``A_bar`` but simplifies ``B_bar`` to ``ΔB`` (an O(Δ²) approximation of ZOH's B̄);
it does *not* use the bilinear transform.

Two functions:

* :func:`discretize` — dense ``A`` (n, n), as in a textbook or ``scipy.signal.cont2discrete``;
* :func:`discretize_diag` — diagonal ``A`` given by its eigenvalues, elementwise and
  broadcasting (Mamba's shapes: ``A`` (d, 1, n) with ``delta`` (b, d, l, 1) → (b, d, l, n)).

Both take numpy arrays (→ float64/complex128 out) or torch tensors (→ same dtype/device out,
differentiable in ``A``, ``B`` and ``delta``).
"""

import warnings

import numpy as np

from mamba_edu._backend import all_finite, float_tensors, is_complex, torch_if_any
from mamba_edu._precision import half_dtype, narrow, warn_not_finite, widen

METHODS = ("zoh", "bilinear", "euler", "backward_euler", "mamba")

# Below this |w|, phi1(w) = expm1(w)/w is evaluated by its Taylor series (error < |w|^4/120 < 1e-18).
_SERIES_BELOW = 1e-4


# ----------------------------------------------------------------------------------------------
# input handling (numpy or torch)
# ----------------------------------------------------------------------------------------------
def _as_arrays(A, B, delta):
    """Convert (A, B, delta) to one backend; return them and the module (numpy or torch).

    numpy: A and B float64, or complex128 if A or B is complex; delta float64.
    torch: :func:`mamba_edu._backend.float_tensors`'s one dtype and device, delta in the matching
    real dtype.
    """
    torch = torch_if_any(A, B, delta)
    if torch is None:
        A, B, delta = (np.asarray(v) for v in (A, B, delta))
        for name, a in (("A", A), ("B", B), ("delta", delta)):
            if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
                raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
        if np.iscomplexobj(delta):
            raise ValueError(f"delta must be real, got dtype {delta.dtype}")
        dtype = np.complex128 if np.iscomplexobj(A) or np.iscomplexobj(B) else np.float64
        return (A.astype(dtype), B.astype(dtype), delta.astype(np.float64)), np

    if is_complex(delta):
        raise ValueError("delta must be real, got complex values")
    A, B, delta = float_tensors({"A": A, "B": B, "delta": delta})
    return (A, B, delta.real), torch  # one dtype (complex for all if A or B is), delta its real part


def _check_method(method):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(map(repr, METHODS))}")


def _check_finite(name, a, xp):
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name} must be finite, got non-finite values (NaN or inf) in {name}")


def _check_delta(delta, xp):
    if not bool(xp.all(xp.isfinite(delta))):
        raise ValueError("delta must be positive and finite, got non-finite values (NaN or inf)")
    if delta.numel() if xp is not np else delta.size:
        smallest = float(delta.min()) if xp is np else float(delta.detach().min())
        if smallest <= 0:
            raise ValueError(f"delta must be positive, got min {smallest}")


def _shape(a):
    return tuple(a.shape)


def _full(xp, shape, value, like):
    if xp is np:
        return np.full(shape, value, dtype=like.dtype)
    return xp.full(tuple(shape), value, dtype=like.dtype, device=like.device)


def _eye(xp, n, like):
    if xp is np:
        return np.eye(n, dtype=like.dtype)
    return xp.eye(n, dtype=like.dtype, device=like.device)


# ----------------------------------------------------------------------------------------------
# diagonal A: everything is elementwise
# ----------------------------------------------------------------------------------------------
def phi1(w):
    """phi1(w) = (exp(w) − 1) / w, with phi1(0) = 1, accurate for every w (real or complex).

    ZOH's B̄ for one eigenvalue λ is ``Δ · phi1(Δλ) · B``. Computing ``(exp(w) − 1) / w``
    directly loses all digits as w → 0 (exp(w) ≈ 1 cancels, see :func:`zoh_B_bar_naive`);
    ``expm1`` avoids that cancellation, and the Taylor series 1 + w/2 + w²/6 + w³/24 is used for
    |w| < 1e-4 so that w = 0 and the gradient there are exact too.

    Parameters
    ----------
    w : ndarray or torch.Tensor, any shape
        w = Δ·λ (the notation of docs/notation.md; z is reserved for the gate).

    Returns
    -------
    ndarray or torch.Tensor, same shape as ``w``.

    Explained in lesson 2.
    """
    half = half_dtype(w)  # float16/bfloat16: computed in float32, cast back
    (w,) = widen(w)
    xp = torch_if_any(w) or np
    small = xp.abs(w) < _SERIES_BELOW
    w_safe = xp.where(small, xp.ones_like(w), w)  # keeps the unused branch finite (and its gradient)
    series = 1 + w * (1 / 2 + w * (1 / 6 + w / 24))
    return narrow(xp.where(small, series, xp.expm1(w_safe) / w_safe), half)


def zoh_B_bar_naive(A, B, delta):
    """ZOH's B̄ = (exp(ΔA) − 1)/A · B written the obvious way — *unstable* as ΔA → 0.

    Kept to show what goes wrong: for ΔA = −1e−9, exp(ΔA) − 1 subtracts two numbers that agree
    in ~9 of their 16 digits, so B̄ keeps only ~7 correct digits, and at A = 0 it is 0/0 = NaN.
    Use :func:`discretize_diag` (which calls :func:`phi1`) instead.

    Explained in lesson 2.
    """
    half = half_dtype(A, B, delta)  # float16/bfloat16: computed in float32 (naive, but not *more* naive)
    A, B, delta = widen(A, B, delta)
    xp = torch_if_any(A, B, delta) or np
    with np.errstate(divide="ignore", invalid="ignore"):
        return narrow((xp.exp(delta * A) - 1) / A * B, half)


def discretize_diag(A, B, delta, method="zoh"):
    """Discretize a diagonal SSM, one eigenvalue at a time (elementwise, broadcasting).

    With ``z = Δλ``:

    ==================  ====================  ==========================
    method              A_bar                 B_bar
    ==================  ====================  ==========================
    ``"zoh"``           exp(z)                Δ · phi1(z) · B = (exp(z) − 1)/λ · B
    ``"bilinear"``      (1 + z/2)/(1 − z/2)   Δ B / (1 − z/2)
    ``"euler"``         1 + z                 Δ B
    ``"backward_euler"`` 1/(1 − z)            Δ B / (1 − z)
    ``"mamba"``         exp(z)                Δ B
    ==================  ====================  ==========================

    ZOH's B̄ uses ``expm1`` (:func:`phi1`): exact at λ = 0 (B̄ = ΔB) and accurate at λ = −1e−9.

    Parameters
    ----------
    A : array_like or torch.Tensor
        Eigenvalues λ of the diagonal state matrix, real or complex, e.g. (n,) or Mamba's (d, 1, n).
    B : array_like or torch.Tensor
        Input weights, broadcastable with ``A * delta`` (a scalar, (n,), or e.g. (b, d, l, n)).
    delta : array_like or torch.Tensor
        Step size(s) Δ > 0, broadcastable with ``A`` (a scalar, or e.g. Mamba's (b, d, l, 1)).
        Elementwise like numpy: ``delta`` (l,) with ``A`` (n,) pairs Δ_k with λ_k when l = n (this
        warns); for every step with every eigenvalue pass ``delta[:, None]`` → (l, n).
    method : {"zoh", "bilinear", "euler", "backward_euler", "mamba"}

    Returns
    -------
    A_bar : shape ``broadcast(A, delta)``, e.g. (b, d, l, n)
    B_bar : shape ``broadcast(A, B, delta)``
        numpy float64/complex128, or torch tensors with the inputs' dtype and device
        (float16/bfloat16 are computed in float32 and cast back).

    Raises
    ------
    ValueError
        ``delta`` not positive and finite; ``A`` or ``B`` not finite; shapes that do not
        broadcast (all three shapes are named); an unknown ``method``; a pole of the rational
        rules (1 − Δλ/2 = 0 for bilinear, 1 − Δλ = 0 for backward Euler).

    Examples
    --------
    >>> import numpy as np
    >>> A_bar, B_bar = discretize_diag(np.array([-1.0, 0.0]), 1.0, 0.1)
    >>> np.round(A_bar, 6), np.round(B_bar, 6)
    (array([0.904837, 1.      ]), array([0.095163, 0.1     ]))

    Explained in lesson 2.
    """
    _check_method(method)
    half = half_dtype(A, B, delta)  # float16/bfloat16 in: computed in float32, cast back at the end
    (A, B, delta), xp = _as_arrays(*widen(A, B, delta))
    _check_delta(delta, xp)
    _check_finite("A", A, xp)
    _check_finite("B", B, xp)
    if A.ndim == 1 and delta.ndim == 1 and A.shape[0] > 1 and delta.shape[0] == A.shape[0]:
        warnings.warn(
            f"delta and A both have shape ({A.shape[0]},): each delta[k] is paired with A[k] (elementwise). "
            "For every step size with every eigenvalue, (l, n), pass delta[:, None]; to pair them on purpose "
            "without this warning, pass both as (k, 1).", UserWarning, stacklevel=2)
    try:
        shape_Ad = np.broadcast_shapes(_shape(A), _shape(delta))
        shape_out = np.broadcast_shapes(shape_Ad, _shape(B))
    except ValueError:
        raise ValueError(
            f"A has shape {_shape(A)}, B has shape {_shape(B)} and delta has shape {_shape(delta)}: "
            "expected shapes that broadcast together (e.g. A (d, 1, n), delta (b, d, l, 1), B (b, 1, l, n))"
        ) from None

    z = delta * A  # (..., n): Δλ for every step and eigenvalue
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, with its cause
        A_bar, B_bar = _diag_rule(z, B, delta, method, xp)
    if _shape(B_bar) != tuple(shape_out):  # e.g. "mamba" with B (n,) and A (d, n): B_bar is (d, n) too
        B_bar = B_bar * _full(xp, shape_out, 1, like=B_bar)
    if not (all_finite(A_bar) and all_finite(B_bar)):
        largest = float(z.real.max()) if xp is np else float(z.detach().real.max())
        warn_not_finite("discretize_diag", "A_bar or B_bar",
                        f"the largest Re(delta*A) is {largest:.4g}; an unstable eigenvalue (Re A > 0) times a "
                        "large delta overflows exp(delta*A)")
    return narrow((A_bar, B_bar), half)


def _diag_rule(z, B, delta, method, xp):
    """(A_bar, B_bar) of one rule from z = Δλ (the table of :func:`discretize_diag`)."""
    if method == "zoh":
        A_bar, B_bar = xp.exp(z), delta * phi1(z) * B
    elif method == "mamba":
        A_bar, B_bar = xp.exp(z), delta * B
    elif method == "euler":
        A_bar, B_bar = 1 + z, delta * B
    else:  # the two implicit rules divide by 1 − αz
        alpha = 0.5 if method == "bilinear" else 1.0
        denom = 1 - alpha * z
        if bool(xp.any(denom == 0)):
            raise ValueError(
                f"{method} has a pole at delta*A = {1 / alpha}: 1 - {alpha}*delta*A is zero for some entries"
            )
        A_bar = (1 + (1 - alpha) * z) / denom
        B_bar = delta * B / denom
    return A_bar, B_bar


# ----------------------------------------------------------------------------------------------
# dense A: matrix exponential and linear solves
# ----------------------------------------------------------------------------------------------
_EXPM_NORM_MAX = 2.0**64  # scipy's expm returns NaN from about ||M|| = 1e35 (its estimates of ||M^k|| overflow)


def expm(M, xp=np):
    """exp(M) of a matrix (n, n) or a stack of them (..., n, n). For numpy, scipy's expm on M / 2^s,
    then s squarings, for each matrix with ||M||_1 > 2^64.

    A stable A times a huge Δ (say Δ = 1e100) has a tame exp(ΔA) — it tends to 0 — but scipy returns NaN
    there; scaling first and squaring here (what scipy does inside, without its overflowing estimates)
    gives the limit. torch's matrix_exp needs no help. Also used by :class:`mamba_edu.lti.ContinuousSSM`
    for exp(At) at large t.
    """
    if xp is not np:
        return xp.linalg.matrix_exp(M)
    import scipy.linalg

    norm = np.abs(M).sum(axis=-2).max(axis=-1, initial=0.0)  # ||M||_1 of each matrix: (...)
    norm = np.where(np.isfinite(norm), np.maximum(norm, _EXPM_NORM_MAX), _EXPM_NORM_MAX)
    squarings = np.ceil(np.log2(norm / _EXPM_NORM_MAX)).astype(int)  # 0 up to 2^64
    E = scipy.linalg.expm(M / 2.0 ** squarings[..., None, None])
    with np.errstate(over="ignore", invalid="ignore"):  # an unstable A overflows: the callers warn
        for s in range(int(squarings.max(initial=0))):
            E = np.where((s < squarings)[..., None, None], E @ E, E)
    return E


def _solve(M, R, xp, method):
    """M⁻¹ R, with a ValueError (not a LinAlgError) where M is singular."""
    if xp is np:
        try:
            return np.linalg.solve(M, R)
        except np.linalg.LinAlgError:
            pass
    else:
        solution, info = xp.linalg.solve_ex(M, R)
        if int(info) == 0:
            return solution
    lhs, pole = ("I - delta*A/2", 2) if method == "bilinear" else ("I - delta*A", 1)
    raise ValueError(f"{method}: {lhs} is singular (delta*A has an eigenvalue at {pole})")


def discretize(A, B, delta, method="zoh"):
    """Discretize a dense continuous-time SSM h'(t) = A h(t) + B u(t) with step Δ.

    ==================  =============================  ================================
    method              A_bar                          B_bar
    ==================  =============================  ================================
    ``"zoh"``           exp(ΔA)                        ∫₀^Δ exp(τA) dτ · B
    ``"bilinear"``      (I − ΔA/2)⁻¹ (I + ΔA/2)        (I − ΔA/2)⁻¹ ΔB
    ``"euler"``         I + ΔA                         ΔB
    ``"backward_euler"`` (I − ΔA)⁻¹                    (I − ΔA)⁻¹ ΔB
    ``"mamba"``         exp(ΔA)                        ΔB
    ==================  =============================  ================================

    ZOH uses the augmented-matrix exponential (Van Loan's trick)::

        expm(Δ [[A, B],      [[A_bar, B_bar],
                [0, 0]])  =   [0,     I    ]]

    so it needs no A⁻¹ and works for singular A (e.g. an integrator, A = 0).
    The results equal ``scipy.signal.cont2discrete`` with methods ``"zoh"``, ``"bilinear"``,
    ``"euler"`` and ``"backward_diff"`` (scipy's bilinear also transforms C and D; here C is
    left unchanged, the convention of S4).

    Parameters
    ----------
    A : array_like or torch.Tensor, shape (n, n)
    B : array_like or torch.Tensor, shape (n,) or (n, m)
    delta : float or 0-d array/tensor
        Step size Δ > 0.
    method : {"zoh", "bilinear", "euler", "backward_euler", "mamba"}

    Returns
    -------
    A_bar : shape (n, n)
    B_bar : shape of ``B``
        numpy float64/complex128, or torch tensors with the inputs' dtype and device
        (differentiable in ``A``, ``B`` and ``delta``).

    Raises
    ------
    ValueError
        ``delta`` not a positive finite scalar; ``A`` not square; ``B`` not (n,) or (n, m);
        non-finite ``A`` or ``B``; unknown ``method``; a singular I − ΔA/2 (bilinear) or
        I − ΔA (backward Euler).

    Explained in lesson 2.
    """
    _check_method(method)
    half = half_dtype(A, B, delta)  # float16/bfloat16 in: computed in float32, cast back at the end
    (A, B, delta), xp = _as_arrays(*widen(A, B, delta))
    _check_delta(delta, xp)
    if delta.ndim != 0:
        raise ValueError(f"delta has shape {_shape(delta)}, expected a scalar (discretize_diag takes many)")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A has shape {_shape(A)}, expected a square matrix (n, n)")
    n = A.shape[0]
    if B.ndim not in (1, 2) or B.shape[0] != n:
        raise ValueError(f"B has shape {_shape(B)}, expected (n,) or (n, m) with n = {n} from A {_shape(A)}")
    _check_finite("A", A, xp)
    _check_finite("B", B, xp)

    B2 = B.reshape(n, 1) if B.ndim == 1 else B  # (n, m) (reshape(n, -1) fails for n = 0)
    m = B2.shape[1]
    eye = _eye(xp, n, like=A)
    if method in ("zoh", "mamba"):
        if method == "zoh":
            # (n + m, n + m) augmented matrix [[A, B], [0, 0]]
            zeros = _full(xp, (m, n + m), 0, like=A)
            top = xp.concatenate([A, B2], axis=1) if xp is np else xp.cat([A, B2], dim=1)
            M = xp.concatenate([top, zeros], axis=0) if xp is np else xp.cat([top, zeros], dim=0)
            E = expm(delta * M, xp)
            A_bar, B_bar = E[:n, :n], E[:n, n:]
        else:
            A_bar, B_bar = expm(delta * A, xp), delta * B2
    elif method == "euler":
        A_bar, B_bar = eye + delta * A, delta * B2
    else:
        alpha = 0.5 if method == "bilinear" else 1.0
        lhs = eye - alpha * delta * A
        A_bar = _solve(lhs, eye + (1 - alpha) * delta * A, xp, method)
        B_bar = _solve(lhs, delta * B2, xp, method)
    if not (all_finite(A_bar) and all_finite(B_bar)):
        eig = np.linalg.eigvals(A if xp is np else A.detach().cpu().numpy())
        growth = float(delta) * eig.real.max()
        cause = ("an unstable A (an eigenvalue with Re > 0) times a large delta overflows exp(delta*A)" if growth > 0
                 else f"no eigenvalue of A has Re > 0, but delta * A or delta * B exceeds the range of {A.dtype}")
        warn_not_finite("discretize", "A_bar or B_bar", f"delta * max Re(eigenvalue of A) = {growth:.4g}; {cause}")
    return narrow((A_bar, B_bar.reshape(B.shape)), half)


# ----------------------------------------------------------------------------------------------
# how good is a rule? the step response of one mode, discrete vs exact
# ----------------------------------------------------------------------------------------------
def step_response_error(lam, delta, method, t_end=8.0):
    """Largest error of a discretized mode on a unit step, over 0 < t ≤ ``t_end``.

    The mode h'(t) = λ h(t) + u(t), h(0) = 0, driven by u(t) = 1 for t > 0, has the exact
    solution h(t) = (e^{λt} − 1)/λ = t·phi1(λt). The recurrence h_k = Ā h_{k−1} + B̄ u_k
    (h_0 = 0, u_k = 1 for k ≥ 1) should give h_k ≈ h(kΔ). The input is constant, exactly what
    ZOH assumes, so ZOH's error is round-off; the other rules show their order p
    (error ∝ Δ^p, see :func:`error_order`).

    Parameters
    ----------
    lam : complex
        The eigenvalue λ.
    delta : float or array_like, shape (k,)
        Step size(s) Δ > 0.
    method : str
        A method of :func:`discretize_diag`.
    t_end : float
        Horizon; ``floor(t_end / Δ)`` steps are taken (at least one).

    Returns
    -------
    float or ndarray, shape (k,)
        max_k |h_k − h(kΔ)| for each Δ (``inf`` where the recurrence overflows).

    Explained in lesson 2.
    """
    deltas = np.atleast_1d(np.asarray(delta, dtype=float))
    errors = np.empty(deltas.shape)
    lam = complex(lam)
    for i, dt in enumerate(deltas):
        A_bar, B_bar = discretize_diag(lam, 1.0, dt, method)
        steps = max(1, int(np.floor(t_end / dt + 1e-9)))
        t = dt * np.arange(1, steps + 1)  # (steps,)
        with np.errstate(over="ignore", invalid="ignore"):
            h = B_bar * np.cumsum(A_bar ** np.arange(steps))  # h_k = Σ_{j<k} Ā^j B̄
            err = np.abs(h - t * phi1(lam * t)).max()
        errors[i] = err if np.isfinite(err) else np.inf
    return errors if np.ndim(delta) else float(errors[0])


def error_order(deltas, errors):
    """Slope of log(error) against log(Δ): the observed order p in error ∝ Δ^p.

    Parameters
    ----------
    deltas, errors : array_like, shape (k,)
        Positive step sizes and their (finite, positive) errors, k ≥ 2.

    Returns
    -------
    float
        The least-squares slope on log–log axes.

    Explained in lesson 2.
    """
    deltas, errors = np.asarray(deltas, dtype=float), np.asarray(errors, dtype=float)
    if deltas.shape != errors.shape or deltas.ndim != 1 or deltas.size < 2:
        raise ValueError(f"deltas has shape {deltas.shape}, errors {errors.shape}: expected (k,), k ≥ 2")
    if not (np.all(deltas > 0) and np.all(errors > 0) and np.all(np.isfinite(errors))):
        raise ValueError("deltas and errors must be positive and finite to take logarithms")
    return float(np.polyfit(np.log(deltas), np.log(errors), 1)[0])
