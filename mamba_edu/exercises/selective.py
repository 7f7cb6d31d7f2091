"""Exercise checkers for lesson 4 (the selective SSM). Each returns a Feedback and never raises for a wrong answer."""

import numpy as np

from mamba_edu.exercises.feedback import Feedback, call, checker, numbers
from mamba_edu.scans.selective import selective_scan

TOKEN_DEPENDENT = {"delta", "B", "C"}
PARAMETER_NAMES = {"A", "B", "C", "D", "delta"}


@checker
def check_token_dependent(answer) -> Feedback:
    """Exercise 1: which of "A", "B", "C", "D", "delta" change from token to token in Mamba?"""
    if isinstance(answer, (str, bytes)):
        return Feedback.wrong(f'give a set of names such as {{"A", "D"}}, not the text {answer!r:.80}')
    try:
        chosen = {str(name) for name in answer}
    except Exception:  # noqa: BLE001 -- not iterable, or iteration fails
        return Feedback.wrong(f'give a set of names such as {{"A", "D"}}, got {answer!r:.80}')
    unknown = chosen - PARAMETER_NAMES
    if unknown:
        return Feedback.wrong(f"{sorted(unknown)} are not among {sorted(PARAMETER_NAMES)}")
    if chosen == TOKEN_DEPENDENT:
        return Feedback.right("Δ_t, B_t and C_t are projections of the token (x_proj, dt_proj); A and D are "
                              "learned but fixed, and Ā_t = exp(Δ_t A) varies only through Δ_t.")
    msgs = []
    if "A" in chosen:
        msgs.append("A is one learned matrix (A = −exp(A_log)) for all tokens; only Ā_t = exp(Δ_t A) varies, "
                    "through Δ_t")
    if "D" in chosen:
        msgs.append("D is a learned skip weight per channel, the same for every token")
    for name in sorted(TOKEN_DEPENDENT - chosen):
        msgs.append(f"{name} is computed from the token by x_proj (that is what makes the SSM selective)")
    return Feedback.wrong("; ".join(msgs) + ".")


def _sigmoid(s):
    return 1.0 / (1.0 + np.exp(-s))


@checker
def check_gate(gate) -> Feedback:
    """Exercise 2 (Theorem 1): ``gate(s)`` gives g_t for N = 1, A = −1, B = 1, Δ_t = softplus(s_t), ZOH.

    Then h_t = (1 − g_t) h_{t−1} + g_t u_t with Ā = e^{−Δ} = 1 − g and B̄ = 1 − e^{−Δ} = g.
    """
    if not callable(gate):
        return Feedback.wrong(f"give a function s -> g (numpy in, numpy out), got {type(gate).__name__}")
    s = np.linspace(-6.0, 6.0, 49)
    try:
        g = gate(s.copy())
    except Exception as exc:  # the learner's code may fail in any way
        return Feedback.wrong(f"gate(s) raised {type(exc).__name__}: {exc}")
    g, bad = numbers(g, "gate(s)")
    if bad is not None:
        return Feedback.wrong(f"{bad.message}; expected a real array like s (numpy in, numpy out)")
    if np.iscomplexobj(g):
        return Feedback.wrong("gate(s) must be real for real s")
    if g.shape != s.shape:
        return Feedback.wrong(f"gate(s) must return one value per s: shape {s.shape}, got {g.shape}")
    truth = _sigmoid(s)
    if np.allclose(g, truth, rtol=1e-6, atol=1e-9):
        return Feedback.right("g = 1 − e^{−softplus(s)} = 1 − 1/(1 + e^s) = σ(s): the selective SSM is a gated RNN.")
    delta = np.log1p(np.exp(s))
    known = {
        "Δ = softplus(s) itself: under ZOH with A = −1, B = 1 the input weight is B̄ = 1 − e^{−Δ}": delta,
        "Ā = e^{−Δ}, the weight of the old state, which is 1 − g": np.exp(-delta),
        "1 − e^{−s}: Δ is softplus(s), not s": 1 - np.exp(-s),
    }
    for hint, wrong in known.items():
        if np.allclose(g, wrong, rtol=1e-6, atol=1e-9):
            return Feedback.wrong(f"your gate is {hint}.")
    worst = int(np.argmax(np.abs(g - truth)))
    return Feedback.wrong(f"at s = {s[worst]:.2f} your gate gives {g[worst]:.4g}, expected {truth[worst]:.4g}. "
                          "Hint: write B̄ = (e^{ΔA} − 1)/A · B with A = −1, B = 1, Δ = log(1 + e^s), and simplify.")


@checker
def check_state_shape(answer, batch=2, d_model=64, expand=2, d_state=16) -> Feedback:
    """Exercise 3: the shape of the SSM state of one Mamba block (in the official (b, d, n) layout)."""
    d_inner = expand * d_model
    truth = (batch, d_inner, d_state)
    try:
        if isinstance(answer, (str, bytes)) or not all(
                not isinstance(s, (str, bytes)) and float(s) == int(s) for s in answer):
            raise ValueError("not whole numbers")
        shape = tuple(int(s) for s in answer)
    except Exception:  # noqa: BLE001 -- not iterable, not numbers, NaN/inf (int(inf) overflows)
        return Feedback.wrong(f"give a tuple of whole numbers such as (2, 3, 4), got {answer!r:.80}")
    if shape == truth:
        return Feedback.right(f"{truth}: every one of the d_inner = {expand}·{d_model} channels keeps its own "
                              f"{d_state} states, for each sequence in the batch.")
    if shape == (batch, d_inner):
        return Feedback.wrong("that is the collapsed state of the seed post's demo (one number per channel): "
                              f"Mamba keeps d_state = {d_state} states per channel")
    if shape == (batch, d_model, d_state):
        return Feedback.wrong(f"the SSM runs on d_inner = expand·d_model = {d_inner} channels, not d_model")
    if sorted(shape) == sorted(truth):
        return Feedback.wrong(f"right sizes, wrong order: the official layout is (b, d_inner, d_state) = {truth}")
    return Feedback.wrong(f"{shape} is not it: which sizes does one state vector h have, and how many are there?")


def _selective_step_variants(h, u_t, delta_t, A, B_t, C_t, variant):
    """Typical wrong single steps, for diagnosis (h (d, n), u_t (d,), …)."""
    A_bar = 1 + delta_t[:, None] * A if variant == "euler" else np.exp(delta_t[:, None] * A)
    B_bar = delta_t[:, None] * B_t[None, :]  # Mamba's rule
    if variant == "zoh":
        B_bar = np.expm1(delta_t[:, None] * A) / A * B_t[None, :]
    elif variant == "no_delta":
        B_bar = np.broadcast_to(B_t[None, :], A.shape)
    h = A_bar * h + B_bar * u_t[:, None]
    return h, h @ C_t


@checker
def check_selective_step(step, seed=0) -> Feedback:
    """Exercise 4: ``step(h, u_t, delta_t, A, B_t, C_t) -> (h_new, y_t)``, one step of Mamba's recurrence.

    Shapes: h (d, n), u_t (d,), delta_t (d,) (already positive), A (d, n), B_t and C_t (n,),
    y_t (d,). Checked over 8 steps against :func:`mamba_edu.selective_scan`.
    """
    if not callable(step):
        return Feedback.wrong(f"give a function step(h, u_t, delta_t, A, B_t, C_t), got {type(step).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        return Feedback.wrong(f"seed must be a whole number, got {seed!r:.80}")
    rng = np.random.default_rng(seed)
    d, n, l = 3, 4, 8
    u, delta = rng.normal(size=(d, l)), rng.uniform(0.05, 1.5, size=(d, l))
    A = -rng.uniform(0.3, 3.0, size=(d, n))
    B, C = rng.normal(size=(n, l)), rng.normal(size=(n, l))
    y_ref, h_ref = selective_scan(u[None], delta[None], A, B[None], C[None], return_last_state=True)
    h, ys = np.zeros((d, n)), []
    for t in range(l):
        result, bad = call(step, h.copy(), u[:, t].copy(), delta[:, t].copy(), A.copy(), B[:, t].copy(),
                           C[:, t].copy(), name=f"step(h, u_t, delta_t, A, B_t, C_t) at t = {t}")
        if bad is not None:
            return bad
        try:
            h, y_t = result
        except Exception:  # noqa: BLE001 -- not a pair
            return Feedback.wrong(f"step returned a {type(result).__name__}: expected a pair (h_new, y_t)")
        (h, bad_h), (y_t, bad_y) = numbers(h, "h_new"), numbers(y_t, "y_t")
        if bad_h is not None or bad_y is not None:
            return Feedback.wrong(f"{(bad_h or bad_y).message} at step t = {t}; expected real arrays h_new "
                                  f"(d, n) = {(d, n)} and y_t (d,) = ({d},)")
        if np.iscomplexobj(h) or np.iscomplexobj(y_t):
            return Feedback.wrong(f"h_new and y_t must be real (A is real), got complex values at step t = {t}")
        if h.shape == (d,) and y_t.shape == (d, n):
            return Feedback.wrong(f"step returned (y_t, h_new) (shapes {h.shape} and {y_t.shape}): return the pair in "
                                  "the order (h_new, y_t)")
        if h.shape != (d, n):
            hint = " — the state was collapsed: keep one state per channel *and* per n" if h.shape == (d,) else ""
            return Feedback.wrong(f"h_new has shape {h.shape}, expected (d, n) = {(d, n)}{hint}")
        if y_t.shape != (d,):
            return Feedback.wrong(f"y_t has shape {y_t.shape}, expected (d,) = ({d},)")
        ys.append(y_t)
    y = np.stack(ys, axis=-1)
    if np.allclose(y, y_ref[0], rtol=1e-8, atol=1e-10) and np.allclose(h, h_ref[0], rtol=1e-8, atol=1e-10):
        return Feedback.right("Ā_t = exp(Δ_t A), B̄_t = Δ_t B_t, h_t = Ā_t h + B̄_t u_t, y_t = C_t·h_t, "
                              "one (n,) state per channel: the same as selective_scan.")
    hints = {
        "zoh": "you used the ZOH input matrix (e^{ΔA} − 1)/A·B; Mamba's code uses the simpler B̄ = Δ·B",
        "no_delta": "B̄ must be Δ_t·B_t (you used B_t without Δ_t)",
        "euler": "Ā must be exp(Δ_t A) (you used Euler's 1 + Δ_t A)",
    }
    for variant, hint in hints.items():
        h_v, ys_v = np.zeros((d, n)), []
        for t in range(l):
            h_v, y_v = _selective_step_variants(h_v, u[:, t], delta[:, t], A, B[:, t], C[:, t], variant)
            ys_v.append(y_v)
        if np.allclose(y, np.stack(ys_v, axis=-1), rtol=1e-8, atol=1e-10):
            return Feedback.wrong(hint + ".")
    t_bad = int(np.argmax(np.any(~np.isclose(y, y_ref[0], rtol=1e-8, atol=1e-10), axis=0)))
    got, want = np.round(y[:, t_bad], 4).tolist(), np.round(y_ref[0][:, t_bad], 4).tolist()
    return Feedback.wrong(f"y_t first differs from selective_scan at t = {t_bad} (got {got}, expected {want}).")
