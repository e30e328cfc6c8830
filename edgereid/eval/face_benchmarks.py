"""Deployed face models (ONNX with a face card) on the public face benchmarks, through the runtime's own
preprocessing: insightface verification sets (LFW, CFP-FP, AgeDB-30, CALFW, CPLFW ``.bin``; 10-fold accuracy),
TinyFace (rank-1/5/20, mAP) and SCface (rank-1/5 per distance). ``edgereid evaluate faces --verification ...
--tinyface DIR --scface DIR``.

How images reach a model that aligns by 5 landmarks: the verification sets hold faces already aligned to the
ArcFace template at 112x112, so each image is given the template's points scaled to its own size, and the runtime's
alignment becomes a plain resize to the model's input (exact for a 112x112 model). TinyFace and SCface images are
face crops without landmarks; they are fed the same way, as if the crop were the aligned face (TinyFace's own
baselines use the whole crop). Detect and align them first (e.g. with your face detector's 5 points) for better
numbers; nothing here guesses landmarks. Verification adds the embedding of the mirrored image, as insightface
does; the identification benchmarks do not.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np

from edgereid.errors import InputError
from edgereid.fileio import read_bounded_image
from edgereid.ops.geometry import FACE_TEMPLATE_112, whole_image_boxes

MAX_IMAGE_BYTES = 32 * 1024 * 1024  # a face image larger than this is not a face crop


def read_face_image(path: Path) -> np.ndarray:
    """One BGR face image, its size checked before it is read."""
    return read_bounded_image(path, MAX_IMAGE_BYTES, "face image")


def template_landmarks(images: list[np.ndarray]) -> np.ndarray:
    """``[N, 5, 2]``: the ArcFace template's points scaled to each image, for images that are aligned faces."""
    sizes = np.array([[image.shape[1] / 112.0, image.shape[0] / 112.0] for image in images])
    return FACE_TEMPLATE_112[None] * sizes[:, None, :]


def embed_faces(model, images: list[np.ndarray], mirrored: bool = False) -> np.ndarray:
    """Embeddings of face images from a :class:`~edgereid.runtime.model.CropModel` (see the module text), plus
    those of the mirrored images when ``mirrored``; in chunks of 256 images."""
    parts = []
    for start in range(0, len(images), 256):
        chunk = images[start:start + 256]
        views = [chunk] + ([[np.ascontiguousarray(image[:, ::-1]) for image in chunk]] if mirrored else [])
        total = 0.0
        for view in views:
            plan = model.plan(np.arange(len(view)), whole_image_boxes(view), template_landmarks(view))
            total = total + model.run(view, plan).embeddings
        parts.append(total)
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def _verification(model, paths: list[Path]) -> dict[str, dict]:
    from edgereid.data.face_records import read_verification_bin
    from edgereid.eval.face_verification import verification_accuracy

    out = {}
    for path in paths:
        pairs = read_verification_bin(path)
        embeddings = embed_faces(model, pairs.decode(), mirrored=True)
        scores = verification_accuracy(embeddings[0::2], embeddings[1::2], pairs.same)
        out[pairs.name] = {"accuracy": scores["accuracy"], "std": scores["std"], "pairs": int(len(pairs.same))}
    return out


def _embed_files(model, paths: list[Path]) -> np.ndarray:
    return embed_faces(model, [read_face_image(path) for path in paths])


def _tinyface(model, root: Path) -> dict[str, float]:
    from edgereid.data.tinyface import read_tinyface, tinyface_metrics

    test = read_tinyface(root)
    embed = partial(_embed_files, model)
    distractors = embed(test.distractors) if test.distractors else None
    return tinyface_metrics(embed(test.probes), test.probe_ids, embed(test.gallery), test.gallery_ids, distractors)


def _scface(model, root: Path, subjects: tuple[int, ...] | None) -> dict[str, dict[str, float]]:
    from edgereid.data.scface import read_scface, scface_by_distance

    test = read_scface(root, subjects=subjects)
    embed = partial(_embed_files, model)
    return scface_by_distance(test, embed(test.gallery), {d: embed(paths) for d, paths in test.probes.items()})


def evaluate_benchmarks(models: dict[str, str | Path], verification: list[str | Path] = (),
                        tinyface: str | Path | None = None, scface: str | Path | None = None,
                        scface_subjects: tuple[int, ...] | None = None, threads: int | None = 2) -> dict:
    """Every model (label -> ONNX file with a face card) on each benchmark given."""
    from edgereid.runtime.backends import load_backend
    from edgereid.runtime.model import CropModel

    if not (verification or tinyface or scface):
        raise InputError("no face benchmark given", fix="pass --verification F.bin, --tinyface DIR or --scface DIR")
    results: dict[str, dict] = {}
    for label, path in models.items():
        model = CropModel(load_backend(path, threads=threads), max_batch=64)
        if model.task != "face":
            raise InputError(f"{path} is not a face model", got=f"task {model.task}")
        row: dict[str, dict] = {}
        if verification:
            row["verification"] = _verification(model, [Path(p) for p in verification])
        if tinyface:
            row["tinyface"] = _tinyface(model, Path(tinyface))
        if scface:
            row["scface"] = _scface(model, Path(scface), scface_subjects)
        results[label] = row
    return {"models": {k: str(v) for k, v in models.items()}, "scface_subjects": "all" if scface_subjects is None
            else f"{min(scface_subjects)}-{max(scface_subjects)}", "results": results}


def benchmark_table(report: dict) -> str:
    """One row per model: verification accuracy per set, TinyFace rank-1/mAP, SCface rank-1 per distance."""
    columns: list[tuple[str, str]] = []
    for row in report["results"].values():
        for name in row.get("verification", {}):
            columns.append(("verification", name))
        columns += [("tinyface", "")] if "tinyface" in row else []
        columns += [("scface", d) for d in row.get("scface", {})]
        break
    names = {"verification": "{} acc", "tinyface": "TinyFace rank-1 / mAP", "scface": "SCface {} rank-1"}
    head = "| model | " + " | ".join(names[kind].format(name) for kind, name in columns) + " |"
    lines = [head, "|---|" + "---|" * len(columns)]
    for label, row in report["results"].items():
        cells = []
        for kind, name in columns:
            if kind == "verification":
                cells.append(f"{row[kind][name]['accuracy']:.4f} ± {row[kind][name]['std']:.4f}")
            elif kind == "tinyface":
                cells.append(f"{row[kind]['rank1']:.3f} / {row[kind]['mAP']:.3f}")
            else:
                cells.append(f"{row[kind][name]['rank1']:.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_benchmark_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """``face_benchmarks.json`` and ``face_benchmarks.md`` in ``out_dir``."""
    from edgereid.fileio import atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {"json": atomic_write_text(out / "face_benchmarks.json", json.dumps(report, indent=1)),
            "markdown": atomic_write_text(out / "face_benchmarks.md", benchmark_table(report))}
