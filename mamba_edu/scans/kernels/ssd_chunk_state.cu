// SSD forward, step 2 of 4 (lesson 8): the state each chunk leaves at its end, as a matrix product.
//
// Started from h = 0, the recurrence h_t = exp(delta_t A) h_{t-1} + delta_t x_t B_t^T over the Q steps
// s of chunk c leaves
//     states[c] = sum_s  exp(cs_last - cs_s) * delta_s * x_s B_s^T          (p x n)
//               = Xw^T B,   Xw[s, :] = w_s x_s,  w_s = exp(cs_last - cs_s) delta_s  (exponent <= 0)
// a (p x Q)(Q x n) product per (batch, chunk, head), with cs and delta from step 1.
//
// One block computes a TP x TN tile of it. It walks the chunk in slices of KS steps, pipelined through
// NBUF shared-memory buffers (default 2): while the warps multiply slice k, the copies of slices
// k+1 .. k+NBUF-1 are in flight
// (cp.async, 4 elements at a time: 16 bytes of float, 8 of half, when rows are aligned; otherwise float
// goes 4 bytes at a time and half is read with plain loads later). After the wait, each thread widens
// and scales the x elements it copied itself by w_s (sX[s][i] = w_s x[s, i]) and rounds them to TF32; its B
// elements (sB[s][j]) are used as copied (16-bit ones widened).
// Then the warps multiply on tensor cores with mma.sync.m16n8k8 (ssd_mma.cuh): TF32 inputs (10-bit
// mantissa, like the official kernel's tl.dot on fp32; of a float32 operand the tensor cores read the top 19
// bits, TF32 truncated), float32 accumulation, 16 x 16 output fragments.
// Xw^T is read from sX as a column-major matrix (no transpose copy). Warp w owns the output fragments
// w, w + NWARPS, ... . The tile goes through shared memory to global memory so that rows/columns past
// p or n (padding) are never written.
//
// With MMA16 = 1 (x and B both float16 or both bfloat16, rows 16-byte aligned, p and n multiples of 8: ssd_cuda
// checks it), the slices stay 16-bit and the products are mma.sync.m16n8k16 (ssd_mma.cuh): B is used as copied,
// w_s x_s is rounded to x's type, as the official kernel's tl.dot on 16-bit inputs; both operands have the depth s
// across rows and are read with ldmatrix .trans.
//
// Compile-time sizes (-D): P, N (head dim, state size), Q (chunk), KS (steps per slice, a multiple
// of 16 dividing Q), TP, TN (tile, multiples of 16), NWARPS, NBUF (stage buffers, default 2), MMA16,
// MIN_BLOCKS (optional), T_X, T_B (input types: float, __half,
// __nv_bfloat16). Grid: (ceil(P/TP) * ceil(N/TN), chunks, b*h).
// Layout: x (b, l, h, p); B (b, l, g, n), head hi uses group hi / (h/g); dt_out, cs (b, h, chunks, Q);
// states (b, chunks, h, p, n) float32.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

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
#define KS 64  // (ssd_cuda.tiles() always passes KS)
#endif
#ifndef TP
#define TP 64
#endif
#ifndef TN
#define TN 64
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

#ifndef MMA16
#define MMA16 0       // 1: 16-bit slices and products (x and B of type T_X)
#endif
#define LDX (TP + 8)  // row strides in shared memory (floats, multiples of 4 for the 16-byte copies): + 8 makes
#define LDB (TN + 8)  // the fragment reads below (lane 4g + t reads row t, column g) free of bank conflicts
                      // (MMA16: elements of T_X, multiples of 8 and 8 mod 16 for conflict-free ldmatrix reads)
#define FRAGS ((TP / 16) * (TN / 16))
#define PER_WARP ((FRAGS + NWARPS - 1) / NWARPS)
#define THREADS (NWARPS * 32)
#if MMA16
#define DEPTH 16      // depth of one MMA
#define STAGE (((KS * LDX + KS * LDB) / 2 + 7) / 8 * 8)  // floats of a stage (x and B slices), a 32-byte multiple
#else
#define DEPTH 8
#define STAGE ((KS * LDX + KS * LDB + 7) / 8 * 8)
#endif
#define BUF_FLOATS (NBUF * STAGE > TP * LDB ? NBUF * STAGE : TP * LDB)  // the stages, then the output tile

#include "ssd_types.cuh"

#include "cp_async.cuh"
#include "ssd_mma.cuh"
#include "ssd_tiles.cuh"

static_assert(Q % KS == 0 && KS % 16 == 0, "KS must be a multiple of 16 dividing Q");
#if MMA16
static_assert(sizeof(T_X) == 2 && sizeof(T_B) == 2 && is_bf16<T_X>::value == is_bf16<T_B>::value,
              "MMA16 takes x and B of one 16-bit type");
#endif
static_assert(Q % 8 == 0, "stage buffers must start 32-byte aligned");
static_assert(LDX % 32 % 16 == 8 && LDB % 32 % 16 == 8, "strides for conflict-free fragment reads");

extern "C" __global__ void BOUNDS
ssd_chunk_state(const T_X* __restrict__ x, const T_B* __restrict__ B, const float* __restrict__ dt_out,
                const float* __restrict__ cs, float* __restrict__ states, int l, int h, int g, int nchunks) {
    extern __shared__ __align__(16) float smem[];  // 16-byte copies and loads
    float* sW = smem;                // Q: w_s
    float* buf = smem + Q;           // NBUF stages of STAGE floats: sX (KS x LDX), sB (KS x LDB); then the output

    const int tiles_n = (N + TN - 1) / TN;
    const int p0 = (blockIdx.x / tiles_n) * TP, n0 = (blockIdx.x % tiles_n) * TN;
    const int c = blockIdx.y, bh = blockIdx.z, bi = bh / h, hi = bh % h, gi = hi / (h / g);
    const int tid = threadIdx.x, warp = tid >> 5;
    const long chunk0 = (long)c * Q;                       // first step of the chunk
    const long cs_base = ((long)bh * nchunks + c) * Q;
    const bool vec_x = quads_ok(x, P), vec_b = quads_ok(B, N);

    // the x and B rows of slice s0 (rows past the sequence are staged as zeros)
    const T_X* x_tile = x + (((long)bi * l + chunk0) * h + hi) * P + p0;  // row s0 + s at x_tile + (s0 + s) * h * P
    const T_B* b_tile = B + (((long)bi * l + chunk0) * g + gi) * N + n0;
    const int rows_left = l - chunk0;                                    // steps of this chunk inside the sequence
    auto issue = [&](int s0, float* dst) {
#if MMA16
        T_X* d16 = reinterpret_cast<T_X*>(dst);
        tile_issue16<KS, TP, LDX>(d16, x_tile + (long)s0 * h * P, h * P, rows_left - s0, P - p0, x);
        tile_issue16<KS, TN, LDB>(reinterpret_cast<T_B*>(d16 + KS * LDX), b_tile + (long)s0 * g * N, g * N,
                                  rows_left - s0, N - n0, B);
#else
        tile_issue<KS, TP, LDX, T_X>(dst, x_tile + (long)s0 * h * P, h * P, rows_left - s0, P - p0, vec_x, x);
        tile_issue<KS, TN, LDB, T_B>(dst + KS * LDX, b_tile + (long)s0 * g * N, g * N, rows_left - s0, N - n0,
                                     vec_b, B);
#endif
    };

    const float cs_last = cs[cs_base + Q - 1];
    for (int s = tid; s < Q; s += THREADS) sW[s] = __expf(cs_last - cs[cs_base + s]) * dt_out[cs_base + s];
    constexpr int slices = Q / KS;
    for (int k = 0; k < NBUF - 1; ++k) {  // the first NBUF - 1 slices' copies (always NBUF - 1 groups)
        if (k < slices) issue(k * KS, buf + k * STAGE);
        cp_async_commit();
    }
    __syncthreads();  // sW is ready

    // NWARPS is a multiple of the fragment columns (TN/16), so all of a warp's fragments lie in one
    // column fj: its B fragment is loaded once per depth step and reused for each of them.
    static_assert(NWARPS % (TN / 16) == 0, "NWARPS must be a multiple of TN/16");
    const int fj = warp % (TN / 16);
    Acc16 acc[PER_WARP];
#pragma unroll
    for (int k = 0; k < PER_WARP; ++k) acc_zero(acc[k]);
    for (int k = 0; k < slices; ++k) {
        const int s0 = k * KS;
        float* cur = buf + (k % NBUF) * STAGE;
        // the copies of slice k + NBUF - 1 fly while this one is multiplied (its buffer was last read by
        // slice k - 1, before the barrier that ended it); one group per slice, empty past the last
        if (k + NBUF - 1 < slices) issue((k + NBUF - 1) * KS, buf + ((k + NBUF - 1) % NBUF) * STAGE);
        cp_async_commit();
        cp_async_wait<NBUF - 1>();  // slice k's group is complete
#if MMA16
        T_X* sX = reinterpret_cast<T_X*>(cur);
        const T_B* sB = reinterpret_cast<const T_B*>(sX + KS * LDX);
        tile_scale16<KS, TP, LDX>(sX, [&](int s, int, float v) { return v * sW[s0 + s]; });
#else
        float* sX = cur;
        float* sB = sX + KS * LDX;
        tile_finish<KS, TP, LDX, T_X>(sX, x_tile + (long)s0 * h * P, h * P, rows_left - s0, P - p0, vec_x,
                                      [&](int s, int, float v) { return v * sW[s0 + s]; });
        tile_widen<KS, TN, LDB, T_B>(sB, b_tile + (long)s0 * g * N, g * N, rows_left - s0, N - n0, vec_b);
#endif
        __syncthreads();  // the slice, scaled and rounded by every thread, is visible to all
        if (warp < FRAGS) {  // (only false when the tile has fewer fragments than warps)
#pragma unroll
            for (int kk = 0; kk < KS; kk += DEPTH) {
#if MMA16
                FragB16 b;
                load_b16<LDB, true>(b, sB + kk * LDB + fj * 16);  // (s, j) at sB[s][j]
#else
                FragB b;
                load_b<LDB, 1>(b, sB + kk * LDB + fj * 16);  // (s, j) at sB[s][j]
#endif
#pragma unroll
                for (int m = 0; m < PER_WARP; ++m) {
                    const int f = warp + m * NWARPS;
                    if (f < FRAGS) {
#if MMA16
                        FragA16 a;
                        load_a16<LDX, true>(a, sX + kk * LDX + (f / (TN / 16)) * 16);  // (i, s) at sX[s][i]
                        mma16<T_X>(acc[m], a, b);
#else
                        FragA a;
                        load_a<1, LDX>(a, sX + kk * LDX + (f / (TN / 16)) * 16);  // (i, s) at sX[s][i]
                        mma(acc[m], a, b);
#endif
                    }
                }
            }
        }
        __syncthreads();  // this buffer is no longer read: the copies of slice k + NBUF may go in
    }
    float* sO = buf;  // TP x LDB: the finished tile
#pragma unroll
    for (int k = 0; k < PER_WARP; ++k) {
        const int f = warp + k * NWARPS;
        if (f < FRAGS) {
            const int fi = f / (TN / 16);  // (its column is fj)
            acc_store<LDB>(acc[k], sO + fi * 16 * LDB + fj * 16);
        }
    }
    __syncthreads();
    float* out = states + (((long)bi * nchunks + c) * h + hi) * (long)(P * N);
    for (int q = tid; q < TP * TN / 4; q += THREADS) {  // quads of 4 columns: one 16-byte store when n allows
        const int i = q / (TN / 4), j = 4 * (q % (TN / 4));
        if (p0 + i >= P) continue;
        const float4 v = *reinterpret_cast<const float4*>(sO + i * LDB + j);
        float* o = out + (long)(p0 + i) * N + n0 + j;
        if (N % 4 == 0) {  // (states is ours: contiguous and 16-byte aligned; n0 + j < N then covers the quad)
            if (n0 + j < N) *reinterpret_cast<float4*>(o) = v;
        } else {
            const float w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (n0 + j + e < N) o[e] = w[e];
        }
    }
}
