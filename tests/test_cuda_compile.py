"""Every CUDA source of lessons 7 and 8 compiles for the H100/H200 (sm_90) — checked on machines without a GPU.

Uses NVRTC (the runtime compiler CuPy uses too) from the ``nvidia-cuda-nvrtc`` wheel through ctypes,
or ``nvcc`` when NVRTC is missing. No GPU and no CuPy needed.
"""

import ctypes
import glob
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mamba_edu.scans import cuda, cuda_complex, ssd_cuda

# (source, extra -D options): each kernel at the sizes the library compiles it with
CASES = [
    ("v0", {"DSTATE": 16}),
    ("v0", {"DSTATE": 5}),
    ("v1", {"SCAN_BLOCK": 256}),
    ("v2", {"DSTATE": 16, "LPC": 16, "NWARPS": 8, "TILE": 64, "CHK_TILE": 256}),
    ("v2", {"DSTATE": 3, "LPC": 4, "NWARPS": 2, "TILE": 16, "CHK_TILE": 128}),
    ("v2", {"DSTATE": 20, "LPC": 8, "NWARPS": 4, "TILE": 128, "CHK_TILE": 512, "MIN_BLOCKS": 2}),
    ("v2", {"DSTATE": 16, "LPC": 32, "NWARPS": 8, "TILE": 64, "CHK_TILE": 256}),
    ("v2", {"DSTATE": 16, "LPC": 16, "NWARPS": 8, "TILE": 64, "CHK_TILE": 256, "VAR_B": 0, "VAR_C": 0}),
    ("v2", {"DSTATE": 5, "LPC": 4, "NWARPS": 2, "TILE": 16, "CHK_TILE": 128, "VAR_B": 1, "VAR_C": 0}),
    ("v2", {"DSTATE": 16, "LPC": 16, "NWARPS": 4, "TILE": 128, "UNROLL_BLOCKS": 4, "STATES_ONLY": 1}),
    ("v2", {"DSTATE": 7, "LPC": 8, "NWARPS": 2, "TILE": 32, "STATES_ONLY": 1, "VAR_B": 0, "VAR_C": 0}),
    ("v2_backward", {"DSTATE": 16, "CHUNK": 8, "NWARPS": 8}),
    ("v2_backward", {"DSTATE": 7, "CHUNK": 4, "NWARPS": 2}),
]
# what the library compiles for every state size the tests cover (1 ≤ n ≤ 256)
N_COVERED = (1, 4, 16, 48, 64, 128, 256)
for _n in N_COVERED:
    _chunk, _nwarps = cuda.backward_config(_n)
    CASES.append(("v2", cuda._forward_defines(_n, _chunk, cuda.forward_config(_n))))
    CASES.append(("v2_backward", {"DSTATE": _n, "CHUNK": _chunk, "NWARPS": _nwarps}))
for _half in ("IN_BF16", "IN_FP16"):  # half-precision inputs read natively by the forward (no-grad calls)
    for _n in (1, 16, 73, 256):
        _chunk = cuda.backward_config(_n)[0]
        CASES.append(("v2", {**cuda._forward_defines(_n, _chunk, cuda.forward_config(_n, 2)), _half: 1}))
    CASES.append(("v2", {"DSTATE": 16, "LPC": 16, "NWARPS": 8, "TILE": 64, "STATES_ONLY": 1, _half: 1}))
    CASES.append(("v2", {"DSTATE": 5, "LPC": 4, "NWARPS": 2, "TILE": 16, "VAR_B": 0, "VAR_C": 0, _half: 1}))
CASES.append(("v2_backward", {"DSTATE": 16, "CHUNK": 8, "NWARPS": 16, "ADJ_ONLY": 1}))
CASES.append(("v2_backward", {"DSTATE": 256, "CHUNK": 8, "NWARPS": 8, "ADJ_ONLY": 1}))
for _n in (1, 16, 64):  # complex A (mamba_edu.scans.cuda_complex), at the library's CHK
    CASES.append(("complex", {"DSTATE": _n, "CHK": cuda_complex.CHK}))

# Lesson 8's SSD kernels ("ssd:<step>"), at every (p, n, Q, input types) that tests/gpu/test_ssd_cuda.py,
# tests/gpu/test_ssd_gpu.py and benchmarks/ssd_gpu.py launch (ssd_cuda.defines gives the -D options the library uses)
FP32 = {}
BF16_BENCH = {"x": "bfloat16", "dt": "bfloat16", "B": "bfloat16", "C": "bfloat16"}
ALL = ("x", "dt", "B", "C", "z")
SSD_CONFIGS = [((8, 16), Q, FP32) for Q in ssd_cuda.CHUNK_SIZES]
SSD_CONFIGS += [((8, 16), 64, dict.fromkeys(ALL, "bfloat16")), ((8, 16), 64, dict.fromkeys(ALL, "float16")),
                ((8, 16), 64, BF16_BENCH), ((4, 8), 16, FP32),
                ((8, 16), 32, dict.fromkeys(ALL, "bfloat16")),  # tests/gpu/test_ssd_gpu.py's bf16 test
                ((20, 24), 64, FP32), ((70, 140), 64, FP32), ((128, 256), 64, FP32), ((128, 256), 256, FP32),
                ((6, 10), 64, FP32), ((6, 10), 64, dict.fromkeys(ALL, "bfloat16"))]  # element-wise copies
SSD_CONFIGS += [((64, n), Q, types) for n in (64, 128) for Q in (64, 128, 256) for types in (FP32, BF16_BENCH)]
# sizes whose tiles are padded up to the next power-of-two count of fragments (before: a compile error)
SSD_CONFIGS += [((48, 48), 64, FP32), ((64, 96), 64, FP32), ((40, 112), 128, FP32), ((16, 80), 256, FP32)]
_seen = set()
# the register-budget knob (ssd_cuda.MIN_BLOCKS) at the benchmark's sizes, for the GPU session's A/B runs
for _mb in (0, 3):  # (0: no second __launch_bounds__ argument, the compiler's choice)
    for _step, _Q in (("scan", 64), ("state", 256)):
        _defs = {**ssd_cuda.defines(_step, 64, 128, _Q), "MIN_BLOCKS": _mb}
        CASES.append((f"ssd:{_step}", {k: v for k, v in _defs.items() if k != "MIN_BLOCKS" or _mb}))
# and slices of 32 (ssd_cuda.SLICE = 32), the other setting the GPU session compares
for _Q in (64, 256):
    CASES.append(("ssd:scan", {**ssd_cuda.defines("scan", 64, 128, _Q), "KS": 32, "KN": 32}))
    CASES.append(("ssd:state", {**ssd_cuda.defines("state", 64, 128, _Q), "KS": 32}))
CASES.append(("ssd:scan", {**ssd_cuda.defines("scan", 64, 128, 256, BF16_BENCH), "KS": 32, "KN": 32}))
# and three stage buffers (ssd_cuda.BUFFERS = 3), also where a chunk has fewer slices than buffers ahead
for _step, (_p, _n, _Q) in [("scan", (64, 128, 256)), ("scan", (64, 128, 64)), ("state", (64, 128, 256)),
                            ("state", (8, 16, 16)), ("scan", (8, 16, 16))]:
    CASES.append((f"ssd:{_step}", {**ssd_cuda.defines(_step, _p, _n, _Q), "NBUF": 3}))
# 16-bit tiles (MMA16) wherever x, B, C share a 16-bit dtype and p, n are multiples of 8 (ssd_cuda._mma16), and
# the float32 tiles there too (what a misaligned view gets)
SSD_CONFIGS += [((p, n), Q, dict.fromkeys(ALL, dtype)) for p, n in ((8, 8), (8, 16), (24, 40), (64, 128), (128, 256))
                for Q in ssd_cuda.CHUNK_SIZES for dtype in ("bfloat16", "float16")]
for (_p, _n), _Q, _types in SSD_CONFIGS:
    _16 = _types.get("x") in ("float16", "bfloat16") and _types.get("B") == _types.get("C") == _types["x"]
    for _mma16 in (False, True) if _16 and _p % 8 == 0 and _n % 8 == 0 else (False,):
        for _step in ssd_cuda.KERNEL_FILES:
            _defs = ssd_cuda.defines(_step, _p, _n, _Q, _types, _mma16)
            _key = (_step, tuple(sorted(_defs.items())))
            if _key not in _seen:
                _seen.add(_key)
                CASES.append((f"ssd:{_step}", _defs))


def test_shared_memory_fits_sm90():
    """Every state size gets tile shapes whose shared memory fits one H100/H200 block (227 KB), in both input widths."""
    for n in range(1, cuda.MAX_DSTATE + 1):
        chunk, nwarps = cuda.backward_config(n)
        for in_bytes in (4, 2):
            cfg = cuda.forward_config(n, in_bytes)
            assert cuda.v2_shared_bytes(n, forward=cfg, in_bytes=in_bytes) <= cuda.SMEM_LIMIT, (n, in_bytes)
        assert cuda.v2_shared_bytes(n, chunk, nwarps, backward=True) <= cuda.SMEM_LIMIT, n
    with pytest.raises(ValueError, match="n"):
        cuda.forward_config(cuda.MAX_DSTATE + 1)


@pytest.mark.parametrize("in_bytes", [4, 2])
def test_forward_tiles_keep_two_blocks_per_sm(in_bytes):
    """At every n the forward's shared memory, in the layout of the inputs' precision, stays within the
    ~110 KB that lets two blocks share an SM (half precision stages raw tiles too: n = 73 needs a shorter tile)."""
    for n in range(1, cuda.MAX_DSTATE + 1):
        cfg = cuda.forward_config(n, in_bytes)
        assert cuda.v2_shared_bytes(n, forward=cfg, in_bytes=in_bytes) <= 110 * 1024, (n, cfg)
    assert cuda.forward_config(73, 2)["tile"] < cuda.forward_config(73, 4)["tile"]


def _find_nvrtc():
    """Path of libnvrtc.so from the nvidia-cuda-nvrtc wheel (any CUDA major), or None."""
    for base in sys.path:
        hits = sorted(glob.glob(os.path.join(base, "nvidia", "*", "lib", "libnvrtc.so*")))
        hits += sorted(glob.glob(os.path.join(base, "nvidia", "cuda_nvrtc", "lib", "libnvrtc.so*")))
        hits = [h for h in hits if "builtins" not in os.path.basename(h)]
        if hits:
            return hits[0]
    return None


def _cuda_include():
    """The CUDA headers (cuda_bf16.h, cuda_fp16.h) from the nvidia-cuda-runtime wheel, as -I options (CuPy finds
    the toolkit's own on a GPU machine)."""
    for base in sys.path:
        hits = sorted(glob.glob(os.path.join(base, "nvidia", "*", "include", "cuda_bf16.h")))
        if hits:
            return [f"-I{os.path.dirname(hits[0])}"]
    return []


def _nvrtc_compile(lib, source, name, options):
    """Compile with NVRTC; return (ok, log)."""
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), name.encode(), 0, None, None)
    assert rc == 0, f"nvrtcCreateProgram failed with {rc}"
    try:
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        rc = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        cubin_size = ctypes.c_size_t()
        if rc == 0:
            assert lib.nvrtcGetCUBINSize(prog, ctypes.byref(cubin_size)) == 0
        return rc == 0 and cubin_size.value > 0, log.value.decode(errors="replace")
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _nvcc_compile(source, name, options, tmp_path):
    src = tmp_path / f"{name}.cu"
    src.write_text(source)
    cmd = ["nvcc", "-cubin", "-arch=sm_90", *options, "-o", str(tmp_path / f"{name}.cubin"), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("version, defines", CASES, ids=[f"{v}-{'-'.join(map(str, d.values()))}" for v, d in CASES])
def test_kernel_compiles_for_sm90(version, defines, tmp_path):
    if version.startswith("ssd:"):  # lesson 8's kernels (they include cuda_bf16.h too)
        source, version = ssd_cuda.kernel_source(version[4:]), version[4:]
    else:
        source = cuda.kernel_source(version)
    fast = [] if version in cuda.EXACT_MATH else ["--use_fast_math"]  # the options the library compiles with
    options = [f"-D{k}={v}" for k, v in defines.items()] + [*fast, "-std=c++17", *_cuda_include()]
    path = _find_nvrtc()
    if path is not None:
        lib = ctypes.CDLL(path)
        ok, log = _nvrtc_compile(lib, source, f"{version}.cu", ["--gpu-architecture=sm_90", *options])
    elif shutil.which("nvcc"):
        ok, log = _nvcc_compile(source, version, options, tmp_path)
    else:
        pytest.skip("neither NVRTC (pip install nvidia-cuda-nvrtc) nor nvcc is available")
    assert ok, f"{version} failed to compile for sm_90:\n{log}"
    assert "warning" not in log.lower(), f"{version} compiled with warnings:\n{log}"


def test_every_source_is_covered():
    """Each .cu file shipped in the package is exercised by CASES."""
    shipped = {os.path.basename(p) for p in glob.glob(str(cuda.KERNEL_DIR / "*.cu"))}
    covered = {ssd_cuda.KERNEL_FILES[v[4:]] if v.startswith("ssd:") else cuda.KERNEL_FILES[v] for v, _ in CASES}
    assert shipped == covered


def test_broken_source_fails_to_compile():
    """The check can fail: a syntax error is reported, not swallowed."""
    path = _find_nvrtc()
    if path is None:
        pytest.skip("NVRTC not available")
    ok, log = _nvrtc_compile(ctypes.CDLL(path), 'extern "C" __global__ void k() { int x = ; }', "bad.cu",
                             ["--gpu-architecture=sm_90"])
    assert not ok and "error" in log.lower()


# ---------- the CPU-side behaviour of mamba_edu.scans.cuda (no GPU, no CuPy needed) ----------
@pytest.fixture
def fresh_gpu_probes():
    """Forget what an earlier test found out about CuPy (both probes cache a success), before and after."""
    from mamba_edu._backend import gpu_available

    caches = (cuda._cupy, gpu_available, cuda._cuda_usable)
    for f in caches:
        f.cache_clear()
    yield
    for f in caches:
        f.cache_clear()


def test_without_cupy_selective_scan_cupy_raises_runtime_error(monkeypatch, rng, fresh_gpu_probes):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail, as on a machine without it
    assert not cuda.gpu_available()
    u = rng.standard_normal((1, 2, 5))
    with pytest.raises(RuntimeError, match="CuPy"):
        cuda.selective_scan_cupy(u, u, -np.ones((2, 3)), rng.standard_normal((1, 3, 5)), rng.standard_normal((1, 3, 5)))


def test_without_cupy_ssd_kernels_raise_and_ssd_scan_falls_back(monkeypatch, fresh_gpu_probes):
    """Lesson 8: ssd_scan_cuda says what is missing; ssd_scan's dispatch never picks it (supports is False)."""
    import torch

    from mamba_edu.scans.ssd import ssd_scan

    monkeypatch.setitem(sys.modules, "cupy", None)
    rng = np.random.default_rng(0)
    args = dict(x=rng.standard_normal((1, 5, 2, 3)), dt=rng.uniform(0, 1, (1, 5, 2)), A=-np.ones(2),
                B=rng.standard_normal((1, 5, 1, 4)), C=rng.standard_normal((1, 5, 1, 4)))
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in args.items()}
    with pytest.raises(RuntimeError, match="ssd_scan_cuda needs CuPy"):
        ssd_cuda.ssd_scan_cuda(**t)
    assert not ssd_cuda.supports(**t)
    assert ssd_scan(**t).shape == (1, 5, 2, 3)


def test_kernel_source_names_the_bad_version():
    with pytest.raises(ValueError, match="v7"):
        cuda.kernel_source("v7")
    assert "selective_scan_fwd_v2" in cuda.kernel_source("v2")


def test_recorded_benchmark_is_a_real_h200_table():
    rec = cuda.recorded_benchmark()
    assert "H200" in rec["device"] and rec["date"][:4].isdigit() and rec["copy_bandwidth_GBps"] > 1000
    rows = rec["rows"]
    shapes = {tuple(r["shape"]) for r in rows}
    assert {(8, 1536, 2048, 16), (1, 1536, 16384, 16)} <= shapes
    for r in rows:
        assert r["us"] > 0
        if r.get("target_us") is not None:  # the verdict agrees with the numbers
            assert r["target_met"] == (r["us"] <= r["target_us"])
    with pytest.raises(FileNotFoundError, match="gpu_scan.py"):
        cuda.recorded_benchmark("/nonexistent/table.json")


def test_backward_segments_on_cpu():
    """The backward splits time only when b·d warps are too few; segments cover every tile once."""
    assert cuda.backward_segments(8, 1536, 2048) == (1, 8)
    assert cuda.backward_segments(1, 1536, 16384) == (6, 11)
    assert cuda.backward_segments(4, 768, 1024) == (2, 2)  # 3072 channels: below the 4096 line
    segs, per = cuda.backward_segments(1, 512, 16384)
    assert segs > 1 and (segs - 1) * per < cuda.n_tiles(16384) <= segs * per
    assert cuda.backward_segments(1, 3, 100) == (1, 1)
    assert cuda.backward_segments(2, 5, 2000, segments=3) == (3, 3)


def test_time_segments_on_cpu():
    """The grid-level time split only kicks in when b·d gives too few warps."""
    assert cuda.time_segments(8, 1536, 2048) == (1, 2048)
    segments, seg_len = cuda.time_segments(1, 1536, 16384)
    assert segments >= 2 and (segments - 1) * seg_len < 16384 <= segments * seg_len
    assert seg_len % cuda.FORWARD["tile"] == 0 and seg_len % (32 * cuda.CHUNK) == 0
    assert cuda.time_segments(2, 11, 1002, forward={"segments": 3})[0] == 2  # segments are multiples of 256 steps


def test_benchmark_pairs_alternate_the_two_calls(monkeypatch):
    """benchmarks/gpu_scan.py times ours beside the official call alternately (a b, b a, …): both see the same drift."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("gpu_scan", Path(__file__).parents[1] / "benchmarks" / "gpu_scan.py")
    gpu_scan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_scan)
    clock, order = [0.0], []

    class Event:  # a fake CUDA event: the clock when recorded; the "GPU" advances it in the calls below
        def __init__(self, enable_timing=False):
            self.t = None

        def record(self):
            self.t = clock[0]

        def synchronize(self):
            pass

        def elapsed_time(self, other):
            return other.t - self.t  # ms

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)

    def call(name, ms):
        def run():
            order.append(name)
            clock[0] += ms * (1 + len(order) / 100)  # a slow drift: later calls take longer
        return run

    a, b = gpu_scan.time_torch_pair(call("a", 1.0), call("b", 2.0), repeats=4, warmup=1)
    assert order == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert a == pytest.approx(1e3 * statistics.median([1.03, 1.06, 1.07, 1.10]))
    assert b / a == pytest.approx(2.0)  # the drift cancels (taken one after the other: 2.02)
