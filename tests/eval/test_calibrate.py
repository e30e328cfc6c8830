import shutil

from edgereid.card import read_card
from edgereid.eval.calibrate import calibrate, write_threshold
from edgereid.gallery import Gallery


def test_threshold_from_far_lands_in_the_card_and_the_gallery(tiny_models, tmp_path):
    model = tmp_path / "reid.onnx"
    shutil.copy(tiny_models["test_reid"]["onnx"], model)
    result = calibrate(model, far=0.01, seed=600, identities=8, cameras=2, frames=12)
    assert (result.impostor > result.threshold.score).mean() <= 0.01
    assert result.tar == (result.genuine > result.threshold.score).mean()
    assert result.genuine_pairs > 0 and result.impostor_pairs >= 100
    write_threshold(model, result)
    card = read_card(model)
    assert card.accept_threshold == result.threshold
    assert card.embedding_space() == read_card(tiny_models["test_reid"]["onnx"]).embedding_space()
    assert Gallery(card).threshold == result.threshold.score
