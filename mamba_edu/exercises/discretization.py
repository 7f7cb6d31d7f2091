"""Exercise checkers for lesson 2 (discretization). Each returns a Feedback and never raises for a wrong answer."""

import math

import numpy as np

from mamba_edu.discretization import discretize_diag
from mamba_edu.exercises.feedback import Feedback, call, checker, number


def _close(a, b, rtol=1e-6):
    return abs(a - b) <= rtol * max(abs(b), 1e-300)


def _digits_close(value, want, digits):
    """``value`` agrees with ``want`` to ``digits`` significant digits (within one unit of the last one).

    One unit, not half: a truncated answer (4.60 for 4.605…) is as right as a rounded one.
    """
    unit = 10.0 ** (math.floor(math.log10(abs(want))) - digits + 1) if want != 0 else 10.0 ** -digits
    return abs(value - want) <= unit * (1 + 1e-9)


@checker
def check_zoh_by_hand(answer, lam=-2.0, delta=0.5) -> Feedback:
    """Exercise 1: ``answer = (A_bar, B_bar)`` for h' = λh + u (B = 1) under ZOH with step Δ (6 digits)."""
    if isinstance(answer, np.ndarray) and answer.shape == (2,):
        answer = tuple(answer)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return Feedback.wrong(f"answer with a pair (A_bar, B_bar), got {answer!r:.80}")
    (A_bar, bad_A), (B_bar, bad_B) = number(answer[0], "A_bar"), number(answer[1], "B_bar")
    if bad_A is not None or bad_B is not None:
        return bad_A if bad_A is not None else bad_B
    z = lam * delta
    want_A, want_B = math.exp(z), math.expm1(z) / lam
    if _digits_close(A_bar, want_A, 6) and _digits_close(B_bar, want_B, 6):  # the text asks for 6 digits
        return Feedback.right(f"Ā = e^{{λΔ}} = {want_A:.6f}, B̄ = (e^{{λΔ}} − 1)/λ = {want_B:.6f}.")
    msgs = []
    if _close(A_bar, 1 + z):
        msgs.append(f"Ā = 1 + λΔ = {1 + z:g} is forward Euler; ZOH solves the ODE exactly: Ā = e^{{λΔ}}")
    elif not _digits_close(A_bar, want_A, 6):
        msgs.append(f"Ā = {A_bar:.6g} is off; over one step with u = 0 the state is multiplied by e^{{λΔ}}")
    if _close(B_bar, delta):
        msgs.append("B̄ = ΔB is Mamba's simplification; ZOH integrates e^{λτ} over the step: B̄ = ∫₀^Δ e^{λτ} dτ · B")
    elif _close(B_bar, -want_B):
        msgs.append("B̄ has the wrong sign: ∫₀^Δ e^{λτ} dτ = (e^{λΔ} − 1)/λ is positive")
    elif not _digits_close(B_bar, want_B, 6):
        msgs.append(f"B̄ = {B_bar:.6g} is off; B̄ = ∫₀^Δ e^{{λτ}} dτ · B")
    return Feedback.wrong("; ".join(msgs) + ".")


@checker
def check_euler_max_delta(answer, lam=-1.0 + 2.0j) -> Feedback:
    """Exercise 2: the largest Δ for which forward Euler's Ā = 1 + λΔ stays on or inside the unit circle."""
    value, bad = number(answer, "Δ")
    if bad is not None:
        return bad
    alpha = lam.real
    want = -2 * alpha / abs(lam) ** 2
    if _close(value, want):
        return Feedback.right(
            f"|1 + λΔ|² = (1 + αΔ)² + (βΔ)² ≤ 1 ⇔ Δ ≤ −2α/|λ|² = {want:.4g}. ZOH's e^{{λΔ}} is inside for every Δ."
        )
    if value <= 0:
        return Feedback.wrong(f"Δ is a positive step size, got {value}")
    if _close(value, -2 / alpha):
        return Feedback.wrong(
            f"Δ = 2/|α| = {value:.4g} is right only for real λ; the imaginary part pushes 1 + λΔ outward: "
            "expand |1 + λΔ|² = (1 + αΔ)² + (βΔ)²"
        )
    side = "outside" if abs(1 + lam * value) > 1 else "still inside (so it is not the largest)"
    return Feedback.wrong(f"at Δ = {value:.4g}, |1 + λΔ| = {abs(1 + lam * value):.4f}: {side}. Solve |1 + λΔ| = 1.")


@checker
def check_stable_zoh(func) -> Feedback:
    """Exercise 3: ``func(lam, delta) -> (A_bar, B_bar)``, ZOH for diagonal A (B = 1), accurate for every λ.

    It is called on ``lam = [-1, -1e-9, 0, -2+3j, 1e-12j]`` (complex128) and ``delta = 0.5``.
    """
    lam = np.array([-1.0, -1e-9, 0.0, -2.0 + 3.0j, 1e-12j])
    delta = 0.5
    want_A, want_B = discretize_diag(lam, 1.0, delta, "zoh")
    expected = f"expected a pair (A_bar, B_bar) of arrays of shape {lam.shape}, one value per λ"
    with np.errstate(all="ignore"):
        result, bad = call(func, lam.copy(), delta, name="func(lam, delta)")
    if bad is not None:
        return Feedback.wrong(f"{bad.message} — {expected}")
    try:
        got_A, got_B = result
        got_A, got_B = np.broadcast_to(np.asarray(got_A), lam.shape), np.broadcast_to(np.asarray(got_B), lam.shape)
        got_A, got_B = got_A.astype(np.complex128), got_B.astype(np.complex128)
    except Exception as error:  # an answer of the wrong form is feedback, not a crash
        return Feedback.wrong(f"func(lam, delta) returned a {type(result).__name__} that could not be read "
                              f"({type(error).__name__}: {error}): {expected}")
    msgs = []
    if not np.allclose(got_A, want_A, rtol=1e-12, atol=0):
        msgs.append("A_bar should be np.exp(delta * lam)")
    err_B = np.abs(got_B - want_B) / np.abs(want_B)
    if not np.all(np.isfinite(got_B[[2, 4]])):
        msgs.append("B_bar is not finite at λ = 0 (0/0): the limit of (e^{λΔ} − 1)/λ as λ → 0 is Δ; handle it")
    tiny = [1, 4]  # λ = −1e−9 and 1e−12 i
    if np.all(np.isfinite(got_B[tiny])) and err_B[tiny].max() > 1e-12:
        msgs.append(
            f"B_bar near λ = 0 has relative error {err_B[tiny].max():.1e}: e^{{λΔ}} − 1 cancels catastrophically; "
            "use np.expm1(delta * lam)"
        )
    if not np.all(np.isfinite(got_A)) or (np.all(np.isfinite(got_B[[2, 4]])) and not np.all(np.isfinite(got_B))):
        msgs.append(f"A_bar and B_bar must be finite for every λ, got A_bar = {got_A}, B_bar = {got_B}")
    rest = [0, 3]
    if np.any(~np.isfinite(got_B[rest])) or np.any(err_B[rest] > 1e-12):
        msgs.append(f"B_bar should be (e^{{λΔ}} − 1)/λ: expected {np.round(want_B[rest], 6)}, got {got_B[rest]}")
    if msgs:
        return Feedback.wrong("; ".join(msgs) + ".")
    return Feedback.right("exact at λ = 0 and accurate at λ = −1e−9: that is what expm1 buys you.")


@checker
def check_forget_delta(answer, lam=-1.0, keep=0.01) -> Feedback:
    """Exercise 4: the Δ for which ZOH's Ā = e^{λΔ} keeps only the fraction ``keep`` of the state (3 digits)."""
    value, bad = number(answer, "Δ")
    if bad is not None:
        return bad
    want = math.log(keep) / lam
    if _digits_close(value, want, 3):  # the text asks for 3 digits
        return Feedback.right(f"e^{{λΔ}} = {keep} ⇔ Δ = ln({keep})/λ = {want:.4f}: a large Δ resets the state.")
    if value <= 0:
        return Feedback.wrong(f"Δ must be positive; solve e^{{λΔ}} = {keep} for Δ (λ = {lam} is negative)")
    if _digits_close(value, math.log10(keep) / lam, 3):
        return Feedback.wrong("that is log10; e^{λΔ} needs the natural logarithm")
    return Feedback.wrong(f"with Δ = {value:.4g}, Ā = e^{{λΔ}} = {math.exp(lam * value):.4g}, not {keep}.")


@checker
def check_mamba_ratio(answer, lam=-1.0, delta=0.1) -> Feedback:
    """Exercise 5: the ratio B̄_Mamba / B̄_ZOH = ΔB / ((e^{λΔ} − 1)/λ · B), exactly (6 digits, as asked)."""
    value, bad = number(answer, "the ratio")
    if bad is not None:
        return bad
    z = lam * delta
    want = z / math.expm1(z)
    if _digits_close(value, want, 6):  # the text asks for 6 digits
        return Feedback.right(
            f"ratio = λΔ/(e^{{λΔ}} − 1) = {want:.6f} ≈ 1 − λΔ/2: Mamba's B̄ is {abs(want - 1):.1%} too "
            "large here, an error that shrinks in proportion to Δ."
        )
    if _digits_close(value, 1 / want, 6):
        return Feedback.wrong("that is B̄_ZOH / B̄_Mamba, the inverse")
    if _digits_close(value, 1 - z / 2, 6):
        return Feedback.wrong(f"{value:g} is the first-order approximation 1 − λΔ/2; compute λΔ/(e^{{λΔ}} − 1) exactly")
    return Feedback.wrong(f"got {value:.6g}; divide ΔB by ZOH's B̄ = (e^{{λΔ}} − 1)/λ · B (B cancels).")
