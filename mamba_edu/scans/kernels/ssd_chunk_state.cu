// SSD forward, step 2 of 4 (lesson 8): the state each chunk leaves at its end, as a matrix product.
//
// Started from h = 0, the recurrence h_t = exp(delta_t A) h_{t-1} + delta_t x_t B_t^T over the Q steps
// s of chunk c leaves
//     states[c] = sum_s  exp(cs_last - cs_s) * delta_s * x_s B_s^T          (p x n)
//               = Xw^T B,   Xw[s, :] = w_s x_s,  w_s = exp(cs_last - cs_s) delta_s  (exponent <= 0)
// a (p x Q)(Q x n) product per (batch, chunk, head), with cs and delta from step 1.
//
// One block computes a TP x TN tile of it. It walks the chunk in slices of KS steps: each slice of x
// is scaled by w_s while it is staged into shared memory (sX[s][i] = w_s x[s, i]) next to the slice of
// B (sB[s][j]), then the warps multiply on tensor cores with the WMMA API: TF32 inputs (10-bit
// mantissa, like the official kernel's tl.dot on fp32), float32 accumulation, fragments of 16 x 16
// outputs and depth 8. Xw^T is read from sX as a column-major matrix (no transpose copy). Warp w owns
// the output fragments w, w + NWARPS, ... . The tile goes through shared memory to global memory so
// that rows/columns past p or n (padding) are never written.
//
// Compile-time sizes (-D): P, N (head dim, state size), Q (chunk), KS (steps per slice, a multiple
// of 8 dividing Q), TP, TN (tile, multiples of 16), NWARPS, T_X, T_B (input types: float, __half,
// __nv_bfloat16). Grid: (ceil(P/TP) * ceil(N/TN), chunks, b*h).
// Layout: x (b, l, h, p); B (b, l, g, n), head hi uses group hi / (h/g); dt_out, cs (b, h, chunks, Q);
// states (b, chunks, h, p, n) float32.

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
#ifndef KS
#define KS 64
#endif
#ifndef TP
#define TP 64
#endif
#ifndef TN
#define TN 128
#endif
#ifndef NWARPS
#define NWARPS 8
#endif
#ifndef T_X
#define T_X float
#endif
#ifndef T_B
#define T_B float
#endif

#define LDX (TP + 4)  // row strides in shared memory (floats): padded against bank conflicts,
#define LDB (TN + 4)  // and multiples of 4 as WMMA requires for 32-bit types
#define FRAGS ((TP / 16) * (TN / 16))
#define PER_WARP ((FRAGS + NWARPS - 1) / NWARPS)
#define ROWS_B (KS > TP ? KS : TP)  // sB also holds the finished TP x TN tile
#define THREADS (NWARPS * 32)

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }

extern "C" __global__ void __launch_bounds__(THREADS)
ssd_chunk_state(const T_X* __restrict__ x, const T_B* __restrict__ B, const float* __restrict__ dt_out,
                const float* __restrict__ cs, float* __restrict__ states, int l, int h, int g, int nchunks) {
    extern __shared__ __align__(128) float smem[];  // WMMA wants 32-byte aligned tiles
    float* sX = smem;                // KS x LDX: w_s x[s, p0 + i]
    float* sB = sX + KS * LDX;       // ROWS_B x LDB: B[s, n0 + j], at the end the output tile
    float* sW = sB + ROWS_B * LDB;   // Q: w_s

    const int tiles_n = (N + TN - 1) / TN;
    const int p0 = (blockIdx.x / tiles_n) * TP, n0 = (blockIdx.x % tiles_n) * TN;
    const int c = blockIdx.y, bh = blockIdx.z, bi = bh / h, hi = bh % h, gi = hi / (h / g);
    const int tid = threadIdx.x, warp = tid >> 5;
    const long chunk0 = (long)c * Q;                       // first step of the chunk
    const long cs_base = ((long)bh * nchunks + c) * Q;

    const float cs_last = cs[cs_base + Q - 1];
    for (int s = tid; s < Q; s += THREADS) sW[s] = __expf(cs_last - cs[cs_base + s]) * dt_out[cs_base + s];

    // NWARPS is a multiple of the fragment columns (TN/16), so all of a warp's fragments lie in one
    // column fj: its B fragment is loaded once per depth step and reused for each of them.
    static_assert(NWARPS % (TN / 16) == 0, "NWARPS must be a multiple of TN/16");
    const int fj = warp % (TN / 16);
    wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[PER_WARP];
#pragma unroll
    for (int k = 0; k < PER_WARP; ++k) wmma::fill_fragment(acc[k], 0.f);

    for (int s0 = 0; s0 < Q; s0 += KS) {
        __syncthreads();  // sW is ready; the previous slice is no longer read
        for (int e = tid; e < KS * TP; e += THREADS) {
            const int s = e / TP, i = e % TP;
            const long t = chunk0 + s0 + s;
            float v = 0.f;
            if (t < l && p0 + i < P) v = to_f(x[(((long)bi * l + t) * h + hi) * P + p0 + i]) * sW[s0 + s];
            sX[s * LDX + i] = wmma::__float_to_tf32(v);
        }
        for (int e = tid; e < KS * TN; e += THREADS) {
            const int s = e / TN, j = e % TN;
            const long t = chunk0 + s0 + s;
            float v = 0.f;
            if (t < l && n0 + j < N) v = to_f(B[(((long)bi * l + t) * g + gi) * N + n0 + j]);
            sB[s * LDB + j] = wmma::__float_to_tf32(v);
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < KS; kk += 8) {
            if (warp >= FRAGS) break;  // (only when the tile has fewer fragments than warps)
            wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
            wmma::load_matrix_sync(b, sB + kk * LDB + fj * 16, LDB);  // (s, j) at sB[s][j]
#pragma unroll
            for (int k = 0; k < PER_WARP; ++k) {
                const int f = warp + k * NWARPS;
                if (f < FRAGS) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::col_major> a;
                    wmma::load_matrix_sync(a, sX + kk * LDX + (f / (TN / 16)) * 16, LDX);  // (i, s) at sX[s][i]
                    wmma::mma_sync(acc[k], a, b, acc[k]);
                }
            }
        }
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < PER_WARP; ++k) {
        const int f = warp + k * NWARPS;
        if (f < FRAGS) {
            const int fi = f / (TN / 16);  // (its column is fj)
            wmma::store_matrix_sync(sB + fi * 16 * LDB + fj * 16, acc[k], LDB, wmma::mem_row_major);
        }
    }
    __syncthreads();
    float* out = states + (((long)bi * nchunks + c) * h + hi) * (long)(P * N);
    for (int e = tid; e < TP * TN; e += THREADS) {
        const int i = e / TN, j = e % TN;
        if (p0 + i < P && n0 + j < N) out[(long)(p0 + i) * N + n0 + j] = sB[i * LDB + j];
    }
}
