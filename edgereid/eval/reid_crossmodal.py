"""``edgereid evaluate crossmodal``: cross-modal and multimodal person retrieval on an unseen world.

The gallery is always RGB camera crops (what cameras record); the queries come in five kinds:

- R->R: RGB crops of the same world (the first crop of every identity and camera), as a reference;
- I->R: every crop of the world's IR camera (the last camera of four or more records in IR), as
  SYSU-MM01's all-search protocol takes every IR image as a query;
- S->R: sketches drawn from the RGB query crops (the world's line renderer), as a witness would draw;
- T->R: each identity's caption, as an operator would type it;
- R+T->R: an RGB query crop together with its identity's caption.

Market-1501 protocol (gallery crops of the query's identity *and* camera are ignored; captions have no
camera). Every crop goes through the runtime's own preprocessing. A system is either an AIO teacher
checkpoint (every query kind through the teacher) or a student: its RGB ONNX for the gallery and RGB
queries, an IR ONNX for IR queries, and the teacher's exported text and sketch branches for the
operator's queries; a student's R+T query fuses its RGB embedding with the teacher's text embedding
(mean of the two unit vectors), since the student has no text input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgereid.card import InputSpec
from edgereid.data.cameras import to_modality
from edgereid.data.scene_crops import CropSet, crops_from_cameras, scene_crops
from edgereid.data.synthetic import WorldSpec
from edgereid.errors import InputError
from edgereid.eval.embedders import ImageEmbedder, onnx_embedder
from edgereid.eval.reid_dg import rank_metrics, split_query_gallery
from edgereid.ops.postprocess import l2_normalize
from edgereid.ops.preprocess import normalise_batch

QUERY_KINDS = ("R->R", "I->R", "S->R", "T->R", "R+T->R")
TextEmbedder = Callable[[list[str]], np.ndarray]


@dataclass
class System:
    """How one model family embeds each kind of input; ``None`` = that query kind does not apply.
    ``rgb_text`` takes crops cut for ``rgb.spec`` and their captions."""

    rgb: ImageEmbedder
    ir: ImageEmbedder | None = None
    sketch: ImageEmbedder | None = None
    text: TextEmbedder | None = None
    rgb_text: Callable[[np.ndarray, list[str]], np.ndarray] | None = None
    notes: dict[str, str] = field(default_factory=dict)


# The held-out world: not a training seed, the last of its cameras is IR.
CROSSMODAL_WORLD = WorldSpec(seed=730, identities=60, cameras=4, frames_per_camera=60)


def teacher_system(checkpoint: str | Path) -> System:
    """Every query kind through an AIO teacher checkpoint (torch, CPU)."""
    import torch

    from edgereid.methods.aio.captions import CaptionTokenizer
    from edgereid.methods.aio.checkpoint import image_spec, load_aio

    model = load_aio(checkpoint)
    spec = image_spec(model.input_hw)
    tokens = CaptionTokenizer(model.encoder.tokenizer, model.encoder.special)

    def images(modality: str) -> ImageEmbedder:
        def embed(crops: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model.embed({modality: torch.from_numpy(normalise_batch(crops, spec))}).numpy()
        return ImageEmbedder(spec, embed)

    def text(captions: list[str]) -> np.ndarray:
        with torch.no_grad():
            return model.embed(text=tokens.encode(captions)).numpy()

    def rgb_text(crops: np.ndarray, captions: list[str]) -> np.ndarray:
        with torch.no_grad():
            return model.embed({"rgb": torch.from_numpy(normalise_batch(crops, spec))}, tokens.encode(captions)).numpy()

    return System(images("rgb"), images("ir"), images("sketch"), text, rgb_text,
                  {"R+T->R": "joint encoding"})


def student_system(rgb_onnx: str | Path, ir_onnx: str | Path | None, branches: str | Path) -> System:
    """A student's RGB (and IR) ONNX with the teacher's exported text and sketch branches from ``branches``."""
    from edgereid.methods.aio.query import TextQueryEncoder

    rgb = onnx_embedder(rgb_onnx)
    ir = onnx_embedder(ir_onnx) if ir_onnx else None
    sketch = onnx_embedder(Path(branches) / "sketch.onnx")
    text = TextQueryEncoder(branches).encode

    def rgb_text(crops: np.ndarray, captions: list[str]) -> np.ndarray:
        return l2_normalize(rgb(crops) + text(captions))

    return System(rgb, ir, sketch, text, rgb_text,
                  {"S->R": "teacher's sketch.onnx", "T->R": "teacher's text.onnx",
                   "R+T->R": "mean of student RGB and teacher text embeddings"})


def _score(query: np.ndarray, gallery: np.ndarray, q_pids, g_pids, q_cams, g_cams) -> dict[str, float]:
    """Metrics, and how many queries count (those with a true match left after the camera rule)."""
    valid = ((q_pids[:, None] == g_pids[None, :]) & (q_cams[:, None] != g_cams[None, :])).any(1)
    return {**rank_metrics(query, gallery, q_pids, g_pids, q_cams, g_cams), "queries": int(valid.sum())}


def _sheet_rows(queries: list, embeddings: np.ndarray, pids: np.ndarray, gallery: np.ndarray,
                gallery_images: np.ndarray, g_pids: np.ndarray, count: int = 3, k: int = 5) -> list:
    """``count`` evenly spaced queries with their top-``k`` gallery crops and whether each is a hit."""
    rows = []
    for i in np.linspace(0, len(queries) - 1, count).astype(int):
        top = np.argsort(-(gallery @ embeddings[i]))[:k]
        rows.append((queries[i], list(gallery_images[top]), list(g_pids[top] == pids[i])))
    return rows


def evaluate(systems: dict[str, System], protocol: WorldSpec = CROSSMODAL_WORLD,
             sheet: str | Path | None = None) -> dict[str, object]:
    """Rank-1/5 and mAP per system and query kind; ``sheet``: a PNG of text and IR queries of the first
    system with their top-5 gallery crops."""
    if protocol.cameras < 4:
        raise InputError("the cross-modal benchmark needs the world's IR camera", expected="cameras >= 4",
                         got=str(protocol.cameras))
    world, data = protocol.world(), protocol
    ir_camera = protocol.cameras - 1
    rgb_cameras = tuple(range(ir_camera))
    cache: dict[InputSpec, CropSet] = {}

    def crops_for(spec: InputSpec, cameras: tuple[int, ...]) -> CropSet:
        """The same people in the same order for every spec, cut the way ``spec`` asks."""
        if spec not in cache:
            cache[spec] = scene_crops(data, person_spec=spec)[0]
        return crops_from_cameras(cache[spec], cameras)

    results: dict[str, dict[str, object]] = {}
    for label, system in systems.items():
        rgb = crops_for(system.rgb.spec, rgb_cameras)
        is_query, is_gallery = split_query_gallery(rgb.pids, rgb.cams)
        g_pids, g_cams = rgb.pids[is_gallery], rgb.cams[is_gallery]
        gallery = system.rgb(rgb.images[is_gallery])
        q_images, q_pids, q_cams = rgb.images[is_query], rgb.pids[is_query], rgb.cams[is_query]
        captions = [world.identity(int(pid)).text for pid in q_pids]
        row: dict[str, object] = {"R->R": _score(system.rgb(q_images), gallery, q_pids, g_pids, q_cams, g_cams)}
        examples = []
        if system.ir is not None:
            ir = crops_for(system.ir.spec, (ir_camera,))
            ir_embeddings = system.ir(ir.images)
            row["I->R"] = _score(ir_embeddings, gallery, ir.pids, g_pids, ir.cams, g_cams)
            examples += _sheet_rows(list(ir.images), ir_embeddings, ir.pids, gallery, rgb.images[is_gallery], g_pids)
        if system.sketch is not None:
            rng = np.random.default_rng((protocol.seed, 31))
            source = crops_for(system.sketch.spec, rgb_cameras)
            if not np.array_equal(source.pids, rgb.pids):
                raise RuntimeError("crops cut for two input specs are not the same people in the same order")
            drawn_from = source.images[is_query]
            sketches = np.stack([to_modality(image, "sketch", rng) for image in drawn_from])
            row["S->R"] = _score(system.sketch(sketches), gallery, q_pids, g_pids, q_cams, g_cams)
        if system.text is not None:
            pids = np.unique(g_pids)
            sentences = [world.identity(int(pid)).text for pid in pids]
            texts = system.text(sentences)
            row["T->R"] = _score(texts, gallery, pids, g_pids, np.full(len(pids), -1), g_cams)
            examples = _sheet_rows(sentences, texts, pids, gallery, rgb.images[is_gallery], g_pids) + examples
        if system.rgb_text is not None:
            fused = np.concatenate([system.rgb_text(q_images[i:i + 64], captions[i:i + 64])
                                    for i in range(0, len(q_images), 64)])
            row["R+T->R"] = _score(fused, gallery, q_pids, g_pids, q_cams, g_cams)
        if sheet and examples and not results:  # the first system's examples
            from edgereid.plots import retrieval_sheet

            retrieval_sheet(examples, sheet)
        row["notes"] = system.notes
        row["gallery"] = int(is_gallery.sum())
        results[label] = row
    return {"protocol": {**protocol.__dict__, "ir_camera": ir_camera}, "results": results}


def markdown_table(report: dict[str, object]) -> str:
    """One row per system: rank-1 / mAP for each query kind ("n/a" where it does not apply)."""
    lines = ["| model | " + " | ".join(QUERY_KINDS) + " |", "|---" * (len(QUERY_KINDS) + 1) + "|"]
    for label, row in report["results"].items():  # type: ignore[union-attr]
        cells = [f"{row[k]['rank1']:.3f} / {row[k]['mAP']:.3f}" if k in row else "n/a" for k in QUERY_KINDS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, object], path: str | Path) -> Path:
    from edgereid.fileio import atomic_write_text

    return atomic_write_text(path, json.dumps(report, indent=1))
