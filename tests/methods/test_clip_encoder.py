"""DCAC's CLIP ViT encoder (``clip_vit_b16``) on a tiny random CLIP of the real class: loading from a local folder,
checkpoints that rebuild without it, and a DCAC training run on it (``pytest -k clip_encoder``)."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("diffusers")

from edgereid.cli import main  # noqa: E402
from edgereid.models import create_model  # noqa: E402
from edgereid.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402

TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
                 patch_size=16, projection_dim=24)


@pytest.fixture()
def clip_folder(tmp_path):
    """A tiny CLIP model (text and vision towers, as openai/clip-vit-base-patch16 is) saved as a local folder."""
    torch.manual_seed(0)
    config = transformers.CLIPConfig(vision_config=TINY_CLIP, projection_dim=24,
                                     text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                      num_attention_heads=2, vocab_size=99))
    transformers.CLIPModel(config).save_pretrained(tmp_path / "clip", safe_serialization=True)
    return tmp_path / "clip"


def test_clip_encoder_loads_a_local_folder_and_rebuilds_from_its_checkpoint_alone(clip_folder, tmp_path):
    encoder = create_model("clip_vit_b16", clip_path=str(clip_folder), input_hw=(64, 32), num_classes=3)
    saved = transformers.CLIPModel.from_pretrained(clip_folder)
    torch.testing.assert_close(encoder.clip.visual_projection.weight, saved.visual_projection.weight)
    assert encoder.position.shape == (1 + 4 * 2, 32)  # CLS + the 4x2 grid of a 64x32 crop, resized from 2x2
    torch.testing.assert_close(encoder.position[0], saved.vision_model.embeddings.position_embedding.weight[0])
    assert not encoder.clip.vision_model.embeddings.patch_embedding.weight.requires_grad  # frozen, as officially
    assert "clip_path" not in encoder.constructor_args
    path = save_checkpoint(encoder, tmp_path / "encoder.safetensors")
    clip_folder.rename(tmp_path / "gone")  # the checkpoint needs no CLIP folder to rebuild
    rebuilt, card = load_checkpoint(path)
    crops = torch.randn(2, 3, 64, 32)
    encoder.eval(), rebuilt.eval()
    torch.testing.assert_close(rebuilt(crops), encoder(crops))
    assert card.input.mean == (127.5, 127.5, 127.5) and card.embedding_dim == 24


def test_clip_encoder_trains_a_dcac_run_and_exports(tmp_path, tiny_ldm_path):
    out = tmp_path / "teacher"
    args = json.dumps({"clip_config": TINY_CLIP, "input_hw": [64, 32]})
    assert main(["train", "--config", "samples/configs/dcac_world.yaml", "--set", "model=clip_vit_b16",
                 "--set", f"model_args={args}", "--set", f"ldm={tiny_ldm_path}", "--set", f"out={out}",
                 "--set", "lora_rank=2", "--set", "data.identities=8", "--set", "data.cameras=3",
                 "--set", "data.frames_per_camera=10", "--set", "train_cameras=[0, 1]", "--set", "batch_size=8",
                 "--set", "ids_per_batch=4", "--set", "optim.epochs=2", "--set", "optim.optimizer=adam",
                 "--set", "optim.lr=0.0001", "--set", "optim.grad_clip=0"]) == 0
    history = json.loads((out / "history.json").read_text())["history"]
    assert {"id", "pcl", "ldm"} <= set(history[0]) and set(history[0]["grad_shares"]) == {"id", "pcl", "ldm"}
    assert history[-1]["id"] < history[0]["id"]
    assert (out / "model.onnx").is_file()
