// Shared by ssd_chunk_scan.cu and ssd_chunk_state.cu (lesson 8): the cp.async staging of operand tiles into
// shared memory (float32 tiles, with the operands a kernel computes rounded to TF32; or 16-bit tiles), and the
// pipeline's compile-time knobs (NBUF stage buffers, BOUNDS from MIN_BLOCKS). The including kernel defines
// THREADS and includes ssd_types.cuh, cp_async.cuh and ssd_mma.cuh (to_tf32) first. kernel_source() pastes this
// file in place of its #include.
#ifndef MAMBA_EDU_SSD_TILES_CUH
#define MAMBA_EDU_SSD_TILES_CUH

#ifndef NBUF
#define NBUF 2                             // stage buffers: NBUF - 1 stages are copied ahead
#endif
#ifdef MIN_BLOCKS                  // blocks per SM the register budget must allow (else the compiler's choice)
#define BOUNDS __launch_bounds__(THREADS, MIN_BLOCKS)
#else
#define BOUNDS __launch_bounds__(THREADS)
#endif
static_assert(NBUF >= 2, "NBUF: at least two stage buffers");

template <typename T> struct is_f32 { static constexpr bool value = false; };
template <> struct is_f32<float> { static constexpr bool value = true; };

// rows of `dim` elements of type T at p can be copied 4 elements at a time (16 bytes of float, 8 of half)
template <typename T>
__device__ __forceinline__ bool quads_ok(const T* p, int dim) {
    return dim % 4 == 0 && (reinterpret_cast<unsigned long long>(p) & (4 * sizeof(T) - 1)) == 0;
}

// A tile of R rows x W columns (W a multiple of 4) goes to shared rows of stride LD (a multiple of 4).
// In global memory its row r starts at base + r * stride; rows >= nrows (past the sequence) and columns
// >= ncols (padding) are staged as zeros. Thread tid owns the quads (4 consecutive columns) tid,
// tid + THREADS, ... of the tile: the same quads in every stage, so only base changes from stage to stage.
// issue: start the cp.async copies. Float quads: 16 bytes (vec) or four copies of 4 bytes. Half quads
//   (vec only): their 8 raw bytes go to the front of the quad's own 16-byte float slot. `any` is a valid
//   address for the copies that read nothing (they write zeros).
// finish: after the wait, each thread turns its own elements v into tf32(f(r, j, v)) in place (a
//   thread's own cp.async copies are visible to it after cp.async.wait_group), one 16-byte shared load
//   and store per quad; half quads are widened from their raw bytes or, without vec, read here with
//   plain loads.
template <int R, int W, int V = 4>
struct Quads {  // this thread's pieces of V columns (4: quads) of an R x W tile: piece m at row(m), columns col(m) ..
    static constexpr int count = R * W / V, per_thread = (count + THREADS - 1) / THREADS;
    static __device__ __forceinline__ bool mine(int m) {
        return count % THREADS == 0 || threadIdx.x + m * THREADS < count;
    }
    static __device__ __forceinline__ int row(int m) { return (threadIdx.x + m * THREADS) / (W / V); }
    static __device__ __forceinline__ int col(int m) { return V * ((threadIdx.x + m * THREADS) % (W / V)); }
};

template <int R, int W, int LD, typename T>
__device__ __forceinline__ void tile_issue(float* dst, const T* base, int stride, int nrows, int ncols, bool vec,
                                           const T* any) {
    using Qd = Quads<R, W>;
#pragma unroll
    for (int m = 0; m < Qd::per_thread; ++m) {
        if (!Qd::mine(m)) break;
        const int r = Qd::row(m), j = Qd::col(m);
        const T* src = base + r * stride + j;
        float* slot = dst + r * LD + j;
        if constexpr (is_f32<T>::value) {
            if (vec) {
                const bool ok = r < nrows && j < ncols;
                cp_async16(slot, ok ? src : any, ok);
            } else {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const bool ok = r < nrows && j + e < ncols;
                    cp_async4(slot + e, ok ? src + e : any, ok);
                }
            }
        } else if (vec) {
            const bool ok = r < nrows && j < ncols;
            cp_async8(slot, ok ? src : any, ok);
        }
    }
}
template <int R, int W, int LD, typename T, typename F>
__device__ __forceinline__ void tile_finish(float* dst, const T* base, int stride, int nrows, int ncols, bool vec,
                                            F f) {
    using Qd = Quads<R, W>;
#pragma unroll
    for (int m = 0; m < Qd::per_thread; ++m) {
        if (!Qd::mine(m)) break;
        const int r = Qd::row(m), j = Qd::col(m);
        float4* slot = reinterpret_cast<float4*>(dst + r * LD + j);  // 16-byte aligned: LD, j multiples of 4
        float v[4];
        if constexpr (is_f32<T>::value) {
            const float4 q = *slot;  // this thread's own copy (zero if outside)
            v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
        } else if (vec) {
            const uint2 raw = *reinterpret_cast<const uint2*>(slot);  // the 4 raw halves, read before the overwrite
            const T* h = reinterpret_cast<const T*>(&raw);
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] = to_f(h[e]);
        } else {
            const T* src = base + r * stride + j;
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] = (r < nrows && j + e < ncols) ? to_f(src[e]) : 0.f;
        }
        *slot = make_float4(to_tf32(f(r, j, v[0])), to_tf32(f(r, j + 1, v[1])), to_tf32(f(r, j + 2, v[2])),
                            to_tf32(f(r, j + 3, v[3])));
    }
}

// ---- 16-bit tiles, for the m16n8k16 products (ssd_mma.cuh). Tiles stay in their input type T (float16 or
// bfloat16) in shared memory. The host sends only rows that are 16-byte aligned with widths a multiple of 8
// here, so a tile moves 8 elements (16 bytes) per copy; rows >= nrows and columns >= ncols are staged as zeros.
// LD (elements) is a multiple of 8.
template <int R, int W, int LD, typename T>
__device__ __forceinline__ void tile_issue16(T* dst, const T* base, int stride, int nrows, int ncols, const T* any) {
    using Qd = Quads<R, W, 8>;
#pragma unroll
    for (int m = 0; m < Qd::per_thread; ++m) {
        if (!Qd::mine(m)) break;
        const int r = Qd::row(m), j = Qd::col(m);
        const bool ok = r < nrows && j < ncols;
        cp_async16(dst + r * LD + j, ok ? base + r * stride + j : any, ok);
    }
}
// after the wait: each thread replaces its own elements v of a 16-bit tile by f(r, j, v), rounded to T
template <int R, int W, int LD, typename T, typename F>
__device__ __forceinline__ void tile_scale16(T* dst, F f) {
    using Qd = Quads<R, W, 8>;
#pragma unroll
    for (int m = 0; m < Qd::per_thread; ++m) {
        if (!Qd::mine(m)) break;
        const int r = Qd::row(m), j = Qd::col(m);
        uint4* slot = reinterpret_cast<uint4*>(dst + r * LD + j);
        uint4 raw = *slot;
        T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
        for (int k = 0; k < 8; ++k) put(e + k, f(r, j + k, to_f(e[k])));
        *slot = raw;
    }
}
// after the wait: each thread turns its own quads of a float32 tile src (staged by tile_issue, stride LDF)
// into f(r, j, v) in T at dst (stride LD)
template <int R, int W, int LDF, int LD, typename T, typename F>
__device__ __forceinline__ void tile_convert16(const float* src, T* dst, F f) {
    using Qd = Quads<R, W>;
#pragma unroll
    for (int m = 0; m < Qd::per_thread; ++m) {
        if (!Qd::mine(m)) break;
        const int r = Qd::row(m), j = Qd::col(m);
        const float4 q = *reinterpret_cast<const float4*>(src + r * LDF + j);
        T e[4];
        put(e, f(r, j, q.x)), put(e + 1, f(r, j + 1, q.y)), put(e + 2, f(r, j + 2, q.z)), put(e + 3, f(r, j + 3, q.w));
        *reinterpret_cast<uint2*>(dst + r * LD + j) = *reinterpret_cast<const uint2*>(e);
    }
}
// after the wait: a tile of 16-bit inputs widened to float in place (exactly: their mantissas fit TF32). A float32
// tile is used as copied: the tensor cores read the top 19 bits of each float (TF32, truncated), as for the
// official kernel's tl.dot on float32, so it needs no pass here.
template <int R, int W, int LD, typename T>
__device__ __forceinline__ void tile_widen(float* dst, const T* base, int stride, int nrows, int ncols, bool vec) {
    if constexpr (!is_f32<T>::value)
        tile_finish<R, W, LD, T>(dst, base, stride, nrows, ncols, vec, [](int, int, float v) { return v; });
}

#endif  // MAMBA_EDU_SSD_TILES_CUH
