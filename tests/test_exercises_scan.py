"""Lesson 6 exercise checkers: right answers pass, wrong ones get a useful message, nothing raises."""

import math

import pytest

from mamba_edu.exercises import Feedback
from mamba_edu.exercises.scan import check_best_chunk, check_combine, check_hillis_steele_work


def test_check_combine_accepts_the_composition():
    fb = check_combine(lambda first, second: (first[0] * second[0], second[0] * first[1] + second[1]))
    assert isinstance(fb, Feedback) and fb.ok


@pytest.mark.parametrize(
    "fn, hint",
    [
        (lambda f, s: (f[0] * s[0], f[1] + s[1]), "b₁ + b₂"),
        (lambda f, s: (f[0] * s[0], f[0] * s[1] + f[1]), "second step first"),
        (lambda f, s: (f[0] + s[0], s[0] * f[1] + s[1]), "multiply"),
        (lambda f, s: (f[0] * s[0], s[0] * f[1] - s[1]), "expected a₂·b₁ + b₂"),
        (lambda f, s: None, "returned None"),
        (lambda f, s: 3.0, "not a pair"),
        (lambda f: f, "raised TypeError"),
        (lambda f, s: 1 / 0, "ZeroDivisionError"),
        (None, "give a function"),
    ],
)
def test_check_combine_rejects_with_a_reason(fn, hint):
    fb = check_combine(fn)
    assert not fb.ok and hint in fb.message


@pytest.mark.parametrize("n", [2, 5, 16, 100])
def test_check_hillis_steele_work(n):
    p = math.ceil(math.log2(n))
    truth = n * p - (2**p - 1)  # Σ over offsets 2^j < n of (n − 2^j)
    assert check_hillis_steele_work(truth, n=n).ok
    assert check_hillis_steele_work(float(truth), n=n).ok
    assert not check_hillis_steele_work(truth + 1, n=n).ok
    assert "n·log₂n" in check_hillis_steele_work(n * p, n=n).message
    assert "sequential" in check_hillis_steele_work(n - 1, n=n).message


@pytest.mark.parametrize("answer", [None, "many", 3.5, [49]])
def test_check_hillis_steele_work_garbage(answer):
    fb = check_hillis_steele_work(answer)
    assert not fb.ok and "whole number" in fb.message


@pytest.mark.parametrize("n", [16, 100, 1024])
def test_check_best_chunk(n):
    def depth(c):  # (c − 1) in-chunk levels + (K − 1) carries + one fix-up level if anything is left to fix
        K = math.ceil(n / c)
        return (c - 1) + (K - 1) + (n - c - K + 1 > 0)

    depths = {c: depth(c) for c in range(1, n + 1)}
    best = min(depths.values())
    for c in [c for c in depths if c <= 80 or c % 97 == 0 or c == n]:  # all small c, a few large ones
        d = depths[c]
        assert check_best_chunk(c, n=n).ok == (d == best), (n, c)
    assert "too many chunks" in check_best_chunk(1, n=n).message
    assert "too long" in check_best_chunk(n, n=n).message


@pytest.mark.parametrize("answer", [None, "32", 0, 2000, 31.5])
def test_check_best_chunk_garbage(answer):
    fb = check_best_chunk(answer)
    assert not fb.ok and "whole chunk size" in fb.message
