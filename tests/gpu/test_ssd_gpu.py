"""Lesson 8's SSD on a CUDA GPU (CuPy arrays and CUDA torch tensors) against a float64 loop.

Run by hand on a GPU machine: ``python -m pytest tests/gpu/test_ssd_gpu.py -q``. Skipped cleanly
without CuPy or a GPU. Tolerances (max error relative to the largest output): float32 1e-5 with
strict fp32 matrix products (CuPy's default; torch with TF32 off), 2e-3 with TF32, 1e-2 for bf16
inputs (the rounding of the bf16 output).
"""

import numpy as np
import pytest
import torch
from test_ssd import loop_ssd, make, rel  # tests/ is on sys.path (its conftest.py)

import mamba_edu as me

pytestmark = pytest.mark.gpu

cupy = pytest.importorskip("cupy")  # without a GPU, tests/conftest.py skips the gpu-marked tests


SHAPES = [dict(b=2, l=77, h=4, p=8, g=2, n=16), dict(b=1, l=300, h=3, p=4, g=1, n=8)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("method", ["chunked", "quadratic"])
def test_cupy_float32_matches_loop(shape, method):
    args = make(**shape, seed=11)
    ref, ref_final = loop_ssd(args["x"], args["dt"], args["A"], args["B"], args["C"], args["D"], args["z"],
                              args["dt_bias"], True, args["initial_states"])
    dev = {k: cupy.asarray(v, dtype=cupy.float32) for k, v in args.items()}
    out, final = me.ssd_scan(**dev, chunk_size=32, dt_softplus=True, return_final_states=True, method=method)
    assert isinstance(out, cupy.ndarray) and out.dtype == cupy.float32 and final.dtype == cupy.float32
    assert rel(cupy.asnumpy(out), ref) < 1e-5
    assert rel(cupy.asnumpy(final), ref_final) < 1e-5
    dev64 = {k: cupy.asarray(v) for k, v in args.items()}
    out64 = me.ssd_scan(**dev64, chunk_size=32, dt_softplus=True, method=method)
    assert rel(cupy.asnumpy(out64), ref) < 1e-10


@pytest.mark.parametrize("tf32", [False, True])
def test_torch_cuda_forward_and_gradients(tf32):
    args = make(b=2, l=45, h=4, p=4, g=2, n=8, seed=12)
    ref, _ = loop_ssd(args["x"], args["dt"], args["A"], args["B"], args["C"], args["D"], args["z"],
                      args["dt_bias"], True, args["initial_states"])
    old = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    try:
        gpu = {k: torch.tensor(v, dtype=torch.float32, device="cuda", requires_grad=True) for k, v in args.items()}
        out = me.ssd_scan(**gpu, chunk_size=16, dt_softplus=True)
        assert out.device.type == "cuda" and out.dtype == torch.float32
        assert rel(out, ref) < (2e-3 if tf32 else 1e-5)
        w = torch.linspace(-1, 1, out.numel(), device="cuda").reshape(out.shape)
        (out * w).sum().backward()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    cpu = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in args.items()}
    out64 = me.ssd_scan(**cpu, chunk_size=16, dt_softplus=True, method="sequential")
    (out64 * w.double().cpu()).sum().backward()
    for name in args:
        assert rel(gpu[name].grad, cpu[name].grad.numpy()) < (5e-3 if tf32 else 1e-4), name


def test_torch_cuda_bf16_inputs():
    args = make(b=2, l=64, h=4, p=8, g=1, n=16, seed=13)
    bf = {k: torch.tensor(v, dtype=torch.bfloat16, device="cuda") for k, v in args.items()}
    out = me.ssd_scan(**bf, chunk_size=32, dt_softplus=True)
    assert out.dtype == torch.bfloat16
    exact = {k: v.float().cpu().numpy().astype(np.float64) for k, v in bf.items()}
    ref, _ = loop_ssd(exact["x"], exact["dt"], exact["A"], exact["B"], exact["C"], exact["D"], exact["z"],
                      exact["dt_bias"], True, exact["initial_states"])
    assert rel(out, ref) < 1e-2


def test_cupy_errors_name_the_argument():
    args = make(l=8)
    dev = {k: cupy.asarray(v, dtype=cupy.float32) for k, v in args.items()}
    dev["B"] = dev["B"][:, :, :1, :3]
    with pytest.raises(ValueError, match="C has shape"):
        me.ssd_scan(**dev)
    dev = {k: cupy.asarray(v, dtype=cupy.float32) for k, v in args.items()}
    dev["A"] = np.asarray(args["A"])
    with pytest.raises(ValueError, match="A is a numpy array but x is a cupy array"):
        me.ssd_scan(**dev)
