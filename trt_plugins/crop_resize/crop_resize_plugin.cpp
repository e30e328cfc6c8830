// EdgeCropResize: TensorRT IPluginV3 plugin running edgereid's crop/resize/normalise kernel inside an
// engine (trtexec, DeepStream, Triton), from the same source the Python runtime compiles with NVRTC.
//
// Inputs:  frames uint8 [F, H, W, 3] (BGR, one resolution per call), boxes float32 [N, 5] =
//          (x1, y1, x2, y2, frame index) in frame pixels.
// Output:  float32 [N, 3, out_height, out_width], normalised per the attributes.
// Attributes: out_height, out_width (int32), mean[3], std[3] (float32, output channel order),
//          rgb (int32: 1 = R,G,B channels), letterbox (int32: 1 = keep aspect, pad with the mean).
// See README.md for the algorithm and what has been compiled and run where.

#include "NvInfer.h"

#include <cuda_runtime.h>

#include <cstring>
#include <string>
#include <vector>

#include "../../edgereid/runtime/kernels/crop_resize.cu"

namespace edgereid {
using namespace nvinfer1;

namespace {
constexpr char const* kName = "EdgeCropResize";
constexpr char const* kVersion = "1";
constexpr char const* kNamespace = "edgereid";

struct Attributes {
    int32_t out_height = 256, out_width = 128, rgb = 1, letterbox = 0;
    float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
};
}  // namespace

class CropResizePlugin : public IPluginV3, public IPluginV3OneCore, public IPluginV3OneBuild, public IPluginV3OneRuntime {
public:
    explicit CropResizePlugin(Attributes a) : attrs_(a) { fields(); }

    IPluginCapability* getCapabilityInterface(PluginCapabilityType type) noexcept override {
        if (type == PluginCapabilityType::kBUILD) return static_cast<IPluginV3OneBuild*>(this);
        if (type == PluginCapabilityType::kRUNTIME) return static_cast<IPluginV3OneRuntime*>(this);
        return static_cast<IPluginV3OneCore*>(this);
    }
    IPluginV3* clone() noexcept override { return new CropResizePlugin(attrs_); }
    char const* getPluginName() const noexcept override { return kName; }
    char const* getPluginVersion() const noexcept override { return kVersion; }
    char const* getPluginNamespace() const noexcept override { return kNamespace; }

    int32_t getNbOutputs() const noexcept override { return 1; }
    int32_t getOutputDataTypes(DataType* out, int32_t, DataType const*, int32_t) const noexcept override {
        out[0] = DataType::kFLOAT;
        return 0;
    }
    int32_t getOutputShapes(DimsExprs const* in, int32_t, DimsExprs const*, int32_t, DimsExprs* out, int32_t,
                            IExprBuilder& b) noexcept override {
        out[0].nbDims = 4;
        out[0].d[0] = in[1].d[0];  // N boxes
        out[0].d[1] = b.constant(3);
        out[0].d[2] = b.constant(attrs_.out_height);
        out[0].d[3] = b.constant(attrs_.out_width);
        return 0;
    }
    bool supportsFormatCombination(int32_t pos, DynamicPluginTensorDesc const* io, int32_t, int32_t) noexcept override {
        static const DataType types[3] = {DataType::kUINT8, DataType::kFLOAT, DataType::kFLOAT};
        return io[pos].desc.format == TensorFormat::kLINEAR && io[pos].desc.type == types[pos];
    }
    int32_t configurePlugin(DynamicPluginTensorDesc const*, int32_t, DynamicPluginTensorDesc const*, int32_t) noexcept override {
        return 0;
    }
    size_t getWorkspaceSize(DynamicPluginTensorDesc const* in, int32_t, DynamicPluginTensorDesc const*, int32_t) const noexcept override {
        return in[0].max.d[0] * sizeof(EdgeFrame) + in[1].max.d[0] * sizeof(EdgeCropJob) + 256;
    }

    int32_t onShapeChange(PluginTensorDesc const*, int32_t, PluginTensorDesc const*, int32_t) noexcept override { return 0; }
    IPluginV3* attachToContext(IPluginResourceContext*) noexcept override { return clone(); }

    int32_t enqueue(PluginTensorDesc const* in, PluginTensorDesc const*, void const* const* inputs, void* const* outputs,
                    void* workspace, cudaStream_t stream) noexcept override {
        const int frames = in[0].dims.d[0], height = in[0].dims.d[1], width = in[0].dims.d[2];
        const int boxes = in[1].dims.d[0];
        if (boxes == 0) return 0;
        auto* frame_table = static_cast<EdgeFrame*>(workspace);
        auto* jobs = reinterpret_cast<EdgeCropJob*>(static_cast<char*>(workspace) + frames * sizeof(EdgeFrame));
        // everything on the device: no host copy, so engines with this plugin can be graph-captured
        edge_pack_frame_table<<<(frames + 63) / 64, 64, 0, stream>>>(static_cast<unsigned char const*>(inputs[0]), frames,
                                                                     height, width, frame_table);
        edge_plan_boxes<<<(boxes + 63) / 64, 64, 0, stream>>>(static_cast<float const*>(inputs[1]), frame_table, frames,
                                                              jobs, boxes, attrs_.out_height, attrs_.out_width,
                                                              attrs_.letterbox);
        EdgeNormalise norm{};
        for (int c = 0; c < 3; ++c) {
            norm.mean[c] = attrs_.mean[c];
            norm.inv_std[c] = 1.0f / attrs_.std[c];
            norm.fill_bgr[c] = attrs_.mean[attrs_.rgb ? 2 - c : c];
        }
        norm.rgb = attrs_.rgb;
        dim3 block(16, 16), grid((attrs_.out_width + 15) / 16, (attrs_.out_height + 15) / 16, boxes);
        edge_crop_resize<<<grid, block, 0, stream>>>(frame_table, jobs, static_cast<float*>(outputs[0]),
                                                     attrs_.out_height, attrs_.out_width, norm);
        return cudaGetLastError() == cudaSuccess ? 0 : 1;
    }

    PluginFieldCollection const* getFieldsToSerialize() noexcept override { return &collection_; }

private:
    void fields() {
        fields_ = {PluginField("out_height", &attrs_.out_height, PluginFieldType::kINT32, 1),
                   PluginField("out_width", &attrs_.out_width, PluginFieldType::kINT32, 1),
                   PluginField("mean", attrs_.mean, PluginFieldType::kFLOAT32, 3),
                   PluginField("std", attrs_.std, PluginFieldType::kFLOAT32, 3),
                   PluginField("rgb", &attrs_.rgb, PluginFieldType::kINT32, 1),
                   PluginField("letterbox", &attrs_.letterbox, PluginFieldType::kINT32, 1)};
        collection_.nbFields = static_cast<int32_t>(fields_.size());
        collection_.fields = fields_.data();
    }

    Attributes attrs_;
    std::vector<PluginField> fields_;
    PluginFieldCollection collection_{};
};

class CropResizeCreator : public IPluginCreatorV3One {
public:
    CropResizeCreator() {
        fields_ = {PluginField("out_height", nullptr, PluginFieldType::kINT32, 1),
                   PluginField("out_width", nullptr, PluginFieldType::kINT32, 1),
                   PluginField("mean", nullptr, PluginFieldType::kFLOAT32, 3),
                   PluginField("std", nullptr, PluginFieldType::kFLOAT32, 3),
                   PluginField("rgb", nullptr, PluginFieldType::kINT32, 1),
                   PluginField("letterbox", nullptr, PluginFieldType::kINT32, 1)};
        collection_.nbFields = static_cast<int32_t>(fields_.size());
        collection_.fields = fields_.data();
    }
    char const* getPluginName() const noexcept override { return kName; }
    char const* getPluginVersion() const noexcept override { return kVersion; }
    char const* getPluginNamespace() const noexcept override { return kNamespace; }
    PluginFieldCollection const* getFieldNames() noexcept override { return &collection_; }

    IPluginV3* createPlugin(char const*, PluginFieldCollection const* fc, TensorRTPhase) noexcept override {
        Attributes a;
        for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
            PluginField const& f = fc->fields[i];
            std::string name(f.name);
            if (name == "out_height") a.out_height = *static_cast<int32_t const*>(f.data);
            else if (name == "out_width") a.out_width = *static_cast<int32_t const*>(f.data);
            else if (name == "rgb") a.rgb = *static_cast<int32_t const*>(f.data);
            else if (name == "letterbox") a.letterbox = *static_cast<int32_t const*>(f.data);
            else if (name == "mean") std::memcpy(a.mean, f.data, sizeof(a.mean));
            else if (name == "std") std::memcpy(a.std, f.data, sizeof(a.std));
        }
        return new CropResizePlugin(a);
    }

private:
    std::vector<PluginField> fields_;
    PluginFieldCollection collection_{};
};

}  // namespace edgereid

// TensorRT 10+ loads V3 creators from a shared library through this entry point
// (trt.get_plugin_registry().load_library(path), trtexec --staticPlugins / --setPluginsToSerialize).
extern "C" nvinfer1::IPluginCreatorInterface* const* getCreators(int32_t& count) {
    static edgereid::CropResizeCreator creator;
    static nvinfer1::IPluginCreatorInterface* const creators[] = {&creator};
    count = 1;
    return creators;
}
