"""Low-resolution face benchmark: a high-resolution gallery, probes degraded to 12-32 px.

Held-out identities of world ``seed`` (not a training seed): one high-resolution picture per identity is
enrolled, ``probes_per_identity`` other pictures are degraded (blur, area down-sampling, noise, JPEG)
to each probe size. Every model embeds gallery and probes through its own deployed ONNX file and the
runtime's preprocessing (landmark alignment onto its card's template), so a 64-px teacher gets LR
probes up-sampled to 64 and a 32-px student to 32. Reported per size: TAR at ``far`` (genuine = probe
vs its own gallery picture, impostors = probe vs every other identity) and closed-set top-1; plus the
raw-pixel cosine baseline (grey, mean-removed pixels of 32x32 aligned crops).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgereid.card import InputSpec
from edgereid.data.face_sets import align_faces, degrade_faces, render_faces
from edgereid.data.synthetic import to_pixel_centres
from edgereid.errors import InputError
from edgereid.eval.baselines import raw_pixel_embedding
from edgereid.eval.metrics import identification_top1
from edgereid.ops.scores import tar_at_far
from edgereid.ops.preprocess import normalise_batch
from edgereid.ops.geometry import whole_image_boxes

HR = "HR"  # the column of undegraded probes
RAW_PIXELS = "raw pixels (baseline)"
RAW_PIXEL_SPEC = InputSpec(height=32, width=32, mean=(127.5,) * 3, std=(128.0,) * 3)


@dataclass(frozen=True)
class LowResProtocol:
    """Which identities, how many probes and at which sizes (px) the benchmark uses."""

    seed: int = 700
    identities: int = 100
    probes_per_identity: int = 5
    sizes: tuple[int, ...] = (12, 16, 24, 32)
    far: float = 1e-3

    def __post_init__(self) -> None:
        if self.identities < 2 or self.probes_per_identity < 1:
            raise InputError("the benchmark needs at least 2 identities and 1 probe each",
                             got=f"{self.identities} identities, {self.probes_per_identity} probes")
        impostors = self.identities * self.probes_per_identity * (self.identities - 1)
        if impostors * self.far < 1:
            raise InputError(f"{impostors} impostor pairs cannot measure FAR {self.far:g}",
                             fix="raise identities or probes_per_identity, or use a larger far")


@dataclass
class FaceSet:
    """Pictures of any size with landmarks (pixel-edge convention) and identities."""

    images: list[np.ndarray]
    landmarks: np.ndarray
    pids: np.ndarray


def benchmark_faces(protocol: LowResProtocol, progress: bool = True) -> tuple[FaceSet, dict[str, FaceSet]]:
    """The gallery (one HR picture per identity) and the probe sets by column (``HR`` and each size)."""
    per = 1 + protocol.probes_per_identity
    renders = render_faces(protocol.seed, protocol.identities, per, progress)
    is_gallery = np.arange(len(renders)) % per == 0
    gallery = FaceSet(list(renders.images[is_gallery]), renders.landmarks[is_gallery], renders.pids[is_gallery])
    probe_index = np.flatnonzero(~is_gallery)
    probes = {HR: FaceSet(list(renders.images[probe_index]), renders.landmarks[probe_index],
                          renders.pids[probe_index])}
    for size in protocol.sizes:
        rng = np.random.default_rng((protocol.seed, size))
        small, landmarks = degrade_faces(renders, probe_index, size, rng)
        probes[str(size)] = FaceSet(small, landmarks, renders.pids[probe_index])
    return gallery, probes


def embed_with_model(model, faces: FaceSet) -> np.ndarray:
    """Embeddings from a deployed :class:`~edgereid.runtime.model.CropModel`, aligned by the landmarks."""
    plan = model.plan(np.arange(len(faces.images)), whole_image_boxes(faces.images),
                      to_pixel_centres(faces.landmarks.astype(np.float64)))
    return model.run(faces.images, plan).embeddings


def embed_raw_pixels(faces: FaceSet) -> np.ndarray:
    """The baseline: grey, mean-removed, unit-length pixels of 32x32 aligned crops."""
    crops = align_faces(faces.images, faces.landmarks, RAW_PIXEL_SPEC)
    return raw_pixel_embedding(normalise_batch(crops, RAW_PIXEL_SPEC))


def score(gallery_emb: np.ndarray, gallery_ids: np.ndarray, probe_emb: np.ndarray, probe_ids: np.ndarray,
          far: float) -> dict[str, float]:
    """TAR at ``far`` (with its threshold) and top-1 for one probe set against the gallery."""
    scores = probe_emb @ gallery_emb.T
    same = probe_ids[:, None] == gallery_ids[None, :]
    tar, threshold = tar_at_far(scores[same], scores[~same], far)
    return {"tar": tar, "threshold": threshold,
            "top1": identification_top1(probe_emb, probe_ids, gallery_emb, gallery_ids)}


def evaluate(models: dict[str, str | Path], protocol: LowResProtocol = LowResProtocol(),
             threads: int | None = 2, progress: bool = True) -> dict[str, object]:
    """Scores of every model (label -> ONNX file with a face card) and of the raw-pixel baseline."""
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import CropModel

    gallery, probes = benchmark_faces(protocol, progress)
    embedders = {RAW_PIXELS: embed_raw_pixels}
    for label, path in models.items():
        model = CropModel(load_backend(path, threads=threads), max_batch=64)
        if model.task != "face":
            raise InputError(f"{path} is not a face model", got=f"task {model.task}")
        embedders[label] = lambda faces, model=model: embed_with_model(model, faces)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for label, embed in embedders.items():
        gallery_emb = embed(gallery)
        results[label] = {column: score(gallery_emb, gallery.pids, embed(faces), faces.pids, protocol.far)
                          for column, faces in probes.items()}
    return {"protocol": asdict(protocol), "models": {k: str(v) for k, v in models.items()}, "results": results}


def markdown_table(report: dict[str, object]) -> str:
    """Rows: models; columns: TAR@FAR and top-1 per probe size."""
    results: dict = report["results"]  # type: ignore[assignment]
    columns = list(next(iter(results.values())))
    far = report["protocol"]["far"]  # type: ignore[index]
    head = "| model | " + " | ".join(f"{c}{'' if c == HR else ' px'}" for c in columns) + " |"
    lines = [f"TAR@FAR={far:g} / top-1", "", head, "|---|" + "---|" * len(columns)]
    for label, row in results.items():
        cells = " | ".join(f"{row[c]['tar']:.3f} / {row[c]['top1']:.3f}" for c in columns)
        lines.append(f"| {label} | {cells} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, object], out_dir: str | Path) -> dict[str, Path]:
    """``faces_lowres.json``, ``faces_lowres.md`` and ``faces_lowres.png`` (TAR and top-1 against probe size)."""
    from edgereid.fileio import atomic_write_text
    from edgereid.plots import line_plot

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = report["results"]  # type: ignore[assignment]
    sizes = [c for c in next(iter(results.values())) if c != HR]
    xs = [float(s) for s in sizes]
    paths = {"json": atomic_write_text(out / "faces_lowres.json", json.dumps(report, indent=1)),
             "markdown": atomic_write_text(out / "faces_lowres.md", markdown_table(report))}
    for metric, title in (("tar", f"TAR@FAR={report['protocol']['far']:g}"), ("top1", "top-1")):  # type: ignore[index]
        series = {label: (xs, [row[s][metric] for s in sizes]) for label, row in results.items()}
        paths[metric] = line_plot(series, out / f"faces_lowres_{metric}.png",
                                  f"{title}, HR gallery vs LR probes", "probe face size (px)", metric)
    return paths
