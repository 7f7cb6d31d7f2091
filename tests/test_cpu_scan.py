"""The fused numba CPU selective scan against a float64 loop written here, mambapy, and finite differences.

Tolerances (relative to the largest reference value, over the whole tensor):
float64 ≤ 1e-12; float32 ≤ 1e-5 for values and gradients (measured ~1e-7), also at Δ·|A| up to 50.
"""

import pytest
import torch
import torch.nn.functional as F

import mamba_edu as me
from mamba_edu.scans.cpu import selective_scan_cpu, supports

ARGS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def loop_reference(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The selective scan as a plain float64 loop over time (differentiable). Returns (out, last h)."""
    u, delta, A, B, C = (x.double() for x in (u, delta, A, B, C))
    b, d, l = u.shape
    if B.dim() == 3:  # (b, n, l) -> one group
        B, C = B[:, None], C[:, None]
    per_group = d // B.shape[1]
    if delta_bias is not None:
        delta = delta + delta_bias.double()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = [[torch.zeros(A.shape[1], dtype=torch.float64) for _ in range(d)] for _ in range(b)]
    out = []
    for bi in range(b):
        rows = []
        for di in range(d):
            g = di // per_group
            ys = []
            for t in range(l):
                h[bi][di] = torch.exp(delta[bi, di, t] * A[di]) * h[bi][di] + delta[bi, di, t] * B[bi, g, :, t] * u[
                    bi, di, t]
                y = (C[bi, g, :, t] * h[bi][di]).sum()
                if D is not None:
                    y = y + D.double()[di] * u[bi, di, t]
                if z is not None:
                    y = y * F.silu(z.double()[bi, di, t])
                ys.append(y)
            rows.append(torch.stack(ys))
        out.append(torch.stack(rows))
    last = torch.stack([torch.stack(row) for row in h])
    return torch.stack(out), last


def make_inputs(gen, b=2, d=4, l=17, n=5, groups=None, dtype=torch.float32, dA=3.0, full=True):
    """Random inputs; A in [-dA, 0) and delta (before softplus) around 0."""
    shape_BC = (b, n, l) if groups is None else (b, groups, n, l)
    t = dict(
        u=torch.randn(b, d, l, generator=gen, dtype=dtype),
        delta=torch.rand(b, d, l, generator=gen, dtype=dtype) - 0.5,
        A=-dA * torch.rand(d, n, generator=gen, dtype=dtype) - 0.01,
        B=torch.randn(*shape_BC, generator=gen, dtype=dtype),
        C=torch.randn(*shape_BC, generator=gen, dtype=dtype),
    )
    if full:
        t.update(D=torch.randn(d, generator=gen, dtype=dtype), z=torch.randn(b, d, l, generator=gen, dtype=dtype),
                 delta_bias=torch.randn(d, generator=gen, dtype=dtype) * 0.5)
    return t


def rel_err(x, ref):
    return ((x.double() - ref.double()).abs().max() / ref.double().abs().max()).item()


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("groups", [None, 2])
@pytest.mark.parametrize("full,softplus", [(True, True), (False, False)])
def test_values_and_gradients_match_float64_loop(gen, dtype, tol, groups, full, softplus):
    inputs = make_inputs(gen, groups=groups, dtype=dtype, full=full)
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    out, last = selective_scan_cpu(**leaves, delta_softplus=softplus, return_last_state=True)
    assert out.dtype == dtype and last.dtype == dtype and out.shape == inputs["u"].shape
    ref_leaves = {k: v.clone().double().requires_grad_() for k, v in inputs.items()}
    ref, ref_last = loop_reference(**ref_leaves, delta_softplus=softplus)
    assert rel_err(out, ref) <= tol
    assert rel_err(last, ref_last) <= tol

    gout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    (out.double() * gout).sum().backward()
    (ref * gout).sum().backward()
    for name in leaves:
        grad, want = leaves[name].grad, ref_leaves[name].grad
        assert grad is not None and grad.dtype == dtype and grad.shape == inputs[name].shape, name
        assert rel_err(grad, want) <= tol, (name, rel_err(grad, want))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("through", ["both", "last_state_only"])
def test_gradients_through_last_state_match_float64_loop(gen, dtype, tol, through):
    """∂L/∂(last state) enters the reverse scan (the official kernel drops it; this kernel must not)."""
    inputs = make_inputs(gen, groups=2, dtype=dtype)
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    out, last = selective_scan_cpu(**leaves, delta_softplus=True, return_last_state=True)
    ref_leaves = {k: v.clone().double().requires_grad_() for k, v in inputs.items()}
    ref, ref_last = loop_reference(**ref_leaves, delta_softplus=True)
    glast = torch.randn(last.shape, generator=gen, dtype=torch.float64)
    gout = torch.randn(out.shape, generator=gen, dtype=torch.float64) if through == "both" else 0.0
    ((out.double() * gout).sum() + (last.double() * glast).sum()).backward()
    ((ref * gout).sum() + (ref_last * glast).sum()).backward()
    for name in leaves:
        grad, want = leaves[name].grad, ref_leaves[name].grad
        if want is None or not want.abs().max() > 0:  # z and D reach only out
            assert grad is None or not grad.abs().max() > 0, name
            continue
        assert grad is not None and rel_err(grad, want) <= tol, (name, None if grad is None else rel_err(grad, want))


def test_gradcheck_through_last_state(gen):
    inputs = make_inputs(gen, b=1, d=2, l=6, n=3, groups=2, dtype=torch.float64)
    names = list(inputs)

    def fn(*tensors):
        return selective_scan_cpu(**dict(zip(names, tensors)), delta_softplus=True, return_last_state=True)

    assert torch.autograd.gradcheck(fn, [inputs[k].requires_grad_() for k in names], eps=1e-6, atol=1e-7)


def test_large_delta_times_A_is_finite_and_exact_in_float32(gen):
    """Δ·|A| up to 50 (exp(-50) ≈ 2e-22 per step): no overflow, no NaN, same as the float64 loop."""
    inputs = make_inputs(gen, d=3, l=40, n=4, full=True)
    inputs["A"] = -torch.tensor([[1.0, 5.0, 25.0, 50.0]] * 3)
    inputs["delta"] = torch.rand(2, 3, 40, generator=gen) * 0.99 + 0.01  # Δ ∈ [0.01, 1]: Δ|A| ≤ 50
    inputs["delta_bias"] = None
    inputs["delta"][:, :, ::7] = 1.0  # hit Δ·|A| = 50 exactly
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items() if v is not None}
    out = selective_scan_cpu(**leaves)
    ref_leaves = {k: v.detach().double().requires_grad_() for k, v in leaves.items()}
    ref, _ = loop_reference(**ref_leaves)
    assert torch.isfinite(out).all()
    assert rel_err(out, ref) <= 1e-5
    out.sum().backward()
    ref.sum().backward()
    for name in leaves:
        assert torch.isfinite(leaves[name].grad).all(), name
        assert rel_err(leaves[name].grad, ref_leaves[name].grad) <= 1e-5, name


def test_gradcheck_against_finite_differences(gen):
    inputs = make_inputs(gen, b=1, d=2, l=6, n=3, groups=2, dtype=torch.float64)
    names = list(inputs)

    def fn(*tensors):
        return selective_scan_cpu(**dict(zip(names, tensors)), delta_softplus=True)

    assert torch.autograd.gradcheck(fn, [inputs[k].requires_grad_() for k in names], eps=1e-6, atol=1e-7)


def test_matches_mambapy_parallel_scan(gen):
    """mambapy's pscan applied as in its MambaBlock.selective_scan (an independent package)."""
    from mambapy.pscan import pscan

    t = make_inputs(gen, b=2, d=6, l=32, n=8, full=False, dtype=torch.float64)
    delta = F.softplus(t["delta"])
    D = torch.randn(6, generator=gen, dtype=torch.float64)
    out = selective_scan_cpu(t["u"], delta, t["A"], t["B"], t["C"], D)
    x, dl = t["u"].transpose(1, 2), delta.transpose(1, 2)  # mambapy's (b, l, d)
    deltaA = torch.exp(dl.unsqueeze(-1) * t["A"])
    BX = dl.unsqueeze(-1) * t["B"].transpose(1, 2).unsqueeze(2) * x.unsqueeze(-1)
    hs = pscan(deltaA, BX)
    y = (hs @ t["C"].transpose(1, 2).unsqueeze(-1)).squeeze(3) + D * x
    assert rel_err(out, y.transpose(1, 2)) <= 1e-12


def test_selective_scan_dispatches_here_and_agrees_with_reference(gen):
    from mamba_edu.scans.selective import selective_scan_ref

    inputs = make_inputs(gen, groups=2)
    assert supports(*inputs.values())
    out = me.selective_scan(**inputs, delta_softplus=True)
    assert torch.equal(out, selective_scan_cpu(**inputs, delta_softplus=True))
    assert rel_err(out, selective_scan_ref(**{k: v.double() for k, v in inputs.items()}, delta_softplus=True)) <= 1e-5


def test_supports_only_what_the_kernel_handles(gen):
    t = make_inputs(gen, full=False)
    u, delta, A, B, C = t.values()
    assert supports(u, delta, A, B, C)
    assert not supports(u, delta, A.to(torch.complex64), B, C)  # complex A: reference path
    assert not supports(u, delta, A, torch.randn(4, 5), C)  # fixed B (d, n)
    assert not supports(u.numpy(), delta.numpy(), A.numpy(), B.numpy(), C.numpy())  # numpy
    assert not supports(u.half(), delta.half(), A.half(), B.half(), C.half())  # float16
    assert not supports(u, delta.double(), A, B, C)  # mixed dtypes


def test_bad_inputs_raise_value_error_naming_the_argument(gen):
    t = make_inputs(gen, full=False)
    with pytest.raises(ValueError, match="B has shape"):
        selective_scan_cpu(t["u"], t["delta"], t["A"], t["B"][:, :, :-1], t["C"])
    with pytest.raises(ValueError, match="selective_scan_cpu needs"):
        selective_scan_cpu(t["u"], t["delta"], t["A"].to(torch.complex64), t["B"].to(torch.complex64),
                           t["C"].to(torch.complex64))
    with pytest.raises(ValueError, match="delta contains NaN"):
        selective_scan_cpu(t["u"], t["delta"] * float("nan"), t["A"], t["B"], t["C"])
