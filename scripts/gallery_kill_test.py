"""Kill a gallery writer at random points and check what a reader finds.

A child process loads a gallery and saves it again and again, alternating between two contents (A and B);
the parent SIGKILLs it after a random delay, then checks that the file loads and equals A, B or the first
content, and that after one more save no temporary file of the gallery is left (a killed writer's temp file
is swept by the next save or load). ``make test`` runs 50 kills (tests/test_gallery_crash.py); the longer
run's figures are in docs/reliability.md:

    python scripts/gallery_kill_test.py --kills 1000 --out kill_test.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgereid.card import InputSpec, ModelCard, OutputSpec, Provenance  # noqa: E402
from edgereid.gallery import Gallery  # noqa: E402

DIM = 128
WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from edgereid.gallery import Gallery

    path, a, b = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3])
    gallery = Gallery.load(path)
    print("ready", flush=True)
    for turn in range(10_000_000):
        gallery.purge()
        vectors = a if turn % 2 else b
        gallery.enroll("person", vectors)
        gallery.save(path)
""")


def _card() -> ModelCard:
    return ModelCard(name="kill_test", task="reid", input=InputSpec(height=64, width=32),
                     outputs=(OutputSpec("embedding", "embedding", (DIM,)),), embedding_dim=DIM,
                     provenance=Provenance(checkpoint_sha256="kill-test"))


def _content(vectors: np.ndarray) -> str:
    """The digest of what a gallery of ``vectors`` enrolled as one identity holds."""
    gallery = Gallery(_card())
    gallery.enroll("person", vectors)
    return _digest_of(gallery)


def _digest_of(gallery: Gallery) -> str:
    ids, scores = gallery.search(np.eye(DIM)[:4], k=1)
    return hashlib.sha256(np.ascontiguousarray(scores).tobytes() + str(ids).encode()).hexdigest() + f":{len(gallery)}"


def run(kills: int, folder: Path, seed: int = 0, rows: int = 20_000) -> dict[str, object]:
    """``kills`` kill-and-check rounds in ``folder``; returns the counts."""
    rng = np.random.default_rng(seed)
    a, b = (rng.normal(size=(rows, DIM)).astype(np.float32) for _ in range(2))
    np.save(folder / "a.npy", a)
    np.save(folder / "b.npy", b)
    path = folder / "gallery.npz"
    first = Gallery(_card())
    first.enroll("person", a[:10])
    first.save(path)
    allowed = {_digest_of(first), _content(a), _content(b)}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    counts = {"kills": 0, "loads_ok": 0, "temp_files_left_by_kills": 0, "temp_files_after_next_save": 0}
    started = time.perf_counter()
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(folder / "a.npy"), str(folder / "b.npy")],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the writer did not start: {child.stderr.read()[-500:]}")
        time.sleep(float(rng.uniform(0.0, 0.25)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        counts["kills"] += 1
        counts["temp_files_left_by_kills"] += len(list(folder.glob(".gallery.npz.*.tmp")))
        loaded = Gallery.load(path)  # also sweeps the dead writer's temp file
        if _digest_of(loaded) not in allowed:
            raise AssertionError("a load found neither the old nor the new content")
        counts["loads_ok"] += 1
        loaded.save(path)
        counts["temp_files_after_next_save"] += len(list(folder.glob(".gallery.npz.*.tmp")))
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--out", default=None, help="write the counts as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        counts = run(args.kills, Path(folder))
    print(json.dumps(counts))
    if args.out:
        Path(args.out).write_text(json.dumps(counts, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
