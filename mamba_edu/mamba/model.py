"""A small Mamba language model, named like the official one so its ``state_dict`` keys match.  Lesson 4.

    input_ids (b, l) → embedding → [ h = h + MambaBlock(RMSNorm(h)) ] × n_layer → RMSNorm → lm_head → logits

State-dict keys, as in ``mamba_ssm.models.mixer_seq_simple.MambaLMHeadModel``::

    backbone.embedding.weight            (vocab, d_model)
    backbone.layers.{i}.norm.weight      (d_model,)
    backbone.layers.{i}.mixer.*          in_proj, conv1d, x_proj, dt_proj, A_log, D, out_proj
    backbone.norm_f.weight               (d_model,)
    lm_head.weight                       (vocab, d_model), tied to the embedding
"""

import math
from functools import partial

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mamba_edu._backend import positive_int
from mamba_edu.mamba.block import MambaBlock


class RMSNorm(nn.Module):
    """Root-mean-square normalisation: ``h / sqrt(mean(h²) + eps) · weight`` over the last axis.

    Computed in float32 or wider, returned in the input's dtype. Explained in lesson 4.
    """

    def __init__(self, d_model, eps=1e-5, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model, device=device, dtype=dtype))

    def forward(self, hidden_states):
        h = hidden_states.to(torch.promote_types(hidden_states.dtype, torch.float32))
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return (h * self.weight).to(hidden_states.dtype)


class ResidualBlock(nn.Module):
    """Pre-norm residual: ``h + mixer(norm(h))`` (the official ``Block`` with no MLP)."""

    def __init__(self, d_model, mixer_cls, norm_epsilon=1e-5):
        super().__init__()
        self.norm = RMSNorm(d_model, eps=norm_epsilon)
        self.mixer = mixer_cls(d_model)

    def forward(self, hidden_states, cache=None):
        conv_state, ssm_state = cache if cache is not None else (None, None)
        if cache is None:
            return hidden_states + self.mixer(self.norm(hidden_states))
        return hidden_states + self.mixer(self.norm(hidden_states), conv_state, ssm_state)

    def step(self, hidden_states, cache):
        out, *_ = self.mixer.step(self.norm(hidden_states), *cache)
        return hidden_states + out


class MixerModel(nn.Module):
    """The backbone: embedding, residual blocks, final RMSNorm (official name ``MixerModel``)."""

    def __init__(self, vocab_size, d_model, n_layer, mixer_cls, norm_epsilon=1e-5):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.layers = nn.ModuleList(ResidualBlock(d_model, mixer_cls, norm_epsilon) for _ in range(n_layer))
        self.norm_f = RMSNorm(d_model, eps=norm_epsilon)

    def forward(self, input_ids, caches=None):
        h = self.embedding(input_ids)  # (b, l, d_model)
        for i, layer in enumerate(self.layers):
            h = layer(h, None if caches is None else caches[i])
        return self.norm_f(h)


def _init_weights(module, n_layer, initializer_range=0.02):
    """The official initialisation (GPT-2 style): zero Linear biases (except dt_proj's), embedding
    N(0, 0.02²), and each block's out_proj re-drawn as PyTorch's default then scaled by 1/√n_layer."""
    if isinstance(module, nn.Linear) and module.bias is not None:
        if not getattr(module.bias, "_no_reinit", False):
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=initializer_range)
    out_proj = getattr(module, "out_proj", None)
    if isinstance(out_proj, nn.Linear):
        nn.init.kaiming_uniform_(out_proj.weight, a=math.sqrt(5))  # PyTorch's default Linear init
        with torch.no_grad():
            out_proj.weight /= math.sqrt(n_layer)  # one residual branch per layer


class MambaLM(nn.Module):
    """A Mamba language model with tied input/output embeddings.

    Parameters
    ----------
    vocab_size, d_model, n_layer : int
        Vocabulary size, width of the residual stream, number of blocks.
    d_state, d_conv, expand : int
        Passed to each block (see :class:`~mamba_edu.mamba.block.MambaBlock`).
    block_cls : type, default MambaBlock
        The mixer of each residual block, built as ``block_cls(d_model, d_state=, d_conv=,
        expand=, **block_kwargs)``. It must provide ``forward(hidden_states)``; for cached
        generation also ``allocate_inference_cache`` and ``step`` as MambaBlock does (and
        ``forward(hidden_states, conv_state, ssm_state)``). Use it for ablations (e.g. an LTI mixer).
    pad_vocab_size_multiple : int, default 1
        Round the vocabulary up to a multiple of this (official checkpoints use 8).
    norm_epsilon : float, default 1e-5
    **block_kwargs
        More keyword arguments for ``block_cls`` (dt_rank, dt_min, …).

    Explained in lesson 4.
    """

    def __init__(
        self,
        vocab_size,
        d_model,
        n_layer,
        d_state=16,
        d_conv=4,
        expand=2,
        *,
        block_cls=MambaBlock,
        pad_vocab_size_multiple=1,
        norm_epsilon=1e-5,
        **block_kwargs,
    ):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("n_layer", n_layer), ("d_model", d_model)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if vocab_size % pad_vocab_size_multiple:
            vocab_size += pad_vocab_size_multiple - vocab_size % pad_vocab_size_multiple
        self.vocab_size, self.d_model, self.n_layer = vocab_size, d_model, n_layer
        mixer_cls = partial(block_cls, d_state=d_state, d_conv=d_conv, expand=expand, **block_kwargs)
        self.backbone = MixerModel(vocab_size, d_model, n_layer, mixer_cls, norm_epsilon)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(partial(_init_weights, n_layer=n_layer))
        self.lm_head.weight = self.backbone.embedding.weight  # tied

    def _check_ids(self, input_ids):
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
            got = getattr(input_ids, "dtype", type(input_ids).__name__)
            raise ValueError(f"input_ids must be an int64/int32 tensor, got {got}")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= self.vocab_size):
            raise ValueError(
                f"input_ids must lie in [0, {self.vocab_size}), got min {int(input_ids.min())}, "
                f"max {int(input_ids.max())}"
            )

    def forward(self, input_ids):
        """Logits for every position.

        Parameters
        ----------
        input_ids : LongTensor, shape (b, l)

        Returns
        -------
        Tensor, shape (b, l, vocab_size)
        """
        self._check_ids(input_ids)
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}, expected (b, l)")
        return self.lm_head(self.backbone(input_ids))

    def allocate_inference_cache(self, batch_size, max_seqlen=1, dtype=None):
        """One (conv_state, ssm_state) per layer, for :meth:`step`."""
        layers = self.backbone.layers
        return [layer.mixer.allocate_inference_cache(batch_size, max_seqlen, dtype=dtype) for layer in layers]

    @classmethod
    def from_pretrained(cls, path_or_name, dtype=None, device=None, tokenizer=False):
        """A released Mamba checkpoint (original or transformers layout, local folder or hub name).

        See :func:`mamba_edu.mamba.pretrained.from_pretrained`; returns ``(model, tokenizer)`` when
        ``tokenizer=True``. Explained in lesson 4 ("A real Mamba").
        """
        from mamba_edu.mamba.pretrained import from_pretrained

        return from_pretrained(cls, path_or_name, dtype=dtype, device=device, tokenizer=tokenizer)

    def save_pretrained(self, directory):
        """Write ``config.json`` + ``pytorch_model.bin`` in the original Mamba layout; returns the folder."""
        from mamba_edu.mamba.pretrained import save_pretrained

        return save_pretrained(self, directory)

    def generate_text(self, prompt, tokenizer, max_new_tokens=32, **kwargs):
        """:meth:`generate` on text: encode ``prompt`` with ``tokenizer``, continue it, decode (prompt included)."""
        from mamba_edu.mamba.pretrained import generate_text

        return generate_text(self, prompt, tokenizer, max_new_tokens, **kwargs)

    def step(self, input_ids, caches):
        """Logits (b, vocab_size) for one new token per sequence, input_ids (b,); updates ``caches``."""
        h = self.backbone.embedding(input_ids)[:, None, :]  # (b, 1, d_model)
        for layer, cache in zip(self.backbone.layers, caches):
            h = layer.step(h, cache)
        return self.lm_head(self.backbone.norm_f(h))[:, 0]

    @torch.no_grad()
    def generate(self, input_ids, max_new_tokens, temperature=0.0, top_k=None, generator=None):
        """Continue ``input_ids`` (b, l) by ``max_new_tokens`` tokens, using the recurrent caches.

        The prompt goes through :meth:`forward` once (filling the caches), then each new token
        costs one :meth:`step`: O(1) per token, however long the text. ``temperature=0`` is greedy
        (argmax); otherwise sample from softmax(logits / temperature), optionally among the
        ``top_k`` most likely tokens, with ``generator`` as the randomness.

        Returns
        -------
        LongTensor, shape (b, l + max_new_tokens)

        Raises
        ------
        ValueError
            ``max_new_tokens`` not a whole number ≥ 0; ``temperature`` not a finite number ≥ 0;
            ``top_k`` not a whole number ≥ 1 (or None); bad ``input_ids``.
        """
        self._check_ids(input_ids)
        if input_ids.ndim != 2 or input_ids.shape[1] < 1:
            raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}, expected (b, l) with l ≥ 1")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be a whole number ≥ 0, got {max_new_tokens!r}")
        max_new_tokens = int(max_new_tokens)
        try:
            if isinstance(temperature, (bool, str, bytes)):
                raise TypeError
            temperature = float(temperature)  # also a 0-d tensor or numpy scalar
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"temperature must be a number ≥ 0 (0 = greedy), got {temperature!r}") from None
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be a finite number ≥ 0 (0 = greedy), got {temperature!r}")
        if top_k is not None:
            top_k = positive_int("top_k", top_k, "or None for all tokens")
        caches = self.allocate_inference_cache(input_ids.shape[0], input_ids.shape[1] + max_new_tokens)
        logits = self.lm_head(self.backbone(input_ids, caches))[:, -1]  # (b, vocab)
        out = [input_ids]
        for i in range(max_new_tokens):
            if temperature == 0:
                token = logits.argmax(-1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                token = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)[:, 0]
            out.append(token[:, None])
            if i + 1 < max_new_tokens:
                logits = self.step(token, caches)
        return torch.cat(out, dim=1)

    def load_weights(self, path, strict=True):
        """Load a state dict saved with ``torch.save`` (safely: ``weights_only=True``).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ValueError
            The file is not a torch checkpoint (text, a zip of something else, a pickled object that
            ``weights_only`` refuses) or holds no state dict of tensors; the message names the file.
        """
        try:
            state_dict = torch.load(path, map_location=self.lm_head.weight.device, weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError… for non-checkpoints
            raise ValueError(f"{path} is not a model checkpoint saved with torch.save(model.state_dict(), path) "
                             f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from error
        if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
            raise ValueError(f"{path} holds a {type(state_dict).__name__}, not a state dict (names → tensors): "
                             "save it with torch.save(model.state_dict(), path)")
        return self.load_state_dict(state_dict, strict=strict)
