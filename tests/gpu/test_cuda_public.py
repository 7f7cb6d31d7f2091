"""The GPU scan as users call it: me.selective_scan / selective_scan_cupy / MambaBlock on CUDA tensors.

Run by hand on a GPU machine: ``python -m pytest tests/gpu -q``. Every case is checked against the
float64 loop of test_cuda_scan.py (independent of mamba_edu). Tolerances, ‖got − ref‖ / ‖ref‖:
float32 forward 1e-5, gradients 1e-4; float16 inputs 3e-3 and bfloat16 inputs 2e-2 (the output and
the gradients are rounded to the input dtype; the reference runs on the same rounded inputs).
"""

import numpy as np
import pytest
import torch
from test_cuda_scan import make_inputs, reference_scan, rel_err  # tests/gpu is on sys.path (rootdir import)

import mamba_edu as me
from mamba_edu.scans import cuda

pytestmark = pytest.mark.gpu
DEV = torch.device("cuda")
NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def _torch(inputs, dtype=torch.float32, half=None, grad=False):
    """float64 numpy inputs → CUDA tensors (u, delta, B, C, z in ``half`` if given), optionally leaves."""
    out = {}
    for k, v in inputs.items():
        if v is None:
            continue
        t = torch.tensor(v, dtype=dtype, device=DEV)
        if half is not None and k in ("u", "delta", "B", "C", "z"):
            t = t.to(half)
        out[k] = t.requires_grad_() if grad else t
    return out


def _ref_grads(x, dout, dlast=None, softplus=True):
    """float64 forward (and gradients) of the loop on the given tensors' values."""
    ref = {k: v.detach().double().cpu().requires_grad_() for k, v in x.items()}
    out, h = reference_scan(**ref, delta_softplus=softplus)
    loss = (out * dout.double().cpu()).sum()
    if dlast is not None:
        loss = loss + (h * dlast.double().cpu()).sum()
    loss.backward()
    return out.detach(), h.detach(), {k: v.grad for k, v in ref.items()}


@pytest.mark.parametrize("n", [1, 4, 16, 20, 48, 64, 73, 128, 256])  # 20, 73: a partial state group
def test_every_state_size_forward_and_backward(n, rng):
    b, d, l = 2, 5, 700
    x = _torch(make_inputs(rng, b, d, l, n), grad=True)
    dout = torch.randn(b, d, l, device=DEV)
    out, last = me.selective_scan(**x, delta_softplus=True, return_last_state=True)
    out.backward(dout)
    want, h, grads = _ref_grads(x, dout)
    assert rel_err(out.detach().cpu(), want) < 1e-5
    assert rel_err(last.detach().cpu(), h) < 1e-5
    for k in x:
        assert rel_err(x[k].grad.cpu(), grads[k]) < 1e-4, k


@pytest.mark.parametrize("half, tol", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)])
def test_half_precision_inputs(half, tol, rng):
    b, d, l, n = 2, 6, 300, 16
    x = _torch(make_inputs(rng, b, d, l, n), half=half, grad=True)
    dout = torch.randn(b, d, l, device=DEV)
    out = me.selective_scan(**x, delta_softplus=True)
    assert out.dtype == half
    out.backward(dout.to(half))
    want, _, grads = _ref_grads(x, dout.to(half))
    assert rel_err(out.detach().float().cpu(), want) < tol
    for k in x:
        assert x[k].grad.dtype == x[k].dtype
        assert rel_err(x[k].grad.float().cpu(), grads[k]) < tol, k


def test_misaligned_views_fall_back_safely(rng):
    """Contiguous views 4 bytes off a 16-byte boundary take the 4-byte copy path (no crash, same result)."""
    b, d, l, n = 2, 5, 256, 16
    inputs = make_inputs(rng, b, d, l, n)
    x = _torch(inputs)
    y = {}
    for k, v in x.items():
        flat = torch.empty(v.numel() + 1, device=DEV)
        y[k] = flat[1:].view(v.shape)
        y[k].copy_(v)
        if v.dim() >= 2:
            assert y[k].data_ptr() % 16 != 0
    aligned = me.selective_scan(**x, delta_softplus=True)
    shifted = me.selective_scan(**y, delta_softplus=True)
    torch.cuda.synchronize()
    assert torch.equal(aligned, shifted)
    want, _ = reference_scan(**{k: torch.from_numpy(v) for k, v in inputs.items()}, delta_softplus=True)
    assert rel_err(shifted.cpu(), want) < 1e-5


def _assert_grads_with_dlast(rng, b, d, l, n):
    """Loss through out and the last state: every gradient matches the float64 loop; returns (x, dout, dlast)."""
    x = _torch(make_inputs(rng, b, d, l, n), grad=True)
    dout = torch.randn(b, d, l, device=DEV)
    dlast = torch.randn(b, d, n, device=DEV)
    out, last = me.selective_scan(**x, delta_softplus=True, return_last_state=True)
    ((out * dout).sum() + (last * dlast).sum()).backward()
    _, _, grads = _ref_grads(x, dout, dlast)
    for k in x:
        assert rel_err(x[k].grad.cpu(), grads[k]) < 1e-4, k
    return x, dout, dlast


def test_gradients_through_last_state_are_exact(rng):
    x, dout, dlast = _assert_grads_with_dlast(rng, 2, 4, 600, 16)
    # only the last state used: the gradient still reaches every input
    x2 = {k: v.detach().clone().requires_grad_() for k, v in x.items()}
    _, last2 = me.selective_scan(**x2, delta_softplus=True, return_last_state=True)
    (last2 * dlast).sum().backward()
    _, _, grads2 = _ref_grads(x2, torch.zeros_like(dout), dlast)
    for k in ("u", "delta", "A", "B", "delta_bias"):
        assert rel_err(x2[k].grad.cpu(), grads2[k]) < 1e-4, k


def test_batch_beyond_grid_y_limit(rng):
    """b = 70 000 > 65 535 (the grid's y limit): the batch is folded into x and every row is computed."""
    b, d, l, n = 70_000, 2, 8, 4
    inputs = make_inputs(rng, b, d, l, n)
    x = _torch(inputs, grad=True)
    out = me.selective_scan(**x, delta_softplus=True)
    out.sum().backward()
    want, _ = reference_scan(**{k: torch.from_numpy(v) for k, v in inputs.items()}, delta_softplus=True)
    assert rel_err(out.detach().cpu(), want) < 1e-5
    assert torch.isfinite(x["u"].grad).all() and x["u"].grad[-1].abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(2, 6, 333, 16), (1, 3, 5000, 16)])  # the second splits time into segments
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_input_is_a_clear_error(name, shape, value, rng):
    b, d, l, n = shape
    x = _torch(make_inputs(rng, b, d, l, n))
    flat = x[name].view(-1)
    flat[int(rng.integers(flat.numel()))] = value
    with pytest.raises(ValueError, match=f"{name} \\(shape"):
        me.selective_scan(**x, delta_softplus=True)
    with pytest.raises(ValueError, match="NaN or inf"):
        me.selective_scan_cupy(**x, delta_softplus=True)
    out = me.selective_scan_cupy(**x, delta_softplus=True, check_finite=False)  # opt-out: no error
    assert out.shape == (b, d, l)


@pytest.mark.parametrize("name", ["u", "delta", "B", "z"])
def test_nan_with_gradients_is_raised_by_the_backward(name, rng):
    """With gradients on, the forward returns without waiting; the backward reads the flag and names the argument."""
    inputs = make_inputs(rng, 2, 6, 333, 16)
    inputs[name].reshape(-1)[5] = np.nan
    x = _torch(inputs, grad=True)
    out = me.selective_scan(**x, delta_softplus=True)  # queued, not waited for
    with pytest.raises(ValueError, match=f"{name} \\(shape"):
        out.sum().backward()
    clean = _torch(make_inputs(rng, 2, 6, 333, 16), grad=True)  # the next call is not affected
    me.selective_scan(**clean, delta_softplus=True).sum().backward()
    assert torch.isfinite(clean["u"].grad).all()


def test_nan_with_gradients_and_no_backward_warns(rng):
    """A forward with gradients whose backward never runs is not silent: freeing it warns, naming the argument."""
    import gc

    inputs = make_inputs(rng, 2, 6, 333, 16)
    inputs["delta"].reshape(-1)[3] = -np.inf  # softplus(-inf) = 0: the step is skipped, the output stays finite
    x = _torch(inputs, grad=True)
    with pytest.warns(RuntimeWarning, match="delta contained NaN or inf"):
        out = me.selective_scan(**x, delta_softplus=True)
        assert torch.isfinite(out).all()
        del out
        gc.collect()


def test_pending_check_words_are_reused(rng):
    """A forward with gradients whose graph is dropped gives its word back once its kernel is done: no growth."""
    x = _torch(make_inputs(rng, 2, 6, 333, 16), grad=True)
    me.selective_scan(**x, delta_softplus=True)  # at least one word in this thread's pool
    torch.cuda.synchronize()
    pool = cuda._THREAD.pending[torch.cuda.current_device()]
    before = len(pool)
    for _ in range(20):
        me.selective_scan(**x, delta_softplus=True)
        torch.cuda.synchronize()
    assert len(pool) == before


def test_threads_each_read_their_own_error_word(rng):
    """Two threads calling at once (as DataParallel does): a NaN in one never raises in the other.

    The overlap depends on timing here; tests/test_cuda_host.py checks the one-word-per-thread rule itself."""
    import concurrent.futures

    bad = _torch(make_inputs(rng, 4, 64, 2048, 16))
    bad["u"][0, 0, 0] = float("nan")
    good = _torch(make_inputs(rng, 4, 64, 2048, 16))

    def calls(x):
        stream = torch.cuda.Stream()
        errors = 0
        with torch.cuda.stream(stream):
            for _ in range(40):
                try:
                    me.selective_scan(**x, delta_softplus=True)
                except ValueError:
                    errors += 1
        return errors

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        bad_errors, good_errors = pool.map(calls, (bad, good))
    assert (bad_errors, good_errors) == (40, 0)


def test_fixed_B_C_nan_is_caught(rng):
    x = _torch(make_inputs(rng, 2, 4, 100, 8, B_groups=None, C_groups=None))
    x["B"][1, 3] = float("inf")
    with pytest.raises(ValueError, match="B \\(shape"):
        me.selective_scan(**x, delta_softplus=True)


def test_dispatch_from_selective_scan(monkeypatch, rng):
    calls = []
    original = cuda._torch_v2  # the kernel's path, behind selective_scan_cupy and selective_scan's dispatch

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(cuda, "_torch_v2", spy)
    x = _torch(make_inputs(rng, 2, 3, 50, 16))
    out = me.selective_scan(**x, delta_softplus=True)
    assert calls == [1]
    want = me.selective_scan(**{k: v.cpu() for k, v in x.items()}, delta_softplus=True)
    assert rel_err(out.cpu(), want) < 1e-5
    # float64 stays on the reference; complex A takes its own kernels (tests/gpu/test_cuda_complex.py)
    me.selective_scan(**{k: v.double() for k, v in x.items()}, delta_softplus=True)
    xc = dict(x, A=x["A"].to(torch.complex64), B=x["B"].to(torch.complex64), C=x["C"].to(torch.complex64))
    me.selective_scan(**xc, delta_softplus=True)
    assert calls == [1]


def test_mamba_block_trains_on_the_kernel(monkeypatch):
    calls = []
    original = cuda._torch_v2
    monkeypatch.setattr(cuda, "_torch_v2", lambda *a, **k: calls.append(1) or original(*a, **k))
    torch.manual_seed(0)
    block = me.MambaBlock(32, d_state=16).double()
    x = torch.randn(2, 64, 32, dtype=torch.float64)
    want = block(x)
    want.square().sum().backward()
    grads = {k: p.grad.clone() for k, p in block.named_parameters()}
    block.zero_grad()
    gpu = block.float().to(DEV)
    got = gpu(x.float().to(DEV))
    got.square().sum().backward()
    assert calls, "MambaBlock on CUDA did not call the CuPy kernel"
    assert rel_err(got.detach().cpu(), want.detach()) < 1e-5
    for k, p in gpu.named_parameters():
        assert rel_err(p.grad.cpu(), grads[k]) < 1e-4, k


def test_cupy_arrays_keep_working(rng):
    import cupy as cp

    inputs = make_inputs(rng, 2, 5, 100, 16)
    c = {k: cp.asarray(v, dtype=cp.float32) for k, v in inputs.items() if v is not None}
    out = me.selective_scan_cupy(**c, delta_softplus=True)
    want, _ = reference_scan(**{k: torch.from_numpy(v) for k, v in inputs.items()}, delta_softplus=True)
    assert rel_err(cp.asnumpy(out), want) < 1e-5
    c["z"][0, 0, 0] = cp.nan
    with pytest.raises(ValueError, match="z \\(shape"):
        me.selective_scan_cupy(**c, delta_softplus=True)


def test_n_above_256_is_refused():
    x = {k: v for k, v in _torch(make_inputs(np.random.default_rng(0), 1, 2, 8, 257)).items()}
    with pytest.raises(ValueError, match="n ≤ 256"):
        me.selective_scan_cupy(**x)
    out = me.selective_scan(**x)  # me.selective_scan falls back to the reference
    assert out.shape == (1, 2, 8)


@pytest.mark.parametrize("target_warps", [12, 10**6])  # 2 and 6 (= tiles // 2) segments at b·d = 6
def test_backward_time_segments(target_warps, monkeypatch, rng):
    """The backward cut into time segments (two passes) gives the same gradients, dlast included."""
    monkeypatch.setattr(cuda, "BWD_SPLIT_BELOW_WARPS", 10**9)
    monkeypatch.setattr(cuda, "BWD_TARGET_WARPS", target_warps)
    cuda._backward_plan.cache_clear()
    cuda._CALLS.clear()  # each call plan keeps the launches it made
    try:
        assert cuda.backward_segments(2, 3, 3000)[0] > 1
        _assert_grads_with_dlast(rng, 2, 3, 3000, 16)
    finally:
        cuda._backward_plan.cache_clear()
        cuda._CALLS.clear()


def test_second_backward_with_retain_graph(rng):
    """A graph kept for a second backward gets fresh gradient buffers: the gradients add up exactly."""
    x = _torch(make_inputs(rng, 2, 3, 300, 16), grad=True)
    out = me.selective_scan(**x, delta_softplus=True)
    dout = torch.randn_like(out)
    out.backward(dout, retain_graph=True)
    first = {k: v.grad.clone() for k, v in x.items()}
    out.backward(dout)
    for k, v in x.items():
        assert torch.allclose(v.grad, 2 * first[k], rtol=1e-6, atol=1e-6), k


def test_plans_follow_the_signature(rng):
    """Calls that differ only in which optional arguments are given, or in shape, each get their own plan."""
    x = _torch(make_inputs(rng, 2, 3, 200, 16))
    full = me.selective_scan(**x, delta_softplus=True)
    bare = me.selective_scan(x["u"], x["delta"], x["A"], x["B"], x["C"], delta_softplus=True)
    want, _ = reference_scan(**{k: v.double().cpu() for k, v in x.items() if k not in ("D", "z", "delta_bias")},
                             delta_softplus=True)
    assert rel_err(bare.cpu(), want) < 1e-5
    assert not torch.allclose(full, bare)
    flat = me.selective_scan(x["u"], x["delta"], x["A"], x["B"][:, 0], x["C"][:, 0], delta_softplus=True)
    assert torch.equal(flat, bare)  # B, C of shape (b, n, l): the same memory as (b, 1, n, l)
    short = {k: (v[..., :150].contiguous() if v.dim() == 3 or k in ("B", "C") else v) for k, v in x.items()}
    want, _ = reference_scan(**{k: v.double().cpu() for k, v in short.items()}, delta_softplus=True)
    assert rel_err(me.selective_scan(**short, delta_softplus=True).cpu(), want) < 1e-5


@pytest.mark.parametrize("half, tol", [(torch.float16, 3e-3), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("l, shift", [(296, 0), (300, 0), (301, 0), (256, 1)])  # 296: 16-byte copies;
# l % 8 ≠ 0 and odd offsets: plain loads
@pytest.mark.parametrize("fixed_BC", [False, True])
def test_half_inputs_read_natively_without_grad(half, tol, l, shift, fixed_BC, rng):
    """No gradient wanted: the kernel reads half-precision u, delta, B, C, z as they are. Same values as
    converting them to float32 first (the arithmetic is float32 either way), and within tol of float64."""
    b, d, n = 2, 6, 16
    inputs = make_inputs(rng, b, d, l, n, B_groups=None if fixed_BC else 1, C_groups=None if fixed_BC else 1)
    x = _torch(inputs, half=half)
    if shift:  # contiguous views 2 bytes past a 16-byte boundary
        for k in ("u", "delta", "B", "C", "z"):
            flat = torch.empty(x[k].numel() + 1, device=DEV, dtype=half)
            x[k] = flat[1:].view(x[k].shape).copy_(x[k])
    out, last = me.selective_scan(**x, delta_softplus=True, return_last_state=True)
    assert out.dtype == half and last.dtype == torch.float32
    via_float = me.selective_scan(**{k: v.float() for k, v in x.items()}, delta_softplus=True, return_last_state=True)
    torch.testing.assert_close(out, via_float[0].to(half))  # the dtype's own tolerance (one rounding)
    torch.testing.assert_close(last, via_float[1])
    want, h = reference_scan(**{k: v.double().cpu() for k, v in x.items()}, delta_softplus=True)
    assert rel_err(out.float().cpu(), want) < tol
    assert rel_err(last.cpu(), h) < 1e-5


@pytest.mark.parametrize("name", ["u", "delta", "B", "C", "z"])
def test_half_input_nan_is_a_clear_error(name, rng):
    x = _torch(make_inputs(rng, 2, 6, 333, 16), half=torch.bfloat16)
    x[name].view(-1)[7] = float("inf")
    with pytest.raises(ValueError, match=f"{name} \\(shape"):
        me.selective_scan(**x, delta_softplus=True)


def test_native_half_path_is_taken_only_without_grad(monkeypatch, rng):
    """The forward is launched for bf16 inputs when no gradient is wanted, for float32 when one is."""
    seen = []
    original = cuda._launch_forward
    monkeypatch.setattr(cuda, "_launch_forward", lambda *a, **k: seen.append(a[6] if len(a) > 6 else k.get(
        "in_dtype", "float32")) or original(*a, **k))
    x = _torch(make_inputs(rng, 2, 6, 256, 16), half=torch.bfloat16)
    me.selective_scan(**x, delta_softplus=True)
    assert seen == ["bfloat16"]
    seen.clear()
    me.selective_scan(**{k: v.clone().requires_grad_() for k, v in x.items()}, delta_softplus=True)
    assert seen == ["float32"]


@pytest.mark.parametrize("b, d, l, n", [(2, 5, 300, 1), (2, 5, 300, 4), (2, 5, 300, 48), (2, 5, 300, 73),
                                        (2, 5, 300, 128), (2, 5, 300, 256),
                                        (2, 5, 296, 16), (2, 40, 296, 16),  # 16-byte copies; full blocks
                                        (2, 5, 296, 1), (2, 5, 296, 4), (2, 5, 296, 48), (2, 5, 296, 73),
                                        (2, 5, 296, 128), (2, 5, 296, 256),
                                        (1, 3, 5000, 16)])  # the last splits time into segments
def test_native_bf16_every_tile_shape(b, d, l, n, rng):
    """The natively read bf16 forward at the other tile shapes (lanes per channel, tile lengths, segments)."""
    x = _torch(make_inputs(rng, b, d, l, n), half=torch.bfloat16)
    out, last = me.selective_scan(**x, delta_softplus=True, return_last_state=True)
    want, h = reference_scan(**{k: v.double().cpu() for k, v in x.items()}, delta_softplus=True)
    assert out.dtype == torch.bfloat16
    assert rel_err(out.float().cpu(), want) < 2e-2
    assert rel_err(last.cpu(), h) < 1e-4  # float32 arithmetic over up to 5000 steps
