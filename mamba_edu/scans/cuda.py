"""Mamba's selective scan on a CUDA GPU, as CuPy RawKernels.  Explained in lesson 7.

Three kernels, from simple to fast, all shipped as readable CUDA C++ in ``scans/kernels/``
(see :func:`kernel_source`):

* ``"v0"`` — one thread per channel (b, d), sequential over time, the n states in registers.
  Correct, but only b·d threads and uncoalesced loads: slow.
* ``"v1"`` — the lesson's block-level parallel scan (Hillis–Steele in shared memory) of the
  already-discretized recurrence h_t = Ā_t h_{t−1} + B̄_t u_t. Ā and B̄u are first written out as
  (b, d, n, l) arrays and h is read back for y = C·h: the memory traffic that v2 removes.
* ``"v2"`` — the fused production kernel, forward and backward: softplus, discretization, scan,
  C contraction, D skip and z gate in registers and shared memory; nothing of size (b, d, l, n)
  touches global memory. The *forward* spreads the n states of a channel over 8 lanes (16 when
  n > 16; each lane runs its states' recurrences sequentially, so b·d·8 threads keep the GPU busy even
  when b·d is small) and sums y = C·h across the lanes with a warp-shuffle "transpose-reduce"; tiles of time
  are copied into shared memory with ``cp.async`` while the previous tile is computed
  (:mod:`mamba_edu.scans.emulate` replays this in numpy). When b·d is small the grid also splits
  time into segments (:func:`time_segments`): a first pass finds each segment's final state and
  decay, the second starts every segment from the folded states. The *backward* is the lesson's
  chunked scan: each lane folds a chunk of steps, a Hillis–Steele scan over the 32 lanes of a warp joins
  the chunks, a carry joins the tiles; it replays the forward from checkpoint states saved every
  32·CHUNK steps, then runs the mirrored (reverse-time) adjoint scan.

:func:`selective_scan_cupy` has the arguments and semantics of :func:`mamba_edu.selective_scan`
(the official ``selective_scan_fn``) for float32 (and, for torch, float16/bfloat16) inputs with a real
A. torch CUDA tensors in → torch tensors out (raw device pointers, no copies of usable inputs,
differentiable with ``version="v2"``); CuPy arrays in → CuPy arrays out. CuPy is imported only when a
function here needs the GPU.

How a call travels (v2, torch): :func:`selective_scan_cupy` (or ``selective_scan``'s CUDA branch,
:func:`scan_if_supported`) → :func:`_torch_v2` (host checks and launch sizes cached per argument key in a
:class:`_Call`) → the autograd Function, or directly :func:`_launch_forward` without gradients →
:func:`_run_forward` (the kernel launch, through a :class:`~mamba_edu.scans.launch.Launcher`); the backward:
:func:`_launch_backward` → :func:`_run_backward`. :func:`scan_forward` / :func:`scan_backward` launch the
same kernels on CuPy arrays (lesson 7, the tests and the benchmark use them).

Glossary: u input (b, d, l); delta Δ (b, d, l); A (d, n); B, C (b, n, l), (b, g, n, l) or (d, n);
D, delta_bias (d,); z gate (b, d, l); h state (b, d, n); y, out (b, d, l).
"""

import functools
import json
import math
import re
import sys
import threading
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from mamba_edu._backend import gpu_available  # noqa: F401  (re-exported: cuda.gpu_available)
from mamba_edu.data import load
from mamba_edu.scans.launch import Launcher

KERNEL_DIR = Path(__file__).resolve().parent / "kernels"
KERNEL_FILES = {
    "v0": "v0_sequential.cu",
    "v1": "v1_block_scan.cu",
    "v2": "v2_forward.cu",
    "v2_backward": "v2_backward.cu",
    "complex": "complex_scan.cu",  # complex A, forward and backward (mamba_edu.scans.cuda_complex)
}
EXACT_MATH = {"complex"}  # compiled without --use_fast_math (sincosf needs its full range reduction)
VERSIONS = ("v0", "v1", "v2")

# v2 forward for n > 16 (n ≤ 16: FORWARD_SMALL_N below; tuned on an H200 with benchmarks/gpu_scan.py --sweep):
# lpc lanes per channel share its n states; blocks of nwarps warps; tile steps per shared-memory tile;
# min_blocks caps the registers (None: the kernel's default, 32 warps per SM; 1 above n = 64, see
# forward_config); unroll: blocks of lpc steps unrolled together; segments: time segments over the grid
# (None: chosen by time_segments).
FORWARD = {"lpc": 16, "nwarps": 8, "tile": 64, "min_blocks": 2, "unroll": 4, "segments": None}
# n ≤ 16, float32 and half precision: 8 lanes per channel (two states each at n = 16), blocks of 4 warps, up to
# 128 registers. Measured on the H200 (2026-12-03, the launch alone, median of 30, two rounds; float16 takes the
# bf16 kernel shape, unmeasured) against FORWARD and the earlier half-precision shape (8 lanes, 8 warps):
# float32 at (8, 1536, 2048, 16) 300–313 µs vs 329–333 µs with FORWARD, at (1, 1536, 16384, 16) 440 vs 500 µs, at
# (4, 768, 1024, 16) 78 vs 75–76 µs (slightly slower); bf16 at (8, 1536, 2048, 16) 302–304 vs 310–315 µs,
# at (1, 1536, 16384, 16) 428–435 vs 458–465 µs, at (4, 768, 1024, 16) 78.5 vs 79–81 µs.
FORWARD_SMALL_N = {"lpc": 8, "nwarps": 4, "min_blocks": 4}
# Few channels (small b·d) leave the GPU idle: with fewer than SPLIT_BELOW_WARPS warps, time is also
# split into segments (see v2_forward.cu), enough to reach about TARGET_WARPS warps. Measured on an
# H200 (benchmarks/gpu_scan.py --sweep-segments): at (1, 1536, 16384, 16), 768 warps, 1 segment takes
# 995 µs, 4 take 641 µs, 16 take 614 µs; at (8, 1536, 2048, 16), 6144 warps, 1 segment 397 µs, 2 take 521 µs.
SPLIT_BELOW_WARPS = 2048
TARGET_WARPS = 12288
# v2 backward: each lane owns CHUNK consecutive steps (a tile is 32·CHUNK steps), a block of
# NWARPS warps handles NWARPS channels. Tuned on an H200 (benchmarks/gpu_scan.py --sweep).
CHUNK = 8
NWARPS = 16
# v2 backward, few channels: one warp per channel, so b·d warps; below BWD_SPLIT_BELOW_WARPS the
# sequence is cut into time segments (two passes, see v2_backward.cu) to reach about BWD_TARGET_WARPS.
# Measured on the H200 on 2026-12-03 (session 8, two rounds, median of 40, forward + backward):
# at (4, 768, 1024, 16), 3072 channels, the launches alone take 346-357 µs with 1 segment and 332-333
# with 2 or 3; at (1, 1536, 16384, 16), 1536 channels, selective_scan as called takes 2652-2679 µs with
# 1 segment, 2895-2900 with 2, 2561-2573 with 4, 2580-2597 with 6. So the split starts below 4096
# channels (the rule gives 2 and 6 segments there); an earlier kernel saw no gain at 1536 channels.
BWD_SPLIT_BELOW_WARPS = 4096
BWD_TARGET_WARPS = 8192
SCAN_BLOCK = 256  # v1: threads (= steps) per block-level scan
_FLAGS = {"D": 1, "z": 2, "delta_bias": 4, "softplus": 8, "last_state": 16, "checkpoint": 32, "check": 64}


def kernel_source(version):
    """The CUDA C++ source of a kernel, as shipped in the package.

    Parameters
    ----------
    version : {"v0", "v1", "v2", "v2_backward"}

    Returns
    -------
    str
        The ``.cu`` file's text with our headers pasted in (:func:`paste_headers`); compile-time sizes such
        as ``DSTATE`` come in as ``-D`` options.

    Explained in lesson 7.
    """
    if version not in KERNEL_FILES:
        raise ValueError(f"version must be one of {sorted(KERNEL_FILES)}, got {version!r}")
    return paste_headers((KERNEL_DIR / KERNEL_FILES[version]).read_text())


# a header of ours, next to the kernels (pasted rather than found through an include path: CuPy's compile cache
# keys on the source text, so a change to a header must change the source); headers do not include each other
_LOCAL_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"(\w+\.cuh)"[^\r\n]*?\r?$', re.M)


def paste_headers(source):
    """``source`` with each ``#include "name.cuh"`` line replaced by that header of ``scans/kernels/`` (our own
    headers; system headers such as ``<cuda_bf16.h>`` stay), so the compiler gets one self-contained source."""
    return _LOCAL_INCLUDE.sub(lambda m: (KERNEL_DIR / m.group(1)).read_text(), source)


def recorded_benchmark(path=None):
    """The H200 timings recorded by ``benchmarks/gpu_scan.py`` (for machines without a GPU).

    Returns
    -------
    dict
        ``{"date", "device", "copy_bandwidth_GBps", "rows": [...], ...}`` as written by the script;
        each row has the shape (b, d, l, n), the kernel, microseconds, GB/s, % of copy bandwidth and
        the speed-up over the PyTorch loop reference.

    Explained in lesson 7.
    """
    if path is None:  # the package data written by benchmarks/gpu_scan.py
        return load("gpu_scan_h200")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no recorded benchmark at {path}: run benchmarks/gpu_scan.py on a GPU")
    return json.loads(path.read_text())


@functools.cache  # once it succeeded (a failure is not cached: it raises again)
def _cupy():
    """Import CuPy and check for a GPU, or raise RuntimeError saying what is missing."""
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            "selective_scan_cupy needs CuPy and a CUDA GPU, but CuPy is not installed "
            "(pip install 'mamba-edu[gpu]'); on a CPU use mamba_edu.selective_scan"
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:
        raise RuntimeError(f"selective_scan_cupy needs a CUDA GPU, but CuPy found none ({err})") from err
    if count == 0:
        raise RuntimeError("selective_scan_cupy needs a CUDA GPU, but CuPy found none")
    return cupy


_MODULES = {}


def _kernel(cp, version, name, **defines):
    """Compile (once per process, sizes and device) and return a RawKernel."""
    key = (version, name, tuple(sorted(defines.items())), cp.cuda.runtime.getDevice())
    if key not in _MODULES:
        fast = () if version in EXACT_MATH else ("--use_fast_math",)
        options = ("-std=c++17", *fast, *(f"-D{k}={v}" for k, v in sorted(defines.items())))
        module = cp.RawModule(code=kernel_source(version), options=options)
        _MODULES[key] = module.get_function(name)
    return _MODULES[key]


def _segment(d, B_groups, C_groups):
    """Channels per segment: consecutive channels that share one B group and one C group."""
    sizes = [d // g for g in (B_groups, C_groups) if g is not None]
    return math.gcd(*sizes) if sizes else d


MAX_DSTATE = 256  # the largest n the v2 kernels are built for (like the official kernel)
SMEM_LIMIT = 227 * 1024  # dynamic shared memory per block on an H100/H200 (sm_90)


@functools.cache
def forward_config(n, in_bytes=4):
    """v2 forward tile shape for state size n: :data:`FORWARD` (tuned at n = 16), adapted to n.

    Fewer lanes per channel when n < 16 (each lane should own at least one state); shorter tiles
    when n is large, so that the B and C tiles of all n states fit in shared memory (≤ ~110 KB, two
    blocks per SM) — measured with the layout of the inputs' precision (``in_bytes`` 2: half precision,
    read natively, which stages the raw tiles beside one float buffer); a looser register cap as the
    states per lane grow. n ≤ 16 takes :data:`FORWARD_SMALL_N` (tuned separately, both precisions).
    """
    if not 1 <= n <= MAX_DSTATE:
        raise ValueError(f"n (d_state) is {n}, expected 1 ≤ n ≤ {MAX_DSTATE}")
    small = n <= 16
    cfg = dict(FORWARD, **(FORWARD_SMALL_N if small else {}))
    if n < cfg["lpc"]:
        cfg["lpc"] = max(4, 1 << (n - 1).bit_length())
    for tile in (cfg["tile"], 32, 16):
        cfg["tile"] = tile
        if v2_shared_bytes(n, forward=cfg, in_bytes=in_bytes) <= 110 * 1024:
            break
    if n > 64:  # more states per lane: no register cap beyond one block per SM
        cfg["min_blocks"] = 1
    return cfg


@functools.cache
def backward_config(n):
    """v2 backward (chunk, nwarps) for state size n: 16 warps per block up to n = 32, then 8."""
    if not 1 <= n <= MAX_DSTATE:
        raise ValueError(f"n (d_state) is {n}, expected 1 ≤ n ≤ {MAX_DSTATE}")
    return CHUNK, (NWARPS if n <= 32 else 8)


def v2_shared_bytes(n, chunk=CHUNK, nwarps=NWARPS, backward=False, forward=None, in_bytes=4):
    """Dynamic shared memory of the v2 kernels, in bytes (see the buffers at the top of each kernel).

    ``in_bytes``: 2 for the forward reading half-precision inputs (one float buffer + two staging buffers).
    """
    if backward:
        tile = 32 * chunk
        t_pad = tile + (tile // 32) * 4
        group = min(n, 16)  # SGROUP: states whose B, C tiles are staged together
        rows = 2 * group + 7 * nwarps  # B, C (one state group); per warp u, delta, g and two (dB, dC) pairs
        return 4 * (rows * t_pad + nwarps * 6 * n)  # + per warp: nu, 3 sums, A, h_chk of the tile
    cfg = {**FORWARD, **(forward or {})}
    channels = 32 * cfg["nwarps"] // cfg["lpc"]
    t_pad = cfg["tile"] + 4
    rows = 2 * n + 3 * channels  # B, C, u, delta, z
    if in_bytes < 4:  # one float buffer + delta·u, then two staging buffers of rows padded by 8 elements
        return 4 * (rows + channels) * t_pad + 2 * in_bytes * rows * (cfg["tile"] + 8)
    return 4 * (2 * rows + channels) * t_pad  # 2 × (B, C, u, delta, z) + delta·u


def time_segments(b, d, l, chunk=CHUNK, forward=None):
    """How v2's forward splits time: (segments, seg_len).

    One segment when b·d channels give at least SPLIT_BELOW_WARPS warps; otherwise enough segments
    to reach about TARGET_WARPS warps, each at least 1024 steps long and a multiple of the tile and of
    the backward's checkpoint spacing (32·chunk). ``forward={"segments": k}`` forces k (for tests).
    """
    cfg = {**FORWARD, **(forward or {})}
    align = math.lcm(cfg["tile"], 32 * chunk)
    warps = max(1, b * d * cfg["lpc"] // 32)
    if cfg["segments"] is not None:
        want = int(cfg["segments"])
    elif warps >= SPLIT_BELOW_WARPS:
        want = 1
    else:
        want = min(-(-TARGET_WARPS // warps), l // max(1024, align))
    want = max(1, want)
    seg_len = _ceil_div(_ceil_div(l, want), align) * align
    return _ceil_div(l, seg_len), seg_len


def _ceil_div(a, b):
    return -(-a // b)


def _forward_defines(n, chunk, cfg, var_B=True, var_C=True):
    defines = dict(DSTATE=n, LPC=cfg["lpc"], NWARPS=cfg["nwarps"], TILE=cfg["tile"], CHK_TILE=32 * chunk,
                   VAR_B=int(var_B), VAR_C=int(var_C))
    if cfg["min_blocks"] is not None:
        defines["MIN_BLOCKS"] = cfg["min_blocks"]
    if cfg.get("unroll", 1) != 1:
        defines["UNROLL_BLOCKS"] = cfg["unroll"]
    return defines


def n_tiles(l, chunk=CHUNK):
    """Number of v2 tiles (32·chunk steps each) along a sequence of length l."""
    return -(-l // (32 * chunk))


def _flags(D, z, delta_bias, delta_softplus, last_state=None, h_chk=None):
    flags = 0
    for name, value in (("D", D), ("z", z), ("delta_bias", delta_bias), ("last_state", last_state),
                        ("checkpoint", h_chk)):
        if value is not None:
            flags |= _FLAGS[name]
    return flags | (_FLAGS["softplus"] if delta_softplus else 0)


def _ptr(x):
    """The device address of a torch tensor or CuPy array, 0 for None (NULL): a pointer argument of a launch.

    Passing raw pointers skips DLPack: no capsule, no stream synchronisation, a few µs less per call.
    The kernels never dereference an optional pointer whose flag is off.
    """
    if x is None:
        return 0
    try:
        return x.data_ptr()  # a torch tensor
    except AttributeError:
        return x.data.ptr  # a CuPy array


def _arg(x):
    """:func:`_ptr` as the NumPy scalar a CuPy ``RawKernel`` call takes (v0, v1 and the SSD launches)."""
    return np.uint64(_ptr(x))


def _current_stream():
    """CuPy's current stream as a raw handle (what the launches of CuPy-array callers queue on)."""
    return _cupy().cuda.get_current_stream().ptr


def scan_forward(version, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, *,
                 out, last_state=None, h_chk=None, chunk=None, forward=None, err=None):
    """Launch one forward kernel on checked, contiguous float32 arrays (no validation here).

    Arrays are CuPy arrays or torch CUDA tensors (passed as pointers), on the current stream.
    ``out`` (b, d, l) is written in place; so are ``last_state`` (b, d, n) and, for v2,
    ``h_chk`` (b, d, tiles, n), the state entering each backward tile of 32·``chunk`` steps, when
    given. ``forward`` overrides entries of the tile shape (:func:`forward_config`). ``err``: a
    pointer (int) to an int32 that v2 ORs with the bits of arguments holding NaN/inf (None: no check).
    B and C are (b, g, n, l) (a (b, n, l) array is reshaped by the caller) or fixed (d, n). Used by
    :func:`selective_scan_cupy`, the GPU tests (which poison ``out`` first) and the benchmark.
    """
    cp = _cupy()
    b, d, l = u.shape
    n = A.shape[1]
    B_groups = B.shape[1] if B.ndim == 4 else None
    C_groups = C.shape[1] if C.ndim == 4 else None
    ints = (b, d, l, B_groups or 0, C_groups or 0)
    if version == "v0":
        kernel = _kernel(cp, "v0", "selective_scan_v0", DSTATE=n)
        flags = _flags(D, z, delta_bias, delta_softplus, last_state)
        args = tuple(map(_arg, (u, delta, A, B, C, D, z, delta_bias, out, last_state)))
        kernel((-(-b * d // 128),), (128,), (*args, *map(np.int32, ints), np.int32(flags)))
    elif version == "v1":
        _v1_forward(cp, u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, last_state)
    elif version == "v2":
        chunk = backward_config(n)[0] if chunk is None else chunk
        if h_chk is not None and tuple(h_chk.shape) != (b, d, n_tiles(l, chunk), n):
            want = (b, d, n_tiles(l, chunk), n)
            raise ValueError(f"h_chk has shape {tuple(h_chk.shape)}, expected (b, d, tiles, n) = {want}")
        plan = _forward_plan(cp.cuda.runtime.getDevice(), b, d, l, n, B_groups, C_groups, chunk,
                             tuple(sorted((forward or {}).items())))
        seg_buf = cp.empty((b, d, plan.segments, 2, n), dtype=cp.float32) if plan.segments > 1 else None
        flags = _flags(D, z, delta_bias, delta_softplus, last_state, h_chk) | (_FLAGS["check"] if err else 0)
        _run_forward(plan, (u, delta, A, B, C, D, z, delta_bias, out, last_state, h_chk, seg_buf), ints, flags,
                     err or 0)
    else:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")


def _run_forward(plan, arrays, ints, flags, err, stream=None):
    """Launch v2's forward as planned by :func:`_forward_plan` (two passes when time is cut into segments).

    ``arrays``: u, delta, A, B, C, D, z, delta_bias, out, last_state, h_chk, seg_buf (None → NULL);
    ``ints``: b, d, l and the B/C groups; ``err``: the address of the NaN/inf word (0: none); ``stream``:
    a raw stream handle (None: CuPy's current stream).
    """
    first, kernel, blocks, threads, smem, segments, seg_len, seg = plan
    stream = _current_stream() if stream is None else stream
    args = (*map(_ptr, arrays), seg_len, *ints, seg, flags, err)
    if segments > 1:  # pass 1: final state and decay of every segment but the last
        first((blocks, 1, segments - 1), threads, args, shared_mem=smem, stream=stream)
    kernel((blocks, 1, segments), threads, args, shared_mem=smem, stream=stream)


# the parameter kinds of v2's kernels (P pointer, i int), in the order of their .cu signatures
FORWARD_KINDS = "P" * 12 + "i" * 8 + "P"  # u … seg_buf, seg_len … flags, err
BACKWARD_KINDS = "P" * 19 + "i" * 7 + "Pi"  # u … dlast, batch … flags, seg_adj, tiles_per_seg


class ForwardLaunch(NamedTuple):
    """v2 forward's launch for one problem shape (:func:`_forward_plan`)."""

    first: object  # the STATES_ONLY kernel of pass 1 (None with one segment)
    kernel: object
    blocks: int  # grid x: blocks per batch element × batch
    threads: tuple
    smem: int  # dynamic shared memory, bytes
    segments: int  # time segments (grid z)
    seg_len: int  # steps per segment
    seg: int  # channels that share one B group and one C group


class BackwardLaunch(NamedTuple):
    """v2 backward's launch for one problem shape (:func:`_backward_plan`)."""

    first: object  # the ADJ_ONLY kernel of pass 1 (None with one segment)
    kernel: object
    blocks: int
    threads: tuple
    smem: int
    seg: int  # channels that share one B group and one C group
    segs: int  # time segments (grid y)
    per: int  # tiles per segment


_HALF_DEFINE = {"float32": None, "bfloat16": "IN_BF16", "float16": "IN_FP16"}


@functools.lru_cache(maxsize=256)
def _forward_plan(device, b, d, l, n, B_groups, C_groups, chunk, overrides, in_dtype="float32"):
    """Kernels, grid and sizes of v2's forward for one problem shape (computed once per shape).

    ``in_dtype``: the dtype of u, delta, z, B, C and out — "float32", or "bfloat16"/"float16" read natively.
    """
    cp = _cupy()
    cfg = {**forward_config(n, 4 if in_dtype == "float32" else 2), **dict(overrides)}
    defines = _forward_defines(n, chunk, cfg, B_groups is not None, C_groups is not None)
    if _HALF_DEFINE[in_dtype]:
        defines[_HALF_DEFINE[in_dtype]] = 1
    smem = v2_shared_bytes(n, forward=cfg, in_bytes=4 if in_dtype == "float32" else 2)
    seg = _segment(d, B_groups, C_groups)
    channels = 32 * cfg["nwarps"] // cfg["lpc"]  # per block
    blocks = (d // seg) * (-(-seg // channels)) * b  # batch folded into x: no 65 535 limit
    segments, seg_len = time_segments(b, d, l, chunk, cfg)
    kernel = _kernel(cp, "v2", "selective_scan_fwd_v2", **defines)
    kernel.max_dynamic_shared_size_bytes = smem
    first = None
    if segments > 1:
        first = _kernel(cp, "v2", "selective_scan_fwd_v2", **defines, STATES_ONLY=1)
        first.max_dynamic_shared_size_bytes = smem
        first = Launcher(first, FORWARD_KINDS)
    return ForwardLaunch(first, Launcher(kernel, FORWARD_KINDS), blocks, (32 * cfg["nwarps"],), smem, segments,
                         seg_len, seg)


def backward_segments(b, d, l, chunk=CHUNK, segments=None):
    """How v2's backward splits time: (segments, tiles per segment); tiles are 32·chunk steps.

    One segment when the b·d channels (one warp each) give at least BWD_SPLIT_BELOW_WARPS warps;
    otherwise enough to reach about BWD_TARGET_WARPS, each at least 2 tiles long. ``segments`` forces
    a count (for tests and the benchmark's sweep).
    """
    tiles = n_tiles(l, chunk)
    if segments is None:
        warps = b * d
        segments = 1 if warps >= BWD_SPLIT_BELOW_WARPS else min(-(-BWD_TARGET_WARPS // warps), tiles // 2)
    segments = max(1, min(int(segments), tiles))
    per = -(-tiles // segments)
    return -(-tiles // per), per


@functools.lru_cache(maxsize=256)
def _backward_plan(device, b, d, l, n, B_groups, C_groups, chunk, nwarps, segments, min_blocks=None):
    cp = _cupy()
    defines = dict(DSTATE=n, CHUNK=chunk, NWARPS=nwarps)
    if min_blocks is not None:
        defines["MIN_BLOCKS"] = min_blocks
    kernel = _kernel(cp, "v2_backward", "selective_scan_bwd_v2", **defines)
    smem = v2_shared_bytes(n, chunk, nwarps, backward=True)
    kernel.max_dynamic_shared_size_bytes = smem
    first = None
    segs, per = backward_segments(b, d, l, chunk, segments)
    if segs > 1:
        first = _kernel(cp, "v2_backward", "selective_scan_bwd_v2", **defines, ADJ_ONLY=1)
        first.max_dynamic_shared_size_bytes = smem
        first = Launcher(first, BACKWARD_KINDS)
    seg = _segment(d, B_groups, C_groups)
    blocks = (d // seg) * (-(-seg // nwarps)) * b
    return BackwardLaunch(first, Launcher(kernel, BACKWARD_KINDS), blocks, (32 * nwarps,), smem, seg, segs, per)


def scan_backward(u, delta, A, B, C, D, z, delta_bias, delta_softplus, dout, h_chk, *,
                  du, ddelta, dA, dB, dC, dD=None, dz=None, ddelta_bias=None, dlast=None, chunk=None, nwarps=None,
                  segments=None, min_blocks=None):
    """Launch v2's backward kernel. dA, dB, dC, dD, ddelta_bias must be zeroed; dlast (b, d, n) optional.

    ``segments`` forces the number of time segments (default: :func:`backward_segments`); ``min_blocks``
    the blocks per SM the compiler must fit (for the benchmark's sweep; default: no register cap).
    """
    cp = _cupy()
    b, d, l = u.shape
    n = A.shape[1]
    chunk_n, nwarps_n = backward_config(n)
    chunk = chunk_n if chunk is None else chunk
    nwarps = nwarps_n if nwarps is None else nwarps
    B_groups = B.shape[1] if B.ndim == 4 else None
    C_groups = C.shape[1] if C.ndim == 4 else None
    plan = _backward_plan(cp.cuda.runtime.getDevice(), b, d, l, n, B_groups, C_groups, chunk, nwarps, segments,
                          min_blocks)
    flags = _flags(D, z, delta_bias, delta_softplus) | (16 if dlast is not None else 0)
    seg_adj = cp.empty((b, d, plan.segs, 2, n), dtype=cp.float32) if plan.segs > 1 else None
    ints = (b, d, l, B_groups or 0, C_groups or 0)
    _run_backward(plan, (u, delta, A, B, C, D, z, delta_bias, dout, h_chk,
                         du, ddelta, dA, dB, dC, dD, dz, ddelta_bias, dlast), ints, flags, seg_adj)


def _run_backward(plan, arrays, ints, flags, seg_adj, stream=None):
    """Launch v2's backward as planned by :func:`_backward_plan` (two passes when time is cut into segments).

    ``arrays``: u, delta, A, B, C, D, z, delta_bias, dout, h_chk, then the 9 gradients (dlast last);
    ``seg_adj``: the carry maps of the segments (None with one segment); ``stream``: a raw stream handle
    (None: CuPy's current stream).
    """
    first, kernel, blocks, threads, smem, seg, segs, per = plan
    stream = _current_stream() if stream is None else stream
    args = (*map(_ptr, arrays), *ints, seg, flags, _ptr(seg_adj), per)
    if segs > 1:  # pass 1: the adjoint carry map of every segment but the first
        first((blocks, segs - 1), threads, args, shared_mem=smem, stream=stream)
    kernel((blocks, segs), threads, args, shared_mem=smem, stream=stream)


def _v1_forward(cp, u, delta, A, B, C, D, z, delta_bias, delta_softplus, out, last_state):
    """v1: discretize into (b, d, n, l) arrays with CuPy, scan each row with the kernel, contract with C."""
    b, d, l = u.shape
    n = A.shape[1]
    dl = delta if delta_bias is None else delta + delta_bias[:, None]
    if delta_softplus:
        dl = cp.where(dl <= 20, cp.log1p(cp.exp(dl)), dl)

    def per_channel(X):  # → broadcastable to (b, d, n, l)
        if X.ndim == 2:  # fixed (d, n)
            return X[None, :, :, None]
        g = X.shape[1]
        return cp.broadcast_to(X[:, :, None], (b, g, d // g, n, l)).reshape(b, d, n, l)

    A_bar = cp.ascontiguousarray(cp.exp(dl[:, :, None, :] * A[None, :, :, None]))  # (b, d, n, l)
    Bu = cp.ascontiguousarray((dl * u)[:, :, None, :] * per_channel(B))  # (b, d, n, l)
    h = cp.empty_like(A_bar)
    kernel = _kernel(cp, "v1", "linear_scan_v1", SCAN_BLOCK=SCAN_BLOCK)
    kernel((b * d * n,), (SCAN_BLOCK,), (A_bar, Bu, h, np.int32(l)))
    y = (per_channel(C) * h).sum(axis=2)  # (b, d, l)
    if D is not None:
        y = y + D[:, None] * u
    if z is not None:
        y = y * z / (1 + cp.exp(-z))
    out[...] = y
    if last_state is not None:
        last_state[...] = h[..., -1]


def _as_cupy(cp, x):
    import torch

    if x is None:
        return None
    return cp.from_dlpack(x.detach().contiguous()) if isinstance(x, torch.Tensor) else cp.ascontiguousarray(x)


def _grouped(X, shapes_groups):
    """(b, n, l) → (b, 1, n, l); (b, g, n, l) and fixed (d, n) unchanged."""
    return X[:, None] if (shapes_groups is not None and X.ndim == 3) else X


_ARG_BITS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")  # bit i of the kernel's err word


_THREAD = threading.local()  # per thread: its error word, and its pool of words for checks read later


def _pinned_word():
    """A pinned int32 on the host that the kernels can write (unified addressing maps pinned memory)."""
    import torch

    word = torch.zeros(1, dtype=torch.int32, pin_memory=True)
    return word, word.numpy()


def _error_word():
    """This thread's word for a check read right after the kernel (two threads never share one)."""
    pair = getattr(_THREAD, "error_word", None)
    if pair is None:
        pair = _THREAD.error_word = _pinned_word()
    return pair


class _PendingCheck:
    """A forward's NaN/inf flag that the backward reads: a word of its own and an event after the kernel.

    The words come from a pool per thread and device and never go back to torch's allocator: a word is
    reused only once its event says the kernel that may write it has finished. A forward whose backward
    never runs is read when it is freed, and a NaN/inf there is a RuntimeWarning (an error cannot be
    raised from a finaliser): never silent.
    """

    def __init__(self, device):
        pool = _THREAD.__dict__.setdefault("pending", {}).setdefault(device, [])  # events belong to a device
        for i, (_, _, event) in enumerate(pool):
            if event.done:  # that kernel has finished (or the event was never recorded)
                self.word, self.word_np, self.event = pool.pop(i)
                break
        else:
            self.word, self.word_np = _pinned_word()
            self.event = _cupy().cuda.Event(block=False, disable_timing=True)
        self.word_np[0] = 0
        self.read = False
        self._pool = pool

    def recorded(self, stream):
        """Mark the end of the forward kernel on ``stream`` (a raw handle); returns self."""
        _record(self.event, stream)
        return self

    def raise_if_bad(self, ins):
        """Wait for the forward kernel (not for later work) and raise if it saw NaN/inf in ``ins``."""
        self.event.synchronize()
        self.read = True
        if self.word_np[0]:
            _raise_if_bad(int(self.word_np[0]), {k: tuple(v.shape) for k, v in zip(_ARG_BITS, ins) if v is not None})

    def __del__(self):
        pool = getattr(self, "_pool", None)
        if pool is None or sys.is_finalizing():  # at interpreter exit CUDA may be gone: nothing to read
            return
        bits = 0
        if not self.read:
            try:
                self.event.synchronize()
            except Exception:  # noqa: BLE001  (a finaliser must not raise; the word stays out of the pool)
                return
            bits = int(self.word_np[0])
        pool.append((self.word, self.word_np, self.event))
        if bits:
            names = [name for i, name in enumerate(_ARG_BITS) if bits >> i & 1]
            warnings.warn(f"selective_scan: {', '.join(names)} contained NaN or inf values; no error was raised "
                          "because the backward of that call never ran (with gradients the check is read by the "
                          "backward; under torch.no_grad() the call itself raises)", RuntimeWarning, stacklevel=2)


def _raise_if_bad(bits, shapes_of):
    """The kernel saw NaN/inf in the arguments whose bits are set: raise, naming them."""
    names = [name for i, name in enumerate(_ARG_BITS) if bits >> i & 1]
    detail = ", ".join(f"{name} (shape {shapes_of[name]})" for name in names)
    raise ValueError(f"{detail} contain{'s' if len(names) == 1 else ''} NaN or inf values: the selective scan "
                     f"needs finite inputs (pass check_finite=False to skip this check)")


class _RawStream:
    """A raw CUDA stream handle behind the CUDA stream protocol (what ``cupy.cuda.Stream.from_external`` takes)."""

    def __init__(self, ptr):
        self.ptr = ptr

    def __cuda_stream__(self):
        return (0, self.ptr)


@functools.cache
def _stream(ptr):
    """CuPy's handle on a torch stream (cached: one object per stream)."""
    cp = _cupy()
    from_external = getattr(cp.cuda.Stream, "from_external", None)
    if from_external is not None:  # CuPy ≥ 14
        return from_external(_RawStream(ptr))
    return cp.cuda.ExternalStream(ptr)


def _torch_stream_ptr(device_index):
    """torch's current stream of a device, as a raw handle (a fast path where torch has one)."""
    import torch

    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    return raw(device_index) if raw is not None else torch.cuda.current_stream(device_index).cuda_stream


def _torch_stream(device_index):
    """CuPy's handle on torch's current stream of a device (for CuPy kernels: the SSD launches)."""
    return _stream(_torch_stream_ptr(device_index))


def _record(event, stream):
    """Record a CuPy event on a raw stream handle."""
    _cupy().cuda.runtime.eventRecord(event.ptr, stream)


def _synchronize(stream):
    """Wait for the work queued on a raw stream handle."""
    _cupy().cuda.runtime.streamSynchronize(stream)


class _Call:
    """What one argument signature (kinds, shapes, dtypes, devices) fixes for v2 on torch tensors.

    Built once per signature by :func:`_torch_call_plan`, so that a call only allocates, fills in
    the data pointers and launches. ``flags``: the optional arguments present (D, z, delta_bias).
    """

    def __init__(self, shapes, args, half):
        self.b, self.d, self.l, self.n = shapes.batch, shapes.dim, shapes.seqlen, shapes.dstate
        self.device = args[0].device.index
        self.half = half
        # u, delta, B, C (and z) all in one half dtype: the forward reads them as they are (no-grad calls)
        kinds = {_dtype_name(x) for i, x in enumerate(args) if i in (0, 1, 3, 4, 6) and x is not None}
        self.native = kinds.pop() if half and len(kinds) == 1 and kinds <= {"float16", "bfloat16"} else None
        # B, C as (b, g, n, l) for the kernel: a (b, n, l) array is g = 1, the same memory
        self.B_groups = None if shapes.B_groups is None else max(1, shapes.B_groups)
        self.C_groups = None if shapes.C_groups is None else max(1, shapes.C_groups)
        self.chunk = backward_config(self.n)[0]
        self.flags = _flags(args[5], args[6], args[7], False)
        self.ints = (self.b, self.d, self.l, self.B_groups or 0, self.C_groups or 0)
        self.h_chk_shape = (self.b, self.d, n_tiles(self.l, self.chunk), self.n)
        self.present = [i for i, x in enumerate(args) if x is not None]
        # the gradients the backward sums with atomicAdd (dA, dB, dC, dD, ddelta_bias): parts of one zeroed
        # buffer of summed_total floats; (index, shape, strides, offset) of each, taken with as_strided
        self.summed, offset = [], 0
        for i, x in enumerate(args):
            if i in (2, 3, 4, 5, 7) and x is not None:
                shape = tuple(x.shape)
                strides = tuple(math.prod(shape[k + 1:]) for k in range(len(shape)))  # contiguous
                self.summed.append((i, shape, strides, offset))
                offset += x.numel()
        self.summed_total = offset
        self._launches = {}  # in_dtype or "backward" → its launch plan

    def forward_plan(self, in_dtype="float32"):
        launch = self._launches.get(in_dtype)
        if launch is None:
            launch = self._launches[in_dtype] = _forward_plan(self.device, self.b, self.d, self.l, self.n,
                                                              self.B_groups, self.C_groups, self.chunk, (), in_dtype)
        return launch

    def backward_plan(self):
        launch = self._launches.get("backward")
        if launch is None:
            chunk, nwarps = backward_config(self.n)
            launch = self._launches["backward"] = _backward_plan(self.device, self.b, self.d, self.l, self.n,
                                                                 self.B_groups, self.C_groups, chunk, nwarps, None)
        return launch


_CALLS = {}  # torch key (:func:`_torch_key`) → _Call


def _signature(args):
    """Kind, shape, dtype and device of each argument: all that the host-side checks and plans depend on.

    The key of every per-signature cache (:data:`_CALLS`, :data:`_CHECKED`, :data:`_SUPPORTS` and ssd_cuda's).
    """
    return tuple(None if x is None else (type(x), tuple(x.shape), x.dtype, _device_key(getattr(x, "device", "cpu")))
                 for x in args)


def _torch_key(args):
    """Shape, dtype and device index of each torch tensor (None for None): the key of the torch plans.

    Cheaper than :func:`_signature` (no conversions), so a call pays a few µs for its lookup. Raises
    AttributeError for an argument that is not a torch tensor.
    """
    return tuple([None if x is None else (x.shape, x.dtype, x.get_device()) for x in args])


def _torch_call_plan(args, key=None):
    """The :class:`_Call` of these torch arguments: checked once per key (no data is read)."""
    import torch

    try:
        plan = _CALLS.get(_torch_key(args) if key is None else key)
    except AttributeError:  # not all torch tensors: the full check below names the argument
        plan = None
    if plan is None:
        if not all(x is None or isinstance(x, torch.Tensor) for x in args):
            _validate(args, "v2")  # names the argument of another kind
            raise ValueError("selective_scan_cupy: mix of torch tensors and other arrays")
        shapes, half = _validate(args, "v2")
        plan = _Call(shapes, args, half)
        if len(_CALLS) > 1024:
            _CALLS.clear()
        _CALLS[_torch_key(args)] = plan
    return plan


def _launch_forward(plan, ins, delta_softplus, check, need_last, need_chk, in_dtype="float32", defer=False):
    """v2 forward on contiguous torch CUDA tensors ``ins`` (u, delta, A, B, C, D, z, delta_bias): float32, or with
    ``in_dtype`` "bfloat16"/"float16" u, delta, B, C, z in that dtype (read natively; A, D, delta_bias float32).

    Returns (out, last, h_chk, zeros, pending), None where not asked for. With ``check`` it waits for
    the kernel and raises if the kernel saw NaN/inf; with ``check`` and ``defer`` it does not wait but
    returns ``pending`` (a :class:`_PendingCheck`) for the backward to read. With ``need_chk`` (a
    backward will follow) it also queues ``zeros``, the zeroed buffer of the summed gradients.
    """
    import torch

    u = ins[0]
    f32 = dict(dtype=torch.float32)
    out = torch.empty_like(u)  # in u's dtype
    last = u.new_empty(plan.b, plan.d, plan.n, **f32) if need_last else None
    h_chk = u.new_empty(plan.h_chk_shape, **f32) if need_chk else None
    launch = plan.forward_plan(in_dtype)
    seg_buf = u.new_empty(plan.b, plan.d, launch.segments, 2, plan.n, **f32) if launch.segments > 1 else None
    err, pending = 0, None
    if check and defer:  # read by the backward, after it has queued its own kernels: the GPU never waits
        pending = _PendingCheck(plan.device)
        err = pending.word.data_ptr()
    elif check:
        word, word_np = _error_word()
        word_np[0] = 0
        err = word.data_ptr()
    flags = plan.flags | (_FLAGS["softplus"] if delta_softplus else 0) | (_FLAGS["last_state"] if need_last else 0)
    flags |= (_FLAGS["checkpoint"] if need_chk else 0) | (_FLAGS["check"] if check else 0)
    stream = _torch_stream_ptr(plan.device)
    _run_forward(launch, (*ins, out, last, h_chk, seg_buf), plan.ints, flags, err, stream)
    if pending is not None:  # at once: should anything below raise, the word still waits for this kernel
        pending.recorded(stream)
    zeros = u.new_zeros(plan.summed_total) if need_chk else None  # overlaps the kernel
    if check and pending is None:
        _synchronize(stream)  # the one cost of the check: wait for the kernel, read one word
        if word_np[0]:
            _raise_if_bad(int(word_np[0]), {k: tuple(v.shape) for k, v in zip(_ARG_BITS, ins) if v is not None})
    return out, last, h_chk, zeros, pending


def _launch_backward(plan, saved, delta_softplus, dout, dlast, zeros):
    """v2 backward on the saved forward inputs; returns the 8 input gradients (None where no input)."""
    import torch

    u, delta, A, B, C, D, z, delta_bias, h_chk = saved
    grads = [torch.empty_like(u), torch.empty_like(delta), None, None, None, None,
             None if z is None else torch.empty_like(z), None]
    for i, shape, strides, offset in plan.summed:  # views of the zeroed buffer
        grads[i] = zeros.as_strided(shape, strides, offset)
    launch = plan.backward_plan()
    seg_adj = u.new_empty(plan.b, plan.d, launch.segs, 2, plan.n) if launch.segs > 1 else None
    flags = plan.flags | (_FLAGS["softplus"] if delta_softplus else 0) | (16 if dlast is not None else 0)
    # the autograd engine runs this in its own thread: launch on torch's current stream there
    stream = _torch_stream_ptr(plan.device)
    _run_backward(launch, (u, delta, A, B, C, D, z, delta_bias, dout, h_chk, *grads, dlast), plan.ints, flags,
                  seg_adj, stream)
    return grads


@functools.cache  # one class per process
def _make_function():
    import torch

    class SelectiveScanV2(torch.autograd.Function):
        """torch.autograd.Function around v2's forward and backward kernels (float32 torch CUDA tensors)."""

        @staticmethod
        def forward(ctx, plan, delta_softplus, check, need_last, *ins):
            needs_grad = any(ctx.needs_input_grad[4:])
            out, last, h_chk, zeros, pending = _launch_forward(plan, ins, delta_softplus, check, need_last,
                                                               needs_grad, defer=needs_grad)
            if needs_grad:
                ctx.save_for_backward(*ins, h_chk)
                ctx.plan, ctx.zeros, ctx.pending = plan, zeros, pending
            ctx.delta_softplus = delta_softplus
            ctx.set_materialize_grads(False)
            return (out, last) if need_last else out

        @staticmethod
        def backward(ctx, dout, dlast=None):
            if torch.is_grad_enabled():  # create_graph=True: the kernels' gradients would carry no graph
                raise RuntimeError("selective_scan on CUDA: the kernel's backward cannot be differentiated again "
                                   "(create_graph=True); float64 inputs take the differentiable reference path")
            saved = ctx.saved_tensors
            dout = torch.zeros_like(saved[0]) if dout is None else dout.contiguous()
            dlast = None if dlast is None else dlast.contiguous()
            zeros, ctx.zeros = ctx.zeros, None  # a second backward (retain_graph) gets a fresh buffer
            if zeros is None:
                zeros = saved[0].new_zeros(ctx.plan.summed_total)
            grads = _launch_backward(ctx.plan, saved, ctx.delta_softplus, dout, dlast, zeros)
            if ctx.pending is not None:  # the forward's NaN/inf flag, read now that the backward is queued
                ctx.pending.raise_if_bad(saved[:8])
            return (None, None, None, None, *grads)

    return SelectiveScanV2


def _torch_v2(args, delta_softplus, return_last_state, check, plan=None):
    """selective_scan_cupy's v2 path for torch CUDA tensors: the lean path users (and MambaBlock) take.

    ``plan``: the arguments' :class:`_Call` when the caller has it (else looked up here).
    """
    import torch

    plan = _torch_call_plan(args) if plan is None else plan
    grad = torch.is_grad_enabled() and any([args[i].requires_grad for i in plan.present])
    native = plan.native if not grad else None
    ins = [None if x is None else x.contiguous() for x in args]
    if native:  # u, delta, B, C, z read in their half dtype by the kernel; A, D, delta_bias as float32
        ins = [x if i in (0, 1, 3, 4, 6) or x is None else x.float() for i, x in enumerate(ins)]
    elif plan.half:  # the backward kernel reads float32: convert once (arithmetic is float32 either way)
        ins = [None if x is None else x.float() for x in ins]
    get_device = getattr(torch._C, "_cuda_getDevice", None)  # torch.cuda.current_device() without its checks
    previous = get_device() if get_device is not None else torch.cuda.current_device()
    if plan.device != previous:
        torch.cuda.set_device(plan.device)
    try:
        if grad:
            result = _make_function().apply(plan, delta_softplus, check, return_last_state, *ins)
        else:  # no gradient wanted: launch directly, no autograd bookkeeping
            out, last, _, _, _ = _launch_forward(plan, ins, delta_softplus, check, return_last_state, False,
                                              native or "float32")
            result = (out, last) if return_last_state else out
    finally:
        if plan.device != previous:
            torch.cuda.set_device(previous)
    if not plan.half or native:
        return result
    u = args[0]
    return (result[0].to(u.dtype), result[1]) if return_last_state else result.to(u.dtype)


_DTYPES = ("float32", "float16", "bfloat16")  # inputs the kernels take (arithmetic in float32)


def _dtype_name(x):
    return str(x.dtype).rsplit(".", 1)[-1]


@functools.cache
def _cuda_usable():
    try:
        _cupy()
        return True
    except RuntimeError:
        return False


def supports(u, delta, A, B, C, D=None, z=None, delta_bias=None):
    """True when :func:`selective_scan_cupy` takes these torch CUDA tensors (used by ``selective_scan``).

    Needs CuPy and a GPU, torch CUDA tensors, and either a real A with 1 ≤ n ≤ 256 and u, delta, z,
    B, C in float32, float16 or bfloat16 (A, D, delta_bias real) — the v2 kernels — or a complex64 A
    with n ≤ 64 (:func:`mamba_edu.scans.cuda_complex.supports`). Anything else (float64, complex128,
    …) goes to the reference. Never raises.
    """
    args = (u, delta, A, B, C, D, z, delta_bias)
    if getattr(A, "is_complex", None) is not None and A.is_complex():
        return _complex().supports(args) and _cuda_usable()
    return _supported_key(args) is not None


def _complex():
    """The complex-A module (imported on first use): its host code and autograd Function."""
    from mamba_edu.scans import cuda_complex

    return cuda_complex


def _launch_complex(name, n, blocks, pointers, ints):
    """Launch kernel ``name`` of complex_scan.cu (built for n states) on torch's current stream."""
    cp = _cupy()
    kernel = _kernel(cp, "complex", name, DSTATE=n, CHK=_complex().CHK)
    args = (*(np.uint64(p) for p in pointers), *(np.int32(i) for i in ints))
    kernel((blocks,), (_complex().THREADS,), args, stream=_torch_stream(cp.cuda.runtime.getDevice()))


def _supported_key(args):
    """The :func:`_torch_key` of ``args`` when :func:`supports` holds for them, else None. Never raises."""
    try:
        import torch

        if not (isinstance(args[0], torch.Tensor) and args[0].is_cuda):
            return None
        key = _torch_key(args)  # the answer depends on shapes, dtypes and devices only: found once per key
        known = _SUPPORTS.get(key)
        if known is None:
            A = args[2]
            known = (all(x is None or isinstance(x, torch.Tensor) for x in args)
                     and not A.is_complex() and A.ndim == 2 and 1 <= A.shape[1] <= MAX_DSTATE
                     and all(x is None or _dtype_name(x) in _DTYPES for x in args))
            if len(_SUPPORTS) > 1024:
                _SUPPORTS.clear()
            _SUPPORTS[key] = known
        return key if known and _cuda_usable() else None
    except Exception:
        return None


_SUPPORTS = {}  # torch key → supports(...)


def scan_if_supported(args, delta_softplus, return_last_state):
    """``selective_scan``'s CUDA branch: the v2 kernel's result when :func:`supports` holds, else None.

    The same call as ``selective_scan_cupy(*args, delta_softplus=…, return_last_state=…)`` with its
    defaults (the NaN/inf check on). After the first call with a key, one dictionary lookup: a plan in
    :data:`_CALLS` exists only for arguments the kernel takes (its checks passed when it was made).
    """
    try:
        plan = _CALLS.get(_torch_key(args))
    except AttributeError:  # not all torch tensors: the reference path names the argument
        return None
    if plan is None:
        if args[2].is_complex():  # complex A: its own kernels (mamba_edu.scans.cuda_complex)
            complex_scan = _complex()
            if not (complex_scan.supports(args) and _cuda_usable()):
                return None
            return complex_scan.scan(args, bool(delta_softplus), bool(return_last_state), True, _launch_complex)
        key = _supported_key(args)
        if key is None:
            return None
        plan = _torch_call_plan(args, key)  # a clear ValueError for inconsistent shapes
    return _torch_v2(args, bool(delta_softplus), bool(return_last_state), True, plan)


def _device_key(device):
    """A hashable key for a device: torch's are hashable; for one that is not (CuPy's), its ordinal."""
    try:
        hash(device)
        return device
    except TypeError:
        return ("cupy", getattr(device, "id", None))


_CHECKED = {}  # argument signature (kinds, shapes, dtypes, devices) → what the host-side check found


def _checked(args):
    """check_selective_scan_inputs on the host, once per argument signature (the check reads no data)."""
    sig = _signature(args)
    shapes = _CHECKED.get(sig)
    if shapes is None:
        from mamba_edu.scans.checks import check_selective_scan_inputs

        shapes = check_selective_scan_inputs(*args, check_finite=False)  # shapes, dtypes, devices
        if len(_CHECKED) > 1024:
            _CHECKED.clear()
        _CHECKED[sig] = shapes
    return shapes


def _validate(args, version):
    """The checks of selective_scan_cupy (host only, cached per signature): (shapes, half) or a clear error."""
    u, A = args[0], args[2]
    shapes = _checked(args)
    if shapes.backend == "numpy":
        raise ValueError("u is a numpy array: selective_scan_cupy takes torch CUDA tensors or CuPy arrays "
                         "(use mamba_edu.selective_scan on the CPU)")
    if shapes.backend == "torch" and u.device.type != "cuda":
        raise ValueError(f"u is on {u.device}: selective_scan_cupy needs CUDA tensors (or use selective_scan)")
    if shapes.is_complex:
        raise NotImplementedError("selective_scan_cupy takes a complex A only as torch tensors with version='v2' "
                                  "(mamba_edu.scans.cuda_complex); use selective_scan for other complex inputs")
    if shapes.dstate > MAX_DSTATE:
        raise ValueError(f"A has shape {tuple(A.shape)}: n = {shapes.dstate} states, expected n ≤ {MAX_DSTATE}")
    torch_in = shapes.backend == "torch"
    half = False
    for name, x in zip(_ARG_BITS, args):
        if x is None:
            continue
        kind = _dtype_name(x)
        if kind == "float32":
            continue
        if torch_in and version == "v2" and kind in _DTYPES:
            half = True
            continue
        allowed = "float32, float16 or bfloat16" if torch_in and version == "v2" else "float32"
        raise ValueError(f"{name} has dtype {x.dtype}: selective_scan_cupy takes {allowed} (computes in float32)")
    return shapes, half


def selective_scan_cupy(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                        return_last_state=False, *, version="v2", check_finite=True):
    """Mamba's selective scan on a CUDA GPU: the same arguments and result as :func:`mamba_edu.selective_scan`.

    Parameters
    ----------
    u, delta : torch CUDA tensor or CuPy array, shape (b, d, l), float32 (torch: also float16, bfloat16 —
        read as they are by the forward when no gradient is wanted, else converted to float32 first)
    A : shape (d, n), real, 1 ≤ n ≤ 256; or (torch, v2) complex64 with n ≤ 64: the complex kernels of
        :mod:`mamba_edu.scans.cuda_complex` (B, C complex64, or float32 with last dimension 2l; the NaN/inf
        check is then one pass over the inputs)
    B, C : shape (b, n, l), (b, g, n, l) with g | d, or fixed (d, n)
    D, delta_bias : shape (d,), optional
    z : shape (b, d, l), optional — the output is multiplied by silu(z)
    delta_softplus : bool — Δ = softplus(delta + delta_bias)
    return_last_state : bool — also return h after the last step, shape (b, d, n), float32.
        Differentiable: gradients that flow through it enter the reverse scan exactly.
    version : {"v0", "v1", "v2"}, keyword only
        Which kernel runs (lesson 7 times them side by side). Only "v2" is differentiable and
        takes half-precision inputs.
    check_finite : bool, default True, keyword only
        Reject NaN/inf inputs with a ValueError naming the argument (v2). The v2 kernel tests every
        value as it loads it and sets a flag — no extra pass over memory. Without gradients the call
        waits for the kernel and reads the flag before returning (one stream synchronisation). With
        gradients the flag is read by the backward, after it has queued its kernels, so the GPU never
        waits for the host: the ValueError then comes from ``loss.backward()``, after other gradients may
        have been added into ``.grad`` (call ``zero_grad()`` before retrying); a forward whose backward
        never runs gives a RuntimeWarning when it is freed (run inference under ``torch.no_grad()``).
        ``False`` skips the check (for callers that validated already).

    Returns
    -------
    out : shape (b, d, l), same kind (torch or CuPy), device and dtype as u
    last_state : shape (b, d, n), only with ``return_last_state=True``

    Raises
    ------
    RuntimeError
        When CuPy or a CUDA GPU is missing; from the backward with ``create_graph=True`` (v2's backward
        is not differentiable again).
    ValueError
        On bad shapes or values (as :func:`mamba_edu.selective_scan`), unsupported dtypes,
        n > 256, CPU tensors, numpy arrays or an unknown version.
    NotImplementedError
        For a complex A in CuPy arrays or with v0/v1, gradients through v0/v1, half precision with v0/v1.

    Explained in lesson 7.
    """
    cp = _cupy()
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    args = (u, delta, A, B, C, D, z, delta_bias)
    torch_in = type(u).__module__.startswith("torch")
    if version == "v2" and torch_in and hasattr(A, "is_complex") and A.is_complex():  # its own kernels
        complex_scan = _complex()
        if not complex_scan.supports(args):
            _checked(args)  # mixed kinds or devices: a clear error
            if u.device.type != "cuda":
                raise ValueError(f"u is on {u.device}: selective_scan_cupy needs CUDA tensors (or use selective_scan)")
        # (dtypes or an n the kernel is not built for: a clear error from scan)
        return complex_scan.scan(args, bool(delta_softplus), bool(return_last_state), bool(check_finite),
                                 _launch_complex)
    if version == "v2" and torch_in:  # the lean path: plans cached per signature
        return _torch_v2(args, bool(delta_softplus), bool(return_last_state), bool(check_finite))
    import torch

    shapes, _ = _validate(args, version)
    torch_in = shapes.backend == "torch"
    B_ = _grouped(B, shapes.B_groups)
    C_ = _grouped(C, shapes.C_groups)
    b, d, l, n = shapes.batch, shapes.dim, shapes.seqlen, shapes.dstate

    if torch_in:
        if torch.is_grad_enabled() and any(x is not None and x.requires_grad for x in args):
            raise NotImplementedError(f"version {version!r} has no backward kernel: use version='v2' for gradients")
        out = u.new_empty(b, d, l)
        last = u.new_empty(b, d, n)
        with torch.cuda.device(u.device), _stream(torch.cuda.current_stream(u.device).cuda_stream):
            arrays = [_as_cupy(cp, x) for x in (u, delta, A, B_, C_, D, z, delta_bias)]
            scan_forward(version, *arrays, bool(delta_softplus), out=cp.from_dlpack(out),
                         last_state=cp.from_dlpack(last) if return_last_state else None)
        return (out, last) if return_last_state else out

    with cp.cuda.Device(u.device.id):
        arrays = [_as_cupy(cp, x) for x in (u, delta, A, B_, C_, D, z, delta_bias)]
        out = cp.empty((b, d, l), dtype=cp.float32)
        last = cp.empty((b, d, n), dtype=cp.float32) if return_last_state else None
        err = None
        if check_finite and version == "v2":
            err_buf = cp.zeros(1, dtype=cp.int32)
            err = err_buf.data.ptr
        scan_forward(version, *arrays, bool(delta_softplus), out=out, last_state=last, err=err)
        bits = int(err_buf.get()[0]) if err is not None else 0
        if bits:
            names = dict(zip(_ARG_BITS, (u, delta, A, B, C, D, z, delta_bias)))
            _raise_if_bad(bits, {k: tuple(v.shape) for k, v in names.items() if v is not None})
        if check_finite and version != "v2":
            for name, x in zip(_ARG_BITS, arrays):
                if x is not None and not bool(cp.isfinite(x).all()):
                    raise ValueError(f"{name} contains NaN or inf values (shape {tuple(x.shape)})")
    return (out, last) if return_last_state else out
