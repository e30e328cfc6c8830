"""IResNet-18/50/100 (arcface_torch's face backbones) built here: sizes, shapes and the face-model interface."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgereid.models import create_model  # noqa: E402

# arcface_torch's published parameter counts (its model zoo table): r18 24.0 M, r50 43.6 M, r100 65.2 M
PUBLISHED_MILLIONS = {"iresnet18": 24.0, "iresnet50": 43.6, "iresnet100": 65.2}


@pytest.mark.parametrize("name", sorted(PUBLISHED_MILLIONS))
def test_parameter_counts_match_the_published_backbones(name):
    with torch.device("meta"):
        model = create_model(name)
    count = sum(p.numel() for p in model.parameters()) / 1e6
    assert abs(count - PUBLISHED_MILLIONS[name]) < 0.05, count


def test_iresnet_embeds_112_faces_through_the_face_interface():
    torch.manual_seed(0)
    model = create_model("iresnet18", num_classes=5, dropout=0.4).eval()
    faces = torch.randn(2, 3, 112, 112)
    pre = model.pre_embedding(faces)
    assert pre.shape == (2, 512 * 7 * 7)
    torch.testing.assert_close(model.embedding_head(pre), model.features(faces))
    embedding = model(faces)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))
    assert model.classifier.out_features == 5 and not model.bn.weight.requires_grad
    card = model.card("iresnet18")
    assert (card.input.height, card.input.width, card.input.mean, card.embedding_dim) == (112, 112, (127.5,) * 3, 512)
    with pytest.raises(ValueError, match="depth"):
        create_model("iresnet50", input_size=100)


def test_the_face_student_takes_the_standard_112_input_and_refuses_sizes_off_its_stride():
    model = create_model("face_mobilefacenet_112").eval()
    assert model(torch.randn(2, 3, 112, 112)).shape == (2, 512) and model.card("x").input.height == 112
    with pytest.raises(ValueError, match="multiple of its trunk's stride"):
        create_model("face_mobilefacenet", input_size=100)


def test_the_112_student_exports_with_parity_and_embeds_aligned_faces_in_the_runtime(tmp_path):
    """face_mobilefacenet_112 to ONNX (the exporter's own parity check) and through the runtime's 5-point
    alignment: the same embedding as the torch model on the face aligned by the training code."""
    from edgereid.data.face_sets import align_faces, render_faces
    from edgereid.data.synthetic import to_pixel_centres
    from edgereid.exporting.onnx_export import export_checkpoint
    from edgereid.models.checkpoint import save_checkpoint
    from edgereid.ops.geometry import whole_image_boxes
    from edgereid.ops.preprocess import normalise_batch
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import CropModel

    torch.manual_seed(1)
    model = create_model("face_mobilefacenet_112").eval()
    onnx_path = tmp_path / "face112.onnx"
    report = export_checkpoint(save_checkpoint(model, tmp_path / "face112.safetensors"), onnx_path)
    assert report.min_cosine > 0.9999
    renders = render_faces(seed=4, identities=2, per_identity=2, progress=False)
    images = list(renders.images)
    runtime = CropModel(load_backend(onnx_path, threads=1))
    plan = runtime.plan(np.arange(len(images)), whole_image_boxes(images),
                        to_pixel_centres(renders.landmarks.astype(np.float64)))
    deployed = runtime.run(images, plan).embeddings
    spec = model.card("face_mobilefacenet_112").input
    with torch.no_grad():
        reference = model(torch.from_numpy(normalise_batch(align_faces(renders.images, renders.landmarks, spec),
                                                            spec))).numpy()
    assert (deployed * reference).sum(1).min() > 0.999
