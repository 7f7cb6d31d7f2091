"""Lesson 5's exercise checkers (topic ``experiments``): right answers pass, wrong ones are explained."""

import torch

from mamba_edu.experiments.tasks import MARKER, NOISE, TRIGGER


def test_exercise_checkers_accept_right_and_explain_wrong_answers():
    from mamba_edu.exercises.experiments import check_copying_solver, check_induction_solver, check_skip_delta

    def copy_right(inputs):
        n_data = int((inputs[0] == MARKER).sum())
        memory = inputs[:, :-n_data]
        return torch.stack([row[row != NOISE] for row in memory])

    def induction_right(inputs):
        p = (inputs[:, :-1] == TRIGGER).long().argmax(1)
        return inputs[torch.arange(len(inputs)), p + 1]

    assert check_copying_solver(copy_right).ok
    assert check_induction_solver(induction_right).ok
    assert check_skip_delta(0.0).ok and check_skip_delta(0).ok
    wrong = check_copying_solver(lambda inputs: inputs[:, :2])
    assert not wrong.ok and "shape" in wrong.message
    assert not check_copying_solver(lambda inputs: 1 / 0).ok  # a crash is feedback, not an exception
    assert not check_induction_solver(lambda inputs: inputs[:, -2]).ok
    for bad in (None, "x", -1.0, 0.5):
        feedback = check_skip_delta(bad)
        assert not feedback.ok and feedback.message
