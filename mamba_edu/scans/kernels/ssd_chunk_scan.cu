// SSD forward, step 4 of 4 (lesson 8): the outputs of a chunk, from its inputs and the state entering it.
//
// Inside chunk c (steps t, s = 0 .. Q-1 of the chunk; cs, delta from step 1; S = the state entering
// the chunk, from step 3; CB[t, s] = C_t . B_s from step 2a), the output of one head is
//     y_t = (exp(cs_t) C_t) S^T                                 (off-diagonal blocks of M: rank n)
//         + sum_{s <= t} CB[t, s] exp(cs_t - cs_s) delta_s x_s   (diagonal block of M: "attention")
//         + D x_t,                      then   out_t = y_t * silu(z_t)   (D, z optional).
// The exponents cs_t and cs_t - cs_s (s <= t) are <= 0: nothing here grows (exp(+cs) is never formed).
//
// One block computes TT rows (steps t0 .. t0+TT-1 of the chunk) x TP columns (channels p0 ..) of y,
// as one accumulation over a sequence of stages, each a small matrix product on tensor cores:
//   1. stages 0 .. K1-1: slices of KN columns j of the state's depth n:
//      acc += C[t, j] S[i, j]^T;   after the last one, acc[t, :] *= exp(cs_t) (once per row);
//   2. stages K1 .. : slices of KS steps s up to the diagonal (causality: later slices contribute 0):
//      acc += M[t, s] x[s, i], M[t, s] = CB[t, s] exp(cs_t - cs_s) delta_s for s <= t, 0 above (the
//      mask is applied before the exp: no inf);
//   3. add D x, gate with silu(z), write the tile once in x's type.
// The stages are pipelined through NBUF shared-memory buffers (default 2): while the warps multiply
// stage k, the copies of stages k+1 .. k+NBUF-1 are in flight (cp.async: the data passes no registers).
// Inputs are copied raw, 4 elements at a time (16 bytes of float, 8 of half, when rows are aligned;
// otherwise float goes 4 bytes at a time and half is read with plain loads later). Float32 tiles (C, S, x) are
// multiplied as copied; each thread widens the 16-bit elements it copied itself and computes, masks and rounds
// to TF32 its elements of M (cp.async.wait_group makes a thread's own copies visible to it).
// Tensor-core products are the PTX instruction mma.sync.m16n8k8 on TF32 inputs with float32 accumulation
// (ssd_mma.cuh), like the official kernel's tl.dot on fp32 (the tensor cores read the top 19 bits of a float32
// operand: TF32, truncated); each lane reads its operand elements from shared memory itself, with strides that
// make the reads free of bank conflicts. Warp w owns the 16 x 16 output fragments w, w + NWARPS, ... .
// With MMA16 = 1 (x, C and the entering states all float16 or all bfloat16, rows 16-byte aligned, p and n
// multiples of 8: ssd_cuda checks it), the tiles stay 16-bit and the products are mma.sync.m16n8k16, twice the
// depth per instruction at half the bytes, as the official kernel's tl.dot on 16-bit inputs: x, C and S are
// used as copied; M is rounded to x's type (into its own buffer sM, from the float32 CB slice).
//
// Compile-time sizes (-D): P, N, Q, TT (rows per block, a multiple of 16 dividing Q), TP (channels
// per block, a multiple of 16), KS (steps per slice of the diagonal part, a multiple of 16 dividing TT),
// KN (columns of n per slice of phase 1, a multiple of the MMA depth: 8, or 16 with MMA16), NWARPS, NBUF, MIN_BLOCKS (optional); input types
// T_X, T_C, T_Z (float, __half, __nv_bfloat16); the output has x's type.
// Grid: ((Q/TT) * ceil(P/TP), chunks, b*h).
// Layout: x, z, out (b, l, h, p); C (b, l, g, n), head hi uses group hi / (h/g); CB (b, chunks, g, Q, Q);
// D (h,) or (h, p) float32; dt_out, cs (b, h, chunks, Q); states (b, chunks, h, p, n) = the state
// entering each chunk. flags: 1 = D given, 2 = D has shape (h, p), 4 = z given.

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
#ifndef TT
#define TT 64
#endif
#ifndef TP
#define TP 64
#endif
#ifndef KS
#define KS (TT < 64 ? TT : 64)            // (ssd_cuda.tiles() always passes KS and KN)
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
#ifndef MMA16
#define MMA16 0                            // 1: 16-bit tiles and products (x, C, states all of type T_X)
#endif
#if MMA16
#define T_S T_X                            // the entering states, as step 3 wrote them
#define DEPTH 16                           // depth of one MMA
#else
#define T_S float
#define DEPTH 8
#endif

#define NK ((N + DEPTH - 1) / DEPTH * DEPTH)  // n padded to the MMA depth
#ifndef KN
#define KN (NK < 64 ? NK : 64)             // depth of a phase-1 slice (columns of n, a multiple of DEPTH)
#endif
#define K1 ((NK + KN - 1) / KN)            // phase-1 stages (columns past n are zeros)
#if MMA16                                  // row strides in shared memory, in elements of the tiles' type:
#define LDK (KN + 8)                       // multiples of 8 for the 16-byte copies and 8 mod 16 for
#define LDX (TP + 8)                       // conflict-free ldmatrix reads (ssd_mma.cuh)
#define LDM (KS + 4)                       // (floats: the CB slice, as copied)
#define LDH (KS + 8)                       // the M slice sM, in T_X
#define STAGE1 ((TT + TP) * LDK / 2)       // floats of a phase-1 stage: C slice, S slice
#define STAGE2 (KS * LDX / 2 + TT * LDM)   // floats of a phase-2 stage: x slice, CB slice
#else                                      // (floats): multiples of 4 for the 16-byte copies, and odd multiples
#define LDK (KN + 4)                       // of 4 (LDK, LDM) or 8 mod 32 (LDX) for conflict-free fragment
#define LDX (TP + 8)                       // reads (ssd_mma.cuh)
#define LDM (KS + 4)
#define STAGE1 ((TT + TP) * LDK)           // floats of a phase-1 stage: C slice, S slice
#define STAGE2 (KS * LDX + TT * LDM)       // floats of a phase-2 stage: x slice, M slice
#endif
#define LDO (TP + 8)                       // the output tile, at the end (floats; conflict-free 8-byte stores)
#define STAGE ((((STAGE1 > STAGE2) ? STAGE1 : STAGE2) + 7) / 8 * 8)  // 32-byte multiple
#define BUF_FLOATS (NBUF * STAGE > TT * LDO ? NBUF * STAGE : (TT * LDO + 7) / 8 * 8)  // stages, then the output
#define SMALL (2 * Q + TT)                 // cs, delta of the chunk, exp(cs_t) of the block's rows
#define OUT_FRAGS ((TT / 16) * (TP / 16))
#define OUT_PER_WARP ((OUT_FRAGS + NWARPS - 1) / NWARPS)
#define THREADS (NWARPS * 32)

#include "ssd_types.cuh"

#include "cp_async.cuh"
#include "ssd_mma.cuh"
#include "ssd_tiles.cuh"

static_assert(TT % KS == 0 && KS % 16 == 0, "KS must be a multiple of 16 dividing TT");
static_assert(KN % DEPTH == 0, "KN must be a multiple of the MMA depth");
static_assert(SMALL % 8 == 0, "stage buffers must start 32-byte aligned");
#if MMA16
static_assert(sizeof(T_X) == 2 && sizeof(T_C) == 2 && is_bf16<T_X>::value == is_bf16<T_C>::value,
              "MMA16 takes x and C of one 16-bit type");
static_assert(LDK % 16 == 8 && LDX % 16 == 8 && LDH % 16 == 8 && (LDM / 4) % 2 == 1,
              "strides for 16-byte rows and conflict-free fragment reads");
#else
static_assert((LDK / 4) % 2 == 1 && (LDM / 4) % 2 == 1 && LDX % 32 % 16 == 8,
              "strides for conflict-free fragment reads");
#endif

extern "C" __global__ void BOUNDS
ssd_chunk_scan(const T_X* __restrict__ x, const T_C* __restrict__ C, const float* __restrict__ CB,
               const T_Z* __restrict__ z, const float* __restrict__ D, const float* __restrict__ dt_out,
               const float* __restrict__ cs, const T_S* __restrict__ states, T_X* __restrict__ out,
               int l, int h, int g, int nchunks, int flags) {
    extern __shared__ __align__(16) float smem[];  // 16-byte copies and loads
    float* sCs = smem;                // Q: cs of the chunk
    float* sDt = sCs + Q;             // Q: delta of the chunk
    float* sE = sDt + Q;              // TT: exp(cs_t) of the block's rows
    float* buf = smem + SMALL;        // NBUF stage buffers of STAGE floats; at the end the output tile
#if MMA16
    T_X* sM = reinterpret_cast<T_X*>(buf + BUF_FLOATS);  // TT x LDH: the M slice of the current stage
#endif

    const int tiles_p = (P + TP - 1) / TP;
    const int rt = blockIdx.x / tiles_p, p0 = (blockIdx.x % tiles_p) * TP;
    const int c = blockIdx.y, bh = blockIdx.z, bi = bh / h, hi = bh % h, gi = hi / (h / g);
    const int tid = threadIdx.x, warp = tid >> 5;
    const int t0 = rt * TT;                                // first row of the tile inside the chunk
    const long chunk0 = (long)c * Q;                       // first step of the chunk
    const long cs_base = ((long)bh * nchunks + c) * Q;
    const int K2 = (t0 + TT) / KS;                         // phase-2 stages: slices up to the diagonal
    const T_S* S = states + (((long)bi * nchunks + c) * h + hi) * (long)(P * N);
    const float* cb = CB + (((long)bi * nchunks + c) * g + gi) * (long)(Q * Q);
    const bool vec_c = quads_ok(C, N), vec_s = quads_ok(states, N), vec_x = quads_ok(x, P), vec_cb = quads_ok(CB, Q);

    // the staged tiles' origins in global memory (row r of a tile at origin + r * its row stride); rows past
    // the sequence or past p are staged as zeros
    const T_C* c_tile = C + (((long)bi * l + chunk0 + t0) * g + gi) * N;  // rows t0 .., columns k0 + (k0 per stage)
    const T_S* s_tile = S + (long)p0 * N;                                // rows p0 .. of the state, columns k0 ..
    const T_X* x_tile = x + (((long)bi * l + chunk0) * h + hi) * P + p0;  // rows s0 + s (s0 per stage)
    const float* cb_tile = cb + (long)t0 * Q;                            // rows t0 .., columns s0 ..
    const int rows_left = l - chunk0;                                    // steps of this chunk inside the sequence

    // M[t, s] = CB[t, s] exp(cs_t - cs_s) delta_s for s <= t, else 0 (masked before the exp), rows t0 + r,
    // columns s0 + s
    auto m_entry = [&](int s0, int r, int s, float v) {
        return s0 + s <= t0 + r ? v * __expf(sCs[t0 + r] - sCs[s0 + s]) * sDt[s0 + s] : 0.f;
    };
#if MMA16
    // stage k's copies into buffer `dst`: 16-bit C and S slices, or a 16-bit x slice and a float32 CB slice
    auto issue = [&](int k, float* dst) {
        T_X* d16 = reinterpret_cast<T_X*>(dst);
        if (k < K1) {
            const int k0 = k * KN;
            tile_issue16<TT, KN, LDK>(d16, c_tile + k0, g * N, rows_left - t0, N - k0, C);
            tile_issue16<TP, KN, LDK>(d16 + TT * LDK, s_tile + k0, N, P - p0, N - k0, states);
        } else {
            const int s0 = (k - K1) * KS;
            tile_issue16<KS, TP, LDX>(d16, x_tile + (long)s0 * h * P, h * P, rows_left - s0, P - p0, x);
            tile_issue<TT, KS, LDM, float>(dst + KS * LDX / 2, cb_tile + s0, Q, TT, KS, vec_cb, CB);
        }
    };
    // stage k's own elements: M of a phase-2 slice into sM (x, C, S are used as copied)
    auto finish = [&](int k, float* dst) {
        if (k >= K1) {
            const int s0 = (k - K1) * KS;
            tile_convert16<TT, KS, LDM, LDH>(dst + KS * LDX / 2, sM,
                                             [&](int r, int s, float v) { return m_entry(s0, r, s, v); });
        }
    };
#else
    // stage k's copies into buffer `dst`
    auto issue = [&](int k, float* dst) {
        if (k < K1) {
            const int k0 = k * KN;
            tile_issue<TT, KN, LDK, T_C>(dst, c_tile + k0, g * N, rows_left - t0, N - k0, vec_c, C);
            tile_issue<TP, KN, LDK, float>(dst + TT * LDK, s_tile + k0, N, P - p0, N - k0, vec_s, states);
        } else {
            const int s0 = (k - K1) * KS;
            tile_issue<KS, TP, LDX, T_X>(dst, x_tile + (long)s0 * h * P, h * P, rows_left - s0, P - p0, vec_x, x);
            tile_issue<TT, KS, LDM, float>(dst + KS * LDX, cb_tile + s0, Q, TT, KS, vec_cb, CB);
        }
    };
    // stage k's own elements: 16-bit C and x widened (float32 ones and S are used as copied); M computed,
    // masked and rounded to tf32
    auto finish = [&](int k, float* dst) {
        if (k < K1) {
            const int k0 = k * KN;
            tile_widen<TT, KN, LDK, T_C>(dst, c_tile + k0, g * N, rows_left - t0, N - k0, vec_c);
        } else {
            const int s0 = (k - K1) * KS;
            tile_widen<KS, TP, LDX, T_X>(dst, x_tile + (long)s0 * h * P, h * P, rows_left - s0, P - p0, vec_x);
            tile_finish<TT, KS, LDM, float>(dst + KS * LDX, cb_tile + s0, Q, TT, KS, vec_cb,
                                            [&](int r, int s, float v) { return m_entry(s0, r, s, v); });
        }
    };
#endif

    for (int s = tid; s < Q; s += THREADS) {
        sCs[s] = cs[cs_base + s];
        sDt[s] = dt_out[cs_base + s];
    }
    for (int r = tid; r < TT; r += THREADS) sE[r] = __expf(cs[cs_base + t0 + r]);
    const int stages = K1 + K2;
    for (int k = 0; k < NBUF - 1; ++k) {  // the first NBUF - 1 stages' copies (always NBUF - 1 groups)
        if (k < stages) issue(k, buf + k * STAGE);
        cp_async_commit();
    }
    __syncthreads();  // sCs, sDt, sE are ready

    // NWARPS is a multiple of the fragment columns (TP/16), so all of a warp's output fragments lie in
    // one column fj: its right-hand fragment is loaded once per depth step and reused for each of them.
    static_assert(NWARPS % (TP / 16) == 0, "NWARPS must be a multiple of TP/16");
    const int fj = warp % (TP / 16);
    Acc16 acc[OUT_PER_WARP];
#pragma unroll
    for (int k = 0; k < OUT_PER_WARP; ++k) acc_zero(acc[k]);

    for (int k = 0; k < stages; ++k) {
        float* cur = buf + (k % NBUF) * STAGE;
        // the copies of stage k + NBUF - 1 fly while this one is multiplied (its buffer was last read by
        // stage k - 1, before the barrier that ended it); one group per stage, empty past the last
        if (k + NBUF - 1 < stages) issue(k + NBUF - 1, buf + ((k + NBUF - 1) % NBUF) * STAGE);
        cp_async_commit();
        cp_async_wait<NBUF - 1>();  // stage k's group is complete
        finish(k, cur);
        __syncthreads();  // the stage, scaled and rounded by every thread, is visible to all
        if (warp < OUT_FRAGS) {  // (only false when the tile has fewer fragments than warps)
#if MMA16
            const T_X* c16 = reinterpret_cast<const T_X*>(cur);
            if (k < K1) {
                // C (t, j) at c16[t][j], S^T (j, i) at c16[TT * LDK + i * LDK + j]: the depth j is contiguous
#pragma unroll
                for (int kk = 0; kk < KN; kk += 16) {
                    FragB16 b;
                    load_b16<LDK, false>(b, c16 + TT * LDK + fj * 16 * LDK + kk);
#pragma unroll
                    for (int m = 0; m < OUT_PER_WARP; ++m) {
                        const int f = warp + m * NWARPS;
                        if (f < OUT_FRAGS) {
                            FragA16 a;
                            load_a16<LDK, false>(a, c16 + (f / (TP / 16)) * 16 * LDK + kk);
                            mma16<T_X>(acc[m], a, b);
                        }
                    }
                }
            } else {
                // x (s, i) at c16[s][i] (the depth s across rows: ldmatrix .trans), M (t, s) at sM[t][s]
#pragma unroll
                for (int kk = 0; kk < KS; kk += 16) {
                    FragB16 b;
                    load_b16<LDX, true>(b, c16 + kk * LDX + fj * 16);
#pragma unroll
                    for (int m = 0; m < OUT_PER_WARP; ++m) {
                        const int f = warp + m * NWARPS;
                        if (f < OUT_FRAGS) {
                            FragA16 a;
                            load_a16<LDH, false>(a, sM + (f / (TP / 16)) * 16 * LDH + kk);
                            mma16<T_X>(acc[m], a, b);
                        }
                    }
                }
            }
#else
            if (k < K1) {
                const float* sC = cur;                  // TT x LDK: (t, j) at sC[t][j]
                const float* sS = cur + TT * LDK;       // TP x LDK: S^T, (j, i) at sS[i][j]
#pragma unroll
                for (int kk = 0; kk < KN; kk += 8) {
                    FragB b;
                    load_b<1, LDK>(b, sS + fj * 16 * LDK + kk);
#pragma unroll
                    for (int m = 0; m < OUT_PER_WARP; ++m) {
                        const int f = warp + m * NWARPS;
                        if (f < OUT_FRAGS) {
                            FragA a;
                            load_a<LDK, 1>(a, sC + (f / (TP / 16)) * 16 * LDK + kk);
                            mma(acc[m], a, b);
                        }
                    }
                }
            } else {
                const float* sX = cur;                  // KS x LDX: (s, i) at sX[s][i]
                const float* sM = cur + KS * LDX;       // TT x LDM: (t, s) at sM[t][s]
#pragma unroll
                for (int kk = 0; kk < KS; kk += 8) {
                    FragB b;
                    load_b<LDX, 1>(b, sX + kk * LDX + fj * 16);
#pragma unroll
                    for (int m = 0; m < OUT_PER_WARP; ++m) {
                        const int f = warp + m * NWARPS;
                        if (f < OUT_FRAGS) {
                            FragA a;
                            load_a<LDM, 1>(a, sM + (f / (TP / 16)) * 16 * LDM + kk);
                            mma(acc[m], a, b);
                        }
                    }
                }
            }
#endif
            if (k == K1 - 1) {  // phase 1 done: its sums times exp(cs_t), row by row
#pragma unroll
                for (int m = 0; m < OUT_PER_WARP; ++m) {
                    const int f = warp + m * NWARPS;
                    if (f < OUT_FRAGS) acc_scale_rows(acc[m], sE + (f / (TP / 16)) * 16);
                }
            }
        }
        __syncthreads();  // this buffer is no longer read: the copies of stage k + NBUF may go in
    }

    // ---- 3. D skip, silu(z) gate, one write in x's type (the stage buffers hold the output tile now)
    float* sO = buf;
#pragma unroll
    for (int m = 0; m < OUT_PER_WARP; ++m) {
        const int f = warp + m * NWARPS;
        if (f < OUT_FRAGS) {
            const int fi = f / (TP / 16);  // (its column is fj)
            acc_store<LDO>(acc[m], sO + fi * 16 * LDO + fj * 16);
        }
    }
    __syncthreads();
    // quads of 4 channels; 16-byte (float) or 8-byte (half) accesses when rows allow (out is ours: contiguous and
    // aligned, so its quads are aligned whenever p is a multiple of 4)
    const bool vec_z = (flags & 4) && quads_ok(z, P);
    for (int q = tid; q < TT * TP / 4; q += THREADS) {
        const int r = q / (TP / 4), i = 4 * (q % (TP / 4));
        const long t = chunk0 + t0 + r;
        if (t >= l || p0 + i >= P) continue;
        const long o = (((long)bi * l + t) * h + hi) * P + p0 + i;
        const int count = P - p0 - i;   // channels of the quad inside p (>= 4 unless p is not a multiple of 4)
        const bool whole = P % 4 == 0;  // (then the quad is inside p)
        const float4 a = *reinterpret_cast<const float4*>(sO + r * LDO + i);
        float v[4] = {a.x, a.y, a.z, a.w};
        if (flags & 1) {
            float xv[4];
            read_quad(x + o, xv, whole && vec_x, count);
#pragma unroll
            for (int e = 0; e < 4; ++e)
                if (e < count) v[e] += ((flags & 2) ? D[hi * P + p0 + i + e] : D[hi]) * xv[e];
        }
        if (flags & 4) {
            float zv[4];
            read_quad(z + o, zv, whole && vec_z, count);
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] *= zv[e] / (1.f + __expf(-zv[e]));
        }
        write_quad(out + o, v, whole, count);
    }
}
