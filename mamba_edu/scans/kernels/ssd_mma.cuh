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
// the fragment's rows times e[0 .. 15]
__device__ __forceinline__ void acc_scale_rows(Acc16& acc, const float* e) {
    const int g = (threadIdx.x & 31) >> 2;
    const float top = e[g], bottom = e[g + 8];
#pragma unroll
    for (int h = 0; h < 2; ++h) acc.c[h][0] *= top, acc.c[h][1] *= top, acc.c[h][2] *= bottom, acc.c[h][3] *= bottom;
}

// ---- 16-bit operands (float16 / bfloat16 inputs): mma.sync.m16n8k16, depth 16 per step, float32 accumulation.
// The PTX ISA fixes each lane's elements (g = lane / 4, t = lane % 4), two consecutive k in each 32-bit register:
//     A: x[0] = (g, 2t..2t+1), x[1] = (g + 8, 2t..), x[2] = (g, 2t + 8..), x[3] = (g + 8, 2t + 8..);
//     B (per 8 columns): (2t..2t+1, g), (2t + 8.., g);   acc: as above.
// Fragments are read with ldmatrix, which loads four 8 x 8 matrices of 16-bit elements whose rows are 16
// contiguous bytes in shared memory (lanes 8m .. 8m + 7 give the row addresses of matrix m); lane 4g + t gets
// elements (g, 2t..2t+1) of each matrix, or with .trans elements (2t..2t+1, g): the transposed matrix. So an
// operand stored with k contiguous is read plainly, one stored with k across rows is read with .trans.
// Reads are free of bank conflicts when a row stride is an odd multiple of 16 bytes (stride = 8 mod 16 elements).
struct FragA16 { unsigned x[4]; };     // a 16 x 16 slice of A (16-bit pairs)
struct FragB16 { unsigned x[2][2]; };  // a 16 x 16 slice of B: left and right 8 columns

template <bool TRANS>
__device__ __forceinline__ void ldmatrix_x4(unsigned r[4], const void* row) {
    const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(row));
    if constexpr (TRANS)
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
    else
        asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                     : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
// the row this lane addresses when matrix m of four covers rows 8 (m & 1) .. and columns 8 (m >> 1) .. of a
// 16 x 16 block at p (row stride LD), or rows 8 (m >> 1) .. and columns 8 (m & 1) .. (`across`)
template <int LD, bool across, typename T>
__device__ __forceinline__ const T* ldmatrix_row(const T* p) {
    const int lane = threadIdx.x & 31, m = lane >> 3, r = lane & 7;
    return across ? p + (r + 8 * (m >> 1)) * LD + 8 * (m & 1) : p + (r + 8 * (m & 1)) * LD + 8 * (m >> 1);
}
// A (16 x 16): element (r, k) at a[r * LD + k] (k contiguous), or at a[k * LD + r] when KROWS (k across rows)
template <int LD, bool KROWS, typename T>
__device__ __forceinline__ void load_a16(FragA16& f, const T* a) {
    ldmatrix_x4<KROWS>(f.x, ldmatrix_row<LD, KROWS>(a));
}
// B (16 x 16): element (k, n) at b[n * LD + k] (k contiguous), or at b[k * LD + n] when KROWS
template <int LD, bool KROWS, typename T>
__device__ __forceinline__ void load_b16(FragB16& f, const T* b) {
    unsigned r[4];
    ldmatrix_x4<KROWS>(r, ldmatrix_row<LD, !KROWS>(b));
    f.x[0][0] = r[0], f.x[0][1] = r[1], f.x[1][0] = r[2], f.x[1][1] = r[3];
}
template <typename T>
__device__ __forceinline__ void mma16(Acc16& acc, const FragA16& a, const FragB16& b) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        if constexpr (sizeof(T) == 2 && !is_bf16<T>::value)
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                         "{%8, %9}, {%0, %1, %2, %3};\n"
                         : "+f"(acc.c[h][0]), "+f"(acc.c[h][1]), "+f"(acc.c[h][2]), "+f"(acc.c[h][3])
                         : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[h][0]), "r"(b.x[h][1]));
        else
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                         "{%8, %9}, {%0, %1, %2, %3};\n"
                         : "+f"(acc.c[h][0]), "+f"(acc.c[h][1]), "+f"(acc.c[h][2]), "+f"(acc.c[h][3])
                         : "r"(a.x[0]), "r"(a.x[1]), "r"(a.x[2]), "r"(a.x[3]), "r"(b.x[h][0]), "r"(b.x[h][1]));
    }
}

#endif  // MAMBA_EDU_SSD_MMA_CUH
