// Kernel v2, forward (lesson 7): the fused selective scan.
//
// Everything happens in registers and shared memory: softplus(delta + bias), A_bar = exp(delta A),
// B_bar u = delta B u, the scan over time, y = C . h, the D skip and the silu(z) gate. Global
// memory sees u, delta, z, B, C read once and out written once; nothing of size (b, d, l, n).
//
// Work split: the states of a channel are spread over lanes, time stays sequential.
//   * A channel (b, d) gets LPC lanes ("lanes per channel"); lane s owns the states s, s + LPC, ...
//     and keeps them in registers for the whole sequence: h_t = exp(delta_t A_s) h_{t-1} + delta_t B_t[s] u_t.
//     Every lane runs its own recurrence, so no scan between threads is needed at all, and there
//     are b*d*LPC threads: enough to keep the GPU busy even when b*d is small.
//   * y_t = sum_s C_t[s] h_t[s] is a sum across the LPC lanes. Each lane collects its partial sums
//     for LPC consecutive steps, then a "transpose-reduce" with warp shuffles (log2(LPC) levels, each
//     halving the values a lane holds) leaves lane s with the full y of step s of that block.
//   * A block of NWARPS warps handles 32*NWARPS/LPC channels that share B and C (same batch and
//     group). Time goes in tiles of TILE steps; while one tile is computed, cp.async copies the
//     next one (B, C, u, delta, z) into a second shared-memory buffer. A pre-pass per tile computes
//     softplus(delta + bias), delta*u and silu(z) once per element (not once per lane).
// Optionally (h_chk != 0) the state entering every CHK_TILE-step tile is saved for the backward
// kernel (v2_backward.cu uses tiles of 32*CHUNK steps).
//
// Few channels (small b*d) leave the GPU idle. Then the sequence is also cut into gridDim.z segments
// of seg_len steps — the lesson's chunked scan at the level of the grid: a first launch compiled with
// STATES_ONLY=1 runs every segment but the last from h = 0 and writes only its final state and its
// total decay exp(A * sum(delta)) to seg_buf (b, d, segments, 2, n); the second launch starts segment
// z from the state obtained by folding segments 0 .. z-1 (h = decay * h + h_end), and computes y.
//
// Layout: u, delta, z, out: (b, d, l); A: (d, n); B, C: (b, g, n, l) with *_groups = g > 0, or
// fixed (d, n) with g = 0; D, delta_bias: (d,); last_state: (b, d, n); h_chk: (b, d, tiles, n).
// Channels come in runs of `seg` consecutive channels that share one B group and one
// C group; a block never crosses a run. The grid is (blocks per batch element * batch, 1, segments):
// blockIdx.x = bi * blocks + block, so any batch size fits (gridDim.y would stop at 65 535).
//
// Input check for free (flag FLAG_CHECK): the values are already in registers or shared memory on
// their way to the scan, so each is tested there for NaN/inf, and a block that met one sets the bit
// of that argument (1 u, 2 delta, 4 A, 8 B, 16 C, 32 D, 64 z, 128 delta_bias) in *err with atomicOr.
// The host reads *err after the launch and raises an error naming the argument: no extra pass.
// u, delta and z (one value per step) cost one FMA each: poison = fmaf(x, 0, poison) stays 0 while
// every x is finite and becomes NaN for good at the first NaN or inf (inf * 0 = NaN; IEEE rules,
// which --use_fast_math keeps: it flushes denormals and fuses, it does not assume finite values).
// 16-byte copies need 16-byte aligned rows whose length l is a multiple of 4 (float) or 8 (half precision);
// otherwise (a view at an odd offset, or another l) float takes 4-byte copies and half precision plain loads.

#ifndef DSTATE
#define DSTATE 16
#endif
#ifndef LPC
#define LPC 16       // lanes per channel: 4, 8, 16 or 32
#endif
#ifndef NWARPS
#define NWARPS 8
#endif
#ifndef TILE
#define TILE 64      // steps per shared-memory tile (a multiple of LPC and of 4)
#endif
#ifndef MIN_BLOCKS
#define MIN_BLOCKS (1024 / (32 * NWARPS))  // ask the compiler to fit 32 warps per SM (<= 64 registers)
#endif
#ifndef UNROLL_BLOCKS
#define UNROLL_BLOCKS 1  // blocks of LPC steps unrolled together (more independent work per warp)
#endif
#ifndef CHK_TILE
#define CHK_TILE 256 // checkpoint spacing for the backward kernel (a multiple of LPC)
#endif

#ifndef STATES_ONLY
#define STATES_ONLY 0  // 1: first pass over segments (final state and decay only, no output)
#endif
#ifndef VAR_B
#define VAR_B 1      // 1: B varies with time (b_groups > 0); 0: fixed (d, n). Compiled in, so the inner
#endif               //    loop has no branch or register copies for the layout it does not use
#ifndef VAR_C
#define VAR_C 1
#endif

// u, delta, z, B, C and out in float (default), or in half precision with IN_BF16=1 / IN_FP16=1: then
// the tiles are copied as they are into a staging area and converted to float once, in shared memory
// (arithmetic is float32 either way); out is written in the input's precision.
#ifndef IN_BF16
#define IN_BF16 0
#endif
#ifndef IN_FP16
#define IN_FP16 0
#endif
#define HALF_IN (IN_BF16 || IN_FP16)
#if IN_BF16
#include <cuda_bf16.h>
typedef __nv_bfloat16 in_t;
__device__ __forceinline__ float to_float(in_t x) { return __bfloat162float(x); }
__device__ __forceinline__ in_t from_float(float x) { return __float2bfloat16(x); }
#elif IN_FP16
#include <cuda_fp16.h>
typedef __half in_t;
__device__ __forceinline__ float to_float(in_t x) { return __half2float(x); }
__device__ __forceinline__ in_t from_float(float x) { return __float2half(x); }
#else
typedef float in_t;
__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float from_float(float x) { return x; }
#endif
#define VEC (16 / (int)sizeof(in_t))      // elements per 16-byte copy

#define NTHREADS (32 * NWARPS)
#define CPB (NTHREADS / LPC)              // channels per block
#define SPL ((DSTATE + LPC - 1) / LPC)    // states per lane
#define TP (TILE + 4)                     // padded row: rows start 4 banks apart
#define BUF_FLOATS ((2 * DSTATE + 3 * CPB) * TP)  // one buffer: B, C tiles + u, delta, z rows
#define TS (TILE + 8)                     // half precision: padded staging row (16-byte aligned)
#define STAGE_ELEMS ((2 * DSTATE + 3 * CPB) * TS)
#define FULL_MASK 0xffffffffu
#define LOG2E 1.4426950408889634f

#define FLAG_D 1
#define FLAG_Z 2
#define FLAG_BIAS 4
#define FLAG_SOFTPLUS 8
#define FLAG_LAST_STATE 16
#define FLAG_CHECKPOINT 32
#define FLAG_CHECK 64

// NaN or inf: all exponent bits set (a bit test, so --use_fast_math cannot fold it away)
__device__ __forceinline__ bool nonfinite(float x) { return (__float_as_uint(x) & 0x7f800000u) == 0x7f800000u; }

static_assert(LPC == 4 || LPC == 8 || LPC == 16 || LPC == 32, "LPC must be 4, 8, 16 or 32");
static_assert(TILE % LPC == 0 && TILE % 4 == 0 && CHK_TILE % LPC == 0, "TILE and CHK_TILE must be multiples of LPC");
static_assert(TILE % VEC == 0 && NTHREADS % (TILE / VEC) == 0, "a tile row must split into 16-byte chunks over the block");
static_assert(NTHREADS % (TILE / 4) == 0, "a tile row must split into groups of 4 steps over the block");

#include "cp_async.cuh"  // cp_async4 / cp_async16 (with valid == false: zeros), commit, wait

// The 16-byte copies of a tile: thread i always copies the same VEC columns [cj, cj + VEC) of rows
// cr, cr + RSTEP, ... of every array (cr = i / (TILE / VEC)), so its offset cr * seqlen + cj into a block
// of rows is computed once per kernel; per tile only t0 is added. src: the block's first row of the array
// (all rows seqlen long); row r exists when r < live_rows; steps past seqlen become 0 (seqlen % VEC == 0,
// so a 16-byte chunk is all in or all out).
#define CHUNKS_PER_ROW (TILE / VEC)
#define RSTEP (NTHREADS / CHUNKS_PER_ROW)  // rows covered by one pass of the block's threads
template <int ROWS>
__device__ __forceinline__ void copy_rows_vec(in_t* dst, int stride, const in_t* src, long long thread_off,
                                              long long row_stride, int cr, int cj, int live_rows, int t0,
                                              int seqlen) {
    const bool in_time = t0 + cj < seqlen;
#pragma unroll
    for (int k = 0; k < (ROWS + RSTEP - 1) / RSTEP; ++k) {
        const int r = cr + k * RSTEP;
        if (ROWS % RSTEP != 0 && r >= ROWS) break;
        const bool ok = in_time && r < live_rows;
        cp_async16(reinterpret_cast<float*>(dst + r * stride + cj),
                   reinterpret_cast<const float*>(ok ? src + thread_off + k * row_stride + t0 : src), ok);
    }
}

// The fallback when rows are not 16-byte aligned (or seqlen % VEC != 0): copy `rows` rows of TILE elements,
// starting at step t0, from global rows of length seqlen (row r at src + src_row(r), none where src_row(r) < 0)
// to shared rows of `stride` elements; steps past seqlen become 0. float rows take 4-byte cp.async copies;
// half-precision rows, whose elements may sit at any 2-byte offset, plain loads and stores (visible to the
// block after the next __syncthreads).
template <typename RowFn>
__device__ __forceinline__ void copy_rows(in_t* dst, const in_t* src, int rows, int stride, RowFn src_row, int t0,
                                          int seqlen) {
    for (int i = threadIdx.x; i < rows * TILE; i += NTHREADS) {
        const int r = i / TILE, j = i % TILE;
        const long long base = src_row(r);
        const bool ok = base >= 0 && t0 + j < seqlen;
#if HALF_IN
        dst[r * stride + j] = ok ? src[base + t0 + j] : from_float(0.f);
#else
        cp_async4(dst + r * stride + j, src + (ok ? base + t0 + j : 0), ok);
#endif
    }
}

// 4 consecutive elements of a shared-memory row (16-byte aligned floats; 8-byte aligned half precision)
__device__ __forceinline__ void load4(const float* p, float (&v)[4]) {
    const float4 x = *reinterpret_cast<const float4*>(p);
    v[0] = x.x; v[1] = x.y; v[2] = x.z; v[3] = x.w;
}
#if HALF_IN
__device__ __forceinline__ void load4(const in_t* p, float (&v)[4]) {
    const uint2 w = *reinterpret_cast<const uint2*>(p);
    const in_t* x = reinterpret_cast<const in_t*>(&w);
#pragma unroll
    for (int q = 0; q < 4; ++q) v[q] = to_float(x[q]);
}
#endif
__device__ __forceinline__ void store4(float* p, const float (&v)[4]) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
}

// Per-element work on a tile (the pre-pass, the half-precision B/C conversion) goes 4 steps at a time:
// thread i takes the columns [qj, qj + 4) of rows qr, qr + QSTEP, ... (qr = i / (TILE / 4)).
#define QSTEP (NTHREADS / (TILE / 4))

// one level of the transpose-reduce: lanes exchange half of their 2M partial sums with the lane M
// away (the half they do not keep) and add what they receive, so each lane now holds M sums
template <int M>
__device__ __forceinline__ void reduce_level(float (&p)[LPC], int sl) {
    const bool upper = (sl & M) != 0;
#pragma unroll
    for (int k = 0; k < M; ++k) {
        const float send = upper ? p[k] : p[k + M];
        const float keep = upper ? p[k + M] : p[k];
        p[k] = keep + __shfl_xor_sync(FULL_MASK, send, M);
    }
}

extern "C" __global__ void __launch_bounds__(NTHREADS, MIN_BLOCKS) selective_scan_fwd_v2(
    const in_t* __restrict__ u, const in_t* __restrict__ delta, const float* __restrict__ A,
    const in_t* __restrict__ B, const in_t* __restrict__ C, const float* __restrict__ D,
    const in_t* __restrict__ z, const float* __restrict__ delta_bias,
    in_t* __restrict__ out, float* __restrict__ last_state, float* __restrict__ h_chk,
    float* __restrict__ seg_buf, int seg_len,
    int batch, int dim, int seqlen, int b_groups, int c_groups, int seg, int flags, int* __restrict__ err)
{
    // shared memory: two buffers of [B tile (DSTATE, TP) | C tile | u (CPB, TP) | delta | z], then delta*u (CPB, TP)
    // (half precision: one float buffer, delta*u, then two staging buffers of the raw tiles)
    extern __shared__ __align__(16) float smem[];
#if HALF_IN
    float* sDu = smem + BUF_FLOATS;
    in_t* stage = reinterpret_cast<in_t*>(smem + BUF_FLOATS + CPB * TP);
#else
    float* sDu = smem + 2 * BUF_FLOATS;
#endif

    const int lane = threadIdx.x & 31, sl = lane % LPC;              // sl: this lane's slot in its channel
    const int ch = threadIdx.x / LPC;                                 // channel within the block
    const int blocks_per_seg = (seg + CPB - 1) / CPB;
    const int nblk = (dim / seg) * blocks_per_seg;                    // blocks per batch element
    const int bi = blockIdx.x / nblk;
    const int bx = blockIdx.x % nblk;
    const int seg_id = bx / blocks_per_seg;
    const int first = (bx % blocks_per_seg) * CPB;                    // first channel within the segment
    const int n_active = min(CPB, seg - first);                       // channels that exist
    const bool active = ch < n_active;
    const int d0 = seg_id * seg + first;                              // block's first channel
    const int di = d0 + (active ? ch : 0);
    const long long row = ((long long)bi * dim + di) * seqlen;
    const int t_begin = blockIdx.z * seg_len;                         // this block's segment of time
    const int t_end = min(t_begin + seg_len, seqlen);
    const int n_tiles = (t_end - t_begin + TILE - 1) / TILE;
    const int n_seg = (seqlen + seg_len - 1) / seg_len;
    const int n_chk = (seqlen + CHK_TILE - 1) / CHK_TILE;
    const unsigned long long addr_bits = reinterpret_cast<unsigned long long>(u) | reinterpret_cast<unsigned long long>(delta) |
        ((flags & FLAG_Z) ? reinterpret_cast<unsigned long long>(z) : 0ull) |
        (VAR_B ? reinterpret_cast<unsigned long long>(B) : 0ull) | (VAR_C ? reinterpret_cast<unsigned long long>(C) : 0ull);
    const bool vec = seqlen % VEC == 0 && (addr_bits & 15ull) == 0;   // rows 16-byte aligned
    const bool check = !STATES_ONLY && (flags & FLAG_CHECK);
    unsigned bad = 0;  // bits of the arguments in which this thread saw a NaN or inf
    float poison_u = 0.f, poison_delta = 0.f, poison_z = 0.f;  // NaN once a NaN/inf went in (see the top)

    const long long b_base = b_groups > 0 ? ((long long)bi * b_groups + d0 / (dim / b_groups)) * DSTATE * seqlen : 0;
    const long long c_base = c_groups > 0 ? ((long long)bi * c_groups + d0 / (dim / c_groups)) * DSTATE * seqlen : 0;
    const long long row0 = ((long long)bi * dim + d0) * seqlen;       // block's first channel row

    // this lane's states: s = sl + LPC * i; padding states (s >= DSTATE) get A = B = C = 0
    float As[SPL], h[SPL];
#if !VAR_B
    float Bfix[SPL];
#endif
#if !VAR_C && !STATES_ONLY
    float Cfix[SPL];
#endif
#pragma unroll
    for (int i = 0; i < SPL; ++i) {
        const int s = sl + LPC * i;
        const bool live = s < DSTATE;
        As[i] = live ? A[di * DSTATE + s] * LOG2E : 0.f;
        if (check && live && nonfinite(As[i])) bad |= 4;
#if !VAR_B
        Bfix[i] = live ? to_float(B[di * DSTATE + s]) : 0.f;
        if (check && nonfinite(Bfix[i])) bad |= 8;
#endif
#if !VAR_C && !STATES_ONLY
        Cfix[i] = live ? to_float(C[di * DSTATE + s]) : 0.f;
        if (check && nonfinite(Cfix[i])) bad |= 16;
#endif
        h[i] = 0.f;
#if !STATES_ONLY
        // state entering the segment: fold the earlier segments' (decay, final state) pairs
        for (int z = 0; z < (int)blockIdx.z; ++z) {
            const float* sb = seg_buf + ((((long long)bi * dim + di) * n_seg + z) * 2) * DSTATE;
            if (live) h[i] = sb[DSTATE + s] * h[i] + sb[s];
        }
        if (active && live && (flags & FLAG_CHECKPOINT) && blockIdx.z == 0)
            h_chk[((long long)bi * dim + di) * n_chk * DSTATE + s] = 0.f;
#endif
    }
#if STATES_ONLY
    float dl_sum = 0.f;  // sum of this channel's delta over the segment: its decay is exp(A * dl_sum)
    (void)row; (void)n_chk;  // no output, no checkpoints in the first pass
#endif
#if !STATES_ONLY
    const float Dd = (flags & FLAG_D) ? D[di] : 0.f;
    if (check && nonfinite(Dd)) bad |= 32;
    if (check && (flags & FLAG_BIAS) && nonfinite(delta_bias[di])) bad |= 128;
#endif
    // B and C are shared by the channels of a run: only the run's first block checks them
    const bool check_BC = check && first == 0 && (VAR_B || VAR_C);

    auto prefetch = [&](int tile, int buf) {
#if HALF_IN
        in_t* base = stage + buf * STAGE_ELEMS;
        const int stride = TS;
#else
        float* base = smem + buf * BUF_FLOATS;
        const int stride = TP;
#endif
        const int t0 = t_begin + tile * TILE;
        in_t* rows = base + 2 * DSTATE * stride;
        if (vec) {  // the common case: this thread's 16-byte chunks (the same slots in every tile)
            const int cr = threadIdx.x / CHUNKS_PER_ROW, cj = VEC * (threadIdx.x % CHUNKS_PER_ROW);
            const long long cp_off = (long long)cr * seqlen + cj, cp_rstride = (long long)RSTEP * seqlen;
            if (VAR_B) copy_rows_vec<DSTATE>(base, stride, B + b_base, cp_off, cp_rstride, cr, cj, DSTATE, t0, seqlen);
            if (VAR_C && !STATES_ONLY)
                copy_rows_vec<DSTATE>(base + DSTATE * stride, stride, C + c_base, cp_off, cp_rstride, cr, cj, DSTATE, t0, seqlen);
            copy_rows_vec<CPB>(rows, stride, u + row0, cp_off, cp_rstride, cr, cj, n_active, t0, seqlen);
            copy_rows_vec<CPB>(rows + CPB * stride, stride, delta + row0, cp_off, cp_rstride, cr, cj, n_active, t0, seqlen);
            if ((flags & FLAG_Z) && !STATES_ONLY)
                copy_rows_vec<CPB>(rows + 2 * CPB * stride, stride, z + row0, cp_off, cp_rstride, cr, cj, n_active, t0, seqlen);
            return;
        }
        if (VAR_B) copy_rows(base, B, DSTATE, stride, [&](int r) { return b_base + (long long)r * seqlen; }, t0, seqlen);
        if (VAR_C && !STATES_ONLY) copy_rows(base + DSTATE * stride, C, DSTATE, stride, [&](int r) { return c_base + (long long)r * seqlen; }, t0, seqlen);
        auto chan_row = [&](int r) { return r < n_active ? row0 + (long long)r * seqlen : -1LL; };
        copy_rows(rows, u, CPB, stride, chan_row, t0, seqlen);
        copy_rows(rows + CPB * stride, delta, CPB, stride, chan_row, t0, seqlen);
        if ((flags & FLAG_Z) && !STATES_ONLY) copy_rows(rows + 2 * CPB * stride, z, CPB, stride, chan_row, t0, seqlen);
    };

    prefetch(0, 0);
    cp_async_commit();
    for (int tile = 0; tile < n_tiles; ++tile) {
        const int t0 = t_begin + tile * TILE;
        if (tile + 1 < n_tiles) {  // copy the next tile while this one is computed
            prefetch(tile + 1, (tile + 1) & 1);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();  // this tile's copies, made by every thread, are now visible to all
#if HALF_IN
        const in_t* st = stage + (tile & 1) * STAGE_ELEMS;  // this tile's raw rows
        if (VAR_B || (VAR_C && !STATES_ONLY)) {  // B, C rows to float (u, delta, z: in the pre-pass below)
            const int qr = threadIdx.x / (TILE / 4), qj = 4 * (threadIdx.x % (TILE / 4));
#pragma unroll
            for (int k = 0; k < (2 * DSTATE + QSTEP - 1) / QSTEP; ++k) {
                const int r = qr + k * QSTEP;
                if (r >= 2 * DSTATE) break;
                if (!(r < DSTATE ? VAR_B : (VAR_C && !STATES_ONLY))) continue;
                float v[4];
                load4(st + r * TS + qj, v);
                store4(smem + r * TP + qj, v);
                if (check_BC)  // steps past l are zeros: finite
#pragma unroll
                    for (int q = 0; q < 4; ++q)
                        if (nonfinite(v[q])) bad |= r < DSTATE ? 8 : 16;
            }
        }
        const int fb = 0;  // the one float buffer
#else
        const int fb = tile & 1;  // the float buffer this tile was copied into
#endif

#if VAR_B
        const float* sB = smem + fb * BUF_FLOATS;
#endif
#if VAR_C && !STATES_ONLY
        const float* sC = smem + fb * BUF_FLOATS + DSTATE * TP;
#endif
        float* sU = smem + fb * BUF_FLOATS + 2 * DSTATE * TP;
        float* sDl = sU + CPB * TP;
        float* sZ = sDl + CPB * TP;

        if (check_BC && !HALF_IN) {  // steps past l were copied as zeros: finite (half: checked above)
            for (int i = threadIdx.x; i < DSTATE * TILE; i += NTHREADS) {
                const int k = i / TILE, j = i % TILE;
                const float* buf = smem + fb * BUF_FLOATS;
                if (VAR_B && nonfinite(buf[k * TP + j])) bad |= 8;
                if (VAR_C && nonfinite(buf[(DSTATE + k) * TP + j])) bad |= 16;
            }
        }
        // pre-pass, once per element: delta -> softplus(delta + bias) (0 past l), delta*u, z -> silu(z)
        // raw_row(k, r): the row of u (k = 0), delta (1) or z (2) of channel r, as copied (zeros past l)
#if HALF_IN
        auto raw_row = [&](int k, int r) { return st + (2 * DSTATE + k * CPB + r) * TS; };
#else
        auto raw_row = [&](int k, int r) { return sU + (k * CPB + r) * TP; };
#endif
        const bool z_on = (flags & FLAG_Z) && !STATES_ONLY;
        {
            const int qr = threadIdx.x / (TILE / 4), qj = 4 * (threadIdx.x % (TILE / 4));
#pragma unroll
            for (int k = 0; k < (CPB + QSTEP - 1) / QSTEP; ++k) {
                const int r = qr + k * QSTEP;
                if (CPB % QSTEP != 0 && r >= CPB) break;
                const bool live_row = r < n_active;
                const float bias = ((flags & FLAG_BIAS) && live_row) ? delta_bias[d0 + r] : 0.f;
                float uv[4], dv[4], zv[4] = {0.f, 0.f, 0.f, 0.f}, du[4];
                load4(raw_row(0, r) + qj, uv);
                load4(raw_row(1, r) + qj, dv);
                if (z_on) load4(raw_row(2, r) + qj, zv);
#pragma unroll
                for (int q = 0; q < 4; ++q) {
                    float d = 0.f;
                    if (live_row && t0 + qj + q < seqlen) {
                        d = dv[q];
                        if (check) {  // zv is 0 when there is no z
                            poison_delta = fmaf(d, 0.f, poison_delta);
                            poison_u = fmaf(uv[q], 0.f, poison_u);
                            poison_z = fmaf(zv[q], 0.f, poison_z);
                        }
                        d += bias;
                        if (flags & FLAG_SOFTPLUS) d = d <= 20.f ? log1pf(__expf(d)) : d;
                    }
                    dv[q] = d;
                    du[q] = d * uv[q];
                    zv[q] = zv[q] / (1.f + __expf(-zv[q]));
                }
#if HALF_IN
                store4(sU + r * TP + qj, uv);  // the output's D*u reads it
#endif
                store4(sDl + r * TP + qj, dv);
                store4(sDu + r * TP + qj, du);
                if (z_on) store4(sZ + r * TP + qj, zv);
            }
        }
        __syncthreads();

        const float* myDl = sDl + ch * TP;
        const float* myDu = sDu + ch * TP;
        constexpr int unroll_blocks = UNROLL_BLOCKS;
#pragma unroll unroll_blocks
        for (int j0 = 0; j0 < TILE; j0 += LPC) {  // blocks of LPC steps
#if !STATES_ONLY
            float p[LPC];  // this lane's part of y at steps j0 .. j0 + LPC - 1
#pragma unroll
            for (int k = 0; k < LPC; ++k) p[k] = 0.f;
#endif
#pragma unroll
            for (int k4 = 0; k4 < LPC; k4 += 4) {
                const float4 dl4 = *reinterpret_cast<const float4*>(myDl + j0 + k4);  // same address for the
                const float4 du4 = *reinterpret_cast<const float4*>(myDu + j0 + k4);  // channel's lanes: broadcast
                const float dl[4] = {dl4.x, dl4.y, dl4.z, dl4.w}, du[4] = {du4.x, du4.y, du4.z, du4.w};
#if STATES_ONLY
                dl_sum += (dl[0] + dl[1]) + (dl[2] + dl[3]);
#endif
#pragma unroll
                for (int i = 0; i < SPL; ++i) {
                    const int s = min(sl + LPC * i, DSTATE - 1);
#if VAR_B
                    const float4 b4 = *reinterpret_cast<const float4*>(sB + s * TP + j0 + k4);
                    const float Bv[4] = {b4.x, b4.y, b4.z, b4.w};
#else
                    const float Bv[4] = {Bfix[i], Bfix[i], Bfix[i], Bfix[i]};
#endif
#if STATES_ONLY
#elif VAR_C
                    const float4 c4 = *reinterpret_cast<const float4*>(sC + s * TP + j0 + k4);
                    const float Cv[4] = {c4.x, c4.y, c4.z, c4.w};
#else
                    const float Cv[4] = {Cfix[i], Cfix[i], Cfix[i], Cfix[i]};
#endif
#if DSTATE % LPC == 0
                    const float live = 1.f;  // every lane has a real state
#else
                    const float live = sl + LPC * i < DSTATE ? 1.f : 0.f;  // padding states stay 0
#endif
#pragma unroll
                    for (int k = 0; k < 4; ++k) {
                        h[i] = exp2f(dl[k] * As[i]) * h[i] + du[k] * Bv[k] * live;  // A_bar h + B_bar u
#if !STATES_ONLY
                        p[k4 + k] += Cv[k] * h[i];
#endif
                    }
                }
            }
#if !STATES_ONLY
            // transpose-reduce across the channel's LPC lanes: afterwards p[0] is y at step j0 + sl
            if (LPC >= 32) reduce_level<16>(p, sl);
            if (LPC >= 16) reduce_level<8>(p, sl);
            if (LPC >= 8) reduce_level<4>(p, sl);
            reduce_level<2>(p, sl);
            reduce_level<1>(p, sl);
            const int j = j0 + sl;
            if (active && t0 + j < seqlen) {
                float o = p[0] + Dd * sU[ch * TP + j];
                if (flags & FLAG_Z) o *= sZ[ch * TP + j];
                out[row + t0 + j] = from_float(o);
            }
            if ((flags & FLAG_CHECKPOINT) && active && (t0 + j0 + LPC) % CHK_TILE == 0) {
                const int c = (t0 + j0 + LPC) / CHK_TILE;  // checkpoint c: the state after c*CHK_TILE steps
                if (c < n_chk)
#pragma unroll
                    for (int i = 0; i < SPL; ++i)
                        if (sl + LPC * i < DSTATE)
                            h_chk[(((long long)bi * dim + di) * n_chk + c) * DSTATE + sl + LPC * i] = h[i];
            }
#endif
        }
        __syncthreads();  // everyone is done with this buffer before the next prefetch refills it
    }
#if STATES_ONLY
    if (active)
#pragma unroll
        for (int i = 0; i < SPL; ++i)
            if (sl + LPC * i < DSTATE) {
                float* sb = seg_buf + ((((long long)bi * dim + di) * n_seg + blockIdx.z) * 2) * DSTATE;
                sb[sl + LPC * i] = h[i];
                sb[DSTATE + sl + LPC * i] = exp2f(dl_sum * As[i]);  // product of the segment's A_bar
            }
#else
    if (active && (flags & FLAG_LAST_STATE) && (int)blockIdx.z == n_seg - 1)
#pragma unroll
        for (int i = 0; i < SPL; ++i)
            if (sl + LPC * i < DSTATE) last_state[((long long)bi * dim + di) * DSTATE + sl + LPC * i] = h[i];
    if (check)
        bad |= (nonfinite(poison_u) ? 1 : 0) | (nonfinite(poison_delta) ? 2 : 0) | (nonfinite(poison_z) ? 64 : 0);
    if (bad) atomicOr(err, (int)bad);  // rare: only where a NaN or inf was seen
#endif
}
