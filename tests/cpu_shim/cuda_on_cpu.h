// Just enough of CUDA to run a kernel of one thread per item, one thread at a time, on the CPU (tests only):
// the grid is a plain loop, atomicAdd a plain add. Used by tests/test_complex_scan_cpu.py to check the
// complex kernel's arithmetic against the float64 reference without a GPU.
#include <algorithm>
#include <cmath>

struct float2 { float x, y; };
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
struct dim3_ { unsigned x = 0, y = 0, z = 0; };
static dim3_ threadIdx, blockIdx, blockDim;
static inline float atomicAdd(float* p, float v) { const float old = *p; *p += v; return old; }
using std::min;
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
