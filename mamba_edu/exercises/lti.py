"""Exercise checkers for lesson 1 (continuous LTI systems). Each returns a Feedback."""

import numpy as np

from mamba_edu.exercises.feedback import Feedback, checker, number, numbers
from mamba_edu.lti import ContinuousSSM

STABILITY_QUIZ = {
    "A1": np.array([[-1.0, 0.0], [0.0, -0.1]]),
    "A2": np.array([[0.0, -3.0], [3.0, 0.0]]),
    "A3": np.array([[-0.5, 4.0], [-4.0, -0.5]]),
    "A4": np.array([[1.0, 10.0], [0.0, -5.0]]),
    "A5": np.array([[-3.0, 5.0], [0.0, -0.01]]),
}
"""The matrices of exercise 1: which of them are (asymptotically) stable?"""


@checker
def check_stable_set(answer) -> Feedback:
    """Exercise 1: ``answer`` is the set of names in STABILITY_QUIZ whose systems are stable."""
    if isinstance(answer, (str, bytes)):  # set("A1, A3") would be its characters
        return Feedback.wrong(f'give a set of names such as {{"A1", "A3"}}, not the text {answer!r:.80}')
    if isinstance(answer, dict):  # {name: True/False}: the names marked stable
        answer = [name for name, stable in answer.items() if stable]
    try:
        chosen = set(answer)
    except TypeError:
        return Feedback.wrong(f'give a set of names such as {{"A1", "A3"}}, got {answer!r:.80}')
    unknown = chosen - set(STABILITY_QUIZ)
    if unknown:
        return Feedback.wrong(f"{sorted(unknown, key=str)} are not in STABILITY_QUIZ (names: {sorted(STABILITY_QUIZ)})")
    truth = {name for name, A in STABILITY_QUIZ.items() if np.all(np.linalg.eigvals(A).real < 0)}
    if chosen == truth:
        return Feedback.right("stable ⇔ every eigenvalue has Re λ < 0; the off-diagonal size doesn't matter.")
    problems = []
    for name in sorted(chosen - truth):
        lam = np.linalg.eigvals(STABILITY_QUIZ[name])
        problems.append(f"{name} is not stable: it has an eigenvalue with Re λ = {lam.real.max():+.3g} ≥ 0")
    for name in sorted(truth - chosen):
        lam = np.linalg.eigvals(STABILITY_QUIZ[name])
        problems.append(f"{name} is stable: its eigenvalues {np.round(lam, 3).tolist()} all have Re λ < 0")
    return Feedback.wrong("; ".join(problems) + ". Hint: look at ContinuousSSM(A, ...).eigenvalues.")


@checker
def check_oscillator_design(A, frequency_hz=0.5, half_life=2.0) -> Feedback:
    """Exercise 2: a real 2×2 A whose impulse responses oscillate at ``frequency_hz`` and halve every ``half_life``."""
    A, bad = numbers(A, "A", shape=(2, 2))
    if bad is not None:
        return Feedback.wrong(bad.message + " (a real 2×2 matrix)")
    if np.iscomplexobj(A):
        return Feedback.wrong("A must be a real 2×2 matrix: the complex eigenvalues α ± iβ come out of a real A")
    lam = np.linalg.eigvals(A)
    want_alpha, want_beta = -np.log(2) / half_life, 2 * np.pi * frequency_hz
    beta = np.abs(lam.imag).max()
    # 4 significant digits are enough (the exercise text says so): α = −0.3466, β = 3.142
    if np.allclose(lam.real, want_alpha, rtol=3e-4, atol=0) and np.isclose(beta, want_beta, rtol=3e-4, atol=0):
        return Feedback.right(f"λ = {want_alpha:.4f} ± {want_beta:.4f}i: decay e^{{αt}} halves every {half_life} s.")
    msgs = []
    if not np.allclose(lam.real, want_alpha, rtol=3e-4, atol=0):
        msgs.append(
            f"Re λ = {np.round(lam.real, 4).tolist()}, but halving every {half_life} means "
            f"e^{{α·{half_life}}} = 1/2, α = −ln2/{half_life} = {want_alpha:.4f}"
        )
    if not np.isclose(beta, want_beta, rtol=3e-4, atol=0):
        msgs.append(f"|Im λ| = {beta:.4f} rad/s, but {frequency_hz} Hz means β = 2π·{frequency_hz} = {want_beta:.4f}")
    return Feedback.wrong("; ".join(msgs) + ". Hint: A = [[α, −β], [β, α]] has eigenvalues α ± iβ.")


@checker
def check_step_final_value(ssm: ContinuousSSM, answer) -> Feedback:
    """Exercise 3: the value the step response of a stable ``ssm`` settles to (its DC gain, −C A⁻¹ B + D)."""
    if not isinstance(ssm, ContinuousSSM):
        return Feedback.wrong(f"the first argument must be the ContinuousSSM of the exercise (sys3), got {ssm!r:.80}")
    if not ssm.is_stable:
        return Feedback.wrong("this system is not stable, so its step response never settles: choose a stable one")
    truth = float(np.real(-ssm.C @ np.linalg.solve(ssm.A, ssm.B) + ssm.D))
    value, bad = number(answer, "the final value")  # also one-element arrays, e.g. a (1, 1) C @ A⁻¹ @ B
    if bad is not None:
        return bad
    if np.isclose(value, truth, rtol=1e-6, atol=1e-9):
        return Feedback.right(f"the step response settles at H(0) = −CA⁻¹B + D = {truth:.6g}.")
    late = float(ssm.step_response([50.0 / max(1e-3, -ssm.eigenvalues.real.max())])[0])
    return Feedback.wrong(f"{value:.6g} is off: the step response at a late time is {late:.6g}. "
                          "Set h' = 0 in h' = Ah + B·1 and solve for h, then y = Ch + D.")
