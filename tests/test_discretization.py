"""discretize / discretize_diag against scipy.signal.cont2discrete, closed forms and float64 loops.

Tolerances: 1e-9 (relative to max(1, |reference|)) against cont2discrete and numerical quadrature;
1e-14 relative for the λ → 0 limits (against mpmath at 50 digits); 1e-12 for torch vs numpy.
"""

import math

import mpmath
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg
import scipy.signal
import torch

from mamba_edu import discretize, discretize_diag
from mamba_edu.discretization import METHODS, phi1, zoh_B_bar_naive

SCIPY_NAME = {"zoh": "zoh", "bilinear": "bilinear", "euler": "euler", "backward_euler": "backward_diff"}
DELTAS = [1e-3, 1e-2, 0.1, 0.5, 1.0, 2.0]


def _random_system(rng, n, m):
    # eigenvalues spread over the left half-plane and a bit beyond, with random coupling
    A = rng.standard_normal((n, n)) - 0.5 * np.eye(n)
    B = rng.standard_normal((n, m))
    return A, B


def _close(actual, reference, tol):
    return np.max(np.abs(actual - reference)) / max(1.0, np.max(np.abs(reference))) < tol


# ------------------------------------------------------------------------------------------------
# dense A
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", list(SCIPY_NAME))
def test_dense_matches_cont2discrete_on_random_systems(rng, method):
    worst = 0.0
    for trial in range(12):
        n, m = 1 + trial % 5, 1 + trial % 3
        A, B = _random_system(rng, n, m)
        C, D = np.eye(n), np.zeros((n, m))
        for delta in DELTAS:
            ref_A, ref_B, *_ = scipy.signal.cont2discrete((A, B, C, D), delta, method=SCIPY_NAME[method])
            A_bar, B_bar = discretize(A, B, delta, method)
            assert A_bar.shape == (n, n) and B_bar.shape == (n, m) and A_bar.dtype == np.float64
            for got, ref in ((A_bar, ref_A), (B_bar, ref_B)):
                err = np.max(np.abs(got - ref)) / max(1.0, np.max(np.abs(ref)))
                worst = max(worst, err)
    assert worst < 1e-9, f"largest relative error vs cont2discrete: {worst:.2e}"


def test_dense_zoh_matches_quadrature_and_eigendecomposition(rng):
    """Independent of expm: B̄ = ∫₀^Δ e^{τA} dτ B by adaptive quadrature, Ā by diagonalisation."""
    for n in (1, 3, 4):
        A, B = _random_system(rng, n, 2)
        lam, V = np.linalg.eig(A)
        for delta in (0.05, 0.7, 2.0):
            A_bar, B_bar = discretize(A, B, delta)
            A_eig = (V * np.exp(delta * lam)) @ np.linalg.inv(V)
            assert _close(A_bar, A_eig.real, 1e-10)
            integrand = lambda tau, A=A, B=B: scipy.linalg.expm(tau * A) @ B
            B_quad, _ = scipy.integrate.quad_vec(integrand, 0.0, delta, epsabs=1e-13)
            assert _close(B_bar, B_quad, 1e-9)


def test_dense_zoh_singular_A_closed_forms():
    # integrator A = 0: Ā = I, B̄ = ΔB
    A_bar, B_bar = discretize(np.zeros((2, 2)), np.array([1.0, -2.0]), 0.3)
    np.testing.assert_allclose(A_bar, np.eye(2), atol=1e-15)
    np.testing.assert_allclose(B_bar, [0.3, -0.6], atol=1e-15)
    # double integrator: Ā = [[1, Δ], [0, 1]], B̄ = [Δ²/2, Δ]
    delta = 0.7
    A_bar, B_bar = discretize([[0.0, 1.0], [0.0, 0.0]], [0.0, 1.0], delta)
    np.testing.assert_allclose(A_bar, [[1, delta], [0, 1]], atol=1e-15)
    np.testing.assert_allclose(B_bar, [delta**2 / 2, delta], atol=1e-15)


def test_dense_mamba_rule_is_exact_A_bar_and_delta_B(rng):
    A, B = _random_system(rng, 4, 3)
    A_bar, B_bar = discretize(A, B, 0.4, "mamba")
    np.testing.assert_allclose(A_bar, scipy.linalg.expm(0.4 * A), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(B_bar, 0.4 * B, rtol=0, atol=0)


def test_dense_vector_B_keeps_its_shape_and_complex_A_works(rng):
    A, B = _random_system(rng, 3, 1)
    A_bar, B_bar = discretize(A, B[:, 0], 0.2)
    assert B_bar.shape == (3,)
    np.testing.assert_allclose(B_bar, discretize(A, B, 0.2)[1][:, 0], rtol=1e-15)
    Ac = A + 1j * rng.standard_normal((3, 3))
    A_bar, B_bar = discretize(Ac, B, 0.2)
    assert A_bar.dtype == np.complex128
    np.testing.assert_allclose(A_bar, scipy.linalg.expm(0.2 * Ac), rtol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_dense_of_a_diagonal_matrix_equals_discretize_diag(rng, method):
    lam = np.array([-2.0 + 3.0j, -0.1 - 1.0j, 0.0, -5.0 + 0.0j, 0.3j])
    B = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    for delta in (0.01, 0.3, 1.7):
        A_bar, B_bar = discretize(np.diag(lam), B, delta, method)
        A_bar_d, B_bar_d = discretize_diag(lam, B, delta, method)
        np.testing.assert_allclose(np.diag(A_bar), A_bar_d, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(A_bar - np.diag(np.diag(A_bar)), 0, atol=1e-14)
        np.testing.assert_allclose(B_bar, B_bar_d, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------------
# diagonal A: formulas, λ → 0, broadcasting
# ------------------------------------------------------------------------------------------------
def _scalar_rule(lam, b, delta, method):
    """One eigenvalue, written out with Python complex arithmetic (the test's own reference)."""
    z = delta * lam
    if method == "zoh":
        return complex(mpmath.exp(z)), complex((mpmath.exp(z) - 1) / lam * b) if lam != 0 else delta * b
    if method == "mamba":
        return complex(mpmath.exp(z)), delta * b
    if method == "euler":
        return 1 + z, delta * b
    if method == "backward_euler":
        return 1 / (1 - z), delta * b / (1 - z)
    return (1 + z / 2) / (1 - z / 2), delta * b / (1 - z / 2)


@pytest.mark.parametrize("method", METHODS)
def test_diag_matches_scalar_loop_on_mamba_shapes(rng, method):
    b, d, l, n = 2, 3, 4, 5
    A = -np.exp(rng.standard_normal((d, 1, n))) + 1j * rng.standard_normal((d, 1, n))  # (d, 1, n)
    delta = np.exp(rng.uniform(-4, 0.5, (b, d, l, 1)))  # (b, d, l, 1)
    B = rng.standard_normal((b, 1, l, n))  # (b, 1, l, n)
    A_bar, B_bar = discretize_diag(A, B, delta, method)
    assert A_bar.shape == B_bar.shape == (b, d, l, n)
    mpmath.mp.dps = 30
    for i, j, k, s in np.ndindex(b, d, l, n):
        ref_A, ref_B = _scalar_rule(A[j, 0, s], B[i, 0, k, s], delta[i, j, k, 0], method)
        assert abs(A_bar[i, j, k, s] - ref_A) <= 1e-13 * max(1, abs(ref_A))
        assert abs(B_bar[i, j, k, s] - ref_B) <= 1e-13 * max(1, abs(ref_B))


def test_diag_output_shapes_broadcast_B_even_when_B_bar_does_not_depend_on_A():
    A_bar, B_bar = discretize_diag(np.full((3, 4), -1.0), 2.0, 0.5, "mamba")
    assert A_bar.shape == B_bar.shape == (3, 4)
    np.testing.assert_array_equal(B_bar, 1.0)
    A_bar, B_bar = discretize_diag(-1.0, 1.0, 0.5)  # all scalars
    assert A_bar.shape == B_bar.shape == ()
    np.testing.assert_allclose([A_bar, B_bar], [math.exp(-0.5), 1 - math.exp(-0.5)], rtol=1e-15)


@pytest.mark.parametrize("lam", [0.0, -1e-9, 1e-9, -1e-5 + 2e-5j, -3e-5, 2e-4, -1e-4 - 1e-12j, -0.5 + 7.0j])
@pytest.mark.parametrize("delta", [1e-3, 1.0, 5.0])
def test_zoh_B_bar_near_zero_eigenvalue_is_exact(lam, delta):
    mpmath.mp.dps = 50
    z = mpmath.mpc(delta) * mpmath.mpc(lam)
    ref = delta * (mpmath.expm1(z) / z if z != 0 else mpmath.mpf(1))
    _, B_bar = discretize_diag(np.array(lam), 1.0, delta)
    assert np.isfinite(B_bar)
    assert abs(complex(B_bar) - complex(ref)) <= 2e-15 * abs(complex(ref))


def test_phi1_series_and_quotient_agree_at_the_switch():
    z = np.array([0.99999e-4, 1.00001e-4, -0.99999e-4, -1.00001e-4, 1e-4j, -1e-4j])
    mpmath.mp.dps = 50
    ref = np.array([complex(mpmath.expm1(mpmath.mpc(v)) / mpmath.mpc(v)) for v in z])
    np.testing.assert_allclose(phi1(z), ref, rtol=2e-16)
    assert phi1(np.array(0.0)) == 1.0


def test_naive_zoh_formula_loses_digits_where_the_stable_one_does_not():
    lam, delta = -1e-9, 1.0
    exact = delta * (1 + delta * lam / 2)  # phi1 to second order; next term ~1e-19
    naive = zoh_B_bar_naive(np.array(lam), 1.0, delta)
    stable = discretize_diag(np.array(lam), 1.0, delta)[1]
    assert abs(naive - exact) > 1e-9  # only ~7 digits survive the cancellation
    assert abs(stable - exact) < 1e-16
    assert np.isnan(zoh_B_bar_naive(np.array(0.0), 1.0, delta))


@pytest.mark.parametrize("method", METHODS)
def test_large_delta_resets_small_delta_keeps_the_state(method):
    lam = -1.0
    A_small, B_small = discretize_diag(lam, 1.0, 1e-4, method)
    assert abs(A_small - 1) < 2e-4 and abs(B_small) < 2e-4  # keep h, ignore u
    if method in ("zoh", "mamba", "backward_euler"):
        A_big, _ = discretize_diag(lam, 1.0, 50.0, method)
        assert abs(A_big) < 0.02  # forget h
    if method == "euler":
        assert abs(discretize_diag(lam, 1.0, 3.0, method)[0]) > 1  # leaves the unit circle for Δ > 2/|λ|


# ------------------------------------------------------------------------------------------------
# torch: same values, dtype and device; gradients
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_torch_matches_numpy_and_keeps_dtype(rng, method):
    A = rng.standard_normal((4, 4)) - np.eye(4)
    B = rng.standard_normal((4, 2))
    ref = discretize(A, B, 0.3, method)
    got = discretize(torch.tensor(A), torch.tensor(B), torch.tensor(0.3, dtype=torch.float64), method)
    for g, r in zip(got, ref):
        assert isinstance(g, torch.Tensor) and g.dtype == torch.float64
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-12, atol=1e-14)
    got32 = discretize(torch.tensor(A, dtype=torch.float32), B.astype(np.float32), 0.3, method)
    assert all(g.dtype == torch.float32 for g in got32)
    np.testing.assert_allclose(got32[0].numpy(), ref[0], rtol=1e-4, atol=1e-5)
    # a float64 numpy B beside a float32 tensor takes part in the promotion, as it would in torch
    assert all(g.dtype == torch.float64 for g in discretize(torch.tensor(A, dtype=torch.float32), B, 0.3, method))

    lam = -np.exp(rng.standard_normal((3, 1, 4))) + 1j * rng.standard_normal((3, 1, 4))
    delta = np.exp(rng.uniform(-3, 0, (2, 3, 5, 1)))
    ref = discretize_diag(lam, 1.0, delta, method)
    got = discretize_diag(torch.tensor(lam), 1.0, torch.tensor(delta), method)
    for g, r in zip(got, ref):
        assert g.dtype == torch.complex128 and g.shape == (2, 3, 5, 4)
        np.testing.assert_allclose(g.numpy(), r, rtol=1e-12, atol=1e-14)
    lam32, delta32 = torch.tensor(lam.real, dtype=torch.float32), torch.tensor(delta, dtype=torch.float32)
    got = discretize_diag(lam32, torch.ones(4), delta32, method)
    assert all(g.dtype == torch.float32 for g in got)


@pytest.mark.parametrize("method", METHODS)
def test_diag_gradcheck(rng, method):
    # includes eigenvalues in the series branch (|Δλ| < 1e-4) and exactly 0
    lam = torch.tensor([-1.3, -0.2, -1e-6, 0.0, 0.4], dtype=torch.float64, requires_grad=True)
    lam_c = torch.tensor([-1.3 + 2j, -1e-6 + 1e-6j, -0.5 - 4j], dtype=torch.complex128, requires_grad=True)
    B = torch.tensor(rng.standard_normal(5), requires_grad=True)
    delta = torch.tensor([[0.1], [0.7]], dtype=torch.float64, requires_grad=True)  # (2, 1) → (2, 5)

    assert torch.autograd.gradcheck(lambda a, b, dt: discretize_diag(a, b, dt, method), (lam, B, delta))
    assert torch.autograd.gradcheck(lambda a, dt: discretize_diag(a, 1.0, dt, method), (lam_c, delta))


def test_zoh_gradient_at_zero_eigenvalue_is_the_limit():
    # d/dλ [(e^{Δλ} − 1)/λ] at λ = 0 is Δ²/2; d/dΔ at λ = 0 is 1
    lam = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    delta = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    _, B_bar = discretize_diag(lam, 1.0, delta)
    B_bar.sum().backward()
    assert abs(lam.grad.item() - 0.18) < 1e-15 and abs(delta.grad.item() - 1.0) < 1e-15


@pytest.mark.parametrize("method", METHODS)
def test_dense_gradcheck(rng, method):
    A = torch.tensor(rng.standard_normal((3, 3)) - np.eye(3), requires_grad=True)
    B = torch.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    delta = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, dt: discretize(a, b, dt, method), (A, B, delta))


# ------------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [discretize, discretize_diag])
@pytest.mark.parametrize("delta", [0.0, -0.1, np.nan, np.inf, np.array([0.1, -1.0])])
def test_bad_delta_is_named(fn, delta):
    if fn is discretize and np.ndim(delta):
        delta = np.array(-1.0)
    with pytest.raises(ValueError, match="delta"):
        fn(-np.eye(2) if fn is discretize else -np.ones(2), np.ones(2), delta)


@pytest.mark.parametrize("fn", [discretize, discretize_diag])
def test_unknown_method_lists_the_methods(fn):
    with pytest.raises(ValueError, match="'zoh', 'bilinear', 'euler', 'backward_euler', 'mamba'"):
        fn(-np.eye(2), np.ones(2), 0.1, method="tustin")


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match=r"A has shape \(2, 3\)"):
        discretize(np.ones((2, 3)), np.ones(2), 0.1)
    with pytest.raises(ValueError, match=r"B has shape \(3,\).*n = 2"):
        discretize(-np.eye(2), np.ones(3), 0.1)
    with pytest.raises(ValueError, match=r"delta has shape \(2,\)"):
        discretize(-np.eye(2), np.ones(2), np.array([0.1, 0.2]))
    shapes = r"A has shape \(3, 1, 4\), B has shape \(5,\) and delta has shape \(2, 3, 7, 1\)"
    with pytest.raises(ValueError, match=shapes):
        discretize_diag(-np.ones((3, 1, 4)), np.ones(5), np.ones((2, 3, 7, 1)))


def test_non_finite_A_or_B_and_poles_raise():
    with pytest.raises(ValueError, match="A must be finite"):
        discretize_diag(np.array([-1.0, np.nan]), 1.0, 0.1)
    with pytest.raises(ValueError, match="B must be finite"):
        discretize(-np.eye(2), np.array([1.0, np.inf]), 0.1)
    with pytest.raises(ValueError, match="bilinear has a pole"):
        discretize_diag(np.array([4.0]), 1.0, 0.5, "bilinear")
    with pytest.raises(ValueError, match="singular"):
        discretize(np.eye(2), np.ones(2), 1.0, "backward_euler")
    with pytest.raises(ValueError, match="delta must be real"):
        discretize_diag(-1.0, 1.0, 0.1 + 0j)
    with pytest.raises(ValueError, match="delta must be positive"):
        discretize_diag(torch.tensor([-1.0]), 1.0, torch.tensor([0.0]))


def test_mamba_rule_reproduces_mambapy_selective_scan(rng):
    """mambapy (an independent pure-PyTorch Mamba) uses deltaA = exp(ΔA), deltaB = ΔB; our 'mamba' rule,
    run through a float64 loop, must give its outputs (mambapy runs in float32: rtol 1e-4)."""
    from mambapy.mamba import MambaBlock, MambaConfig

    b, l, d_model, n = 2, 7, 3, 5
    block = MambaBlock(MambaConfig(d_model=d_model, n_layers=1, d_state=n, expand_factor=2))
    d = block.config.d_inner
    u = rng.standard_normal((b, l, d))
    delta = np.exp(rng.uniform(-3, 0.5, (b, l, d)))
    A = -np.exp(rng.standard_normal((d, n)))
    B, C, D = rng.standard_normal((b, l, n)), rng.standard_normal((b, l, n)), rng.standard_normal(d)
    with torch.no_grad():
        args = [torch.tensor(v, dtype=torch.float32) for v in (u, delta, A, B, C, D)]
        y_ref = block.selective_scan_seq(*args).double().numpy()

    A_bar, B_bar = discretize_diag(A, B[:, :, None, :], delta[..., None], "mamba")  # (b, l, d, n)
    h, y = np.zeros((b, d, n)), np.zeros((b, l, d))
    for t in range(l):
        h = A_bar[:, t] * h + B_bar[:, t] * u[:, t, :, None]
        y[:, t] = (h * C[:, t, None, :]).sum(-1) + D * u[:, t]
    np.testing.assert_allclose(y, y_ref, rtol=1e-4, atol=1e-4)
    # and ZOH's B̄ would not match it
    B_zoh = discretize_diag(A, B[:, :, None, :], delta[..., None], "zoh")[1]
    assert np.abs(B_zoh - B_bar).max() > 1e-2


def test_me_discretize_is_the_function_whichever_import_came_first():
    """Importing the submodule first must not shadow the top-level function ``me.discretize``."""
    import subprocess
    import sys

    code = (
        "import math\n"
        "from mamba_edu.discretization import phi1\n"
        "import mamba_edu as me\n"
        "from mamba_edu import discretize\n"
        "A_bar, B_bar = me.discretize([[-1.0]], [1.0], 0.5, method='zoh')\n"
        "assert abs(A_bar[0, 0] - math.exp(-0.5)) < 1e-15 and abs(B_bar[0] + math.expm1(-0.5)) < 1e-15\n"
        "assert discretize([[-1.0]], [1.0], 0.5, 'mamba')[1][0] == 0.5\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
