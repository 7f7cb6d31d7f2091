"""mamba_edu.experiments.probe (what a trained model does inside, lesson 5) and its figures."""

import pytest
import torch
import torch.nn.functional as F

from mamba_edu.data import load
from mamba_edu.experiments.probe import (
    block_internals,
    mixer_inputs,
    probe_induction_heads,
    probe_selective_copying,
    train_selective,
)
from mamba_edu.experiments.tasks import induction_heads_batch, selective_copying_batch
from mamba_edu.experiments.train import CONFIGS, build_model
from mamba_edu.mamba.block import MambaBlock
from mamba_edu.plot.probes import copying_probe_figure, induction_probe_figure
from mamba_edu.scans.selective import selective_scan


def test_block_internals_rebuild_the_blocks_output_float64():
    torch.manual_seed(0)
    block = MambaBlock(d_model=8, d_state=4, bias=True).double()  # in_proj/out_proj biases too
    hidden = torch.randn(2, 12, 8, dtype=torch.float64)
    got = block_internals(block, hidden)
    u, delta, B, C, A, h = (got[k] for k in ("u", "delta", "B", "C", "A", "h"))
    assert h.shape == (2, 16, 4, 12) and delta.shape == (2, 16, 12) and (delta > 0).all()
    # the stored states read out and gated like the block does give the block's output
    with torch.no_grad():
        z = block.in_proj(hidden).transpose(1, 2).chunk(2, dim=1)[1]
    y = torch.einsum("bdnl,bnl->bdl", h, C) + block.D.double()[:, None] * u
    out = block.out_proj((y * F.silu(z)).transpose(1, 2))
    with torch.no_grad():
        assert torch.allclose(out, block(hidden), atol=1e-12)
    # and the last state is the library scan's (softplus already applied: no bias here)
    _, last = selective_scan(u, delta, A, B, C, return_last_state=True)
    assert torch.allclose(h[..., -1], last, atol=1e-12)


def test_without_look_back_each_token_sees_only_itself():
    torch.manual_seed(1)
    block = MambaBlock(d_model=8, d_state=4).double()
    hidden = torch.randn(1, 10, 8, dtype=torch.float64)
    changed = hidden.clone()
    changed[0, 4] += 1.0  # perturb token 4
    for look_back, affected in ((True, [4, 5, 6, 7]), (False, [4])):
        a = block_internals(block, hidden, look_back=look_back)["delta"][0]
        b = block_internals(block, changed, look_back=look_back)["delta"][0]
        moved = [t for t in range(10) if not torch.allclose(a[:, t], b[:, t])]
        assert moved == affected, (look_back, moved)


def test_mixer_inputs_one_per_layer():
    model = build_model("selective", vocab_size=10, d_model=8, n_layer=3, d_state=4, seed=0)
    ids = torch.randint(0, 10, (2, 7))
    inputs = mixer_inputs(model, ids)
    assert [tuple(x.shape) for x in inputs] == [(2, 7, 8)] * 3
    assert not model.backbone.layers[0].mixer._forward_pre_hooks  # hooks removed


def test_probes_of_a_briefly_trained_model_are_well_formed():
    model, info = train_selective("selective-copying", steps=3, n_data=2, n_noise=6, n_values=4, d_model=8,
                                  eval_batch=16, eval_every=3, curriculum_start=None)
    assert info["steps"] == 3 and 0 <= info["accuracy"] <= 1 and info["config"]["n_noise"] == 6
    inputs, _ = selective_copying_batch(16, 2, 6, 4, torch.Generator().manual_seed(0))
    p = probe_selective_copying(model, inputs)
    d = 2 * 8
    assert len(p["delta_data"]) == len(p["delta_noise"]) == len(p["ratio"]) == d
    assert 0 <= p["channels_data_larger"] <= 1 and len(p["example"]["state_norm"]) == inputs.shape[1]

    model, _ = train_selective("induction-heads", steps=2, length=12, vocab_size=6, d_model=8, eval_batch=16,
                               test_lengths=[12], eval_every=2)
    inputs, targets = induction_heads_batch(32, 12, 6, torch.Generator().manual_seed(0))
    before = [layer.mixer.conv1d.weight.clone() for layer in model.backbone.layers]
    q = probe_induction_heads(model, inputs, targets)
    assert all(torch.equal(w, layer.mixer.conv1d.weight) for w, layer in zip(before, model.backbone.layers))
    assert len(q["top_channels"]) == 8 and set(q["accuracy"]) == {"with_look_back", "without_look_back"}


def test_train_selective_rejects_unknown_names():
    with pytest.raises(ValueError, match="name must be one of"):
        train_selective("copying")
    with pytest.raises(ValueError, match="unknown overrides"):
        train_selective("induction-heads", n_noise=3)


def test_recorded_probes_come_from_the_quick_configurations_and_plot():
    probes = load("probes")
    for key, task in (("selective_copying", "selective-copying"), ("induction_heads", "induction-heads")):
        assert probes[key]["train"]["config"] == CONFIGS[task]["quick"]
    sc, ih = probes["selective_copying"]["probe"], probes["induction_heads"]["probe"]
    d = 2 * CONFIGS["selective-copying"]["quick"]["d_model"]
    assert len(sc["delta_data"]) == d and 0 <= sc["channels_data_larger"] <= 1
    assert set(ih["accuracy"]) == {"with_look_back", "without_look_back"}
    assert len(copying_probe_figure(sc).axes) == 3  # (a), (b) and its twin axis
    assert len(induction_probe_figure(ih).axes) == 2


@pytest.mark.parametrize("training", [True, False])
def test_probes_and_evaluate_leave_the_mode_they_found(training):
    """probe_induction_heads (through evaluate) used to leave every model in train mode."""
    from mamba_edu.experiments.train import evaluate

    model = build_model("selective", vocab_size=6, d_model=8, n_layer=2, d_state=4, seed=0)
    inputs, targets = induction_heads_batch(8, 12, 6, torch.Generator().manual_seed(0))
    model.train(training)
    probe_induction_heads(model, inputs, targets)
    assert model.training is training and all(m.training is training for m in model.modules())
    evaluate(model, inputs, targets)
    assert model.training is training
