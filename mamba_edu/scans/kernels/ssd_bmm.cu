// SSD forward, step 2a (lesson 8): C B^T inside every chunk, once per group (shared by its heads).
//
// The diagonal block of the semiseparable matrix M of chunk c is, for s <= t,
//     M[t, s] = (C_t . B_s) * exp(cs_t - cs_s) * delta_s,
// and only the decay factors depend on the head: C_t . B_s is the same for the h/g heads of a group.
// So it is computed here once per (batch, chunk, group), as a (Q x n)(n x Q) product, and step 4
// reads it instead of recomputing it for every head.
//
// One block computes a TT x TT tile (rows t0 .., columns s0 ..) of the Q x Q matrix; tiles above the
// diagonal (s0 > t0) are never read by step 4 and are skipped. C and B rows of the tile are staged
// in shared memory (rounded to TF32; zeros past l and past n), then the warps multiply on tensor
// cores with the WMMA API (TF32 inputs, float32 accumulation, 16 x 16 x 8 fragments). B^T is read
// from the staged B rows as a column-major matrix. Warp w owns the output fragments w, w + NWARPS, ...
//
// Compile-time sizes (-D): N, Q, TT (a multiple of 16 dividing Q), NWARPS; input types T_B, T_C.
// Grid: ((Q/TT)^2, chunks, b*g). Layout: B, C (b, l, g, n); CB (b, chunks, g, Q, Q) float32.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <mma.h>

using namespace nvcuda;

#ifndef N
#define N 128
#endif
#ifndef Q
#define Q 256
#endif
#ifndef TT
#define TT 64
#endif
#ifndef NWARPS
#define NWARPS 8
#endif
#ifndef T_B
#define T_B float
#endif
#ifndef T_C
#define T_C float
#endif

#define NK ((N + 7) / 8 * 8)  // n padded to the MMA depth (8)
#define LDC (NK + 4)          // row stride in shared memory (floats; a multiple of 4 as WMMA requires)
#define FRAGS ((TT / 16) * (TT / 16))
#define PER_WARP ((FRAGS + NWARPS - 1) / NWARPS)
#define THREADS (NWARPS * 32)

#include "ssd_types.cuh"

extern "C" __global__ void __launch_bounds__(THREADS)
ssd_bmm(const T_B* __restrict__ B, const T_C* __restrict__ C, float* __restrict__ CB, int l, int g, int nchunks) {
    extern __shared__ __align__(128) float smem[];  // WMMA wants 32-byte aligned tiles
    float* sC = smem;             // TT x LDC: C of rows t0 ..
    float* sB = sC + TT * LDC;    // TT x LDC: B of rows s0 ..

    const int rt = blockIdx.x / (Q / TT), st = blockIdx.x % (Q / TT);
    if (st > rt) return;  // above the diagonal: never read
    const int c = blockIdx.y, bg = blockIdx.z, bi = bg / g, gi = bg % g;
    const int t0 = rt * TT, s0 = st * TT;
    const int tid = threadIdx.x, warp = tid >> 5;
    const long chunk0 = (long)c * Q;

    for (int e = tid; e < TT * NK; e += THREADS) {
        const int r = e / NK, j = e % NK;
        const long tc = chunk0 + t0 + r, tb = chunk0 + s0 + r;
        float vc = 0.f, vb = 0.f;
        if (j < N && tc < l) vc = to_f(C[(((long)bi * l + tc) * g + gi) * N + j]);
        if (j < N && tb < l) vb = to_f(B[(((long)bi * l + tb) * g + gi) * N + j]);
        sC[r * LDC + j] = wmma::__float_to_tf32(vc);
        sB[r * LDC + j] = wmma::__float_to_tf32(vb);
    }
    __syncthreads();

    // NWARPS is a multiple of the fragment columns (TT/16), so all of a warp's fragments lie in one
    // column fj: its B^T fragment is loaded once per depth step and reused for each of them.
    static_assert(NWARPS % (TT / 16) == 0, "NWARPS must be a multiple of TT/16");
    const int fj = warp % (TT / 16);
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[PER_WARP];
#pragma unroll
    for (int k = 0; k < PER_WARP; ++k) wmma::fill_fragment(acc[k], 0.f);
    for (int kk = 0; kk < NK; kk += 8) {
        if (warp >= FRAGS) break;  // (only when the tile has fewer fragments than warps)
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> b;
        wmma::load_matrix_sync(b, sB + fj * 16 * LDC + kk, LDC);  // B^T: (j, s) at sB[s][j]
#pragma unroll
        for (int k = 0; k < PER_WARP; ++k) {
            const int f = warp + k * NWARPS;
            if (f < FRAGS) {
                wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a;
                wmma::load_matrix_sync(a, sC + (f / (TT / 16)) * 16 * LDC + kk, LDC);  // (t, j) at sC[t][j]
                wmma::mma_sync(acc[k], a, b, acc[k]);
            }
        }
    }
    // straight to global memory: the Q x Q matrix has no padding (TT divides Q)
    float* out = CB + (((long)bi * nchunks + c) * g + gi) * (long)(Q * Q) + (long)t0 * Q + s0;
#pragma unroll
    for (int k = 0; k < PER_WARP; ++k) {
        const int f = warp + k * NWARPS;
        if (f < FRAGS) {
            const int fi = f / (TT / 16);  // (its column is fj)
            wmma::store_matrix_sync(out + fi * 16 * Q + fj * 16, acc[k], Q, wmma::mem_row_major);
        }
    }
}
