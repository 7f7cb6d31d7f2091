"""Lesson 8's fused SSD kernels (mamba_edu.scans.ssd_cuda) on a CUDA GPU, against a float64 loop.

Run by hand on a GPU machine: ``python -m pytest tests/gpu/test_ssd_cuda.py -q``; under the sanitizer
``compute-sanitizer --tool memcheck python -m pytest tests/gpu/test_ssd_cuda.py -q -k small``.
Skipped cleanly without CuPy or a GPU.

Tolerances (max error relative to the output's largest entry, against float64 on the same inputs):
float32 inputs 3e-3 — the kernels' matrix products use TF32 (10-bit mantissa, unit roundoff 4.9e-4),
like the official Triton kernel; bf16/fp16 inputs 1.5e-2 (the reference sees the same rounded inputs; the
16-bit products round M, w_s x_s and the passed states to the input type, as the official kernel does, and the
output is rounded too: 2⁻⁸ = 3.9e-3 each). Final states: the same bounds.
Every (p, n, Q, dtype) used here is compiled for sm_90 on CPU machines by tests/test_cuda_compile.py.
"""

import numpy as np
import pytest
import torch
from test_ssd import loop_ssd, make, rel  # tests/ is on sys.path (its conftest.py)

import mamba_edu as me
from mamba_edu.scans import ssd_cuda

pytestmark = pytest.mark.gpu

cupy = pytest.importorskip("cupy")  # without a GPU, tests/conftest.py skips the gpu-marked tests

TOL = {torch.float32: 3e-3, torch.bfloat16: 1.5e-2, torch.float16: 1.5e-2}
NAMES = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


def on_gpu(args, dtype=torch.float32):
    return {k: torch.tensor(v, dtype=dtype, device="cuda") for k, v in args.items()}


def reference(dev, softplus=True):
    """The float64 loop on exactly the values the kernel sees (after any rounding to bf16/fp16)."""
    a = {k: v.double().cpu().numpy() for k, v in dev.items()}
    return loop_ssd(a["x"], a["dt"], a["A"], a["B"], a["C"], a.get("D"), a.get("z"), a.get("dt_bias"), softplus,
                    a.get("initial_states"))


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls that reach the kernels' launcher."""
    calls = []
    real = ssd_cuda.ssd_scan_cuda

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(ssd_cuda, "ssd_scan_cuda", counted)
    return calls


def check(dev, Q, dtype=torch.float32, softplus=True, **extra):
    out, final = ssd_cuda.ssd_scan_cuda(**dev, chunk_size=Q, dt_softplus=softplus, return_final_states=True, **extra)
    torch.cuda.synchronize()
    ref, ref_final = reference(dev, softplus)
    assert out.dtype == dev["x"].dtype and out.shape == dev["x"].shape and final.dtype == torch.float32
    assert torch.isfinite(out).all() and torch.isfinite(final).all()
    assert rel(out, ref) < TOL[dtype], rel(out, ref)
    assert rel(final, ref_final) < TOL[dtype], rel(final, ref_final)


# ---------------------------------------------------------------- small sizes (the sanitizer's entry: -k small)
@pytest.mark.parametrize("l", [1, 63, 64, 65, 300])
@pytest.mark.parametrize("g", [1, 2])
def test_small_every_option_matches_loop(l, g):
    """D (h, p), z, dt_bias + softplus, initial and final states; partial last chunks; groups."""
    check(on_gpu(make(b=2, l=l, h=4, p=8, g=g, n=16, seed=l + g)), 64)


@pytest.mark.parametrize("Q", ssd_cuda.CHUNK_SIZES)
def test_small_chunk_sizes(Q):
    check(on_gpu(make(b=2, l=300, h=4, p=8, g=2, n=16, seed=Q)), Q)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_small_half_precision_inputs(dtype):
    """Every argument in bf16 / fp16: read as is by the kernels, output in that dtype (16-bit products)."""
    args = make(b=2, l=130, h=4, p=8, g=2, n=16, seed=3)
    args["initial_states"] = args["initial_states"] * 0.1
    dev = on_gpu(args, dtype)
    assert ssd_cuda._mma16(dev["x"], dev["B"], dev["C"])
    check(dev, 64, dtype)


@pytest.mark.parametrize("Q", ssd_cuda.CHUNK_SIZES)
@pytest.mark.parametrize("p, n", [(8, 8), (24, 40), (64, 128), (128, 256)])
def test_small_16bit_products_every_tile(p, n, Q):
    """The 16-bit tiles (MMA16) at every chunk size: depths padded to 16 (n = 8, 40), several tiles (p, n = 128,
    256), partial last chunks and groups; bfloat16 and float16."""
    for dtype, seed in ((torch.bfloat16, 1), (torch.float16, 2)):
        args = make(b=2, l=3 * Q // 2 + 5, h=4, p=p, g=2, n=n, seed=seed + p + n + Q)
        args["initial_states"] = args["initial_states"] * 0.1
        dev = on_gpu(args, dtype)
        assert ssd_cuda._mma16(dev["x"], dev["B"], dev["C"])
        check(dev, Q, dtype)


def test_small_mixed_dtypes_like_the_benchmark():
    """x, dt, B, C in bf16; A, D, dt_bias in float32 (the official tests' setting)."""
    args = make(b=2, l=100, h=4, p=8, g=1, n=16, seed=4, extras=False)
    dev = on_gpu(args, torch.bfloat16)
    dev["A"] = dev["A"].float()
    dev.update(D=torch.randn(4, device="cuda"), dt_bias=torch.rand(4, device="cuda") - 0.5)
    check(dev, 64, torch.bfloat16)


def test_small_without_options():
    """D (h,), no z, no bias, no softplus (Δ = dt ≥ 0), no initial state."""
    args = make(b=2, l=77, h=4, p=8, g=2, n=16, seed=5, extras=False)
    args["dt"] = np.abs(args["dt"]) * 0.2
    dev = on_gpu(args)
    check(dev, 64, softplus=False)
    dev["D"] = torch.randn(4, device="cuda")
    check(dev, 64, softplus=False)


@pytest.mark.parametrize("p, n", [(20, 24), (70, 140), (128, 256)])
def test_small_padded_and_tiled_sizes(p, n):
    """p, n not multiples of 16 (padding) and larger than one tile (several blocks), up to the limits."""
    check(on_gpu(make(b=1, l=150, h=2, p=p, g=1, n=n, seed=p)), 64)
    if p == 128:
        check(on_gpu(make(b=1, l=300, h=2, p=p, g=2, n=n, seed=1)), 256)


def misaligned(t):
    """The same values in a contiguous tensor whose data starts one element past an aligned address."""
    buf = torch.empty(t.numel() + 1, dtype=t.dtype, device=t.device)
    view = buf[1:].view(t.shape)
    view.copy_(t)
    return view


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_small_odd_sizes_and_misaligned_rows(dtype):
    """Rows that cannot be copied 4 elements at a time (p, n not multiples of 4; data not 16/8-byte aligned)
    take the kernels' element-wise copies: right, and bit-for-bit the results of the aligned copies."""
    args = make(b=2, l=130, h=4, p=6, g=2, n=10, seed=8)
    args["initial_states"] = args["initial_states"] * 0.1
    check(on_gpu(args, dtype), 64, dtype)
    dev = on_gpu(make(b=2, l=130, h=4, p=8, g=2, n=16, seed=9), dtype)
    shifted = {k: misaligned(v) if k in ("x", "B", "C") else v for k, v in dev.items()}
    assert shifted["x"].is_contiguous() and shifted["x"].data_ptr() % 8 != 0
    assert not ssd_cuda._mma16(shifted["x"], shifted["B"], shifted["C"])  # 16-bit inputs: the float32 tiles
    with pytest.MonkeyPatch.context() as mp:  # the aligned inputs through the same (float32-tile) kernels
        mp.setattr(ssd_cuda, "_mma16", lambda *a: False)
        ref = ssd_cuda.ssd_scan_cuda(**dev, chunk_size=64, dt_softplus=True)
    out = ssd_cuda.ssd_scan_cuda(**shifted, chunk_size=64, dt_softplus=True)
    assert torch.equal(out, ref)


def test_small_non_contiguous_inputs():
    args = on_gpu(make(b=2, l=70, h=4, p=8, g=2, n=16, seed=6))
    ref = ssd_cuda.ssd_scan_cuda(**args, chunk_size=64, dt_softplus=True)
    strided = {k: v.transpose(0, -1).contiguous().transpose(0, -1) if v.ndim > 1 else v for k, v in args.items()}
    assert not strided["x"].is_contiguous()
    out = ssd_cuda.ssd_scan_cuda(**strided, chunk_size=64, dt_softplus=True)
    assert torch.equal(out, ref)


def test_small_on_a_side_stream():
    """Launches go to torch's current stream (results correct when the caller uses another stream)."""
    dev = on_gpu(make(b=2, l=65, h=4, p=8, g=2, n=16, seed=7))
    ref, _ = reference(dev)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        out = ssd_cuda.ssd_scan_cuda(**dev, chunk_size=64, dt_softplus=True)
    stream.synchronize()
    assert rel(out, ref) < TOL[torch.float32]


# ---------------------------------------------------------------- the benchmark's shapes, b = 1
@pytest.mark.parametrize("shape, Q", [((1, 2048, 24, 64, 1, 128), 256), ((1, 1024, 12, 64, 1, 64), 64),
                                      ((1, 1000, 24, 64, 1, 128), 128)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_benchmark_shapes(shape, Q, dtype):
    """Against the generic chunked method in float64 on the GPU (itself checked against the loop to 1e-10)."""
    b, l, h, p, g, n = shape
    gen = torch.Generator(device="cuda").manual_seed(0)
    r = lambda *s: torch.randn(*s, device="cuda", generator=gen)  # noqa: E731
    dev = dict(x=r(b, l, h, p).to(dtype), dt=(r(b, l, h) - 2).to(dtype),
               A=-torch.exp(torch.rand(h, device="cuda", generator=gen) * 2 - 1),
               B=(r(b, l, g, n) / n**0.5).to(dtype), C=(r(b, l, g, n) / n**0.5).to(dtype),
               D=r(h), dt_bias=torch.rand(h, device="cuda", generator=gen) - 0.5)
    out, final = ssd_cuda.ssd_scan_cuda(**dev, chunk_size=Q, dt_softplus=True, return_final_states=True)
    ref, ref_final = me.ssd_scan(**{k: v.double() for k, v in dev.items()}, chunk_size=Q, dt_softplus=True,
                                 return_final_states=True)
    assert out.dtype == dtype
    scale = ref.abs().max()
    assert float((out.double() - ref).abs().max() / scale) < TOL[dtype]
    assert float((final.double() - ref_final).abs().max() / ref_final.abs().max()) < TOL[dtype]


# ---------------------------------------------------------------- dispatch from me.ssd_scan
def test_small_dispatch_from_ssd_scan(spy):
    args = make(b=2, l=40, h=4, p=8, g=2, n=16, seed=8)
    dev = on_gpu(args)
    out = me.ssd_scan(**dev, chunk_size=64, dt_softplus=True)
    assert len(spy) == 1
    assert rel(out, reference(dev)[0]) < TOL[torch.float32]
    me.ssd_scan(**dev)  # default arguments (chunk_size=64)
    assert len(spy) == 2
    for method in ("sequential", "quadratic"):
        me.ssd_scan(**dev, method=method)
    me.ssd_scan(**{k: v.double() for k, v in dev.items()})  # float64: generic path
    me.ssd_scan(**dev, chunk_size=48)  # a chunk size the kernels are not built for
    me.ssd_scan(**{k: cupy.asarray(v) for k, v in args.items()})  # CuPy arrays: generic path (strict fp32)
    assert len(spy) == 2


def test_small_gradients_keep_the_differentiable_path(spy):
    args = make(b=1, l=30, h=2, p=4, g=1, n=8, seed=9)
    dev = {k: torch.tensor(v, dtype=torch.float32, device="cuda", requires_grad=True) for k, v in args.items()}
    out = me.ssd_scan(**dev, chunk_size=16, dt_softplus=True)
    out.sum().backward()
    assert len(spy) == 0 and dev["x"].grad is not None and torch.isfinite(dev["x"].grad).all()
    with torch.no_grad():  # no gradient wanted: the kernels run
        fast = me.ssd_scan(**dev, chunk_size=16, dt_softplus=True)
    assert len(spy) == 1 and not fast.requires_grad
    assert float((fast - out.detach()).abs().max() / out.abs().max()) < TOL[torch.float32]
    with pytest.raises(NotImplementedError, match="forward only"):
        ssd_cuda.ssd_scan_cuda(**dev, chunk_size=16)


# ---------------------------------------------------------------- errors
def test_small_bad_inputs_are_named():
    dev = on_gpu(make(b=2, l=20, h=4, p=8, g=2, n=16, seed=10, extras=False))
    bad = dict(dev, C=dev["C"][..., :5])
    with pytest.raises(ValueError, match="C has shape"):
        me.ssd_scan(**bad)  # through the dispatch: the same message as the generic path
    with pytest.raises(ValueError, match="C has shape"):
        ssd_cuda.ssd_scan_cuda(**bad)
    with pytest.raises(ValueError, match="dt has shape"):
        ssd_cuda.ssd_scan_cuda(**dict(dev, dt=dev["dt"][:, :3]))
    with pytest.raises(ValueError, match="x has dtype torch.float64"):
        ssd_cuda.ssd_scan_cuda(**dict(dev, x=dev["x"].double()))
    with pytest.raises(ValueError, match="chunk_size is 48"):
        ssd_cuda.ssd_scan_cuda(**dev, chunk_size=48)
    with pytest.raises(ValueError, match="B is on cpu"):
        ssd_cuda.ssd_scan_cuda(**dict(dev, B=dev["B"].cpu()))
    big = make(b=1, l=4, h=2, p=130, g=1, n=4, extras=False)
    with pytest.raises(ValueError, match="p ≤ 128"):
        ssd_cuda.ssd_scan_cuda(**on_gpu(big))
    assert not ssd_cuda.supports(**on_gpu(big))
