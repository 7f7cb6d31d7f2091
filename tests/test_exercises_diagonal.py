"""Lesson-3 exercise checkers: right answers pass, typical wrong ones get a specific message, nothing raises."""

import numpy as np
import pytest

from mamba_edu.exercises import Feedback
from mamba_edu.exercises.diagonal import (
    MODE_DELTA,
    MODE_LAMBDA,
    check_decay_steps,
    check_diagonal_kernel,
    check_full_output,
    check_period_steps,
    check_selective_view,
)


def test_period_steps():
    # closed form written independently: the rotation per step is Im λ·Δ = 3 · 0.05 = 0.15 rad
    assert MODE_LAMBDA.imag * MODE_DELTA == pytest.approx(0.15)
    assert check_period_steps(2 * np.pi / 0.15)
    # two decimals, as the text asks: 42 is also what 2π/(|λ|Δ) = 41.80 rounds to, so it can't be accepted
    assert not check_period_steps(42) and "two decimals" in check_period_steps(42).message
    assert "time" in check_period_steps(2 * np.pi / 3).message
    assert "radians" in check_period_steps(1 / 0.15).message
    for wrong in (12, -41.9, "many", None, float("nan")):
        fb = check_period_steps(wrong)
        assert isinstance(fb, Feedback) and not fb and fb.message


def test_decay_steps():
    truth = np.log(100) / (0.2 * 0.05)  # e^{−0.2·0.05·k} = 0.01
    assert check_decay_steps(truth)
    assert check_decay_steps(round(truth))
    assert "divide by Δ" in check_decay_steps(np.log(100) / 0.2).message
    assert "Re λ alone" in check_decay_steps(np.log(100) / (abs(MODE_LAMBDA) * 0.05)).message
    for wrong in (10, truth + 3, None, "x"):
        fb = check_decay_steps(wrong)
        assert not fb and fb.message


def _loop_kernel(A_bar, B_bar, C, L):
    """A reference written with explicit loops (slow, obviously right)."""
    K = np.zeros(L, dtype=complex)
    for k in range(L):
        for m in range(len(A_bar)):
            K[k] += C[m] * B_bar[m] * A_bar[m] ** k
    return K


def test_diagonal_kernel_accepts_correct_implementations():
    def vandermonde(A_bar, B_bar, C, L):
        k = np.arange(L)
        return (A_bar[None, :] ** k[:, None]) @ (C * B_bar)

    assert check_diagonal_kernel(_loop_kernel)
    assert check_diagonal_kernel(vandermonde)


@pytest.mark.parametrize(
    "attempt, phrase",
    [
        (None, "pass your function"),
        (lambda A, B, C, L: None, "returned None"),
        (lambda A, B, C, L: 1 / 0, "ZeroDivisionError"),
        (lambda A, B, C, L: _loop_kernel(A, B, C, L + 1)[1:], "starts at Ā^1"),
        (lambda A, B, C, L: _loop_kernel(A, B, C, L).real, "real part"),
        (lambda A, B, C, L: 2 * _loop_kernel(A, B, C, L).real, "2·Re K"),
        (lambda A, B, C, L: (A[None, :] ** np.arange(L)[:, None]) * (C * B), "shape"),
        (lambda A, B, C, L: _loop_kernel(A, B, np.ones_like(C), L), "should be"),
    ],
)
def test_diagonal_kernel_explains_wrong_attempts(attempt, phrase):
    fb = check_diagonal_kernel(attempt)
    assert not fb and phrase in fb.message


def test_full_output():
    assert check_full_output(lambda y: 2 * y.real)
    assert check_full_output(lambda y: y + np.conj(y))
    for attempt, phrase in [
        (lambda y: y.real, "half of it"),
        (lambda y: y, "real"),
        (lambda y: 2 * np.abs(y), "sign and phase"),
        (lambda y: None, "returned None"),
        (lambda y: y[:-1].real, "shape"),
        (lambda y: 3 * y.real, "not the full system"),
        ("2*Re", "pass your function"),
    ]:
        fb = check_full_output(attempt)
        assert not fb and phrase in fb.message, (phrase, fb.message)


def test_selective_view():
    fb = check_selective_view("scan")
    assert fb and "no single kernel" in fb.message
    for wrong in ("convolution", "both"):
        fb = check_selective_view(wrong)
        assert not fb and "off by" in fb.message
    assert not check_selective_view("rnn") and "answer one of" in check_selective_view("rnn").message
    assert check_selective_view(" Scan ") and not check_selective_view("Both")  # case and spaces do not matter


def test_kernel_feedback_names_single_precision_and_keeps_the_solution_back():
    """complex64 arithmetic got "K[0] = -0.0283804+0.0203796j but should be -0.0283804+0.0203796j" (the same
    digits), and every wrong kernel was shown the solution as code, beyond the lesson's Vandermonde hint."""
    def single(A_bar, B_bar, C, L):
        V = A_bar.astype(np.complex64)[None, :] ** np.arange(L)[:, None]
        return V @ (C * B_bar).astype(np.complex64)

    result = check_diagonal_kernel(single)
    assert not result and "single precision" in result.message and "complex128" in result.message
    result = check_diagonal_kernel(lambda A_bar, B_bar, C, L: np.ones(L, complex))
    assert not result and "Vandermonde" in result.message
    assert "np.arange" not in result.message and "@" not in result.message
