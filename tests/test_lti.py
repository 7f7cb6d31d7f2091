"""ContinuousSSM against scipy.signal and closed forms (lesson 1).

Tolerances: 1e-10 absolute against scipy.signal (both are exact up to round-off);
1e-12 against closed forms.
"""

import numpy as np
import pytest
import scipy.signal as sig

from mamba_edu import ContinuousSSM
from mamba_edu.lti import oscillator


def random_stable_system(rng, n):
    A = rng.normal(size=(n, n)) - (n / 2 + 1) * np.eye(n)
    return A, rng.normal(size=n), rng.normal(size=n), float(rng.normal())


def as_scipy(A, B, C, D):
    return (A, B[:, None], C[None, :], np.array([[D]]))


@pytest.mark.parametrize("n", [1, 2, 3, 6])
@pytest.mark.parametrize("seed", range(4))
def test_responses_match_scipy_signal(n, seed):
    rng = np.random.default_rng(seed)
    A, B, C, D = random_stable_system(rng, n)
    ssm, ref = ContinuousSSM(A, B, C, D), as_scipy(A, B, C, D)
    t = np.linspace(0, 6, 301)
    _, y_imp = sig.impulse(ref, T=t)
    _, y_step = sig.step(ref, T=t)
    np.testing.assert_allclose(ssm.impulse_response(t), y_imp, atol=1e-10)
    np.testing.assert_allclose(ssm.step_response(t), y_step, atol=1e-10)
    omega = np.logspace(-2, 2, 60)
    _, H = sig.freqresp(ref, w=omega)
    np.testing.assert_allclose(ssm.frequency_response(omega), H, atol=1e-10)
    u = np.sin(2.3 * t) + 0.3 * rng.normal(size=t.size)
    h0 = rng.normal(size=n)
    _, y_lsim, h_lsim = sig.lsim(ref, u, t, X0=h0)
    y, h = ssm.simulate(u, t, h0=h0, return_state=True)
    np.testing.assert_allclose(y, y_lsim, atol=1e-10)
    np.testing.assert_allclose(h, h_lsim.reshape(len(t), n), atol=1e-10)
    _, y_zoh, _ = sig.lsim(ref, u, t, X0=h0, interp=False)
    np.testing.assert_allclose(ssm.simulate(u, t, h0=h0, interp="zoh"), y_zoh, atol=1e-10)


def test_scalar_system_is_an_exponential():
    lam, t = -0.7, np.linspace(0, 5, 11)
    ssm = ContinuousSSM(lam, 1.0, 1.0)
    np.testing.assert_allclose(ssm.impulse_response(t), np.exp(lam * t), rtol=1e-13)
    np.testing.assert_allclose(ssm.step_response(t), (np.exp(lam * t) - 1) / lam, rtol=1e-12, atol=1e-15)
    assert ssm.is_stable and np.allclose(ssm.eigenvalues, lam)


@pytest.mark.parametrize("alpha,beta", [(-0.3, 2.0), (0.2, 5.0), (0.0, 1.0), (-1.5, 0.0)])
def test_damped_oscillator_closed_form(alpha, beta):
    t = np.linspace(0, 8, 97)
    ssm = oscillator(alpha, beta)
    np.testing.assert_allclose(ssm.impulse_response(t), np.exp(alpha * t) * np.cos(beta * t), atol=1e-12)
    expected = np.sort_complex([alpha - 1j * beta, alpha + 1j * beta])
    np.testing.assert_allclose(np.sort_complex(ssm.eigenvalues), expected)
    assert ssm.is_stable == (alpha < 0)
    # the state under an impulse, h(t) = e^{At}B = e^{αt}[cos βt, sin βt], via simulate with h0 = B and u = 0
    _, h = ssm.simulate(np.zeros_like(t), t, h0=[1.0, 0.0], return_state=True)
    np.testing.assert_allclose(h, np.exp(alpha * t)[:, None] * np.c_[np.cos(beta * t), np.sin(beta * t)], atol=1e-12)


def test_defective_matrix_uses_exact_exponential():
    # Jordan block: not diagonalizable; K(t) = t e^{-t}, step = 1 - (1 + t) e^{-t}
    ssm = ContinuousSSM([[-1.0, 1.0], [0.0, -1.0]], [0.0, 1.0], [1.0, 0.0])
    t = np.linspace(0, 6, 25)
    np.testing.assert_allclose(ssm.impulse_response(t), t * np.exp(-t), atol=1e-12)
    np.testing.assert_allclose(ssm.step_response(t), 1 - (1 + t) * np.exp(-t), atol=1e-12)


def test_singular_A_step_response_is_a_ramp():
    ssm = ContinuousSSM([[0.0]], [2.0], [1.5])  # integrator: y = 3 t
    t = np.linspace(0, 2, 5)
    np.testing.assert_allclose(ssm.step_response(t), 3 * t, atol=1e-14)


def test_stability_on_the_boundary_is_not_stable():
    assert not oscillator(0.0, 3.0).is_stable
    assert oscillator(-1e-9, 3.0).is_stable


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(A=np.ones((2, 3)), B=np.ones(2), C=np.ones(2)), r"A must be a square matrix .* \(2, 3\)"),
        (dict(A=np.eye(3), B=np.ones(2), C=np.ones(3)), r"B has shape \(2,\), expected \(n,\) = \(3,\)"),
        (dict(A=np.eye(3), B=np.ones(3), C=np.ones(4)), r"C has shape \(4,\), expected \(n,\) = \(3,\)"),
        (dict(A=[[np.nan]], B=[1.0], C=[1.0]), r"A must be finite"),
        (dict(A=[[1.0]], B=[np.inf], C=[1.0]), r"B must be finite"),
        (dict(A=[[1.0]], B=[1.0], C=[1.0], D=[1.0, 2.0]), r"D must be a scalar"),
    ],
)
def test_bad_construction_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContinuousSSM(**kwargs)


def test_bad_times_and_inputs():
    ssm = oscillator(-0.5, 1.0)
    with pytest.raises(ValueError, match=r"t must be 1-D .* \(2, 2\)"):
        ssm.impulse_response(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"t must be finite"):
        ssm.step_response([0.0, np.nan])
    with pytest.raises(ValueError, match=r"omega must be 1-D"):
        ssm.frequency_response(1.0)
    with pytest.raises(ValueError, match=r"u has shape \(3,\), expected the shape of t \(4,\)"):
        ssm.simulate(np.zeros(3), np.arange(4.0))
    with pytest.raises(ValueError, match=r"uniformly spaced"):
        ssm.simulate(np.zeros(3), np.array([0.0, 1.0, 3.0]))
    with pytest.raises(ValueError, match=r"h0 has shape \(3,\), expected \(n,\) = \(2,\)"):
        ssm.simulate(np.zeros(3), np.arange(3.0), h0=np.zeros(3))
