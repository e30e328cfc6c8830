"""50 SIGKILLs of a gallery writer at random points: every load finds the old or the new content, and no
temporary file survives the next save (scripts/gallery_kill_test.py runs the 1,000-kill version)."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gallery_kill_test.py"


@pytest.mark.slow
def test_killed_gallery_writers_leave_old_or_new_content_and_no_debris(tmp_path):
    spec = importlib.util.spec_from_file_location("gallery_kill_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    counts = module.run(50, tmp_path, seed=1, rows=20_000)
    assert counts["kills"] == counts["loads_ok"] == 50
    assert counts["temp_files_after_next_save"] == 0
    assert counts["temp_files_left_by_kills"] > 0  # the kills did land inside saves
