// Lets crop_resize.cu compile as plain C++ for the host, so CI (no GPU) can run the kernels' exact
// source against the NumPy reference. A launch becomes loops over blocks and threads.
#pragma once
#include <cmath>

struct EdgeDim3 { unsigned x, y, z; };
static thread_local EdgeDim3 blockIdx, threadIdx, blockDim, gridDim;

#define __global__
#define __device__
// floorf, fminf, fmaxf and rintf come from <cmath>; rintf rounds half to even (the default mode), like np.rint.

template <typename Kernel, typename... Args>
void edge_host_launch(EdgeDim3 grid, EdgeDim3 block, Kernel kernel, Args... args) {
    gridDim = grid; blockDim = block;
    for (blockIdx.z = 0; blockIdx.z < grid.z; ++blockIdx.z)
        for (blockIdx.y = 0; blockIdx.y < grid.y; ++blockIdx.y)
            for (blockIdx.x = 0; blockIdx.x < grid.x; ++blockIdx.x)
                for (threadIdx.y = 0; threadIdx.y < block.y; ++threadIdx.y)
                    for (threadIdx.x = 0; threadIdx.x < block.x; ++threadIdx.x)
                        kernel(args...);
}
