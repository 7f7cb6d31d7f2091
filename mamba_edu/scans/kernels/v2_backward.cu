// Kernel v2, backward (lesson 7): gradients of the fused selective scan.
//
// Work split (the lesson's chunked scan, twice): one warp per channel (b, d); a block of NWARPS
// warps takes NWARPS channels that share B and C. Time goes in tiles of T = 32 * CHUNK steps,
// visited from last to first; lane i owns the CHUNK consecutive steps [i*CHUNK, (i+1)*CHUNK) of a
// tile. For each tile and state k the warp
//   1. replays the forward scan of the tile from the checkpoint h_chk (the state entering the tile,
//      saved by the forward kernel every T steps): each lane folds its CHUNK steps into one affine
//      map h -> P h + Q, a Hillis-Steele scan of those maps over the 32 lanes (warp shuffles, 5
//      levels) gives the state entering each lane's chunk, and the lane replays its steps, keeping
//      h_{t-1} of its CHUNK steps in registers;
//   2. runs the adjoint (reverse-time) scan  lambda_t = C_t[k] g_t + a_{t+1} lambda_{t+1}, where
//      g_t = dL/dy_t. In the variable nu_t = a_t lambda_t (what flows back to step t-1) it is the
//      affine recurrence nu_t = a_t nu_{t+1} + a_t C_t[k] g_t: the same chunked scan as the forward,
//      mirrored (local fold from the chunk's end, Hillis-Steele with __shfl_down_sync);
//   3. reads every gradient off lambda_t and h_{t-1}:
//        d(B_bar u)_t = lambda_t,  d(a_t) = lambda_t h_{t-1},  a_t = exp(delta_t A_k), B_bar u = delta_t B_t u_t
//        ddelta_t += lambda_t u_t B_t[k] + lambda_t h_{t-1} a_t A_k,   du_t += lambda_t delta_t B_t[k]
//        dA_k += lambda_t h_{t-1} a_t delta_t,  dB_t[k] += lambda_t delta_t u_t,  dC_t[k] += g_t h_t.
// dB and dC are sums over the channels sharing a group: the block adds its warps' contributions in
// shared memory, then adds the tile to global memory with atomicAdd (so dB, dC must start at 0,
// like dA, dD and ddelta_bias, which are summed over batch and time).
//
// Layout: as in v2_forward.cu; dout, du, ddelta, dz: (b, d, l); dA: (d, n); dB, dC: like B, C;
// dD, ddelta_bias: (d,); dlast (optional, flag FLAG_DLAST): dL/d(last state), (b, d, n).
//
// Large n: the B and C tiles of all n states would not fit in shared memory (n = 64 needs 147 KB for
// them alone), so the states are visited in groups of SGROUP whose tiles are loaded together.
// Gradients through the last state: the adjoint of the last step starts at dlast instead of 0
// (lambda_{l-1} = C_{l-1} g_{l-1} + dlast), so they flow exactly through every step.
// Grid: (blocks per batch element * batch, segments); blockIdx.x = bi * blocks + block.
//
// Few channels (small b*d) leave most of the GPU idle, so time can also be cut into gridDim.y segments
// of tiles_per_seg tiles, as in the forward: the adjoint carry of a segment is an affine function of
// the carry entering it from the right, nu_start = R nu_end + N (per state). A first launch compiled
// with ADJ_ONLY=1 runs the adjoint scan alone over every segment but the first, from nu_end = 0,
// and writes (N, R) to seg_adj (b, d, segments, 2, n); the main launch starts segment z from the carry
// folded over the segments to its right (and dlast), then computes every gradient of its own steps.
//
// Latency, not arithmetic, limits this kernel (one block per SM — 16 warps for n <= 32, 8 above — each warp
// a long chain of dependent steps), so two things keep the warps from waiting (measured on the H200, launch
// alone: 2074 -> 1595 us at (8, 1536, 2048, 16), 2789 -> 2121 us at (1, 1536, 16384, 16); the sweep of
// commit a512286, which still had both versions: benchmarks/gpu_scan.py --sweep-backward --variants all):
//   * global loads are issued together, then used: each tile's delta/u/dout/z (and those re-read by the
//     per-step gradients), the B/C tiles of a state group and the tile's h_chk go to registers first, so
//     their latencies overlap instead of adding up; A and the tile's h_chk are read from shared memory
//     (sA, sHt) inside the state loop, which then reads global memory only for a fixed (d, n) B or C;
//   * one __syncthreads per state for the block's dB/dC sum: sRB/sRC are double buffered (consecutive
//     states write alternate pairs, so the sum of one state runs while the warps compute the next), and
//     all threads share the sum, one (dB or dC, step) each, over a fixed, unrolled NWARPS warps (idle
//     warps stored zeros).

#ifndef DSTATE
#define DSTATE 16
#endif
#ifndef CHUNK
#define CHUNK 8
#endif
#ifndef NWARPS
#define NWARPS 8
#endif
#ifndef ADJ_ONLY
#define ADJ_ONLY 0  // 1: first pass over segments (adjoint carry map only, no gradients)
#endif
#ifndef SGROUP
#define SGROUP (DSTATE < 16 ? DSTATE : 16)  // states whose B, C tiles are in shared memory together
#endif

#define T_TILE (32 * CHUNK)
#define PAD(j) ((j) + (((j) >> 5) << 2))
#define T_PAD PAD(T_TILE)
#define FULL_MASK 0xffffffffu
#define LOG2E 1.4426950408889634f

#define FLAG_D 1
#define FLAG_Z 2
#define FLAG_BIAS 4
#define FLAG_SOFTPLUS 8
#define FLAG_DLAST 16

static_assert(CHUNK % 4 == 0 && 32 % CHUNK == 0, "CHUNK must be 4, 8, 16 or 32");

__device__ __forceinline__ void load_chunk(float (&dst)[CHUNK], const float* src) {
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

// Reverse (right-to-left) inclusive Hillis-Steele scan over the 32 lanes of a warp of the maps
// nu -> R nu + N: afterwards lane i holds the composition of its own map with those of lanes i+1 .. 31
// (5 rounds of __shfl_down_sync). Both backward passes use it for the adjoint scan.
__device__ __forceinline__ void reverse_scan_maps(float& R, float& N, int lane) {
#pragma unroll
    for (int offset = 1; offset < 32; offset <<= 1) {
        const float R_right = __shfl_down_sync(FULL_MASK, R, offset);
        const float N_right = __shfl_down_sync(FULL_MASK, N, offset);
        if (lane + offset < 32) { N = R * N_right + N; R = R * R_right; }
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}


#ifndef MIN_BLOCKS
#define MIN_BLOCKS 1  // blocks per SM the compiler must fit (caps the registers per thread)
#endif

extern "C" __global__ void __launch_bounds__(32 * NWARPS, MIN_BLOCKS) selective_scan_bwd_v2(
    const float* __restrict__ u, const float* __restrict__ delta, const float* __restrict__ A,
    const float* __restrict__ B, const float* __restrict__ C, const float* __restrict__ D,
    const float* __restrict__ z, const float* __restrict__ delta_bias,
    const float* __restrict__ dout, const float* __restrict__ h_chk,
    float* __restrict__ du_out, float* __restrict__ ddelta_out, float* __restrict__ dA,
    float* __restrict__ dB, float* __restrict__ dC, float* __restrict__ dD,
    float* __restrict__ dz, float* __restrict__ ddelta_bias, const float* __restrict__ dlast,
    int batch, int dim, int seqlen, int b_groups, int c_groups, int seg, int flags,
    float* __restrict__ seg_adj, int tiles_per_seg)
{
    extern __shared__ __align__(16) float smem[];
    float* sB = smem;                          // (SGROUP, T_PAD): one group of states
    float* sC = sB + SGROUP * T_PAD;           // (SGROUP, T_PAD)
    float* sU = sC + SGROUP * T_PAD;           // (NWARPS, T_PAD) u, then du
    float* sDl = sU + NWARPS * T_PAD;          // (NWARPS, T_PAD) delta, then ddelta
    float* sG = sDl + NWARPS * T_PAD;          // (NWARPS, T_PAD) g = dL/dy, then y + D u
    float* sRB = sG + NWARPS * T_PAD;          // (NWARPS, T_PAD) per-warp dB (or dC) of one state
    float* sRC = sRB + NWARPS * T_PAD;         // (NWARPS, T_PAD)
    float* sRB2 = sRC + NWARPS * T_PAD;        // the second (sRB, sRC) pair: the dB/dC sums are double buffered
    float* sNu = sRB2 + 2 * NWARPS * T_PAD;    // (NWARPS, DSTATE) adjoint carry between tiles
    float* sAcc = sNu + NWARPS * DSTATE;       // (NWARPS, 3 * DSTATE) dA, fixed dB, fixed dC sums
    float* sA = sAcc + NWARPS * 3 * DSTATE;    // (NWARPS, DSTATE) this warp's row of A
    float* sHt = sA + NWARPS * DSTATE;         // (NWARPS, DSTATE) h_chk of the current tile

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int blocks_per_seg = (seg + NWARPS - 1) / NWARPS;
    const int nblk = (dim / seg) * blocks_per_seg;  // blocks per batch element
    const int bi = blockIdx.x / nblk;
    const int bx = blockIdx.x % nblk;
    const int seg_id = bx / blocks_per_seg;
    const int first = (bx % blocks_per_seg) * NWARPS;
    const int n_active = min(NWARPS, seg - first);
    const bool active = warp < n_active;
    const int d0 = seg_id * seg + first;
    const int di = d0 + (active ? warp : 0);
    const long long row = ((long long)bi * dim + di) * seqlen;
    const int n_tiles = (seqlen + T_TILE - 1) / T_TILE;
    const int zseg = blockIdx.y + ADJ_ONLY;  // this block's time segment (pass 1 skips segment 0)
    const int n_seg = gridDim.y + ADJ_ONLY;
    const int tile_begin = zseg * tiles_per_seg;
    const int tile_end = min(tile_begin + tiles_per_seg, n_tiles);
    const long long adj_row = ((long long)bi * dim + di) * n_seg;  // seg_adj (b, d, segments, 2, n)
    const long long b_base = b_groups > 0 ? ((long long)bi * b_groups + d0 / (dim / b_groups)) * DSTATE * seqlen : 0;
    const long long c_base = c_groups > 0 ? ((long long)bi * c_groups + d0 / (dim / c_groups)) * DSTATE * seqlen : 0;

    const float bias = (flags & FLAG_BIAS) ? delta_bias[di] : 0.f;
    const float Dd = (flags & FLAG_D) ? D[di] : 0.f;
    float* myU = sU + warp * T_PAD;
    float* myDl = sDl + warp * T_PAD;
    float* myG = sG + warp * T_PAD;
    float* nu_carry = sNu + warp * DSTATE;
    float* acc = sAcc + warp * 3 * DSTATE;
    for (int k = lane; k < DSTATE; k += 32) {
#if ADJ_ONLY
        nu_carry[k] = 0.f;
        acc[k] = 1.f;  // product of the segment's a_t (the R of its carry map)
#else
        // carry entering from the right: dlast at the end of the sequence, folded through later segments
        float c = (active && (flags & FLAG_DLAST)) ? dlast[((long long)bi * dim + di) * DSTATE + k] : 0.f;
        for (int j = n_seg - 1; j > zseg; --j) {
            const float* sa = seg_adj + (adj_row + j) * 2 * DSTATE;
            c = sa[k] + sa[DSTATE + k] * c;
        }
        nu_carry[k] = c;
        acc[k] = 0.f;
#endif
        acc[DSTATE + k] = 0.f; acc[2 * DSTATE + k] = 0.f;
    }
    const int my = PAD(lane * CHUNK);
    float dD_acc = 0.f, dbias_acc = 0.f;  // per lane, summed over the warp at the end
    for (int k = lane; k < DSTATE; k += 32) sA[warp * DSTATE + k] = A[di * DSTATE + k];
#if !ADJ_ONLY
    const long long chk_row = ((long long)bi * dim + di) * n_tiles;  // h_chk (b, d, tiles, n)
#endif
    int rbuf = 0;  // which (sRB, sRC) pair the next state writes

    for (int tile = tile_end - 1; tile >= tile_begin; --tile) {
        const int t0 = tile * T_TILE;
        // ---- 1. loads (past l: delta = u = g = 0, so those steps contribute nothing) ----
        {   // every global load of the tile first (in flight together), then the arithmetic
            float rd[CHUNK], ru[CHUNK], rg[CHUNK], rz[CHUNK];
#pragma unroll
            for (int it = 0; it < CHUNK; ++it) {
                const int j = lane + 32 * it;
                const bool ok = active && t0 + j < seqlen;
                rd[it] = 0.f; ru[it] = 0.f; rg[it] = 0.f; rz[it] = 0.f;
                if (ok) {
                    rd[it] = delta[row + t0 + j];
                    if (!ADJ_ONLY) ru[it] = u[row + t0 + j];
                    rg[it] = dout[row + t0 + j];
                    if (flags & FLAG_Z) rz[it] = z[row + t0 + j];
                }
            }
#if !ADJ_ONLY
            float hk[(DSTATE + 31) / 32];
#pragma unroll
            for (int q = 0; q < (DSTATE + 31) / 32; ++q) {
                const int k = lane + 32 * q;
                hk[q] = (active && k < DSTATE) ? h_chk[(chk_row + tile) * DSTATE + k] : 0.f;
            }
#endif
#pragma unroll
            for (int it = 0; it < CHUNK; ++it) {
                const int j = lane + 32 * it;
                float dv = 0.f, gv = 0.f;
                if (active && t0 + j < seqlen) {
                    dv = rd[it] + bias;
                    if (flags & FLAG_SOFTPLUS) dv = dv <= 20.f ? log1pf(__expf(dv)) : dv;
                    gv = rg[it];
                    if (flags & FLAG_Z) { const float zv = rz[it]; gv *= zv / (1.f + __expf(-zv)); }
                }
                myDl[PAD(j)] = dv; myU[PAD(j)] = ru[it]; myG[PAD(j)] = gv;
            }
#if !ADJ_ONLY
#pragma unroll
            for (int q = 0; q < (DSTATE + 31) / 32; ++q)
                if (lane + 32 * q < DSTATE) sHt[warp * DSTATE + lane + 32 * q] = hk[q];
#endif
        }
        __syncwarp();

        float dl[CHUNK], uu[CHUNK], g[CHUNK], y[CHUNK], ddl[CHUNK], dU[CHUNK];
        load_chunk(dl, myDl + my);
        load_chunk(uu, myU + my);
        load_chunk(g, myG + my);
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) { y[k] = 0.f; ddl[k] = 0.f; dU[k] = 0.f; }

#pragma unroll 1
        for (int s0 = 0; s0 < DSTATE; s0 += SGROUP) {
        // B, C tiles of states s0 .. s0 + SGROUP - 1 (fixed trip count, unrolled: loads in flight together)
        __syncthreads();  // every warp is done with the previous group's tiles
        {   // all loads first (in flight together), then the shared-memory stores
            constexpr int ITERS = (SGROUP * T_TILE + 32 * NWARPS - 1) / (32 * NWARPS);
            float vb[ITERS], vc[ITERS];
#pragma unroll
            for (int it = 0; it < ITERS; ++it) {
                const int i = threadIdx.x + it * 32 * NWARPS;
                vb[it] = 0.f; vc[it] = 0.f;
                if (i < SGROUP * T_TILE && s0 + i / T_TILE < DSTATE && t0 + i % T_TILE < seqlen) {
                    const long long off = (long long)(s0 + i / T_TILE) * seqlen + t0 + i % T_TILE;
                    if (b_groups > 0 && !ADJ_ONLY) vb[it] = B[b_base + off];
                    if (c_groups > 0) vc[it] = C[c_base + off];
                }
            }
#pragma unroll
            for (int it = 0; it < ITERS; ++it) {
                const int i = threadIdx.x + it * 32 * NWARPS;
                if (i < SGROUP * T_TILE && s0 + i / T_TILE < DSTATE) {
                    const int k = i / T_TILE, j = i % T_TILE;
                    if (b_groups > 0 && !ADJ_ONLY) sB[k * T_PAD + PAD(j)] = vb[it];
                    if (c_groups > 0) sC[k * T_PAD + PAD(j)] = vc[it];
                }
            }
        }
        __syncthreads();
#pragma unroll 1
        for (int s = s0; s < min(s0 + SGROUP, DSTATE); ++s) {
            const float As = sA[warp * DSTATE + s];
            const float As2 = As * LOG2E;
            float Bv[CHUNK], Cv[CHUNK], a[CHUNK], bu[CHUNK], hp[CHUNK];
            if (b_groups > 0) load_chunk(Bv, sB + (s - s0) * T_PAD + my);
            else {
                const float Bs = B[di * DSTATE + s];
#pragma unroll
                for (int k = 0; k < CHUNK; ++k) Bv[k] = Bs;
            }
            if (c_groups > 0) load_chunk(Cv, sC + (s - s0) * T_PAD + my);
            else {
                const float Cs = C[di * DSTATE + s];
#pragma unroll
                for (int k = 0; k < CHUNK; ++k) Cv[k] = Cs;
            }
#if ADJ_ONLY
            {   // pass 1: only the adjoint carry map of this tile, nu_tile -> R_tile nu_tile + N_tile
                float R = 1.f, N = 0.f;
#pragma unroll
                for (int k = 0; k < CHUNK; ++k) { a[k] = exp2f(dl[k] * As2); R *= a[k]; }
#pragma unroll
                for (int k = CHUNK - 1; k >= 0; --k) N = a[k] * (Cv[k] * g[k] + N);
                reverse_scan_maps(R, N, lane);
                const float nu_next_tile = __shfl_sync(FULL_MASK, R * nu_carry[s] + N, 0);
                const float R_tile = __shfl_sync(FULL_MASK, R, 0);
                __syncwarp();
                if (lane == 0) { nu_carry[s] = nu_next_tile; acc[s] *= R_tile; }
                continue;
            }
#endif
            // ---- 2. forward replay: the chunked scan of v2_forward.cu ----
            float P = 1.f, Q = 0.f;
#pragma unroll
            for (int k = 0; k < CHUNK; ++k) {
                a[k] = exp2f(dl[k] * As2);
                bu[k] = dl[k] * uu[k] * Bv[k];
                Q = a[k] * Q + bu[k];
                P *= a[k];
            }
            const float P_chunk = P;  // product of this lane's a_t, reused by the reverse scan
#pragma unroll
            for (int offset = 1; offset < 32; offset <<= 1) {
                const float P_left = __shfl_up_sync(FULL_MASK, P, offset);
                const float Q_left = __shfl_up_sync(FULL_MASK, Q, offset);
                if (lane >= offset) { Q = P * Q_left + Q; P = P * P_left; }
            }
            const float h_tile = sHt[warp * DSTATE + s];  // 0 for an idle warp
            float P_ex = __shfl_up_sync(FULL_MASK, P, 1);
            float Q_ex = __shfl_up_sync(FULL_MASK, Q, 1);
            if (lane == 0) { P_ex = 1.f; Q_ex = 0.f; }
            float h = P_ex * h_tile + Q_ex;
#pragma unroll
            for (int k = 0; k < CHUNK; ++k) { hp[k] = h; h = a[k] * h + bu[k]; y[k] += Cv[k] * h; }

            // ---- 3. adjoint scan, right to left: nu_t = a_t nu_{t+1} + a_t C_t g_t ----
            float R = P_chunk, N = 0.f;  // the chunk's map nu_end -> R nu_end + N
#pragma unroll
            for (int k = CHUNK - 1; k >= 0; --k) N = a[k] * (Cv[k] * g[k] + N);
            reverse_scan_maps(R, N, lane);
            const float nu_tile = nu_carry[s];                    // nu at the first step of the next tile
            const float nu_start = R * nu_tile + N;                // nu at the first step of this lane's chunk
            float nu = __shfl_down_sync(FULL_MASK, nu_start, 1);  // nu entering this chunk from the right
            if (lane == 31) nu = nu_tile;
            const float nu_next_tile = __shfl_sync(FULL_MASK, nu_start, 0);

            float dA_acc = 0.f, dBf = 0.f, dCf = 0.f;
            float dBv[CHUNK], dCv[CHUNK];
#pragma unroll
            for (int k = CHUNK - 1; k >= 0; --k) {
                const float lam = Cv[k] * g[k] + nu;           // dL/dh_t
                const float da = lam * hp[k];                  // dL/da_t
                nu = a[k] * lam;
                ddl[k] += lam * uu[k] * Bv[k] + da * a[k] * As;
                dU[k] += lam * dl[k] * Bv[k];
                dA_acc += da * a[k] * dl[k];
                dBv[k] = lam * dl[k] * uu[k];
                dCv[k] = g[k] * (a[k] * hp[k] + bu[k]);
                dBf += dBv[k];
                dCf += dCv[k];
            }
            // per-channel sums (dA; dB, dC when fixed): over the warp, then into shared memory
            dA_acc = warp_sum(dA_acc);
            if (b_groups == 0) dBf = warp_sum(dBf);
            if (c_groups == 0) dCf = warp_sum(dCf);
            __syncwarp();
            if (lane == 0) {
                nu_carry[s] = nu_next_tile;
                acc[s] += dA_acc;
                acc[DSTATE + s] += dBf;
                acc[2 * DSTATE + s] += dCf;
            }
            // variable dB, dC: sum the block's warps in shared memory, one atomicAdd per step
            if (b_groups > 0 || c_groups > 0) {
                float* rB = rbuf ? sRB2 : sRB;  // this state's pair: dB rows, then dC rows
                rbuf ^= 1;
                if (!active) {  // an idle warp adds zeros (the sum below takes every warp's row)
#pragma unroll
                    for (int k = 0; k < CHUNK; ++k) { dBv[k] = 0.f; dCv[k] = 0.f; }
                }
                if (b_groups > 0) store_chunk(rB + warp * T_PAD + my, dBv);
                if (c_groups > 0) store_chunk(rB + (NWARPS + warp) * T_PAD + my, dCv);
                // the only barrier of the state: the pair written two states ago was summed before it
                __syncthreads();
                for (int i = threadIdx.x; i < 2 * T_TILE; i += 32 * NWARPS) {
                    const int which = i / T_TILE, j = i % T_TILE;  // which: 0 dB, 1 dC (the same for a warp)
                    if ((which == 0 ? b_groups : c_groups) > 0 && t0 + j < seqlen) {
                        const float* col = rB + which * NWARPS * T_PAD + PAD(j);
                        float part[4] = {0.f, 0.f, 0.f, 0.f};  // 4 independent sums (shorter add chains)
#pragma unroll
                        for (int w = 0; w < NWARPS; ++w) part[w & 3] += col[w * T_PAD];
                        float* dst = which == 0 ? dB + b_base : dC + c_base;
                        atomicAdd(dst + (long long)s * seqlen + t0 + j, (part[0] + part[1]) + (part[2] + part[3]));
                    }
                }
            }
        }
        }  // state groups

#if !ADJ_ONLY
        // ---- 4. per-step gradients: stage in shared memory, store coalesced ----
#pragma unroll
        for (int k = 0; k < CHUNK; ++k) {
            dU[k] += Dd * g[k];
            dD_acc += g[k] * uu[k];
            y[k] += Dd * uu[k];  // output before the gate
        }
        __syncwarp();
        store_chunk(myU + my, dU);
        store_chunk(myDl + my, ddl);
        store_chunk(myG + my, y);
        __syncwarp();
        float rd[CHUNK], rz[CHUNK], rg[CHUNK];  // the global re-reads first, in flight together
#pragma unroll
        for (int it = 0; it < CHUNK; ++it) {
            const int j = lane + 32 * it;
            rd[it] = 0.f; rz[it] = 0.f; rg[it] = 0.f;
            if (active && t0 + j < seqlen) {
                if (flags & FLAG_SOFTPLUS) rd[it] = delta[row + t0 + j];
                if (flags & FLAG_Z) { rz[it] = z[row + t0 + j]; rg[it] = dout[row + t0 + j]; }
            }
        }
#pragma unroll
        for (int it = 0; it < CHUNK; ++it) {
            const int j = lane + 32 * it;
            if (active && t0 + j < seqlen) {
                const long long i = row + t0 + j;
                float dd = myDl[PAD(j)];
                if (flags & FLAG_SOFTPLUS) {
                    const float raw = rd[it] + bias;
                    if (raw <= 20.f) dd *= 1.f / (1.f + __expf(-raw));  // softplus' = sigmoid
                }
                ddelta_out[i] = dd;
                dbias_acc += dd;
                du_out[i] = myU[PAD(j)];
                if (flags & FLAG_Z) {
                    const float zv = rz[it], sig = 1.f / (1.f + __expf(-zv));
                    dz[i] = rg[it] * myG[PAD(j)] * sig * (1.f + zv * (1.f - sig));  // silu' = sig (1 + z (1 - sig))
                }
            }
        }
#endif
        __syncthreads();
    }
#if ADJ_ONLY
    __syncwarp();
    if (active)
        for (int k = lane; k < DSTATE; k += 32) {
            float* sa = seg_adj + (adj_row + zseg) * 2 * DSTATE;
            sa[k] = nu_carry[k];
            sa[DSTATE + k] = acc[k];
        }
    (void)dD_acc; (void)dbias_acc; (void)Dd;
    return;
#endif
    dD_acc = warp_sum(dD_acc);
    dbias_acc = warp_sum(dbias_acc);
    if (active && lane == 0) {
        if (flags & FLAG_D) atomicAdd(dD + di, dD_acc);
        if (flags & FLAG_BIAS) atomicAdd(ddelta_bias + di, dbias_acc);
    }
    if (active)
        for (int k = lane; k < DSTATE; k += 32) {
            atomicAdd(dA + di * DSTATE + k, acc[k]);
            if (b_groups == 0) atomicAdd(dB + di * DSTATE + k, acc[DSTATE + k]);
            if (c_groups == 0) atomicAdd(dC + di * DSTATE + k, acc[2 * DSTATE + k]);
        }
}
