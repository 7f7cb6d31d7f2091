"""Mamba-2's SSD forward on a CUDA GPU: five fused CuPy RawKernels on tensor cores.  Explained in lesson 8.

The chunked algorithm of :mod:`mamba_edu.scans.ssd` (chunks of Q steps; matrix products inside a
chunk, a short scan between chunks), written as five kernels that read the inputs where they lie
(x (b, l, h, p), dt (b, l, h), B/C (b, l, g, n), in float32, float16 or bfloat16) and write the
output once, in x's dtype. Each kernel is a readable ``.cu`` file in ``scans/kernels/``
(:func:`kernel_source`), launched in this order (:data:`STEPS`):

1. ``ssd_chunk_cumsum``   Δ = softplus(dt + dt_bias) and cs = the running sum of Δ·A inside each chunk;
2. ``ssd_bmm``            C_t·B_s for the steps of each chunk, once per group (its heads share it);
3. ``ssd_chunk_state``    the state each chunk leaves at its end, Σ_s exp(cs_last − cs_s) Δ_s x_s B_sᵀ
                          — a (p × Q)(Q × n) matrix product per (batch, chunk, head);
4. ``ssd_state_passing``  S_{c+1} = exp(cs_last(c)) S_c + states[c]: the state entering every chunk;
5. ``ssd_chunk_scan``     y_t = exp(cs_t) C_t Sᵀ + Σ_{s≤t} (C_t·B_s) exp(cs_t − cs_s) Δ_s x_s + D x_t,
                          gated by silu(z): the chunk's "attention" block plus the state's read-out.

Matrix products run on tensor cores (the PTX instruction ``mma.sync.m16n8k8``, ``kernels/ssd_mma.cuh``)
with TF32 inputs (10-bit mantissa) and float32 accumulation, like the official Triton kernel's ``tl.dot``
on float32: expect errors of about 1e-4 … 1e-3 of the output's scale against a float64 reference
(strict float32 products would give ~1e-6). When x, B and C are all float16 or all bfloat16 (and p, n are
multiples of 8, the tensors 16-byte aligned: :func:`_mma16`), ``ssd_chunk_state`` and ``ssd_chunk_scan``
keep their tiles in that 16-bit type and multiply with ``mma.sync.m16n8k16`` (twice the depth per
instruction, half the bytes), rounding M, Δ_s·x_s and the passed states to it, as the official kernel does
for 16-bit inputs; otherwise 16-bit inputs are widened to TF32 tiles. Everything else (exponentials,
softplus, sums, the state passing) is float32.

:func:`ssd_scan_cuda` launches them on torch's current stream with no host synchronisation (forward
only). :func:`mamba_edu.ssd_scan` with ``method="chunked"`` sends torch CUDA tensors here when
:func:`supports` says so.

Glossary: x input (b, l, h, p); dt (b, l, h); A (h,); B, C (b, l, g, n); D (h,) or (h, p); z gate
(b, l, h, p); dt_bias (h,); states (b, h, p, n); Q chunk length; c = ⌈l/Q⌉ chunks.
"""

import functools

import numpy as np

from mamba_edu.scans.checks import check_ssd_inputs
from mamba_edu.scans.cuda import (
    KERNEL_DIR,
    SMEM_LIMIT,
    _arg,
    _cuda_usable,
    _cupy,
    _signature,
    _torch_stream,
    paste_headers,
)

KERNEL_FILES = {
    "cumsum": "ssd_chunk_cumsum.cu",
    "bmm": "ssd_bmm.cu",
    "state": "ssd_chunk_state.cu",
    "passing": "ssd_state_passing.cu",
    "scan": "ssd_chunk_scan.cu",
}
KERNEL_NAMES = {"cumsum": "ssd_chunk_cumsum", "bmm": "ssd_bmm", "state": "ssd_chunk_state",
                "passing": "ssd_state_passing", "scan": "ssd_chunk_scan"}
STEPS = ("cumsum", "bmm", "state", "passing", "scan")  # launch order
CHUNK_SIZES = (16, 32, 64, 128, 256)  # Q the kernels are built for (powers of two)
MAX_P = 128  # head dimension p
MAX_N = 256  # state size n
MAX_GRID_YZ = 65535  # CUDA's limit on gridDim.y and gridDim.z (chunks, b·h)
NWARPS = 8  # warps per block of the two matrix-product kernels
PASSING_THREADS = 256
# blocks per SM the register budget of a kernel must allow (``__launch_bounds__``'s second argument; 0: the
# compiler's choice): a cap of 64 registers a thread (shared memory allows 3 blocks of the largest tiles).
# MIN_BLOCKS, SLICE and BUFFERS change no arithmetic; the values here won an A/B on the H200 (profiler GPU time,
# one process, 2026-12-03): with SLICE = 64 and the scan held to 64 registers, (8, 2048, 24, 64, 1, 128) at
# Q = 128 took 474 µs in fp32 and 478 µs in bf16, against 524 and 519 µs with SLICE = 32 and the compiler's
# register choice for the scan.
MIN_BLOCKS = {"state": 4, "scan": 4}
SLICE = 64  # steps (state, scan) and columns of n (scan's phase 1) per pipelined slice: 16 times a power of two
BUFFERS = 2  # shared-memory stage buffers of the state and scan kernels (BUFFERS - 1 slices copied ahead)
_DTYPES = {"float32": "float", "float16": "__half", "bfloat16": "__nv_bfloat16"}  # input dtype → C type
_ARG_NAMES = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


def kernel_source(step):
    """The CUDA C++ source of one SSD step, as shipped in the package.

    Parameters
    ----------
    step : {"cumsum", "bmm", "state", "passing", "scan"}

    Returns
    -------
    str
        The ``.cu`` file's text, with the kernels' own headers (``#include "ssd_types.cuh"``,
        ``"cp_async.cuh"``, ``"ssd_mma.cuh"``, ``"ssd_tiles.cuh"``) pasted in place
        (:func:`~mamba_edu.scans.cuda.paste_headers`), so the compiler gets one self-contained source; sizes
        and input types come in as ``-D`` options (:func:`defines`).

    Explained in lesson 8.
    """
    if step not in KERNEL_FILES:
        raise ValueError(f"step must be one of {sorted(KERNEL_FILES)}, got {step!r}")
    return paste_headers((KERNEL_DIR / KERNEL_FILES[step]).read_text())


def _round_up(v, m):
    return -(-v // m) * m


@functools.cache
def tiles(p, n, Q, mma16=False):
    """Tile sizes of the two matrix-product kernels for head dimension p, state size n and chunk Q.

    ``bmm``: TT × TT tiles of each chunk's C Bᵀ (Q × Q);
    ``state``: slices of KS steps, output tiles TP × TN of the (p × n) chunk state;
    ``scan``: TT rows (steps) × TP channels of the output per block, its diagonal part in slices of KS
    steps (its state part in slices of :func:`scan_depth_slice` columns of n).
    TP and TN are 16 times a power of two (16, 32, 64; TN also 128): the kernels split a tile's 16-wide fragment
    columns evenly over their NWARPS = 8 warps. p and n are padded up to them (padding is masked).
    Slices are at most :data:`SLICE` = 64 steps, and the state kernel's at most half a chunk (16 at least), as the
    kernels copy the next slice while they multiply the current one (:data:`BUFFERS` shared-memory
    buffers). The state kernel's TN is at most 128 when one column of a slice (KS steps, 4 bytes an element, 2 with
    ``mma16``'s 16-bit tiles) takes at most 128 bytes — its two stage buffers then stay under 56 KB — else 64:
    fewer, longer blocks that read each x slice once (:func:`_wide_state_blocks`).
    """
    tp = min(_pow2_blocks(p), 64)
    tt = min(Q, 64)
    ks = max(16, min(Q // 2, SLICE))
    tn_max = 128 if _wide_state_blocks(ks, mma16) else 64
    return {"bmm": {"TT": tt},
            "state": {"KS": ks, "TP": tp, "TN": min(_pow2_blocks(n), tn_max)},
            "scan": {"TT": tt, "TP": tp, "KS": min(tt, SLICE)}}


def _wide_state_blocks(ks, mma16):
    """Blocks per SM (``MIN_BLOCKS``) of the state kernel with tiles of 128 columns of n, by the bytes of one column
    of its slices (KS elements of the tiles' type): 4 up to 64 bytes, 3 up to 128 (up to 80 registers a thread),
    None above (the tiles stay at 64 columns).

    Such tiles hold four accumulator fragments per warp. Measured on the H200 (profiler, one process, 2026-12-03)
    at (8, 2048, 24, 64, 1, 128) against tiles of 64 columns: chunk_state 120 → 98 µs (bf16, Q = 64: 64-byte
    columns), 80 → 70 µs (bf16, Q = 128) and 162 → 145 µs (fp32, Q = 64: 128-byte columns).
    """
    column = ks * (2 if mma16 else 4)
    return 4 if column <= 64 else 3 if column <= 128 else None


def scan_depth_slice(n, mma16=False):
    """Columns of n per phase-1 slice of ``ssd_chunk_scan`` (its KN): :data:`SLICE`, or n padded to the MMA depth
    (8; 16 for 16-bit products) when smaller."""
    return min(SLICE, _round_up(n, 16 if mma16 else 8))


def _pow2_blocks(k):
    """k rounded up to 16 times a power of two."""
    return 16 * (1 << (-(-k // 16) - 1).bit_length())


def shared_bytes(step, p, n, Q, mma16=False):
    """Dynamic shared memory (bytes) of a kernel launch (the buffers at the top of each ``.cu``).

    ``mma16``: the 16-bit tiles of the state and scan kernels (MMA16 = 1), whose slices take half the bytes.
    """
    t = tiles(p, n, Q, mma16)
    nk = _round_up(n, 8)
    if step == "bmm":
        return 4 * 2 * t["bmm"]["TT"] * (nk + 4)
    half = 2 if mma16 else 1  # 16-bit slices: two elements per float of shared memory
    if step == "state":
        ks, tp, tn = t["state"]["KS"], t["state"]["TP"], t["state"]["TN"]
        stage = _round_up((ks * (tp + 8) + ks * (tn + 8)) // half, 8)  # x and B slices
        return 4 * (Q + max(BUFFERS * stage, tp * (tn + 8)))  # w; the stage buffers, then the output tile
    if step == "scan":
        tt, tp, ks = t["scan"]["TT"], t["scan"]["TP"], t["scan"]["KS"]
        kn = scan_depth_slice(n, mma16)
        pad = 8 if mma16 else 4  # the C, S and M rows' padding
        stage1 = (tt + tp) * (kn + pad) // half  # C, S slices
        stage2 = ks * (tp + 8) // half + tt * (ks + 4)  # x slice, CB (float32) or M slice
        buf = max(BUFFERS * _round_up(max(stage1, stage2), 8), _round_up(tt * (tp + 8), 8))  # then the output tile
        m16 = tt * (ks + 8) // 2 if mma16 else 0  # the 16-bit M slice
        return 4 * (2 * Q + tt + buf + m16)  # cs, Δ, exp(cs_t); the stage buffers; M
    return 0


def defines(step, p, n, Q, types=None, mma16=False):
    """The ``-D`` options of one kernel: sizes, tiles and input C types.

    ``types`` maps argument names (x, dt, B, C, z) to dtype names ("float32", "float16",
    "bfloat16"); missing ones are float32. ``mma16``: the state and scan kernels keep their tiles in x's
    16-bit type and multiply them on 16-bit tensor cores, and the state passing hands them the states in
    that type (:func:`_mma16` says when). Used by :func:`ssd_scan_cuda` and the compile test.
    """
    types = {k: _DTYPES[v] for k, v in (types or {}).items()}
    ty = lambda name: types.get(name, "float")  # noqa: E731
    if step == "cumsum":
        return {"Q": Q, "T_DT": ty("dt")}
    if step == "passing":
        return {"T_S": ty("x")} if mma16 else {}
    t = tiles(p, n, Q, mma16)[step]
    if step == "bmm":
        return {"N": n, "Q": Q, **t, "NWARPS": NWARPS, "T_B": ty("B"), "T_C": ty("C")}
    min_blocks = MIN_BLOCKS.get(step)
    if step == "state" and t["TN"] > 64 and min_blocks:  # (0, the compiler's choice, is kept)
        min_blocks = _wide_state_blocks(t["KS"], mma16)
    bounds = {"NBUF": BUFFERS, **({"MIN_BLOCKS": min_blocks} if min_blocks else {}), **({"MMA16": 1} if mma16 else {})}
    if step == "state":
        return {"P": p, "N": n, "Q": Q, **t, "NWARPS": NWARPS, **bounds, "T_X": ty("x"), "T_B": ty("B")}
    if step == "scan":
        return {"P": p, "N": n, "Q": Q, **t, "KN": scan_depth_slice(n, mma16), "NWARPS": NWARPS, **bounds,
                "T_X": ty("x"), "T_C": ty("C"), "T_Z": ty("z")}
    raise ValueError(f"step must be one of {sorted(KERNEL_FILES)}, got {step!r}")


_MODULES = {}


def _kernel(cp, step, **defs):
    """Compile (once per process, options and device) and return a RawKernel."""
    key = (step, tuple(sorted(defs.items())), cp.cuda.runtime.getDevice())
    if key not in _MODULES:
        options = ("-std=c++17", "--use_fast_math", *(f"-D{k}={v}" for k, v in sorted(defs.items())))
        module = cp.RawModule(code=kernel_source(step), options=options)
        _MODULES[key] = module.get_function(KERNEL_NAMES[step])  # compiles here
    return _MODULES[key]


def _dtype_name(a):
    return str(a.dtype).rsplit(".", 1)[-1]


def supports(x, dt, A, B, C, chunk_size=64, D=None, z=None, dt_bias=None, initial_states=None):
    """True when :func:`ssd_scan_cuda` takes these arguments (used by :func:`mamba_edu.ssd_scan`). Never raises.

    Needs CuPy and a GPU; torch CUDA tensors of dtype float32, float16 or bfloat16; no gradient
    wanted (grad mode off, or no argument requires grad); chunk_size in :data:`CHUNK_SIZES`;
    p ≤ 128, n ≤ 256; at most 65 535 chunks and b·h ≤ 65 535. Shapes are not checked here: a bad
    shape is reported by the call itself.
    """
    try:
        import torch

        args = (x, dt, A, B, C, D, z, dt_bias, initial_states)
        for a in args:
            if a is not None and not (isinstance(a, torch.Tensor) and a.is_cuda and _dtype_name(a) in _DTYPES):
                return False
        if torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in args):
            return False
        if x.ndim != 4 or B.ndim != 4 or _limit_problem(x, B, chunk_size) is not None:
            return False
        return _cuda_usable()
    except Exception:
        return False


def _limit_problem(x, B, chunk_size):
    """Why the kernels cannot take these sizes (a sentence), or None: the one statement of their limits."""
    if isinstance(chunk_size, bool) or chunk_size not in CHUNK_SIZES:
        return f"chunk_size is {chunk_size!r}, expected one of {CHUNK_SIZES} for the CUDA kernels"
    b, l, h, p = x.shape
    n = B.shape[3]
    if not (1 <= p <= MAX_P and 1 <= n <= MAX_N):
        return f"x has p = {p} and B has n = {n}: the CUDA kernels take p ≤ {MAX_P} and n ≤ {MAX_N}"
    if b * h > MAX_GRID_YZ or -(-l // chunk_size) > MAX_GRID_YZ:
        return (f"x has shape {tuple(x.shape)}: the CUDA kernels need b·h ≤ {MAX_GRID_YZ} and "
                f"⌈l/chunk_size⌉ ≤ {MAX_GRID_YZ}")
    return None


_CHECKED = {}  # argument signature → None (the checks passed; they read shapes, dtypes and devices only)


def _checked(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states):
    """ssd_scan's argument checks (checks.check_ssd_inputs) plus the kernels' limits, once per argument signature."""
    args = (x, dt, A, B, C, D, z, dt_bias, initial_states)
    sig = (_signature(args), chunk_size if isinstance(chunk_size, int) else repr(chunk_size))
    if sig in _CHECKED:
        return
    kind = check_ssd_inputs(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states, "chunked")
    if kind != "torch" or x.device.type != "cuda":
        raise ValueError(f"x is a {kind} array on {getattr(x, 'device', 'the host')}: ssd_scan_cuda takes torch "
                         "CUDA tensors (use mamba_edu.ssd_scan elsewhere)")
    for name, a in zip(_ARG_NAMES, args):
        if a is not None and _dtype_name(a) not in _DTYPES:
            raise ValueError(f"{name} has dtype {a.dtype}: ssd_scan_cuda takes float32, float16 or bfloat16 "
                             "(it computes in float32; use mamba_edu.ssd_scan for float64)")
    problem = _limit_problem(x, B, chunk_size)
    if problem is not None:
        raise ValueError(problem)
    if len(_CHECKED) > 1024:
        _CHECKED.clear()
    _CHECKED[sig] = None


def _mma16(x, B, C):
    """True when the state and scan kernels can keep x, B, C as 16-bit tiles (MMA16): the three have one
    16-bit dtype, p and n are multiples of 8 and the tensors start 16-byte aligned (so every row does)."""
    p, n = x.shape[3], B.shape[3]
    return (_dtype_name(x) in ("float16", "bfloat16") and B.dtype == x.dtype and C.dtype == x.dtype
            and p % 8 == 0 and n % 8 == 0 and all(a.data_ptr() % 16 == 0 for a in (x, B, C)))


@functools.lru_cache(maxsize=256)
def _plan(device, b, l, h, p, g, n, Q, types, mma16):
    """Compiled kernels, grids, blocks and shared memory for one shape, dtype combination and tile kind."""
    cp = _cupy()
    types = dict(types)
    c = -(-l // Q)
    kernels = {step: _kernel(cp, step, **defines(step, p, n, Q, types, mma16)) for step in STEPS}
    smem = {step: shared_bytes(step, p, n, Q, mma16) for step in STEPS}
    if max(smem.values()) > SMEM_LIMIT:  # tiles() keeps every supported size below it (tested)
        raise RuntimeError(f"SSD kernels need {smem} bytes of shared memory, more than {SMEM_LIMIT}")
    for step in ("bmm", "state", "scan"):
        kernels[step].max_dynamic_shared_size_bytes = smem[step]
    t = tiles(p, n, Q, mma16)
    tt_b = t["bmm"]["TT"]
    tp_s, tn_s = t["state"]["TP"], t["state"]["TN"]
    tt, tp = t["scan"]["TT"], t["scan"]["TP"]
    threads = (32 * NWARPS,)
    grids = {
        "cumsum": ((c, b * h), (max(Q, 32),)),
        "bmm": (((Q // tt_b) ** 2, c, b * g), threads),
        "state": ((-(-p // tp_s) * -(-n // tn_s), c, b * h), threads),
        "passing": ((-(-p * n // (4 * PASSING_THREADS)), b * h), (PASSING_THREADS,)),  # 4 elements a thread
        "scan": (((Q // tt) * -(-p // tp), c, b * h), threads),
    }
    return tuple((kernels[step], *grids[step], smem[step]) for step in STEPS)


def _launch_args(x, dt, A, B, C, D, z, dt_bias, h0, dt_out, cs, CB, states, entering, out, final, dt_softplus):
    """Each kernel's arguments as (name, value) pairs, named as in its ``.cu`` signature (checked by a test).

    Values are tensors (passed as device pointers), None (NULL) or Python ints (int32).
    """
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    c, Q = cs.shape[2], cs.shape[3]
    flags_cumsum = (1 if dt_bias is not None else 0) | (2 if dt_softplus else 0)
    flags_scan = (1 if D is not None else 0) | (2 if D is not None and D.ndim == 2 else 0) | (4 if z is not None else 0)
    return {
        "cumsum": (("dt", dt), ("A", A), ("dt_bias", dt_bias), ("dt_out", dt_out), ("cs", cs), ("l", l), ("h", h),
                   ("nchunks", c), ("flags", flags_cumsum)),
        "bmm": (("B", B), ("C", C), ("CB", CB), ("l", l), ("g", g), ("nchunks", c)),
        "state": (("x", x), ("B", B), ("dt_out", dt_out), ("cs", cs), ("states", states), ("l", l), ("h", h),
                  ("g", g), ("nchunks", c)),
        "passing": (("states", states), ("entering", entering), ("cs", cs), ("h0", h0), ("final_state", final),
                    ("h", h), ("nchunks", c), ("Q", Q), ("pn", p * n)),
        "scan": (("x", x), ("C", C), ("CB", CB), ("z", z), ("D", D), ("dt_out", dt_out), ("cs", cs),
                 ("states", entering), ("out", out), ("l", l), ("h", h), ("g", g), ("nchunks", c),
                 ("flags", flags_scan)),
    }


def _f32(a):
    """Small per-head arguments (A, D, dt_bias, initial_states) as contiguous float32 (a copy only if needed)."""
    if a is None:
        return None
    import torch

    return a.contiguous() if a.dtype == torch.float32 else a.float().contiguous()


def ssd_scan_cuda(x, dt, A, B, C, chunk_size=64, D=None, z=None, dt_bias=None, dt_softplus=False,
                  initial_states=None, return_final_states=False):
    """Mamba-2's SSD forward on a CUDA GPU: :func:`mamba_edu.ssd_scan`'s arguments and result, fused kernels.

    Parameters
    ----------
    x : torch CUDA tensor, shape (b, l, h, p), float32, float16 or bfloat16; p ≤ 128
    dt : shape (b, l, h)
    A : shape (h,), ≤ 0 (not checked on the GPU)
    B, C : shape (b, l, g, n), g divides h; n ≤ 256
    chunk_size : {16, 32, 64, 128, 256}, default 64
    D : shape (h,) or (h, p), optional
    z : shape (b, l, h, p), optional — the output is multiplied by silu(z)
    dt_bias : shape (h,), optional
    dt_softplus : bool — Δ = softplus(dt + dt_bias)
    initial_states : shape (b, h, p, n), optional
    return_final_states : bool — also return the state after step l, float32

    Every tensor may have any of the three dtypes (x, dt, B, C, z are read as they are; A, D,
    dt_bias, initial_states are converted to float32 if they are not). Non-contiguous tensors are
    copied to contiguous ones first.

    Returns
    -------
    out : shape (b, l, h, p), x's dtype
    final_states : shape (b, h, p, n), float32 — only with ``return_final_states=True``

    Raises
    ------
    ValueError
        Bad shapes, dtypes or devices (the messages of :func:`mamba_edu.ssd_scan`), or sizes the
        kernels are not built for (see :func:`supports`).
    NotImplementedError
        When a gradient is wanted (forward only: :func:`mamba_edu.ssd_scan` then runs its
        differentiable path).
    RuntimeError
        When CuPy or a CUDA GPU is missing.

    Accuracy: TF32 matrix products, or 16-bit ones for 16-bit x, B, C (see the module docstring; 16-bit inputs
    that are not 16-byte aligned take the TF32 tiles, so their results can differ in the last bits from those
    of aligned copies). Explained in lesson 8.
    """
    import torch

    try:
        _cupy()
    except RuntimeError as err:
        raise RuntimeError(f"ssd_scan_cuda needs CuPy and a CUDA GPU (use mamba_edu.ssd_scan elsewhere): "
                           f"{err}") from err
    _checked(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states)
    args = (x, dt, A, B, C, D, z, dt_bias, initial_states)
    if torch.is_grad_enabled() and any(a is not None and a.requires_grad for a in args):
        raise NotImplementedError("ssd_scan_cuda is forward only: call mamba_edu.ssd_scan for gradients")
    b, l, h, p = x.shape
    g, n = B.shape[2], B.shape[3]
    Q = int(chunk_size)
    c = -(-l // Q)
    x_, dt_, B_, C_ = (a.contiguous() for a in (x, dt, B, C))
    z_ = None if z is None else z.contiguous()
    A_, D_, bias_, h0 = (_f32(a) for a in (A, D, dt_bias, initial_states))
    types = tuple((name, _dtype_name(a)) for name, a in (("x", x), ("dt", dt), ("B", B), ("C", C), ("z", z))
                  if a is not None and _dtype_name(a) != "float32")

    previous = torch.cuda.current_device()
    switch = x.device.index != previous
    if switch:
        torch.cuda.set_device(x.device)
    try:
        mma16 = _mma16(x_, B_, C_)
        plan = _plan(x.device.index, b, l, h, p, g, n, Q, types, mma16)
        f32 = dict(dtype=torch.float32, device=x.device)
        dt_out = torch.empty(b, h, c, Q, **f32)
        cs = torch.empty(b, h, c, Q, **f32)
        CB = torch.empty(b, c, g, Q, Q, **f32)  # only the tiles on and below the diagonal are written and read
        states = torch.empty(b, c, h, p, n, **f32)
        entering = torch.empty(b, c, h, p, n, dtype=x.dtype, device=x.device) if mma16 else states  # (in place)
        out = torch.empty(b, l, h, p, dtype=x.dtype, device=x.device)
        final = torch.empty(b, h, p, n, **f32) if return_final_states else None
        named = _launch_args(x_, dt_, A_, B_, C_, D_, z_, bias_, h0, dt_out, cs, CB, states, entering, out, final,
                             dt_softplus)
        calls = [tuple(np.int32(v) if isinstance(v, int) else _arg(v) for _, v in named[step]) for step in STEPS]
        stream = _torch_stream(x.device.index)  # torch's current stream: launches queue behind the caller's work
        for (kernel, grid, block, smem), kernel_args in zip(plan, calls):  # in the order of STEPS
            kernel(grid, block, kernel_args, shared_mem=smem, stream=stream)
    finally:
        if switch:
            torch.cuda.set_device(previous)
    return (out, final) if return_final_states else out
