"""Exercise checkers for lesson 8 (Mamba-2, state space duality). Each returns a Feedback and never raises.

Three are *predictions*, answered before the cell that reveals the result; two ask for code.
"""

import math

import numpy as np

from mamba_edu._backend import positive_int
from mamba_edu.exercises.feedback import Feedback, call, checker, number, numbers
from mamba_edu.scans.ssd import ssd_costs


@checker
def check_offdiagonal_rank(answer, n=4) -> Feedback:
    """Prediction 1: the rank of an off-diagonal block of M (rows of one chunk, all earlier columns), state size n."""
    n = positive_int("n", n)
    value, bad = number(answer, "the rank (a whole number)")
    if bad is not None:
        return bad
    if value == n:
        return Feedback.right(f"M[t, s] = (e^(a_1+…+a_t) C_t) · (e^−(a_1+…+a_s) Δ_s B_s) for s < t: a sum of n = {n} "
                              "products, so every block below the diagonal has rank ≤ n, however large it is. "
                              "(The code never uses this split as written: it would form exp(+Σ ΔA); the states do "
                              "the same job safely.)")
    if value > n:
        return Feedback.wrong(f"{value:g} > n = {n}. Write M[t, s] for s < t as (something of t)·(something of s): "
                              "everything that crosses from s to t goes through the state, which has n numbers per "
                              "channel.")
    return Feedback.wrong(f"{value:g} is too small for random B and C: each of the n = {n} state entries carries "
                          "its own direction from the past to the future.")


@checker
def check_flops_ratio(answer, l=4096, Q=64, p=64, n=128) -> Feedback:
    """Prediction 2: FLOPs of the chunked method divided by those of the sequential one (within 30 %)."""
    l, Q, p, n = (positive_int(name, v) for name, v in (("l", l), ("Q", Q), ("p", p), ("n", n)))
    value, bad = number(answer, "the ratio (a positive number)")
    if bad is not None:
        return bad
    costs = ssd_costs(l, Q, p, n)
    truth = float(costs["chunked"][0] / costs["sequential"][0])
    if value > 0 and abs(value - truth) <= 0.3 * truth:
        return Feedback.right(f"about {truth:.1f}×: the chunked method does *more* arithmetic (the Q×Q blocks cost "
                              f"≈ 2Q(n+p) per step against 5pn), yet it is faster, because almost all of it is "
                              "matrix products, which BLAS and tensor cores run many times faster than "
                              "elementwise updates.")
    if value <= 1:
        return Feedback.wrong(f"{value:g} would mean fewer FLOPs. Count per step: the sequential method touches the "
                              "p×n state a few times (≈ 5pn); the chunked one also multiplies Q×Q blocks with n- and "
                              "p-vectors (≈ 2Q(n+p)) — add the chunk states and read-outs (4pn).")
    return Feedback.wrong(f"{value:g} is off by more than 30 %. Per step: sequential ≈ 5pn, chunked ≈ 2Q(n+p) + 3Q "
                          "+ 4pn; put in l = {l}, Q = {Q}, p = {p}, n = {n}.".format(l=l, Q=Q, p=p, n=n))


@checker
def check_memory_chunk(answer, l=65536, p=64, n=128) -> Feedback:
    """Prediction 3: the chunk size Q (a whole number) with the least intermediate memory (within 10 % of the best)."""
    l, p, n = (positive_int(name, v) for name, v in (("l", l), ("p", p), ("n", n)))
    value, bad = number(answer, "the chunk size (a whole number)")
    if bad is not None:
        return bad
    if value != int(value) or not 1 <= value <= l:
        return Feedback.wrong(f"give a whole chunk size between 1 and {l}, got {answer!r}")
    Qs = np.arange(1, 1025)
    mem = ssd_costs(l, Qs, p, n)["chunked"][1]
    best = float(mem.min())
    got = float(ssd_costs(l, int(value), p, n)["chunked"][1])
    if got <= 1.1 * best:
        return Feedback.right(f"Q = {int(value)}: memory ≈ l·Q (the blocks) + (l/Q)·p·n (the states) is smallest "
                              f"at Q = √(p·n) = {math.sqrt(p * n):.0f}; Mamba-2 uses 256 (fewer, larger matrix "
                              "products run faster than the memory they cost).")
    side = "the Q×Q blocks dominate" if value * value > p * n else "the l/Q chunk states (p·n each) dominate"
    return Feedback.wrong(f"Q = {int(value)} needs {got / best:.1f}× the least memory: {side}. "
                          "Balance l·Q against (l/Q)·p·n.")


def _real_array(fn, args, name, finite=True):
    """Run the learner's ``fn(*args)``: its answer as a real float64 array, or a Feedback saying why not.

    A complex answer counts as real when its imaginary part is only rounding; otherwise it is refused
    (casting it to float would silently drop the imaginary part).
    """
    result, bad = call(fn, *args, name=name)
    got, bad = (None, bad) if bad is not None else numbers(result, f"the result of {name}", finite=finite)
    if bad is not None:
        return None, bad
    if np.iscomplexobj(got):
        if np.abs(got.imag).max(initial=0) > 1e-12 * np.abs(got.real).max(initial=0):
            return None, Feedback.wrong(f"{name} returned complex values: the answer is real (every input is real)")
        got = got.real
    return got, None


@checker
def check_decay_matrix(fn) -> Feedback:
    """Exercise 1: ``fn(a)`` returns L (l, l) with L[t, s] = exp(a[s+1] + … + a[t]) for s ≤ t, 0 above."""
    if not callable(fn):
        return Feedback.wrong(f"give a function decay_matrix(a) -> L, got {fn!r}")
    rng = np.random.default_rng(8)
    for l in (1, 5, 12):
        a = -rng.uniform(0.0, 1.0, l)
        want = np.zeros((l, l))
        for t in range(l):
            for s in range(t + 1):
                want[t, s] = math.exp(a[s + 1:t + 1].sum())
        got, bad = _real_array(fn, (a,), f"decay_matrix(a) with a of shape ({l},)")
        if bad is not None:
            return bad
        if got.shape != (l, l):
            return Feedback.wrong(f"for a of shape ({l},) your L has shape {got.shape}, expected ({l}, {l})")
        if np.allclose(got, want, rtol=1e-10, atol=1e-14):
            continue
        if np.allclose(got, want.T, rtol=1e-10, atol=1e-14):
            return Feedback.wrong("your L is upper-triangular: row t (the output step) should sum a[s+1..t] "
                                  "over the earlier steps s ≤ t")
        if np.any(np.triu(got, 1) != 0):
            return Feedback.wrong("L must be 0 above the diagonal: a step cannot see the future (causal mask)")
        if np.allclose(got, want * np.exp(a)[None, :], rtol=1e-10, atol=1e-14):
            return Feedback.wrong("off by one: your sum includes a[s]. The input at step s enters the state at "
                                  "step s and then decays by steps s+1 … t only, so L[t, t] = 1")
        if not np.allclose(np.diag(got), 1.0):
            return Feedback.wrong("L[t, t] should be 1 (no decay between an input and its own step)")
        return Feedback.wrong(f"L differs from exp(a[s+1] + … + a[t]) (largest error {np.abs(got - want).max():.3g})")
    # a long sequence: exp of a sum that grows (e^{+Σa}, or a difference taken above the diagonal) overflows
    l = 2000
    steps = np.arange(l)
    lower = steps[:, None] >= steps[None, :]
    want = np.exp(np.where(lower, -(steps[:, None] - steps[None, :]).astype(float), -np.inf))
    with np.errstate(all="ignore"):  # NaN/inf are diagnosed below
        got, bad = _real_array(fn, (np.full(l, -1.0),), f"decay_matrix(a) with a of shape ({l},)", finite=False)
    if bad is not None:
        return bad
    if got.shape != (l, l) or not np.isfinite(got).all() or not np.allclose(got, want, rtol=1e-9, atol=1e-300):
        return Feedback.wrong(f"right for short a, but for l = {l} steps of a = −1 your L is not finite or not right: "
                              "exp of a running sum (or of differences above the diagonal) overflows. Take the "
                              "differences only where s ≤ t (−inf elsewhere, as segsum does) before the exp")
    return Feedback.right("L = exp(segsum(a)): lesson 3's powers Ā^k, with a different Ā at every step.")


@checker
def check_chunk_state(fn) -> Feedback:
    """Exercise 2: ``fn(x, dt, A, B)`` for one chunk and head: the state at its end from zero, shape (p, n).

    x (Q, p), dt (Q,), A scalar, B (Q, n): state = Σ_s exp(Δ_{s+1}A + … + Δ_Q A) Δ_s x_s B_sᵀ.
    """
    if not callable(fn):
        return Feedback.wrong(f"give a function chunk_state(x, dt, A, B) -> state, got {fn!r}")
    rng = np.random.default_rng(9)
    Q, p, n = 6, 3, 4
    x, dt, A, B = rng.normal(size=(Q, p)), rng.uniform(0.1, 0.6, Q), -0.8, rng.normal(size=(Q, n))
    state = np.zeros((p, n))
    for s in range(Q):  # the recurrence itself
        state = math.exp(dt[s] * A) * state + dt[s] * np.outer(x[s], B[s])
    got, bad = _real_array(fn, (x, dt, A, B), "chunk_state(x, dt, A, B)")
    if bad is not None:
        return bad
    if got.shape == (n, p) and np.allclose(got.T, state, rtol=1e-10, atol=1e-12):
        return Feedback.wrong("transposed: the state is (p, n) — x_s B_sᵀ, an outer product")
    if got.shape != (p, n):
        return Feedback.wrong(f"your state has shape {got.shape}, expected (p, n) = {(p, n)}")
    if np.allclose(got, state, rtol=1e-10, atol=1e-12):
        return Feedback.right("one matrix product, (x·Δ·decay)ᵀ B — step 2 of SSD; the chunks' states then pass on "
                              "from chunk to chunk (step 3).")
    no_decay = sum(dt[s] * np.outer(x[s], B[s]) for s in range(Q))
    if np.allclose(got, no_decay):
        return Feedback.wrong("no decay: an input at step s still decays by exp(Δ_{s+1}A + … + Δ_Q A) before the "
                              "chunk ends")
    return Feedback.wrong(f"differs from the recurrence's state (largest error {np.abs(got - state).max():.3g}); "
                          "check the weights exp(Σ_{s<k≤Q} Δ_k A)·Δ_s")
