"""Lesson 8's checkers: right answers pass, typical wrong answers get a specific message, nothing raises.

The right answers are computed here independently (a loop for the state, SVD for the rank, a sweep
of the cost model for the chunk size), not taken from the checkers.
"""

import math

import numpy as np
import pytest

from mamba_edu.exercises.ssd import (
    check_chunk_state,
    check_decay_matrix,
    check_flops_ratio,
    check_memory_chunk,
    check_offdiagonal_rank,
)


def test_offdiagonal_rank():
    assert check_offdiagonal_rank(4, n=4)
    assert check_offdiagonal_rank(8, n=8)
    assert "> n" in str(check_offdiagonal_rank(16, n=4))
    assert not check_offdiagonal_rank(1, n=4)


def test_flops_ratio():
    l, Q, p, n = 4096, 64, 64, 128
    c = l // Q  # counted from the code, independently of ssd_costs
    chunked = c * Q**2 * (2 * n + 3 + 2 * p) + 4 * c * Q * p * n + 2 * (c + 1) ** 2 * p * n
    truth = chunked / (5 * l * p * n)
    assert check_flops_ratio(truth) and check_flops_ratio(1.2 * truth)
    assert not check_flops_ratio(2 * truth)
    assert "fewer FLOPs" in str(check_flops_ratio(0.5))


def test_memory_chunk():
    l, p, n = 65536, 64, 128
    mem = {Q: math.ceil(l / Q) * Q * Q + (math.ceil(l / Q) + 1) * p * n for Q in range(1, 1025)}
    best = min(mem, key=mem.get)
    assert 80 <= best <= 100  # ≈ √(p·n) = 90.5
    assert check_memory_chunk(best) and check_memory_chunk(64)  # 1.06× the least memory: within 10 %
    assert not check_memory_chunk(32)  # 1.59×
    assert not check_memory_chunk(1024) and "blocks dominate" in str(check_memory_chunk(1024))
    assert "states" in str(check_memory_chunk(8))
    assert not check_memory_chunk(2.5)


def good_decay(a):
    c = np.cumsum(a)
    return np.exp(np.where(np.tri(len(a), dtype=bool), c[:, None] - c[None, :], -np.inf))  # segsum, then exp


def test_decay_matrix():
    assert check_decay_matrix(good_decay)
    assert "upper-triangular" in str(check_decay_matrix(lambda a: good_decay(a).T))
    assert "off by one" in str(check_decay_matrix(lambda a: good_decay(a) * np.exp(a)[None, :]))
    future = lambda a: good_decay(a) + np.triu(np.ones((len(a), len(a))), 1)  # sees the future
    assert "0 above the diagonal" in str(check_decay_matrix(future))
    unsafe = lambda a: np.exp(np.cumsum(a)[:, None] - np.cumsum(a)[None, :]) * np.tri(len(a))  # inf·0 above
    assert "overflows" in str(check_decay_matrix(unsafe))


def good_state(x, dt, A, B):
    Q = len(dt)
    w = np.array([math.exp(A * dt[s + 1:].sum()) * dt[s] for s in range(Q)])
    return (x * w[:, None]).T @ B


def test_chunk_state():
    assert check_chunk_state(good_state)
    assert "no decay" in str(check_chunk_state(lambda x, dt, A, B: (x * dt[:, None]).T @ B))
    assert "transposed" in str(check_chunk_state(lambda x, dt, A, B: good_state(x, dt, A, B).T))
    assert "shape" in str(check_chunk_state(lambda x, dt, A, B: good_state(x, dt, A, B)[:, :2]))


@pytest.mark.parametrize("bad", [None, "abc", float("nan"), [1, 2], True, lambda *a: 1 / 0, 3])
def test_checkers_never_raise(bad):
    for check in (check_offdiagonal_rank, check_flops_ratio, check_memory_chunk, check_decay_matrix,
                  check_chunk_state):
        fb = check(bad)
        assert not fb.ok and fb.message


def test_complex_or_missing_answers_are_refused():
    """A complex L or state used to pass: np.asarray(..., dtype=float) silently dropped the imaginary part.
    A forgotten ``return`` used to be reported as "your L has shape ()"."""
    complex_decay = check_decay_matrix(lambda a: good_decay(a) * (1 + 1j))
    assert not complex_decay and "complex" in complex_decay.message
    assert not check_chunk_state(lambda x, dt, A, B: good_state(x, dt, A, B) + 0.5j)
    assert check_decay_matrix(lambda a: good_decay(a) + 0j)  # complex dtype, real values: still right
    for check, fn in ((check_decay_matrix, lambda a: None), (check_chunk_state, lambda x, dt, A, B: None)):
        fb = check(fn)
        assert not fb and "returned None" in fb.message and "return" in fb.message
