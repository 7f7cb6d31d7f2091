"""The LTI ablation of the Mamba block: the same network, but Δ, B, C do not depend on the input.

Explained in lesson 5. Everything else is the selective block's (in_proj, the causal conv, SiLU,
A = −exp(A_log) with the S4D-real init, D, the SiLU(z) gate, out_proj); only ``x_proj`` is gone:
each channel has one learned step size Δ = softplus(dt_proj.bias) and fixed vectors B, C (d, n),
as in S4D. It is then a time-invariant system that keeps the Mamba block's conv1d and SiLU(z) gate:
the row "Mamba architecture + S4 layer" of the paper's Table 1 (selective copying, 56.4 %), not its
bare "S4, no gate" row (18.3 %). It runs as a convolution (lesson 3) instead of a scan.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from mamba_edu.mamba.block import MambaBlock, _fp32_or_wider


class LTIMambaBlock(MambaBlock):
    """A Mamba block whose SSM is time-invariant (Table 1's "Mamba architecture + S4 layer").

    Same constructor as :class:`~mamba_edu.mamba.block.MambaBlock`. Parameters as there, except:
    no ``x_proj``; ``dt_proj`` keeps only its bias (Δ per channel, initialised in [dt_min, dt_max]);
    ``B_lti`` (d_inner, d_state) = 1 and ``C_lti`` (d_inner, d_state) ~ N(0, 1/d_state), as in S4D.

    Explained in lesson 5.
    """

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, **kwargs):
        super().__init__(d_model, d_state=d_state, d_conv=d_conv, expand=expand, **kwargs)
        del self.x_proj
        self.dt_proj.weight.requires_grad_(False)  # unused: Δ does not depend on the input
        factory = {"device": self.out_proj.weight.device}
        self.B_lti = nn.Parameter(torch.ones(self.d_inner, d_state, **factory))
        self.C_lti = nn.Parameter(torch.randn(self.d_inner, d_state, **factory) * d_state**-0.5)

    def ssm_kernel(self, l):
        """The convolution kernel K[k] = Σ_n C_n · exp(k Δ A_n) · Δ B_n, k = 0 … l − 1, shape (d_inner, l).

        The same numbers the selective scan would produce with constant Δ, B, C (lesson 3: an LTI
        recurrence is a convolution). exp(kΔA) ≤ 1 for A < 0, so it cannot overflow.
        """
        delta = F.softplus(_fp32_or_wider(self.dt_proj.bias))[:, None]  # (d_inner, 1)
        A = -torch.exp(_fp32_or_wider(self.A_log))  # (d_inner, n)
        k = torch.arange(l, device=A.device, dtype=A.dtype)
        powers = torch.exp((delta * A)[:, :, None] * k)  # Ā^k: (d_inner, n, l)
        return torch.einsum("dn,dnk->dk", self.C_lti * delta * self.B_lti, powers)

    def forward(self, hidden_states):
        """hidden_states (b, l, d_model) → (b, l, d_model), like the selective block's forward.

        The LTI SSM runs as a causal convolution with :meth:`ssm_kernel` (by FFT, O(l log l)), the
        fast way for a time-invariant system; the selective block has no such shortcut.
        """
        if hidden_states.ndim != 3 or hidden_states.shape[-1] != self.d_model:
            raise ValueError(
                f"hidden_states has shape {tuple(hidden_states.shape)}, expected (b, l, {self.d_model})"
            )
        l = hidden_states.shape[1]
        u, z = self.in_proj(hidden_states).transpose(1, 2).chunk(2, dim=1)  # each (b, d_inner, l)
        u = F.silu(self.conv1d(u)[..., :l])
        K = self.ssm_kernel(l)  # (d_inner, l)
        n_fft = 2 * l  # zero-padding makes the circular FFT convolution causal
        y = torch.fft.irfft(torch.fft.rfft(u, n=n_fft) * torch.fft.rfft(K, n=n_fft), n=n_fft)[..., :l]
        y = (y + _fp32_or_wider(self.D)[:, None] * u) * F.silu(z)
        return self.out_proj(y.to(u.dtype).transpose(1, 2))

    def step(self, hidden_states, conv_state, ssm_state):
        """One token of recurrent inference (see :meth:`MambaBlock.step`), with the fixed Δ, B, C."""
        if hidden_states.ndim != 3 or hidden_states.shape[1:] != (1, self.d_model):
            raise ValueError(f"hidden_states has shape {tuple(hidden_states.shape)}, expected (b, 1, {self.d_model})")
        u, z = self.in_proj(hidden_states.squeeze(1)).chunk(2, dim=-1)  # (b, d_inner)
        conv_state.copy_(torch.roll(conv_state, shifts=-1, dims=-1))
        conv_state[:, :, -1] = u
        u = (conv_state * self.conv1d.weight.squeeze(1)).sum(-1)
        if self.conv1d.bias is not None:
            u = u + self.conv1d.bias
        u = F.silu(u)
        delta = F.softplus(self.dt_proj.bias)[:, None]  # (d_inner, 1)
        A = -torch.exp(_fp32_or_wider(self.A_log))
        ssm_state.copy_(torch.exp(delta * A) * ssm_state + (delta * self.B_lti) * u[:, :, None])
        y = (ssm_state * self.C_lti).sum(-1) + self.D * u
        return self.out_proj(y * F.silu(z)).unsqueeze(1), conv_state, ssm_state
