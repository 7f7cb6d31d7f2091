"""Exercise checkers for lesson 3 (complex diagonal A, kernel and scan). Each returns a Feedback."""

import numpy as np

from mamba_edu.convolution import causal_conv, lti_scan, ssm_kernel
from mamba_edu.discretization import discretize_diag
from mamba_edu.exercises.feedback import Feedback, checker, number, numbers

MODE_LAMBDA = complex(-0.2, 3.0)
"""Exercises 1 and 2: the mode λ = −0.2 + 3i ..."""
MODE_DELTA = 0.05
"""... sampled with the step Δ = 0.05."""


@checker
def check_period_steps(answer) -> Feedback:
    """Exercise 1: how many steps k (two decimals) does one oscillation of MODE_LAMBDA last at Δ = MODE_DELTA?"""
    truth = 2 * np.pi / (MODE_LAMBDA.imag * MODE_DELTA)
    value, bad = number(answer, "the number of steps (two decimals)")
    if bad is not None:
        return bad
    # two decimals, as the text asks: 41.89 (41.88 truncated, or 41.9) — but not 2π/(|λ|Δ) = 41.80
    if abs(value - truth) <= 0.015:
        return Feedback.right(f"Ā^k = e^{{λΔk}} turns by Im λ·Δ = {MODE_LAMBDA.imag * MODE_DELTA:.3g} rad per step, "
                              f"so a full turn takes 2π/(Im λ·Δ) = {truth:.2f} steps.")
    if abs(value - truth * 2 * np.pi) <= 0.5 * 2 * np.pi or abs(value - 1 / (MODE_LAMBDA.imag * MODE_DELTA)) < 0.5:
        return Feedback.wrong(f"{value:.4g} mixes up radians and turns: one period is 2π radians of Im λ·Δk.")
    if abs(value - 2 * np.pi / (abs(MODE_LAMBDA) * MODE_DELTA)) <= 0.015:
        return Feedback.wrong(f"{value:.4g} uses |λ|; the rotation per step is Im λ·Δ alone (Re λ only shrinks "
                              "the state, it does not turn it).")
    if abs(value - round(truth)) < 1e-9:
        return Feedback.wrong(f"{value:.4g} is rounded to a whole number; a period need not be a whole number "
                              "of steps: give two decimals.")
    if abs(value - 2 * np.pi / MODE_LAMBDA.imag) <= 0.05:
        return Feedback.wrong(f"{value:.4g} is the period in *time* units (2π/Im λ); divide by Δ to count steps.")
    return Feedback.wrong(f"{value:.4g} steps is off. Each step multiplies the state by Ā = e^{{λΔ}}, which "
                          "rotates it by Im λ·Δ radians: how many steps make 2π?")


@checker
def check_decay_steps(answer) -> Feedback:
    """Exercise 2: after how many steps has the envelope of MODE_LAMBDA fallen to 1 % of its start?"""
    truth = np.log(100) / (-MODE_LAMBDA.real * MODE_DELTA)
    value, bad = number(answer, "the number of steps")
    if bad is not None:
        return bad
    if abs(value - truth) <= 1.0:  # 460, 460.5 or 461: the text asks for a number of steps
        return Feedback.right(f"|Ā|^k = e^{{Re λ·Δk}} = 0.01 at k = ln(100)/(|Re λ|·Δ) = {truth:.1f}: only Re λ "
                              "sets the decay, Im λ only rotates.")
    if abs(value - np.log(100) / -MODE_LAMBDA.real) <= 0.05:
        return Feedback.wrong(f"{value:.4g} is the time ln(100)/|Re λ|; count steps: divide by Δ = {MODE_DELTA}.")
    if abs(value - np.log(100) / (abs(MODE_LAMBDA) * MODE_DELTA)) <= 0.5:
        return Feedback.wrong("the decay uses Re λ alone: |e^{λΔ}| = e^{Re λ·Δ}; |λ| mixes in the rotation.")
    return Feedback.wrong(f"{value:.4g} steps is off. The envelope is |Ā|^k = e^{{Re λ·Δk}}: "
                          "solve e^{Re λ·Δk} = 0.01 for k.")


def _kernel_cases():
    rng = np.random.default_rng(3)
    cases = []
    for n, L in ((1, 5), (4, 16), (8, 33)):
        lam = -rng.uniform(0.1, 1.0, n) + 1j * rng.uniform(-5, 5, n)
        A_bar, B_bar = discretize_diag(lam, rng.normal(size=n) + 1j * rng.normal(size=n), 0.1)
        C = rng.normal(size=n) + 1j * rng.normal(size=n)
        cases.append((A_bar, B_bar, C, L))
    return cases


@checker
def check_diagonal_kernel(fn) -> Feedback:
    """Exercise 3: ``fn(A_bar, B_bar, C, L)`` returns K[k] = Σ_m C_m B̄_m Ā_m^k, k = 0..L−1 (diagonal Ā)."""
    if not callable(fn):
        return Feedback.wrong(f"pass your function itself (e.g. my_kernel), got {fn!r}")
    for A_bar, B_bar, C, L in _kernel_cases():
        truth = ssm_kernel(A_bar, B_bar, C, L)
        where = f"for n = {len(A_bar)}, L = {L}"
        try:
            K = fn(A_bar.copy(), B_bar.copy(), C.copy(), L)
        except Exception as err:  # the learner's code may fail in any way
            return Feedback.wrong(f"your function raised {type(err).__name__}: {err} ({where})")
        if K is None:
            return Feedback.wrong("your function returned None: compute the kernel and return it")
        K, bad = numbers(K, "K")
        if bad is not None:
            return Feedback.wrong(f"{bad.message} {where}; expected a complex array of shape (L,) = ({L},)")
        if K.shape != (L,):
            return Feedback.wrong(f"K has shape {K.shape} {where}, expected (L,) = ({L},): sum over the modes m")
        if np.allclose(K, truth, rtol=1e-9, atol=1e-12):
            continue
        if L > 1 and np.allclose(K[:-1], truth[1:], rtol=1e-9, atol=1e-12):
            return Feedback.wrong("your kernel starts at Ā^1: the first entry is K[0] = C·B̄ (k = 0, Ā^0 = 1)")
        if np.allclose(K, 2 * truth.real, rtol=1e-9, atol=1e-12):
            return Feedback.wrong("that is 2·Re K, the real system's kernel; here return the complex K itself")
        if np.allclose(K, truth.real, rtol=1e-9, atol=1e-12):
            return Feedback.wrong("only the real part is right: keep K complex (don't cast to float)")
        if np.allclose(K, truth, rtol=1e-5, atol=1e-8):
            return Feedback.wrong(f"K is right to only about 7 digits {where}: that is single precision "
                                  "(complex64 or float32 somewhere); compute in complex128")
        k = int(np.argmax(~np.isclose(K, truth, rtol=1e-9, atol=1e-12)))
        return Feedback.wrong(f"K[{k}] = {complex(K[k]):.6g} but should be {complex(truth[k]):.6g} {where}. "
                              "Hint: the Vandermonde matrix V[k, m] = Ā_m^k (k = 0..L−1) holds every power; "
                              "weight mode m by C_m B̄_m and sum over m.")
    return Feedback.right("a Vandermonde matrix times C ⊙ B̄: no loop over k, and O(L·n) work.")


@checker
def check_full_output(fn) -> Feedback:
    """Exercise 4: ``fn(y_half)`` gives the real output of the full system from the half-spectrum output."""
    if not callable(fn):
        return Feedback.wrong(f"pass your function itself (e.g. full_output), got {fn!r}")
    rng = np.random.default_rng(4)
    lam = -rng.uniform(0.1, 1.0, 3) + 1j * rng.uniform(1, 5, 3)
    B, C = rng.normal(size=3) + 1j * rng.normal(size=3), rng.normal(size=3) + 1j * rng.normal(size=3)
    A_bar, B_bar = discretize_diag(lam, B, 0.1)
    u = rng.normal(size=50)
    y_half = lti_scan(A_bar, B_bar, C, u)
    full = lti_scan(np.concatenate([A_bar, A_bar.conj()]), np.concatenate([B_bar, B_bar.conj()]),
                    np.concatenate([C, C.conj()]), u)
    try:
        y = fn(y_half.copy())
    except Exception as err:
        return Feedback.wrong(f"your function raised {type(err).__name__}: {err}")
    if y is None:
        return Feedback.wrong("your function returned None: return the full system's output")
    y, bad = numbers(y, "the output")
    if bad is not None:
        return Feedback.wrong(f"{bad.message}; expected a real array of shape {u.shape} like y_half")
    if y.shape != u.shape:
        return Feedback.wrong(f"the output has shape {y.shape}, expected {u.shape} like y_half")
    if np.iscomplexobj(y) and np.abs(y.imag).max() > 1e-9 * np.abs(y).max():
        return Feedback.wrong("the full system's output is real: the conjugate modes cancel the imaginary parts")
    y = y.real
    if np.allclose(y, full.real, rtol=1e-9, atol=1e-12):
        return Feedback.right("y_full = y_half + conj(y_half) = 2·Re(y_half): half the modes, the same real output.")
    if np.allclose(y, y_half.real, rtol=1e-9, atol=1e-12):
        return Feedback.wrong("Re(y_half) is half of it: the conjugate modes contribute conj(y_half) too")
    if np.allclose(y, 2 * np.abs(y_half), rtol=1e-9, atol=1e-12) or np.allclose(y, np.abs(y_half)):
        return Feedback.wrong("|y_half| loses the sign and phase: add y_half and its conjugate instead")
    return Feedback.wrong("not the full system's output. Its modes are the kept ones plus their conjugates; "
                          "what does a mode with conjugated λ, B, C output for a real input?")


VIEWS = ("scan", "convolution", "both")


@checker
def check_selective_view(answer) -> Feedback:
    """Exercise 5: once Δ depends on the input at every step, which view still computes y: scan, convolution, both?"""
    if isinstance(answer, str):
        answer = answer.strip().lower()  # "Scan" and " scan " mean scan
    if not isinstance(answer, str) or answer not in VIEWS:
        return Feedback.wrong(f"answer one of {VIEWS}, got {answer!r:.80}")
    # a demonstration: Δ_k varies with the input, so Ā_k, B̄_k change from step to step
    rng = np.random.default_rng(5)
    n, l = 4, 64
    lam = -0.5 + 1j * np.pi * np.arange(n)
    u = rng.normal(size=l)
    delta = 0.05 * (1 + np.abs(u))  # (l,)
    A_bar, B_bar = discretize_diag(lam, np.ones(n), delta[:, None])  # (l, n) each
    h, y = np.zeros(n, complex), np.zeros(l, complex)
    for k in range(l):
        h = A_bar[k] * h + B_bar[k] * u[k]
        y[k] = h.sum()
    y_conv = causal_conv(u, ssm_kernel(A_bar[0], B_bar[0], np.ones(n), l))
    err = np.abs(y_conv - y).max() / np.abs(y).max()
    if answer == "scan":
        return Feedback.right(f"only the scan: with Δ_k changing, y_k = Σ_j C (Ā_k⋯Ā_{{k−j+1}}) B̄_{{k−j}} u_{{k−j}} "
                              f"has no single kernel K. Here a convolution with step 0's kernel is off by {err:.0%}.")
    return Feedback.wrong(f"a convolution needs one kernel K[j] = C Ā^j B̄ for every step, but Ā_k, B̄_k now change "
                          f"with k: with step 0's kernel the convolution is off by {err:.0%} of max|y| here.")
