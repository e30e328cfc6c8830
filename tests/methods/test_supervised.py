import numpy as np
import pytest
import torch
import yaml

from edgereid.card import read_card
from edgereid.data.synthetic import WorldSpec
from edgereid.data.scene_crops import scene_crops
from edgereid.errors import ConfigError
from edgereid.methods.losses import ArcMarginHead, batch_hard_triplet, gaussian_heatmaps
from edgereid.methods.supervised import TrainConfig, train
from edgereid.models import create_model

TINY_DATA = {"seed": 7, "identities": 8, "cameras": 2, "frames_per_camera": 12, "pace": 4.0, "people_per_frame": 4}


@pytest.mark.parametrize("model", ["test_reid", "test_keypoints", "test_face"])
def test_train_one_epoch_writes_checkpoint_curve_and_onnx(model, tmp_path):
    path = tmp_path / "c.yaml"
    config = {"method": "supervised", "model": model, "out": str(tmp_path / "run"), "data": TINY_DATA,
              "optim": {"epochs": 1, "threads": 1}, "batch_size": 8, "ids_per_batch": 4}
    path.write_text(yaml.safe_dump(config))
    checkpoint = train(TrainConfig.load(path), config)
    assert checkpoint.is_file() and (tmp_path / "run" / "loss.png").is_file()
    card = read_card(tmp_path / "run" / "model.onnx")
    assert card.name == model and card.provenance.config_fingerprint


def test_train_config_is_strict(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: supervised\nmodel: test_reid\nout: x\nbatch_sise: 8\n")
    with pytest.raises(ConfigError, match="did you mean 'batch_size'"):
        TrainConfig.load(path)
    path.write_text("method: dcac\nmodel: test_reid\nout: x\n")
    with pytest.raises(ConfigError, match=r"method: one of \['supervised'\]"):
        TrainConfig.load(path)
    path.write_text("method: supervised\nmodel: test_reid\nout: x\n")
    assert TrainConfig.load(path, {"optim.epochs": 3}).optim.epochs == 3


def test_scene_crops_keep_keypoints_on_the_body():
    spec = create_model("test_keypoints").card("test_keypoints").input
    people, faces = scene_crops(WorldSpec(**TINY_DATA), person_spec=spec,
                                face_spec=create_model("test_face").card("test_face").input, progress=False)
    assert people.images.shape[1:] == (spec.height, spec.width, 3) and people.images.dtype == np.uint8
    visible = people.keypoints[..., 2] > 0
    xy = people.keypoints[..., :2][visible]
    assert (xy[:, 0] > -2).all() and (xy[:, 0] < spec.width + 2).all() and (xy[:, 1] < spec.height + 2).all()
    assert len(faces) > 0 and faces.images.shape[1:] == (32, 32, 3)


def test_losses_behave():
    labels = torch.tensor([0, 0, 1, 1])
    separated = torch.tensor([[0.0, 0], [0.1, 0], [5, 0], [5.1, 0]])
    mixed = torch.tensor([[0.0, 0], [5, 0], [0.1, 0], [5.1, 0]])
    assert batch_hard_triplet(separated, labels) == 0
    assert batch_hard_triplet(mixed, labels) > 4
    maps = gaussian_heatmaps(torch.tensor([[[5.5, 9.5]]]), torch.tensor([[True]]), (8, 6), stride=2)
    assert maps[0, 0].argmax() == 4 * 6 + 2 and maps.max() <= 1
    head = ArcMarginHead(4, 3, scale=16, margin=0.3)
    emb = torch.randn(6, 4)
    assert head(emb, torch.tensor([0, 1, 2, 0, 1, 2])) > 0


def test_distill_configs_accept_the_old_student_keys_with_a_deprecation_message(tmp_path):
    from edgereid.methods.stable_keypoints.distill import KeypointDistillConfig

    path = tmp_path / "old.yaml"
    path.write_text("method: stable_keypoints\nmodel: test_keypoints\nmodel_args: {width: 8}\nout: x\n"
                    "crops: c\nlabels: l.npz\n")
    with pytest.warns(FutureWarning, match="'model' is deprecated.*rename it to 'student'"):
        config = KeypointDistillConfig.load(path)
    assert (config.student, config.student_args) == ("test_keypoints", {"width": 8})
    with pytest.raises(ConfigError, match="gives both 'model' and 'student'"):
        KeypointDistillConfig.load(path, {"student": "test_keypoints"})


def test_every_run_config_shares_one_header():
    import dataclasses

    from edgereid.methods.run_config import DistillRun, RunConfig, TrainRun
    from edgereid.methods.runs import METHODS, load_config_class

    header = {f.name for f in dataclasses.fields(RunConfig)}
    for verb, methods in METHODS.items():
        for method in methods:
            cls = load_config_class(verb, method)
            assert header <= {f.name for f in dataclasses.fields(cls)} and method in cls.METHODS
            assert issubclass(cls, DistillRun if verb == "distill" else RunConfig)
            if verb == "train" and method != "aio":
                assert issubclass(cls, TrainRun)
