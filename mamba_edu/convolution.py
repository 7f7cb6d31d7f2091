"""One time-invariant SSM, two views: a recurrence (RNN) and a convolution (CNN).

Explained in lesson 3.

Unrolling the discrete recurrence  h_k = Ā h_{k−1} + B̄ u_k,  y_k = C h_k  (h_{−1} = 0) gives

    y_k = Σ_{j=0..k} C Ā^j B̄ · u_{k−j} = (K * u)_k,       K[j] = C Ā^j B̄,

so the same model is a scan over time (:func:`lti_scan`, O(l·n), sequential) or a causal
convolution with the kernel K (:func:`ssm_kernel` then :func:`causal_conv`, O(l log l) by
FFT, parallel). The equivalence needs Ā, B̄, C to be the same at every step: once Δ, B, C
depend on the input (Mamba, lesson 4) there is no single kernel K and only the scan remains.

Shapes. Ā is *diagonal* when it has as many dimensions as B̄ (its eigenvalues, (..., n)) and
*dense* when it has one more ((..., n, n)); B̄ and C are (..., n) and u is (..., l). Leading
dimensions (e.g. channels d) broadcast. Numpy in → numpy out (float64/complex128); torch in
→ torch out (same dtype and device, differentiable).
"""

import warnings

import numpy as np

from mamba_edu._backend import all_finite, float_array, float_tensors, positive_int, torch_if_any
from mamba_edu._precision import half_dtype, narrow, warn_not_finite, widen


# ---- numpy / torch plumbing ----------------------------------------------------------
def _arrays(names, values):
    """Convert to one library: numpy float64/complex128 (each value), or torch tensors of one dtype on one device."""
    torch = torch_if_any(*values)
    if torch is not None:
        return torch, float_tensors(dict(zip(names, values)))
    return np, [float_array(v, name) for name, v in zip(names, values)]


def _is_complex(xp, a) -> bool:
    return a.is_complex() if xp is not np else np.iscomplexobj(a)


def _check_finite(xp, name, a):
    if not bool(xp.all(xp.isfinite(a))):
        raise ValueError(f"{name} must be finite, got non-finite entries")


def _system(xp, A_bar, B_bar, C):
    """Validate (Ā, B̄, C), already converted by :func:`_arrays`; return (dense, n)."""
    if B_bar.ndim == 0 or C.ndim == 0:
        shapes = f"{tuple(B_bar.shape)} and {tuple(C.shape)}"
        raise ValueError(f"B_bar and C must have shape (..., n), got {shapes}")
    n = B_bar.shape[-1]
    if C.shape[-1] != n:
        raise ValueError(f"C has shape {tuple(C.shape)}, expected (..., n) with n = {n} like B_bar")
    if A_bar.ndim == B_bar.ndim:
        dense = False
        expected = f"(..., n) = (..., {n})"
        ok = A_bar.shape[-1] == n
    elif A_bar.ndim == B_bar.ndim + 1:
        dense = True
        expected = f"(..., n, n) = (..., {n}, {n})"
        ok = A_bar.shape[-2:] == (n, n)
    else:
        ok, expected = False, f"(..., n) (diagonal) or (..., n, n) (dense) with n = {n}"
    if not ok:
        raise ValueError(
            f"A_bar has shape {tuple(A_bar.shape)}, expected {expected} "
            f"for B_bar of shape {tuple(B_bar.shape)}: "
            "a diagonal A_bar has as many dimensions as B_bar, a dense (square) one has one more"
        )
    for name, a in (("A_bar", A_bar), ("B_bar", B_bar), ("C", C)):
        _check_finite(xp, name, a)
    return dense, n


def _batch_shape(*shapes):
    try:
        return tuple(np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        shapes = [tuple(s) for s in shapes]
        raise ValueError(f"leading (batch/channel) dimensions {shapes} do not broadcast") from None


# ---- the convolutional view -------------------------------------------------------------
def ssm_kernel(A_bar, B_bar, C, L):
    """The SSM convolution kernel K[k] = C·Ā^k·B̄ for k = 0..L−1.

    For diagonal Ā this is a Vandermonde product, without a loop over k:

        K[k] = Σ_m C_m B̄_m Ā_m^k   →   K = V (C ⊙ B̄),   V[k, m] = Ā_m^k.

    For dense Ā it is the Krylov sequence B̄, ĀB̄, Ā²B̄, … (a loop of L matrix-vector products).

    Parameters
    ----------
    A_bar : array_like, shape (..., n) diagonal or (..., n, n) dense
        Discretized state matrix (its eigenvalues when diagonal).
    B_bar, C : array_like, shape (..., n)
        Discretized input and output vectors.
    L : int
        Kernel length (≥ 1).

    Returns
    -------
    K : ndarray or Tensor, shape (..., L)
        Complex when any input is complex (keep one of each conjugate pair and take
        2·Re(K) for the real kernel, see :func:`mamba_edu.diagonal.conjugate_pairs`).

    Explained in lesson 3.
    """
    L = positive_int("L", L, "the kernel length")
    half = half_dtype(A_bar, B_bar, C)  # float16/bfloat16: computed in float32, cast back
    xp, (A_bar, B_bar, C) = _arrays(("A_bar", "B_bar", "C"), widen(A_bar, B_bar, C))
    dense, n = _system(xp, A_bar, B_bar, C)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, with its cause
        if not dense:
            _batch_shape(A_bar.shape[:-1], B_bar.shape[:-1], C.shape[:-1])
            k = xp.arange(L) if xp is np else xp.arange(L, device=A_bar.device)
            V = A_bar[..., None, :] ** k[:, None]  # (..., L, n) Vandermonde matrix Ā_m^k
            K = (V @ (C * B_bar)[..., :, None])[..., 0]  # (..., L)
        else:
            batch = _batch_shape(A_bar.shape[:-2], B_bar.shape[:-1], C.shape[:-1])
            v = np.broadcast_to(B_bar, batch + (n,)) if xp is np else B_bar.expand(batch + (n,))  # Ā^0 B̄
            K = []
            for _ in range(L):
                K.append((C * v).sum(-1))
                v = (A_bar @ v[..., :, None])[..., 0]  # Ā^{k+1} B̄
            K = xp.stack(K, -1)  # (..., L)
    if not all_finite(K):
        warn_not_finite("ssm_kernel", "K", _growth(xp, A_bar, dense, L))
    return narrow(K, half)


def _growth(xp, A_bar, dense, steps):
    """Why a kernel or scan overflowed: the largest |eigenvalue of Ā| raised to the number of steps."""
    A = A_bar if xp is np else A_bar.detach().cpu().numpy()
    radius = float(np.abs(np.linalg.eigvals(A) if dense else A).max())
    if radius > 1:
        return (f"the largest |eigenvalue of A_bar| is {radius:.6g} > 1, an unstable system: "
                f"its state grows like {radius:.4g}^k over {steps} steps")
    return (f"the system is stable (largest |eigenvalue of A_bar| {radius:.6g} ≤ 1), but the inputs are so "
            "large that the sums exceed the largest float of this dtype")


def causal_conv(u, K):
    """Causal convolution y_k = Σ_{j=0..k} K[j]·u_{k−j}, computed with the FFT.

    Both sequences are zero-padded to a length ≥ l + L − 1 (a power of two), so the FFT's
    *circular* convolution equals the linear one on the first l outputs — without the
    padding the tail of the kernel would wrap around and leak the future into the past.

    Parameters
    ----------
    u : array_like, shape (..., l)
        Input sequence, time along the last axis.
    K : array_like, shape (..., L)
        Kernel (e.g. from :func:`ssm_kernel`); entries beyond l are never used.

    Returns
    -------
    y : ndarray or Tensor, shape (..., l)
        Real when both u and K are real, complex otherwise.

    Explained in lesson 3.
    """
    half = half_dtype(u, K)  # float16/bfloat16: computed in float32 (torch has no half FFT on the CPU)
    xp, (u, K) = _arrays(("u", "K"), widen(u, K))
    if u.ndim == 0 or u.shape[-1] == 0:
        raise ValueError(f"u has shape {tuple(u.shape)}, expected (..., l) with l ≥ 1")
    if K.ndim == 0 or K.shape[-1] == 0:
        raise ValueError(f"K has shape {tuple(K.shape)}, expected (..., L) with L ≥ 1")
    _batch_shape(u.shape[:-1], K.shape[:-1])
    _check_finite(xp, "u", u)
    _check_finite(xp, "K", K)
    l = u.shape[-1]
    K = K[..., :l]
    n_fft = 1 << (l + K.shape[-1] - 2).bit_length()  # smallest power of two ≥ l + L − 1
    if _is_complex(xp, u) or _is_complex(xp, K):
        y = xp.fft.ifft(xp.fft.fft(u, n=n_fft) * xp.fft.fft(K, n=n_fft), n=n_fft)
    else:
        y = xp.fft.irfft(xp.fft.rfft(u, n=n_fft) * xp.fft.rfft(K, n=n_fft), n=n_fft)
    y = y[..., :l]
    if not all_finite(y):
        warn_not_finite("causal_conv", "y", "the sums of K[j]·u[k−j] exceed the largest float")
    return narrow(y, half)


# ---- the recurrent view -----------------------------------------------------------------
def lti_scan(A_bar, B_bar, C, u, return_states=False):
    """Run the recurrence h_k = Ā h_{k−1} + B̄ u_k, y_k = C h_k from h_{−1} = 0.

    The recurrent (RNN) view: one O(n) step per token for diagonal Ā (O(n²) for dense),
    constant memory, naturally causal. Lesson 6 parallelises this loop.

    Parameters
    ----------
    A_bar : array_like, shape (..., n) diagonal or (..., n, n) dense
    B_bar, C : array_like, shape (..., n)
    u : array_like, shape (..., l)
        Input sequence, **time along the last axis**; its leading dimensions broadcast with the
        system's. A column vector of shape (l, 1) is l sequences of length 1 (this warns: pass
        ``u[:, 0]``).
    return_states : bool, default False
        Also return every state h_k.

    Returns
    -------
    y : ndarray or Tensor, shape (..., l)
    h : ndarray or Tensor, shape (..., l, n)
        Only when ``return_states``.

    Explained in lesson 3.
    """
    half = half_dtype(A_bar, B_bar, C, u)  # float16/bfloat16: computed in float32, cast back
    xp, (A_bar, B_bar, C, u) = _arrays(("A_bar", "B_bar", "C", "u"), widen(A_bar, B_bar, C, u))
    dense, n = _system(xp, A_bar, B_bar, C)
    if u.ndim == 0 or u.shape[-1] == 0:
        raise ValueError(f"u has shape {tuple(u.shape)}, expected (..., l) with l ≥ 1")
    _check_finite(xp, "u", u)
    if u.ndim >= 2 and u.shape[-1] == 1 and u.shape[-2] > 1:
        warnings.warn(
            f"u has shape {tuple(u.shape)}: read as {u.shape[-2]} sequences of length 1, because time is the "
            f"LAST axis. For one sequence of length {u.shape[-2]} pass u[..., 0] (a column vector u[:, None] "
            "is the usual cause).", UserWarning, stacklevel=2)
    A_batch = A_bar.shape[:-2] if dense else A_bar.shape[:-1]
    batch = _batch_shape(A_batch, B_bar.shape[:-1], C.shape[:-1], u.shape[:-1])
    if xp is np:
        h = np.zeros(batch + (n,), dtype=np.result_type(A_bar, B_bar, C, u))
    else:  # the tensors share one dtype and device
        h = xp.zeros(batch + (n,), dtype=u.dtype, device=u.device)
    ys, hs = [], []
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, with its cause
        for k in range(u.shape[-1]):
            step = (A_bar @ h[..., :, None])[..., 0] if dense else A_bar * h
            h = step + B_bar * u[..., k, None]  # (..., n)
            ys.append((C * h).sum(-1))
            if return_states:
                hs.append(h)
    y = xp.stack(ys, -1)  # (..., l)
    if not all_finite(y):
        warn_not_finite("lti_scan", "y", _growth(xp, A_bar, dense, u.shape[-1]))
    return narrow((y, xp.stack(hs, -2)), half) if return_states else narrow(y, half)


def transfer_function(A_bar, B_bar, C, omega):
    """Frequency response H(e^{iω}) = Σ_k K[k] e^{−iωk} = C (I − Ā e^{−iω})⁻¹ B̄.

    For diagonal Ā it is a sum of one-pole terms C_m B̄_m / (1 − Ā_m e^{−iω}): a mode
    Ā = e^{Δ(α+iβ)} resonates at ω = βΔ radians per sample, the sharper the smaller |α|Δ.

    Parameters
    ----------
    A_bar : array_like, shape (n,) diagonal or (n, n) dense
    B_bar, C : array_like, shape (n,)
    omega : array_like, shape (f,)
        Angular frequencies in radians per sample (π is the Nyquist frequency).

    Returns
    -------
    H : ndarray, shape (f,), complex128
        For a half-spectrum system take H(ω) + conj(H(−ω)) for the full real one.

    Explained in lesson 3.
    """
    _, (A_bar, B_bar, C) = _arrays(("A_bar", "B_bar", "C"), [np.asarray(v) for v in (A_bar, B_bar, C)])
    dense, n = _system(np, A_bar, B_bar, C)
    if B_bar.ndim != 1 or C.ndim != 1:
        raise ValueError(f"B_bar and C must have shape (n,), got {B_bar.shape} and {C.shape}")
    omega = np.asarray(omega, dtype=np.float64)
    if omega.ndim != 1:
        raise ValueError(f"omega has shape {omega.shape}, expected (f,)")
    z_inv = np.exp(-1j * omega)  # (f,)
    if not dense:
        return (C * B_bar / (1 - A_bar * z_inv[:, None])).sum(-1)
    eye = np.eye(n)
    rhs = np.broadcast_to(B_bar, (len(omega), n))[..., None]  # (f, n, 1)
    resolvent_B = np.linalg.solve(eye - A_bar * z_inv[:, None, None], rhs)
    return resolvent_B[..., 0] @ C
