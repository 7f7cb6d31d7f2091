"""Build the official Mamba selective-scan CUDA extension from its public source, for side-by-side timing.

The official kernel is the anchor of lesson 7's benchmark: it is timed in the same process as ours.
It is built here from a checkout of https://github.com/state-spaces/mamba (``csrc/selective_scan``),
never vendored into ``mamba_edu``. Only the specialisations the benchmark uses are compiled (fp32 and
bf16 forward, fp32 backward, real A); the other entry points of its dispatch table are linked to
stubs written below that raise, so the build takes minutes instead of tens of minutes.

Usage (on a CUDA machine, with torch, nvcc and ninja)::

    MAMBA_CSRC=/path/to/mamba/csrc/selective_scan python benchmarks/official_kernel.py   # build + smoke test

The build goes to ``benchmarks/official/build`` (git-ignored); :func:`load` returns the module.
"""

import functools
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE / "official" / "build"

# what the benchmark calls; every other (input, weight) type pair is a stub
SOURCES = ("selective_scan.cpp", "selective_scan_fwd_fp32.cu", "selective_scan_fwd_bf16.cu",
           "selective_scan_bwd_fp32_real.cu")
STUBS = """// Stubs for the official kernel's dispatch entries this benchmark never calls (written for mamba_edu's
// benchmark; they only keep the linker happy and raise if reached).
#include <stdexcept>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include "selective_scan.h"
#include "selective_scan_common.h"

#define STUB(KIND, PARAMS, IT, WT) \\
    template <> void selective_scan_##KIND##_cuda<IT, WT>(PARAMS &, cudaStream_t) { \\
        throw std::runtime_error("not built for the mamba_edu benchmark"); }

template <typename input_t, typename weight_t> void selective_scan_fwd_cuda(SSMParamsBase &, cudaStream_t);
template <typename input_t, typename weight_t> void selective_scan_bwd_cuda(SSMParamsBwd &, cudaStream_t);
STUB(fwd, SSMParamsBase, at::Half, float)
STUB(fwd, SSMParamsBase, at::Half, complex_t)
STUB(bwd, SSMParamsBwd, float, complex_t)
STUB(bwd, SSMParamsBwd, at::Half, float)
STUB(bwd, SSMParamsBwd, at::Half, complex_t)
STUB(bwd, SSMParamsBwd, at::BFloat16, float)
STUB(bwd, SSMParamsBwd, at::BFloat16, complex_t)
"""
CUDA_FLAGS = ["-O3", "-std=c++17", "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
              "-U__CUDA_NO_BFLOAT16_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__",
              "-U__CUDA_NO_BFLOAT162_OPERATORS__", "-U__CUDA_NO_BFLOAT162_CONVERSIONS__",
              "--expt-relaxed-constexpr", "--expt-extended-lambda", "--use_fast_math", "-lineinfo",
              "-gencode", "arch=compute_90,code=sm_90"]


def load(csrc=None, verbose=False):
    """Compile (or reuse) the official extension; return the module with ``fwd`` and ``bwd``."""
    from torch.utils.cpp_extension import load as cpp_load

    prebuilt = os.environ.get("MAMBA_OFFICIAL_SO")  # a .so built earlier by this function (same torch)
    if prebuilt:
        import importlib.util

        import torch  # noqa: F401  (the extension links against torch's libraries)

        spec = importlib.util.spec_from_file_location("selective_scan_cuda_official", prebuilt)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    csrc = Path(csrc or os.environ.get("MAMBA_CSRC", HERE / "official" / "csrc"))
    if not (csrc / "selective_scan.cpp").exists():
        raise FileNotFoundError(f"no selective_scan.cpp in {csrc}: set MAMBA_CSRC to mamba's csrc/selective_scan")
    BUILD.mkdir(parents=True, exist_ok=True)
    stub = BUILD / "stubs.cu"
    stub.write_text(STUBS)
    os.environ.setdefault("MAX_JOBS", str(os.cpu_count() or 4))
    return cpp_load(name="selective_scan_cuda_official", sources=[str(csrc / s) for s in SOURCES] + [str(stub)],
                    extra_cflags=["-O3", "-std=c++17"], extra_cuda_cflags=CUDA_FLAGS,
                    extra_include_paths=[str(csrc)], build_directory=str(BUILD), verbose=verbose)


@functools.cache  # one class per extension, as selective_scan_fn's module-level class (not one per call)
def _function(ext):
    """The official kernel as a torch.autograd.Function (what ``selective_scan_fn`` does around it)."""
    import torch

    class OfficialScan(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
            out, x, *rest = ext.fwd(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
            ctx.delta_softplus = delta_softplus
            ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, x, out)
            return rest[0] if z is not None else out

        @staticmethod
        def backward(ctx, dout):
            u, delta, A, B, C, D, z, delta_bias, x, out = ctx.saved_tensors
            du, ddelta, dA, dB, dC, dD, ddelta_bias, *rest = ext.bwd(
                u, delta, A, B, C, D, z, delta_bias, dout.contiguous(), x, out, None, ctx.delta_softplus, False)
            return du, ddelta, dA, dB, dC, dD, rest[0] if z is not None else None, ddelta_bias, None

    return OfficialScan


def selective_scan_official(ext, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """Call the official kernel with ``selective_scan_fn``'s arguments (differentiable)."""
    return _function(ext).apply(u, delta, A, B, C, D, z, delta_bias, delta_softplus)


if __name__ == "__main__":
    import torch

    ext = load(sys.argv[1] if len(sys.argv) > 1 else None, verbose=True)
    b, d, l, n = 2, 8, 64, 16
    g = torch.Generator(device="cuda").manual_seed(0)
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)
    out = selective_scan_official(ext, r(b, d, l), r(b, d, l), -torch.rand(d, n, device="cuda"), r(b, 1, n, l),
                                  r(b, 1, n, l), r(d), r(b, d, l), r(d), True)
    print("official kernel built and ran:", tuple(out.shape), float(out.abs().mean()))
