"""Every exercise checker keeps its promise: it never raises, and never accepts garbage.

The checkers are discovered, not listed: every callable named ``check_*`` defined in a module of
``mamba_edu`` whose dotted name contains ``exercises`` (``mamba_edu.exercises.*`` and the lesson on
selection's ``exercises/experiments.py``), so a checker added later is fuzzed too. Each one is
called with each garbage value in each of its parameters (the others at their defaults, or the same
garbage where they have none), and must return a falsy :class:`Feedback` with a message. It is
called again with garbage in one parameter at a time and every other argument right (``RIGHT``, a
right answer for each checker, itself checked to pass): a garbage parameter must not turn a right
answer into a pass, and an answer is fuzzed beside valid other arguments.

A second part checks the tolerances against the digits each exercise text asks for, and the
plausible wrong formulas that must stay rejected (issue 15, item 2).
"""

import importlib
import inspect
import math
import pkgutil

import numpy as np
import pytest
import torch

import mamba_edu
from mamba_edu.exercises import diagonal as ex3
from mamba_edu.exercises import discretization as ex2
from mamba_edu.exercises import experiments as ex5
from mamba_edu.exercises import lti as ex1
from mamba_edu.exercises import scan as ex6
from mamba_edu.exercises import selective as ex4
from mamba_edu.exercises.feedback import Feedback


def _discover():
    found = {}
    for info in pkgutil.walk_packages(mamba_edu.__path__, "mamba_edu."):
        if "exercises" not in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("check_") and callable(obj) and getattr(obj, "__module__", None) == info.name:
                found[f"{info.name}.{name}"] = obj
    return found


CHECKERS = _discover()


def _raises(*args, **kwargs):
    raise RuntimeError("a learner's bug")


class _Weird:
    def __repr__(self):
        raise RuntimeError("even repr fails")

    def __float__(self):
        raise RuntimeError("no float")

    def __iter__(self):
        raise RuntimeError("no iteration")


GARBAGE = {
    "None": None,
    "text": "abc",
    "empty text": "",
    "numeric text": "1.75",
    "bytes": b"0",
    "bytearray": bytearray(b"0"),
    "boolean in a list": [False],
    "boolean array": np.array(True),
    "boolean tensor": torch.tensor(False),
    "ragged list": [1.0, [2.0, 3.0]],
    "empty list": [],
    "dict": {"a": 1},
    "set of numbers": {1, 2},
    "nan": float("nan"),
    "inf": float("inf"),
    "-inf": -math.inf,
    "complex": 1 + 2j,
    "complex nan": complex(math.nan, 0.0),
    "nan array": np.array([np.nan, 1.0]),
    "string array": np.array(["a", "b"]),
    "nan tensor": torch.tensor([math.nan]),
    "object": object(),
    "weird object": _Weird(),
    "function that raises": _raises,
    "function returning None": lambda *a, **k: None,
    "function returning text": lambda *a, **k: "wrong",
    "function returning nan": lambda *a, **k: math.nan,
    "function returning a nan array": lambda *a, **k: np.full(3, np.nan),
    "function returning a nan pair": lambda *a, **k: (math.nan, math.nan),
    "function returning inf pair of arrays": lambda *a, **k: (np.full(5, np.inf), np.full(5, np.inf)),
    "function returning a ragged pair": lambda *a, **k: ([1.0, [2.0]], "x"),
    "function returning a dict": lambda *a, **k: {"a": 1},
    "function returning a weird object": lambda *a, **k: _Weird(),
}

# odd but valid numbers: a checker must not raise on them, but may accept one that is right (Δ = 0 is)
ODD_NUMBERS = {"negative": -1, "zero": 0, "huge": 1e308, "tiny": 1e-308, "bool": True, "numpy int": np.int64(3)}


def _calls(func, values=GARBAGE, right=None):
    """(description, args, kwargs) for every parameter × value. The other required parameters get the same
    value, or with ``right`` (their right arguments) those; the defaulted ones keep their defaults."""
    params = list(inspect.signature(func).parameters.values())
    required = [p for p in params if p.default is inspect.Parameter.empty]
    for pname, value in values.items():
        for i, p in enumerate(params):
            args = [value for _ in required] if right is None else list(right)
            kwargs = {}
            if i < len(required):
                args[i] = value
            else:
                kwargs[p.name] = value
            yield f"{p.name}={pname}" + ("" if right is None else ", others right"), args, kwargs


def _rejected(name, what, args, kwargs):
    """The checker's verdict on garbage: a falsy Feedback with a message, never an exception."""
    try:
        result = CHECKERS[name](*args, **kwargs)
    except Exception as error:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{name}({what}) raised {type(error).__name__}: {error}")
    assert isinstance(result, Feedback), f"{name}({what}) returned {type(result).__name__}"
    assert not result.ok, f"{name}({what}) ACCEPTED garbage: {result.message}"
    assert isinstance(result.message, str) and len(result.message) > 15, f"{name}({what}): {result.message!r}"
    return result


def test_checkers_are_discovered():
    """The discovery finds the checkers of every lesson (a typo here must not make the fuzz test vacuous)."""
    modules = {name.rsplit(".", 1)[0] for name in CHECKERS}
    assert len(CHECKERS) >= 23, sorted(CHECKERS)
    for topic in ("lti", "discretization", "diagonal", "selective", "experiments", "scan", "ssd"):
        assert f"mamba_edu.exercises.{topic}" in modules, modules
    assert any("check_skip_delta" in name for name in CHECKERS)  # lesson 5 (exercises/experiments.py)


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_every_checker_carries_the_never_raises_decorator(name):
    assert getattr(CHECKERS[name], "never_raises", False), (
        f"{name} lacks @checker (mamba_edu.exercises.feedback.checker): wrap every checker with it")


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_fuzz(name):
    """Garbage in every parameter: a Feedback, falsy, with a message; never an exception."""
    func = CHECKERS[name]
    for what, args, kwargs in _calls(func):
        result = _rejected(name, what, args, kwargs)
        answer = next(iter(inspect.signature(func).parameters))
        if what.startswith(answer + "=") and "weird object" not in what:  # only a pathological answer
            # may need the decorator's safety net; an instructor's odd parameter (lam=…) may use it
            assert "could not be checked" not in result.message, f"{name}({what}): {result.message}"


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_odd_numbers_never_raise(name):
    """Odd but valid numbers in every parameter: a Feedback with a message, never an exception."""
    func = CHECKERS[name]
    for what, args, kwargs in _calls(func, ODD_NUMBERS):
        try:
            result = func(*args, **kwargs)
        except Exception as error:  # pragma: no cover
            pytest.fail(f"{name}({what}) raised {type(error).__name__}: {error}")
        assert isinstance(result, Feedback) and result.message, f"{name}({what})"


# ---------------------------------------------------------------------------------------------
# one argument at a time: garbage in one parameter, every other argument valid
# ---------------------------------------------------------------------------------------------
def _right_answers():
    """A right value for every required parameter of every checker (a checker added later must add one)."""
    from mamba_edu import ContinuousSSM
    from mamba_edu.exercises import ssd as ex8
    from mamba_edu.experiments.tasks import MARKER, NOISE, TRIGGER
    from mamba_edu.scans.ssd import ssd_costs

    def stable_zoh(lam, delta):
        z = delta * lam
        safe = np.where(z == 0, 1, z)
        return np.exp(z), np.where(z == 0, delta, np.expm1(safe) / safe * delta)

    def copy(inputs):
        n_data = int((inputs[0] == MARKER).sum())
        return torch.stack([row[row != NOISE] for row in inputs[:, :-n_data]])

    def induction(inputs):
        p = (inputs[:, :-1] == TRIGGER).long().argmax(1)
        return inputs[torch.arange(len(inputs)), p + 1]

    def selective_step(h, u_t, delta_t, A, B_t, C_t):
        h = np.exp(delta_t[:, None] * A) * h + (delta_t[:, None] * B_t) * u_t[:, None]
        return h, h @ C_t

    def decay(a):
        c = np.cumsum(a)
        return np.exp(np.where(np.tri(len(a), dtype=bool), c[:, None] - c[None, :], -np.inf))

    def chunk_state(x, dt, A, B):
        w = np.array([math.exp(A * dt[s + 1:].sum()) * dt[s] for s in range(len(dt))])
        return (x * w[:, None]).T @ B

    ssm = ContinuousSSM([[-2.0, 1.0], [0.0, -1.0]], [1.0, 1.0], [1.0, 0.5], D=0.25)
    alpha, beta = -math.log(2) / 2.0, math.pi
    costs = ssd_costs(4096, 64, 64, 128)
    memory = ssd_costs(65536, np.arange(1, 1025), 64, 128)["chunked"][1]
    right = {
        ex1.check_stable_set: ({k for k, A in ex1.STABILITY_QUIZ.items() if np.linalg.eigvals(A).real.max() < 0},),
        ex1.check_oscillator_design: ([[alpha, -beta], [beta, alpha]],),
        ex1.check_step_final_value: (ssm, float(ssm.step_response([60.0])[0])),
        ex2.check_zoh_by_hand: ((math.exp(-1), -math.expm1(-1) / 2),),
        ex2.check_euler_max_delta: (0.4,),
        ex2.check_stable_zoh: (stable_zoh,),
        ex2.check_forget_delta: (math.log(100),),
        ex2.check_mamba_ratio: (0.1 / -math.expm1(-0.1),),
        ex3.check_period_steps: (2 * math.pi / (ex3.MODE_LAMBDA.imag * ex3.MODE_DELTA),),
        ex3.check_decay_steps: (math.log(100) / (-ex3.MODE_LAMBDA.real * ex3.MODE_DELTA),),
        ex3.check_diagonal_kernel: (lambda A_bar, B_bar, C, L: (A_bar ** np.arange(L)[:, None]) @ (C * B_bar),),
        ex3.check_full_output: (lambda y: 2 * y.real,),
        ex3.check_selective_view: ("scan",),
        ex4.check_token_dependent: ({"delta", "B", "C"},),
        ex4.check_gate: (lambda s: 1 / (1 + np.exp(-s)),),
        ex4.check_state_shape: ((2, 128, 16),),
        ex4.check_selective_step: (selective_step,),
        ex5.check_copying_solver: (copy,),
        ex5.check_induction_solver: (induction,),
        ex5.check_skip_delta: (0.0,),
        ex6.check_combine: (lambda first, second: (first[0] * second[0], second[0] * first[1] + second[1]),),
        ex6.check_hillis_steele_work: (49,),
        ex6.check_best_chunk: (32,),
        ex8.check_offdiagonal_rank: (4,),
        ex8.check_flops_ratio: (float(costs["chunked"][0] / costs["sequential"][0]),),
        ex8.check_memory_chunk: (int(np.argmin(memory)) + 1,),
        ex8.check_decay_matrix: (decay,),
        ex8.check_chunk_state: (chunk_state,),
    }
    return {f"{func.__module__}.{func.__name__}": args for func, args in right.items()}


RIGHT = _right_answers()


def test_every_checker_has_a_right_answer_that_passes():
    """The positive control of the fuzz below: with these arguments each checker says "correct"."""
    assert set(RIGHT) == set(CHECKERS)
    for name, args in RIGHT.items():
        result = CHECKERS[name](*args)
        assert result.ok, f"{name}: {result.message}"


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_checker_fuzz_one_argument_at_a_time(name):
    """Garbage in one parameter, the others right (required ones from RIGHT, the rest at their defaults):
    a falsy Feedback with a message, never an exception — an instructor's garbage parameter must not
    turn a right answer into a pass, and an answer is fuzzed beside a valid system (check_step_final_value)."""
    for what, args, kwargs in _calls(CHECKERS[name], right=RIGHT[name]):
        _rejected(name, what, args, kwargs)


# ---------------------------------------------------------------------------------------------
# tolerances match the digits the exercise texts ask for; plausible wrong formulas stay rejected
# ---------------------------------------------------------------------------------------------


def test_mamba_ratio_six_digits():
    """Text: "compute the ratio ... exactly (6 digits)". 1.05083 was rejected and called 1 − λΔ/2."""
    exact = 0.1 / -math.expm1(-0.1)  # λΔ/(e^{λΔ} − 1) = 1.0508331…
    for answer in (1.05083, 1.050833, exact, 1.05084):
        assert ex2.check_mamba_ratio(answer), answer
    wrong = ex2.check_mamba_ratio(1.05)  # 1 − λΔ/2 to 6 digits
    assert not wrong and "first-order approximation" in wrong.message
    assert not ex2.check_mamba_ratio(1.0508)  # 5 digits: not what was asked
    inverse = ex2.check_mamba_ratio(round(1 / exact, 6))
    assert not inverse and "inverse" in inverse.message


def test_zoh_by_hand_six_digit_calculator_answers():
    """Text: "Give (A_bar, B_bar) to 6 significant digits". e^{−1} = 0.367879…, (1 − e^{−1})/2 = 0.316060…"""
    assert ex2.check_zoh_by_hand((0.367879, 0.316060))
    assert ex2.check_zoh_by_hand((0.367879, 0.31606))
    assert ex2.check_zoh_by_hand(np.array([math.exp(-1), -math.expm1(-1) / 2]))
    assert not ex2.check_zoh_by_hand((0.3679, 0.3161))  # 4 digits
    euler = ex2.check_zoh_by_hand((0.0, 0.5))
    assert not euler and "forward Euler" in euler.message and "Mamba" in euler.message


def test_forget_delta_three_digits():
    """Text: "which Δ ... (3 significant digits)". ln(100) = 4.60517…; 4.61 was rejected."""
    for answer in (4.61, 4.60, 4.605, math.log(100)):
        assert ex2.check_forget_delta(answer), answer
    assert not ex2.check_forget_delta(4.62)
    log10 = ex2.check_forget_delta(2.0)
    assert not log10 and "log10" in log10.message


def test_period_steps_rejects_abs_lambda():
    """Text: "How many steps ... (two decimals)". 2π/(Im λ·Δ) = 41.888; 2π/(|λ|Δ) = 41.795 was accepted."""
    for answer in (41.89, 41.88, 41.9, 2 * math.pi / 0.15):
        assert ex3.check_period_steps(answer), answer
    wrong = ex3.check_period_steps(2 * math.pi / (abs(ex3.MODE_LAMBDA) * ex3.MODE_DELTA))
    assert not wrong and "|λ|" in wrong.message
    assert not ex3.check_period_steps(41.80)
    whole = ex3.check_period_steps(42)
    assert not whole and "two decimals" in whole.message


def test_decay_steps_whole_steps_accepted():
    truth = math.log(100) / (0.2 * 0.05)  # 460.5
    for answer in (460, 461, truth):
        assert ex3.check_decay_steps(answer), answer
    assert not ex3.check_decay_steps(30.6)  # |λ| instead of Re λ


def test_oscillator_design_four_digits():
    """Text: "(4 significant digits are enough)": α = −ln2/2 = −0.3466, β = π = 3.142."""
    assert ex1.check_oscillator_design([[-0.3466, -3.142], [3.142, -0.3466]])
    assert not ex1.check_oscillator_design([[-0.35, -3.14], [3.14, -0.35]])  # 2–3 digits
    assert not ex1.check_oscillator_design([[-0.3466, -0.5], [0.5, -0.3466]])  # Hz used as rad/s


def test_stable_zoh_rejects_a_nan_anywhere():
    def zoh(lam, delta, nan=False):
        A_bar = np.exp(delta * lam)
        with np.errstate(all="ignore"):
            B_bar = np.where(lam == 0, delta, np.expm1(delta * lam) / lam)
        if nan:
            B_bar[1] = np.nan  # λ = −1e−9
        return A_bar, B_bar

    assert ex2.check_stable_zoh(zoh)  # the same answer without the NaN passes: the NaN is what fails it
    assert not ex2.check_stable_zoh(lambda lam, delta: zoh(lam, delta, nan=True))


def test_state_shape_needs_whole_numbers():
    assert ex4.check_state_shape((2, 128, 16))
    assert not ex4.check_state_shape((2.7, 128, 16))  # int() would have truncated it to 2
    assert not ex4.check_state_shape(("2", "128", "16"))
    assert not ex4.check_state_shape((2, 128, math.inf))


def test_solvers_must_return_whole_token_ids():
    def copy(inputs, offset=0.0):  # the right tokens (+ offset: int() would truncate 0.4 back to right)
        n_data = int((inputs[0] == 1).sum())
        keep = inputs[(inputs != 0) & (inputs != 1)].reshape(len(inputs), -1)
        return keep[:, :n_data].double() + offset

    assert ex5.check_copying_solver(copy)  # the whole-number answer passes
    result = ex5.check_copying_solver(lambda inputs: copy(inputs, 0.4))
    assert not result and "whole numbers" in result.message
    assert not ex5.check_induction_solver(lambda inputs: torch.full((len(inputs),), math.nan))


def test_integer_answers_reject_inf():
    assert not ex6.check_hillis_steele_work(math.inf)
    assert not ex6.check_best_chunk(math.inf)
    assert ex6.check_hillis_steele_work(49)
    assert ex6.check_best_chunk(32)


def test_number_answers_follow_one_rule():
    """Every checker that asks for one number reads it the same way (three private helpers used to differ:
    a one-element list or 4 + 0j was right in one lesson and "not a number" in the next, True was 1.0 in one)."""
    from mamba_edu.exercises import ssd as ex8
    from mamba_edu.scans.ssd import ssd_costs

    costs = ssd_costs(4096, 64, 64, 128)
    memory = ssd_costs(65536, np.arange(1, 1025), 64, 128)["chunked"][1]
    right = {
        ex2.check_euler_max_delta: 0.4,  # −2α/|λ|² for λ = −1 + 2i
        ex2.check_forget_delta: math.log(100),
        ex2.check_mamba_ratio: 0.1 / -math.expm1(-0.1),
        ex3.check_period_steps: 2 * math.pi / (ex3.MODE_LAMBDA.imag * ex3.MODE_DELTA),
        ex3.check_decay_steps: math.log(100) / (-ex3.MODE_LAMBDA.real * ex3.MODE_DELTA),
        ex8.check_offdiagonal_rank: 4,
        ex8.check_flops_ratio: float(costs["chunked"][0] / costs["sequential"][0]),
        ex8.check_memory_chunk: int(np.argmin(memory)) + 1,
    }
    for check, value in right.items():
        for form in (value, np.float64(value), [value], np.array([[value]]), torch.tensor(value), complex(value)):
            assert check(form), (check.__name__, form)
        for garbage in (True, str(value), [value, value], complex(value, 1.0), math.nan):
            result = check(garbage)
            assert not result and "one real, finite number" in result.message, (check.__name__, garbage, result)


def test_a_function_that_returns_nothing_is_told_so():
    """A forgotten ``return`` (or ``print`` instead of ``return``) used to be reported as an error the learner's
    code never raised ("raised TypeError: cannot unpack non-iterable NoneType", "Could not infer dtype of
    NoneType"); a list of row tensors was "your function raised TypeError" although the function ran fine."""
    from mamba_edu.experiments.tasks import MARKER, NOISE

    def prints(*args):
        print("the answer")

    for check in (ex2.check_stable_zoh, ex4.check_selective_step, ex5.check_copying_solver,
                  ex5.check_induction_solver, ex6.check_combine):
        result = check(prints)
        assert not result and "returned None" in result.message and "raised" not in result.message, result

    def rows(inputs):  # the right tokens, as a list of one tensor per sequence
        n_data = int((inputs[0] == MARKER).sum())
        return [row[row != NOISE] for row in inputs[:, :-n_data]]

    result = ex5.check_copying_solver(rows)
    assert not result and "raised" not in result.message and "torch.stack" in result.message
    result = ex2.check_stable_zoh(lambda lam, delta: np.exp(delta * lam))  # one array, not a pair
    assert not result and "raised" not in result.message and "pair" in result.message
