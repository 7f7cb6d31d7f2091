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
    Only the block's two SSM seams (:meth:`ssm`, :meth:`ssm_step`) differ; ``forward`` and ``step`` are the
    selective block's.

    Explained in lesson 5.
    """

    def _init_ssm_inputs(self, factory):
        """Fixed B, C per channel instead of x_proj (no input-dependent Δ, B, C)."""
        self.B_lti = nn.Parameter(torch.ones(self.d_inner, self.d_state, **factory))
        self.C_lti = nn.Parameter(torch.randn(self.d_inner, self.d_state, **factory) * self.d_state**-0.5)

    def __init__(self, d_model, d_state=16, d_conv=4, expand=2, **kwargs):
        super().__init__(d_model, d_state=d_state, d_conv=d_conv, expand=expand, **kwargs)
        self.dt_proj.weight.requires_grad_(False)  # unused: Δ does not depend on the input

    def _delta_A(self):
        """Δ = softplus(dt_proj.bias) (d_inner, 1) and A = −exp(A_log) (d_inner, n), in float32 or wider."""
        delta = F.softplus(_fp32_or_wider(self.dt_proj.bias))[:, None]
        return delta, -torch.exp(_fp32_or_wider(self.A_log))

    def ssm_kernel(self, l):
        """The convolution kernel K[k] = Σ_n C_n · exp(k Δ A_n) · Δ B_n, k = 0 … l − 1, shape (d_inner, l).

        The same numbers the selective scan would produce with constant Δ, B, C (lesson 3: an LTI
        recurrence is a convolution). exp(kΔA) ≤ 1 for A < 0, so it cannot overflow.
        """
        return self._kernel_parts(l)[0]

    def _kernel_parts(self, l):
        """K (d_inner, l) with what it is made of: Ā^k = exp(kΔA) (d_inner, n, l) and B̄ = ΔB (d_inner, n)."""
        delta, A = self._delta_A()
        k = torch.arange(l, device=A.device, dtype=A.dtype)
        powers = torch.exp((delta * A)[:, :, None] * k)
        B_bar = delta * self.B_lti
        return torch.einsum("dn,dnk->dk", self.C_lti * B_bar, powers), powers, B_bar

    def ssm(self, u, z, ssm_state=None):
        """The LTI SSM on a whole sequence as a causal convolution with :meth:`ssm_kernel` (FFT, O(l log l)).

        The fast way for a time-invariant system; the selective block has no such shortcut. With ``ssm_state``
        the last state h_{l−1} = Σ_k Ā^{l−1−k} B̄ u_k (b, d_inner, d_state) is written there, so that
        :meth:`ssm_step` continues the sequence.
        """
        l = u.shape[-1]
        uf = _fp32_or_wider(u)
        K, powers, B_bar = self._kernel_parts(l)  # (d_inner, l), (d_inner, n, l), (d_inner, n)
        n_fft = 2 * l  # zero-padding makes the circular FFT convolution causal
        y = torch.fft.irfft(torch.fft.rfft(uf, n=n_fft) * torch.fft.rfft(K, n=n_fft), n=n_fft)[..., :l]
        if ssm_state is not None:
            ssm_state.copy_(torch.einsum("dnk,bdk->bdn", powers.flip(-1) * B_bar[:, :, None], uf))
        y = (y + _fp32_or_wider(self.D)[:, None] * uf) * F.silu(_fp32_or_wider(z))
        return y.to(u.dtype)

    def ssm_step(self, u, z, ssm_state):
        """One token of the LTI SSM with the fixed Δ, B, C (see :meth:`MambaBlock.ssm_step`)."""
        delta, A = self._delta_A()
        uf = _fp32_or_wider(u)
        ssm_state.copy_(torch.exp(delta * A) * ssm_state + (delta * self.B_lti) * uf[:, :, None])
        y = (ssm_state * self.C_lti).sum(-1) + _fp32_or_wider(self.D) * uf
        return (y * F.silu(_fp32_or_wider(z))).to(u.dtype)
