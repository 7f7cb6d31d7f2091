"""Lesson-1 exercise checkers accept right answers and explain wrong ones."""

import numpy as np

from mamba_edu import ContinuousSSM
from mamba_edu.exercises.lti import STABILITY_QUIZ, check_oscillator_design, check_stable_set, check_step_final_value


def test_stable_set():
    truth = {k for k, A in STABILITY_QUIZ.items() if np.linalg.eigvals(A).real.max() < 0}
    assert check_stable_set(truth)
    wrong = check_stable_set(truth | {"A2"})
    assert not wrong and "A2 is not stable" in wrong.message and "Re λ = +0" in wrong.message
    assert "A1 is stable" in check_stable_set(truth - {"A1"}).message
    assert "not in STABILITY_QUIZ" in check_stable_set({"A9"}).message


def test_oscillator_design():
    alpha, beta = -np.log(2) / 2.0, 2 * np.pi * 0.5
    assert check_oscillator_design([[alpha, -beta], [beta, alpha]])
    fb = check_oscillator_design([[-0.5, -beta], [beta, -0.5]])
    assert not fb and "α = −ln2/2.0" in fb.message
    fb = check_oscillator_design([[alpha, -1.0], [1.0, alpha]])
    assert not fb and "β = 2π·0.5" in fb.message
    assert "2×2" in check_oscillator_design(np.eye(3)).message


def test_step_final_value():
    ssm = ContinuousSSM([[-2.0, 1.0], [0.0, -1.0]], [1.0, 1.0], [1.0, 0.5], D=0.25)
    truth = float(ssm.step_response([60.0])[0])
    assert check_step_final_value(ssm, truth)
    fb = check_step_final_value(ssm, truth + 0.1)
    assert not fb and "h' = 0" in fb.message
    assert not check_step_final_value(ContinuousSSM([[0.5]], [1.0], [1.0]), 1.0)


def test_step_final_value_reads_one_number_like_every_checker():
    """A right value in a one-element array (the late step response, or C A⁻¹ B with C as a 1×2 row) was
    refused with "has shape (1,), expected ()"; every other checker reads one number this way."""
    ssm = ContinuousSSM([[-2.0, 1.0], [0.0, -1.0]], [1.0, 1.0], [1.0, 0.5], D=0.25)
    truth = -np.array([[1.0, 0.5]]) @ np.linalg.solve(ssm.A, np.array([[1.0], [1.0]])) + 0.25  # (1, 1)
    assert np.isclose(truth.item(), 1.75)
    for form in (truth, truth[0], ssm.step_response([60.0]), [1.75], 1.75 + 0j):
        assert check_step_final_value(ssm, form), form
    for garbage in ([1.75, 1.75], 1.75 + 1j, True, "1.75"):
        result = check_step_final_value(ssm, garbage)
        assert not result and "one real, finite number" in result.message, garbage


def test_stable_set_given_as_text_or_mixed_names():
    """ "A1, A3, A5" was read as its characters: "[' ', ',', '1', '3', '5', 'A'] are not in STABILITY_QUIZ"."""
    for text in ("A1, A3, A5", "A1"):
        result = check_stable_set(text)
        assert not result and "not the text" in result.message and "' '" not in result.message
    result = check_stable_set({1, "A9"})  # sorting the unknown names used to fail on mixed types
    assert not result and "[1, 'A9'] are not in STABILITY_QUIZ" in result.message


def test_stable_set_given_as_a_dict_of_verdicts():
    """{name: True/False} means the names marked True (its keys alone would count the ones marked False)."""
    import numpy as np

    from mamba_edu.exercises.lti import STABILITY_QUIZ

    verdicts = {name: bool(np.all(np.linalg.eigvals(A).real < 0)) for name, A in STABILITY_QUIZ.items()}
    assert check_stable_set(verdicts)
    assert not check_stable_set({name: True for name in STABILITY_QUIZ})
