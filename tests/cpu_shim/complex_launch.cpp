// The grid loops of tests/test_complex_scan_cpu.py: every (block, thread) of a launch, in order.
#include "cuda_on_cpu.h"
#include KERNEL

static void grid(unsigned blocks, unsigned threads, void (*body)()) {
    blockDim.x = threads;
    for (blockIdx.x = 0; blockIdx.x < blocks; ++blockIdx.x)
        for (threadIdx.x = 0; threadIdx.x < threads; ++threadIdx.x) body();
}

static const void* P[32];  // the launch's arguments, set by the entry points below
static int I[8];

extern "C" void launch_fwd(unsigned blocks, unsigned threads, const void** p, const int* ints) {
    std::copy(p, p + 11, P);
    std::copy(ints, ints + 6, I);
    grid(blocks, threads, [] {
        complex_scan_fwd((const float*)P[0], (const float*)P[1], (const float2*)P[2], (const float2*)P[3],
                         (const float2*)P[4], (const float*)P[5], (const float*)P[6], (const float*)P[7],
                         (float*)P[8], (float2*)P[9], (float2*)P[10], I[0], I[1], I[2], I[3], I[4], I[5]);
    });
}

extern "C" void launch_bwd(unsigned blocks, unsigned threads, const void** p, const int* ints) {
    std::copy(p, p + 20, P);
    std::copy(ints, ints + 6, I);
    grid(blocks, threads, [] {
        complex_scan_bwd((const float*)P[0], (const float*)P[1], (const float2*)P[2], (const float2*)P[3],
                         (const float2*)P[4], (const float*)P[5], (const float*)P[6], (const float*)P[7],
                         (const float*)P[8], (const float2*)P[9], (float2*)P[10], (float*)P[11], (float*)P[12],
                         (float2*)P[13], (float2*)P[14], (float2*)P[15], (float*)P[16], (float*)P[17],
                         (float*)P[18], (const float2*)P[19], I[0], I[1], I[2], I[3], I[4], I[5]);
    });
}
