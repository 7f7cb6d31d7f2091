"""The complex-A kernel's arithmetic, checked on the CPU: complex_scan.cu compiled by g++ behind a thin shim.

tests/cpu_shim/cuda_on_cpu.h defines the few CUDA names the kernel uses (the grid becomes a loop,
atomicAdd a plain add), so the same source that runs on the GPU runs here, through the same host code
(mamba_edu.scans.cuda_complex.scan with a CPU launch). Forward and every gradient are compared with
the float64 torch reference and its autograd: relative error below 1e-4 (float32 arithmetic over up to
70 steps; the GPU tests in tests/gpu/test_cuda_complex.py use the same bound on the GPU).
"""

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from mamba_edu.scans import cuda, cuda_complex
from mamba_edu.scans.selective import selective_scan_ref

SHIM = Path(__file__).parent / "cpu_shim"
TOL = 1e-4

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++ to build the kernel for the CPU")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    """build(n) → a ctypes library of complex_scan.cu for n states (compiled once per n)."""
    libs = {}

    def get(n):
        if n not in libs:
            so = tmp_path_factory.mktemp(f"complex{n}") / "complex.so"
            kernel = cuda.KERNEL_DIR / cuda.KERNEL_FILES["complex"]
            cmd = ["g++", "-O1", "-std=c++17", "-shared", "-fPIC", f"-I{SHIM}", f"-DDSTATE={n}",
                   f"-DCHK={cuda_complex.CHK}", f'-DKERNEL="{kernel}"', str(SHIM / "complex_launch.cpp"), "-o", str(so)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            assert proc.returncode == 0, proc.stderr
            libs[n] = ctypes.CDLL(str(so))
        return libs[n]

    return get


def cpu_launch(build):
    def launch(name, n, blocks, pointers, ints):
        entry = getattr(build(n), {"complex_scan_fwd": "launch_fwd", "complex_scan_bwd": "launch_bwd"}[name])
        ptrs = (ctypes.c_void_p * len(pointers))(*pointers)
        entry(ctypes.c_uint(blocks), ctypes.c_uint(cuda_complex.THREADS), ptrs, (ctypes.c_int * 6)(*ints))

    return launch


def float64_leaves(x):
    """Detached CPU copies of the inputs in float64 / complex128, requiring grad: the reference's leaves."""
    return {k: v.detach().cpu().to(torch.complex128 if v.is_complex() else torch.float64).requires_grad_()
            for k, v in x.items()}


def rel_err(got, want):
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))


def inputs(b, d, l, n, B_kind, C_kind, gate=True, seed=0):
    """float32 / complex64 leaves; B_kind/C_kind: 'complex' (b, n, l), 'grouped' (b, g, n, l), 'interleaved'
    (b, g, n, 2l) real, 'real' (b, n, l) real, 'fixed' (d, n) complex, 'fixed-real' (d, n) real."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    k = torch.arange(n)
    A = torch.complex(-0.5 - torch.rand(d, n, generator=g), torch.pi * k.float().expand(d, n) * 0.3)
    x = dict(u=r(b, d, l), delta=r(b, d, l) * 0.5 - 1, A=A.to(torch.complex64))

    def bc(kind):
        shape = {"complex": (b, n, l), "grouped": (b, 2, n, l), "fixed": (d, n)}.get(kind)
        if shape is not None:
            return torch.complex(r(*shape), r(*shape)).to(torch.complex64)
        return {"interleaved": r(b, 2, n, 2 * l), "real": r(b, n, l), "fixed-real": r(d, n)}[kind]

    x["B"], x["C"] = bc(B_kind), bc(C_kind)
    if gate:
        x.update(D=r(d), z=r(b, d, l), delta_bias=r(d) * 0.3)
    return x


CASES = [  # (b, d, l, n, B kind, C kind, gate and bias)
    (2, 4, 70, 3, "complex", "complex", True),  # l not a multiple of CHK: a short last segment
    (1, 4, 32, 1, "grouped", "interleaved", True),
    (2, 6, 40, 4, "fixed", "real", False),
    (1, 3, 33, 2, "fixed-real", "fixed", True),
    (3, 2, 5, 5, "interleaved", "grouped", True),
]


@pytest.mark.parametrize("b, d, l, n, B_kind, C_kind, gate", CASES)
@pytest.mark.parametrize("softplus", [True, False])
def test_forward_and_gradients_match_the_float64_reference(build, b, d, l, n, B_kind, C_kind, gate, softplus):
    x = inputs(b, d, l, n, B_kind, C_kind, gate)
    if not softplus:  # Δ = delta + delta_bias as given: keep it positive, so that the states decay
        x["delta"] = x["delta"].abs() * 0.2 + 0.01
        if gate:
            x["delta_bias"] = x["delta_bias"].abs() * 0.1
    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    args = [leaves.get(k) for k in cuda._ARG_BITS]
    out, last = cuda_complex.scan(args, softplus, True, True, cpu_launch(build))
    ref_leaves = float64_leaves(x)
    want, want_last = selective_scan_ref(**ref_leaves, delta_softplus=softplus, return_last_state=True)
    assert rel_err(out.detach().double(), want.detach()) < TOL
    assert rel_err(last.detach().to(torch.complex128), want_last.detach()) < TOL

    g = torch.Generator().manual_seed(1)
    dout = torch.randn(b, d, l, generator=g)
    dlast = torch.complex(torch.randn(b, d, n, generator=g), torch.randn(b, d, n, generator=g))
    torch.autograd.backward([out, last], [dout, dlast.to(torch.complex64)])
    torch.autograd.backward([want, want_last], [dout.double(), dlast.to(torch.complex128)])
    for name, leaf in leaves.items():
        assert leaf.grad is not None, name
        assert rel_err(leaf.grad.to(ref_leaves[name].grad.dtype), ref_leaves[name].grad) < TOL, name


def test_without_last_state_and_without_gradients(build):
    """No checkpoints are written without gradients; out alone matches too."""
    x = inputs(2, 3, 45, 2, "complex", "fixed", True)
    args = [x.get(k) for k in cuda._ARG_BITS]
    out = cuda_complex.scan(args, True, False, True, cpu_launch(build))
    want = selective_scan_ref(**float64_leaves(x), delta_softplus=True).detach()
    assert out.dtype == torch.float32 and rel_err(out.double(), want) < TOL


def test_gradient_of_last_state_alone(build):
    """A loss on last_state only: the adjoint starts from dlast (no dout)."""
    x = inputs(1, 2, 37, 3, "complex", "complex", False)
    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    _, last = cuda_complex.scan([leaves.get(k) for k in cuda._ARG_BITS], True, True, True, cpu_launch(build))
    last.abs().pow(2).sum().backward()
    ref = float64_leaves(x)
    _, want_last = selective_scan_ref(**ref, delta_softplus=True, return_last_state=True)
    want_last.abs().pow(2).sum().backward()
    for name in ("u", "delta", "A", "B"):
        assert rel_err(leaves[name].grad.to(ref[name].grad.dtype), ref[name].grad) < TOL, name
    assert ref["C"].grad is None and not leaves["C"].grad.abs().any()  # last_state does not read C


def test_the_check_can_fail(build):
    """A wrong gradient is caught: the comparison above is not vacuous."""
    x = inputs(1, 2, 20, 2, "complex", "complex", True)
    leaves = {k: v.clone().requires_grad_() for k, v in x.items()}
    out = cuda_complex.scan([leaves.get(k) for k in cuda._ARG_BITS], True, False, True, cpu_launch(build))
    out.sum().backward()
    ref = float64_leaves(x)
    selective_scan_ref(**ref, delta_softplus=True).sum().backward()
    assert rel_err(leaves["A"].grad.conj().to(torch.complex128), ref["A"].grad) > TOL  # conj: the other convention
    assert rel_err(leaves["A"].grad.to(torch.complex128), ref["A"].grad) < TOL  # and the right one passes
