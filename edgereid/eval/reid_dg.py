"""``edgereid evaluate reid``: person re-identification on unseen domains of the synthetic world.

Labels of the form ``NAME/SEED`` are runs of one recipe with different seeds; the table reports their
mean and half the range (max - min) / 2 as the spread.

Models train on some cameras of one world; this scores them on another world (new identities, new
cameras: background, light, colour cast, blur and noise all unseen), through the full pipeline (frames
and boxes in). Market-1501 protocol: from every (identity, camera) the first crop is a query and the
rest is gallery; same-identity same-camera gallery entries are ignored for each query.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgereid.data.synthetic import World, WorldConfig
from edgereid.eval.calibrate import world_embeddings
from edgereid.eval.metrics import evaluate_rank


def split_query_gallery(pids: np.ndarray, cams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks: the first crop of every (pid, camera) is a query, the others are gallery."""
    query = np.zeros(len(pids), bool)
    seen: set[tuple[int, int]] = set()
    for i, key in enumerate(zip(pids.tolist(), cams.tolist())):
        if key not in seen:
            seen.add(key)
            query[i] = True
    return query, ~query


def rank_metrics(query: np.ndarray, gallery: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                 q_cams: np.ndarray, g_cams: np.ndarray) -> dict[str, float]:
    """mAP, rank-1 and rank-5 of unit query embeddings against unit gallery embeddings (Market protocol), and
    how many queries count: those with a true match in another camera (the others are skipped)."""
    cmc, mean_ap = evaluate_rank(1.0 - query @ gallery.T, q_pids, g_pids, q_cams, g_cams)
    valid = ((q_pids[:, None] == g_pids[None]) & (q_cams[:, None] != g_cams[None])).any(1)
    return {"mAP": float(mean_ap), "rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)]),
            "valid_queries": int(valid.sum())}


def evaluate(models: dict[str, Path], seed: int = 720, identities: int = 60, cameras: int = 4,
             frames: int = 60) -> dict[str, object]:
    """mAP and rank-1/5 per model on world ``seed``."""
    world = World(WorldConfig(seed=seed, num_identities=identities, num_cameras=cameras))
    results = {}
    for label, path in models.items():
        emb, pids, cams = world_embeddings(str(path), "reid", world, frames)
        query, gallery = split_query_gallery(pids, cams)
        results[label] = {**rank_metrics(emb[query], emb[gallery], pids[query], pids[gallery], cams[query],
                                         cams[gallery]), "queries": int(query.sum()), "gallery": int(gallery.sum())}
    protocol = {"seed": seed, "identities": identities, "cameras": cameras, "frames_per_camera": frames,
                "models": {k: str(v) for k, v in models.items()}}
    return {"protocol": protocol, "results": results}


def evaluate_dataset(models: dict[str, Path], root: str | Path) -> dict[str, object]:
    """mAP and rank-1/5 per model on the query and gallery of a Market-1501-layout folder (the target
    domain of a domain-generalisation run; distractors kept, junk dropped, as the benchmark does)."""
    from edgereid.data.datasets import read_market1501
    from edgereid.eval.embedders import onnx_embedder
    from edgereid.methods.reid_data import image_crops

    split = read_market1501(root)
    results = {}
    for label, path in models.items():
        embed = onnx_embedder(path)
        query, gallery = image_crops(split.query, embed.spec), image_crops(split.gallery, embed.spec)
        results[label] = {**rank_metrics(embed(query.images), embed(gallery.images), query.pids, gallery.pids,
                                         query.cams, gallery.cams), "queries": len(query), "gallery": len(gallery)}
    protocol = {"dataset": str(root), "models": {k: str(v) for k, v in models.items()}}
    return {"protocol": protocol, "results": results}


def group_runs(results: dict[str, dict]) -> dict[str, dict[str, object]]:
    """Runs labelled ``NAME/SEED`` grouped by NAME: mean and spread (max - min) of each metric over seeds."""
    groups: dict[str, list[dict]] = {}
    for label, row in results.items():
        groups.setdefault(label.rsplit("/", 1)[0] if "/" in label else label, []).append(row)
    summary = {}
    for name, rows in groups.items():
        summary[name] = {"runs": len(rows), "valid_queries": int(rows[0].get("valid_queries", 0))}
        for metric in ("mAP", "rank1", "rank5"):
            values = np.array([r[metric] for r in rows])
            summary[name][metric] = (float(values.mean()), float(values.max() - values.min()))
    return summary


def markdown_table(report: dict[str, object]) -> str:
    """One row per model (seeds of ``NAME/SEED`` runs merged): mean, and +- spread over seeds."""
    lines = ["| model | runs | valid queries | mAP | rank-1 | rank-5 |", "|---|---|---|---|---|---|"]
    for name, row in group_runs(report["results"]).items():  # type: ignore[arg-type]
        cell = lambda m: f"{row[m][0]:.3f}" + (f" ± {row[m][1] / 2:.3f}" if row["runs"] > 1 else "")
        lines.append(f"| {name} | {row['runs']} | {row['valid_queries']} | {cell('mAP')} | {cell('rank1')} | "
                     f"{cell('rank5')} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, object], path: str | Path) -> Path:
    from edgereid.fileio import atomic_write_text

    return atomic_write_text(path, json.dumps(report, indent=1))
