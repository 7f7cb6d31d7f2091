"""MambaLM.from_pretrained / save_pretrained against an independent implementation: transformers' MambaForCausalLM.

transformers (pinned in the ``test`` extra; 5.23.0 when these numbers were measured) runs its pure-PyTorch
reference path on the CPU. No test touches the network: hub names are exercised with huggingface_hub's
``snapshot_download`` replaced by a stand-in.

Measured (transformers 5.23.0, torch 2.13.0 CPU), max |logits ours − logits transformers|:
- transformers layout → MambaLM (the random 3-layer model below, |logits| up to ≈ 23–28):
  float64 with transformers' float32 casts neutralised (see ``float64_reference``) 1.9e-14;
  float64 as transformers runs it (its RMSNorm and scan round to float32) 7.7e-6; float32 1.1e-5;
- MambaLM → original layout → transformers (|logits| ≈ 0.46): float64 3.9e-16, float32 1.3e-7;
- greedy generation: the same 24 tokens; transformers' per-step (recurrent) scores vs our forward ≤ 1e-5.
"""

import contextlib
import inspect
import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import mamba_edu as me
from mamba_edu.mamba import pretrained

transformers = pytest.importorskip("transformers")
safetensors_torch = pytest.importorskip("safetensors.torch")
tokenizers = pytest.importorskip("tokenizers")

VOCAB, D_MODEL, N_LAYER, D_STATE = 120, 32, 3, 8


@contextlib.contextmanager
def float64_reference():
    """Let transformers' Mamba run in true float64.

    Its reference path upcasts to "at least float32" with ``.float()`` (the scan's B, u, A_log; the logits)
    and ``.to(torch.float32)`` (RMSNorm), which in a float64 model *rounds* to float32. Inside this context
    those two calls leave float64 tensors as they are; nothing else changes.
    """
    float_, to = torch.Tensor.float, torch.Tensor.to

    def keep_float(self, *args, **kwargs):
        return self if self.dtype == torch.float64 else float_(self, *args, **kwargs)

    def keep_to(self, *args, **kwargs):
        if self.dtype == torch.float64 and not kwargs and args == (torch.float32,):
            return self
        return to(self, *args, **kwargs)

    torch.Tensor.float, torch.Tensor.to = keep_float, keep_to
    try:
        yield
    finally:
        torch.Tensor.float, torch.Tensor.to = float_, to


def byte_tokenizer_json(path):
    """A real ``tokenizers`` byte-level tokenizer (256 tokens, no merges), saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.save(str(path))
    return tok


def random_hf_model(vocab=VOCAB, seed=0):
    """A small random MambaForCausalLM whose weights are far from their initial values (so that every
    parameter matters): A_log, D, the norms and biases perturbed, a larger embedding, and mixers strong
    enough against the residual stream that greedy generation does not just repeat one token."""
    torch.manual_seed(seed)
    config = transformers.MambaConfig(
        vocab_size=vocab, hidden_size=D_MODEL, state_size=D_STATE, num_hidden_layers=N_LAYER,
        expand=2, conv_kernel=4, time_step_rank="auto",
    )  # fmt: skip
    hf = transformers.MambaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in hf.named_parameters():
            if name.endswith(("A_log", ".D", "norm.weight", "norm_f.weight", "dt_proj.bias", "conv1d.bias")):
                p.add_(0.3 * torch.randn_like(p))
        hf.backbone.embeddings.weight.normal_(0, 1.0)
        for layer in hf.backbone.layers:
            layer.mixer.in_proj.weight.mul_(3.0)
            layer.mixer.out_proj.weight.mul_(5.0)
    return hf


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A transformers-layout folder (config.json + model.safetensors + tokenizer.json), vocab 256 bytes."""
    folder = tmp_path_factory.mktemp("mamba-tiny-hf")
    random_hf_model(vocab=256).save_pretrained(folder)
    byte_tokenizer_json(folder / "tokenizer.json")
    return folder


def hf_logits(folder, dtype, ids, exact=True):
    hf = transformers.MambaForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    with torch.no_grad(), (float64_reference() if exact else contextlib.nullcontext()):
        return hf(ids).logits


def test_the_transformers_folder_is_the_transformers_layout(hf_folder):
    config = json.loads((hf_folder / "config.json").read_text())
    keys = safetensors_torch.load_file(hf_folder / "model.safetensors")
    assert config["model_type"] == "mamba" and "hidden_size" in config
    assert "backbone.embeddings.weight" in keys and "backbone.embedding.weight" not in keys


def test_transformers_layout_logits_float64(hf_folder):
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(1))
    ours = me.MambaLM.from_pretrained(hf_folder, dtype=torch.float64)
    with torch.no_grad():
        logits = ours(ids)
    assert logits.dtype == torch.float64 and logits.abs().max() > 1  # logits of a useful size
    ref = hf_logits(hf_folder, torch.float64, ids)
    assert ref.dtype == torch.float64
    torch.testing.assert_close(logits, ref, atol=1e-12, rtol=1e-12)  # measured 1.9e-14 (|logits| ≈ 23)
    # as transformers runs it, its float32 casts bound the agreement
    torch.testing.assert_close(logits, hf_logits(hf_folder, torch.float64, ids, exact=False).double(),
                               atol=1e-5, rtol=1e-5)  # fmt: skip  (measured 7.7e-6)


def test_transformers_layout_logits_float32(hf_folder):
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(2))
    ours = me.MambaLM.from_pretrained(hf_folder)
    assert ours.lm_head.weight.dtype == torch.float32
    with torch.no_grad():
        logits = ours(ids)
    torch.testing.assert_close(logits, hf_logits(hf_folder, torch.float32, ids, exact=False),
                               atol=2e-5, rtol=1e-5)  # fmt: skip  (measured 1.1e-5, |logits| ≈ 28)


def test_greedy_generate_matches_transformers(hf_folder):
    prompt = torch.tensor([[72, 101, 108, 108, 111, 32]])  # "Hello "
    ours = me.MambaLM.from_pretrained(hf_folder, dtype=torch.float64)
    tokens = ours.generate(prompt, max_new_tokens=24)
    hf = transformers.MambaForCausalLM.from_pretrained(hf_folder, dtype=torch.float64).eval()
    with torch.no_grad(), float64_reference():
        out = hf.generate(prompt, max_new_tokens=24, do_sample=False, output_scores=True,
                          return_dict_in_generate=True, pad_token_id=0, eos_token_id=None)  # fmt: skip
        ref_logits = ours(out.sequences)
    assert torch.equal(tokens, out.sequences)
    assert len(set(tokens[0, 6:].tolist())) >= 4  # not a model that repeats one token
    # transformers' recurrent (cached) logits at each step = ours from one forward pass over the sequence;
    # its generate() keeps the scores in float32, hence the float32 tolerance
    steps = torch.stack(out.scores, dim=1)  # (1, 24, vocab)
    assert steps.dtype == torch.float32
    torch.testing.assert_close(steps, ref_logits[:, 5:-1].float(), atol=1e-5, rtol=1e-6)


def test_original_layout_round_trip_and_transformers_loads_it(tmp_path):
    torch.manual_seed(3)
    ours = me.MambaLM(100, D_MODEL, N_LAYER, d_state=D_STATE, pad_vocab_size_multiple=8).double()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if name.endswith(("A_log", ".D", "norm.weight", "norm_f.weight")):
                p.add_(0.3 * torch.randn_like(p))
    folder = ours.save_pretrained(tmp_path / "mamba-tiny")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "pytorch_model.bin"]
    config = json.loads((folder / "config.json").read_text())
    assert set(config) == set(pretrained.ORIGINAL_DEFAULTS)  # exactly the fields of mamba_ssm's MambaConfig
    assert config["vocab_size"] == 104 and config["ssm_cfg"]["d_state"] == D_STATE and config["rms_norm"]
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    assert "backbone.embedding.weight" in state and "lm_head.weight" in state

    again = me.MambaLM.from_pretrained(folder, dtype=torch.float64)
    for (k, a), (k2, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    assert again.lm_head.weight is again.backbone.embedding.weight

    # transformers 5.23.0 ships no converter for the original config.json: map it by name here. The weights
    # go through transformers' own conversion of the original keys (MambaModel.load_hook renames
    # backbone.embedding.* → backbone.embeddings.*).
    hf_config = transformers.MambaConfig(
        vocab_size=config["vocab_size"], hidden_size=config["d_model"], num_hidden_layers=config["n_layer"],
        state_size=config["ssm_cfg"]["d_state"], expand=config["ssm_cfg"]["expand"],
        conv_kernel=config["ssm_cfg"]["d_conv"], time_step_rank=config["ssm_cfg"]["dt_rank"],
        use_conv_bias=config["ssm_cfg"]["conv_bias"], use_bias=config["ssm_cfg"]["bias"],
        residual_in_fp32=config["residual_in_fp32"],
    )  # fmt: skip
    hf = transformers.MambaForCausalLM(hf_config).double().eval()
    result = hf.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(hf.backbone.embeddings.weight, state["backbone.embedding.weight"].double())
    ids = torch.randint(0, 100, (2, 30), generator=torch.Generator().manual_seed(4))
    with torch.no_grad(), float64_reference():
        ref = hf(ids).logits
    with torch.no_grad():
        logits = ours(ids)
    torch.testing.assert_close(logits, ref, atol=1e-12, rtol=1e-12)
    hf32 = hf.float()
    with torch.no_grad():
        torch.testing.assert_close(ours.float()(ids), hf32(ids).logits, atol=2e-5, rtol=1e-5)


def test_sharded_safetensors_load_the_same(hf_folder, tmp_path):
    state = safetensors_torch.load_file(hf_folder / "model.safetensors")
    keys = sorted(state)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2 :]}  # fmt: skip
    for name, part in shards.items():
        safetensors_torch.save_file({k: state[k] for k in part}, tmp_path / name)
    weight_map = {k: name for name, part in shards.items() for k in part}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "config.json").write_text((hf_folder / "config.json").read_text())
    a, b = me.MambaLM.from_pretrained(hf_folder), me.MambaLM.from_pretrained(tmp_path)
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(x, b.state_dict()[k]) for k, x in a.state_dict().items())


def test_low_precision_keeps_A_log_and_D_in_float32_and_warns(hf_folder):
    with pytest.warns(UserWarning, match="residual_in_fp32"):
        model = me.MambaLM.from_pretrained(hf_folder, dtype=torch.bfloat16, device="cpu")
    mixer = model.backbone.layers[0].mixer
    assert mixer.A_log.dtype == torch.float32 and mixer.D.dtype == torch.float32
    assert mixer.in_proj.weight.dtype == torch.bfloat16 and model.lm_head.weight.dtype == torch.bfloat16
    assert model.lm_head.weight is model.backbone.embedding.weight and not model.training
    ids = torch.randint(0, 256, (1, 30), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        low, full = model(ids), me.MambaLM.from_pretrained(hf_folder)(ids)
    assert low.dtype == torch.bfloat16
    assert (low.float() - full).abs().max() < 0.05 * full.abs().max()  # bfloat16 keeps ~3 significant digits


# ------------------------------------------------------------------------------------- refusals and errors
def original_config(**changes):
    config = {"d_model": 16, "n_layer": 1, "vocab_size": 10, "ssm_cfg": {"d_state": 4}}
    config.update(changes)
    return config


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"rms_norm": False}, "rms_norm=False"),
        ({"attn_layer_idx": [0]}, "attn_layer_idx"),
        ({"d_intermediate": 64}, "d_intermediate=64"),
        ({"tie_embeddings": False}, "tie_embeddings"),
        ({"ssm_cfg": {"layer": "Mamba2"}}, "Mamba2"),
        ({"ssm_cfg": {"headdim": 64}}, "headdim"),
        ({"ssm_cfg": {"expand": 1.5}}, "expand=1.5"),
        ({"n_heads": 4}, "n_heads"),
    ],
)
def test_original_configs_mambalm_cannot_represent_are_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        pretrained.model_kwargs_from_config(original_config(**changes))


def test_original_config_defaults_and_ignored_fields():
    kwargs = pretrained.model_kwargs_from_config(
        original_config(fused_add_norm=False, ssm_cfg={"d_state": 4, "use_fast_path": True, "layer": "Mamba1"})
    )
    assert kwargs["pad_vocab_size_multiple"] == 8 and kwargs["residual_in_fp32"] is True  # MambaConfig defaults
    assert "use_fast_path" not in kwargs and kwargs["d_state"] == 4
    assert me.MambaLM(**{k: v for k, v in kwargs.items() if k != "residual_in_fp32"}).vocab_size == 16


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"model_type": "mamba2"}, "mamba2"), ({"hidden_act": "gelu"}, "gelu"), ({"tie_word_embeddings": False}, "tie"),
     ({"intermediate_size": 48}, "intermediate_size=48")],
)
def test_transformers_configs_mambalm_cannot_represent_are_refused(changes, match):
    config = {"model_type": "mamba", "hidden_size": 16, "num_hidden_layers": 1, "vocab_size": 10, **changes}
    with pytest.raises(ValueError, match=match):
        pretrained.model_kwargs_from_config(config)


def test_config_of_neither_layout_is_an_error():
    with pytest.raises(ValueError, match="neither"):
        pretrained.model_kwargs_from_config({"n_embd": 16})


def save_original(folder, state, config=None):
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config or original_config()))
    torch.save(state, folder / "pytorch_model.bin")
    return folder


def test_missing_unknown_and_misshapen_keys_name_the_key_and_both_shapes(tmp_path):
    state = me.MambaLM(10, 16, 1, d_state=4, pad_vocab_size_multiple=8).state_dict()  # = original_config()
    bad = dict(state)
    del bad["backbone.layers.0.mixer.D"]
    bad["backbone.layers.0.mixer.A_log"] = torch.zeros(32, 5)
    bad["backbone.layers.0.extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError) as err:
        me.MambaLM.from_pretrained(save_original(tmp_path / "bad", bad))
    text = str(err.value)
    assert "missing key 'backbone.layers.0.mixer.D' (MambaLM expects shape (32,))" in text
    assert "'backbone.layers.0.mixer.A_log' has shape (32, 5) in the checkpoint, MambaLM expects (32, 4)" in text
    assert "unknown key 'backbone.layers.0.extra.weight' (shape (3,))" in text
    good = me.MambaLM.from_pretrained(save_original(tmp_path / "good", state))
    assert good.state_dict().keys() == state.keys()
    assert all(torch.equal(a, state[k]) for k, a in good.state_dict().items())


def test_untied_lm_head_is_refused(tmp_path):
    state = me.MambaLM(16, 16, 1, d_state=4).state_dict()
    state["lm_head.weight"] = state["lm_head.weight"] + 1
    with pytest.raises(ValueError, match="untied"):
        me.MambaLM.from_pretrained(save_original(tmp_path / "m", state))


def test_weights_only_loading_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))

    state = me.MambaLM(16, 16, 1, d_state=4).state_dict()
    state["backbone.norm_f.weight"] = Evil()
    folder = save_original(tmp_path / "m", state)
    with pytest.raises(Exception, match="[Ww]eights only load failed|weights_only"):
        me.MambaLM.from_pretrained(folder)


def test_save_pretrained_refuses_what_the_original_config_cannot_say(tmp_path):
    with pytest.raises(ValueError, match="norm_epsilon"):
        me.MambaLM(16, 16, 1, norm_epsilon=1e-6).save_pretrained(tmp_path / "a")

    class Other(me.MambaBlock):
        pass

    with pytest.raises(ValueError, match="Other"):
        me.MambaLM(16, 16, 1, block_cls=Other).save_pretrained(tmp_path / "b")


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="needs config.json"):
        me.MambaLM.from_pretrained(tmp_path)
    (tmp_path / "file.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="is a file"):
        me.MambaLM.from_pretrained(tmp_path / "file.bin")
    with pytest.raises(FileNotFoundError, match="not a hub name"):
        me.MambaLM.from_pretrained(str(tmp_path / "nowhere" / "a" / "b"))
    with pytest.raises(ValueError, match="dtype"):
        me.MambaLM.from_pretrained(tmp_path, dtype=torch.int64)


# ------------------------------------------------------------------------------------- hub names, no network
def test_hub_name_without_huggingface_hub_says_how_to_download(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"mamba-edu\[hub\].*hf download state-spaces/mamba-130m-hf"):
        me.MambaLM.from_pretrained("state-spaces/mamba-130m-hf")


def test_hub_name_unreachable_says_how_to_download(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(OSError, match=r"could not get 'state-spaces/mamba-130m'.*no network.*hf download"):
        me.MambaLM.from_pretrained("state-spaces/mamba-130m")


def test_hub_name_resolves_through_snapshot_download(monkeypatch, tmp_path):
    """An original-layout repository: no safetensors, so a second call fetches pytorch_model.bin."""
    import huggingface_hub

    torch.manual_seed(5)
    model = me.MambaLM(16, 16, 1, d_state=4)
    full = model.save_pretrained(tmp_path / "full")
    calls = []

    def fake_snapshot_download(name, allow_patterns, local_files_only):
        calls.append((name, tuple(allow_patterns), local_files_only))
        if "pytorch_model.bin" in allow_patterns:
            return str(full)
        only_json = tmp_path / "json-only"
        only_json.mkdir(exist_ok=True)
        (only_json / "config.json").write_text((full / "config.json").read_text())
        return str(only_json)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    loaded = me.MambaLM.from_pretrained("state-spaces/mamba-tiny")
    assert [c[0] for c in calls] == ["state-spaces/mamba-tiny"] * 2 and not calls[0][2]
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(a, model.state_dict()[k]) for k, a in loaded.state_dict().items())


def test_find_checkpoint_env_variable_and_cache(monkeypatch, tmp_path, hf_folder):
    import huggingface_hub

    def not_cached(*args, **kwargs):
        assert kwargs["local_files_only"]  # find_checkpoint never downloads
        raise FileNotFoundError("not in the cache")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", not_cached)
    monkeypatch.delenv(pretrained.CHECKPOINT_ENV, raising=False)
    assert pretrained.find_checkpoint() is None
    monkeypatch.setenv(pretrained.CHECKPOINT_ENV, str(hf_folder))
    assert pretrained.find_checkpoint(need_tokenizer=True) == hf_folder
    no_tok = me.MambaLM(16, 16, 1, d_state=4).save_pretrained(tmp_path / "orig")
    monkeypatch.setenv(pretrained.CHECKPOINT_ENV, str(no_tok))
    assert pretrained.find_checkpoint() == no_tok
    with pytest.raises(FileNotFoundError, match="gpt-neox-20b"):
        pretrained.find_checkpoint(need_tokenizer=True)
    monkeypatch.setenv(pretrained.CHECKPOINT_ENV, str(tmp_path / "missing"))
    with pytest.raises(OSError):
        pretrained.find_checkpoint()


# ------------------------------------------------------------------------------------- tokenizer and text
def test_tokenizer_and_text_generation(hf_folder):
    model, tok = me.MambaLM.from_pretrained(hf_folder, dtype=torch.float64, tokenizer=True)
    assert isinstance(tok, tokenizers.Tokenizer)
    text = model.generate_text("Hello ", tok, max_new_tokens=12)
    ids = model.generate(torch.tensor([tok.encode("Hello ").ids]), 12)
    assert isinstance(text, str) and text.startswith("Hello ") and text == tok.decode(ids[0].tolist())
    assert model.generate_text(["ab", "cd"], tok, max_new_tokens=3)[1].startswith("cd")
    with pytest.raises(ValueError, match="different lengths"):
        model.generate_text(["a", "abc"], tok)
    with pytest.raises(ValueError, match="prompt"):
        model.generate_text("", tok)
    # the function takes the method's arguments in the method's order, after the model
    assert pretrained.generate_text(model, "Hello ", tok, 12) == text
    method = list(inspect.signature(me.MambaLM.generate_text).parameters)
    assert list(inspect.signature(pretrained.generate_text).parameters) == ["model"] + method[1:]


def test_byte_tokenizer_round_trips_utf8():
    tok = pretrained.ByteTokenizer()
    enc = tok.encode("Δt ≈ 0")
    assert max(enc.ids) < tok.vocab_size and tok.decode(enc.ids) == "Δt ≈ 0" and len(enc.tokens) == len(enc.ids)


# ------------------------------------------------------------------------------------- looking inside
def test_delta_per_token_matches_a_step_by_step_recomputation(hf_folder):
    """Δ recomputed from the block's input with explicit ops (conv as a sum over the last d_conv inputs)."""
    model = me.MambaLM.from_pretrained(hf_folder, dtype=torch.float64)
    ids = torch.randint(0, 256, (2, 17), generator=torch.Generator().manual_seed(6))
    inputs = []
    hooks = [layer.mixer.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
             for layer in model.backbone.layers]  # fmt: skip
    delta = pretrained.delta_per_token(model, ids)
    for h in hooks:
        h.remove()
    assert delta.shape == (N_LAYER, 2, 17, 2 * D_MODEL) and delta.dtype == torch.float64
    for i, layer in enumerate(model.backbone.layers):
        mixer = layer.mixer
        u = inputs[i] @ mixer.in_proj.weight[: mixer.d_inner].T  # (b, l, d_inner), conv branch
        w = mixer.conv1d.weight[:, 0, :]  # (d_inner, d_conv)
        padded = F.pad(u, (0, 0, mixer.d_conv - 1, 0))
        conv = sum(padded[:, j : j + u.shape[1]] * w[:, j] for j in range(mixer.d_conv)) + mixer.conv1d.bias
        u_conv = conv * torch.sigmoid(conv)  # SiLU: the SSM input
        dt_low = u_conv @ mixer.x_proj.weight[: mixer.dt_rank].T
        want = torch.log1p(torch.exp(dt_low @ mixer.dt_proj.weight.T + mixer.dt_proj.bias))
        torch.testing.assert_close(delta[i], want, atol=1e-12, rtol=1e-12)


def test_learned_A_is_minus_exp_A_log_and_s4d_real_at_init():
    torch.manual_seed(0)
    model = me.MambaLM(16, 16, 2, d_state=5)
    A = pretrained.learned_A(model)
    assert A.shape == (2, 32, 5) and A.dtype == np.float64
    np.testing.assert_allclose(A, np.broadcast_to(-np.arange(1, 6.0), A.shape), rtol=1e-7)
    median, s4d = pretrained.timescale_summary(A)
    np.testing.assert_allclose(median, np.broadcast_to(s4d, (2, 5)), rtol=1e-7)


def test_figures_carry_the_label_and_check_their_inputs():
    from mamba_edu.plot.pretrained import a_spectrum_figure, delta_tokens_figure

    A = -np.exp(np.random.default_rng(0).normal(size=(3, 8, 4)))
    fig = a_spectrum_figure(A, "UNTRAINED tiny random model")
    assert fig.get_suptitle() == "UNTRAINED tiny random model"
    assert len(fig.mamba_artists["median_lines"]) == 3
    delta = np.exp(np.random.default_rng(1).normal(size=(3, 5, 8)))
    fig = delta_tokens_figure(delta, list("ab de"), "checkpoint x")
    assert fig.get_suptitle() == "checkpoint x" and fig.axes[1].get_xticklabels()[2].get_text() == "␣"
    np.testing.assert_allclose([b.get_height() for b in fig.mamba_artists["bars"]], delta.mean(axis=(0, 2)))
    with pytest.raises(ValueError, match="label"):
        a_spectrum_figure(A, "")
    with pytest.raises(ValueError, match="tokens has length 4"):
        delta_tokens_figure(delta, list("abcd"), "x")
    with pytest.raises(ValueError, match="negative"):
        a_spectrum_figure(-A, "x")


def test_checkpoint_name(tmp_path):
    snap = tmp_path / "models--state-spaces--mamba-130m-hf" / "snapshots" / "0123abc"
    assert pretrained.checkpoint_name(snap) == "state-spaces/mamba-130m-hf"
    assert pretrained.checkpoint_name(tmp_path / "mamba-130m") == "mamba-130m"
