"""Complex A on the GPU (mamba_edu.scans.cuda_complex, kernels/complex_scan.cu) against the float64 reference.

The same cases as tests/test_complex_scan_cpu.py (which runs the kernel's source on the CPU), here on the
GPU through the public functions: me.selective_scan dispatches complex64 A to the kernel. Tolerance: relative
error below 1e-4 for out, last_state and every gradient (float32 arithmetic; the reference in float64).
"""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the CPU test's cases and inputs
from test_complex_scan_cpu import CASES, TOL, float64_leaves, inputs, rel_err  # noqa: E402

import mamba_edu as me  # noqa: E402
from mamba_edu.scans import cuda, cuda_complex  # noqa: E402
from mamba_edu.scans.selective import selective_scan_ref  # noqa: E402

pytestmark = pytest.mark.gpu


def _spy(monkeypatch):
    calls = []
    original = cuda_complex.scan
    monkeypatch.setattr(cuda_complex, "scan", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def _reference(x, softplus, dout, dlast):
    ref = float64_leaves(x)
    out, last = selective_scan_ref(**ref, delta_softplus=softplus, return_last_state=True)
    torch.autograd.backward([out, last], [dout.cpu().double(), dlast.cpu().to(torch.complex128)])
    return out.detach(), last.detach(), {k: v.grad for k, v in ref.items()}


@pytest.mark.parametrize("b, d, l, n, B_kind, C_kind, gate", [*CASES, (2, 8, 300, 64, "grouped", "grouped", True)])
def test_selective_scan_dispatches_complex_A_to_the_kernel(monkeypatch, b, d, l, n, B_kind, C_kind, gate):
    calls = _spy(monkeypatch)
    x = {k: v.cuda().requires_grad_() for k, v in inputs(b, d, l, n, B_kind, C_kind, gate).items()}
    out, last = me.selective_scan(**x, delta_softplus=True, return_last_state=True)
    assert calls == [1] and out.is_cuda and last.dtype == torch.complex64
    g = torch.Generator().manual_seed(1)
    dout = torch.randn(b, d, l, generator=g)
    dlast = torch.complex(torch.randn(b, d, n, generator=g), torch.randn(b, d, n, generator=g))
    torch.autograd.backward([out, last], [dout.cuda(), dlast.to(torch.complex64).cuda()])
    want, want_last, want_grads = _reference(x, True, dout, dlast)
    assert rel_err(out.detach().cpu().double(), want) < TOL
    assert rel_err(last.detach().cpu().to(torch.complex128), want_last) < TOL
    for name, leaf in x.items():
        assert rel_err(leaf.grad.cpu().to(want_grads[name].dtype), want_grads[name]) < TOL, name


def test_selective_scan_cupy_takes_complex_A_and_matches_selective_scan():
    x = {k: v.cuda() for k, v in inputs(2, 6, 100, 8, "interleaved", "grouped", True).items()}
    a = cuda.selective_scan_cupy(**x, delta_softplus=True)
    b = me.selective_scan(**x, delta_softplus=True)
    assert torch.equal(a, b)
    with torch.no_grad():  # inference: no checkpoints, same result
        assert torch.equal(me.selective_scan(**x, delta_softplus=True), a)


def test_what_the_kernel_does_not_take_goes_to_the_reference(monkeypatch):
    calls = _spy(monkeypatch)
    x = {k: v.cuda() for k, v in inputs(1, 3, 20, 65, "complex", "complex", False).items()}  # n = 65 > 64
    out = me.selective_scan(**x, delta_softplus=True)
    x128 = {k: v.to(torch.complex128) if v.is_complex() else v for k, v in x.items()}  # complex128: the reference
    out128 = me.selective_scan(**x128, delta_softplus=True)
    assert calls == [] and out.shape == out128.shape == (1, 3, 20)
    with pytest.raises(ValueError, match="n ≤ 64"):
        cuda.selective_scan_cupy(**x, delta_softplus=True)
    assert cuda.supports(**x) is False and cuda.supports(**x128) is False
    assert cuda.supports(**{k: v.cuda() for k, v in inputs(1, 3, 20, 64, "complex", "complex", False).items()})


def test_nan_in_a_complex_call_is_a_clear_error():
    x = {k: v.cuda() for k, v in inputs(1, 3, 20, 4, "complex", "complex", True).items()}
    x["B"][0, 1, 5] = complex(float("nan"), 0.0)
    with pytest.raises(ValueError, match="B"):
        me.selective_scan(**x, delta_softplus=True)


def test_a_batch_wider_than_one_block():
    """b·d = 300 channels: three blocks of 128 threads, the last one partly idle."""
    x = {k: v.cuda().requires_grad_() for k, v in inputs(3, 100, 40, 4, "complex", "complex", True).items()}
    out = me.selective_scan(**x, delta_softplus=True)
    out.square().sum().backward()
    ref = float64_leaves(x)
    want = selective_scan_ref(**ref, delta_softplus=True)
    want.square().sum().backward()
    assert rel_err(out.detach().cpu().double(), want.detach()) < TOL
    for name in ("u", "A", "B", "D"):
        assert rel_err(x[name].grad.cpu().to(ref[name].grad.dtype), ref[name].grad) < TOL, name
