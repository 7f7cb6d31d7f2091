"""Lesson 5's synthetic tasks, the LTI ablation block, the trainer, run_experiment and the CLI (tiny configs)."""

import json

import pytest
import torch

import mamba_edu as me
from mamba_edu.experiments import CONFIGS, TASKS, run_experiment
from mamba_edu.experiments.lti import LTIMambaBlock
from mamba_edu.experiments.tasks import (
    FIRST_DATA,
    IGNORE,
    MARKER,
    NOISE,
    TRIGGER,
    induction_heads_batch,
    selective_copying_batch,
    selective_copying_vocab,
)
from mamba_edu.experiments.train import (
    build_model,
    evaluate,
    masked_accuracy,
    noise_curriculum,
    train,
    training_batches,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- selective copying ----------------------------------------------------------------------------
def test_selective_copying_shapes_tokens_and_answer_recoverable():
    n_data, n_noise, n_values = 5, 40, 7
    inputs, targets = selective_copying_batch(64, n_data, n_noise, n_values, gen())
    memory = n_noise + n_data
    assert inputs.shape == targets.shape == (64, memory + n_data)
    assert inputs.dtype == targets.dtype == torch.long
    assert inputs.min() >= 0 and inputs.max() < selective_copying_vocab(n_values)
    assert (inputs[:, memory:] == MARKER).all()
    assert (targets[:, :memory] == IGNORE).all()
    for row_in, row_t in zip(inputs, targets):
        mem = row_in[:memory]
        data = mem[mem != NOISE]  # the non-noise tokens of the memory part, in order...
        assert len(data) == n_data and (data >= FIRST_DATA).all() and (mem != MARKER).all()
        assert torch.equal(data, row_t[memory:])  # ...are exactly the answers at the markers
    # the data sit at different places in different rows (random spacing, not a fixed pattern)
    assert len({tuple((row[:memory] != NOISE).nonzero().flatten().tolist()) for row in inputs}) > 50


def test_selective_copying_is_seeded():
    a = selective_copying_batch(8, 3, 20, 5, gen(1))
    b = selective_copying_batch(8, 3, 20, 5, gen(1))
    c = selective_copying_batch(8, 3, 20, 5, gen(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


# -- induction heads ------------------------------------------------------------------------------
@pytest.mark.parametrize("length", [4, 9, 64])
def test_induction_heads_shapes_tokens_and_answer_recoverable(length):
    vocab = 11
    inputs, targets = induction_heads_batch(200, length, vocab, gen())
    assert inputs.shape == targets.shape == (200, length)
    assert inputs.min() >= 0 and inputs.max() < vocab
    assert (inputs[:, -1] == TRIGGER).all()
    assert ((inputs == TRIGGER).sum(1) == 2).all()  # once in the sequence, once as the query
    assert (targets[:, :-1] == IGNORE).all()
    for row_in, row_t in zip(inputs, targets):
        p = (row_in[:-1] == TRIGGER).nonzero().item()
        assert p <= length - 3
        assert row_t[-1] == row_in[p + 1] != TRIGGER  # the token after the trigger


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: selective_copying_batch(0, 2, 5, 3, gen()), "batch"),
        (lambda: selective_copying_batch(2, 0, 5, 3, gen()), "n_data"),
        (lambda: selective_copying_batch(2, 2, -1, 3, gen()), "n_noise"),
        (lambda: induction_heads_batch(2, 3, 5, gen()), "length"),
        (lambda: induction_heads_batch(2, 8, 2, gen()), "vocab_size"),
        (lambda: run_experiment("copying"), "name must be one of"),
        (lambda: run_experiment("selective-copying", n_nois=3), "unknown overrides"),
        (lambda: build_model("s4", 10, 8, 1, 4, 0), "kind"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# -- the LTI ablation -----------------------------------------------------------------------------
def test_lti_block_convolution_equals_constant_selective_scan():
    """The FFT convolution of the LTI block = the selective scan with constant Δ, B, C (float64)."""
    torch.manual_seed(0)
    block = LTIMambaBlock(8, d_state=4, expand=2).double()
    with torch.no_grad():
        block.C_lti.normal_()
        block.B_lti.uniform_(0.5, 1.5)
    hidden = torch.randn(2, 37, 8, dtype=torch.float64)
    out = block(hidden)

    b, l, d = 2, 37, block.d_inner
    u, z = block.in_proj(hidden).transpose(1, 2).chunk(2, dim=1)
    u = torch.nn.functional.silu(block.conv1d(u)[..., :l])
    B = block.B_lti[None, :, :, None].expand(b, d, 4, l)  # d groups of one channel: fixed B per channel
    C = block.C_lti[None, :, :, None].expand(b, d, 4, l)
    y = me.selective_scan(u, torch.zeros_like(u), -torch.exp(block.A_log.double()), B, C, block.D.double(), z=z,
                          delta_bias=block.dt_proj.bias, delta_softplus=True)
    want = block.out_proj(y.transpose(1, 2))
    assert torch.allclose(out, want, rtol=1e-10, atol=1e-12)


def test_lti_block_step_reproduces_forward():
    torch.manual_seed(1)
    block = LTIMambaBlock(8, d_state=4).double()
    hidden = torch.randn(2, 12, 8, dtype=torch.float64)
    full = block(hidden)
    conv_state, ssm_state = block.allocate_inference_cache(2, 12, dtype=torch.float64)
    steps = [block.step(hidden[:, t:t + 1], conv_state, ssm_state)[0] for t in range(12)]
    assert torch.allclose(torch.cat(steps, 1), full, rtol=1e-9, atol=1e-12)


def test_lti_block_only_overrides_the_ssm_seam_and_its_caches_continue_a_sequence():
    """forward/step are the selective block's; forward with caches, then step, equals forward on the whole."""
    from mamba_edu.mamba.block import MambaBlock

    assert {"forward", "step"}.isdisjoint(vars(LTIMambaBlock)) and {"ssm", "ssm_step"} <= set(vars(LTIMambaBlock))
    torch.manual_seed(2)
    block = LTIMambaBlock(8, d_state=4).double()
    hidden = torch.randn(2, 10, 8, dtype=torch.float64)
    full = block(hidden)
    conv_state, ssm_state = block.allocate_inference_cache(2, 10, dtype=torch.float64)
    prefix = block(hidden[:, :7], conv_state, ssm_state)
    rest = [block.step(hidden[:, t:t + 1], conv_state, ssm_state)[0] for t in range(7, 10)]
    assert torch.allclose(torch.cat([prefix, *rest], 1), full, rtol=1e-9, atol=1e-12)
    assert isinstance(block, MambaBlock)


def test_lti_block_ssm_computes_the_powers_once(monkeypatch):
    """One exp over (d_inner, n, l) per call with a cache: the kernel and the last state share the powers Ā^k."""
    block = LTIMambaBlock(8, d_state=4).double()
    u, z = (torch.randn(2, block.d_inner, 10, dtype=torch.float64) for _ in range(2))
    ssm_state = torch.zeros(2, block.d_inner, 4, dtype=torch.float64)
    powers = []
    real_exp = torch.exp

    def spy(x, *args, **kwargs):
        if x.ndim == 3:  # (d_inner, n, l): the powers exp(kΔA)
            powers.append(tuple(x.shape))
        return real_exp(x, *args, **kwargs)

    monkeypatch.setattr(torch, "exp", spy)
    block.ssm(u, z, ssm_state)
    assert powers == [(block.d_inner, 4, 10)]


def test_weight_decay_groups_read_the_no_weight_decay_flags(monkeypatch):
    """A_log and D carry ``_no_weight_decay`` (official convention); train() puts them in the no-decay group."""
    groups = {}

    class Spy(torch.optim.AdamW):
        def __init__(self, param_groups, **kw):
            groups.update({g["weight_decay"]: {id(p) for p in g["params"]} for g in param_groups})
            super().__init__(param_groups, **kw)

    monkeypatch.setattr(torch.optim, "AdamW", Spy)
    model = build_model("selective", 10, 16, 1, 4, seed=0)
    make_batch = lambda step: (torch.zeros(2, 5, dtype=torch.long), torch.zeros(2, 5, dtype=torch.long))
    train(model, make_batch, 1, 1e-3, progress=False)
    flagged = {id(p) for p in model.parameters() if getattr(p, "_no_weight_decay", False)}
    assert len(flagged) == 2 and flagged <= groups[0.0] and not flagged & groups[0.1]


def test_build_model_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model("lti", 10, 16, 1, 4, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_lti_block_has_no_input_dependent_projection():
    block = LTIMambaBlock(16)
    assert not hasattr(block, "x_proj")
    assert {"B_lti", "C_lti", "A_log", "D"} <= {n for n, _ in block.named_parameters()}
    model = build_model("lti", 10, 16, 2, 8, seed=0)
    assert all(isinstance(layer.mixer, LTIMambaBlock) for layer in model.backbone.layers)


# -- trainer --------------------------------------------------------------------------------------
def test_masked_accuracy_counts_only_asked_positions():
    logits = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])  # predictions 1, 0, 1
    targets = torch.tensor([[1, IGNORE, 0]])
    assert masked_accuracy(logits, targets) == 0.5


def test_trainer_lowers_the_loss_on_a_fixed_batch_and_records_history():
    model = build_model("selective", 8, 16, 1, 4, seed=0)
    batch = induction_heads_batch(16, 10, 8, gen(3))
    first = train(model, lambda step: batch, 1, 1e-2, progress=False)
    assert first["steps"] == 1 and first["history"] == []
    with torch.no_grad():
        logits = model(batch[0])
        loss0 = torch.nn.functional.cross_entropy(logits[:, -1], batch[1][:, -1]).item()
    out = train(model, lambda step: batch, 40, 1e-2, eval_set=batch, eval_every=20, progress=False)
    assert [h["step"] for h in out["history"]] == [20, 40]
    assert out["history"][-1]["loss"] < 0.5 * loss0  # it memorises 16 answers
    assert out["accuracy"] == evaluate(model, *batch)
    assert out["accuracy"] > 0.5


def test_trainer_stops_at_target_accuracy():
    model = build_model("selective", 8, 16, 1, 4, seed=0)
    batch = induction_heads_batch(8, 10, 8, gen(3))
    out = train(model, lambda step: batch, 200, 1e-2, eval_set=batch, eval_every=5, progress=False,
                target_accuracy=0.0)
    assert out["steps"] == 5 and len(out["history"]) == 1


# -- the length curriculum ------------------------------------------------------------------------
def test_noise_curriculum_grows_linearly_from_start_to_n_noise_then_stays():
    lengths = [noise_curriculum(step, 100, 248, 16, 0.5) for step in range(100)]
    assert lengths[0] == 16
    assert lengths[25] == 16 + (248 - 16) // 2  # half-way up half-way through the ramp (steps 0 … 49)
    assert all(a <= b for a, b in zip(lengths, lengths[1:]))  # never shrinks
    assert max(lengths[:50]) < 248 and set(lengths[50:]) == {248}  # the ramp is the first half
    assert all(noise_curriculum(s, 100, 248, None, 0.5) == 248 for s in (0, 10, 99))  # off
    assert noise_curriculum(0, 100, 8, 16, 0.5) == 8  # never longer than the evaluation length
    assert noise_curriculum(5, 100, 248, 16, 0.0) == 248  # an empty ramp: the full length at once


def test_training_batches_follow_the_curriculum_and_are_the_same_for_both_models():
    cfg = {**CONFIGS["selective-copying"]["quick"], "n_data": 3, "n_noise": 40, "n_values": 5, "batch": 6,
           "steps": 10, "curriculum_start": 4, "curriculum_fraction": 0.5}
    first, second = training_batches("selective-copying", cfg, 0), training_batches("selective-copying", cfg, 0)
    for step in range(cfg["steps"]):
        inputs, targets = first(step)
        again = second(step)  # what the second model is trained on at this step
        assert torch.equal(inputs, again[0]) and torch.equal(targets, again[1])
        n_noise = noise_curriculum(step, 10, 40, 4, 0.5)
        assert inputs.shape == targets.shape == (6, n_noise + 2 * 3)
        assert inputs.min() >= 0 and inputs.max() < selective_copying_vocab(5)
        memory = inputs[:, :-3]
        assert torch.equal(memory[memory != NOISE].view(6, 3), targets[:, -3:])  # answers recoverable
    assert first(0)[0].shape[1] == 4 + 6 and first(9)[0].shape[1] == 40 + 6
    other = training_batches("selective-copying", cfg, 1)(0)[0]
    assert not torch.equal(other, training_batches("selective-copying", cfg, 0)(0)[0])  # seeded


def test_run_experiment_evaluates_at_the_full_length_with_a_curriculum(monkeypatch):
    from mamba_edu.experiments import train as train_module

    seen = []

    def spy(model, inputs, targets, chunk=128):
        seen.append(inputs.shape)
        return evaluate(model, inputs, targets, chunk)

    monkeypatch.setattr(train_module, "evaluate", spy)
    cfg = {**TINY["selective-copying"], "n_noise": 30, "curriculum_start": 2, "curriculum_fraction": 1.0}
    result = run_experiment("selective-copying", progress=False, **cfg)
    assert result["config"]["curriculum_start"] == 2
    assert result["lti_steps"] == result["selective_steps"] == 4
    assert seen and set(seen) == {(8, 30 + 2 * 2)}  # every evaluation at the full length


# -- run_experiment and the CLI -------------------------------------------------------------------
TINY = {
    "selective-copying": dict(n_data=2, n_noise=6, n_values=3, d_model=8, n_layer=1, d_state=4, steps=4, batch=4,
                              eval_batch=8, eval_every=2, stop_at=None),
    "induction-heads": dict(length=8, vocab_size=5, test_lengths=[8, 16, 32], d_model=8, n_layer=1, d_state=4,
                            steps=4, batch=4, eval_batch=8, eval_every=2, stop_at=None),
}


@pytest.mark.parametrize("name", TASKS)
def test_run_experiment_tiny_returns_jsonable_results(name):
    result = run_experiment(name, progress=False, **TINY[name])
    again = json.loads(json.dumps(result))  # JSON-able as it is
    assert again["task"] == name and again["steps"] == 4 and again["seconds"] > 0
    for kind in ("lti", "selective"):
        assert 0.0 <= again[f"{kind}_accuracy"] <= 1.0 and again[f"{kind}_steps"] == 4
        assert [h["step"] for h in again["history"][kind]] == [2, 4]
        assert again["history"][kind][-1]["accuracy"] == again[f"{kind}_accuracy"]
    if name == "induction-heads":
        assert set(again["selective_by_length"]) == {"8", "16", "32"}
        assert again["max_extrapolation"] in (0.0, 1.0, 2.0, 4.0)
    # seeded: the same call gives the same numbers
    assert run_experiment(name, progress=False, **TINY[name])["selective_accuracy"] == result["selective_accuracy"]


def test_run_experiment_stops_each_model_at_stop_at():
    result = run_experiment("induction-heads", progress=False, **{**TINY["induction-heads"], "stop_at": 0.0})
    assert result["steps"] == 4 and result["lti_steps"] == result["selective_steps"] == 2



@pytest.mark.parametrize("kind", ["selective", "lti"])
def test_build_model_passes_the_initial_delta_range_to_every_block(kind):
    # dt_min = dt_max pins the initial Δ = softplus(dt_proj.bias) of every channel to that value
    model = build_model(kind, 6, 8, 2, 4, seed=0, dt_min=0.02, dt_max=0.02)
    for layer in model.backbone.layers:
        delta = torch.nn.functional.softplus(layer.mixer.dt_proj.bias.detach().double())
        torch.testing.assert_close(delta, torch.full_like(delta, 0.02), rtol=1e-5, atol=0)
    default = build_model(kind, 6, 8, 2, 4, seed=0)
    delta = torch.nn.functional.softplus(default.backbone.layers[0].mixer.dt_proj.bias.detach().double())
    assert 0.001 <= delta.min() and delta.max() <= 0.1 and delta.std() > 0.005

def test_quick_and_full_configs_exist_for_every_task():
    for name in TASKS:
        assert set(CONFIGS[name]) == {"quick", "full"}
        assert CONFIGS[name]["quick"].keys() == CONFIGS[name]["full"].keys()


@pytest.mark.parametrize("name", TASKS)
def test_cli_prints_one_json_line(name, monkeypatch, capsys):
    from mamba_edu import cli

    monkeypatch.setitem(CONFIGS[name], "quick", {**CONFIGS[name]["quick"], **TINY[name]})
    assert cli.main(["experiment", name]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["task"] == name and result["steps"] == 4
    assert {"lti_accuracy", "selective_accuracy", "seconds"} <= set(result)


# -- figures (lesson 5; the explorer: test_widgets_experiments.py, exercises: test_exercises_experiments.py)
def test_result_figures_plot_the_recorded_numbers():
    from mamba_edu.plot.experiments import accuracy_figure, extrapolation_figure

    result = run_experiment("induction-heads", progress=False, **TINY["induction-heads"])
    fig = accuracy_figure([result])
    lines = fig.axes[0].get_lines()
    assert list(lines[0].get_ydata()) == [h["accuracy"] for h in result["history"]["selective"]]
    assert list(lines[1].get_ydata()) == [h["accuracy"] for h in result["history"]["lti"]]
    fig = extrapolation_figure(result)
    sel = fig.axes[0].get_lines()[0]
    assert list(sel.get_xdata()) == [8, 16, 32]
    assert list(sel.get_ydata()) == [result["selective_by_length"][k] for k in ("8", "16", "32")]
