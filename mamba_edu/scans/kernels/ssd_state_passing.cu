// SSD forward, step 3 of 4 (lesson 8): pass the states from chunk to chunk.
//
// Step 2 left, for every chunk c, the state that chunk alone would leave at its end (starting from 0):
// states[c] (p x n per batch and head). The true state entering chunk c follows from the short scan
//     S_0 = initial state (or 0),   S_{c+1} = exp(cs_last(c)) * S_c + states[c],
// where exp(cs_last(c)) = exp(sum of delta A over chunk c) is the chunk's total decay. This is the
// lesson's first-order linear recurrence again, now over chunks instead of steps, elementwise in
// (p, n). Each thread owns 4 consecutive elements of the p*n state (one float4 when p*n is a multiple
// of 4 and the arrays are 16-byte aligned) and walks the chunks in order; it overwrites states[c] with
// S_c (the state *entering* chunk c, which step 4 reads) and writes S_{chunks} as the final state.
// Grid: (ceil(p*n / (4 * 256)), b*h); block: 256 threads.
// The loads do not depend on S: a thread reads GROUP chunks' values first and only then updates and
// writes them, so GROUP loads are in flight at once (one at a time would leave DRAM mostly idle).
//
// Layout: states (b, chunks, h, p, n) float32, in place; cs (b, h, chunks, Q) float32 (step 1);
// h0 (b, h, p, n) float32 or NULL; final_state (b, h, p, n) float32 or NULL.

#define GROUP 8
#define VEC 4

__device__ __forceinline__ bool aligned16(const void* p) { return (reinterpret_cast<unsigned long long>(p) & 15) == 0; }

extern "C" __global__ void __launch_bounds__(256)
ssd_state_passing(float* __restrict__ states, const float* __restrict__ cs, const float* __restrict__ h0,
                  float* __restrict__ final_state, int h, int nchunks, int Q, int pn) {
    const int e0 = VEC * (blockIdx.x * blockDim.x + threadIdx.x);  // this thread's first element
    const int bh = blockIdx.y, bi = bh / h, hi = bh % h;
    if (e0 >= pn) return;
    const int count = pn - e0 < VEC ? pn - e0 : VEC;
    // float4 access: every row start (a multiple of pn) and e0 are multiples of 4, and the arrays aligned
    const bool vec = pn % VEC == 0 && aligned16(states) && (h0 == nullptr || aligned16(h0)) &&
                     (final_state == nullptr || aligned16(final_state));
    float S[VEC] = {0.f, 0.f, 0.f, 0.f};
    if (h0 != nullptr) {
        for (int k = 0; k < count; ++k) S[k] = h0[(long)bh * pn + e0 + k];
    }
    const float* cs_last = cs + (long)bh * nchunks * Q + (Q - 1);
    const long stride = (long)h * pn;                                  // from chunk c to chunk c + 1
    float* st = states + ((long)bi * nchunks * h + hi) * pn + e0;      // chunk 0
    for (int c0 = 0; c0 < nchunks; c0 += GROUP) {
        float4 chunk_state[GROUP];
        float decay[GROUP];
#pragma unroll
        for (int k = 0; k < GROUP; ++k) {  // 1. read: the chunks' own states and total decays
            if (c0 + k < nchunks) {
                const float* src = st + (c0 + k) * stride;
                if (vec) {
                    chunk_state[k] = *reinterpret_cast<const float4*>(src);
                } else {
                    chunk_state[k].x = src[0];
                    chunk_state[k].y = count > 1 ? src[1] : 0.f;
                    chunk_state[k].z = count > 2 ? src[2] : 0.f;
                    chunk_state[k].w = count > 3 ? src[3] : 0.f;
                }
                decay[k] = __expf(cs_last[(long)(c0 + k) * Q]);
            }
        }
#pragma unroll
        for (int k = 0; k < GROUP; ++k) {  // 2. pass: write the state entering each chunk, step S
            if (c0 + k < nchunks) {
                float* dst = st + (c0 + k) * stride;
                if (vec) {
                    *reinterpret_cast<float4*>(dst) = make_float4(S[0], S[1], S[2], S[3]);
                } else {
                    for (int j = 0; j < count; ++j) dst[j] = S[j];
                }
                S[0] = decay[k] * S[0] + chunk_state[k].x;
                S[1] = decay[k] * S[1] + chunk_state[k].y;
                S[2] = decay[k] * S[2] + chunk_state[k].z;
                S[3] = decay[k] * S[3] + chunk_state[k].w;
            }
        }
    }
    if (final_state != nullptr) {
        for (int k = 0; k < count; ++k) final_state[(long)bh * pn + e0 + k] = S[k];
    }
}
