"""mamba_edu — an interactive, tested course on state space models.

``import mamba_edu as me`` gives the reference implementations that the lessons explain.
Each name is loaded on first use, so ``import mamba_edu`` stays fast and never imports
torch, CuPy or the GPU code until you ask for them.

Notation (the one glossary is ``docs/notation.md``)
---------------------------------------------------
==========  =============================================================
``u``       input sequence / signal (never ``x`` for the state)
``h``       hidden state;  ``y`` output
``A B C D`` state, input, output and skip (feed-through) matrices
``delta``   step size Δ;  ``A_bar``, ``B_bar``: discretized Ā, B̄
``b``       batch size;  ``l``: sequence length
``d``       channels (``d_inner`` in a Mamba block);  ``n``: state size (``d_state``)
==========  =============================================================

Public API (lesson that explains it)
------------------------------------
1. :class:`ContinuousSSM`
2. :func:`discretize`, :func:`discretize_diag`
3. :func:`s4d_lin`, :func:`s4d_inv`, :func:`s4d_real`, :func:`hippo_legs`,
   :func:`ssm_kernel`, :func:`lti_scan`, :func:`causal_conv`
4. :func:`selective_scan`, :class:`MambaBlock`, :class:`MambaLM`
5. the synthetic tasks and what a trained model does inside: :mod:`mamba_edu.experiments`
6. :func:`scan` (and the fused CPU kernel behind :func:`selective_scan`)
7. :func:`selective_scan_cupy`
8. :func:`ssd_scan`, :func:`ssd_matrix` (Mamba-2's state space duality)
all. :func:`mamba_edu.exercises.predict`: commit a prediction before the cell that reveals it

Explorers (one per lesson) live in :mod:`mamba_edu.widgets`.
"""

from mamba_edu._lazy import lazy_getattr

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily, PEP 562)
_API = {
    "ContinuousSSM": "mamba_edu.lti",
    "discretize": "mamba_edu.discretization",
    "discretize_diag": "mamba_edu.discretization",
    "s4d_lin": "mamba_edu.diagonal",
    "s4d_inv": "mamba_edu.diagonal",
    "s4d_real": "mamba_edu.diagonal",
    "hippo_legs": "mamba_edu.diagonal",
    "ssm_kernel": "mamba_edu.convolution",
    "lti_scan": "mamba_edu.convolution",
    "causal_conv": "mamba_edu.convolution",
    "selective_scan": "mamba_edu.scans.selective",
    "MambaBlock": "mamba_edu.mamba.block",
    "MambaLM": "mamba_edu.mamba.model",
    "scan": "mamba_edu.scans.parallel",
    "selective_scan_cupy": "mamba_edu.scans.cuda",
    "ssd_scan": "mamba_edu.scans.ssd",
    "ssd_matrix": "mamba_edu.scans.ssd",
}

__all__ = list(_API)


__getattr__ = lazy_getattr(__name__, _API)


def __dir__():
    return sorted(set(globals()) | set(__all__))
