// Kernel v2, forward (lesson 5): the fused selective scan.
//
// Everything happens in registers and shared memory: softplus(delta + bias), A_bar = exp(delta A),
// B_bar u = delta B u, the scan over time, y = C . h, the D skip and the silu(z) gate. Global
// memory sees u, delta, z, B, C read once and out written once; nothing of size (b, d, l, n).
//
// Work split (the lesson's chunked scan, twice):
//   * one warp per channel (b, d); a block of NWARPS warps takes NWARPS channels that share B and C
//     (same batch, same group), so each B/C tile is loaded from memory once per block;
//   * the warp walks time in tiles of T = 32 * CHUNK steps; lane i owns the CHUNK consecutive steps
//     [i*CHUNK, (i+1)*CHUNK) of the tile;
//   * for each state k (outer loop), lane i: computes its CHUNK pairs (a_t, b_t) = (exp(delta_t A_k),
//     delta_t B_t u_t), folds them into one affine map h -> P h + Q (a local sequential scan),
//     then the 32 lanes run a Hillis-Steele scan of those maps with warp shuffles (5 levels);
//     the exclusive result, applied to the carry from the previous tile, is the state entering
//     lane i's chunk; the lane replays its CHUNK steps from there and adds C_t[k] h_t to y_t.
//   * the carry into the next tile is the warp's total map applied to the old carry.
// Memory is pipelined: while the block computes tile k from one shared-memory buffer, cp.async
// copies tile k+1 (B, C, u, raw delta, z) into the other buffer in the background.
// Optionally (h_chk != 0) the state entering every tile is saved for the backward kernel.
//
// Layout: u, delta, z, out: (b, d, l); A: (d, n); B, C: (b, g, n, l) with *_groups = g > 0, or
// fixed (d, n) with g = 0; D, delta_bias: (d,); last_state: (b, d, n); h_chk: (b, d, tiles, n).
// Channels are numbered in segments of `seg` consecutive channels that share one B group and one
// C group; a block never crosses a segment.

#ifndef DSTATE
#define DSTATE 16
#endif
#ifndef CHUNK
#define CHUNK 8
#endif
#ifndef NWARPS
#define NWARPS 8
#endif

#define T_TILE (32 * CHUNK)
#define PAD(j) ((j) + (((j) >> 5) << 2))  // +4 floats every 32: lanes' float4 reads hit distinct banks
#define T_PAD PAD(T_TILE)
#define FULL_MASK 0xffffffffu
#define LOG2E 1.4426950408889634f

#define FLAG_D 1
#define FLAG_Z 2
#define FLAG_BIAS 4
#define FLAG_SOFTPLUS 8
#define FLAG_LAST_STATE 16
#define FLAG_CHECKPOINT 32

#define NTHREADS (32 * NWARPS)
#define BUF_FLOATS ((2 * DSTATE + 3 * NWARPS) * T_PAD)  // one buffer: B, C tiles + u, delta, z rows

static_assert(CHUNK % 4 == 0 && 32 % CHUNK == 0, "CHUNK must be 4, 8, 16 or 32");

__device__ __forceinline__ void load_chunk(float (&dst)[CHUNK], const float* src) {
    // CHUNK consecutive floats from shared memory, 16 bytes at a time
#pragma unroll
    for (int k = 0; k < CHUNK; k += 4) {
        const float4 v = *reinterpret_cast<const float4*>(src + k);
        dst[k] = v.x; dst[k + 1] = v.y; dst[k + 2] = v.z; dst[k + 3] = v.w;
    }
}

__device__ __forceinline__ void store_chunk(float* dst, const float (&src)[CHUNK]) {
#pragma unroll
    for (int k = 0; k < CHUNK; k += 4)
        *reinterpret_cast<float4*>(dst + k) = make_float4(src[k], src[k + 1], src[k + 2], src[k + 3]);
}

// asynchronous 4-byte copy global -> shared; with valid == false it writes 0 and reads nothing
__device__ __forceinline__ void cp_async4(float* dst, const float* src, bool valid) {
    const unsigned saddr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(saddr), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all_but_one() { asm volatile("cp.async.wait_group 1;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::); }

extern "C" __global__ void __launch_bounds__(NTHREADS) selective_scan_fwd_v2(
    const float* __restrict__ u, const float* __restrict__ delta, const float* __restrict__ A,
    const float* __restrict__ B, const float* __restrict__ C, const float* __restrict__ D,
    const float* __restrict__ z, const float* __restrict__ delta_bias,
    float* __restrict__ out, float* __restrict__ last_state, float* __restrict__ h_chk,
    int batch, int dim, int seqlen, int b_groups, int c_groups, int seg, int flags)
{
    // shared memory: two buffers of [B tile (DSTATE, T_PAD) | C tile | u (NWARPS, T_PAD) | delta | z],
    // then the state entering the tile, (NWARPS, DSTATE)
    extern __shared__ __align__(16) float smem[];
    float* sCarry = smem + 2 * BUF_FLOATS;

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int blocks_per_seg = (seg + NWARPS - 1) / NWARPS;
    const int seg_id = blockIdx.x / blocks_per_seg;
    const int first = (blockIdx.x % blocks_per_seg) * NWARPS;     // first channel within the segment
    const int n_active = min(NWARPS, seg - first);                 // warps with a channel
    const bool active = warp < n_active;
    const int bi = blockIdx.y;
    const int d0 = seg_id * seg + first;                           // block's first channel
    const int di = d0 + (active ? warp : 0);
    const long long row = ((long long)bi * dim + di) * seqlen;
    const int n_tiles = (seqlen + T_TILE - 1) / T_TILE;

    // where this block's B and C rows start (variable: group of channel d0; fixed: unused)
    const long long b_base = b_groups > 0 ? ((long long)bi * b_groups + d0 / (dim / b_groups)) * DSTATE * seqlen : 0;
    const long long c_base = c_groups > 0 ? ((long long)bi * c_groups + d0 / (dim / c_groups)) * DSTATE * seqlen : 0;

    const float bias = (flags & FLAG_BIAS) ? delta_bias[di] : 0.f;
    const float Dd = (flags & FLAG_D) ? D[di] : 0.f;
    float* carry = sCarry + warp * DSTATE;
    for (int k = lane; k < DSTATE; k += 32) carry[k] = 0.f;
    const int my = PAD(lane * CHUNK);  // start of this lane's chunk in a padded tile row

    // issue the copies of one tile into buffer `buf` (steps past l and idle warps get zeros)
    auto prefetch = [&](int tile, int buf) {
        float* base = smem + buf * BUF_FLOATS;
        const int t0 = tile * T_TILE;
        if (b_groups > 0 || c_groups > 0) {
#pragma unroll
            for (int it = 0; it < (DSTATE * T_TILE + NTHREADS - 1) / NTHREADS; ++it) {
                const int i = threadIdx.x + it * NTHREADS;
                if (i < DSTATE * T_TILE) {
                    const int k = i / T_TILE, j = i % T_TILE;
                    const bool ok = t0 + j < seqlen;
                    const long long off = (long long)k * seqlen + (ok ? t0 + j : 0);
                    if (b_groups > 0) cp_async4(base + k * T_PAD + PAD(j), B + b_base + off, ok);
                    if (c_groups > 0) cp_async4(base + (DSTATE + k) * T_PAD + PAD(j), C + c_base + off, ok);
                }
            }
        }
        float* rows = base + 2 * DSTATE * T_PAD + warp * T_PAD;
#pragma unroll
        for (int it = 0; it < CHUNK; ++it) {
            const int j = lane + 32 * it;
            const bool ok = active && t0 + j < seqlen;
            const long long i = ok ? row + t0 + j : 0;
            cp_async4(rows + PAD(j), u + i, ok);
            cp_async4(rows + NWARPS * T_PAD + PAD(j), delta + i, ok);
            if (flags & FLAG_Z) cp_async4(rows + 2 * NWARPS * T_PAD + PAD(j), z + i, ok);
        }
    };

    prefetch(0, 0);
    cp_async_commit();
    for (int tile = 0; tile < n_tiles; ++tile) {
        const int t0 = tile * T_TILE;
        if (tile + 1 < n_tiles) {  // copy the next tile while this one is computed
            prefetch(tile + 1, (tile + 1) & 1);
            cp_async_commit();
            cp_async_wait_all_but_one();
        } else {
            cp_async_wait_all();
        }
        __syncthreads();  // this tile's copies, made by every thread, are now visible to all

        const float* sB = smem + (tile & 1) * BUF_FLOATS;
        const float* sC = sB + DSTATE * T_PAD;
        float* myU = smem + (tile & 1) * BUF_FLOATS + 2 * DSTATE * T_PAD + warp * T_PAD;
        float* myDl = myU + NWARPS * T_PAD;
        const float* myZ = myDl + NWARPS * T_PAD;

        if (active) {
            float dl[CHUNK], du[CHUNK], y[CHUNK];
            load_chunk(dl, myDl + my);
            load_chunk(du, myU + my);
            float dl_sum = 0.f;  // sum of the lane's delta: its A_bar product is exp(A * dl_sum)
#pragma unroll
            for (int k = 0; k < CHUNK; ++k) {
                const int t = t0 + lane * CHUNK + k;
                float dv = dl[k] + bias;
                if (flags & FLAG_SOFTPLUS) dv = dv <= 20.f ? log1pf(__expf(dv)) : dv;
                dl[k] = t < seqlen ? dv : 0.f;  // past l: delta = 0, so A_bar = 1 and B_bar u = 0
                du[k] *= dl[k];                 // delta * u
                dl_sum += dl[k];
                y[k] = 0.f;
            }

#pragma unroll 1
            for (int s = 0; s < DSTATE; ++s) {
                const float As = A[di * DSTATE + s] * LOG2E;
                float a[CHUNK], bu[CHUNK], Cv[CHUNK];
                if (b_groups > 0) {
                    load_chunk(bu, sB + s * T_PAD + my);
#pragma unroll
                    for (int k = 0; k < CHUNK; ++k) bu[k] *= du[k];
                } else {
                    const float Bs = B[di * DSTATE + s];
#pragma unroll
                    for (int k = 0; k < CHUNK; ++k) bu[k] = Bs * du[k];
                }
                if (c_groups > 0) load_chunk(Cv, sC + s * T_PAD + my);
                else {
                    const float Cs = C[di * DSTATE + s];
#pragma unroll
                    for (int k = 0; k < CHUNK; ++k) Cv[k] = Cs;
                }
                // local scan of the lane's chunk: h -> P h + Q
                float P = exp2f(dl_sum * As), Q = 0.f;
#pragma unroll
                for (int k = 0; k < CHUNK; ++k) {
                    a[k] = exp2f(dl[k] * As);
                    Q = a[k] * Q + bu[k];
                }
                // Hillis-Steele over the 32 lanes: (P, Q) becomes the map from the tile start to
                // the end of this lane's chunk
#pragma unroll
                for (int offset = 1; offset < 32; offset <<= 1) {
                    const float P_left = __shfl_up_sync(FULL_MASK, P, offset);
                    const float Q_left = __shfl_up_sync(FULL_MASK, Q, offset);
                    if (lane >= offset) { Q = P * Q_left + Q; P = P * P_left; }
                }
                const float h_tile = carry[s];                       // state entering the tile
                float P_ex = __shfl_up_sync(FULL_MASK, P, 1);        // exclusive: up to the lane before
                float Q_ex = __shfl_up_sync(FULL_MASK, Q, 1);
                if (lane == 0) { P_ex = 1.f; Q_ex = 0.f; }
                const float h_next_tile = __shfl_sync(FULL_MASK, P, 31) * h_tile + __shfl_sync(FULL_MASK, Q, 31);
                float h = P_ex * h_tile + Q_ex;                     // state entering this lane's chunk
#pragma unroll
                for (int k = 0; k < CHUNK; ++k) { h = a[k] * h + bu[k]; y[k] += Cv[k] * h; }
                __syncwarp();
                if (lane == 0) {
                    if (flags & FLAG_CHECKPOINT)
                        h_chk[(((long long)bi * dim + di) * n_tiles + tile) * DSTATE + s] = h_tile;
                    carry[s] = h_next_tile;
                }
            }
            // D skip, then stage y in shared memory for a coalesced, gated store
            float uu[CHUNK];
            load_chunk(uu, myU + my);
#pragma unroll
            for (int k = 0; k < CHUNK; ++k) y[k] += Dd * uu[k];
            __syncwarp();
            store_chunk(myDl + my, y);
            __syncwarp();
#pragma unroll
            for (int it = 0; it < CHUNK; ++it) {
                const int j = lane + 32 * it;
                if (t0 + j < seqlen) {
                    float o = myDl[PAD(j)];
                    if (flags & FLAG_Z) { const float zv = myZ[PAD(j)]; o *= zv / (1.f + __expf(-zv)); }
                    out[row + t0 + j] = o;
                }
            }
        }
        __syncthreads();  // everyone is done with this buffer before the next prefetch refills it
    }
    if (active && (flags & FLAG_LAST_STATE))
        for (int k = lane; k < DSTATE; k += 32) last_state[((long long)bi * dim + di) * DSTATE + k] = carry[k];
}
