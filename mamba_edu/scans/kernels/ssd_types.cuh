// Shared by the SSD kernels (lesson 8): reading float, half or bfloat16 inputs as float (to_f), writing
// a float back in an output's type (put).
// kernel_source() pastes this file where a kernel has #include "ssd_types.cuh" (NVRTC gets one source).
#ifndef MAMBA_EDU_SSD_TYPES_CUH
#define MAMBA_EDU_SSD_TYPES_CUH
#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> struct is_bf16 { static constexpr bool value = false; };
template <> struct is_bf16<__nv_bfloat16> { static constexpr bool value = true; };
__device__ __forceinline__ void put(float* p, float v) { *p = v; }
__device__ __forceinline__ void put(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void put(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

// 4 consecutive elements as float: one 16-byte (float) / 8-byte (half) load when vec (p aligned to it), else
// the first `count` (<= 4) one by one and zeros after them; write_quad writes them back the same way
template <typename T>
__device__ __forceinline__ void read_quad(const T* p, float v[4], bool vec, int count) {
    if (vec) {
        if constexpr (sizeof(T) == 4) {
            const float4 q = *reinterpret_cast<const float4*>(p);
            v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
        } else {
            const uint2 raw = *reinterpret_cast<const uint2*>(p);
            const T* e = reinterpret_cast<const T*>(&raw);
            for (int k = 0; k < 4; ++k) v[k] = to_f(e[k]);
        }
    } else {
        for (int k = 0; k < 4; ++k) v[k] = k < count ? to_f(p[k]) : 0.f;
    }
}
template <typename T>
__device__ __forceinline__ void write_quad(T* p, const float v[4], bool vec, int count) {
    if (vec) {
        if constexpr (sizeof(T) == 4) {
            *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
        } else {
            T e[4];
            for (int k = 0; k < 4; ++k) put(e + k, v[k]);
            *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(e);
        }
    } else {
        for (int k = 0; k < 4; ++k)
            if (k < count) put(p + k, v[k]);
    }
}

#endif  // MAMBA_EDU_SSD_TYPES_CUH
