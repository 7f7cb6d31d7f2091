// SSD forward, step 3 of 4 (lesson 8): pass the states from chunk to chunk.
//
// Step 2 left, for every chunk c, the state that chunk alone would leave at its end (starting from 0):
// states[c] (p x n per batch and head). The true state entering chunk c follows from the short scan
//     S_0 = initial state (or 0),   S_{c+1} = exp(cs_last(c)) * S_c + states[c],
// where exp(cs_last(c)) = exp(sum of delta A over chunk c) is the chunk's total decay. This is the
// lesson's first-order linear recurrence again, now over chunks instead of steps, elementwise in
// (p, n). Each thread owns one element of the p*n state and walks the chunks in order; it overwrites
// states[c] with S_c (the state *entering* chunk c, which step 4 reads) and writes S_{chunks} as the
// final state. Grid: (ceil(p*n / 256), b*h); block: 256 threads.
// The loads do not depend on S: a thread reads GROUP chunks' values first and only then updates and
// writes them, so GROUP loads are in flight at once (one at a time would leave DRAM mostly idle).
//
// Layout: states (b, chunks, h, p, n) float32, in place; cs (b, h, chunks, Q) float32 (step 1);
// h0 (b, h, p, n) float32 or NULL; final_state (b, h, p, n) float32 or NULL.

#define GROUP 8

extern "C" __global__ void __launch_bounds__(256)
ssd_state_passing(float* __restrict__ states, const float* __restrict__ cs, const float* __restrict__ h0,
                  float* __restrict__ final_state, int h, int nchunks, int Q, int pn) {
    const int e = blockIdx.x * blockDim.x + threadIdx.x;
    const int bh = blockIdx.y, bi = bh / h, hi = bh % h;
    if (e >= pn) return;
    float S = h0 != nullptr ? h0[(long)bh * pn + e] : 0.f;
    const float* cs_last = cs + (long)bh * nchunks * Q + (Q - 1);
    const long stride = (long)h * pn;                                  // from chunk c to chunk c + 1
    float* st = states + ((long)bi * nchunks * h + hi) * pn + e;       // chunk 0
    for (int c0 = 0; c0 < nchunks; c0 += GROUP) {
        float chunk_state[GROUP], decay[GROUP];
#pragma unroll
        for (int k = 0; k < GROUP; ++k) {  // 1. read: the chunks' own states and total decays
            if (c0 + k < nchunks) {
                chunk_state[k] = st[(c0 + k) * stride];
                decay[k] = __expf(cs_last[(long)(c0 + k) * Q]);
            }
        }
#pragma unroll
        for (int k = 0; k < GROUP; ++k) {  // 2. pass: write the state entering each chunk, step S
            if (c0 + k < nchunks) {
                st[(c0 + k) * stride] = S;
                S = decay[k] * S + chunk_state[k];
            }
        }
    }
    if (final_state != nullptr) final_state[(long)bh * pn + e] = S;
}
