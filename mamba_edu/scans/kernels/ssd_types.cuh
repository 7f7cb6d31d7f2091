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
__device__ __forceinline__ void put(float* p, float v) { *p = v; }
__device__ __forceinline__ void put(__half* p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void put(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }

#endif  // MAMBA_EDU_SSD_TYPES_CUH
