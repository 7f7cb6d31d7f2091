// Shared by ssd_chunk_scan.cu and ssd_chunk_state.cu (lesson 8): the cp.async staging of operand tiles into
// shared memory, rounded to TF32 for the tensor cores, and the pipeline's compile-time knobs (NBUF stage
// buffers, BOUNDS from MIN_BLOCKS). The including kernel defines THREADS, includes <mma.h>
// (using namespace nvcuda), ssd_types.cuh and cp_async.cuh first. kernel_source() pastes this file in place of its #include.
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

// A tile of R rows x W columns (W a multiple of 4) goes to shared rows of stride LD. Thread tid owns
// the quads (4 consecutive columns) tid, tid + THREADS, ...; row(r) points at column 0 of the tile's
// row r in global memory (nullptr past the sequence); columns >= ncols are zeros.
// issue: start the cp.async copies. Float quads: 16 bytes (vec) or four copies of 4 bytes. Half quads
//   (vec only): their 8 raw bytes go to the front of the quad's own 16-byte float slot.
// finish: after the wait, each thread turns its own elements v into tf32(f(r, j, v)) in place (a
//   thread's own cp.async copies are visible to it after cp.async.wait_group); half quads are widened
//   from their raw bytes or, without vec, read here with plain loads.
template <int R, int W, int LD, typename T, typename RowFn>
__device__ __forceinline__ void tile_issue(float* dst, RowFn row, int ncols, bool vec, const T* any) {
#pragma unroll
    for (int m = 0; m < (R * W / 4 + THREADS - 1) / THREADS; ++m) {
        const int q = threadIdx.x + m * THREADS;
        if (R * W / 4 % THREADS != 0 && q >= R * W / 4) break;
        const int r = q / (W / 4), j = 4 * (q % (W / 4));
        const T* src = row(r);
        if constexpr (is_f32<T>::value) {
            if (vec) {
                const bool ok = src != nullptr && j < ncols;
                cp_async16(dst + r * LD + j, ok ? src + j : any, ok);
            } else {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const bool ok = src != nullptr && j + e < ncols;
                    cp_async4(dst + r * LD + j + e, ok ? src + j + e : any, ok);
                }
            }
        } else if (vec) {
            const bool ok = src != nullptr && j < ncols;
            cp_async8(dst + r * LD + j, ok ? src + j : any, ok);
        }
    }
}
template <int R, int W, int LD, typename T, typename RowFn, typename F>
__device__ __forceinline__ void tile_finish(float* dst, RowFn row, int ncols, bool vec, F f) {
#pragma unroll
    for (int m = 0; m < (R * W / 4 + THREADS - 1) / THREADS; ++m) {
        const int q = threadIdx.x + m * THREADS;
        if (R * W / 4 % THREADS != 0 && q >= R * W / 4) break;
        const int r = q / (W / 4), j = 4 * (q % (W / 4));
        float* slot = dst + r * LD + j;
        float v[4];
        if constexpr (is_f32<T>::value) {
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] = slot[e];  // this thread's own copy (zero if outside)
        } else if (vec) {
            const T* raw = reinterpret_cast<const T*>(slot);  // all four are read before the slot is overwritten
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] = to_f(raw[e]);
        } else {
            const T* src = row(r);
#pragma unroll
            for (int e = 0; e < 4; ++e) v[e] = (src != nullptr && j + e < ncols) ? to_f(src[j + e]) : 0.f;
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) slot[e] = wmma::__float_to_tf32(f(r, j + e, v[e]));
    }
}

#endif  // MAMBA_EDU_SSD_TILES_CUH
