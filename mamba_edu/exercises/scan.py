"""Exercise checkers for lesson 6 (parallel scans). Each returns a Feedback and never raises for a wrong answer."""

import numpy as np

from mamba_edu.exercises.feedback import Feedback, call, checker
from mamba_edu.scans.parallel import scan_trace


@checker
def check_combine(fn) -> Feedback:
    """Exercise 1: ``fn(first, second)`` composes two steps (a₁, b₁) then (a₂, b₂) into one pair (a, b)."""
    if not callable(fn):
        return Feedback.wrong(f"give a function fn(first, second) -> (a, b), got {fn!r}")
    rng = np.random.default_rng(5)
    for _ in range(20):
        (a1, b1), (a2, b2) = rng.normal(size=2), rng.normal(size=2)
        result, bad = call(fn, (a1, b1), (a2, b2), name="fn((a1, b1), (a2, b2))")
        if bad is not None:
            return Feedback.wrong(f"{bad.message} — it should return a pair (a, b) of numbers.")
        try:
            a, b = result
            a, b = complex(a), complex(b)
            if not (np.isfinite(a) and np.isfinite(b)):
                raise ValueError(f"got ({a}, {b}), which is not finite")
        except Exception as exc:  # report, don't raise: the notebook must keep running
            return Feedback.wrong(f"fn((a1, b1), (a2, b2)) returned a {type(result).__name__} that is not a pair "
                                  f"(a, b) of numbers ({type(exc).__name__}: {exc}).")
        h = rng.normal()
        want = a2 * (a1 * h + b1) + b2  # first step 1, then step 2
        if np.isclose(a * h + b, want, rtol=1e-9, atol=1e-12):
            continue
        if not np.isclose(a, a1 * a2):
            return Feedback.wrong(f"for ({a1:.3g}, {b1:.3g}) then ({a2:.3g}, {b2:.3g}) your a = {a.real:.4g}, but two "
                                  f"decays in a row multiply: a = a₁·a₂ = {a1 * a2:.4g}")
        if np.isclose(b, a1 * b2 + b1):
            return Feedback.wrong("your b is a₁·b₂ + b₁: that applies the second step first. "
                                  "Expand a₂·(a₁·h + b₁) + b₂ (step 1 happens first, then step 2 decays it).")
        if np.isclose(b, b1 + b2):
            return Feedback.wrong("your b is b₁ + b₂, but the first step's input b₁ also passes through the "
                                  "second step: expand a₂·(a₁·h + b₁) + b₂ — what multiplies b₁?")
        return Feedback.wrong(f"your b = {b.real:.4g}, expected a₂·b₁ + b₂ = {a2 * b1 + b2:.4g}; "
                              "expand a₂·(a₁·h + b₁) + b₂")
    return Feedback.right("(a₁, b₁) ∘ (a₂, b₂) = (a₁a₂, a₂b₁ + b₂): composing affine maps gives an affine map.")


@checker
def check_hillis_steele_work(answer, n=16) -> Feedback:
    """Exercise 2: the number of combines Hillis–Steele performs for a sequence of length ``n``."""
    trace = scan_trace(n, "hillis_steele")
    truth = trace.work
    try:
        value = int(answer)
        if value != answer:
            raise ValueError
    except Exception:  # noqa: BLE001 -- None, text, NaN, inf (int(inf) overflows), odd objects
        return Feedback.wrong(f"give a whole number of combines, got {answer!r:.80}")
    p = len(trace.levels)
    if value == truth:
        return Feedback.right(f"Σ_k (n − 2^k) over the {p} levels = n·{p} − (2^{p} − 1) = {truth}: "
                              f"{truth / (n - 1):.1f}× the sequential scan's {n - 1} combines.")
    if value == n * p:
        return Feedback.wrong(f"{value} = n·log₂n assumes every slot combines at every level, but at offset k "
                              "the first k slots have nothing to their left: level k does n − k combines")
    if value == n - 1:
        return Feedback.wrong(f"{value} is the sequential scan's work; Hillis–Steele trades extra work for depth")
    return Feedback.wrong(f"{value} is not it. At offset k = 1, 2, 4, … (< n) every slot i ≥ k combines once; "
                          "add up the combines of each level.")


@checker
def check_best_chunk(answer, n=1024) -> Feedback:
    """Exercise 3: a chunk size that minimises the depth of the chunked scan of length ``n``."""
    try:
        c = int(answer)
        if c != answer or not 1 <= c <= n:
            raise ValueError
    except Exception:  # noqa: BLE001 -- None, text, NaN, inf (int(inf) overflows), odd objects
        return Feedback.wrong(f"give a whole chunk size between 1 and {n}, got {answer!r:.80}")
    # depth ≥ c − 1, so no chunk larger than (depth at c = ⌊√n⌋) + 1 can do better: search up to there
    bound = min(n, scan_trace(n, "chunked", chunk_size=int(np.sqrt(n))).depth + 1)
    best = min(scan_trace(n, "chunked", chunk_size=k).depth for k in range(1, bound + 1))
    depth = scan_trace(n, "chunked", chunk_size=c).depth
    if depth == best:
        return Feedback.right(f"chunks of {c}: depth (c − 1) + (K − 1) + 1 = {depth}, the smallest possible; "
                              f"about 2√n, at c ≈ √n = {np.sqrt(n):.4g}.")
    why = "too many chunks to carry across one by one" if c * c < n else "each chunk's own scan takes too long"
    return Feedback.wrong(f"chunks of {c} give depth {depth}, but {best} is possible: {why}. "
                          "Depth ≈ c + n/c; where is that smallest?")
