"""Released Mamba checkpoints: read them into :class:`~mamba_edu.mamba.model.MambaLM`, write them back.  Lesson 4.

The released language models (``state-spaces/mamba-130m`` … ``mamba-2.8b``) are published in two layouts,
both of which :func:`from_pretrained` reads from a local folder:

original (``mamba_ssm``)
    ``config.json`` with the fields of ``mamba_ssm.models.config_mamba.MambaConfig`` (``d_model``,
    ``n_layer``, ``vocab_size``, ``ssm_cfg``, ``rms_norm``, ``residual_in_fp32``, ``fused_add_norm``,
    ``pad_vocab_size_multiple``, …) and ``pytorch_model.bin``, whose keys are ours:
    ``backbone.embedding.weight``, ``backbone.layers.{i}.norm.weight``, ``backbone.layers.{i}.mixer.*``,
    ``backbone.norm_f.weight`` and the tied ``lm_head.weight``.
transformers (``*-hf`` repositories)
    ``config.json`` of ``transformers.MambaConfig`` (``hidden_size``, ``num_hidden_layers``,
    ``state_size``, ``expand``, ``conv_kernel``, ``time_step_rank``, …) and ``model.safetensors`` (or
    shards listed in ``model.safetensors.index.json``) with the same keys except
    ``backbone.embeddings.weight``; the tied ``lm_head.weight`` may be absent. These folders also hold the
    tokenizer (``tokenizer.json``).

How the original config maps onto MambaLM (read from ``mamba_ssm/models/mixer_seq_simple.py``):
``ssm_cfg`` holds the keyword arguments of each mixer (``d_state``, ``d_conv``, ``expand``, ``dt_rank``,
``conv_bias``, ``bias`` and the initialisation-only ``dt_*``), all Mamba-1 (``"layer": "Mamba1"``);
``rms_norm=True`` is our RMSNorm (``False`` would be LayerNorm with a bias: refused);
``fused_add_norm`` only chooses a fused Triton kernel for the same add + norm (ignored);
``residual_in_fp32`` keeps the residual stream in float32 — the same as ours in float32/float64, and a
warning in bfloat16/float16, where ours stays in that dtype; ``pad_vocab_size_multiple`` (default 8) pads
the vocabulary, as MambaLM does. What MambaLM cannot represent is refused by name: attention layers
(``attn_layer_idx``), an MLP (``d_intermediate`` > 0), untied embeddings, Mamba-2/3 mixers.
"""

import json
import os
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

CHECKPOINT_ENV = "MAMBA_EDU_CHECKPOINT"  # the lesson looks here first for a local checkpoint folder
DEFAULT_CHECKPOINTS = ("state-spaces/mamba-130m-hf", "state-spaces/mamba-130m")  # then in the hub cache

CONFIG_NAME, TORCH_WEIGHTS, SAFE_WEIGHTS, SAFE_INDEX = (
    "config.json",
    "pytorch_model.bin",
    "model.safetensors",
    "model.safetensors.index.json",
)
DOWNLOAD_HOWTO = (
    "download the folder where there is a network, e.g. `pip install huggingface_hub` then "
    "`hf download state-spaces/mamba-130m-hf --local-dir mamba-130m-hf` (or in Python "
    "`huggingface_hub.snapshot_download('state-spaces/mamba-130m-hf', local_dir='mamba-130m-hf')`), "
    "copy it here and pass its path"
)

# The original MambaConfig's fields, with their defaults (mamba_ssm/models/config_mamba.py).
ORIGINAL_DEFAULTS = {
    "d_model": 2560,
    "d_intermediate": 0,
    "n_layer": 64,
    "vocab_size": 50277,
    "ssm_cfg": {},
    "attn_layer_idx": [],
    "attn_cfg": {},
    "rms_norm": True,
    "residual_in_fp32": True,
    "fused_add_norm": True,
    "pad_vocab_size_multiple": 8,
    "tie_embeddings": True,
}
# ssm_cfg keys of the official Mamba-1 mixer that MambaBlock takes under the same name
SSM_CFG_KEYS = ("d_state", "d_conv", "expand", "dt_rank", "dt_min", "dt_max", "dt_init", "dt_scale",
                "dt_init_floor", "conv_bias", "bias")  # fmt: skip
SSM_CFG_IGNORED = ("use_fast_path", "layer_idx")  # kernel choice, bookkeeping
# transformers MambaConfig name → MambaBlock / MambaLM name
HF_NAMES = {
    "vocab_size": "vocab_size",
    "hidden_size": "d_model",
    "num_hidden_layers": "n_layer",
    "state_size": "d_state",
    "conv_kernel": "d_conv",
    "expand": "expand",
    "time_step_rank": "dt_rank",
    "use_conv_bias": "conv_bias",
    "use_bias": "bias",
    "layer_norm_epsilon": "norm_epsilon",
    "time_step_min": "dt_min",
    "time_step_max": "dt_max",
    "time_step_scale": "dt_scale",
    "time_step_init_scheme": "dt_init",
    "time_step_floor": "dt_init_floor",
}


# ---------------------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------------------
def config_layout(config):
    """``"transformers"`` or ``"original"``: which published layout a ``config.json`` dict follows."""
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict (the parsed config.json), got {type(config).__name__}")
    if "model_type" in config or "hidden_size" in config:
        return "transformers"
    if "d_model" in config:
        return "original"
    raise ValueError(
        f"config.json is neither the original Mamba layout (no 'd_model') nor transformers' MambaConfig "
        f"(no 'hidden_size'/'model_type'); its keys are {sorted(config)}"
    )


def _refuse(condition, what):
    if condition:
        raise ValueError(f"MambaLM cannot represent this checkpoint: {what}")


def model_kwargs_from_config(config):
    """Keyword arguments of :class:`~mamba_edu.mamba.model.MambaLM` for a ``config.json`` of either layout.

    Parameters
    ----------
    config : dict
        The parsed ``config.json`` (original ``mamba_ssm`` or ``transformers`` layout).

    Returns
    -------
    kwargs : dict
        ``vocab_size, d_model, n_layer, d_state, d_conv, expand, dt_rank, conv_bias, bias,
        pad_vocab_size_multiple, norm_epsilon`` (and the ``dt_*`` initialisation arguments when given),
        plus ``"residual_in_fp32"`` (bool), which MambaLM does not take and :func:`from_pretrained` pops.

    Raises
    ------
    ValueError
        Naming the field, for anything MambaLM cannot represent (attention layers, an MLP, LayerNorm,
        untied embeddings, Mamba-2/3 mixers, unknown fields of the original config).
    """
    if config_layout(config) == "original":
        unknown = sorted(set(config) - set(ORIGINAL_DEFAULTS))
        if unknown:
            raise ValueError(f"config.json has fields the original MambaConfig does not know: {unknown}")
        cfg = {**ORIGINAL_DEFAULTS, **config}
        _refuse(cfg["d_intermediate"] != 0, f"d_intermediate={cfg['d_intermediate']} (an MLP after each mixer)")
        _refuse(bool(cfg["attn_layer_idx"]), f"attn_layer_idx={cfg['attn_layer_idx']} (attention layers)")
        _refuse(not cfg["rms_norm"], "rms_norm=False (LayerNorm with a bias; MambaLM has RMSNorm)")
        _refuse(not cfg["tie_embeddings"], "tie_embeddings=False (MambaLM ties lm_head to the embedding)")
        ssm_cfg = dict(cfg["ssm_cfg"] or {})
        layer = ssm_cfg.pop("layer", "Mamba1")
        _refuse(layer != "Mamba1", f"ssm_cfg['layer']={layer!r} (MambaLM's mixer is Mamba-1)")
        unknown = sorted(set(ssm_cfg) - set(SSM_CFG_KEYS) - set(SSM_CFG_IGNORED))
        _refuse(bool(unknown), f"ssm_cfg has keys MambaBlock does not take: {unknown}")
        kwargs = {k: v for k, v in ssm_cfg.items() if k in SSM_CFG_KEYS}
        kwargs.update(
            vocab_size=cfg["vocab_size"],
            d_model=cfg["d_model"],
            n_layer=cfg["n_layer"],
            pad_vocab_size_multiple=cfg["pad_vocab_size_multiple"],
            norm_epsilon=1e-5,  # mamba_ssm's MixerModel default; the config has no field for it
            residual_in_fp32=bool(cfg["residual_in_fp32"]),
        )
    else:
        model_type = config.get("model_type", "mamba")
        _refuse(model_type != "mamba", f"model_type={model_type!r} (MambaLM is Mamba-1, model_type 'mamba')")
        act = config.get("hidden_act", "silu")
        _refuse(act != "silu", f"hidden_act={act!r} (Mamba uses 'silu')")
        _refuse(not config.get("tie_word_embeddings", True), "tie_word_embeddings=False")
        kwargs = {ours: config[theirs] for theirs, ours in HF_NAMES.items() if theirs in config}
        for name in ("vocab_size", "d_model", "n_layer"):
            if name not in kwargs:
                theirs = next(k for k, v in HF_NAMES.items() if v == name)
                raise ValueError(f"config.json (transformers layout) has no {theirs!r}")
        inner = config.get("intermediate_size")
        _refuse(inner is not None and inner != kwargs.get("expand", 2) * kwargs["d_model"],
                f"intermediate_size={inner} is not expand · hidden_size")  # fmt: skip
        kwargs.update(pad_vocab_size_multiple=1, residual_in_fp32=bool(config.get("residual_in_fp32", True)))
    expand = kwargs.get("expand", 2)
    if isinstance(expand, float) and expand.is_integer():
        kwargs["expand"] = expand = int(expand)
    _refuse(not isinstance(expand, int), f"expand={expand!r} (MambaBlock needs an integer expand)")
    return kwargs


def config_from_model(model):
    """The original-layout ``config.json`` dict of a :class:`MambaLM` (what :func:`save_pretrained` writes).

    Raises
    ------
    ValueError
        If the model has something the original config cannot say (a mixer other than MambaBlock,
        an RMSNorm epsilon other than 1e-5).
    """
    from mamba_edu.mamba.block import MambaBlock

    mixer = model.backbone.layers[0].mixer
    if type(mixer) is not MambaBlock:
        raise ValueError(f"save_pretrained writes Mamba checkpoints; this model's mixer is {type(mixer).__name__}")
    eps = model.backbone.norm_f.eps
    if eps != 1e-5:
        raise ValueError(f"the original config has no field for norm_epsilon; this model has {eps}, expected 1e-5")
    ssm_cfg = {
        "d_state": mixer.d_state,
        "d_conv": mixer.d_conv,
        "expand": mixer.expand,
        "dt_rank": mixer.dt_rank,
        "conv_bias": mixer.conv1d.bias is not None,
        "bias": mixer.in_proj.bias is not None,
    }
    return {
        "d_model": model.d_model,
        "d_intermediate": 0,
        "n_layer": model.n_layer,
        "vocab_size": model.vocab_size,  # already padded: padding it again to 8 changes nothing when 8 | it
        "ssm_cfg": ssm_cfg,
        "attn_layer_idx": [],
        "attn_cfg": {},
        "rms_norm": True,
        "residual_in_fp32": True,
        "fused_add_norm": True,
        "pad_vocab_size_multiple": 8 if model.vocab_size % 8 == 0 else 1,
        "tie_embeddings": True,
    }


# ---------------------------------------------------------------------------------------------------------
# folders, files and state dicts
# ---------------------------------------------------------------------------------------------------------
def _looks_like_hub_name(name):
    return re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", name) is not None


def _has_weights(folder):
    return any((folder / name).is_file() for name in (TORCH_WEIGHTS, SAFE_WEIGHTS, SAFE_INDEX))


def resolve_checkpoint(path_or_name, local_files_only=False):
    """The local folder of a checkpoint: ``path_or_name`` itself, or a hub name fetched with ``huggingface_hub``.

    Parameters
    ----------
    path_or_name : str or os.PathLike
        A folder with ``config.json`` and weights, or a hub name such as ``"state-spaces/mamba-130m-hf"``.
    local_files_only : bool, default False
        For a hub name, only look in the local hub cache (no network).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        No such folder, or a folder without ``config.json``/weights.
    ImportError, OSError
        A hub name without ``huggingface_hub`` installed, or that could not be downloaded; the message
        says how to download the folder by hand.
    """
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise ValueError(f"path_or_name must be a folder path or a hub name, got {type(path_or_name).__name__}")
    path = Path(path_or_name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FileNotFoundError(f"{path} is a file; expected a checkpoint folder (config.json + weights)")
        if not (path / CONFIG_NAME).is_file() or not _has_weights(path):
            raise FileNotFoundError(
                f"{path} needs {CONFIG_NAME} and one of {TORCH_WEIGHTS}, {SAFE_WEIGHTS}, {SAFE_INDEX}; "
                f"it has {sorted(p.name for p in path.iterdir())}"
            )
        return path
    name = str(path_or_name)
    if not _looks_like_hub_name(name):
        raise FileNotFoundError(f"no checkpoint folder {name!r} (and it is not a hub name 'owner/model')")
    try:
        import huggingface_hub
    except ImportError:
        raise ImportError(
            f"{name!r} is not a local folder, and loading it from the hub needs huggingface_hub "
            f"(pip install 'mamba-edu[hub]'); or {DOWNLOAD_HOWTO}"
        ) from None
    try:
        folder = Path(huggingface_hub.snapshot_download(
            name, allow_patterns=["*.json", "*.safetensors"], local_files_only=local_files_only
        ))  # fmt: skip
        if not _has_weights(folder):  # an original-layout repository: pytorch_model.bin
            folder = Path(huggingface_hub.snapshot_download(
                name, allow_patterns=["*.json", TORCH_WEIGHTS], local_files_only=local_files_only
            ))  # fmt: skip
    except Exception as err:  # offline, unknown repository, not in the cache, …
        where = "in the local hub cache" if local_files_only else "from the hub"
        raise OSError(f"could not get {name!r} {where} ({type(err).__name__}: {err}); {DOWNLOAD_HOWTO}") from err
    if not _has_weights(folder):
        raise FileNotFoundError(f"{name!r} has no {TORCH_WEIGHTS} or {SAFE_WEIGHTS} (got {folder})")
    return folder


def find_checkpoint(names=DEFAULT_CHECKPOINTS, need_tokenizer=False):
    """A checkpoint folder already on this machine, or None (never downloads).  Lesson 4.

    Looks at the environment variable ``MAMBA_EDU_CHECKPOINT`` (a folder; an error if it is set but wrong),
    then at the hub cache for each of ``names`` (when ``huggingface_hub`` is installed). With
    ``need_tokenizer=True`` a folder must also hold ``tokenizer.json`` (cached folders without one are
    passed over; the environment variable's is an error).
    """
    chosen = os.environ.get(CHECKPOINT_ENV, "").strip()
    if chosen:
        folder = resolve_checkpoint(chosen, local_files_only=True)
        if need_tokenizer:
            load_tokenizer(folder)  # raises, saying where to get one, if there is none
        return folder
    for name in names:
        try:
            folder = resolve_checkpoint(name, local_files_only=True)
        except (ImportError, OSError):  # FileNotFoundError is an OSError
            continue
        if not need_tokenizer or (folder / "tokenizer.json").is_file():
            return folder
    return None


def checkpoint_name(folder):
    """A readable name for a checkpoint folder: ``owner/model`` for a hub-cache snapshot, else the folder's name."""
    parts = Path(folder).parts  # a hub-cache snapshot: …/models--owner--model/snapshots/<commit>
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3][len("models--") :].replace("--", "/")
    return parts[-1]


def read_config(folder):
    """The parsed ``config.json`` of a checkpoint folder."""
    return json.loads((Path(folder) / CONFIG_NAME).read_text(encoding="utf-8"))


def read_state_dict(folder):
    """The weights of a checkpoint folder as a dict of CPU tensors, keys as stored.

    ``model.safetensors`` (or its shards) when present, else ``pytorch_model.bin`` through
    ``torch.load(weights_only=True)`` (tensors only: no code in the file is run).
    """
    folder = Path(folder)
    if (folder / SAFE_WEIGHTS).is_file() or (folder / SAFE_INDEX).is_file():
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise ImportError(f"{folder} holds safetensors weights: pip install 'mamba-edu[hub]'") from None
        if (folder / SAFE_WEIGHTS).is_file():
            return load_file(folder / SAFE_WEIGHTS, device="cpu")
        shards = sorted(set(json.loads((folder / SAFE_INDEX).read_text(encoding="utf-8"))["weight_map"].values()))
        state_dict = {}
        for shard in shards:
            state_dict.update(load_file(folder / shard, device="cpu"))
        return state_dict
    return torch.load(folder / TORCH_WEIGHTS, map_location="cpu", weights_only=True)


def to_original_keys(state_dict):
    """Rename a transformers-layout state dict to ours (= the original layout); the original passes through.

    The only renamed key is ``backbone.embeddings.weight`` → ``backbone.embedding.weight``; a missing
    ``lm_head.weight`` (tied, so transformers may not store it) is added as the embedding. An
    ``lm_head.weight`` that differs from the embedding is refused (MambaLM ties them).
    """
    out = {}
    for key, value in state_dict.items():
        new = "backbone.embedding.weight" if key == "backbone.embeddings.weight" else key
        if new in out:
            raise ValueError(f"the checkpoint has both {key!r} and 'backbone.embedding.weight'")
        out[new] = value
    embedding = out.get("backbone.embedding.weight")
    if embedding is not None:
        head = out.setdefault("lm_head.weight", embedding)
        if head.shape == embedding.shape and not torch.equal(head, embedding):
            raise ValueError("lm_head.weight differs from the embedding (untied); MambaLM ties them")
    return out


def check_state_dict(model, state_dict):
    """Raise a ValueError naming every missing and unknown key and every shape mismatch (both shapes)."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problems = [f"missing key {k!r} (MambaLM expects shape {s})" for k, s in expected.items() if k not in state_dict]
    problems += [f"unknown key {k!r} (shape {tuple(v.shape)}), not in MambaLM" for k, v in state_dict.items()
                 if k not in expected]  # fmt: skip
    problems += [
        f"{k!r} has shape {tuple(v.shape)} in the checkpoint, MambaLM expects {expected[k]}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    if problems:
        more = f" … and {len(problems) - 8} more" if len(problems) > 8 else ""
        listed = "; ".join(problems[:8])
        raise ValueError(f"the checkpoint does not fit the model built from config.json: {listed}{more}")


# ---------------------------------------------------------------------------------------------------------
# the public entry points (MambaLM.from_pretrained / save_pretrained / generate_text call these)
# ---------------------------------------------------------------------------------------------------------
def from_pretrained(cls, path_or_name, dtype=None, device=None, tokenizer=False):
    """Load a released Mamba checkpoint (either layout) into a :class:`MambaLM`.  Lesson 4.

    Called as ``MambaLM.from_pretrained(path_or_name, ...)`` (this module does not import the model module).

    Parameters
    ----------
    cls : type
        The class to build: ``MambaLM`` or a subclass.
    path_or_name : str or os.PathLike
        A local folder (works offline), or a hub name such as ``"state-spaces/mamba-130m-hf"`` (needs
        ``huggingface_hub`` and a network, or the folder in the hub cache).
    dtype : torch.dtype, optional
        Parameter dtype; default ``torch.get_default_dtype()`` (float32). ``A_log`` and ``D`` stay float32
        when ``dtype`` is narrower, as in the official model.
    device : torch.device or str, optional
    tokenizer : bool, default False
        Also return the folder's ``tokenizers.Tokenizer`` (from ``tokenizer.json``).

    Returns
    -------
    model : MambaLM, in eval mode; or ``(model, tokenizer)`` when ``tokenizer=True``
    """
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    folder = resolve_checkpoint(path_or_name)
    kwargs = model_kwargs_from_config(read_config(folder))
    if kwargs.pop("residual_in_fp32") and torch.finfo(dtype).bits < 32:
        warnings.warn(
            f"the checkpoint keeps its residual stream in float32 (residual_in_fp32); MambaLM keeps it in {dtype}",
            stacklevel=2,
        )
    state_dict = to_original_keys(read_state_dict(folder))
    with torch.device("meta"):  # shapes only: no memory, no random initialisation to pay for
        model = cls(**kwargs)
    check_state_dict(model, state_dict)
    model.load_state_dict(state_dict, strict=True, assign=True)
    model.lm_head.weight = model.backbone.embedding.weight  # tie again (assign gave each key its own tensor)
    for name, param in model.named_parameters():
        keep_fp32 = name.endswith(("mixer.A_log", "mixer.D"))
        param.data = param.data.to(torch.promote_types(dtype, torch.float32) if keep_fp32 else dtype)
    if device is not None:
        model.to(device)
    model.eval()
    if tokenizer:
        return model, load_tokenizer(folder)
    return model


def save_pretrained(model, directory):
    """Write ``model`` in the original layout: ``config.json`` + ``pytorch_model.bin``.  Lesson 4.

    The folder loads with :func:`from_pretrained` and with ``mamba_ssm``'s
    ``MambaLMHeadModel.from_pretrained``. Returns the folder as a ``pathlib.Path``.
    """
    directory = Path(directory)
    config = config_from_model(model)
    directory.mkdir(parents=True, exist_ok=True)
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}  # the tied pair shares storage
    torch.save(state_dict, directory / TORCH_WEIGHTS)
    (directory / CONFIG_NAME).write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")
    return directory


def load_tokenizer(path_or_name):
    """The ``tokenizers.Tokenizer`` of a checkpoint folder (its ``tokenizer.json``).

    The original ``state-spaces/mamba-*`` folders ship no tokenizer: they were trained with GPT-NeoX-20B's
    (``EleutherAI/gpt-neox-20b``), whose ``tokenizer.json`` the ``*-hf`` folders include.
    """
    folder = resolve_checkpoint(path_or_name)
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} has no tokenizer.json. The Mamba language models use GPT-NeoX-20B's tokenizer: use a "
            f"'-hf' checkpoint (e.g. state-spaces/mamba-130m-hf), which includes it, or copy the tokenizer.json "
            f"of EleutherAI/gpt-neox-20b into the folder"
        )
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ImportError("tokenizer=True needs the tokenizers package: pip install 'mamba-edu[hub]'") from None
    return Tokenizer.from_file(str(path))


class ByteTokenizer:
    """UTF-8 bytes as tokens (vocabulary 256), for a model without a tokenizer (lesson 4's untrained stand-in).

    Has the two methods of ``tokenizers.Tokenizer`` that :func:`generate_text` uses: ``encode(text).ids``
    and ``decode(ids)``.
    """

    vocab_size = 256

    def encode(self, text):
        data = text.encode("utf-8")
        return SimpleNamespace(ids=list(data), tokens=[bytes([b]).decode("latin-1") for b in data])

    def decode(self, ids):
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


def generate_text(model, prompt, tokenizer, max_new_tokens=32, **kwargs):
    """Continue ``prompt`` (a str, or a list of str of equal token length) and return the decoded text.

    The arguments of :meth:`MambaLM.generate_text <mamba_edu.mamba.model.MambaLM.generate_text>`, with the model first.

    Encodes with ``tokenizer`` (a ``tokenizers.Tokenizer``), runs ``model.generate(ids, max_new_tokens,
    **kwargs)`` and decodes prompt + continuation. Lesson 4.
    """
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise ValueError(f"prompt must be a non-empty str or a list of them, got {prompt!r}")
    ids = [tokenizer.encode(p).ids for p in prompts]
    if len({len(i) for i in ids}) != 1:
        raise ValueError(f"the prompts encode to different lengths {[len(i) for i in ids]}; generate one at a time")
    device = model.lm_head.weight.device
    out = model.generate(torch.tensor(ids, device=device), max_new_tokens, **kwargs)
    texts = [tokenizer.decode(row.tolist()) for row in out]
    return texts[0] if isinstance(prompt, str) else texts


# ---------------------------------------------------------------------------------------------------------
# looking inside: the learned A and the Δ a model gives each token
# ---------------------------------------------------------------------------------------------------------
def learned_A(model):
    """A = −exp(A_log) of every layer as a float64 numpy array, shape (n_layer, d_inner, d_state).

    At initialisation (S4D-Real) every row is −(1, 2, …, n); lesson 4 plots how far training moved it.
    """
    with torch.no_grad():
        return torch.stack([-torch.exp(layer.mixer.A_log.double().cpu()) for layer in model.backbone.layers]).numpy()


@torch.no_grad()
def delta_per_token(model, input_ids):
    """The step size Δ that every layer gives every token: softplus(dt_proj(x_proj(u)[:dt_rank])).  Lesson 4.

    Runs ``model(input_ids)`` once and reads each block's ``x_proj`` output (whose first ``dt_rank`` columns
    are Δ's low-rank input) with a forward hook.

    Parameters
    ----------
    model : MambaLM
    input_ids : LongTensor, shape (b, l)

    Returns
    -------
    delta : Tensor, shape (n_layer, b, l, d_inner), float32 or wider
    """
    captured, hooks = [], []
    for layer in model.backbone.layers:
        mixer = layer.mixer

        def hook(module, args, output, mixer=mixer):
            dt_low = output[..., : mixer.dt_rank]  # (b, l, dt_rank)
            dt = F.linear(dt_low, mixer.dt_proj.weight, mixer.dt_proj.bias)  # (b, l, d_inner)
            captured.append(F.softplus(dt.to(torch.promote_types(dt.dtype, torch.float32))))

        hooks.append(mixer.x_proj.register_forward_hook(hook))
    try:
        model(input_ids)
    finally:
        for h in hooks:
            h.remove()
    if len(captured) != len(model.backbone.layers):
        raise RuntimeError(f"expected one x_proj call per layer, got {len(captured)} for {model.n_layer} layers")
    return torch.stack(captured)


def timescale_summary(A):
    """Median of −A per layer and state index, shape (n_layer, d_state), and S4D-Real's 1…n, shape (d_state,)."""
    A = np.asarray(A, dtype=float)
    if A.ndim != 3:
        raise ValueError(f"A has shape {A.shape}, expected (n_layer, d_inner, d_state)")
    return np.median(-A, axis=1), np.arange(1, A.shape[-1] + 1, dtype=float)


__all__ = [
    "from_pretrained",
    "save_pretrained",
    "load_tokenizer",
    "generate_text",
    "ByteTokenizer",
    "find_checkpoint",
    "checkpoint_name",
    "resolve_checkpoint",
    "learned_A",
    "delta_per_token",
    "timescale_summary",
]
