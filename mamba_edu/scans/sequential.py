"""The sequential scan: the first-order linear recurrence h[t] = a[t]·h[t−1] + b[t], one step at a time.

Explained in lesson 6. This is the reference every parallel scan must reproduce: l steps, each
depending on the one before, so its *depth* (the number of steps that must wait for each other)
is l − 1, however many processors you have.

Glossary: a, b (..., l) — the decay and the input of each step (in Mamba a = exp(Δ·A),
b = Δ·B·u); h (..., l) — the state after each step; h0 (...) — the state before step 0.
"""


import numpy as np

from mamba_edu._backend import is_torch


def sequential_scan(a, b, h0=None):
    """h[t] = a[t]·h[t−1] + b[t] along the last axis, with h[−1] = h0 (0 if omitted).

    Inputs are assumed already checked and broadcast (use :func:`mamba_edu.scan`, which
    checks them and then calls this for ``method="sequential"``).

    Parameters
    ----------
    a, b : ndarray or torch.Tensor, shape (..., l)
        Decay and input of each step, same shape, dtype and (for torch) device.
    h0 : ndarray or torch.Tensor, shape (...), optional
        Initial state, broadcastable to ``a.shape[:-1]``.

    Returns
    -------
    h : same type as ``a``, shape (..., l)
        All states. For torch the steps are stacked (not written in place), so gradients flow.

    Explained in lesson 6.
    """
    l = a.shape[-1]
    if is_torch(a):
        import torch

        h = torch.zeros_like(a[..., 0]) if h0 is None else h0 + torch.zeros_like(a[..., 0])
        states = []
        for t in range(l):
            h = a[..., t] * h + b[..., t]
            states.append(h)
        return torch.stack(states, dim=-1) if states else a.clone()
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=np.result_type(a, b))
    h = np.zeros(out.shape[:-1], dtype=out.dtype) if h0 is None else h0
    for t in range(l):
        h = a[..., t] * h + b[..., t]
        out[..., t] = h
    return out
