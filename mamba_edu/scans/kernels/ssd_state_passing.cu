// SSD forward, step 3 of 4 (lesson 8): pass the states from chunk to chunk.
//
// Step 2 left, for every chunk c, the state that chunk alone would leave at its end (starting from 0):
// states[c] (p x n per batch and head). The true state entering chunk c follows from the short scan
//     S_0 = initial state (or 0),   S_{c+1} = exp(cs_last(c)) * S_c + states[c],
// where exp(cs_last(c)) = exp(sum of delta A over chunk c) is the chunk's total decay. This is the
// lesson's first-order linear recurrence again, now over chunks instead of steps, elementwise in
// (p, n). Each thread owns 4 consecutive elements of the p*n state (one float4 when p*n is a multiple
// of 4 and the arrays are 16-byte aligned) and walks the chunks in order; it writes S_c (the state *entering*
// chunk c, which step 4 reads) to entering[c], in T_S: float32 in place of states[c] (entering == states), or
// float16/bfloat16 for step 4's 16-bit products (as the official kernel passes them in C's type), and writes
// S_{chunks} as the final state (float32).
// Grid: (ceil(p*n / (4 * 256)), b*h); block: 256 threads.
// The loads do not depend on S: a thread reads GROUP chunks' values first and only then updates and
// writes them, so GROUP loads are in flight at once (one at a time would leave DRAM mostly idle).
//
// Layout: states, entering (b, chunks, h, p, n); cs (b, h, chunks, Q) float32 (step 1);
// h0 (b, h, p, n) float32 or NULL; final_state (b, h, p, n) float32 or NULL.

#define GROUP 8
#define VEC 4
#ifndef T_S
#define T_S float
#endif

#include "ssd_types.cuh"

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<unsigned long long>(p) & 15) == 0; }

extern "C" __global__ void __launch_bounds__(256)
ssd_state_passing(const float* states, T_S* entering, const float* __restrict__ cs, const float* __restrict__ h0,
                  float* __restrict__ final_state, int h, int nchunks, int Q, int pn) {
    const int e0 = VEC * (blockIdx.x * blockDim.x + threadIdx.x);  // this thread's first element
    const int bh = blockIdx.y, bi = bh / h, hi = bh % h;
    if (e0 >= pn) return;
    const int count = pn - e0 < VEC ? pn - e0 : VEC;
    // 4 elements per access: every row start (a multiple of pn) and e0 are multiples of 4, and the arrays aligned
    const bool vec = pn % VEC == 0 && aligned16(states) && aligned16(entering) &&
                     (h0 == nullptr || aligned16(h0)) && (final_state == nullptr || aligned16(final_state));
    float S[VEC] = {0.f, 0.f, 0.f, 0.f};
    if (h0 != nullptr) {
        for (int k = 0; k < count; ++k) S[k] = h0[(long)bh * pn + e0 + k];
    }
    const float* cs_last = cs + (long)bh * nchunks * Q + (Q - 1);
    const long stride = (long)h * pn;                                  // from chunk c to chunk c + 1
    const long first = ((long)bi * nchunks * h + hi) * pn + e0;        // chunk 0
    const float* st = states + first;
    T_S* en = entering + first;
    for (int c0 = 0; c0 < nchunks; c0 += GROUP) {
        float chunk_state[GROUP][VEC];
        float decay[GROUP];
#pragma unroll
        for (int k = 0; k < GROUP; ++k) {  // 1. read: the chunks' own states and total decays
            if (c0 + k < nchunks) {
                read_quad(st + (c0 + k) * stride, chunk_state[k], vec, count);
                decay[k] = __expf(cs_last[(long)(c0 + k) * Q]);
            }
        }
#pragma unroll
        for (int k = 0; k < GROUP; ++k) {  // 2. pass: write the state entering each chunk, step S
            if (c0 + k < nchunks) {
                write_quad(en + (c0 + k) * stride, S, vec, count);
#pragma unroll
                for (int e = 0; e < VEC; ++e) S[e] = decay[k] * S[e] + chunk_state[k][e];
            }
        }
    }
    if (final_state != nullptr) {
        for (int k = 0; k < count; ++k) final_state[(long)bh * pn + e0 + k] = S[k];
    }
}
