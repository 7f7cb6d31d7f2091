// Shared by ssd_bmm.cu, ssd_chunk_scan.cu and ssd_chunk_state.cu (lesson 8): one warp's tensor-core product of TF32
// operands staged in shared memory, written with the PTX instruction mma.sync.m16n8k8 (float32
// accumulation). A warp owns 16 x 16 output fragments; one depth step (8) of a fragment is
//     acc (16 x 16) += A (16 x 8) B (8 x 16),   two m16n8k8 products (the left and right 8 columns).
// The PTX ISA fixes which elements each lane holds (lane = 4 g + t, g = lane / 4, t = lane % 4):
//     A: (g, t), (g + 8, t), (g, t + 4), (g + 8, t + 4);   B (per 8 columns): (t, g), (t + 4, g);
//     acc (per 8 columns): (g, 2t), (g, 2t + 1), (g + 8, 2t), (g + 8, 2t + 1).
// Operands are read from shared memory with compile-time strides: element (r, k) of A at a[r * AR + k * AK],
// element (k, n) of B at b[k * BK + n * BN]. Reads are free of bank conflicts when the stride that
// multiplies g is 1 and the one that multiplies t is 8 or 24 (mod 32), or the one that multiplies t is 1 and the
// one that multiplies g an odd multiple of 4 (the offsets g * stride + t * stride of the 32 lanes are then
// distinct mod 32).
// kernel_source() pastes this file in place of its #include.
#ifndef MAMBA_EDU_SSD_MMA_CUH
#define MAMBA_EDU_SSD_MMA_CUH

// v rounded to TF32 (10-bit mantissa; to nearest, ties away from zero), the operand format of the products
__device__ __forceinline__ float to_tf32(float v) {
    unsigned u;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(u) : "f"(v));
    return __uint_as_float(u);
}

struct Acc16 { float c[2][4]; };      // a 16 x 16 fragment of float32 sums: left and right 8 columns
struct FragA { unsigned x[4]; };      // a 16 x 8 slice of A (TF32 bits)
struct FragB { unsigned x[2][2]; };   // an 8 x 16 slice of B: left and right 8 columns

__device__ __forceinline__ void acc_zero(Acc16& acc) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc.c[h][e] = 0.f;
}
template <int AR, int AK>
__device__ __forceinline__ void load_a(FragA& f, const float* a) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
    f.x[0] = __float_as_uint(a[g * AR + t * AK]);
    f.x[1] = __float_as_uint(a[(g + 8) * AR + t * AK]);
    f.x[2] = __float_as_uint(a[g * AR + (t + 4) * AK]);
    f.x[3] = __float_as_uint(a[(g + 8) * AR + (t + 4) * AK]);
}
template <int BK, int BN>
__device__ __forceinline__ void load_b(FragB& f, const float* b) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        f.x[h][0] = __float_as_uint(b[t * BK + (8 * h + g) * BN]);
        f.x[h][1] = __float_as_uint(b[(t + 4) * BK + (8 * h + g) * BN]);
    }
}
__device__ __forceinline__ void mma(Acc16& acc, const FragA& a, const FragB& b) {
#pragma unroll
    for (int h = 0; h < 2; ++h)
        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                     "{%8, %9}, {%0, %1, %2, %3};\n"
                     : "+f"(acc.c[h][0]), "+f"(acc.c[h][1]), "+f"(acc.c[h][2]), "+f"(acc.c[h][3])
                     : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[h][0]), "r"(b.x[h][1]));
}
// the fragment's sums to o (its top-left element; row stride LD, even)
template <int LD>
__device__ __forceinline__ void acc_store(const Acc16& acc, float* o) {
    const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        *reinterpret_cast<float2*>(o + g * LD + 8 * h + 2 * t) = make_float2(acc.c[h][0], acc.c[h][1]);
        *reinterpret_cast<float2*>(o + (g + 8) * LD + 8 * h + 2 * t) = make_float2(acc.c[h][2], acc.c[h][3]);
    }
}

#endif  // MAMBA_EDU_SSD_MMA_CUH
