// SSD forward, step 1 of 4 (lesson 8): step sizes and their running sums inside each chunk.
//
// Mamba-2's scan per head (scalar A < 0):  h_t = exp(delta_t A) h_{t-1} + delta_t x_t B_t^T.
// The chunked algorithm (SSD) cuts time into chunks of Q steps. Every later step needs, per chunk,
//     delta_s                                  (dt_out: the step size after bias and softplus)
//     cs_s = sum_{k <= s} delta_k A            (cs: within-chunk cumulative sum, <= 0)
// so that the decay between two steps of one chunk is exp(cs_t - cs_s) (s <= t, exponent <= 0) and the
// decay over the whole chunk is exp(cs_{Q-1}). Steps past the end of the sequence get delta = 0
// (decay 1, no input), so a partial last chunk needs no special case later.
//
// Grid: (chunks, b*h); block: max(Q, 32) threads, thread s = step s of the chunk.
// The sum is a block-wide inclusive scan: a Hillis-Steele scan inside each warp (shuffles),
// then the warp totals are scanned the same way and added back.
//
// Layout: dt (b, l, h) of type T_DT; A, dt_bias (h,) float32; dt_out, cs (b, h, chunks, Q) float32.
// flags: 1 = add dt_bias, 2 = softplus.

#include <cuda_fp16.h>
#include <cuda_bf16.h>

#ifndef Q
#define Q 64
#endif
#ifndef T_DT
#define T_DT float
#endif
#define THREADS (Q < 32 ? 32 : Q)

#include "ssd_types.cuh"

__device__ __forceinline__ float warp_inclusive_sum(float v) {
    const int lane = threadIdx.x & 31;
#pragma unroll
    for (int d = 1; d < 32; d *= 2) {
        float other = __shfl_up_sync(0xffffffffu, v, d);
        if (lane >= d) v += other;
    }
    return v;
}

extern "C" __global__ void __launch_bounds__(THREADS)
ssd_chunk_cumsum(const T_DT* __restrict__ dt, const float* __restrict__ A, const float* __restrict__ dt_bias,
                 float* __restrict__ dt_out, float* __restrict__ cs, int l, int h, int nchunks, int flags) {
    __shared__ float warp_sums[THREADS / 32], warp_prefix[THREADS / 32];  // two arrays: no read/write overlap
    const int c = blockIdx.x, bh = blockIdx.y;
    const int bi = bh / h, hi = bh % h;
    const int s = threadIdx.x, lane = s & 31, warp = s >> 5;
    const long t = (long)c * Q + s;

    float delta = 0.f;
    if (s < Q && t < l) {
        delta = to_f(dt[((long)bi * l + t) * h + hi]);
        if (flags & 1) delta += dt_bias[hi];
        if ((flags & 2) && delta <= 20.f) delta = log1pf(__expf(delta));  // softplus (identity above 20)
    }
    float a = warp_inclusive_sum(delta * A[hi]);
    if (lane == 31) warp_sums[warp] = a;
    __syncthreads();
    if (warp == 0) {
        float w = lane < THREADS / 32 ? warp_sums[lane] : 0.f;
        w = warp_inclusive_sum(w);
        if (lane < THREADS / 32) warp_prefix[lane] = w;
    }
    __syncthreads();
    if (warp > 0) a += warp_prefix[warp - 1];
    if (s < Q) {
        const long o = ((long)bh * nchunks + c) * Q + s;
        dt_out[o] = delta;
        cs[o] = a;
    }
}
