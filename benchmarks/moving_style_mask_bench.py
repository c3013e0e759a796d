"""A moving style mask (issue 27): does each frame take its own masks?

The source is the first ``--frames`` frames of samples/street.avi at ``--size``; the mask is a vertical white
band that moves a third of the width per frame (an image sequence, one mask frame per source frame). Style 1
(The Starry Night) goes on the band, style 2 (HappyFish) on the rest. Two runs of ``stylize_video`` with the
``lbfgs`` engine, the default preset otherwise:

* ``moving``: ``--style-mask 1=band/####.png`` (each frame its own band);
* ``still``: ``--style-mask 1=band/0001.png`` (frame 1's band on every frame: what still masks gave before).

Per frame, the style score of ``nst_plugin.metrics.region_style`` (``style_other``, layers no preset optimises;
lower is closer) of that frame's band and of the rest, against each style. With the moving mask the band of
every frame should be closest to The Starry Night; with the still one only frame 1's.

    .venv/bin/python benchmarks/moving_style_mask_bench.py      # picture: docs/images/style_mask_moving.jpg

Writes ``--out`` (default benchmarks/results/moving_style_mask/): the frames, results.json, table.md and the
picture. Docs: docs/style-masks.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from machine import describe as describe_machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def write_inputs(out: Path, count: int, size: int) -> tuple[list, list]:
    """The source frames (an image sequence at ``size``) and the band masks, in ``out``."""
    import cv2

    from nst_plugin.images import resize, save_image

    capture = cv2.VideoCapture(str(SAMPLES / "street.avi"))
    frames, planes = [], []
    for n in range(1, count + 1):
        ok, bgr = capture.read()
        assert ok, "samples/street.avi is shorter than --frames"
        rgb = resize(np.ascontiguousarray(bgr[..., ::-1]), round(bgr.shape[0] * size / bgr.shape[1]), size)
        plane = np.zeros(rgb.shape[:2], np.uint8)
        third = rgb.shape[1] // 3
        plane[:, (n - 1) % 3 * third: ((n - 1) % 3 + 1) * third] = 255
        (out / "seq").mkdir(parents=True, exist_ok=True)
        (out / "band").mkdir(parents=True, exist_ok=True)
        save_image(out / "seq" / f"{n:04d}.png", rgb)
        cv2.imwrite(str(out / "band" / f"{n:04d}.png"), plane)
        frames.append(rgb)
        planes.append(plane.astype(np.float32) / 255.0)
    capture.release()
    return frames, planes


def stylize(out: Path, name: str, mask: str, styles: list, paths: list, size: int) -> float:
    from nst_plugin.api import prepare
    from nst_plugin.style_masks import video_style_masks
    from nst_plugin.video import open_source, stylize_video

    config, styles, _ = prepare(styles, size=size, weights="hed")
    source = open_source(str(out / "seq" / "####.png"))
    masks = video_style_masks({0: mask}, len(paths), source, config.engine)
    started = time.perf_counter()
    stylize_video(source, styles, config, out / name, style_masks=masks)
    return time.perf_counter() - started


def picture(out: Path, frames: list, planes: list, made: dict) -> Path:
    """Rows: the frames; columns: the mask, the moving run, the still run."""
    from nst_plugin.images import save_image

    rows = []
    for n, (frame, plane) in enumerate(zip(frames, planes), start=1):
        mask = np.repeat((plane * 255).astype(np.uint8)[..., None], 3, axis=2)
        cells = [mask, made["moving"][n - 1], made["still"][n - 1]]
        rows.append(np.concatenate([np.pad(c, ((2, 2), (2, 2), (0, 0)), constant_values=255) for c in cells], axis=1))
    path = out / "style_mask_moving.jpg"
    save_image(path, np.concatenate(rows, axis=0))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "moving_style_mask"))
    args = parser.parse_args()
    from nst_plugin.images import load_image
    from nst_plugin.metrics import region_style

    out = Path(args.out)
    frames, planes = write_inputs(out, args.frames, args.size)
    paths = [str(SAMPLES / "starry_night.jpg"), str(SAMPLES / "HappyFish.jpg")]
    styles = [load_image(p) for p in paths]
    results = {"machine": describe_machine(), "size": args.size, "rows": {}, "seconds": {}}
    made = {}
    for name, mask in (("moving", str(out / "band" / "####.png")), ("still", str(out / "band" / "0001.png"))):
        results["seconds"][name] = round(stylize(out, name, mask, styles, paths, args.size), 1)
        made[name] = [load_image(out / name / f"frame_{n:06d}.png") for n in range(1, args.frames + 1)]
        for n, (image, plane) in enumerate(zip(made[name], planes), start=1):
            row = {f"{region} to {style}": round(region_style(image, styles[i], m)["style_other"], 2)
                   for region, m in (("band", plane), ("rest", 1.0 - plane))
                   for i, style in enumerate(("Starry Night", "HappyFish"))}
            results["rows"][f"{name} frame {n}"] = row
            print(name, n, json.dumps(row), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    header = "| run | " + " | ".join(next(iter(results["rows"].values()))) + " |"
    lines = [header, "| --- " * (header.count("|") - 1) + "|"]
    lines += [f"| {k} | " + " | ".join(str(v) for v in row.values()) + " |" for k, row in results["rows"].items()]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print(picture(out, frames, planes, made), results["seconds"])


if __name__ == "__main__":
    main()
