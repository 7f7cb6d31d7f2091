"""Exercise checkers for lesson 5 (why selection matters). Each returns a Feedback, never raises for a wrong answer."""

import math

import torch

from mamba_edu.exercises.feedback import Feedback, call, checker, number
from mamba_edu.experiments.tasks import induction_heads_batch, selective_copying_batch


def _try_solver(solver, inputs):
    result, bad = call(solver, inputs.clone())
    if bad is not None:
        return None, bad.message
    try:
        got = torch.as_tensor(result)
    except Exception:  # noqa: BLE001 -- e.g. a list of tensors (one per row), or text
        return None, (f"your function returned a {type(result).__name__} that is not one tensor of token ids "
                      "(torch.stack joins a list of rows into one tensor)")
    if got.is_complex() or not (got.is_floating_point() or got.dtype in (torch.int64, torch.int32, torch.int16,
                                                                         torch.int8, torch.uint8)):
        return None, f"your function returned {got.dtype} values; expected token ids (whole numbers)"
    if got.is_floating_point() and not bool((torch.isfinite(got) & (got == got.round())).all()):
        return None, "your function returned values that are not whole numbers (or NaN/inf); expected token ids"
    return got, None


@checker
def check_copying_solver(solver, seed=0):
    """Exercise 1: ``solver(inputs)`` maps a selective-copying batch (b, l) to its answers (b, n_data).

    Explained in lesson 5.
    """
    if not callable(solver):
        return Feedback.wrong(f"expected a function inputs -> answers, got {type(solver).__name__}")
    gen = torch.Generator().manual_seed(seed)
    for n_data, n_noise in ((4, 30), (2, 7), (6, 100)):
        inputs, targets = selective_copying_batch(16, n_data, n_noise, 8, gen)
        want = targets[:, -n_data:]
        got, error = _try_solver(solver, inputs)
        if error:
            return Feedback.wrong(error)
        if tuple(got.shape) != tuple(want.shape):
            return Feedback.wrong(f"for n_data={n_data} the answers should have shape {tuple(want.shape)}, "
                                  f"got {tuple(got.shape)}: one row of n_data tokens per sequence")
        if not torch.equal(got.long(), want):
            row = int((got.long() != want).any(1).nonzero()[0])
            return Feedback.wrong(f"row {row} of a batch with n_data={n_data}: expected {want[row].tolist()}, got "
                                  f"{got[row].tolist()}. Keep the non-noise tokens before the markers, in order.")
    return Feedback.right("you skip the noise by *content* — the rule a selective SSM learns with Δ_t.")


@checker
def check_induction_solver(solver, seed=0):
    """Exercise 2: ``solver(inputs)`` maps an induction-heads batch (b, l) to the answers (b,).

    Explained in lesson 5.
    """
    if not callable(solver):
        return Feedback.wrong(f"expected a function inputs -> answers, got {type(solver).__name__}")
    gen = torch.Generator().manual_seed(seed)
    for length in (6, 32, 200):
        inputs, targets = induction_heads_batch(16, length, 10, gen)
        want = targets[:, -1]
        got, error = _try_solver(solver, inputs)
        if error:
            return Feedback.wrong(error)
        if tuple(got.shape) != (16,):
            return Feedback.wrong(f"expected one answer per sequence, shape (16,), got {tuple(got.shape)}")
        if not torch.equal(got.long(), want):
            row = int((got.long() != want).nonzero()[0])
            return Feedback.wrong(f"length {length}, row {row}: expected {int(want[row])}, got {int(got[row])}. "
                                  "Find the first trigger (token 0) and return the token right after it.")
    return Feedback.right("the same rule works at every length: that is why a model that learns it extrapolates.")


@checker
def check_skip_delta(delta_noise, A=-1.0):
    """Exercise 3: the step size Δ on a noise token that leaves the state h exactly unchanged.

    With Ā = exp(ΔA) and B̄ = ΔB, h_t = Ā h_{t−1} + B̄ u_t equals h_{t−1} for every h and u iff Δ = 0.
    Explained in lesson 5.
    """
    (value, bad), (A, bad_A) = number(delta_noise, "Δ"), number(A, "A")
    if bad is not None or bad_A is not None:
        return bad if bad is not None else bad_A
    if value < 0:
        return Feedback.wrong(f"Δ is a step size: it must be ≥ 0, got {value}")
    A_bar, B_bar = math.exp(value * A), value
    if value == 0.0:
        return Feedback.right("Δ = 0 gives Ā = 1 and B̄ = 0: the token is skipped, the memory is untouched.")
    return Feedback.wrong(f"with Δ = {value}: Ā = exp(ΔA) = {A_bar:.3g} (the memory fades) and B̄ = ΔB = {B_bar:.3g} "
                          "(the noise is written in). Which Δ makes Ā = 1 and B̄ = 0?")


__all__ = ["check_copying_solver", "check_induction_solver", "check_skip_delta"]
