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
// cores (mma.sync, ssd_mma.cuh: TF32 inputs, float32 accumulation, 16 x 16 output fragments). B^T is
// read from the staged B rows as a column-major matrix. Warp w owns the output fragments w, w + NWARPS, ...
//
// Compile-time sizes (-D): N, Q, TT (a multiple of 16 dividing Q), NWARPS; input types T_B, T_C.
// Grid: ((Q/TT)^2, chunks, b*g). Layout: B, C (b, l, g, n); CB (b, chunks, g, Q, Q) float32.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
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
#define LDC (NK + 4)          // row stride in shared memory (floats): an odd multiple of 4, for conflict-free
                              // fragment reads
#define FRAGS ((TT / 16) * (TT / 16))
#define PER_WARP ((FRAGS + NWARPS - 1) / NWARPS)
#define THREADS (NWARPS * 32)

#include "ssd_types.cuh"
#include "ssd_mma.cuh"

extern "C" __global__ void __launch_bounds__(THREADS)
ssd_bmm(const T_B* __restrict__ B, const T_C* __restrict__ C, float* __restrict__ CB, int l, int g, int nchunks) {
    extern __shared__ float smem[];
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
        sC[r * LDC + j] = to_tf32(vc);
        sB[r * LDC + j] = to_tf32(vb);
    }
    __syncthreads();

    // NWARPS is a multiple of the fragment columns (TT/16), so all of a warp's fragments lie in one
    // column fj: its B^T fragment is loaded once per depth step and reused for each of them.
    static_assert(NWARPS % (TT / 16) == 0, "NWARPS must be a multiple of TT/16");
    const int fj = warp % (TT / 16);
    Acc16 acc[PER_WARP];
#pragma unroll
    for (int k = 0; k < PER_WARP; ++k) acc_zero(acc[k]);
    for (int kk = 0; kk < NK; kk += 8) {
        if (warp >= FRAGS) break;  // (only when the tile has fewer fragments than warps)
        FragB b;
        load_b<1, LDC>(b, sB + fj * 16 * LDC + kk);  // B^T: (j, s) at sB[s][j]
#pragma unroll
        for (int k = 0; k < PER_WARP; ++k) {
            const int f = warp + k * NWARPS;
            if (f < FRAGS) {
                FragA a;
                load_a<LDC, 1>(a, sC + (f / (TT / 16)) * 16 * LDC + kk);  // (t, j) at sC[t][j]
                mma(acc[k], a, b);
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
            acc_store<Q>(acc[k], out + fi * 16 * Q + fj * 16);
        }
    }
}
