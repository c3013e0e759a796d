"""Run metadata (JSON next to the output) and the loss-curve plot (drawn with OpenCV, no extra dependency)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .images import save_image, write_atomic

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def metadata_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".nst.json")


def write_metadata(output: str | Path, config, stats: dict, inputs: dict) -> Path:
    """``<output stem>.nst.json``: settings, inputs, weights used (a fallback is said so), the Keras backend
    and device that computed it, per-run stats."""
    from .backends import describe

    data = {
        "format": "nst-image-metadata",
        "output": str(output),
        "inputs": inputs,
        "config": config.to_dict(),
        "settings_hash": config.fingerprint(),
        "runtime": describe(),
        "stats": {k: v for k, v in stats.items() if k != "history"},
    }
    path = metadata_path(output)
    write_atomic(path, (json.dumps(data, indent=2, default=str) + "\n").encode())
    return path


def plot_losses(history: list[dict], path: str | Path, title: str = "loss") -> None:
    """Weighted loss per term and in total against the iteration, log scale, as a PNG."""
    import cv2

    width, height = 900, 500
    left, right, top, bottom = 90, 170, 40, 60
    canvas = np.full((height, width, 3), 255, np.uint8)
    series: dict[str, list[tuple[int, float]]] = {"total": []}
    for row in history:
        series["total"].append((row["iteration"], row["loss"]))
        for name, value in (row.get("losses") or {}).items():
            series.setdefault(name, []).append((row["iteration"], value))
    points = [v for values in series.values() for _, v in values if v > 0 and math.isfinite(v)]
    iterations = [i for i, _ in series["total"]]
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, title, (left, 28), font, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
    if points and iterations:
        lo, hi = math.log10(min(points)), math.log10(max(points))
        if hi - lo < 1e-6:
            lo, hi = lo - 0.5, hi + 0.5
        x_max = max(max(iterations), 2)

        def to_px(i, v):
            x = left + (i - 1) / max(x_max - 1, 1) * (width - left - right)
            y = top + (hi - math.log10(v)) / (hi - lo) * (height - top - bottom)
            return int(round(x)), int(round(y))

        cv2.rectangle(canvas, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
        for k in range(5):
            value = lo + (hi - lo) * k / 4
            y = int(top + (hi - value) / (hi - lo) * (height - top - bottom))
            cv2.line(canvas, (left - 5, y), (left, y), (0, 0, 0), 1)
            cv2.putText(canvas, f"{10 ** value:.3g}", (5, y + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for k in range(5):
            i = 1 + (x_max - 1) * k / 4
            x, _ = to_px(i, 10**hi)
            cv2.line(canvas, (x, height - bottom), (x, height - bottom + 5), (0, 0, 0), 1)
            cv2.putText(canvas, f"{i:.0f}", (x - 10, height - bottom + 22), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, "iteration", ((width - right + left) // 2 - 35, height - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for n, (name, values) in enumerate(series.items()):
            colour = (0, 0, 0) if name == "total" else COLOURS[(n - 1) % len(COLOURS)][::-1]
            pts = [to_px(i, v) for i, v in values if v > 0 and math.isfinite(v)]
            if len(pts) > 1:
                cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
            y = top + 20 + 24 * n
            cv2.line(canvas, (width - right + 12, y - 5), (width - right + 40, y - 5), colour, 2)
            cv2.putText(canvas, name, (width - right + 46, y), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    else:
        cv2.putText(canvas, "no iterations recorded", (left, height // 2), font, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
    save_image(path, canvas)
