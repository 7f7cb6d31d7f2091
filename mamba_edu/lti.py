"""Continuous-time linear time-invariant (LTI) state space models.  Explained in lesson 1.

    h'(t) = A h(t) + B u(t),        y(t) = C h(t) + D u(t)

with state h (n,), a scalar input u and a scalar output y (single-input single-output).
The solution for h(0) = 0 is a convolution with the matrix exponential,

    h(t) = ∫₀ᵗ exp(A (t − s)) B u(s) ds,     impulse response  K(t) = C exp(A t) B,

so everything here is computed *exactly* from matrix exponentials (no ODE stepping):
through the eigendecomposition A = V Λ V⁻¹ when it is well conditioned, and through
:func:`mamba_edu.discretization.expm` (scipy's ``expm``, kept finite for large t) of an
augmented matrix otherwise (e.g. a defective A such as a Jordan block).
"""

import numpy as np

from mamba_edu._backend import float_array
from mamba_edu.discretization import expm

# eigenvector matrices worse conditioned than this are not trusted (defective or nearly so)
_MAX_EIGVEC_COND = 1e8


def _finite_array(value, name):
    return float_array(value, name, finite=True)


def _time_axis(t, name="t"):
    t = _finite_array(t, name)
    if np.iscomplexobj(t):
        raise ValueError(f"{name} must be real, got complex values")
    if t.ndim != 1:
        raise ValueError(f"{name} must be 1-D (times), got shape {t.shape}")
    return t


class ContinuousSSM:
    """A continuous-time SISO state space model h' = A h + B u, y = C h + D u.

    Parameters
    ----------
    A : array_like, shape (n, n)
        State matrix (a scalar is read as a 1×1 matrix).
    B : array_like, shape (n,) or (n, 1)
        Input vector.
    C : array_like, shape (n,) or (1, n)
        Output vector.
    D : float, default 0.0
        Feed-through (skip) term.

    Examples
    --------
    >>> ssm = ContinuousSSM([[-1.0]], [1.0], [1.0])
    >>> float(ssm.impulse_response([1.0])[0])  # e^{-1}
    0.36787944117144233
    """

    def __init__(self, A, B, C, D=0.0):
        A = _finite_array(A, "A")
        if A.ndim == 0:
            A = A.reshape(1, 1)
        if A.ndim != 2 or A.shape[0] != A.shape[1]:
            raise ValueError(f"A must be a square matrix (n, n), got shape {A.shape}")
        n = A.shape[0]
        B = _finite_array(B, "B")
        if B.shape not in {(n,), (n, 1)} and not (n == 1 and B.ndim == 0):
            raise ValueError(f"B has shape {B.shape}, expected (n,) = ({n},) to match A of shape {A.shape}")
        C = _finite_array(C, "C")
        if C.shape not in {(n,), (1, n)} and not (n == 1 and C.ndim == 0):
            raise ValueError(f"C has shape {C.shape}, expected (n,) = ({n},) to match A of shape {A.shape}")
        D = _finite_array(D, "D")
        if D.size != 1:
            raise ValueError(f"D must be a scalar for a single-input single-output system, got shape {D.shape}")
        self.A, self.B, self.C = A, B.reshape(n), C.reshape(n)
        self.D = D.reshape(()).item()
        self.n = n
        self._modes = None  # cached eigendecomposition, see _modal_form

    def __repr__(self):
        return f"ContinuousSSM(n={self.n}, eigenvalues={np.round(self.eigenvalues, 4).tolist()}, D={self.D})"

    # ---- eigenvalues and stability -------------------------------------------------
    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues λ of A, shape (n,) complex. Each mode behaves like e^{λt}."""
        return np.linalg.eigvals(self.A).astype(np.complex128)

    @property
    def is_stable(self) -> bool:
        """Asymptotically stable ⇔ every eigenvalue has Re λ < 0 (all modes decay)."""
        return bool(np.all(self.eigenvalues.real < 0))

    def _modal_form(self):
        """(λ, r) with C exp(At) B = Σ_k r_k e^{λ_k t}, or None if A is not safely diagonalizable."""
        if self._modes is None:
            lam, V = np.linalg.eig(self.A)
            if np.linalg.cond(V) > _MAX_EIGVEC_COND:
                self._modes = False
            else:
                residues = (self.C @ V) * np.linalg.solve(V, self.B)  # (C V)_k (V⁻¹ B)_k
                self._modes = (lam.astype(np.complex128), residues.astype(np.complex128))
        return self._modes or None

    def _real(self, values):
        """Drop the (round-off) imaginary part when the system itself is real."""
        if np.iscomplexobj(self.A) or np.iscomplexobj(self.B) or np.iscomplexobj(self.C):
            return values
        return values.real

    # ---- time responses --------------------------------------------------------------
    def impulse_response(self, t) -> np.ndarray:
        """K(t) = C exp(A t) B at the times t, shape (len(t),).

        The response to a unit impulse δ(t) without the D·δ(t) term (as in
        ``scipy.signal.impulse``).
        """
        t = _time_axis(t)
        modes = self._modal_form()
        if modes is not None:
            lam, r = modes
            return self._real(np.exp(np.outer(t, lam)) @ r)
        # defective A: exact matrix exponential at every time
        return self._real(expm(self.A[None] * t[:, None, None]) @ self.B @ self.C)

    def step_response(self, t) -> np.ndarray:
        """Response to a unit step u(t) = 1 for t ≥ 0: C A⁻¹(e^{At} − I) B + D, shape (len(t),).

        Computed without inverting A (which may be singular): per mode
        r_k · expm1(λ_k t)/λ_k (→ r_k t as λ_k → 0), or from the augmented exponential
        exp([[A, B], [0, 0]] t), whose top-right block is ∫₀ᵗ e^{As} ds B.
        """
        t = _time_axis(t)
        modes = self._modal_form()
        if modes is not None:
            lam, r = modes
            lt = np.outer(t, lam)  # (len(t), n)
            small = np.abs(lam) < 1e-300
            phi = np.where(small, t[:, None] + 0j, np.expm1(lt) / np.where(small, 1.0, lam))
            return self._real(phi @ r) + self.D
        n = self.n
        M = np.zeros((n + 1, n + 1), dtype=np.result_type(self.A, self.B))
        M[:n, :n], M[:n, n] = self.A, self.B
        integral_B = expm(M[None] * t[:, None, None])[:, :n, n]  # (len(t), n)
        return self._real(integral_B @ self.C) + self.D

    def frequency_response(self, omega) -> np.ndarray:
        """H(iω) = C (iωI − A)⁻¹ B + D at the angular frequencies ω, shape (len(ω),) complex.

        An ω with iω an eigenvalue of A (a pole on the imaginary axis: an integrator at ω = 0, an
        undamped oscillator at its frequency) raises a ValueError that names it.
        """
        omega = _time_axis(omega, "omega")
        eye = np.eye(self.n)
        rhs = np.broadcast_to(self.B, (len(omega), self.n))[..., None]
        try:
            resolvent_B = np.linalg.solve(1j * omega[:, None, None] * eye - self.A, rhs)[..., 0]  # (iωI − A)⁻¹ B
        except np.linalg.LinAlgError:
            at_poles = [float(w) for w in omega if np.linalg.matrix_rank(1j * w * eye - self.A) < self.n]
            raise ValueError(
                f"omega contains {at_poles}, where iω is an eigenvalue of A (eigenvalues "
                f"{np.round(self.eigenvalues, 6).tolist()}): a pole on the imaginary axis, where |H(iω)| is "
                "infinite. Leave those frequencies out of omega"
            ) from None
        return resolvent_B @ self.C + self.D

    def simulate(self, u, t, h0=None, interp="linear", return_state=False):
        """Exact state-space solution for a sampled input u at uniformly spaced times t.

        Between samples the input is taken as linear (``interp="linear"``, first-order hold,
        as ``scipy.signal.lsim``) or constant (``interp="zoh"``). With the step Δ and the
        augmented exponential Φ = exp([[AΔ, BΔ, 0], [0, 0, 1], [0, 0, 0]]):

            h[k+1] = Φ₁₁ h[k] + (Φ₁₂ − Φ₁₃) u[k] + Φ₁₃ u[k+1]       (linear)
            h[k+1] = Φ₁₁ h[k] + Φ₁₂ u[k]                             (zoh)

        Parameters
        ----------
        u : array_like, shape (l,)
            Input samples u(t[k]).
        t : array_like, shape (l,)
            Increasing, uniformly spaced times.
        h0 : array_like, shape (n,), optional
            Initial state h(t[0]); zero by default.
        interp : {"linear", "zoh"}
        return_state : bool
            Also return the states h, shape (l, n).

        Returns
        -------
        y : ndarray, shape (l,)  (and h : ndarray, shape (l, n) if ``return_state``)
        """
        t = _time_axis(t)
        u = _finite_array(u, "u")
        if u.shape != t.shape:
            raise ValueError(f"u has shape {u.shape}, expected the shape of t {t.shape}")
        if interp not in ("linear", "zoh"):
            raise ValueError(f"interp must be 'linear' or 'zoh', got {interp!r}")
        n, l = self.n, len(t)
        h = np.zeros((l, n), dtype=np.result_type(self.A, self.B, u, 0.0))
        if h0 is not None:
            h0 = _finite_array(h0, "h0")
            if h0.shape != (n,):
                raise ValueError(f"h0 has shape {h0.shape}, expected (n,) = ({n},)")
            h = h.astype(np.result_type(h, h0))
            h[0] = h0
        if l > 1:
            steps = np.diff(t)
            delta = steps[0]
            if delta <= 0 or not np.allclose(steps, delta, rtol=1e-6, atol=0):
                raise ValueError(
                    f"t must be increasing and uniformly spaced, got steps from {steps.min()} to {steps.max()}"
                )
            M = np.zeros((n + 2, n + 2), dtype=np.result_type(self.A, self.B))
            M[:n, :n], M[:n, n], M[n, n + 1] = self.A * delta, self.B * delta, 1.0
            Phi = expm(M)
            A_bar, B_0, B_1 = Phi[:n, :n], Phi[:n, n], Phi[:n, n + 1]
            if interp == "zoh":
                drive = np.outer(u[:-1], B_0)
            else:
                drive = np.outer(u[:-1], B_0 - B_1) + np.outer(u[1:], B_1)
            for k in range(l - 1):  # the recurrence itself is sequential (lesson 6 parallelises it)
                h[k + 1] = A_bar @ h[k] + drive[k]
        y = self._real(h @ self.C) + self.D * u
        if np.isrealobj(self.A) and np.isrealobj(u) and np.isrealobj(self.B) and np.isrealobj(self.C):
            y = np.real(y)
        return (y, h) if return_state else y


def oscillator(alpha, beta) -> ContinuousSSM:
    """The 2-state system with the conjugate eigenvalue pair α ± iβ (lesson 1's explorer).

    A = [[α, −β], [β, α]], B = [1, 0], C = [1, 0], so that

        h(t) = e^{αt} [cos βt, sin βt],     K(t) = C e^{At} B = e^{αt} cos βt.
    """
    return ContinuousSSM([[alpha, -beta], [beta, alpha]], [1.0, 0.0], [1.0, 0.0])
