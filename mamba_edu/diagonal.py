"""Diagonal (complex) state matrices: the S4D initialisations, HiPPO-LegS and conjugate pairs.

Explained in lesson 3.

When A is diagonal, A = diag(λ_0, …, λ_{n−1}), every state coordinate is its own
one-dimensional system  h_m'(t) = λ_m h_m(t) + B_m u(t): the modes never mix, a step costs
O(n) instead of O(n²), and A is stored as the vector of its eigenvalues λ (shape (n,)).

A complex eigenvalue λ = α + iβ gives the mode e^{λt} = e^{αt}(cos βt + i sin βt): a
decaying oscillation with decay rate α < 0 and angular frequency β. A *real* system with
such a mode always also has its conjugate λ̄ (with conjugate B and C), so S4D stores only one
of each pair and takes twice the real part of the output (:func:`conjugate_pairs`).

Conventions (those of the S4D paper and its official code): the three S4D initialisations
return ``n`` eigenvalues, one of each conjugate pair, i.e. a real state of size N = 2n for
the complex ones. Mamba's default is the *real* :func:`s4d_real` (``A = -exp(A_log)``,
``A_log = log(1..n)``); complex A is an option of its kernel, not its default.
"""

import numpy as np

from mamba_edu._backend import positive_int
from mamba_edu.convolution import lti_scan, ssm_kernel, transfer_function
from mamba_edu.discretization import discretize_diag


def _state_size(n) -> int:
    return positive_int("n", n, "the state size")


def s4d_lin(n) -> np.ndarray:
    """S4D-Lin: λ_k = −½ + iπk, k = 0..n−1.

    One decay rate (½) for every mode and linearly spaced frequencies πk, like a Fourier
    basis that is slowly forgotten.

    Parameters
    ----------
    n : int
        Number of complex modes (one of each conjugate pair; real state size 2n).

    Returns
    -------
    A : ndarray, shape (n,), complex128
        The diagonal of A (its eigenvalues).

    Explained in lesson 3.
    """
    k = np.arange(_state_size(n))
    return -0.5 + 1j * np.pi * k


def s4d_inv(n) -> np.ndarray:
    """S4D-Inv: λ_k = −½ + i (N/π)(N/(2k+1) − 1), k = 0..n−1, with N = 2n.

    The imaginary parts follow the asymptotics of the eigenvalues of HiPPO-LegS's normal
    part (frequencies ∝ 1/(2k+1)). N is the *real* state size, 2n, as in the S4D paper and
    its official code (``1/pi * N * (N/(1+2*arange(N//2)) - 1)``). Writing the formula
    with n instead of N would make the imaginary parts negative for k > (n−1)/2.

    Parameters
    ----------
    n : int
        Number of complex modes (one of each conjugate pair; real state size N = 2n).

    Returns
    -------
    A : ndarray, shape (n,), complex128
        The diagonal of A, imaginary parts positive and decreasing.

    Explained in lesson 3.
    """
    k = np.arange(_state_size(n))
    N = 2 * len(k)
    return -0.5 + 1j * (N / np.pi) * (N / (2 * k + 1) - 1)


def s4d_real(n) -> np.ndarray:
    """S4D-Real: λ_k = −(k+1), k = 0..n−1 — Mamba's default A.

    Real, distinct decay rates 1, 2, …, n (the eigenvalues of HiPPO-LegS). Mamba stores
    ``A_log = log(k+1)`` and uses ``A = −exp(A_log)``, which is this vector.

    Parameters
    ----------
    n : int
        State size (``d_state``).

    Returns
    -------
    A : ndarray, shape (n,), float64

    Explained in lesson 3.
    """
    return -(np.arange(_state_size(n)) + 1.0)


def hippo_legs(n) -> np.ndarray:
    """The dense HiPPO-LegS matrix, signed so that it is stable (eigenvalues −1, …, −n).

        A[i, j] = −√(2i+1)·√(2j+1)   if i > j
                  −(i+1)              if i = j
                  0                   if i < j

    It is lower triangular, so its eigenvalues are its diagonal −1, −2, …, −n (the origin
    of :func:`s4d_real`). Adding P Pᵀ with P_i = √(i+½) gives −½ I plus a skew-symmetric
    matrix, whose eigenvalues −½ ± iω are what :func:`s4d_inv` approximates.

    Parameters
    ----------
    n : int
        State size.

    Returns
    -------
    A : ndarray, shape (n, n), float64

    Explained in lesson 3.
    """
    i = np.arange(_state_size(n))
    r = np.sqrt(2 * i + 1.0)
    below = i[:, None] > i[None, :]
    return np.where(below, -np.outer(r, r), 0.0) - np.diag(i + 1.0)


def _half_system(A, B, C):
    A, B, C = (np.asarray(v) for v in (A, B, C))
    for name, v in (("A", A), ("B", B), ("C", C)):
        if v.ndim != 1:
            raise ValueError(f"{name} has shape {v.shape}, expected (n,): one value per complex mode")
        if not np.issubdtype(v.dtype, np.number):
            raise ValueError(f"{name} must be numeric, got dtype {v.dtype}")
    if not A.shape == B.shape == C.shape:
        raise ValueError(f"A, B, C have shapes {A.shape}, {B.shape}, {C.shape}, expected the same (n,)")
    return A.astype(np.complex128), B.astype(np.complex128), C.astype(np.complex128)


def conjugate_pairs(A, B, C):
    """The full diagonal system of a half-spectrum one: append the complex conjugates.

    **The conjugate-pair rule.** A diagonal SSM with modes (λ_m, B_m, C_m), m < n, and the
    same modes conjugated (λ̄_m, B̄_m, C̄_m) produces, for a real input u, the real output

        y_full = y_half + conj(y_half) = 2·Re(y_half),

    because each conjugated mode's state is the conjugate of the original's. So S4D (and
    Mamba's complex option) keep one of each pair and output 2·Re(y). This holds before
    and after discretization (exp(Δλ̄) = conj(exp(Δλ))), so the helper applies to either.

    Parameters
    ----------
    A, B, C : array_like, shape (n,)
        Eigenvalues (or Ā), input and output coefficients of the kept modes.

    Returns
    -------
    A_full, B_full, C_full : ndarray, shape (2n,), complex128
        ``[A, conj(A)]`` etc.; see :func:`real_block_form` for the same system in real form.

    Explained in lesson 3.
    """
    A, B, C = _half_system(A, B, C)
    return tuple(np.concatenate([v, v.conj()]) for v in (A, B, C))


def real_block_form(A, B, C):
    """The real (2n)-state system whose output equals 2·Re of the half-spectrum system's.

    Writing a mode's state as h = p + iq with λ = α + iβ, B = b_r + i b_i, C = c_r + i c_i:

        [p, q]' = [[α, −β], [β, α]] [p, q] + [b_r, b_i] u,     2·Re(C h) = 2 c_r p − 2 c_i q,

    so A becomes block diagonal with 2×2 rotation-and-decay blocks — a real matrix with the
    eigenvalues λ and λ̄ (lesson 1's oscillator, once per mode).

    Parameters
    ----------
    A, B, C : array_like, shape (n,)
        Continuous (or discretized) eigenvalues, input and output coefficients of the kept modes.

    Returns
    -------
    A_real : ndarray, shape (2n, 2n), float64
        Block diagonal; block m acts on the coordinates (2m, 2m+1).
    B_real, C_real : ndarray, shape (2n,), float64

    Explained in lesson 3.
    """
    A, B, C = _half_system(A, B, C)
    n = len(A)
    A_real = np.zeros((2 * n, 2 * n))
    m = np.arange(n)
    A_real[2 * m, 2 * m] = A_real[2 * m + 1, 2 * m + 1] = A.real
    A_real[2 * m, 2 * m + 1] = -A.imag
    A_real[2 * m + 1, 2 * m] = A.imag
    B_real = np.stack([B.real, B.imag], axis=1).reshape(2 * n)
    C_real = np.stack([2 * C.real, -2 * C.imag], axis=1).reshape(2 * n)
    return A_real, B_real, C_real


# ----------------------------------------------------------------------------------------------
# one mode and whole initialisations, as lesson 3's figures show them (B = C = 1, ZOH)
# ----------------------------------------------------------------------------------------------
INITS = {"S4D-Lin": s4d_lin, "S4D-Inv": s4d_inv, "S4D-Real": s4d_real}


def mode_response(alpha, beta, delta, L):
    """Normalised real impulse response of the pair λ = α ± iβ (α = Re λ, β = Im λ), and its envelope.

    Explained in lesson 3.

    Returns
    -------
    t : ndarray, shape (L,)
        Times Δ·k.
    response : ndarray, shape (L,)
        2·Re(K_k) / (2|B̄|) with K_k = Ā^k B̄ (B = C = 1, ZOH): e^{Re λ·Δk} cos(Im λ·Δk + φ).
    envelope : ndarray, shape (L,)
        e^{Re λ·Δk} = |Ā|^k.
    """
    A_bar, B_bar = discretize_diag(np.array([complex(alpha, beta)]), np.ones(1), delta)
    K = ssm_kernel(A_bar, B_bar, np.ones(1), L)  # (L,) one of the pair
    t = delta * np.arange(L)
    return t, K.real / np.abs(B_bar[0]), np.exp(alpha * t)


def mode_frequency_response(alpha, beta, delta, omega):
    """|H(e^{iω})| of the real system with the pair λ, λ̄ (B = C = 1, ZOH), normalised to max 1.

    With Re λ = 0 the pole Ā = e^{iβΔ} lies on the unit circle: where some ω hits it (β = 0 at ω = 0)
    |H| is infinite, and the normalised response is its limit as Re λ → 0⁻: 1 at that ω, 0 elsewhere.
    """
    A_bar, B_bar = discretize_diag(np.array([complex(alpha, beta)]), np.ones(1), delta)
    with np.errstate(divide="ignore", invalid="ignore"):
        H = np.abs(transfer_function(*conjugate_pairs(A_bar, B_bar, np.ones(1)), omega))
    at_pole = ~np.isfinite(H)
    if at_pole.any():
        return at_pole.astype(float)
    return H / H.max()


def _init(init, n):
    if init not in INITS:
        raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
    return INITS[init](n)


def state_decay(init, n, delta, L):
    """|h_k| / |h_0| for every mode of ``init`` after a unit impulse, shape (n, L)."""
    A_bar, B_bar = discretize_diag(_init(init, n), np.ones(n), delta)
    u = np.zeros(L)
    u[0] = 1.0
    _, h = lti_scan(A_bar, B_bar, np.ones(n), u, return_states=True)  # h: (L, n)
    return (np.abs(h) / np.abs(h[:1])).T


def init_kernel(init, n, delta, L):
    """The real kernel of an S4D init with B = C = 1 (2·Re for the complex ones), max |K| = 1."""
    A = _init(init, n)
    A_bar, B_bar = discretize_diag(A, np.ones(n), delta)
    K = ssm_kernel(A_bar, B_bar, np.ones(n), L)
    K = 2 * K.real if np.iscomplexobj(A) else K
    return K / np.max(np.abs(K))
