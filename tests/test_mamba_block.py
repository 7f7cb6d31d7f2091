"""MambaBlock: official names/shapes/initialisation, same outputs as mambapy, step ≡ forward.

Tolerances: float32 against mambapy 2e-5 (relative to the output scale); float64 step vs forward 1e-12.
"""

import math

import mambapy.mamba
import numpy as np
import pytest
import scipy.stats
import torch

from mamba_edu import MambaBlock


def official_shapes(d_model, d_state=16, d_conv=4, expand=2):
    """Parameter names and shapes of mamba_ssm.modules.mamba_simple.Mamba, from its constructor."""
    d_inner, dt_rank = expand * d_model, math.ceil(d_model / 16)
    return {
        "A_log": (d_inner, d_state),
        "D": (d_inner,),
        "in_proj.weight": (2 * d_inner, d_model),
        "conv1d.weight": (d_inner, 1, d_conv),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 2 * d_state, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "out_proj.weight": (d_model, d_inner),
    }


def mambapy_copy(block, pscan=True):
    """A mambapy MambaBlock with our block's weights (same parameter names: load strictly)."""
    config = mambapy.mamba.MambaConfig(
        d_model=block.d_model, n_layers=1, d_state=block.d_state, d_conv=block.d_conv,
        expand_factor=block.expand, dt_rank=block.dt_rank, pscan=pscan,
    )
    theirs = mambapy.mamba.MambaBlock(config)
    theirs.load_state_dict(block.state_dict(), strict=True)
    return theirs


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1.0))


@pytest.mark.parametrize("d_model,d_state,d_conv,expand", [(16, 16, 4, 2), (40, 8, 3, 1), (33, 4, 2, 3)])
def test_parameter_names_and_shapes_are_official(d_model, d_state, d_conv, expand):
    block = MambaBlock(d_model, d_state, d_conv, expand)
    got = {k: tuple(v.shape) for k, v in block.state_dict().items()}
    assert got == official_shapes(d_model, d_state, d_conv, expand)
    assert block.dt_rank == math.ceil(d_model / 16)


def test_initialisation_statistics():
    torch.manual_seed(0)
    d_model, d_state, dt_min, dt_max = 512, 8, 1e-3, 1e-1
    block = MambaBlock(d_model, d_state=d_state, dt_min=dt_min, dt_max=dt_max)
    # S4D-real: A = −exp(A_log) = −(1, 2, …, n) in every channel; D = 1
    A = -torch.exp(block.A_log.detach())
    np.testing.assert_allclose(A.numpy(), -np.tile(np.arange(1, d_state + 1), (2 * d_model, 1)), rtol=1e-6)
    assert block.A_log.dtype == torch.float32 and torch.equal(block.D.detach(), torch.ones(2 * d_model))
    # Δ at initialisation: softplus(bias) log-uniform on [dt_min, dt_max]
    dt = torch.nn.functional.softplus(block.dt_proj.bias.detach().double()).numpy()
    assert dt.min() >= dt_min * (1 - 1e-5) and dt.max() <= dt_max * (1 + 1e-5)
    log_lo, log_hi = math.log(dt_min), math.log(dt_max)
    p_value = scipy.stats.kstest(np.log(dt), "uniform", args=(log_lo, log_hi - log_lo)).pvalue
    assert p_value > 1e-3, f"log Δ is not uniform on [log dt_min, log dt_max] (KS p = {p_value:.2g})"
    # dt_proj.weight ~ U(±dt_rank^-0.5)
    w, bound = block.dt_proj.weight.detach().numpy(), block.dt_rank**-0.5
    assert np.abs(w).max() <= bound and abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound


def test_dt_init_floor_and_constant_init():
    block = MambaBlock(16, dt_min=1e-6, dt_max=1e-5, dt_init_floor=1e-4, dt_init="constant", dt_scale=2.0)
    dt = torch.nn.functional.softplus(block.dt_proj.bias.detach().double())
    torch.testing.assert_close(dt, torch.full_like(dt, 1e-4), rtol=1e-5, atol=0)
    assert torch.all(block.dt_proj.weight == 2.0 * block.dt_rank**-0.5)


@pytest.mark.parametrize("pscan", [True, False], ids=["mambapy_pscan", "mambapy_seq"])
def test_forward_matches_mambapy(pscan):
    torch.manual_seed(1)
    block = MambaBlock(24, d_state=8, d_conv=4, expand=2)
    with torch.no_grad():  # move A and D away from their init so that they matter
        block.A_log.add_(0.3 * torch.randn_like(block.A_log))
        block.D.add_(torch.randn_like(block.D))
    theirs = mambapy_copy(block, pscan)
    hidden = torch.randn(3, 32, 24)
    with torch.no_grad():
        err = rel_err(block(hidden), theirs(hidden))
    print(f"max relative |MambaBlock − mambapy| = {err:.2e}")
    assert err < 2e-5


def test_step_matches_mambapy_step():
    torch.manual_seed(2)
    block = MambaBlock(16, d_state=4)
    theirs = mambapy_copy(block)
    hidden = torch.randn(2, 6, 16)
    conv_state, ssm_state = block.allocate_inference_cache(2, 6)
    cache = (None, torch.zeros(2, block.d_inner, block.d_conv - 1))
    with torch.no_grad():
        for t in range(6):
            ours, conv_state, ssm_state = block.step(hidden[:, t : t + 1], conv_state, ssm_state)
            ref, cache = theirs.step(hidden[:, t], cache)
            assert rel_err(ours[:, 0], ref) < 2e-5
    torch.testing.assert_close(ssm_state, cache[0], rtol=1e-5, atol=1e-6)


def test_step_reproduces_forward_float64():
    torch.manual_seed(3)
    block = MambaBlock(16, d_state=8, d_conv=4).double()
    hidden = torch.randn(2, 20, 16, dtype=torch.float64)
    conv_state, ssm_state = block.allocate_inference_cache(2, 20)
    assert conv_state.shape == (2, 32, 4) and ssm_state.shape == (2, 32, 8) and ssm_state.dtype == torch.float64
    with torch.no_grad():
        full = block(hidden)
        steps = torch.cat([block.step(hidden[:, t : t + 1], conv_state, ssm_state)[0] for t in range(20)], dim=1)
    err = float((steps - full).abs().max())
    print(f"max |step − forward| (float64) = {err:.2e}")
    assert err < 1e-12


def test_forward_fills_caches_so_step_continues():
    torch.manual_seed(4)
    block = MambaBlock(8, d_state=4, d_conv=4).double()
    hidden = torch.randn(1, 11, 8, dtype=torch.float64)
    with torch.no_grad():
        full = block(hidden)
        for prefix in (2, 7):  # shorter and longer than d_conv
            conv_state, ssm_state = block.allocate_inference_cache(1, 11)
            head = block(hidden[:, :prefix], conv_state, ssm_state)
            tail = [block.step(hidden[:, t : t + 1], conv_state, ssm_state)[0] for t in range(prefix, 11)]
            torch.testing.assert_close(torch.cat([head, *tail], dim=1), full, rtol=0, atol=1e-12)


def test_float32_step_vs_forward_and_gradients():
    torch.manual_seed(5)
    block = MambaBlock(16, d_state=16)
    hidden = torch.randn(2, 12, 16, requires_grad=True)
    out = block(hidden)
    conv_state, ssm_state = block.allocate_inference_cache(2, 12)
    with torch.no_grad():
        steps = torch.cat([block.step(hidden[:, t : t + 1], conv_state, ssm_state)[0] for t in range(12)], dim=1)
    assert rel_err(steps, out.detach()) < 1e-5
    out.square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert hidden.grad is not None and torch.isfinite(hidden.grad).all()


def test_bad_inputs():
    block = MambaBlock(8)
    with pytest.raises(ValueError, match=r"hidden_states has shape \(2, 5\), expected \(b, l, 8\)"):
        block(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"hidden_states has shape \(2, 3, 8\), expected \(b, 1, 8\)"):
        block.step(torch.randn(2, 3, 8), *block.allocate_inference_cache(2, 3))
    with pytest.raises(ValueError, match=r"ssm_state has shape \(2, 16, 3\), expected \(2, 16, 16\)"):
        block.step(torch.randn(2, 1, 8), torch.zeros(2, 16, 4), torch.zeros(2, 16, 3))
    with pytest.raises(ValueError, match=r"d_state must be a positive int, got 0"):
        MambaBlock(8, d_state=0)
    with pytest.raises(ValueError, match=r"dt_min"):
        MambaBlock(8, dt_min=0.5, dt_max=0.1)


def test_block_names_hidden_states_for_a_wrong_kind_dtype_or_length():
    """A float64 tensor (torch.tensor of a numpy array) met torch's "expected m1 and m2 to have the same dtype",
    a numpy array a TypeError from linear(), an empty sequence an error from conv1d."""
    torch.manual_seed(0)
    block = MambaBlock(8, d_state=4)
    x = torch.randn(2, 5, 8)
    with pytest.raises(ValueError, match=r"hidden_states has dtype torch\.float64 but the block's weights are "
                                         r"torch\.float32: pass hidden_states\.to\(torch\.float32\), or convert"):
        block(x.double())
    with pytest.raises(ValueError, match=r"hidden_states has dtype torch\.int64 .*to\(torch\.float32\)$"):
        block(x.long())
    with pytest.raises(ValueError, match=r"hidden_states must be a torch tensor, got ndarray"):
        block(x.numpy())
    with pytest.raises(ValueError, match=r"hidden_states has shape \(2, 0, 8\), expected \(b, l, 8\) with l ≥ 1"):
        block(x[:, :0])
    conv_state, ssm_state = block.allocate_inference_cache(2, 1)
    with pytest.raises(ValueError, match=r"hidden_states has dtype torch\.float64"):
        block.step(x[:, :1].double(), conv_state, ssm_state)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast converts the input itself: still accepted
        assert block(x.bfloat16()).shape == (2, 5, 8)
    torch.testing.assert_close(block.double()(x.double()), block.float()(x).double(), rtol=1e-4, atol=1e-5)
