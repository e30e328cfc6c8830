"""The documentation a user is pointed to exists: every relative link and every docs/ or file path the README
names resolves, and the API reference builds from the docstrings (what `make docs` runs)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_every_link_and_path_in_the_readme_resolves():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#\s]+)", text)
    paths = re.findall(r"`((?:docs|samples|scripts|export|edgereid|tests)/[\w./-]+)`", text)
    missing = sorted({p for p in links + paths if not p.startswith("http") and not (REPO / p).exists()
                      and "*" not in p and "{" not in p})
    assert not missing, f"README names files that do not exist: {missing}"
    assert (REPO / "docs" / "methods.md").is_file()


@pytest.mark.slow
def test_the_api_reference_builds(tmp_path):
    pytest.importorskip("pdoc", reason="pdoc (the dev extra) builds the API reference")
    modules = re.search(r"API_MODULES := (.+?)\n\S", (REPO / "Makefile").read_text(), re.S).group(1)
    modules = modules.replace("\\", " ").split()
    proc = subprocess.run([sys.executable, "-m", "pdoc", "-o", str(tmp_path), *modules], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    page = (tmp_path / "edgereid" / "pipeline.html").read_text()
    assert "Pipeline" in page and "submit" in page
