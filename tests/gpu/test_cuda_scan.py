"""The CuPy kernels of lesson 7 against a float64 loop written here (needs CuPy and a CUDA GPU).

Run by hand on a GPU machine: ``python -m pytest tests/gpu -q``. Tolerances (norm-relative,
‖got − ref‖ / ‖ref‖): forward 1e-5, gradients 1e-4 (the issue's targets), with float32 kernels
against float64 references. Every output buffer is poisoned with NaN before the launch, so an
element the kernel forgets to write fails the test.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mamba_edu.scans import cuda

pytestmark = pytest.mark.gpu

FWD_TOL = 1e-5
GRAD_TOL = 1e-4


# ---------- the float64 reference: a plain loop over time (independent of mamba_edu) ----------
def reference_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """float64 torch loop; u, delta, z (b, d, l); A (d, n); B, C (b, g, n, l) or (d, n). Returns (out, h)."""
    b, d, l = u.shape
    n = A.shape[1]
    dl = delta if delta_bias is None else delta + delta_bias[:, None]
    if delta_softplus:
        dl = F.softplus(dl)

    def at(X, t):  # (b, d, n) slice of B or C at step t
        if X.ndim == 2:
            return X.expand(b, d, n)
        g = X.shape[1]
        return X[:, :, :, t].repeat_interleave(d // g, dim=1)

    h = torch.zeros(b, d, n, dtype=u.dtype)
    ys = []
    for t in range(l):
        h = torch.exp(dl[:, :, t, None] * A) * h + dl[:, :, t, None] * at(B, t) * u[:, :, t, None]
        ys.append((at(C, t) * h).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + D[:, None] * u
    if z is not None:
        y = y * F.silu(z)
    return y, h


def make_inputs(rng, b, d, l, n, B_groups=1, C_groups=1, with_D=True, with_z=True, with_bias=True):
    """float64 numpy inputs; *_groups = None means fixed (d, n)."""
    u = rng.standard_normal((b, d, l))
    delta = rng.uniform(-4.0, 1.0, (b, d, l))  # softplus → Δ in about (0.02, 1.3)
    A = -np.exp(rng.uniform(-1.0, 1.5, (d, n)))  # real, negative (S4D-real-like range)

    def bc(groups):
        return rng.standard_normal((d, n)) if groups is None else rng.standard_normal((b, groups, n, l))

    return dict(
        u=u, delta=delta, A=A, B=bc(B_groups), C=bc(C_groups),
        D=rng.standard_normal(d) if with_D else None,
        z=rng.standard_normal((b, d, l)) if with_z else None,
        delta_bias=rng.uniform(-1.0, 0.5, d) if with_bias else None,
    )


def no_softplus(inputs, rng):
    """Without softplus, Δ = delta + delta_bias must itself be positive (else the state grows)."""
    inputs["delta"] = rng.uniform(0.01, 1.0, inputs["delta"].shape)
    if inputs["delta_bias"] is not None:
        inputs["delta_bias"] = rng.uniform(0.0, 0.3, inputs["delta_bias"].shape)


def rel_err(got, ref):
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert np.isfinite(got).all(), "non-finite values (an output element was not written?)"
    return float(np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30))


def to_cupy(inputs):
    import cupy as cp

    return {k: None if v is None else cp.asarray(v, dtype=cp.float32) for k, v in inputs.items()}


def run_poisoned(version, inputs, softplus=True, chunk=cuda.CHUNK, forward=None, checkpoint=False):
    """Launch one kernel with NaN-filled outputs; return (out, last_state[, h_chk]) as numpy."""
    import cupy as cp

    x = to_cupy(inputs)
    b, d, l = inputs["u"].shape
    n = inputs["A"].shape[1]
    out = cp.full((b, d, l), cp.nan, dtype=cp.float32)
    last = cp.full((b, d, n), cp.nan, dtype=cp.float32)
    h_chk = cp.full((b, d, cuda.n_tiles(l, chunk), n), cp.nan, dtype=cp.float32) if checkpoint else None
    cuda.scan_forward(version, x["u"], x["delta"], x["A"], x["B"], x["C"], x["D"], x["z"], x["delta_bias"],
                      softplus, out=out, last_state=last, h_chk=h_chk, chunk=chunk, forward=forward)
    cp.cuda.runtime.deviceSynchronize()
    result = (cp.asnumpy(out), cp.asnumpy(last))
    return result + (cp.asnumpy(h_chk),) if checkpoint else result


def reference(inputs, softplus=True):
    t = {k: None if v is None else torch.from_numpy(v) for k, v in inputs.items()}
    out, h = reference_scan(**t, delta_softplus=softplus)
    return out.numpy(), h.numpy()


# ---------------------------------------------------------------- forward ----------
@pytest.mark.parametrize("l", [1, 7, 64, 2048, 16384])
def test_v2_forward_matches_float64_loop(l, rng):
    b, d, n = (2, 5, 16) if l <= 2048 else (1, 3, 16)  # odd d
    inputs = make_inputs(rng, b, d, l, n)
    out, last = run_poisoned("v2", inputs)
    ref_out, ref_h = reference(inputs)
    assert rel_err(out, ref_out) < FWD_TOL
    assert rel_err(last, ref_h) < FWD_TOL


@pytest.mark.parametrize("version", ["v0", "v1"])
@pytest.mark.parametrize("l", [1, 7, 300, 2048])
def test_v0_v1_forward_match_float64_loop(version, l, rng):
    inputs = make_inputs(rng, 2, 5, l, 16)
    out, last = run_poisoned(version, inputs)
    ref_out, ref_h = reference(inputs)
    assert rel_err(out, ref_out) < FWD_TOL
    assert rel_err(last, ref_h) < FWD_TOL


LAYOUTS = {  # name: (d, n, B_groups, C_groups, D, z, bias, softplus)
    "grouped-3": (9, 16, 3, 3, True, True, True, True),
    "grouped-mixed": (12, 8, 2, 3, True, False, True, True),
    "fixed-B": (7, 4, None, 1, False, True, False, True),
    "fixed-C": (7, 5, 1, None, True, False, True, False),
    "fixed-both": (5, 16, None, None, True, True, True, True),
    "plain": (33, 16, 1, 1, False, False, False, False),
    "n1": (3, 1, 1, 1, True, True, True, True),
}


@pytest.mark.parametrize("version", ["v0", "v1", "v2"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_forward_layouts_and_options(version, layout, rng):
    d, n, gB, gC, with_D, with_z, with_bias, softplus = LAYOUTS[layout]
    inputs = make_inputs(rng, 2, d, 333, n, gB, gC, with_D, with_z, with_bias)
    if not softplus:
        no_softplus(inputs, rng)
    out, last = run_poisoned(version, inputs, softplus=softplus)
    ref_out, ref_h = reference(inputs, softplus=softplus)
    assert rel_err(out, ref_out) < FWD_TOL
    assert rel_err(last, ref_h) < FWD_TOL


TILINGS = [  # (v2 forward tile shape, backward chunk = checkpoint spacing / 32, n)
    (dict(lpc=4, nwarps=2, tile=16), 4, 16),
    (dict(lpc=4, nwarps=1, tile=8), 4, 7),
    (dict(lpc=8, nwarps=8, tile=64), 8, 16),
    (dict(lpc=16, nwarps=4, tile=128, min_blocks=2), 16, 16),
    (dict(lpc=32, nwarps=1, tile=32), 4, 16),
    (dict(lpc=16, nwarps=8, tile=64), 8, 20),
    (dict(lpc=16, nwarps=8, tile=64, segments=3), 8, 16),  # time split over the grid (two passes)
    (dict(lpc=4, nwarps=2, tile=16, segments=4), 4, 5),
    (dict(segments=8), 1, 16),
]


@pytest.mark.parametrize("l", [1002, 1000])  # 1000: rows a multiple of 4, the 16-byte copies
@pytest.mark.parametrize("forward, chunk, n", TILINGS)
def test_v2_tile_shapes_agree(forward, chunk, n, l, rng):
    """Every tile shape computes the same function (and the checkpoints are the states entering tiles)."""
    inputs = make_inputs(rng, 2, 11, l, n)
    out, last, h_chk = run_poisoned("v2", inputs, chunk=chunk, forward=forward, checkpoint=True)
    ref_out, ref_h = reference(inputs)
    assert rel_err(out, ref_out) < FWD_TOL
    assert rel_err(last, ref_h) < FWD_TOL
    tile = 32 * chunk
    for k in range(1, h_chk.shape[2]):
        cut = {key: (v[..., : k * tile] if key in ("u", "delta", "z") or (key in ("B", "C") and v.ndim == 4)
                     else v) for key, v in inputs.items()}
        _, h_k = reference(cut)
        assert rel_err(h_chk[:, :, k], h_k) < FWD_TOL
    assert np.all(h_chk[:, :, 0] == 0)


def test_time_segments():
    """Few channels: time is split (aligned to tiles and checkpoints); many channels: not."""
    assert cuda.time_segments(8, 1536, 2048) == (1, 2048)
    segments, seg_len = cuda.time_segments(1, 1536, 16384)
    assert segments > 1 and seg_len * (segments - 1) < 16384 <= seg_len * segments
    assert seg_len % cuda.FORWARD["tile"] == 0 and seg_len % (32 * cuda.CHUNK) == 0
    assert cuda.time_segments(1, 3, 100) == (1, 256)


def test_public_function_torch_and_cupy(rng):
    import cupy as cp

    inputs = make_inputs(rng, 2, 5, 100, 16)
    ref_out, ref_h = reference(inputs)
    dev = torch.device("cuda")
    t = {k: None if v is None else torch.tensor(v, dtype=torch.float32, device=dev) for k, v in inputs.items()}
    t["B"], t["C"] = t["B"][:, 0], t["C"][:, 0]  # the (b, n, l) layout
    for version in cuda.VERSIONS:
        out, last = cuda.selective_scan_cupy(**t, delta_softplus=True, return_last_state=True, version=version)
        assert isinstance(out, torch.Tensor) and out.device.type == "cuda" and out.dtype == torch.float32
        assert out.shape == (2, 5, 100) and last.shape == (2, 5, 16)
        assert rel_err(out.cpu().numpy(), ref_out) < FWD_TOL
        assert rel_err(last.cpu().numpy(), ref_h) < FWD_TOL
    c = {k: None if v is None else cp.asarray(v) for k, v in t.items()}
    out = cuda.selective_scan_cupy(**c, delta_softplus=True)
    assert isinstance(out, cp.ndarray)
    assert rel_err(cp.asnumpy(out), ref_out) < FWD_TOL


def test_matches_library_selective_scan(rng):
    """Same semantics as mamba_edu.selective_scan (lesson 4's reference) on the same inputs."""
    from mamba_edu import selective_scan

    inputs = make_inputs(rng, 2, 6, 50, 8, B_groups=2, C_groups=2)
    want = selective_scan(**inputs, delta_softplus=True)
    dev = torch.device("cuda")
    t = {k: None if v is None else torch.tensor(v, dtype=torch.float32, device=dev) for k, v in inputs.items()}
    got = cuda.selective_scan_cupy(**t, delta_softplus=True)
    assert rel_err(got.cpu().numpy(), want) < FWD_TOL


def test_numpy_emulation_reproduces_the_kernel(rng):
    """mamba_edu.scans.emulate runs v2's algorithm on the CPU: same result as the kernel (float32)."""
    from mamba_edu.scans.emulate import selective_scan_v2_emulated

    inputs = make_inputs(rng, 2, 5, 700, 16)
    out, last = run_poisoned("v2", inputs)
    x32 = {k: None if v is None else v.astype(np.float32) for k, v in inputs.items()}
    cfg = cuda.forward_config(16)  # the kernel's tile shape at n = 16
    emu, emu_last = selective_scan_v2_emulated(**x32, delta_softplus=True, chunk=cfg["tile"],
                                               lanes_per_channel=cfg["lpc"], return_last_state=True)
    assert rel_err(out, emu) < 2e-6
    assert rel_err(last, emu_last) < 2e-6


# ---------------------------------------------------------------- backward ----------
GRAD_CASES = {  # name: (b, d, l, n, B_groups, C_groups, D, z, bias, softplus)
    "full-2048": (2, 3, 2048, 16, 1, 1, True, True, True, True),
    "grouped-partial-tiles": (2, 6, 700, 8, 3, 3, True, True, True, True),
    "fixed-BC": (1, 5, 300, 4, None, None, True, False, False, True),
    "short-odd": (3, 7, 7, 16, 1, 1, False, True, True, False),
    "l1": (2, 3, 1, 16, 1, 1, True, True, True, True),
}


@pytest.mark.parametrize("case", list(GRAD_CASES))
def test_v2_gradients_match_float64_autograd(case, rng):
    b, d, l, n, gB, gC, with_D, with_z, with_bias, softplus = GRAD_CASES[case]
    inputs = make_inputs(rng, b, d, l, n, gB, gC, with_D, with_z, with_bias)
    if not softplus:
        no_softplus(inputs, rng)
    _assert_gradients_match_float64(inputs, rng, softplus)


def _assert_gradients_match_float64(inputs, rng, softplus=True, with_dlast=False):
    """Every input's gradient through the kernel (float32) against the float64 loop's, for a random
    cotangent of the output (and, with ``with_dlast``, of the last state)."""
    b, d, l = inputs["u"].shape
    n = inputs["A"].shape[1]
    dout = rng.standard_normal((b, d, l))
    dlast = rng.standard_normal((b, d, n)) if with_dlast else None
    names = [k for k, v in inputs.items() if v is not None]

    ref = {k: torch.tensor(inputs[k], requires_grad=True) for k in names}
    out, h = reference_scan(**ref, delta_softplus=softplus)
    loss = (out * torch.from_numpy(dout)).sum()
    if with_dlast:
        loss = loss + (h * torch.from_numpy(dlast)).sum()
    loss.backward()

    dev = torch.device("cuda")
    got = {k: torch.tensor(inputs[k], dtype=torch.float32, device=dev, requires_grad=True) for k in names}
    if with_dlast:
        out_gpu, last = cuda.selective_scan_cupy(**got, delta_softplus=softplus, return_last_state=True)
    else:
        out_gpu = cuda.selective_scan_cupy(**got, delta_softplus=softplus)
    assert out_gpu.requires_grad
    loss_gpu = (out_gpu * torch.tensor(dout, dtype=torch.float32, device=dev)).sum()
    if with_dlast:
        loss_gpu = loss_gpu + (last * torch.tensor(dlast, dtype=torch.float32, device=dev)).sum()
    loss_gpu.backward()
    for k in names:
        err = rel_err(got[k].grad.cpu().numpy(), ref[k].grad.numpy())
        assert err < GRAD_TOL, f"grad of {k}: relative error {err:.2e}"


# the backward's paths against the same float64 loop: every gradient, through out and (dlast) the last state
BACKWARD_CASES = {  # name: (b, d, l, n, B_groups, C_groups, dlast)
    "n1-fixedB": (2, 5, 300, 1, None, 1, False),  # one state; fixed B, variable C; d not a multiple of NWARPS
    "n16-segments": (1, 20, 1100, 16, 1, 1, True),  # b·d < 1024: time segments (the ADJ_ONLY pass); 16 + 4 warps
    "n16-full-blocks": (2, 32, 600, 16, 1, 1, False),  # every warp of every block busy
    "n48-groups": (2, 6, 700, 48, 3, 3, True),  # 3 state groups (SGROUP 16); g = 3: two channels per block
    "n64-fixedBC-segments": (1, 9, 1300, 64, None, None, True),  # 4 state groups, fixed B and C, 3 segments
    "n20-partial-group-fixedC": (2, 20, 1000, 20, 1, None, True),  # groups of 16 + 4 states; variable B, fixed C
}


@pytest.mark.parametrize("case", list(BACKWARD_CASES))
def test_v2_backward_paths_match_float64(case, rng):
    b, d, l, n, gB, gC, with_dlast = BACKWARD_CASES[case]
    if "segments" in case:  # the case must keep exercising the two-pass backward
        assert cuda.backward_segments(b, d, l, cuda.backward_config(n)[0])[0] > 1
    _assert_gradients_match_float64(make_inputs(rng, b, d, l, n, gB, gC), rng, with_dlast=with_dlast)


def test_gradcheck_small():
    """torch.autograd.gradcheck-style finite differences in float32 would be too noisy; instead
    check one directional derivative against the float64 reference by central differences."""
    rng = np.random.default_rng(1)
    inputs = make_inputs(rng, 1, 3, 40, 4)
    direction = {k: rng.standard_normal(v.shape) for k, v in inputs.items() if v is not None}
    dout = rng.standard_normal((1, 3, 40))
    dev = torch.device("cuda")
    got = {k: torch.tensor(v, dtype=torch.float32, device=dev, requires_grad=True) for k, v in inputs.items()
           if v is not None}
    cuda.selective_scan_cupy(**got, delta_softplus=True).backward(torch.tensor(dout, dtype=torch.float32,
                                                                              device=dev))
    analytic = sum(float((got[k].grad.cpu().double().numpy() * direction[k]).sum()) for k in got)
    eps = 1e-6

    def loss(sign):
        moved = {k: torch.from_numpy(v + sign * eps * direction[k]) if v is not None else None
                 for k, v in inputs.items()}
        return float((reference_scan(**moved, delta_softplus=True)[0].numpy() * dout).sum())

    numeric = (loss(1) - loss(-1)) / (2 * eps)
    assert abs(analytic - numeric) < 1e-4 * max(1.0, abs(numeric))


# ---------------------------------------------------------------- errors ----------
def test_errors(rng):
    import cupy as cp

    inputs = make_inputs(rng, 1, 3, 10, 4)
    dev = torch.device("cuda")
    t = {k: torch.tensor(v, dtype=torch.float32, device=dev) for k, v in inputs.items()}
    with pytest.raises(ValueError, match="numpy"):
        cuda.selective_scan_cupy(**inputs)
    with pytest.raises(ValueError, match="float32"):
        cuda.selective_scan_cupy(**{**t, "u": t["u"].double()})
    with pytest.raises(ValueError, match="u is on cpu"):
        cuda.selective_scan_cupy(**{k: v.cpu() for k, v in t.items()})
    with pytest.raises(ValueError, match="B has shape"):
        cuda.selective_scan_cupy(**{**t, "B": t["B"][..., :5]})
    with pytest.raises(ValueError, match="version"):
        cuda.selective_scan_cupy(**t, version="v9")
    c = {k: cp.asarray(v.cpu().numpy()) for k, v in t.items()}
    with pytest.raises(NotImplementedError, match="torch tensors"):  # complex A: the torch path has its kernels
        cuda.selective_scan_cupy(**{**c, "A": c["A"].astype(cp.complex64)})
    with pytest.raises(ValueError, match="complex64 A"):  # complex128: the reference's (selective_scan)
        cuda.selective_scan_cupy(**{**t, "A": t["A"].to(torch.complex128)})
    with pytest.raises(NotImplementedError, match="backward"):
        cuda.selective_scan_cupy(**{**t, "u": t["u"].clone().requires_grad_()}, version="v0")
    with pytest.raises(ValueError, match="NaN"):
        c = {k: cp.asarray(v.cpu().numpy()) for k, v in t.items()}
        cuda.selective_scan_cupy(**{**c, "u": cp.full((1, 3, 10), cp.nan, dtype=cp.float32)})
