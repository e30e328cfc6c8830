"""Card tools for model files: a card for a third-party ONNX file, and the inspect report of a model file.

This module owns what ``edgereid card attach`` and ``edgereid inspect`` do with a model, apart from their
command lines: :func:`card_for_onnx` builds a :class:`~edgereid.card.ModelCard` for an ONNX file edgereid
did not write, from the caller's input spec and declared outputs (:func:`parse_output_spec` reads the
``NAME:KIND:DIMS`` form) and what the ONNX Runtime session reports; :func:`inspect_model` gathers a model
file's size, producer, opset, graph inputs and outputs and card, and :func:`format_inspect_report` writes
them as text. It sits on the core floor: it imports only ``card``, ``errors``, ``fileio`` and
``ort_session`` from edgereid (onnxruntime, and onnx for the opset, only when called).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from edgereid.card import InputSpec, ModelCard, OutputSpec, Provenance, card_from_metadata, file_sha256
from edgereid.errors import EdgeReidError, ModelCardError
from edgereid.ort_session import open_session


def parse_output_spec(text: str) -> OutputSpec:
    """``"emb:embedding:512"`` or ``"heat:heatmaps:17x64x48"`` (``NAME:KIND:DIMS``) as an output spec."""
    try:
        name, kind, dims = text.split(":")
        return OutputSpec(name, kind, tuple(int(d) for d in dims.split("x") if d))
    except ValueError as exc:
        raise EdgeReidError(f"bad --output '{text}'", expected="NAME:KIND:DIMS, e.g. emb:embedding:512 or "
                            "heat:heatmaps:17x64x48") from exc


def card_for_onnx(path: str | Path, *, task: str, height: int, width: int,
                  mean: Sequence[float] = InputSpec.mean, std: Sequence[float] = InputSpec.std,
                  color_order: str = InputSpec.color_order, resize: str = InputSpec.resize,
                  outputs: Sequence[OutputSpec] = (), name: str | None = None, layout: str = InputSpec.layout,
                  dtype: str = InputSpec.dtype, channels: int = InputSpec.channels,
                  normalize: str = InputSpec.normalize, keypoint_decode: str = "coords",
                  simcc_split_ratio: float = 2.0, face_template: str = InputSpec.face_template) -> ModelCard:
    """The card of a third-party ONNX file: its input is fed as given (the graph's first input, by name).

    Without ``outputs`` they are read from the graph: one fixed-size output is the ``embedding`` of a ReID or
    face model; a keypoint model decoded from raw heatmaps has one ``heatmaps`` output, a SimCC model two,
    told apart by their lengths (width and height times the split ratio); in-graph coordinates must be
    declared. The provenance records the file's SHA-256. Writing the card into the file is the caller's
    (:func:`edgereid.card.write_card`).
    """
    path = Path(path)
    session = open_session(path, error=ModelCardError)
    outputs = tuple(outputs) or _outputs_from_graph(session.get_outputs(), task, keypoint_decode,
                                                    (height * simcc_split_ratio, width * simcc_split_ratio))
    embedding = [o for o in outputs if o.kind == "embedding"]
    card = ModelCard(
        name=name or path.stem, task=task,
        input=InputSpec(name=session.get_inputs()[0].name, height=height, width=width, color_order=color_order,
                        mean=_three(mean), std=_three(std), resize=resize, layout=layout, dtype=dtype,
                        channels=channels, normalize=normalize, face_template=face_template),
        outputs=outputs, embedding_dim=embedding[0].dims[0] if embedding else 0,
        provenance=Provenance(checkpoint_sha256=file_sha256(path), source=f"attached to {path.name}"),
        keypoint_decode=keypoint_decode, simcc_split_ratio=simcc_split_ratio)
    check_card_against_graph(card, session.get_inputs(), session.get_outputs(), str(path))
    return card


def _outputs_from_graph(graph_outputs: Sequence[Any], task: str, decode: str,
                        simcc_lengths: tuple[float, float]) -> tuple[OutputSpec, ...]:
    """The outputs a card declares, read from the graph where it can be told what they are."""
    shapes = [(o.name, tuple(o.shape[1:])) for o in graph_outputs]
    if any(not all(isinstance(d, int) for d in dims) for _, dims in shapes):
        raise EdgeReidError("the graph's output sizes are symbolic", got=str(shapes),
                            fix="declare them: --output NAME:KIND:DIMS per output")
    if task != "keypoints" and len(shapes) == 1:
        return (OutputSpec(shapes[0][0], "embedding", shapes[0][1]),)
    if task == "keypoints" and decode in ("heatmap", "heatmap_udp") and len(shapes) == 1:
        return (OutputSpec(shapes[0][0], "heatmaps", shapes[0][1]),)
    if task == "keypoints" and decode == "simcc" and len(shapes) == 2:
        y_length, x_length = simcc_lengths
        by_length = {dims[-1]: (name, dims) for name, dims in shapes}
        if x_length != y_length and set(by_length) == {x_length, y_length}:
            (x_name, x_dims), (y_name, y_dims) = by_length[x_length], by_length[y_length]
            return OutputSpec(x_name, "simcc_x", x_dims), OutputSpec(y_name, "simcc_y", y_dims)
    raise EdgeReidError("this model's outputs must be declared", got=str(shapes),
                        fix="pass --output NAME:KIND:DIMS per output (kinds: embedding, heatmaps, coords, "
                            "confidence, simcc_x, simcc_y)")


def _three(values: Sequence[float]) -> tuple[float, float, float]:
    """Per-channel statistics from 3 values, or 1 value used for every channel (scalar normalisation)."""
    values = tuple(float(v) for v in values)
    return values * 3 if len(values) == 1 else values  # type: ignore[return-value]


# ONNX Runtime's tensor types for the card's input dtypes
_ORT_INPUT_TYPES = {"float32": "tensor(float)", "float16": "tensor(float16)", "uint8": "tensor(uint8)"}


def check_card_against_graph(card: ModelCard, inputs: Sequence[Any], outputs: Sequence[Any], where: str) -> None:
    """Refuse a card that disagrees with its graph, before any frame is run: one input, named as the card says,
    rank 4 NCHW with 3 channels, the card's dtype and (where the graph fixes them) height and width; every
    declared output present with the declared dims. ``inputs``/``outputs`` are ONNX Runtime's node args
    (``name``, ``shape``, ``type``); symbolic dimensions match anything."""
    def refuse(problem: str, expected: str, got: str) -> ModelCardError:
        return ModelCardError(f"the card of {where} disagrees with its graph: {problem}", expected=expected,
                              got=got, fix="re-attach a card that describes the graph (edgereid card attach)")

    if len(inputs) != 1:
        raise refuse("edgereid models take one image batch", "1 graph input", f"{[i.name for i in inputs]}")
    graph_input, spec = inputs[0], card.input
    if graph_input.name != spec.name:
        raise refuse("input name", repr(spec.name), repr(graph_input.name))
    shape = list(graph_input.shape)
    wanted = list(spec.batch_shape(None))
    if len(shape) != 4 or any(isinstance(d, int) and w is not None and d != w for d, w in zip(shape, wanted)):
        raise refuse("input shape", f"[N, {', '.join(map(str, wanted[1:]))}] ({spec.layout})", str(shape))
    if graph_input.type != _ORT_INPUT_TYPES[spec.dtype]:
        raise refuse("input dtype", f"{_ORT_INPUT_TYPES[spec.dtype]} ({spec.dtype})", graph_input.type)
    graph_outputs = {o.name: list(o.shape) for o in outputs}
    for declared in card.outputs:
        if declared.name not in graph_outputs:
            raise refuse(f"output '{declared.name}' is not in the graph", "one of " + str(sorted(graph_outputs)),
                         repr(declared.name))
        dims = graph_outputs[declared.name][1:]
        if len(dims) != len(declared.dims) or any(isinstance(d, int) and d != w for d, w in zip(dims, declared.dims)):
            raise refuse(f"dims of output '{declared.name}'", str(list(declared.dims)), str(dims))


def _opset(path: Path) -> str:
    """The default-domain opset, read with onnx when it is installed."""
    try:
        import onnx
    except ImportError:
        return "unknown (install edgereid[export])"
    model = onnx.load(str(path), load_external_data=False)
    return str(next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "unknown"))


def inspect_model(path: str | Path) -> dict[str, Any]:
    """What ``edgereid inspect`` reports on an ONNX file with a card.

    Keys: ``path``, ``size_bytes``, ``producer``, ``opset`` (text), ``inputs`` and ``outputs`` (lists of
    ``{"name", "type", "shape"}`` as ONNX Runtime reports them) and ``card`` (the :class:`ModelCard`).
    A file without a card raises :class:`ModelCardError`, whose fix names ``edgereid card attach``.
    """
    path = Path(path)
    session = open_session(path, error=ModelCardError)
    meta = session.get_modelmeta()
    card = card_from_metadata(meta.custom_metadata_map, str(path))

    def values(nodes: Sequence[Any]) -> list[dict[str, Any]]:
        return [{"name": node.name, "type": node.type, "shape": node.shape} for node in nodes]

    return {"path": str(path), "size_bytes": path.stat().st_size, "producer": meta.producer_name,
            "opset": _opset(path), "inputs": values(session.get_inputs()), "outputs": values(session.get_outputs()),
            "card": card}


def format_inspect_report(report: dict[str, Any]) -> str:
    """The text ``edgereid inspect`` prints for a report of :func:`inspect_model`."""
    lines = [f"{report['path']}  ({report['size_bytes'] / 1e6:.2f} MB, producer {report['producer']}, "
             f"opset {report['opset']})"]
    for kind in ("input", "output"):
        for value in report[f"{kind}s"]:
            lines.append(f"  {kind:6s} {value['name']:12s} {value['type']:16s} {value['shape']}")
    card: ModelCard = report["card"]
    spec = card.input
    normalisation = "raw pixels" if spec.normalize == "none" else f"{spec.normalize} mean {spec.mean}, std {spec.std}"
    lines.append(f"  task {card.task}, model {card.name}, {spec.height}x{spec.width} {spec.color_order} "
                 f"{spec.resize}, {spec.layout} {spec.dtype}, {spec.channels} channel(s), {normalisation}")
    if card.task == "face":
        lines.append(f"  face template {spec.face_template}")
    if card.task == "keypoints":
        lines.append(f"  keypoints decoded from {card.keypoint_decode}"
                     + (f" (split ratio {card.simcc_split_ratio})" if card.keypoint_decode == "simcc" else ""))
    lines.append(f"  provenance: checkpoint sha256 {card.provenance.checkpoint_sha256[:16]}..., "
                 f"edgereid {card.provenance.edgereid_version}")
    return "\n".join(lines)
