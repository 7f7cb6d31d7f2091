"""Lesson-2 exercise checkers accept right answers (computed here independently) and explain wrong ones."""

import cmath
import math

import mpmath
import numpy as np

from mamba_edu.exercises.discretization import (
    check_euler_max_delta,
    check_forget_delta,
    check_mamba_ratio,
    check_stable_zoh,
    check_zoh_by_hand,
)


def test_zoh_by_hand():
    lam, delta = -2.0, 0.5
    A_bar = float(mpmath.exp(lam * delta))
    B_bar = float(mpmath.quad(lambda tau: mpmath.exp(lam * tau), [0, delta]))  # ∫₀^Δ e^{λτ} dτ
    assert check_zoh_by_hand((A_bar, B_bar))
    assert check_zoh_by_hand([np.float64(A_bar), np.array(B_bar)])
    fb = check_zoh_by_hand((1 + lam * delta, delta))
    assert not fb and "forward Euler" in fb.message and "Mamba" in fb.message
    fb = check_zoh_by_hand((A_bar, -B_bar))
    assert not fb and "wrong sign" in fb.message and "Ā" not in fb.message
    assert "pair" in check_zoh_by_hand(None).message
    assert "finite number" in check_zoh_by_hand((A_bar, "b")).message
    assert check_zoh_by_hand((math.exp(-0.3), -math.expm1(-0.3) / 3.0), lam=-3.0, delta=0.1)


def test_euler_max_delta():
    lam = -1.0 + 2.0j
    # bisection on |1 + λΔ| = 1, independent of the closed form
    lo, hi = 1e-9, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if abs(1 + lam * mid) <= 1 else (lo, mid)
    assert check_euler_max_delta(lo)
    fb = check_euler_max_delta(2.0)
    assert not fb and "only for real λ" in fb.message
    fb = check_euler_max_delta(0.3)
    assert not fb and "still inside" in fb.message
    assert "outside" in check_euler_max_delta(0.5).message
    assert "positive" in check_euler_max_delta(-0.4).message
    assert "finite number" in check_euler_max_delta([0.1, 0.2]).message
    assert check_euler_max_delta(0.5, lam=-4.0)  # real λ: 2/|λ|


def test_stable_zoh():
    def good(lam, delta):
        z = delta * lam
        safe = np.where(z == 0, 1, z)
        return np.exp(z), np.where(z == 0, delta, np.expm1(safe) / safe * delta)

    def naive(lam, delta):
        return np.exp(delta * lam), (np.exp(delta * lam) - 1) / lam

    def only_zero_fixed(lam, delta):
        safe = np.where(lam == 0, 1, lam)
        return np.exp(delta * lam), np.where(lam == 0, delta, (np.exp(delta * lam) - 1) / safe)

    def wrong_sign(lam, delta):
        A, B = good(lam, delta)
        return A, -B

    assert check_stable_zoh(good)
    fb = check_stable_zoh(naive)
    assert not fb and "not finite at λ = 0" in fb.message and "expm1" in fb.message
    fb = check_stable_zoh(only_zero_fixed)
    assert not fb and "not finite" not in fb.message and "expm1" in fb.message
    assert "(e^{λΔ} − 1)/λ" in check_stable_zoh(wrong_sign).message
    assert "np.exp(delta * lam)" in check_stable_zoh(lambda lam, d: (1 + d * lam, good(lam, d)[1])).message
    assert "raised ZeroDivisionError" in check_stable_zoh(lambda lam, d: 1 / 0).message
    assert "pass your function" in check_stable_zoh(None).message


def test_forget_delta():
    # solve e^{-Δ} = 0.01 with mpmath's root finder
    delta = float(mpmath.findroot(lambda d: mpmath.exp(-d) - 0.01, 4.0))
    assert check_forget_delta(delta)
    assert "log10" in check_forget_delta(2.0).message
    assert "positive" in check_forget_delta(-delta).message
    fb = check_forget_delta(1.0)
    assert not fb and f"{math.exp(-1):.4g}" in fb.message
    assert check_forget_delta(math.log(2) / 0.5, lam=-0.5, keep=0.5)


def test_mamba_ratio():
    lam, delta = -1.0, 0.1
    zoh = complex(mpmath.quad(lambda tau: mpmath.exp(lam * tau), [0, delta]))
    ratio = (delta / zoh).real
    assert check_mamba_ratio(ratio)
    assert "inverse" in check_mamba_ratio(1 / ratio).message
    assert "first-order" in check_mamba_ratio(1 - lam * delta / 2).message
    assert not check_mamba_ratio(1.0)
    assert "finite number" in check_mamba_ratio(cmath.nan).message
