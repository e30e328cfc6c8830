"""The low-resolution face benchmark and FAR-calibrated thresholds on held-out identities."""

import numpy as np
import pytest

from edgereid.errors import InputError
from edgereid.eval.face_lowres import (HR, RAW_PIXELS, LowResProtocol, benchmark_faces, embed_raw_pixels, evaluate,
                                       markdown_table, write_report)
from edgereid.ops.scores import threshold_at_far


def test_benchmark_sets_have_the_asked_sizes_and_identities():
    gallery, probes = benchmark_faces(LowResProtocol(seed=5, identities=4, probes_per_identity=2, sizes=(12, 24),
                                                     far=0.1), progress=False)
    assert gallery.pids.tolist() == [1, 2, 3, 4] and gallery.images[0].shape == (112, 112, 3)
    assert list(probes) == [HR, "12", "24"]
    assert all(im.shape == (12, 12, 3) for im in probes["12"].images)
    assert probes["24"].pids.tolist() == [1, 1, 2, 2, 3, 3, 4, 4]
    assert np.abs(probes["12"].landmarks * 112 / 12 - probes[HR].landmarks).max() < 1e-4


@pytest.mark.parametrize("column", [HR, "16"])
def test_a_threshold_at_far_holds_on_held_out_impostors(column):
    """Threshold from one half of the identities, false-accept rate measured on the other half: it
    lands within sampling error (3 standard deviations of the difference of two binomial rates)."""
    gallery, probes = benchmark_faces(LowResProtocol(seed=701, identities=80, probes_per_identity=3, sizes=(16,)),
                                      progress=False)
    scores = embed_raw_pixels(probes[column]) @ embed_raw_pixels(gallery).T
    pids, gids = probes[column].pids[:, None], gallery.pids[None, :]
    impostor = pids != gids
    calibration = impostor & (pids <= 40) & (gids <= 40)
    held_out = impostor & (pids > 40) & (gids > 40)
    for far in (0.01, 0.05):
        threshold = threshold_at_far(scores[calibration], far)
        observed = float(np.mean(scores[held_out] > threshold))
        sigma = np.sqrt(2 * far * (1 - far) / held_out.sum())
        assert abs(observed - far) < 3 * sigma, f"FAR {far}: observed {observed:.4f} (sigma {sigma:.4f})"


def test_evaluate_reports_every_model_and_the_baseline(tiny_models, tmp_path):
    protocol = LowResProtocol(seed=5, identities=6, probes_per_identity=2, sizes=(12, 32), far=0.05)
    report = evaluate({"tiny": tiny_models["test_face"]["onnx"]}, protocol, threads=1, progress=False)
    results = report["results"]
    assert list(results) == [RAW_PIXELS, "tiny"] and list(results["tiny"]) == [HR, "12", "32"]
    for row in results.values():
        for cell in row.values():
            assert 0.0 <= cell["tar"] <= 1.0 and 0.0 <= cell["top1"] <= 1.0
    paths = write_report(report, tmp_path)
    assert all(p.is_file() for p in paths.values())
    assert "| tiny |" in markdown_table(report)
    with pytest.raises(InputError, match="not a face model"):
        evaluate({"reid": tiny_models["test_reid"]["onnx"]}, protocol, threads=1, progress=False)


def test_too_few_pairs_for_the_far_is_an_error():
    with pytest.raises(InputError, match="cannot measure FAR"):
        LowResProtocol(identities=5, probes_per_identity=1, far=1e-3)


def test_evaluate_faces_command(tiny_models, tmp_path, capsys):
    from edgereid.cli import main

    model = tiny_models["test_face"]["onnx"]
    assert main(["evaluate", "faces", "--model", f"tiny={model}", "--identities", "4", "--probes", "2",
                 "--sizes", "12", "--far", "0.05", "--out", str(tmp_path)]) == 0
    assert "| tiny |" in capsys.readouterr().out and (tmp_path / "faces_lowres_tar.png").is_file()
    assert main(["evaluate", "faces", "--model", str(model), "--out", str(tmp_path)]) == 2
    assert "LABEL=PATH" in capsys.readouterr().err
