"""Report pictures: loss curves, contact and retrieval sheets, keypoint sheets, written as PNG.

Training and evaluation both draw these, so this module imports only the core (never the runtime or
the pipeline); drawing pipeline results on frames lives in :mod:`edgereid.viz`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgereid.errors import require
from edgereid.fileio import atomic_write_bytes


def contact_sheet(pairs: list[tuple[np.ndarray, np.ndarray, bool, str]], path: str | Path,
                  cell: tuple[int, int] = (128, 64), columns: int = 8) -> Path:
    """A PNG grid of (query crop, matched gallery crop, correct?, caption) pairs; green = correct."""
    height, width = cell
    rows = max(1, (len(pairs) + columns - 1) // columns)
    sheet = np.full((rows * (height + 18), columns * (2 * width + 6), 3), 255, dtype=np.uint8)
    for i, (query, match, correct, caption) in enumerate(pairs):
        r, c = divmod(i, columns)
        y, x = r * (height + 18), c * (2 * width + 6)
        colour = (40, 170, 40) if correct else (40, 40, 220)
        for j, crop in enumerate((query, match)):
            tile = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
            sheet[y:y + height, x + j * width:x + (j + 1) * width] = tile
        cv2.rectangle(sheet, (x, y), (x + 2 * width - 1, y + height - 1), colour, 2)
        cv2.putText(sheet, caption, (x + 2, y + height + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1, cv2.LINE_AA)
    return write_png(path, sheet)


def retrieval_sheet(rows: list[tuple[str | np.ndarray, list[np.ndarray], list[bool]]], path: str | Path,
                    cell: tuple[int, int] = (128, 64), text_width: int = 280) -> Path:
    """A PNG of queries (a caption or a crop) each followed by its top-ranked gallery crops, framed green
    when the crop shows the queried person and red when not."""
    import textwrap

    height, width = cell
    k = max(len(results) for _, results, _ in rows)
    sheet = np.full((len(rows) * (height + 8), text_width + k * (width + 4), 3), 255, dtype=np.uint8)
    for r, (query, results, correct) in enumerate(rows):
        y = r * (height + 8)
        if isinstance(query, str):
            for line_index, line in enumerate(textwrap.wrap(query, 44)[:height // 14]):
                cv2.putText(sheet, line, (4, y + 14 + 14 * line_index), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (0, 0, 0), 1,
                            cv2.LINE_AA)
        else:
            sheet[y:y + height, 0:width] = cv2.resize(query, (width, height), interpolation=cv2.INTER_AREA)
        for c, (crop, hit) in enumerate(zip(results, correct)):
            x = text_width + c * (width + 4)
            sheet[y:y + height, x:x + width] = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
            cv2.rectangle(sheet, (x, y), (x + width - 1, y + height - 1), (40, 170, 40) if hit else (40, 40, 220), 2)
    return write_png(path, sheet)


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """A BGR uint8 image written atomically as PNG."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return atomic_write_bytes(path, encoded.tobytes())


def _pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend (the ``plots`` extra; ``train`` brings it too)."""
    require("matplotlib", "plots", "plotting")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: str | Path) -> Path:
    """A figure written atomically as PNG, then closed."""
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=120)
    _pyplot().close(figure)
    return atomic_write_bytes(path, buffer.getvalue())


def line_plot(series: dict[str, tuple[list[float], list[float]]], path: str | Path, title: str,
              xlabel: str, ylabel: str, log2_x: bool = False, log_y: bool = False) -> Path:
    """A PNG of one line per named (x, y) series (needs matplotlib: the ``plots`` extra)."""
    figure, axis = _pyplot().subplots(figsize=(6, 4))
    for label, (xs, ys) in series.items():
        axis.plot(xs, ys, marker=".", label=label)
    if log2_x:
        axis.set_xscale("log", base=2)
    if log_y:
        axis.set_yscale("log")
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.grid(alpha=0.3)
    axis.legend()
    return _save(figure, path)


def bar_plot(values: dict[str, float], path: str | Path, title: str, ylabel: str) -> Path:
    """A PNG of one labelled bar per entry, its value written on it (needs matplotlib)."""
    figure, axis = _pyplot().subplots(figsize=(7, 4))
    bars = axis.bar(range(len(values)), list(values.values()), color="tab:blue")
    axis.bar_label(bars, labels=[f"{v:g}" for v in values.values()])
    axis.set_xticks(range(len(values)), list(values), rotation=15, ha="right", fontsize=8)
    axis.set(ylabel=ylabel, title=title)
    axis.grid(alpha=0.3, axis="y")
    return _save(figure, path)


def score_plots(genuine: np.ndarray, impostor: np.ndarray, threshold: float, path: str | Path, title: str) -> Path:
    """Two panels: genuine and impostor score histograms with the threshold, and the ROC (true-accept against
    false-accept rate, log scale) with the threshold's operating point marked."""
    plt = _pyplot()
    figure, (hist, roc) = plt.subplots(1, 2, figsize=(10, 4))
    bins = np.linspace(min(genuine.min(), impostor.min()), max(genuine.max(), impostor.max()), 60)
    hist.hist(impostor, bins=bins, alpha=0.6, density=True, label=f"impostor pairs ({len(impostor)})")
    hist.hist(genuine, bins=bins, alpha=0.6, density=True, label=f"genuine pairs ({len(genuine)})")
    hist.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.3f}")
    hist.set(xlabel="cosine score", ylabel="density", title=title)
    hist.legend()
    cuts = np.unique(np.concatenate([impostor, genuine, [threshold]]))
    far = np.array([(impostor > c).mean() for c in cuts[:: max(1, len(cuts) // 400)]])
    tar = np.array([(genuine > c).mean() for c in cuts[:: max(1, len(cuts) // 400)]])
    roc.plot(np.maximum(far, 1e-6), tar)
    roc.plot(max((impostor > threshold).mean(), 1e-6), (genuine > threshold).mean(), "ko",
             label="chosen threshold")
    roc.set(xscale="log", xlabel="false-accept rate", ylabel="true-accept rate", title="ROC")
    roc.grid(alpha=0.3)
    roc.legend()
    return _save(figure, path)


def keypoint_sheet(images: list[np.ndarray], points: np.ndarray, path: str | Path, cell: tuple[int, int] = (128, 64),
                   columns: int = 12) -> Path:
    """A PNG grid of crops with their K points drawn, one colour per point index (the same colour is
    the same token in every crop, so a glance shows whether a point sticks to one body part)."""
    height, width = cell
    rows = max(1, (len(images) + columns - 1) // columns)
    sheet = np.full((rows * height, columns * width, 3), 255, dtype=np.uint8)
    k = points.shape[1]
    palette = [tuple(int(c) for c in cv2.cvtColor(np.uint8([[[int(180 * i / max(k, 1)), 255, 255]]]),
                                                  cv2.COLOR_HSV2BGR)[0, 0]) for i in range(k)]
    for i, (image, pts) in enumerate(zip(images, points)):
        r, c = divmod(i, columns)
        scale = min(height / image.shape[0], width / image.shape[1])
        tile = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
        y, x = r * height, c * width
        sheet[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
        for j, (px, py) in enumerate(pts):
            centre = (int(round(x + (px + 0.5) * scale - 0.5)), int(round(y + (py + 0.5) * scale - 0.5)))
            cv2.circle(sheet, centre, 3, palette[j], -1, cv2.LINE_AA)
            cv2.circle(sheet, centre, 3, (0, 0, 0), 1, cv2.LINE_AA)
    return write_png(path, sheet)
