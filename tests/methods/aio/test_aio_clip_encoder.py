"""AIO on a CLIP encoder (``encoder: {kind: clip}``): a tiny random CLIP of the real transformers class in a local
folder with a tokenizer that has CLIP's special tokens; images start from CLIP's own patch tokens, the encoder
stays frozen, and the teacher trains, saves, reloads and exports its branches."""

from __future__ import annotations

import json

import pytest
import torch

from edgereid.cli import main
from edgereid.errors import CheckpointError, ConfigError

transformers = pytest.importorskip("transformers")

WORLD = ["--set", "data={seed: 3, identities: 8, cameras: 4, frames_per_camera: 8, pace: 4.0, people_per_frame: 4}",
         "--set", "train_cameras=[0, 1]", "--set", "input_hw=[32, 16]", "--set", "tokenizer_channels=8",
         "--set", "stage1_epochs=1", "--set", "optim.epochs=2", "--set", "batch_size=8", "--set", "ids_per_batch=4"]


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    from tokenizers import Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    from edgereid.methods.aio.encoder import tiny_vocabulary

    folder = tmp_path_factory.mktemp("clip") / "clip-tiny"
    words = ["<|startoftext|>", "<|endoftext|>"] + [w for w in tiny_vocabulary() if not w.startswith("[")]
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<|endoftext|>"))
    tokenizer.normalizer, tokenizer.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config={"vocab_size": len(words), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 64, "bos_token_id": 0, "eos_token_id": 1},
        vision_config={"hidden_size": 24, "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 64, "patch_size": 16}, projection_dim=8)
    transformers.CLIPModel(config).save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def test_aio_clip_encoder_starts_from_clips_patch_tokens_and_stays_frozen(clip_folder):
    from edgereid.methods.aio.captions import CaptionTokenizer
    from edgereid.methods.aio.encoder import EncoderSpec, load_encoder
    from edgereid.methods.aio.model import AIOModel

    encoder = load_encoder(EncoderSpec(kind="clip", path=str(clip_folder)), (32, 16))
    assert (encoder.width, encoder.text_width) == (24, 16) and encoder.patch_positions.shape == (1, 2, 24)
    model = AIOModel(encoder, num_classes=3, input_hw=(32, 16), tokenizer_channels=8)
    images = torch.randn(2, 3, 32, 16)
    captured = []
    hook = encoder.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    model.encode({"rgb": images})
    hook.remove()
    expected = encoder.patch_tokens(images) + model.modality_embeddings["rgb"]  # gates start at 0
    torch.testing.assert_close(captured[0][:, 1:], expected)
    text = CaptionTokenizer(encoder.tokenizer, encoder.special).encode(["a person in a red jacket"] * 2)
    feature, hidden = model.encode({"rgb": images}, text)
    (feature.sum() + hidden.sum()).backward()
    assert all(p.grad is None for p in encoder.parameters())
    assert model.image_gates["rgb"].grad is not None and model.text_adapter.weight.grad.abs().sum() > 0


def test_aio_clip_encoder_trains_reloads_and_exports(clip_folder, tmp_path):
    from edgereid.methods.aio.checkpoint import load_aio

    out = tmp_path / "teacher"
    assert main(["train", "--config", "samples/configs/aio_world.yaml", "--set", f"out={out}",
                 "--set", f"encoder={{kind: clip, path: {clip_folder}}}", *WORLD]) == 0
    history = json.loads((out / "history.json").read_text())["history"]
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(h["id"])) for h in history)
    assert all((out / name).is_file() for name in ("rgb.onnx", "ir.onnx", "sketch.onnx", "text.onnx"))
    model = load_aio(out / "model.safetensors")
    assert model.encoder.spec.kind == "clip" and float(model.image_gates["rgb"].detach().abs()) > 0
    with pytest.raises(ConfigError, match="not a CLIP folder"):
        load_aio(out / "model.safetensors", encoder_path=str(tmp_path))
    changed = tmp_path / "clip-other"
    changed.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (changed / name).write_bytes((clip_folder / name).read_bytes())
    clip = transformers.CLIPModel.from_pretrained(str(clip_folder))
    with torch.no_grad():
        clip.vision_model.post_layernorm.weight.add_(1.0)  # other weights: another copy of the encoder
    clip.save_pretrained(str(changed), safe_serialization=True)
    with pytest.raises(CheckpointError, match="different copy of its frozen encoder"):
        load_aio(out / "model.safetensors", encoder_path=str(changed))
