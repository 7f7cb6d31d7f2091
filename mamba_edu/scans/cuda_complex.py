"""The selective scan with a complex A on the GPU: ``kernels/complex_scan.cu``, forward and backward.

Lesson 3's complex diagonal A (S4D-Lin's eigenvalues −1/2 + iπk, say) on torch CUDA tensors. The
kernel is the plain form of the scan: one thread per channel walks time in order with all its complex
states (no parallel scan), and the backward walks it back with the adjoint, replaying each stretch
of :data:`CHK` steps from a checkpoint the forward saved. :func:`mamba_edu.selective_scan` sends complex
A here when :func:`supports` holds; the arguments and the result are those of the reference.

The NaN/inf check is the reference's (one pass over the inputs on the GPU, then a wait), not fused
into the kernel as in v2.

Glossary: u input (b, d, l); delta Δ (b, d, l); A (d, n) complex; B, C (b, n, l), (b, g, n, l) — complex,
or real with last dimension 2l (interleaved re, im) — or fixed (d, n); D, delta_bias (d,); z gate (b, d, l);
h state (b, d, n) complex.
"""

import contextlib
import functools

CHK = 32  # steps between the forward's checkpoints: the backward replays one such stretch at a time
MAX_DSTATE = 64  # the kernel keeps n complex states (and, backward, four more arrays of n) per thread
THREADS = 128  # threads (channels) per block
FLAGS = {"D": 1, "z": 2, "delta_bias": 4, "softplus": 8, "last_state": 16, "checkpoint": 32}
_REAL = ("float32", "float16", "bfloat16")  # u, delta, z, D, delta_bias: converted to float32
_NAMES = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


def supports(args):
    """True when the kernel takes these arguments: torch CUDA tensors, a complex64 A (d, n) with n ≤ 64,
    u/delta/z/D/delta_bias in float32, float16 or bfloat16, B/C complex64 or float32. Never raises."""
    try:
        import torch

        return all(x is None or isinstance(x, torch.Tensor) and x.is_cuda for x in args) and _takes(args)
    except Exception:  # noqa: BLE001  (a question, not a check: anything odd goes to the reference)
        return False


def _takes(args):
    """:func:`supports` without the device: the dtypes and n the kernel is built for."""
    import torch

    A = args[2]
    if A.dtype != torch.complex64 or A.ndim != 2 or not 1 <= A.shape[1] <= MAX_DSTATE:
        return False
    real_ok = all(x is None or str(x.dtype)[6:] in _REAL for i, x in enumerate(args) if i in (0, 1, 5, 6, 7))
    return real_ok and all(x.dtype in (torch.complex64, torch.float32) for x in args[3:5])


def _layout(X, interleaved):
    """B or C as the kernel reads it: complex64, or float32 (re, im) pairs as given (last dimension 2l)."""
    import torch

    if interleaved:  # real (…, 2l): already (re, im) pairs
        return X.to(torch.float32).contiguous()
    return X.to(torch.complex64).contiguous()  # real values → complex (differentiable: the gradient's real part)


def _ptr(x):
    return 0 if x is None else x.data_ptr()


@functools.cache  # one class per process
def _function():
    import torch

    class SelectiveScanComplex(torch.autograd.Function):
        """torch.autograd.Function around complex_scan.cu's two kernels."""

        @staticmethod
        def forward(ctx, launch, flags, need_last, groups, *ins):
            u, A = ins[0], ins[2]
            b, d, l = u.shape
            n = A.shape[1]
            need_grad = any(ctx.needs_input_grad[4:])
            out = torch.empty_like(u)
            last = u.new_empty((b, d, n), dtype=torch.complex64) if need_last else None
            h_chk = u.new_empty((b, d, -(-l // CHK), n), dtype=torch.complex64) if need_grad else None
            flags |= (FLAGS["last_state"] if need_last else 0) | (FLAGS["checkpoint"] if need_grad else 0)
            ints = (b, d, l, *groups, flags)
            launch("complex_scan_fwd", n, -(-b * d // THREADS), [_ptr(x) for x in (*ins, out, last, h_chk)], ints)
            if need_grad:
                ctx.save_for_backward(*ins, h_chk)
            ctx.launch, ctx.flags, ctx.groups = launch, flags & ~(FLAGS["last_state"] | FLAGS["checkpoint"]), groups
            ctx.set_materialize_grads(False)
            return (out, last) if need_last else out

        @staticmethod
        def backward(ctx, dout, dlast=None):
            if torch.is_grad_enabled():
                raise RuntimeError("selective_scan on CUDA with a complex A: the kernel's backward cannot be "
                                   "differentiated again (create_graph=True); complex128 inputs take the reference")
            u, delta, A, B, C, D, z, delta_bias, h_chk = ctx.saved_tensors
            b, d, l = u.shape
            n = A.shape[1]
            dout = torch.zeros_like(u) if dout is None else dout.contiguous()
            dlast = None if dlast is None else dlast.contiguous()
            zeros = lambda x: None if x is None else torch.zeros_like(x)  # noqa: E731  (summed with atomicAdd)
            grads = [torch.empty_like(u), torch.empty_like(delta), zeros(A), zeros(B), zeros(C), zeros(D),
                     None if z is None else torch.empty_like(z), zeros(delta_bias)]
            h_seg = u.new_empty((b * d, CHK, n), dtype=torch.complex64)  # each thread's replay rows
            du, ddelta, dA, dB, dC, dD, dz, dbias = grads
            pointers = [_ptr(x) for x in (u, delta, A, B, C, D, z, delta_bias, dout, h_chk, h_seg,
                                          du, ddelta, dA, dB, dC, dD, dz, dbias, dlast)]
            flags = ctx.flags | (FLAGS["last_state"] if dlast is not None else 0)
            ctx.launch("complex_scan_bwd", n, -(-b * d // THREADS), pointers, (b, d, l, *ctx.groups, flags))
            return (None, None, None, None, *grads)

    return SelectiveScanComplex


def scan(args, delta_softplus, return_last_state, check, launch):
    """The selective scan of ``args`` (u, delta, A, B, C, D, z, delta_bias) with a complex A, on the kernel.

    Same result as :func:`mamba_edu.selective_scan` (out in u's dtype; last_state complex64). ``check``: the
    reference's NaN/inf check first. ``launch(name, n, blocks, pointers, ints)`` runs a kernel of
    ``complex_scan.cu`` (:func:`mamba_edu.scans.cuda._launch_complex` on the GPU; the CPU tests pass one
    that runs the .cu file compiled for the CPU).
    """
    import torch

    from mamba_edu.scans.checks import check_selective_scan_inputs

    shapes = check_selective_scan_inputs(*args, check_finite=check)
    if not _takes(args):
        kinds = ", ".join(f"{name} {x.dtype}" for name, x in zip(_NAMES, args) if x is not None)
        raise ValueError(f"A has shape {tuple(args[2].shape)}: the complex kernel takes a complex64 A (d, n) with "
                         f"n ≤ {MAX_DSTATE}, u, delta, z, D, delta_bias in float32, float16 or bfloat16 and B, C in "
                         f"complex64 or float32 (got {kinds}); mamba_edu.selective_scan takes any of them")
    u, delta, A, B, C, D, z, delta_bias = args
    f32 = lambda x: None if x is None else x.to(torch.float32).contiguous()  # noqa: E731
    ins = (f32(u), f32(delta), A.to(torch.complex64).contiguous(), _layout(B, shapes.B_interleaved),
           _layout(C, shapes.C_interleaved), f32(D), f32(z), f32(delta_bias))
    groups = (shapes.B_groups or 0, shapes.C_groups or 0)
    flags = sum(FLAGS[k] for k, x in (("D", D), ("z", z), ("delta_bias", delta_bias)) if x is not None)
    flags |= FLAGS["softplus"] if delta_softplus else 0
    on_device = torch.cuda.device(u.device) if u.is_cuda else contextlib.nullcontext()
    with on_device:  # the kernels are built and launched on the inputs' device (the backward's thread has it too)
        result = _function().apply(launch, flags, bool(return_last_state), groups, *ins)
    out = result[0] if return_last_state else result
    out = out.to(u.dtype)
    return (out, result[1]) if return_last_state else out
