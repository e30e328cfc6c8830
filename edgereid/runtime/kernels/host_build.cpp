// Host build of crop_resize.cu (see host_shim.h): the tests compile this with g++ and call it through
// ctypes. Compile with -DEDGE_HOST_HALF for FP16 output (_Float16).
#ifdef EDGE_HOST_HALF
#define EDGE_OUT_T _Float16
#define EDGE_TO_OUT(v) ((_Float16)(v))
#endif
#include "host_shim.h"
#include "crop_resize.cu"

extern "C" void edge_host_preprocess(const EdgeFrame* frames, const EdgeCropJob* jobs, int crops, EDGE_OUT_T* out,
                                     int height, int width, const EdgeNormalise* norm, int warp) {
    const EdgeDim3 block = {16, 16, 1};
    const EdgeDim3 grid = {(unsigned)(width + 15) / 16, (unsigned)(height + 15) / 16, (unsigned)crops};
    if (warp) edge_host_launch(grid, block, edge_warp_affine, frames, jobs, out, height, width, *norm);
    else edge_host_launch(grid, block, edge_crop_resize, frames, jobs, out, height, width, *norm);
}

extern "C" void edge_host_plan(const float* boxes, const EdgeFrame* frames, int frame_count, EdgeCropJob* jobs,
                               int count, int height, int width, int letterbox) {
    const EdgeDim3 block = {64, 1, 1};
    const EdgeDim3 grid = {(unsigned)(count + 63) / 64, 1, 1};
    edge_host_launch(grid, block, edge_plan_boxes, boxes, frames, frame_count, jobs, count, height, width, letterbox);
}

extern "C" void edge_host_pack_frames(const unsigned char* frames, int count, int height, int width, EdgeFrame* table) {
    const EdgeDim3 block = {64, 1, 1};
    const EdgeDim3 grid = {(unsigned)(count + 63) / 64, 1, 1};
    edge_host_launch(grid, block, edge_pack_frame_table, frames, count, height, width, table);
}
