"""The S4D initialisations, HiPPO-LegS and the conjugate-pair helpers (lesson 3).

References: the formulas of the S4D paper written out as plain Python loops, numpy's
eigenvalue solver, and the normal part of HiPPO-LegS (whose eigenvalues S4D-Inv approximates).
"""

import cmath
import math

import numpy as np
import pytest

from mamba_edu.diagonal import conjugate_pairs, hippo_legs, real_block_form, s4d_inv, s4d_lin, s4d_real


@pytest.mark.parametrize("n", [1, 2, 7, 64])
def test_s4d_lin_formula(n):
    expected = np.array([complex(-0.5, math.pi * k) for k in range(n)])
    A = s4d_lin(n)
    assert A.shape == (n,) and A.dtype == np.complex128
    np.testing.assert_allclose(A, expected, rtol=1e-15, atol=0)


@pytest.mark.parametrize("n", [1, 4, 32])
def test_s4d_inv_formula_with_real_state_size_2n(n):
    N = 2 * n  # the real state size, as in the S4D paper and its official code
    expected = np.array([complex(-0.5, N / math.pi * (N / (2 * k + 1) - 1)) for k in range(n)])
    A = s4d_inv(n)
    assert A.shape == (n,) and A.dtype == np.complex128
    np.testing.assert_allclose(A, expected, rtol=1e-14, atol=0)
    assert np.all(A.imag > 0), "every kept mode has a positive frequency"
    assert np.all(np.diff(A.imag) < 0), "frequencies decrease like 1/(2k+1)"


def test_s4d_inv_approximates_the_normal_part_of_hippo_legs():
    # HiPPO-LegS = S − P Pᵀ with P_i = √(i + ½) and S = −½ I + skew-symmetric: its eigenvalues are
    # −½ ± iω. S4D-Inv is the S4D paper's closed-form approximation of the ω > 0.
    n = 32
    N = 2 * n
    P = np.sqrt(np.arange(N) + 0.5)
    S = hippo_legs(N) + np.outer(P, P)
    np.testing.assert_allclose(S + S.T, -np.eye(N), atol=1e-12)
    eig = np.linalg.eigvals(S)
    np.testing.assert_allclose(eig.real, -0.5, atol=1e-9)
    omega = np.sort(eig.imag[eig.imag > 0])[::-1]  # (n,) decreasing
    A = s4d_inv(n)
    np.testing.assert_allclose(A.real, -0.5)
    rel = np.abs(A.imag - omega) / omega
    assert rel.max() < 0.25, f"S4D-Inv is off its HiPPO target by up to {rel.max():.0%}"
    assert rel[:4].max() < 0.1  # tightest for the fast modes


@pytest.mark.parametrize("n", [1, 5, 16])
def test_s4d_real_formula_and_hippo_eigenvalues(n):
    A = s4d_real(n)
    assert A.dtype == np.float64
    np.testing.assert_array_equal(A, [-(k + 1.0) for k in range(n)])
    # S4D-Real is the spectrum of HiPPO-LegS (triangular, so exactly its diagonal)
    eig = np.sort(np.linalg.eigvals(hippo_legs(n)).real)[::-1]
    np.testing.assert_allclose(A, eig, rtol=1e-12)
    # Mamba's parameterisation: A = −exp(A_log) with A_log = log(1..n)
    np.testing.assert_allclose(A, -np.exp(np.log(np.arange(1, n + 1.0))), rtol=1e-15)


@pytest.mark.parametrize("n", [1, 3, 10])
def test_hippo_legs_entries_and_stability(n):
    A = hippo_legs(n)
    assert A.shape == (n, n) and A.dtype == np.float64
    for i in range(n):
        for j in range(n):
            if i > j:
                expected = -math.sqrt(2 * i + 1) * math.sqrt(2 * j + 1)
            elif i == j:
                expected = -(i + 1.0)
            else:
                expected = 0.0
            assert A[i, j] == pytest.approx(expected, rel=1e-15, abs=0)
    assert np.all(np.linalg.eigvals(A).real < 0), "the sign convention makes HiPPO-LegS stable"


@pytest.mark.parametrize("init", [s4d_lin, s4d_inv, s4d_real, hippo_legs])
@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4", None])
def test_inits_reject_bad_state_size(init, bad):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        init(bad)


def test_conjugate_pairs_appends_conjugates(rng):
    n = 5
    A = s4d_lin(n)
    B = rng.normal(size=n) + 1j * rng.normal(size=n)
    C = rng.normal(size=n) + 1j * rng.normal(size=n)
    A2, B2, C2 = conjugate_pairs(A, B, C)
    for full, half in ((A2, A), (B2, B), (C2, C)):
        assert full.shape == (2 * n,)
        np.testing.assert_array_equal(full[:n], half)
        np.testing.assert_array_equal(full[n:], np.conj(half))


def test_real_block_form_has_the_conjugate_spectrum(rng):
    n = 4
    A = -rng.uniform(0.1, 1, n) + 1j * rng.uniform(-5, 5, n)
    B = rng.normal(size=n) + 1j * rng.normal(size=n)
    C = rng.normal(size=n) + 1j * rng.normal(size=n)
    A_real, B_real, C_real = real_block_form(A, B, C)
    assert A_real.dtype == B_real.dtype == C_real.dtype == np.float64
    assert A_real.shape == (2 * n, 2 * n) and B_real.shape == C_real.shape == (2 * n,)
    key = lambda z: np.lexsort((np.round(z.imag, 9), np.round(z.real, 9)))
    full = np.concatenate([A, A.conj()])
    eig = np.linalg.eigvals(A_real)
    np.testing.assert_allclose(eig[key(eig)], full[key(full)], atol=1e-12)
    # transfer functions agree at a few points s: C (s − A)⁻¹ B, full complex vs real block form
    for s in (0.3j, 1.0 + 2j, -0.05 + 7j, 0.7 + 0j):
        full_H = sum(c * b / (s - a) for a, b, c in zip(*conjugate_pairs(A, B, C)))
        real_H = C_real @ np.linalg.solve(s * np.eye(2 * n) - A_real, B_real)
        half_H = sum(c * b / (s - a) for a, b, c in zip(A, B, C))
        assert cmath.isclose(real_H, full_H, rel_tol=1e-12)
        # and for real s the full system is real: 2·Re of the half one
        if s.imag == 0:
            assert cmath.isclose(full_H, 2 * half_H.real, rel_tol=1e-12)


@pytest.mark.parametrize(
    "shapes, match",
    [
        (((3,), (3,), (4,)), "same"),
        (((2, 3), (2, 3), (2, 3)), "expected \\(n,\\)"),
        (((3,), (3, 1), (3,)), "B has shape"),
    ],
)
def test_conjugate_helpers_reject_bad_shapes(shapes, match):
    A, B, C = (np.ones(s, dtype=complex) for s in shapes)
    for helper in (conjugate_pairs, real_block_form):
        with pytest.raises(ValueError, match=match):
            helper(A, B, C)
