"""The hostile-user battery behind ``docs/reliability.md``: every bad input tried, what happens, and the test
that holds it.

Each case feeds one bad (or borderline) input to a real component (the pipeline with the bundled models,
the gallery, card and checkpoint readers, the engine sidecar reader, the config loader, the command line)
and records the outcome: the typed error raised (its class and first line) or "accepted". A case passes
when the outcome is what the project promises: a typed :class:`~edgereid.errors.EdgeReidError` for bad
input, a correct result where the input is merely unusual. ``tests/test_reliability_battery.py`` runs every
case in ``make test`` and checks the table is current; regenerate it with

    python -m tests.reliability_battery --write docs/reliability.md
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "samples" / "models"
NAN, INF = float("nan"), float("inf")


@dataclass
class Case:
    group: str
    what: str
    run: Callable[[], Any]
    accepted: bool = False  # the input is unusual but valid: it must give a result, not an error
    held_by: str = "tests/test_reliability_battery.py"


@dataclass
class Outcome:
    case: Case
    result: str
    passed: bool


def _frame(h: int = 240, w: int = 320) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


class World:
    """What the cases share: a pipeline on the bundled models, a temp folder, crafted files."""

    def __init__(self, folder: Path) -> None:
        from edgereid.pipeline import Pipeline

        self.folder = folder
        self.pipeline = Pipeline({"reid_model": str(MODELS / "reid/model.onnx"),
                                  "face_model": str(MODELS / "face/model.onnx"),
                                  "keypoint_model": str(MODELS / "keypoints/model.onnx"),
                                  "max_batch": 16, "min_face_size": 4, "cameras": {"front": {}, "back": {}},
                                  "max_boxes_per_frame": 64})

    def file(self, name: str, content: bytes | str) -> Path:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def submit(self, frame: Any = "good", boxes: Any = ((10, 10, 80, 200),), camera: Any = "front",
               timestamp: Any = 0.0, faces: Any = None) -> Any:
        frame = _frame() if isinstance(frame, str) and frame == "good" else frame
        return self.pipeline.process([frame], [boxes], camera, [timestamp], [faces])[0]


def frame_cases(world: World) -> list[Case]:
    held = "tests/test_properties.py, tests/ops/test_preprocess.py"
    bad = {"None": None, "a list of pixels": [[1, 2, 3]], "a string": "frame.jpg", "float32 pixels": _frame().astype(np.float32),
           "int16 pixels": _frame().astype(np.int16), "uint16 pixels": _frame().astype(np.uint16),
           "bool pixels": _frame() > 128, "a grey 2-D frame": _frame()[..., 0], "a BGRA frame": np.dstack([_frame(), _frame()[..., :1]]),
           "a 1-channel 3-D frame": _frame()[..., :1], "a 0x0 frame": np.zeros((0, 0, 3), np.uint8),
           "a 0-row frame": np.zeros((0, 320, 3), np.uint8), "a 0-column frame": np.zeros((240, 0, 3), np.uint8),
           "a 4-D stack of frames": _frame()[None], "a complex array": _frame().astype(np.complex64),
           "an object array": np.array([object()] * 3)}
    cases = [Case("frames", f"submit {name}", lambda f=f: world.submit(frame=f), held_by=held) for name, f in bad.items()]
    unusual = {"a non-contiguous view (every other column)": _frame(240, 640)[:, ::2],
               "a 1x1 frame with a 1-pixel box": (np.zeros((1, 1, 3), np.uint8), ((0, 0, 1, 1),)),
               "a frame of 2000x3000": np.zeros((2000, 3000, 3), np.uint8), "a read-only frame": _frame()}
    unusual["a read-only frame"].setflags(write=False)
    for name, value in unusual.items():
        frame, boxes = value if isinstance(value, tuple) else (value, ((10, 10, 80, 200),))
        cases.append(Case("frames", f"submit {name}", lambda f=frame, b=boxes: world.submit(frame=f, boxes=b),
                          accepted=True, held_by=held))
    return cases


def box_cases(world: World) -> list[Case]:
    held = "tests/pipeline/test_budgets.py, tests/test_properties.py, tests/ops/test_preprocess.py"
    bad = {"NaN coordinate": [[10, NAN, 80, 200]], "+inf coordinate": [[10, 10, INF, 200]],
           "-inf coordinate": [[-INF, 10, 80, 200]], "an inverted box": [[80, 200, 10, 10]],
           "a zero-area box": [[10, 10, 10, 200]], "a box entirely outside": [[500, 500, 600, 600]],
           "a box entirely left of the frame": [[-100, 10, -50, 200]], "1e30 coordinates": [[1e30, 1e30, 2e30, 2e30]],
           "a string box": [["a", "b", "c", "d"]], "a whole string": "10 10 80 200",
           "ragged rows": [[10, 10, 80, 200], [1, 2, 3]], "complex numbers": [[1 + 2j, 10, 80, 200]],
           "a generator": (b for b in [[10, 10, 80, 200]]), "a [N, 0] array": np.zeros((2, 0)),
           "a [N, 5] array": np.zeros((1, 5)), "a [N, 3] array": np.zeros((1, 3)), "a 3-D array": np.zeros((1, 1, 4)),
           "a dict": {"x1": 10}, "None for boxes": None, "65 boxes (max_boxes_per_frame 64)": [[10, 10, 80, 200]] * 65,
           "10,000 boxes": np.tile([[10, 10, 80, 200]], (10_000, 1)), "a sub-pixel box": [[10.2, 10.2, 10.4, 10.4]],
           "a box with one NaN row among good ones": [[10, 10, 80, 200], [NAN, 1, 2, 3]]}
    cases = [Case("boxes", name, lambda b=b: world.submit(boxes=b), held_by=held) for name, b in bad.items()]
    fine = {"no boxes (empty list)": [], "a box partly outside (clipped)": [[-20, -20, 80, 200]],
            "a box covering the whole frame": [[0, 0, 320, 240]], "int64 boxes": np.array([[10, 10, 80, 200]], np.int64),
            "boolean-free float16 boxes": np.array([[10, 10, 80, 200]], np.float16), "a 1-pixel box": [[5, 5, 6, 6]],
            "64 boxes (the limit)": [[10, 10, 80, 200]] * 64, "a box wider than the frame": [[-1e6, 10, 1e6, 200]]}
    cases += [Case("boxes", name, lambda b=b: world.submit(boxes=b), accepted=True, held_by=held) for name, b in fine.items()]
    return cases


def face_cases(world: World) -> list[Case]:
    from edgereid.types import FaceBoxes

    held = "tests/pipeline/test_failure_isolation.py, tests/test_properties.py"
    good = [[35, 38], [45, 38], [40, 43], [36, 47], [44, 47]]

    def faces(boxes: Any, landmarks: Any = None) -> Any:
        return world.submit(faces=FaceBoxes(boxes, landmarks))

    bad = {"coincident landmarks": lambda: faces([[30, 30, 50, 52]], np.full((1, 5, 2), 40.0)),
           "landmarks of another face": lambda: faces([[30, 30, 50, 52]], [[[200, 200]] * 5]),
           "NaN landmarks": lambda: faces([[30, 30, 50, 52]], [[[NAN, 1]] * 5]),
           "4 landmarks": lambda: faces([[30, 30, 50, 52]], [good[:4]]),
           "landmarks for 2 faces, 1 box": lambda: faces([[30, 30, 50, 52]], [good, good]),
           "string landmarks": lambda: faces([[30, 30, 50, 52]], "eyes"),
           "a NaN face box": lambda: faces([[30, NAN, 50, 52]]),
           "a face box outside the frame": lambda: faces([[900, 900, 950, 950]]),
           "ragged face boxes": lambda: faces([[30, 30, 50, 52], [1, 2]]),
           "faces as a plain string": lambda: world.submit(faces="face"),
           "faces without a face model": lambda: _no_face_model(world)}
    cases = [Case("faces", name, run, held_by=held) for name, run in bad.items()]
    fine = {"a face cut by the frame edge, landmarks inside its box": lambda: faces(
                [[-20, 30, 30, 80]], [[[-8, 45], [14, 45], [2, 56], [-6, 67], [12, 67]]]),
            "a 2-pixel face (below min_face_size: flagged, not embedded)": lambda: faces([[30, 30, 32, 32]]),
            "faces as a plain [N, 4] array": lambda: world.submit(faces=np.array([[30, 30, 50, 52]])),
            "a face with good landmarks": lambda: faces([[30, 30, 50, 52]], [good])}
    cases += [Case("faces", name, run, accepted=True, held_by=held) for name, run in fine.items()]
    return cases


def _no_face_model(world: World) -> Any:
    from edgereid.pipeline import Pipeline

    with Pipeline({"reid_model": str(MODELS / "reid/model.onnx")}) as pipeline:
        return pipeline.process([_frame()], [[[10, 10, 80, 200]]], "cam", faces=[np.array([[30, 30, 50, 52]])])


def camera_cases(world: World) -> list[Case]:
    held = "tests/pipeline/test_pipeline.py"
    cases = [Case("cameras and timestamps", f"camera id {name}", lambda c=c: world.submit(camera=c), held_by=held)
             for name, c in {"not declared in the config": "side", "that is None": None, "1 (an int)": 1,
                             "a list of two for one frame": ["front", "back"]}.items()]
    cases += [Case("cameras and timestamps", f"timestamp {name}", lambda t=t: world.submit(timestamp=t), held_by=held)
              for name, t in {"'noon'": "noon", "None": None, "a list": [1.0], "NaN": NAN, "inf": INF}.items()]
    cases += [Case("cameras and timestamps", "timestamp as the string '1.5'", lambda: world.submit(timestamp="1.5"),
                   accepted=True, held_by=held)]
    return cases


def model_file_cases(world: World) -> list[Case]:
    from edgereid.card import read_card, write_card
    from edgereid.runtime.backends import load_backend

    held = "tests/test_card.py, tests/runtime/test_backend_lifecycle.py"
    reid = MODELS / "reid/model.onnx"
    card = read_card(reid)
    onnx_bytes = reid.read_bytes()
    lying = {"a card with the wrong input size": card.replace(input=_replace(card.input, height=card.input.height + 8)),
             "a card naming another input": card.replace(input=_replace(card.input, name="pixels")),
             "a card declaring float16 input": card.replace(input=_replace(card.input, dtype="float16")),
             "a card naming a missing output": card.replace(outputs=(_output("feat", 512),)),
             "a card with the wrong embedding dims": card.replace(outputs=(_output("embedding", 7),), embedding_dim=7)}
    files = {"a missing file": world.folder / "absent.onnx", "an empty file": world.file("empty.onnx", b""),
             "a text file": world.file("text.onnx", "hello"), "a truncated ONNX": world.file("cut.onnx", onnx_bytes[:5000]),
             "a directory": world.folder, "a .pt file": world.file("model.pt", b"x"),
             "a .pkl file": world.file("model.pkl", b"x"), "an ONNX without a card": _strip_card(world, reid)}
    cases = [Case("model files", f"load {name}", lambda p=p: load_backend(p), held_by=held) for name, p in files.items()]
    for name, lie in lying.items():
        path = world.folder / f"lying_{len(cases)}.onnx"
        write_card(reid, lie, path)
        cases.append(Case("model files", f"load {name}", lambda p=path: load_backend(p), held_by=held))
    cases.append(Case("model files", "a card JSON with null outputs",
                      lambda: _card_json({**json.loads(card.to_json()), "outputs": None}), held_by="tests/test_properties.py"))
    cases.append(Case("model files", "a card asking for a 100000x100000 input",
                      lambda: _card_json({**json.loads(card.to_json()), "input": {**json.loads(card.to_json())["input"],
                                                                                   "height": 100_000, "width": 100_000}}),
                      held_by="tests/test_card.py"))
    cases.append(Case("model files", "a card of an unknown task", lambda: _card_json({**json.loads(card.to_json()),
                                                                                      "task": "weather"}), held_by=held))
    cases.append(Case("model files", "a card written by a newer schema", lambda: _card_json(
        {**json.loads(card.to_json()), "schema_version": 999}), held_by=held))
    return cases


def _replace(spec: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(spec, **changes)


def _output(name: str, dim: int) -> Any:
    from edgereid.card import OutputSpec

    return OutputSpec(name, "embedding", (dim,))


def _card_json(data: dict[str, Any]) -> Any:
    from edgereid.card import ModelCard

    return ModelCard.from_json(json.dumps(data))


def _strip_card(world: World, source: Path) -> Path:
    import onnx

    model = onnx.load(str(source))
    del model.metadata_props[:]
    path = world.folder / "no_card.onnx"
    onnx.save(model, str(path))
    return path


def sidecar_cases(world: World) -> list[Case]:
    from edgereid.engine_file import check_engine, plugin_libraries, read_sidecar

    held = "tests/exporting/test_engine.py, tests/test_reliability_battery.py"
    engine = world.file("engines/m.engine", b"\x00" * 64)
    import hashlib

    good = {"sidecar_version": 1, "card": {}, "engine_bytes": 64, "engine_sha256": hashlib.sha256(engine.read_bytes()).hexdigest(),
            "key": {"flavour": "tensorrt", "trt_version": "10.3.0", "compute_capability": "8.7"}, "plugins": [],
            "plugin_sha256": {}, "rebuild": "python export/build_engine.py ..."}

    def with_sidecar(sidecar: Any, check: Callable[[Path, dict], Any]) -> Callable[[], Any]:
        def run() -> Any:
            Path(str(engine) + ".json").write_text(sidecar if isinstance(sidecar, str) else json.dumps(sidecar))
            return check(engine, read_sidecar(engine))
        return run

    def plugins(sidecar: Any) -> Callable[[], Any]:
        return with_sidecar(sidecar, lambda e, s: plugin_libraries(e, s))

    def checked(sidecar: Any) -> Callable[[], Any]:
        return with_sidecar(sidecar, lambda e, s: check_engine(e, "10.3.0", "tensorrt", "8.7"))

    world.file("engines/libplugin.so", b"\x7fELF fake")
    outside = world.file("elsewhere/libevil.so", b"\x7fELF evil")
    bad = {"a plugin given by absolute path": plugins({**good, "plugins": [str(outside)]}),
           "a plugin reached through ../": plugins({**good, "plugins": ["../elsewhere/libevil.so"]}),
           "a plugin whose hash is not recorded": plugins({**good, "plugins": ["libplugin.so"]}),
           "a plugin that changed after the build": plugins({**good, "plugins": ["libplugin.so"],
                                                             "plugin_sha256": {"libplugin.so": "0" * 64}}),
           "a plugin named '..'": plugins({**good, "plugins": [".."]}),
           "a sidecar that is not JSON": checked("{not json"), "a sidecar that is a JSON list": checked("[1, 2]"),
           "a sidecar without a key": checked({k: v for k, v in good.items() if k != "key"}),
           "a sidecar of 2 MB": checked("[" + "0," * (1 << 20) + "0]"),
           "an engine altered after its build": checked({**good, "engine_sha256": "0" * 64}),
           "an engine built for another TensorRT": checked({**good, "key": {**good["key"], "trt_version": "11.0"}}),
           "an engine built for another GPU": checked({**good, "key": {**good["key"], "compute_capability": "9.0"}}),
           "an engine without a sidecar": lambda: (Path(str(engine) + ".json").unlink(missing_ok=True), read_sidecar(engine))}
    cases = [Case("engine sidecars", name, run, held_by=held) for name, run in bad.items()]
    cases.append(Case("engine sidecars", "a plugin beside the engine with its recorded hash", plugins(
        {**good, "plugins": ["libplugin.so"], "plugin_sha256": {"libplugin.so": hashlib.sha256(b"\x7fELF fake").hexdigest()}}),
        accepted=True, held_by=held))
    return cases


def gallery_cases(world: World) -> list[Case]:
    import zipfile

    from edgereid.gallery import Gallery

    held = "tests/test_gallery.py, tests/test_gallery_crash.py"
    card = world.pipeline.models["reid_model"].card
    gallery = Gallery(card)
    gallery.enroll("alice", np.eye(card.embedding_dim)[0])
    gallery.enroll("bob", np.eye(card.embedding_dim)[1])
    good = gallery.save(world.folder / "galleries/good.npz")
    data = good.read_bytes()

    def rewritten(name: str, change: Callable[[dict], None]) -> Path:
        from tests.test_gallery import rewrite_with_checksum

        path = world.file(f"galleries/{name}.npz", data)
        rewrite_with_checksum(path, change)
        return path

    def bomb() -> Path:
        path = world.folder / "galleries/bomb.npz"
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for info in source.infolist():
                out.writestr(info.filename, source.read(info) + (bytes(300 << 20) if info.filename == "labels.npy" else b""))
        return path

    files = {"a missing file": world.folder / "galleries/absent.npz", "a truncated file": world.file("galleries/cut.npz", data[:len(data) // 2]),
             "a file with corrupted bytes": world.file("galleries/flip.npz", data[:400] + bytes(b ^ 0xFF for b in data[400:460]) + data[460:]),
             "a text file": world.file("galleries/text.npz", "hello"), "an empty file": world.file("galleries/empty.npz", b""),
             "a zip with other entries": _zip_with(world, {"evil.npy": b"x"}),
             "a 0.3 MB file that inflates to 300 MB": bomb(),
             "re-checksummed vectors scaled by 11.8": rewritten("scaled", lambda a: a.__setitem__("vectors", a["vectors"] * np.float32(11.8))),
             "a re-checksummed NaN row": rewritten("nan", lambda a: a["vectors"].__setitem__((0, 0), np.nan)),
             "a re-checksummed empty label": rewritten("label", lambda a: a.__setitem__("labels", np.array(["", "bob"]))),
             "a re-checksummed infinite threshold": rewritten("thr", lambda a: a.__setitem__("threshold", np.array(np.inf))),
             "re-checksummed float64 vectors": rewritten("f64", lambda a: a.__setitem__("vectors", a["vectors"].astype(np.float64))),
             "a file from a newer edgereid": rewritten("newer", lambda a: a.__setitem__("format_version", np.array(99)))}
    cases = [Case("galleries", f"load {name}", lambda p=p: Gallery.load(p), held_by=held) for name, p in files.items()]
    other = card.replace(provenance=_replace(card.provenance, checkpoint_sha256="another"))
    cases += [Case("galleries", "open a Milvus URI without a collection", lambda: Gallery.open("milvus://server:19530/"),
                   held_by="tests/test_gallery_milvus.py"),
              Case("galleries", "load with a card of another embedding space", lambda: Gallery.load(good, other), held_by=held),
              Case("galleries", "enroll a zero vector", lambda: Gallery(card).enroll("x", np.zeros(card.embedding_dim)), held_by=held),
              Case("galleries", "enroll a NaN vector", lambda: Gallery(card).enroll("x", np.full(card.embedding_dim, NAN)), held_by=held),
              Case("galleries", "enroll a vector of the wrong size", lambda: Gallery(card).enroll("x", np.ones(3)), held_by=held),
              Case("galleries", "enroll under an empty name", lambda: Gallery(card).enroll("", np.ones(card.embedding_dim)), held_by=held),
              Case("galleries", "search with k = 0", lambda: gallery.search(np.ones(card.embedding_dim), k=0), held_by=held),
              Case("galleries", "a NaN accept threshold", lambda: setattr(gallery, "threshold", NAN), held_by=held),
              Case("galleries", "save into a path under a regular file", lambda: gallery.save(world.file("plain", "x") / "g.npz"), held_by=held),
              Case("galleries", "load the good file back", lambda: Gallery.load(good), accepted=True, held_by=held)]
    return cases


def track_cases(world: World) -> list[Case]:
    held = "tests/pipeline/test_track_reuse.py"
    boxes = ((10, 10, 80, 200), (100, 30, 170, 220))

    def tracked(ids: Any, face_ids: Any = None, faces: Any = None) -> Any:
        return world.pipeline.process([_frame()], [boxes], "front", [0.0], [faces], track_ids=[ids],
                                      face_track_ids=[face_ids])[0]

    bad = {"one track id for two boxes": [1], "three track ids for two boxes": [1, 2, 3],
           "a fractional track id": [1.5, 2], "a NaN track id": [NAN, 2], "an infinite track id": [INF, 2],
           "string track ids": ["a", "b"], "a track id of 2**60": [2 ** 60, 1]}
    cases = [Case("track ids", name, lambda i=i: tracked(i), held_by=held) for name, i in bad.items()]
    cases.append(Case("track ids", "face track ids without faces", lambda: tracked([1, 2], [7]), held_by=held))
    fine = {"-1 for untracked boxes": [-1, 2], "whole numbers as floats (BoxMOT)": np.array([3.0, 4.0]),
            "the same id twice in one frame": [5, 5]}
    cases += [Case("track ids", name, lambda i=i: tracked(i), accepted=True, held_by=held) for name, i in fine.items()]
    return cases


def _zip_with(world: World, entries: dict[str, bytes]) -> Path:
    import zipfile

    path = world.folder / "galleries/other.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def checkpoint_cases(world: World) -> list[Case]:
    from edgereid.runtime.backends import load_backend

    held = "tests/models/test_students.py"
    source = MODELS / "reid/model.safetensors"
    data = source.read_bytes()
    files = {"a missing checkpoint": world.folder / "absent.safetensors",
             "a pickle renamed .safetensors": world.file("pickle.safetensors", b"\x80\x04\x95 not a checkpoint"),
             "a truncated checkpoint": world.file("cut.safetensors", data[:1000]),
             "a header length of 2**62 bytes": world.file("huge.safetensors", (1 << 62).to_bytes(8, "little") + b"{}"),
             "an empty checkpoint": world.file("empty.safetensors", b"")}
    cases = [Case("checkpoints", f"load {name}", lambda p=p: load_backend(p), held_by=held) for name, p in files.items()]
    cases += [Case("checkpoints", f"load a header asking for {name}", lambda a=a: load_backend(_edited_checkpoint(world, a)),
                   held_by=held) for name, a in {"a 50,000,000-wide embedding": {"embedding_dim": 50_000_000},
                                                  "an unknown argument": {"colour": "red"},
                                                  "arguments that are a list": [1, 2]}.items()]
    return cases


def _edited_checkpoint(world: World, args: Any) -> Path:
    from safetensors.torch import load_file, save_file

    from edgereid.models.checkpoint import read_checkpoint_header

    source = MODELS / "reid/model.safetensors"
    header = read_checkpoint_header(source)
    stored = json.loads(header["edgereid.args"])
    header["edgereid.args"] = json.dumps({**stored, **args} if isinstance(args, dict) else args)
    path = world.folder / f"edited_{abs(hash(json.dumps(args)))}.safetensors"
    save_file(load_file(str(source)), str(path), metadata=header)
    return path


def config_cases(world: World) -> list[Case]:
    from edgereid.config import load_yaml
    from edgereid.methods.runs import load_run_config
    from edgereid.pipeline import PipelineConfig

    held = "tests/test_config.py, tests/test_properties.py"
    yaml_files = {"a duplicate key": "reid_model: a.onnx\nreid_model: b.onnx\n",
                  "an alias bomb (9 levels of 10)": "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"] + [
                      f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]) + "\nreid_model: m.onnx\n",
                  "a recursive alias": "a: &a [*a]\nreid_model: m.onnx\n", "non-UTF-8 bytes": b"reid_model: \xff\xfe\n",
                  "a 2 MB file": "reid_model: m.onnx\n#" + "x" * (2 << 20) + "\n", "a top-level list": "- 1\n- 2\n",
                  "an empty file": "", "invalid YAML": "reid_model: [unclosed\n", "a binary blob": bytes(range(256))}
    cases = [Case("configs", f"YAML with {name}", lambda p=world.file(f"cfg/{i}.yaml", t): PipelineConfig.load(p),
                  held_by=held) for i, (name, t) in enumerate(yaml_files.items())]
    values = {"max_wait_ms: NaN": {"max_wait_ms": NAN}, "max_wait_ms: inf": {"max_wait_ms": INF},
              "max_wait_ms: -1": {"max_wait_ms": -1}, "max_batch: -4": {"max_batch": -4}, "max_batch: 0": {"max_batch": 0},
              "max_batch: 1000000000": {"max_batch": 10**9}, "max_batch: 8.5": {"max_batch": 8.5}, "max_batch: true": {"max_batch": True},
              "threads: 0": {"threads": 0}, "min_face_size: -1": {"min_face_size": -1}, "queue_size: 0": {"queue_size": 0},
              "queue_megabytes: 0": {"queue_megabytes": 0}, "max_boxes_per_frame: 0": {"max_boxes_per_frame": 0},
              "results_size: 0": {"results_size": 0}, "drop_policy: newest": {"drop_policy": "newest"},
              "a misspelt key (max_batc)": {"max_batc": 8}, "a camera of modality 'uv'": {"cameras": {"a": {"modality": "uv"}}},
              "cameras as a list": {"cameras": ["a"]}, "providers as a string": {"providers": 5},
              "no model at all": {"reid_model": None}}
    cases += [Case("configs", f"pipeline {name}", lambda v=v: PipelineConfig.load({"reid_model": "m.onnx", **v}),
                   held_by=held) for name, v in values.items()]
    cases.append(Case("configs", "camera ids 010 and 7 (kept as the strings '010' and '7')",
                      lambda: _check(sorted(PipelineConfig.load(world.file("cfg/cams.yaml", "reid_model: m.onnx\ncameras:\n  010: {}\n  7: {}\n")).cameras) == ["010", "7"]),
                      accepted=True, held_by=held))
    run_overrides = {"batch_size: -1": {"batch_size": -1}, "optim.lr: NaN": {"optim.lr": NAN}, "optim.epochs: -3": {"optim.epochs": -3},
                     "optim.threads: 0": {"optim.threads": 0}, "data.identities: 0": {"data.identities": 0},
                     "data.pace: inf": {"data.pace": INF}, "method: dcac (a train method, via distill)": None,
                     "an unknown method": {"method": "magic"}}
    for name, override in run_overrides.items():
        verb = "distill" if override is None else "train"
        cases.append(Case("configs", f"run config {name}", lambda o=override, v=verb: load_run_config(
            REPO / "samples/configs/reid_supervised.yaml", o or {}, v), held_by=held))
    cases.append(Case("configs", "a distill config with both model and student", lambda: load_run_config(
        REPO / "samples/configs/stable_keypoints_student.yaml", {"model": "x"}, "distill"), held_by="tests/methods/test_supervised.py"))
    cases.append(Case("configs", "a distill config with the old key model (deprecated, still loads)", lambda: _quiet_load(
        world.file("cfg/old.yaml", "method: stable_keypoints\nmodel: kp\nout: x\ncrops: c\nlabels: l\n")),
        accepted=True, held_by="tests/methods/test_supervised.py"))
    cases.append(Case("configs", "load_yaml of a missing file", lambda: load_yaml(world.folder / "absent.yaml"), held_by=held))
    return cases


def _quiet_load(path: Path) -> Any:
    import warnings

    from edgereid.methods.runs import load_run_config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return load_run_config(path, {}, "distill")


def _check(condition: bool) -> None:
    if not condition:
        raise AssertionError("unexpected value")


def lifecycle_cases(world: World) -> list[Case]:
    from edgereid.errors import BackendClosedError
    from edgereid.pipeline import Pipeline
    from edgereid.runtime.backends import load_backend

    held = "tests/pipeline/test_failure_isolation.py, tests/runtime/test_backend_lifecycle.py"

    def closed_pipeline(action: str) -> Any:
        pipeline = Pipeline({"reid_model": str(MODELS / "reid/model.onnx")})
        pipeline.close()
        if action == "submit":
            return pipeline.submit(_frame(), [[10, 10, 80, 200]], "cam", 0.0)
        return pipeline.process([_frame()], [[[10, 10, 80, 200]]], "cam")

    def closed_backend() -> Any:
        backend = load_backend(MODELS / "reid/model.onnx")
        backend.close()
        return backend.infer(np.zeros((1, 3, backend.card.input.height, backend.card.input.width), np.float32))

    def wrong_batch(shape: tuple[int, ...], dtype: Any = np.float32) -> Callable[[], Any]:
        def run() -> Any:
            with load_backend(MODELS / "reid/model.onnx") as backend:
                return backend.infer(np.zeros(shape, dtype))
        return run

    cases = [Case("lifecycle and backends", "submit after close", lambda: closed_pipeline("submit"), held_by=held),
             Case("lifecycle and backends", "process after close", lambda: closed_pipeline("process"), held_by=held),
             Case("lifecycle and backends", "infer on a closed backend", closed_backend, held_by=held),
             Case("lifecycle and backends", "infer a batch of the wrong size", wrong_batch((1, 3, 64, 64)), held_by=held),
             Case("lifecycle and backends", "infer a 3-D batch", wrong_batch((3, 128, 64)), held_by=held),
             Case("lifecycle and backends", "infer a float64 batch", wrong_batch((1, 3, 128, 64), np.float64), held_by=held),
             Case("lifecycle and backends", "infer a list", lambda: load_backend(MODELS / "reid/model.onnx").infer([1, 2]), held_by=held),
             Case("lifecycle and backends", "an unknown ONNX Runtime provider", lambda: load_backend(
                 MODELS / "reid/model.onnx", providers=("MagicExecutionProvider",)), held_by=held),
             Case("lifecycle and backends", "torch on a CUDA device that is not there", lambda: load_backend(
                 MODELS / "reid/model.safetensors", providers=("cuda",)), held_by="tests/runtime/test_backends_gpu.py"),
             Case("lifecycle and backends", "close a pipeline twice", lambda: _close_twice(), accepted=True, held_by=held),
             Case("lifecycle and backends", "a closed backend closed again", lambda: _close_backend_twice(), accepted=True,
                  held_by=held)]
    del BackendClosedError
    return cases


def _close_twice() -> None:
    from edgereid.pipeline import Pipeline

    pipeline = Pipeline({"reid_model": str(MODELS / "reid/model.onnx")})
    pipeline.close()
    pipeline.close()


def _close_backend_twice() -> None:
    from edgereid.runtime.backends import load_backend

    backend = load_backend(MODELS / "reid/model.onnx")
    backend.close()
    backend.close()


def cli_cases(world: World) -> list[Case]:
    sys.path.insert(0, str(REPO))
    from tests.test_cli_errors import CASES

    from edgereid.cli import main

    def run(argv: list[str]) -> Any:
        argv = [part.format(bad=world.folder) for part in argv]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        if code != 2 or "Traceback" in stderr.getvalue():
            raise AssertionError(f"exit {code}")
        raise _CliRefusal(stderr.getvalue().strip().splitlines()[-1 if "usage" in stderr.getvalue() else 0][:120])

    world.file("bad.onnx", "not onnx")
    world.file("regular_file", "x")
    return [Case("command line", "edgereid " + " ".join(argv).replace("{bad}", "DIR")[:90], lambda a=argv: run(a),
                 held_by="tests/test_cli_errors.py") for argv in CASES]


class _CliRefusal(Exception):
    """The command line exited 2 with this message (what the row records)."""


GROUPS = (frame_cases, box_cases, face_cases, camera_cases, track_cases, model_file_cases, sidecar_cases,
          gallery_cases, checkpoint_cases, config_cases, lifecycle_cases, cli_cases)


def run_all(folder: Path) -> list[Outcome]:
    from edgereid.errors import EdgeReidError

    world = World(folder)
    outcomes = []
    try:
        for group in GROUPS:
            for case in group(world):
                try:
                    case.run()
                except _CliRefusal as exc:
                    outcomes.append(Outcome(case, f"exit 2: {exc}", not case.accepted))
                except EdgeReidError as exc:
                    first = str(exc).splitlines()[0][:110]
                    outcomes.append(Outcome(case, f"{type(exc).__name__}: {first}", not case.accepted))
                except Exception as exc:  # noqa: BLE001 - an untyped failure is what the battery looks for
                    outcomes.append(Outcome(case, f"UNTYPED {type(exc).__name__}: {str(exc)[:100]}", False))
                else:
                    outcomes.append(Outcome(case, "accepted: a correct result", case.accepted))
    finally:
        world.pipeline.close()
    for outcome in outcomes:  # the table shows where files were, not this run's temp folder
        outcome.result = outcome.result.replace(str(folder), "DIR")
    return outcomes


def markdown(outcomes: list[Outcome]) -> str:
    lines = ["# Reliability: bad inputs and what happens", "",
             "Generated by `python -m tests.reliability_battery --write docs/reliability.md` (the battery runs in",
             "`make test`: `tests/test_reliability_battery.py`). Every row is a real input fed to a real component:",
             "the pipeline with the bundled models, the gallery, card, checkpoint and sidecar readers, the config",
             "loader and the command line. \"accepted\" rows are unusual inputs that must give a correct result.", "",
             f"{len(outcomes)} cases; {sum(o.passed for o in outcomes)} behave as promised.", ""]
    group = None
    for outcome in outcomes:
        if outcome.case.group != group:
            group = outcome.case.group
            lines += ["", f"## {group}", "", "| input | what happens | held by |", "|---|---|---|"]
        result = outcome.result.replace("|", "/").replace("\n", " ")
        lines.append(f"| {outcome.case.what.replace('|', '/')} | {result} | {outcome.case.held_by} |")
    return "\n".join(lines) + "\n" + FIGURES


FIGURES = """
## Crash, fuzzing and soak figures

- **Killed gallery writers** (`scripts/gallery_kill_test.py`; 50 kills in `make test`,
  `tests/test_gallery_crash.py`): see BENCHMARKS.md, "Reliability", for the 1,000-kill run.
- **Property tests** (`tests/test_properties.py`, hypothesis): random frames, boxes, landmarks, card JSON
  and pipeline configs, 60 examples per property per run; only typed errors or correct results, and a
  random second frame never changes the first frame's embeddings or keypoints.
- **Soak** (`scripts/soak.py`): see BENCHMARKS.md, "Reliability".
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", help="write the markdown table here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        outcomes = run_all(Path(folder))
    text = markdown(outcomes)
    if args.write:
        Path(args.write).write_text(text)
    failed = [o for o in outcomes if not o.passed]
    print(f"{len(outcomes)} cases, {len(failed)} not as promised")
    for outcome in failed:
        print(f"  {outcome.case.group}: {outcome.case.what}: {outcome.result}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
