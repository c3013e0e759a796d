"""``--mask`` on a real clip: the picture of docs/masks.md and its numbers.

samples/walkers.avi, its first ``--frames`` frames at the source's size (384x288, 100 %), the default preset
(``lbfgs``), starry_night as the style, and a soft ellipse as the mask (white in the middle, a Gaussian
edge of ``--soft`` pixels). One run: the folder keeps the engine's own frames (``unmasked_NNNNNN.png``) next to
the masked ones, so the styled picture and the composite come from the same optimisation.

Numbers, on the last frame (a warm one): the largest difference to the source where the mask is black and to
the engine's frame where it is white (both must be 0), the share of soft pixels, and the style distance of
:func:`nst_plugin.metrics.region_style` inside the ellipse and outside it, for the source, the unmasked frame
and the masked one (inside the masked frame should score as the unmasked one, outside as the source).

    .venv/bin/python benchmarks/mask_bench.py --picture docs/images/mask_walkers.jpg

Writes ``--out`` (default benchmarks/results/mask/): results.json, the mask and the run's folder.
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


def soft_ellipse(height: int, width: int, soft: float) -> np.ndarray:
    """White ellipse over the middle (half the width, two thirds of the height), its edge blurred."""
    import cv2

    plane = np.zeros((height, width), np.float32)
    cv2.ellipse(plane, (width // 2, height // 2), (width // 4, height // 3), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    return np.clip(cv2.GaussianBlur(plane, (0, 0), soft), 0.0, 1.0) if soft > 0 else plane


def label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(image.copy())
    cv2.putText(out, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--soft", type=float, default=12.0, help="Gaussian sigma of the mask's edge, in pixels")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "mask")
    parser.add_argument("--picture", type=Path, default=None)
    args = parser.parse_args()

    from nst_plugin.api import prepare
    from nst_plugin.images import load_image, save_image
    from nst_plugin.metrics import region_style
    from nst_plugin.video import open_source, stylize_video

    args.out.mkdir(parents=True, exist_ok=True)
    clip, style_path = ROOT / "samples" / "walkers.avi", ROOT / "samples" / "starry_night.jpg"
    source = open_source(clip, frames=f"1-{args.frames}")
    mask = soft_ellipse(source.height, source.width, args.soft)
    save_image(args.out / "mask.png", np.repeat(np.rint(mask * 255).astype(np.uint8)[..., None], 3, axis=2))
    style = load_image(style_path)
    config, styles, _ = prepare([style], size=0)  # size 0: the source's own (100 %)
    started = time.perf_counter()
    stylize_video(source, styles, config, args.out / "run", mask=args.out / "mask.png", overwrite=True)
    seconds = time.perf_counter() - started

    last = args.frames
    frame = dict(open_source(clip, frames=str(last)).read())[last]
    masked = load_image(args.out / "run" / f"frame_{last:06d}.png")
    styled = load_image(args.out / "run" / f"unmasked_{last:06d}.png")
    read = load_image(args.out / "mask.png")[..., 0].astype(np.float32) / 255  # the mask as the engine read it
    black, white = read == 0, read == 1
    inside, outside = read, 1 - read
    results = {
        "clip": str(clip.relative_to(ROOT)), "frames": args.frames, "size": [source.width, source.height],
        "soft_sigma_px": args.soft, "seconds": round(seconds, 1), "machine": describe_machine(),
        "max_difference_to_source_where_black": int(np.abs(masked.astype(int) - frame)[black].max()),
        "max_difference_to_styled_where_white": int(np.abs(masked.astype(int) - styled)[white].max()),
        "soft_pixels": round(float(((read > 0) & (read < 1)).mean()), 3),
        "region_style": {name: {"inside": region_style(image, style, inside),
                                "outside": region_style(image, style, outside)}
                         for name, image in (("source", frame), ("unmasked", styled), ("masked", masked))},
    }
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    if args.picture is not None:
        grey = np.repeat(np.rint(read * 255).astype(np.uint8)[..., None], 3, axis=2)
        top = np.hstack([label(frame, "source"), label(grey, "--mask (soft ellipse)")])
        bottom = np.hstack([label(styled, "styled (the engine's frame)"), label(masked, "output: masked")])
        save_image(args.picture, np.vstack([top, bottom]))


if __name__ == "__main__":
    main()
