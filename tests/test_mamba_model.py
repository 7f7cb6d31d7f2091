"""MambaLM: official state_dict names, mambapy's LM gives the same logits, cached generation ≡ recomputation."""

import math

import mambapy.mamba
import pytest
import torch

from mamba_edu import MambaBlock, MambaLM
from mamba_edu.mamba.model import RMSNorm


def official_keys(n_layer):
    """state_dict keys of mamba_ssm's MambaLMHeadModel (rms_norm=True, no MLP), from its module tree."""
    mixer = ["A_log", "D", "in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight",
             "dt_proj.weight", "dt_proj.bias", "out_proj.weight"]
    keys = {"backbone.embedding.weight", "backbone.norm_f.weight", "lm_head.weight"}
    for i in range(n_layer):
        keys.add(f"backbone.layers.{i}.norm.weight")
        keys.update(f"backbone.layers.{i}.mixer.{name}" for name in mixer)
    return keys


def test_state_dict_names_and_strict_loading(tmp_path):
    torch.manual_seed(0)
    model = MambaLM(50277, 32, 3, pad_vocab_size_multiple=8)
    state = model.state_dict()
    assert set(state) == official_keys(3)
    assert state["backbone.embedding.weight"].shape == (50280, 32)  # 50277 padded to a multiple of 8
    assert model.lm_head.weight is model.backbone.embedding.weight  # tied

    # a checkpoint saved in the official layout (a plain dict of tensors) loads strictly, safely
    other = MambaLM(50277, 32, 3, pad_vocab_size_multiple=8)
    path = tmp_path / "checkpoint.pt"
    torch.save({k: v.clone() for k, v in state.items()}, path)
    result = other.load_weights(path, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ids = torch.randint(0, 50277, (1, 5))
    torch.testing.assert_close(other(ids), model(ids), rtol=0, atol=0)


def test_initialisation_statistics():
    torch.manual_seed(1)
    n_layer, d_model = 4, 64
    model = MambaLM(1000, d_model, n_layer)
    emb = model.backbone.embedding.weight.detach()
    assert abs(float(emb.std()) - 0.02) < 0.001 and abs(float(emb.mean())) < 0.001
    d_inner = 2 * d_model
    bound = 1 / math.sqrt(d_inner) / math.sqrt(n_layer)  # kaiming_uniform(a=√5) bound, then /√n_layer
    for layer in model.backbone.layers:
        w = layer.mixer.out_proj.weight.detach()
        assert float(w.abs().max()) <= bound
        assert abs(float(w.std()) - bound / math.sqrt(3)) < 0.05 * bound
        dt = torch.nn.functional.softplus(layer.mixer.dt_proj.bias.detach())  # not zeroed by the init
        assert float(dt.min()) >= 1e-3 * (1 - 1e-5) and float(dt.max()) <= 0.1 * (1 + 1e-5)
        assert torch.equal(layer.norm.weight.detach(), torch.ones(d_model))


def test_rms_norm_formula_and_mambapy():
    torch.manual_seed(2)
    norm = RMSNorm(8, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(8))
    h = torch.randn(3, 5, 8, dtype=torch.float64)
    expected = h / torch.sqrt((h**2).mean(-1, keepdim=True) + 1e-5) * norm.weight.double()
    torch.testing.assert_close(norm(h), expected, rtol=1e-6, atol=1e-7)
    theirs = mambapy.mamba.RMSNorm(8, 1e-5)
    theirs.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(h.float()), theirs(h.float()), rtol=1e-6, atol=1e-6)


def test_logits_match_mambapy():
    """mambapy's residual stack (mambapy.mamba.Mamba: layers.{i}.norm / .mixer) and its RMSNorm, with our
    weights, plus the tied embedding by hand. (mambapy.lm.LM would need einops, which is not installed.)"""
    torch.manual_seed(3)
    vocab, d_model, n_layer = 97, 32, 2
    ours = MambaLM(vocab, d_model, n_layer, d_state=8)
    config = mambapy.mamba.MambaConfig(d_model=d_model, n_layers=n_layer, d_state=8)
    stack, norm_f = mambapy.mamba.Mamba(config), mambapy.mamba.RMSNorm(d_model, 1e-5)
    layers = {k[len("backbone."):]: v for k, v in ours.state_dict().items() if k.startswith("backbone.layers.")}
    stack.load_state_dict(layers, strict=True)
    norm_f.load_state_dict({"weight": ours.backbone.norm_f.weight.detach()})
    emb = ours.backbone.embedding.weight.detach()
    ids = torch.randint(0, vocab, (2, 24))
    with torch.no_grad():
        a, b = ours(ids), norm_f(stack(emb[ids])) @ emb.T
    err = float((a - b).abs().max() / b.abs().max())
    print(f"max relative |MambaLM − mambapy LM| = {err:.2e}")
    assert a.shape == (2, 24, vocab) and err < 2e-5


def test_step_logits_match_forward_and_generate_greedy():
    torch.manual_seed(4)
    model = MambaLM(50, 16, 2, d_state=4).double()
    ids = torch.randint(0, 50, (2, 9))
    with torch.no_grad():
        full = model(ids)
        caches = model.allocate_inference_cache(2, 9)
        steps = torch.stack([model.step(ids[:, t], caches) for t in range(9)], dim=1)
    err = float((steps - full).abs().max())
    print(f"max |step − forward| logits (float64) = {err:.2e}")
    assert err < 1e-12

    out = model.generate(ids[:, :4], max_new_tokens=6)
    assert out.shape == (2, 10) and torch.equal(out[:, :4], ids[:, :4])
    seq = ids[:, :4]
    with torch.no_grad():  # the slow way: recompute the whole sequence for every new token
        for _ in range(6):
            seq = torch.cat([seq, model(seq)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, seq)


def test_sampling_is_reproducible_and_respects_top_k():
    torch.manual_seed(5)
    model = MambaLM(30, 16, 1)
    ids = torch.zeros(3, 2, dtype=torch.long)
    a = model.generate(ids, 8, temperature=1.0, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, model.generate(ids, 8))  # top_k = 1 is greedy
    b = model.generate(ids, 8, temperature=2.0, generator=torch.Generator().manual_seed(7))
    c = model.generate(ids, 8, temperature=2.0, generator=torch.Generator().manual_seed(7))
    assert torch.equal(b, c) and b.min() >= 0 and b.max() < 30


def test_block_cls_hook_builds_the_same_network_with_another_mixer():
    class Doubler(torch.nn.Module):
        def __init__(self, d_model, d_state, d_conv, expand, scale):
            super().__init__()
            self.scale = scale

        def forward(self, hidden_states):
            return self.scale * hidden_states

    model = MambaLM(11, 8, 2, block_cls=Doubler, scale=2.0)
    assert all(isinstance(layer.mixer, Doubler) for layer in model.backbone.layers)
    ids = torch.tensor([[1, 2, 3]])
    h = model.backbone.embedding(ids)
    for _ in range(2):  # two layers of pre-norm residual: h + mixer(norm(h)), norm weights 1
        h = h + 2.0 * h / torch.sqrt(h.pow(2).mean(-1, keepdim=True) + 1e-5)
    expected = model.lm_head(model.backbone.norm_f(h))
    torch.testing.assert_close(model(ids), expected)
    assert isinstance(MambaLM(11, 8, 1).backbone.layers[0].mixer, MambaBlock)


def test_bad_inputs():
    model = MambaLM(10, 8, 1)
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 10\), got min 0, max 10"):
        model(torch.tensor([[0, 10]]))
    with pytest.raises(ValueError, match=r"input_ids must be an int64/int32 tensor, got torch.float32"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"input_ids has shape \(3,\), expected \(b, l\)"):
        model(torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"n_layer must be a positive int, got 0"):
        MambaLM(10, 8, 0)
