"""The Mamba block, with the official module's parameter names, shapes and initialisation.  Lesson 4.

One homogeneous block (Gu & Dao 2023, Fig. 3), not "LayerNorm → SSM → LayerNorm → MLP"::

    hidden ─ in_proj ─┬─ u ─ causal depthwise conv1d ─ SiLU ─┬─ selective SSM ─ ⊙ ─ out_proj
    (b, l, d_model)   │  (b, d, l)                           └ x_proj → Δ, B, C   │
                      └─ z ─────────────────── SiLU(z) ───────────────────────────┘

with d = d_inner = expand · d_model channels, each keeping its own (d_state,) state: the
state of a block is (b, d_inner, d_state), never collapsed. (The official code calls the
conv branch ``x``; here it is ``u``, the SSM's input, and ``x`` is never a state.)
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from mamba_edu.scans.selective import selective_scan


def _fp32_or_wider(t):
    """The official code runs A, D and the Δ bias in float32; keep float64 when the module is float64."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _check_tensor(hidden_states, weight):
    """A ValueError naming ``hidden_states`` unless it is a tensor the weights can multiply (same dtype;
    under autocast torch converts it itself) — instead of torch's "expected m1 and m2 to have the same dtype"."""
    if not isinstance(hidden_states, torch.Tensor):
        raise ValueError(f"hidden_states must be a torch tensor, got {type(hidden_states).__name__}")
    if hidden_states.dtype != weight.dtype and not torch.is_autocast_enabled(hidden_states.device.type):
        floating = hidden_states.is_floating_point()
        convert_block = f", or convert the block with .to({hidden_states.dtype})" if floating else ""
        raise ValueError(f"hidden_states has dtype {hidden_states.dtype} but the block's weights are {weight.dtype}: "
                         f"pass hidden_states.to({weight.dtype}){convert_block}")


class MambaBlock(nn.Module):
    """The Mamba mixer block (official ``mamba_ssm.modules.mamba_simple.Mamba``, pure PyTorch).

    Parameters
    ----------
    d_model : int
        Width of the residual stream.
    d_state : int, default 16
        State size n per channel.
    d_conv : int, default 4
        Width of the causal depthwise convolution.
    expand : int, default 2
        d_inner = expand · d_model channels.
    dt_rank : int or "auto", default "auto"
        Rank of the Δ projection; "auto" is ⌈d_model / 16⌉.
    dt_min, dt_max, dt_init_floor : float
        softplus(dt_proj.bias) starts log-uniform in [dt_min, dt_max], floored at dt_init_floor.
    dt_init : {"random", "constant"}, dt_scale : float
        dt_proj.weight ~ U(±dt_rank^-0.5·dt_scale), or that constant.
    conv_bias, bias : bool
        Bias in the convolution; bias in in_proj/out_proj.
    device, dtype : optional
        Passed to the parameters (A_log and D stay float32, as in the official code).

    Attributes
    ----------
    in_proj : Linear(d_model → 2·d_inner);  conv1d : Conv1d(d_inner, groups=d_inner, kernel d_conv)
    x_proj : Linear(d_inner → dt_rank + 2·d_state, no bias);  dt_proj : Linear(dt_rank → d_inner)
    A_log : (d_inner, d_state), A = −exp(A_log) (S4D-real: A[:, k] = −(k+1));  D : (d_inner,) ones
    out_proj : Linear(d_inner → d_model)

    Explained in lesson 4.
    """

    def __init__(
        self,
        d_model,
        d_state=16,
        d_conv=4,
        expand=2,
        dt_rank="auto",
        dt_min=0.001,
        dt_max=0.1,
        dt_init="random",
        dt_scale=1.0,
        dt_init_floor=1e-4,
        conv_bias=True,
        bias=False,
        device=None,
        dtype=None,
    ):
        super().__init__()
        sizes = {"d_model": d_model, "d_state": d_state, "d_conv": d_conv, "expand": expand}
        for name, value in sizes.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not 0 < dt_min <= dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got dt_min={dt_min}, dt_max={dt_max}")
        if dt_init not in ("random", "constant"):
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        factory = {"device": device, "dtype": dtype}
        self.d_model, self.d_state, self.d_conv, self.expand = d_model, d_state, d_conv, expand
        self.d_inner = expand * d_model
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        if not isinstance(self.dt_rank, int) or self.dt_rank < 1:
            raise ValueError(f"dt_rank must be 'auto' or a positive int, got {dt_rank!r}")
        d_inner = self.d_inner

        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=bias, **factory)
        self.conv1d = nn.Conv1d(
            d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1, bias=conv_bias, **factory
        )  # depthwise (one filter per channel); the padding is cut back to causal in forward
        self._init_ssm_inputs(factory)  # x_proj here; the LTI ablation makes fixed B, C instead
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True, **factory)

        # Δ projection: weights that keep the variance, a bias so that softplus(bias) ∈ [dt_min, dt_max]
        dt_init_std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, dt_init_std)
        else:
            nn.init.uniform_(self.dt_proj.weight, -dt_init_std, dt_init_std)
        log_dt = torch.rand(d_inner, device=device) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = torch.exp(log_dt).clamp(min=dt_init_floor)
        inv_softplus_dt = dt + torch.log(-torch.expm1(-dt))  # softplus⁻¹(dt) = log(e^dt − 1), computed stably
        with torch.no_grad():
            self.dt_proj.bias.copy_(inv_softplus_dt)
        self.dt_proj.bias._no_reinit = True  # MambaLM's init zeroes Linear biases, but not this one

        # S4D-real initialisation: A[:, k] = −(k + 1), stored as A_log = log(k + 1) in float32
        A = torch.arange(1, d_state + 1, dtype=torch.float32, device=device).repeat(d_inner, 1)
        self.A_log = nn.Parameter(torch.log(A))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(d_inner, device=device))  # skip connection, float32
        self.D._no_weight_decay = True

        self.out_proj = nn.Linear(d_inner, d_model, bias=bias, **factory)

    def _init_ssm_inputs(self, factory):
        """x_proj: the input-dependent Δ (rank dt_rank), B and C (d_state each) from the conv output."""
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * self.d_state, bias=False, **factory)

    def _delta_B_C(self, u):
        """x_proj of the conv output u (..., d_inner) → Δ (..., d_inner) before its bias, B, C (..., n)."""
        dt_low, B, C = torch.split(self.x_proj(u), [self.dt_rank, self.d_state, self.d_state], dim=-1)
        return F.linear(dt_low, self.dt_proj.weight), B, C  # dt_proj's bias goes in as delta_bias

    def forward(self, hidden_states, conv_state=None, ssm_state=None):
        """Run the block on a whole sequence.

        Parameters
        ----------
        hidden_states : Tensor, shape (b, l, d_model)
        conv_state, ssm_state : Tensor, optional
            Caches from :meth:`allocate_inference_cache`; when given they are overwritten with
            the states after the last token, so that :meth:`step` can continue the sequence.

        Returns
        -------
        Tensor, shape (b, l, d_model)
        """
        _check_tensor(hidden_states, self.in_proj.weight)
        if hidden_states.ndim != 3 or hidden_states.shape[-1] != self.d_model or hidden_states.shape[1] < 1:
            raise ValueError(
                f"hidden_states has shape {tuple(hidden_states.shape)}, expected (b, l, {self.d_model}) with l ≥ 1"
            )
        l = hidden_states.shape[1]
        u, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # each (b, d_inner, l)
        if conv_state is not None:  # the last d_conv inputs of the convolution (zero-padded on the left)
            conv_state.copy_(F.pad(u, (self.d_conv - l, 0)))
        u = F.silu(self.conv1d(u)[..., :l])  # causal: drop the right padding

        y = self.ssm(u, z, ssm_state)  # (b, d_inner, l)
        return self.out_proj(y.transpose(1, 2))  # (b, l, d_model)

    def ssm(self, u, z, ssm_state=None):
        """The seam: the SSM of the block on a whole sequence, with the D skip and the SiLU(z) gate.

        Parameters
        ----------
        u : Tensor, shape (b, d_inner, l)
            The conv branch after SiLU: the SSM's input.
        z : Tensor, shape (b, d_inner, l)
            The gate branch.
        ssm_state : Tensor, shape (b, d_inner, d_state), optional
            Overwritten with the state after the last token.

        Returns
        -------
        Tensor, shape (b, d_inner, l): (SSM(u) + D·u) · SiLU(z). Here the selective scan, Δ, B, C from ``x_proj``.
        """
        delta, B, C = self._delta_B_C(u.transpose(1, 2))  # (b, l, d_inner), (b, l, n), (b, l, n)
        A = -torch.exp(_fp32_or_wider(self.A_log))  # (d_inner, n)
        y = selective_scan(
            u,
            delta.transpose(1, 2),
            A,
            B.transpose(1, 2),
            C.transpose(1, 2),
            _fp32_or_wider(self.D),
            z=z,
            delta_bias=_fp32_or_wider(self.dt_proj.bias),
            delta_softplus=True,
            return_last_state=ssm_state is not None,
        )
        if ssm_state is not None:
            y, last_state = y
            ssm_state.copy_(last_state)
        return y

    def allocate_inference_cache(self, batch_size, max_seqlen, dtype=None):
        """Zero caches for :meth:`step`: conv_state (b, d_inner, d_conv), ssm_state (b, d_inner, d_state).

        ``max_seqlen`` is unused (the caches do not grow with the sequence: that is the point).
        """
        device = self.out_proj.weight.device
        conv_state = torch.zeros(
            batch_size, self.d_inner, self.d_conv, device=device, dtype=dtype or self.conv1d.weight.dtype
        )
        ssm_state = torch.zeros(
            batch_size, self.d_inner, self.d_state, device=device, dtype=dtype or self.dt_proj.weight.dtype
        )
        return conv_state, ssm_state

    def step(self, hidden_states, conv_state, ssm_state):
        """One token of recurrent inference: O(1) work and memory per token.

        Parameters
        ----------
        hidden_states : Tensor, shape (b, 1, d_model)
        conv_state : Tensor, shape (b, d_inner, d_conv), updated in place
        ssm_state : Tensor, shape (b, d_inner, d_state), updated in place

        Returns
        -------
        (out (b, 1, d_model), conv_state, ssm_state)
        """
        _check_tensor(hidden_states, self.in_proj.weight)
        if hidden_states.ndim != 3 or hidden_states.shape[1:] != (1, self.d_model):
            raise ValueError(
                f"hidden_states has shape {tuple(hidden_states.shape)}, expected (b, 1, {self.d_model})"
            )
        b = hidden_states.shape[0]
        for name, state, want in (
            ("conv_state", conv_state, (b, self.d_inner, self.d_conv)),
            ("ssm_state", ssm_state, (b, self.d_inner, self.d_state)),
        ):
            if tuple(state.shape) != want:
                raise ValueError(f"{name} has shape {tuple(state.shape)}, expected {want}")
        u, z = self.in_proj(hidden_states.squeeze(1)).chunk(2, dim=-1)  # (b, d_inner) each

        # convolution over the last d_conv inputs: shift the window left, append the new input
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[:, :, -1] = u
        u = (conv_state * self.conv1d.weight.squeeze(1)).sum(-1)  # (b, d_inner)
        if self.conv1d.bias is not None:
            u = u + self.conv1d.bias
        u = F.silu(u).to(hidden_states.dtype)

        y = self.ssm_step(u, z, ssm_state)  # (b, d_inner)
        return self.out_proj(y).unsqueeze(1), conv_state, ssm_state

    def ssm_step(self, u, z, ssm_state):
        """The seam for one token: u, z (b, d_inner) → (SSM(u) + D·u)·SiLU(z) (b, d_inner); ssm_state updated in place.

        The same equations as the scan, for one t.
        """
        dtype = u.dtype
        delta, B, C = self._delta_B_C(u)  # (b, d_inner), (b, n), (b, n)
        delta = F.softplus(delta + _fp32_or_wider(self.dt_proj.bias))
        A = -torch.exp(_fp32_or_wider(self.A_log))  # (d_inner, n)
        A_bar = torch.exp(delta[:, :, None] * A)  # (b, d_inner, n)
        B_bar = delta[:, :, None] * B[:, None, :]  # (b, d_inner, n)
        ssm_state.copy_(A_bar * ssm_state + B_bar * u[:, :, None])
        y = (ssm_state.to(dtype) * C[:, None, :]).sum(-1) + self.D.to(dtype) * u  # (b, d_inner)
        return y * F.silu(z)
