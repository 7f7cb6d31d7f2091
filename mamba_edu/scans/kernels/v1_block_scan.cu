// Kernel v1 (lesson 7): a block-level parallel scan of an already-discretized recurrence
//     h[t] = a[t] * h[t-1] + b[t]        (one independent row per block, t along the row)
// The caller first materialises a = A_bar = exp(delta A) and b = B_bar u as (rows, l) arrays
// (rows = b*d*n), so this kernel moves 3 * b*d*l*n floats: the cost that v2 removes by fusing.
//
// The block walks its row in tiles of SCAN_BLOCK steps. Inside a tile, Hillis-Steele: at level
// k every element combines with the one 2^k to its left, using the associative operator
//     (a1, b1) o (a2, b2) = (a1 a2, a2 b1 + b2)       (first apply 1, then 2)
// with two shared-memory buffers (read one, write the other) so no thread overwrites a value
// another thread still has to read. The tile's total is then the carry into the next tile.

#ifndef SCAN_BLOCK
#define SCAN_BLOCK 256
#endif

extern "C" __global__ void __launch_bounds__(SCAN_BLOCK) linear_scan_v1(
    const float* __restrict__ a, const float* __restrict__ b, float* __restrict__ h, int seqlen)
{
    __shared__ float sa[2][SCAN_BLOCK];
    __shared__ float sb[2][SCAN_BLOCK];
    const int tid = threadIdx.x;
    const long long row = (long long)blockIdx.x * seqlen;
    float carry = 0.f;  // h just before the tile

    for (int t0 = 0; t0 < seqlen; t0 += SCAN_BLOCK) {
        const int t = t0 + tid;
        float av = 1.f, bv = 0.f;  // the identity map pads the last tile
        if (t < seqlen) { av = a[row + t]; bv = b[row + t]; }
        int p = 0;
        sa[p][tid] = av; sb[p][tid] = bv;
        __syncthreads();
        for (int offset = 1; offset < SCAN_BLOCK; offset <<= 1) {  // log2(SCAN_BLOCK) levels
            if (tid >= offset) {
                const float a_left = sa[p][tid - offset], b_left = sb[p][tid - offset];
                bv = av * b_left + bv;  // (a_left, b_left) o (av, bv)
                av = av * a_left;
            }
            sa[1 - p][tid] = av; sb[1 - p][tid] = bv;
            __syncthreads();
            p = 1 - p;
        }
        // (av, bv) now maps h(t0 - 1) to h(t): apply it to the carry
        if (t < seqlen) h[row + t] = av * carry + bv;
        carry = sa[p][SCAN_BLOCK - 1] * carry + sb[p][SCAN_BLOCK - 1];
        __syncthreads();  // everyone has read the tile's total before the next tile overwrites it
    }
}
