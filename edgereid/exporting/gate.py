"""The accuracy gate: a reduced-precision graph is accepted only if it still does the FP32 model's job.

Measured with ONNX Runtime on held-out crops (so it runs on any CPU), against the FP32 graph:

- embeddings: cosine to FP32 per crop (mean and minimum) and **rank-1 agreement**: each crop queries
  all the others; the fraction whose nearest neighbour under the reduced precision is the FP32 one
  (or an FP32 near-tie, :data:`RANK1_TIE`);
- keypoints: coordinate error in input pixels (mean and maximum).

FP16 and BF16 are gated on emulations of their rounding (:mod:`edgereid.exporting.fp16`,
:mod:`edgereid.exporting.bf16`), INT8 on the
Q/DQ graph itself (its quantization rounding is exact in ONNX Runtime). Outputs that are NaN or inf
fail. A failed gate stops the build with the numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgereid.card import ModelCard
from edgereid.errors import ExportError
from edgereid.ops.keypoint_decode import decode_keypoints
from edgereid.ort_session import open_session


RANK1_TIE = 0.01  # cosine: FP32 neighbours this close to the best count as the same answer


@dataclass(frozen=True)
class GateThresholds:
    """What a reduced-precision model must reach against FP32 (see the README's precision table)."""

    min_mean_cosine: float
    min_cosine: float
    min_rank1_agreement: float
    max_mean_keypoint_px: float


GATES = {
    "fp16": GateThresholds(min_mean_cosine=0.999, min_cosine=0.99, min_rank1_agreement=0.98, max_mean_keypoint_px=0.5),
    "bf16": GateThresholds(min_mean_cosine=0.999, min_cosine=0.99, min_rank1_agreement=0.98, max_mean_keypoint_px=0.5),
    "int8": GateThresholds(min_mean_cosine=0.98, min_cosine=0.90, min_rank1_agreement=0.85, max_mean_keypoint_px=2.0),
}


@dataclass(frozen=True)
class GateReport:
    """The measured numbers, the thresholds and the verdict."""

    precision: str
    crops: int
    mean_cosine: float | None = None
    min_cosine: float | None = None
    rank1_agreement: float | None = None
    mean_keypoint_px: float | None = None
    max_keypoint_px: float | None = None
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        parts = [f"{self.precision} gate on {self.crops} held-out crops:"]
        if self.mean_cosine is not None:
            parts.append(f"cosine to FP32 mean {self.mean_cosine:.5f} min {self.min_cosine:.5f}, "
                         f"rank-1 agreement {self.rank1_agreement:.4f}")
        if self.mean_keypoint_px is not None:
            parts.append(f"keypoint error mean {self.mean_keypoint_px:.3f} px max {self.max_keypoint_px:.3f} px")
        parts.append("PASSED" if self.passed else "FAILED: " + "; ".join(self.failures))
        return " ".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


def _session(model, optimize: bool = False):
    """``optimize=False`` keeps every Cast pair of an FP16 emulation (no graph rewriting); INT8 Q/DQ
    graphs run optimised, so ONNX Runtime fuses them into its INT8 kernels."""
    return open_session(model.SerializeToString(), optimize=optimize, error=ExportError)


def run_model(model, crops: np.ndarray, batch: int = 64, optimize: bool = False) -> dict[str, np.ndarray]:
    """Every output of the ONNX ModelProto ``model`` on ``crops``, run by ONNX Runtime ``batch`` at a time."""
    session = _session(model, optimize)
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    parts = [dict(zip(outputs, session.run(outputs, {name: crops[i:i + batch]}))) for i in range(0, len(crops), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in outputs}


def rank1_agreement(reference: np.ndarray, candidate: np.ndarray, tie: float = RANK1_TIE) -> float:
    """Fraction of rows (queries against all other rows) whose nearest neighbour under ``candidate``
    is the FP32 nearest neighbour, or one the FP32 embeddings rate within ``tie`` cosine of it.

    The tie allowance matters: consecutive frames of one person give near-identical crops, and which
    of two such twins comes first is noise, not a retrieval error."""
    def similarities(e: np.ndarray) -> np.ndarray:
        unit = e / np.linalg.norm(e, axis=1, keepdims=True).clip(1e-12)
        sim = unit @ unit.T
        np.fill_diagonal(sim, -np.inf)
        return sim

    ref_sim = similarities(reference)
    picked = similarities(candidate).argmax(1)
    rows = np.arange(len(reference))
    return float(np.mean(ref_sim[rows, picked] >= ref_sim.max(1) - tie))


def measure(reference_model, candidate_model, crops: np.ndarray, card: ModelCard, precision: str) -> GateReport:
    """Compare ``candidate_model`` to ``reference_model`` (both ONNX ModelProtos) on ``crops``."""
    if precision not in GATES:
        raise ExportError(f"no accuracy gate for precision '{precision}'", expected=str(sorted(GATES)))
    if len(crops) < 2:
        raise ExportError("the accuracy gate needs held-out crops", expected="at least 2", got=str(len(crops)),
                          fix="pass a calibration folder with more images")
    limits = GATES[precision]
    reference, candidate = run_model(reference_model, crops, optimize=False), run_model(candidate_model, crops,
                                                                             optimize=precision == "int8")
    fields: dict[str, float] = {}
    failures = [f"output '{name}' has NaN or inf" for name, value in candidate.items() if not np.isfinite(value).all()]
    if card.embedding_dim:
        name = card.output("embedding").name
        ref, cand = reference[name], candidate[name]
        cosine = (ref * cand).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(cand, axis=1)).clip(1e-12)
        fields.update(mean_cosine=float(cosine.mean()), min_cosine=float(cosine.min()),
                      rank1_agreement=rank1_agreement(ref, cand))
        if fields["mean_cosine"] < limits.min_mean_cosine:
            failures.append(f"mean cosine {fields['mean_cosine']:.5f} < {limits.min_mean_cosine}")
        if fields["min_cosine"] < limits.min_cosine:
            failures.append(f"min cosine {fields['min_cosine']:.5f} < {limits.min_cosine}")
        if fields["rank1_agreement"] < limits.min_rank1_agreement:
            failures.append(f"rank-1 agreement {fields['rank1_agreement']:.4f} < {limits.min_rank1_agreement}")
    if card.task == "keypoints":
        error = np.linalg.norm(decode_keypoints(card, reference)[0] - decode_keypoints(card, candidate)[0], axis=-1)
        fields.update(mean_keypoint_px=float(error.mean()), max_keypoint_px=float(error.max()))
        if fields["mean_keypoint_px"] > limits.max_mean_keypoint_px:
            failures.append(f"mean keypoint error {fields['mean_keypoint_px']:.3f} px > {limits.max_mean_keypoint_px}")
    failures += [f"{name} is not a number" for name, value in fields.items() if not np.isfinite(value)]
    return GateReport(precision, len(crops), failures=tuple(failures), **fields)
