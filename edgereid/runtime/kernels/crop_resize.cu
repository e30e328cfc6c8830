// Batched crop + resize (stretch or letterbox) + colour order + normalisation, and the 5-point face
// similarity warp, writing NCHW FP32 (or FP16) straight into an engine's input buffer.
//
// One source, three builds: NVRTC at run time (edgereid.runtime.cuda_kernels), the host C++ build the
// tests compare with the NumPy reference (host_shim.h provides blockIdx/threadIdx), and the TensorRT
// plugin in trt_plugins/. The arithmetic is edgereid.runtime.preprocess.preprocess_reference's:
// half-pixel centres, bilinear taps clamped to the box (box crops) or filled with the mean colour
// outside the frame (warps), BT.601 limited-range NV12 converted per tap and rounded like a BGR frame.
//
// Launch: grid (ceil(W / 16), ceil(H / 16), crops), block (16, 16). One thread = one output pixel, all
// three channels.

#ifndef EDGE_OUT_T
#define EDGE_OUT_T float
#define EDGE_TO_OUT(v) (v)
#endif

#define EDGE_FORMAT_BGR 0
#define EDGE_FORMAT_NV12 1

struct EdgeFrame {
    const unsigned char* data;  // BGR: height rows of pitch bytes; NV12: Y plane, then the interleaved UV plane
    int height;
    int width;
    int pitch;                  // bytes per row (BGR: >= 3 * width; NV12: >= width)
    int format;                 // EDGE_FORMAT_BGR or EDGE_FORMAT_NV12
};

struct EdgeCropJob {
    int frame;                  // index into the frame table
    int box[4];                 // x1, y1, x2, y2 (integer, inside the frame) for box crops
    int place[4];               // x, y, w, h of the resized crop in the output (whole output for stretch)
    float to_frame[6];          // warps: output (u, v) -> frame (x, y) = [a b c; d e f] (u, v, 1)
};

struct EdgeNormalise {
    float mean[3];              // per output channel, in the card's colour order
    float inv_std[3];
    float fill_bgr[3];          // what warps sample outside the frame (the mean as a BGR pixel)
    int rgb;                    // 1: output channels R, G, B; 0: B, G, R
};

__device__ inline float edge_clampf(float v, float lo, float hi) { return fminf(fmaxf(v, lo), hi); }

// One BGR pixel of a frame, as floats 0..255 (NV12 converted and rounded as nv12_to_bgr does).
__device__ inline void edge_load_bgr(const EdgeFrame& f, int y, int x, float* bgr) {
    if (f.format == EDGE_FORMAT_BGR) {
        const unsigned char* p = f.data + (long)y * f.pitch + 3 * x;
        bgr[0] = p[0]; bgr[1] = p[1]; bgr[2] = p[2];
        return;
    }
    const float luma = fmaxf((float)f.data[(long)y * f.pitch + x] - 16.0f, 0.0f);  // footroom reads as black
    const unsigned char* uv = f.data + (long)f.height * f.pitch + (long)(y / 2) * f.pitch + 2 * (x / 2);
    const float u = (float)uv[0] - 128.0f, v = (float)uv[1] - 128.0f;
    bgr[0] = edge_clampf(rintf(1.164383f * luma + 2.017232f * u), 0.0f, 255.0f);
    bgr[1] = edge_clampf(rintf(1.164383f * luma - 0.391762f * u - 0.812968f * v), 0.0f, 255.0f);
    bgr[2] = edge_clampf(rintf(1.164383f * luma + 1.596027f * v), 0.0f, 255.0f);
}

// Bilinear blend of four BGR taps (top-left, top-right, bottom-left, bottom-right).
__device__ inline void edge_blend(const float* p00, const float* p01, const float* p10, const float* p11, float fx,
                                  float fy, float* bgr) {
    for (int c = 0; c < 3; ++c) {
        const float top = p00[c] * (1.0f - fx) + p01[c] * fx;
        const float bottom = p10[c] * (1.0f - fx) + p11[c] * fx;
        bgr[c] = top * (1.0f - fy) + bottom * fy;
    }
}

__device__ inline void edge_store(EDGE_OUT_T* out, int crop, int height, int width, int y, int x,
                                  const float* bgr, const EdgeNormalise& n) {
    const long plane = (long)height * width;
    EDGE_OUT_T* base = out + (long)crop * 3 * plane + (long)y * width + x;
    for (int c = 0; c < 3; ++c) {
        const float value = bgr[n.rgb ? 2 - c : c];
        base[c * plane] = EDGE_TO_OUT((value - n.mean[c]) * n.inv_std[c]);
    }
}

// Box crops: stretch or letterbox. Pixels outside the placement get 0 (the mean after normalisation).
extern "C" __global__ void edge_crop_resize(const EdgeFrame* frames, const EdgeCropJob* jobs, EDGE_OUT_T* out,
                                            int height, int width, EdgeNormalise norm) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int crop = blockIdx.z;
    if (x >= width || y >= height) return;
    const EdgeCropJob job = jobs[crop];
    const int u = x - job.place[0], v = y - job.place[1];
    float bgr[3] = {norm.fill_bgr[0], norm.fill_bgr[1], norm.fill_bgr[2]};  // normalises to 0
    if (u >= 0 && v >= 0 && u < job.place[2] && v < job.place[3]) {
        const EdgeFrame f = frames[job.frame];
        const int box_w = job.box[2] - job.box[0], box_h = job.box[3] - job.box[1];
        const float sx = edge_clampf((u + 0.5f) * ((float)box_w / job.place[2]) - 0.5f, 0.0f, (float)(box_w - 1));
        const float sy = edge_clampf((v + 0.5f) * ((float)box_h / job.place[3]) - 0.5f, 0.0f, (float)(box_h - 1));
        const int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
        const int x1 = x0 + 1 < box_w ? x0 + 1 : box_w - 1, y1 = y0 + 1 < box_h ? y0 + 1 : box_h - 1;
        const float fx = sx - x0, fy = sy - y0;
        float p00[3], p01[3], p10[3], p11[3];
        edge_load_bgr(f, job.box[1] + y0, job.box[0] + x0, p00);
        edge_load_bgr(f, job.box[1] + y0, job.box[0] + x1, p01);
        edge_load_bgr(f, job.box[1] + y1, job.box[0] + x0, p10);
        edge_load_bgr(f, job.box[1] + y1, job.box[0] + x1, p11);
        edge_blend(p00, p01, p10, p11, fx, fy, bgr);
    }
    edge_store(out, crop, height, width, y, x, bgr, norm);
}

// Aligned faces: every output pixel maps through the job's affine into the frame; taps outside the
// frame read the fill colour.
extern "C" __global__ void edge_warp_affine(const EdgeFrame* frames, const EdgeCropJob* jobs, EDGE_OUT_T* out,
                                            int height, int width, EdgeNormalise norm) {
    const int x = blockIdx.x * blockDim.x + threadIdx.x;
    const int y = blockIdx.y * blockDim.y + threadIdx.y;
    const int crop = blockIdx.z;
    if (x >= width || y >= height) return;
    const EdgeCropJob job = jobs[crop];
    const EdgeFrame f = frames[job.frame];
    const float* m = job.to_frame;
    const float sx = m[0] * x + m[1] * y + m[2];
    const float sy = m[3] * x + m[4] * y + m[5];
    const int x0 = (int)floorf(sx), y0 = (int)floorf(sy);
    const float fx = sx - x0, fy = sy - y0;
    float taps[4][3];
    for (int t = 0; t < 4; ++t) {
        const int ty = y0 + t / 2, tx = x0 + t % 2;
        if (tx >= 0 && ty >= 0 && tx < f.width && ty < f.height) {
            edge_load_bgr(f, ty, tx, taps[t]);
        } else {
            taps[t][0] = norm.fill_bgr[0]; taps[t][1] = norm.fill_bgr[1]; taps[t][2] = norm.fill_bgr[2];
        }
    }
    float bgr[3];
    edge_blend(taps[0], taps[1], taps[2], taps[3], fx, fy, bgr);
    edge_store(out, crop, height, width, y, x, bgr, norm);
}

// Box planning on the device, for callers whose boxes already live on the GPU (the TensorRT plugin):
// boxes [N, 5] = (x1, y1, x2, y2, frame) in frame pixels become jobs exactly as plan_crops +
// validate_boxes make them on the host: clipped to the frame, rounded half to even to whole pixels,
// at least one pixel wide and high, placed by stretch (letterbox = 0) or letterbox (letterbox = 1).
extern "C" __global__ void edge_plan_boxes(const float* boxes, const EdgeFrame* frames, int frame_count,
                                           EdgeCropJob* jobs, int count, int height, int width, int letterbox) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const float* b = boxes + 5 * i;
    EdgeCropJob job;
    job.frame = (int)edge_clampf(rintf(b[4]), 0.0f, (float)(frame_count - 1));  // never read past the table
    const EdgeFrame f = frames[job.frame];
    const float limits[4] = {(float)f.width, (float)f.height, (float)f.width, (float)f.height};
    for (int k = 0; k < 4; ++k) job.box[k] = (int)rintf(edge_clampf(b[k], 0.0f, limits[k]));
    // an engine has no error channel: a box with no area becomes one pixel (the host path raises instead)
    if (job.box[2] <= job.box[0]) {
        job.box[2] = job.box[0] + 1 < f.width ? job.box[0] + 1 : f.width;
        job.box[0] = job.box[2] - 1;
    }
    if (job.box[3] <= job.box[1]) {
        job.box[3] = job.box[1] + 1 < f.height ? job.box[1] + 1 : f.height;
        job.box[1] = job.box[3] - 1;
    }
    const float box_w = (float)(job.box[2] - job.box[0]), box_h = (float)(job.box[3] - job.box[1]);
    if (letterbox) {
        const float scale = fminf(width / box_w, height / box_h);
        const int new_w = (int)edge_clampf(rintf(box_w * scale), 1.0f, (float)width);
        const int new_h = (int)edge_clampf(rintf(box_h * scale), 1.0f, (float)height);
        job.place[0] = (width - new_w) / 2; job.place[1] = (height - new_h) / 2;
        job.place[2] = new_w; job.place[3] = new_h;
    } else {
        job.place[0] = 0; job.place[1] = 0; job.place[2] = width; job.place[3] = height;
    }
    for (int k = 0; k < 6; ++k) job.to_frame[k] = 0.0f;
    jobs[i] = job;
}

// A frame table over F same-sized BGR frames packed in one device tensor [F, H, W, 3] (the plugin's
// input), built on the device so an engine using the plugin stays capturable into a CUDA graph.
extern "C" __global__ void edge_pack_frame_table(const unsigned char* frames, int count, int height, int width,
                                                 EdgeFrame* table) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    table[i].data = frames + (long)i * height * width * 3;
    table[i].height = height;
    table[i].width = width;
    table[i].pitch = width * 3;
    table[i].format = EDGE_FORMAT_BGR;
}
