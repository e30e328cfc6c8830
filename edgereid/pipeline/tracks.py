"""Embed a tracked person (or face) when it changes, not on every frame.

A gateway's unit of work is a camera, and people stay in view for seconds: with track ids from the caller's
tracker, a track is embedded when it is new, when its box area has grown by ``reembed_growth`` since its last
embedding, when ``reembed_after_s`` seconds of frame time have passed, or when its quality (box size times
the share of the box inside the frame) beats the track's best so far by ``quality_gain``; otherwise its last
embedding is reused and its crop is not run (the rule DeepStream's tracker applies to secondary models, which
re-infer an object when it is new or its box has grown by 20 %).

Each track keeps an aggregated embedding (the normalised mean of its ``best_k`` best-quality embeddings) and
the identity decided on it, so a reused row reports the track's identity, not one frame's guess. Memory is
bounded: a track unseen for ``forget_after_s`` of frame time is dropped, and at most ``max_tracks`` are kept
(the least recently seen go first).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar, Hashable

import numpy as np

from edgereid.config import check_ranges
from edgereid.ops.postprocess import l2_normalize

EMBED, FROM_MEMORY = -1, -2  # plan sources; a value >= 0 copies that row, embedded earlier in the same batch


@dataclass(frozen=True)
class TrackReuse:
    """When a tracked crop is embedded again (see the module docstring); ``quality_gain`` None disables the
    quality rule."""

    reembed_growth: float = 0.2
    reembed_after_s: float = 5.0
    quality_gain: float | None = 0.25
    best_k: int = 5
    forget_after_s: float = 30.0
    max_tracks: int = 10_000

    RANGES: ClassVar[dict[str, tuple[float, float]]] = {
        "reembed_growth": (0.0, 100.0), "reembed_after_s": (0.0, 86_400.0), "quality_gain": (0.0, 100.0),
        "best_k": (1, 1000), "forget_after_s": (0.0, 86_400.0), "max_tracks": (1, 10_000_000)}

    def __post_init__(self) -> None:
        check_ranges(self)


def visible_share(submitted: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """``[N]`` share of each submitted box that lies inside the frame (its clipped crop's area over its own)."""
    def area(boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)

    whole = area(submitted)
    return np.where(whole > 0, np.minimum(area(clipped) / np.maximum(whole, 1e-9), 1.0), 0.0)


@dataclass
class _Track:
    area: float  # box area at the last embedding
    embedded_at: float  # frame time of the last embedding
    seen_at: float
    quality: float  # best quality embedded so far
    last: np.ndarray  # the last embedding
    best: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (quality, embedding), best first
    aggregate: np.ndarray | None = None  # normalised mean of ``best``
    identity: str | None = None
    score: float = float("nan")


@dataclass(frozen=True)
class ReusePlan:
    """For each row of a batch: ``source`` (EMBED, FROM_MEMORY, or the row it copies), its ``quality``."""

    keys: list[Hashable | None]
    source: np.ndarray
    quality: np.ndarray

    @property
    def embed(self) -> np.ndarray:
        return self.source == EMBED


class TrackMemory:
    """Per-track state for one model role (persons or faces), keyed by ``(camera_id, track_id)``.

    ``saturation_area`` is the model's input area (height x width): a box larger than that is downscaled to it,
    so growth beyond it adds no detail and is not counted. Measured on the demo's world (person boxes of median
    area 8823 px for a 128x64 input): without it, people walking towards a camera were re-embedded at every 20 %
    of growth, 28 % of crops embedded; with it, see BENCHMARKS.md "Track reuse"."""

    def __init__(self, policy: TrackReuse, saturation_area: float = float("inf")) -> None:
        self.policy = policy
        self.saturation_area = float(saturation_area)
        self._tracks: OrderedDict[Hashable, _Track] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tracks)

    def forget(self, camera_id: str | None = None) -> None:
        """Drop every track, or those of one camera (keys are ``(camera_id, track_id)``)."""
        for key in [k for k in self._tracks if camera_id is None or k[0] == camera_id]:
            del self._tracks[key]

    def plan(self, keys: list[Hashable | None], areas: np.ndarray, share: np.ndarray,
             times: np.ndarray) -> ReusePlan:
        """Which rows to embed: rows without a key always; a tracked row when the policy says its track changed.
        ``areas`` are the crops' areas, ``share`` the part of each box inside the frame (:func:`visible_share`);
        a crop's quality is sqrt(area, up to the saturation) x share: a person cut by the frame edge is a
        worse view than the same person whole. A track seen twice in one batch is decided in row order,
        against the row embedded before it."""
        areas = np.minimum(areas, self.saturation_area)
        quality = np.sqrt(areas) * share
        source = np.full(len(keys), EMBED, dtype=np.int64)
        in_batch: dict[Hashable, tuple[int, float, float, float]] = {}  # key -> (row, area, time, quality)
        for row, key in enumerate(keys):
            if key is None:
                continue
            if key in in_batch:
                reference = in_batch[key]
            elif key in self._tracks:
                track = self._tracks[key]
                reference = (FROM_MEMORY, track.area, track.embedded_at, track.quality)
            else:
                in_batch[key] = (row, float(areas[row]), float(times[row]), float(quality[row]))
                continue
            if self._changed(reference, float(areas[row]), float(times[row]), float(quality[row])):
                in_batch[key] = (row, float(areas[row]), float(times[row]), max(float(quality[row]), reference[3]))
            else:
                source[row] = reference[0]
        return ReusePlan(keys, source, quality)

    def _changed(self, reference: tuple[int, float, float, float], area: float, time: float, quality: float) -> bool:
        policy = self.policy
        _, last_area, last_time, best_quality = reference
        return (area >= last_area * (1.0 + policy.reembed_growth) or time - last_time >= policy.reembed_after_s
                or (policy.quality_gain is not None and quality > best_quality * (1.0 + policy.quality_gain)))

    def fill(self, plan: ReusePlan, embeddings: np.ndarray, invalid: np.ndarray, areas: np.ndarray,
             times: np.ndarray) -> None:
        """Complete ``embeddings``/``invalid`` for reused rows (in place) and remember the embedded rows.
        Embedded rows must already hold their model output; a non-finite one is not remembered."""
        areas = np.minimum(areas, self.saturation_area)
        for row, key in enumerate(plan.keys):
            if key is None:
                continue
            source = plan.source[row]
            if source == EMBED:
                if not invalid[row]:
                    self._remember(key, embeddings[row], float(areas[row]), float(times[row]), float(plan.quality[row]))
            elif source == FROM_MEMORY:
                embeddings[row], invalid[row] = self._tracks[key].last, False
            else:
                embeddings[row], invalid[row] = embeddings[source], invalid[source]
            if key in self._tracks:
                self._tracks[key].seen_at = max(self._tracks[key].seen_at, float(times[row]))
                self._tracks.move_to_end(key)
        self._forget(float(np.max(times)) if len(times) else 0.0)

    def _remember(self, key: Hashable, embedding: np.ndarray, area: float, time: float, quality: float) -> None:
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(area, time, time, quality, embedding.copy())
        track.area, track.embedded_at, track.last = area, time, embedding.copy()
        track.quality = max(track.quality, quality)
        track.best = sorted(track.best + [(quality, embedding.copy())], key=lambda item: -item[0])[:self.policy.best_k]
        track.aggregate = l2_normalize(np.mean([e for _, e in track.best], axis=0, keepdims=True).astype(np.float32))[0]

    def _forget(self, now: float) -> None:
        stale = [key for key, track in self._tracks.items() if now - track.seen_at > self.policy.forget_after_s]
        for key in stale:
            del self._tracks[key]
        while len(self._tracks) > self.policy.max_tracks:
            self._tracks.popitem(last=False)

    def aggregates(self, keys: list[Hashable | None]) -> tuple[list[Hashable], np.ndarray]:
        """The distinct known tracks among ``keys`` and their aggregated embeddings ``[T, D]``."""
        known = list(dict.fromkeys(k for k in keys if k is not None and k in self._tracks))
        if not known:
            return [], np.zeros((0, 0), np.float32)
        return known, np.stack([self._tracks[k].aggregate for k in known])

    def decide(self, keys: list[Hashable], identities: tuple[str | None, ...], scores: np.ndarray) -> None:
        """Store the identity decided on each track's aggregate (the pipeline decides again every batch a track
        is in, so a gallery that changes is seen at once)."""
        for key, identity, score in zip(keys, identities, scores):
            track = self._tracks[key]
            track.identity, track.score = identity, float(score)

    def identity(self, key: Hashable | None) -> tuple[str | None, float] | None:
        """A known track's decided identity and score (None for untracked rows and unknown tracks)."""
        track = self._tracks.get(key) if key is not None else None
        return None if track is None else (track.identity, track.score)
