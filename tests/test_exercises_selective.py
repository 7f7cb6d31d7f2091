"""Lesson-4 checkers: right answers pass, typical wrong answers get the specific hint, nothing raises."""

import numpy as np
import pytest
from scipy.special import expit

from mamba_edu.exercises.feedback import Feedback
from mamba_edu.exercises.selective import (
    check_gate,
    check_selective_step,
    check_state_shape,
    check_token_dependent,
)


def test_token_dependent():
    assert check_token_dependent({"delta", "B", "C"})
    fb = check_token_dependent({"A", "delta", "B", "C"})
    assert not fb and "A is one learned matrix" in fb.message
    fb = check_token_dependent({"delta", "B"})
    assert not fb and "C is computed from the token" in fb.message
    assert "not among" in check_token_dependent({"x"}).message
    assert not check_token_dependent(None)


def test_gate():
    assert check_gate(expit)
    assert check_gate(lambda z: 1 - np.exp(-np.log1p(np.exp(z))))  # the derivation, unsimplified
    assert "Δ = softplus(s) itself" in check_gate(lambda z: np.log1p(np.exp(z))).message
    assert "which is 1 − g" in check_gate(lambda z: 1 / (1 + np.exp(z))).message
    assert "Δ is softplus(s), not s" in check_gate(lambda z: 1 - np.exp(-z)).message
    assert "expected" in check_gate(lambda z: np.tanh(z)).message
    assert "raised ZeroDivisionError" in check_gate(lambda z: 1 / 0).message
    assert "one value per s" in check_gate(lambda z: 0.5).message
    assert not check_gate(None)


def test_state_shape():
    assert check_state_shape((2, 128, 16))
    assert check_state_shape([1, 96, 8], batch=1, d_model=48, expand=2, d_state=8)
    assert "collapsed" in check_state_shape((2, 128)).message
    assert "d_inner = expand·d_model = 128" in check_state_shape((2, 64, 16)).message
    assert "wrong order" in check_state_shape((2, 16, 128)).message
    assert not check_state_shape("big")


def right_step(h, u_t, delta_t, A, B_t, C_t):
    h = np.exp(delta_t[:, None] * A) * h + (delta_t[:, None] * B_t) * u_t[:, None]
    return h, h @ C_t


@pytest.mark.parametrize("seed", [0, 1])
def test_selective_step_right(seed):
    fb = check_selective_step(right_step, seed=seed)
    assert isinstance(fb, Feedback) and fb, fb


def test_selective_step_diagnoses_typical_mistakes():
    def zoh(h, u_t, delta_t, A, B_t, C_t):
        h = np.exp(delta_t[:, None] * A) * h + np.expm1(delta_t[:, None] * A) / A * B_t * u_t[:, None]
        return h, h @ C_t

    def no_delta(h, u_t, delta_t, A, B_t, C_t):
        h = np.exp(delta_t[:, None] * A) * h + B_t * u_t[:, None]
        return h, h @ C_t

    def euler(h, u_t, delta_t, A, B_t, C_t):
        h = (1 + delta_t[:, None] * A) * h + delta_t[:, None] * B_t * u_t[:, None]
        return h, h @ C_t

    def collapsed(h, u_t, delta_t, A, B_t, C_t):
        h2, y = right_step(h, u_t, delta_t, A, B_t, C_t)
        return h2.sum(-1), y

    assert "ZOH input matrix" in check_selective_step(zoh).message
    assert "without Δ_t" in check_selective_step(no_delta).message
    assert "Euler" in check_selective_step(euler).message
    assert "collapsed" in check_selective_step(collapsed).message

    def swapped(h, u_t, delta_t, A, B_t, C_t):
        h2, y = right_step(h, u_t, delta_t, A, B_t, C_t)
        return y, h2

    assert "the order (h_new, y_t)" in check_selective_step(swapped).message

    def off_by_D(h, u_t, delta_t, A, B_t, C_t):
        h, y = right_step(h, u_t, delta_t, A, B_t, C_t)
        return h, y + u_t  # a skip term the exercise did not ask for

    fb = check_selective_step(off_by_D)
    assert not fb and "first differs from selective_scan at t = 0" in fb.message
    assert "raised" in check_selective_step(lambda *a: 1 / 0).message
    assert "y_t has shape" in check_selective_step(lambda h, *a: (h, h)).message
    assert not check_selective_step(42)
