// SSD forward, step 4 of 4 (lesson 8): the outputs of a chunk, from its inputs and the state entering it.
//
// Inside chunk c (steps t, s = 0 .. Q-1 of the chunk; cs, delta from step 1; S = the state entering
// the chunk, from step 3; CB[t, s] = C_t . B_s from step 2a), the output of one head is
//     y_t = (exp(cs_t) C_t) S^T                                 (off-diagonal blocks of M: rank n)
//         + sum_{s <= t} CB[t, s] exp(cs_t - cs_s) delta_s x_s   (diagonal block of M: "attention")
//         + D x_t,                      then   out_t = y_t * silu(z_t)   (D, z optional).
// The exponents cs_t and cs_t - cs_s (s <= t) are <= 0: nothing here grows (exp(+cs) is never formed).
//
// One block computes TT rows (steps t0 .. t0+TT-1 of the chunk) x TP columns (channels p0 ..) of y:
//   1. stage the rows of C, each scaled by its decay exp(cs_t), and S (TP x n) in shared memory;
//      acc = (exp(cs) C) S^T on tensor cores;
//   2. for every slice of KS = TT steps s up to the diagonal (causality: later slices contribute 0):
//      stage x of the slice and the TT x KS block M[t, s] = CB[t, s] exp(cs_t - cs_s) delta_s for
//      s <= t, 0 above (the mask is applied before the exp: no inf); acc += M x_slice;
//   3. add D x, gate with silu(z), write the tile once in x's type.
// Shared memory: phase 1's tiles (C, S) and phase 2's (x, M; later the output) share one buffer.
// Tensor-core products use the WMMA API with TF32 inputs and float32 accumulation (16 x 16 x 8
// fragments), like the official kernel's tl.dot on fp32; values are rounded to TF32 as they are
// staged. Warp w owns the output fragments w, w + NWARPS, ... .
//
// Compile-time sizes (-D): P, N, Q, TT (rows per block, a multiple of 16 dividing Q), TP (channels
// per block, a multiple of 16), NWARPS (THREADS = 32 NWARPS must be a multiple of TT); input types
// T_X, T_C, T_Z (float, __half, __nv_bfloat16); the output has x's type.
// Grid: ((Q/TT) * ceil(P/TP), chunks, b*h).
// Layout: x, z, out (b, l, h, p); C (b, l, g, n), head hi uses group hi / (h/g); CB (b, chunks, g, Q, Q);
// D (h,) or (h, p) float32; dt_out, cs (b, h, chunks, Q); states (b, chunks, h, p, n) = the state
// entering each chunk. flags: 1 = D given, 2 = D has shape (h, p), 4 = z given.

#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <mma.h>

using namespace nvcuda;

#ifndef P
#define P 64
#endif
#ifndef N
#define N 128
#endif
#ifndef Q
#define Q 256
#endif
#ifndef TT
#define TT 64
#endif
#ifndef TP
#define TP 64
#endif
#ifndef NWARPS
#define NWARPS 8
#endif
#ifndef T_X
#define T_X float
#endif
#ifndef T_C
#define T_C float
#endif
#ifndef T_Z
#define T_Z float
#endif

#define KS TT                              // steps per slice of the diagonal part
#define NK ((N + 7) / 8 * 8)               // n padded to the MMA depth (8)
#define LDC (NK + 4)                       // row strides in shared memory (floats, multiples of 4)
#define LDX (TP + 4)
#define LDM ((KS > TP ? KS : TP) + 4)      // M (TT x KS), later the output tile (TT x TP)
#define PHASE1 (TT * LDC + TP * LDC)       // floats of phase 1's tiles
#define PHASE2 (KS * LDX + TT * LDM)       // floats of phase 2's tiles
#define OUT_FRAGS ((TT / 16) * (TP / 16))
#define OUT_PER_WARP ((OUT_FRAGS + NWARPS - 1) / NWARPS)
#define THREADS (NWARPS * 32)

typedef wmma::fragment<wmma::accumulator, 16, 16, 8, float> FragAcc;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> FragRowA;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> FragRowB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::col_major> FragColB;

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ void put(float* p, float v) { *p = v; }
__device__ __forceinline__ void put(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void put(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

extern "C" __global__ void __launch_bounds__(THREADS)
ssd_chunk_scan(const T_X* __restrict__ x, const T_C* __restrict__ C, const float* __restrict__ CB,
               const T_Z* __restrict__ z, const float* __restrict__ D, const float* __restrict__ dt_out,
               const float* __restrict__ cs, const float* __restrict__ states, T_X* __restrict__ out,
               int l, int h, int g, int nchunks, int flags) {
    extern __shared__ __align__(128) float smem[];  // WMMA wants 32-byte aligned tiles
    float* sC = smem;                 // phase 1: TT x LDC, exp(cs_t) C_t of the block's rows
    float* sS = sC + TT * LDC;        // phase 1: TP x LDC, the state entering the chunk
    float* sX = smem;                 // phase 2: KS x LDX, x of the slice
    float* sM = sX + KS * LDX;        // phase 2: TT x LDM, the masked block of M; then the output tile

    const int tiles_p = (P + TP - 1) / TP;
    const int rt = blockIdx.x / tiles_p, p0 = (blockIdx.x % tiles_p) * TP;
    const int c = blockIdx.y, bh = blockIdx.z, bi = bh / h, hi = bh % h, gi = hi / (h / g);
    const int tid = threadIdx.x, warp = tid >> 5;
    const int t0 = rt * TT;                                // first row of the tile inside the chunk
    const long chunk0 = (long)c * Q;                       // first step of the chunk
    const long cs_base = ((long)bh * nchunks + c) * Q;

    // ---- 1. acc = (exp(cs_t) C_t) S^T
    for (int e = tid; e < TT * NK; e += THREADS) {
        const int r = e / NK, j = e % NK;
        const long t = chunk0 + t0 + r;
        float v = 0.f;
        if (t < l && j < N) v = to_f(C[(((long)bi * l + t) * g + gi) * N + j]) * __expf(cs[cs_base + t0 + r]);
        sC[r * LDC + j] = wmma::__float_to_tf32(v);
    }
    const float* S = states + (((long)bi * nchunks + c) * h + hi) * (long)(P * N);
    for (int e = tid; e < TP * NK; e += THREADS) {
        const int i = e / NK, j = e % NK;
        float v = 0.f;
        if (p0 + i < P && j < N) v = S[(long)(p0 + i) * N + j];
        sS[i * LDC + j] = wmma::__float_to_tf32(v);
    }
    __syncthreads();

    // NWARPS is a multiple of the fragment columns (TP/16), so all of a warp's output fragments lie in
    // one column fj: its right-hand fragment is loaded once per depth step and reused for each of them.
    static_assert(NWARPS % (TP / 16) == 0, "NWARPS must be a multiple of TP/16");
    static_assert(THREADS % KS == 0, "THREADS must be a multiple of KS");
    const int fj = warp % (TP / 16);
    FragAcc acc[OUT_PER_WARP];
#pragma unroll
    for (int k = 0; k < OUT_PER_WARP; ++k) wmma::fill_fragment(acc[k], 0.f);
    for (int kk = 0; kk < NK; kk += 8) {
        if (warp >= OUT_FRAGS) break;  // (only when the tile has fewer fragments than warps)
        FragColB b;
        wmma::load_matrix_sync(b, sS + fj * 16 * LDC + kk, LDC);  // S^T: (j, i) at sS[i][j]
#pragma unroll
        for (int k = 0; k < OUT_PER_WARP; ++k) {
            const int f = warp + k * NWARPS;
            if (f < OUT_FRAGS) {
                FragRowA a;
                wmma::load_matrix_sync(a, sC + (f / (TP / 16)) * 16 * LDC + kk, LDC);  // (t, j) at sC[t][j]
                wmma::mma_sync(acc[k], a, b, acc[k]);
            }
        }
    }

    // ---- 2. the diagonal block, one slice of KS steps at a time, up to the diagonal
    const int s_mine = tid % KS;  // THREADS is a multiple of KS: each thread stages one column of M
    for (int sb = 0; sb <= rt; ++sb) {
        const int s0 = sb * KS;
        __syncthreads();  // the previous phase's tiles are no longer read
        for (int e = tid; e < KS * TP; e += THREADS) {
            const int s = e / TP, i = e % TP;
            const long t = chunk0 + s0 + s;
            float v = 0.f;
            if (t < l && p0 + i < P) v = to_f(x[(((long)bi * l + t) * h + hi) * P + p0 + i]);
            sX[s * LDX + i] = wmma::__float_to_tf32(v);
        }
        const float cs_s = cs[cs_base + s0 + s_mine], dt_s = dt_out[cs_base + s0 + s_mine];
        const float* cb = CB + (((long)bi * nchunks + c) * g + gi) * (long)(Q * Q) + (long)t0 * Q + s0 + s_mine;
        for (int r = tid / KS; r < TT; r += THREADS / KS) {
            float v = 0.f;  // M[t, s] = CB[t, s] exp(cs_t - cs_s) delta_s for s <= t, else 0 (masked before the exp)
            if (s0 + s_mine <= t0 + r) v = cb[(long)r * Q] * __expf(cs[cs_base + t0 + r] - cs_s) * dt_s;
            sM[r * LDM + s_mine] = wmma::__float_to_tf32(v);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < KS; kk += 8) {
            if (warp >= OUT_FRAGS) break;
            FragRowB b;
            wmma::load_matrix_sync(b, sX + kk * LDX + fj * 16, LDX);  // (s, i) at sX[s][i]
#pragma unroll
            for (int k = 0; k < OUT_PER_WARP; ++k) {
                const int f = warp + k * NWARPS;
                if (f < OUT_FRAGS) {
                    FragRowA a;
                    wmma::load_matrix_sync(a, sM + (f / (TP / 16)) * 16 * LDM + kk, LDM);  // (t, s) at sM[t][s]
                    wmma::mma_sync(acc[k], a, b, acc[k]);
                }
            }
        }
    }

    // ---- 3. D skip, silu(z) gate, one write in x's type
    __syncthreads();
#pragma unroll
    for (int k = 0; k < OUT_PER_WARP; ++k) {
        const int f = warp + k * NWARPS;
        if (f < OUT_FRAGS) {
            const int fi = f / (TP / 16);  // (its column is fj)
            wmma::store_matrix_sync(sM + fi * 16 * LDM + fj * 16, acc[k], LDM, wmma::mem_row_major);
        }
    }
    __syncthreads();
    for (int e = tid; e < TT * TP; e += THREADS) {
        const int r = e / TP, i = e % TP;
        const long t = chunk0 + t0 + r;
        if (t >= l || p0 + i >= P) continue;
        const long o = (((long)bi * l + t) * h + hi) * P + p0 + i;
        float v = sM[r * LDM + i];
        if (flags & 1) v += ((flags & 2) ? D[hi * P + p0 + i] : D[hi]) * to_f(x[o]);
        if (flags & 4) {
            const float zz = to_f(z[o]);
            v *= zz / (1.f + __expf(-zz));
        }
        put(out + o, v);
    }
}
