// cp.async primitives (lesson 7, lesson 8): asynchronous copies global -> shared memory of 4, 8 or 16 bytes
// (with valid == false a copy writes zeros and reads nothing), committed in groups and waited for. Shared by
// v2_forward.cu, ssd_chunk_scan.cu and ssd_chunk_state.cu; kernel_source() pastes this file in place of its
// #include.
#ifndef MAMBA_EDU_CP_ASYNC_CUH
#define MAMBA_EDU_CP_ASYNC_CUH

__device__ __forceinline__ void cp_async4(float* dst, const float* src, bool valid) {
    const unsigned saddr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(saddr), "l"(src), "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async8(float* dst, const void* src, bool valid) {
    const unsigned saddr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(saddr), "l"(src), "r"(valid ? 8 : 0));
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
    const unsigned saddr = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(saddr), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
// wait until at most `pending` of this thread's committed copy groups are still in flight
template <int pending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(pending)); }

#endif  // MAMBA_EDU_CP_ASYNC_CUH
