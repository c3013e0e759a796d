"""How far the style score moves when nothing but the picture's place changes: a stylized keyframe moved by
a fraction of a pixel, one pixel, a few pixels, scored by ``nst_plugin.metrics`` before and after.

The keyframe engine's style target divides by the keyframes' own score. A keyframe is the frame engine's
L-BFGS result: its pixels were optimised until the Gram matrices at block1..5_conv1 (the score's layers)
match the style's, on its own pixel grid. Every other frame of a shot shows the picture somewhere else. This
script measures what that alone costs under the score: the keyframe moved whole (bicubic resampling, the
border reflected, as the engine carries a keyframe), so that its texture, colours and strokes are all still
there; and the same for the score at the layers no objective uses (``style_other``).

    .venv/bin/python benchmarks/style_floor.py [IMAGES ...]   # default: the keyframe_variants keyframes

Prints a table (markdown) of each image's scores over the shifts and the ratio to its own.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from nst_plugin.images import load_image  # noqa: E402
from nst_plugin.metrics import scores  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHIFTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def moved(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by (dx, dy) pixels: sampled bicubically, the border reflected (as a carried keyframe)."""
    import cv2

    h, w = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = cv2.remap(image.astype(np.float32), grid_x - dx, grid_y - dy, interpolation=cv2.INTER_CUBIC,
                    borderMode=cv2.BORDER_REFLECT)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = sorted((ROOT / "benchmarks/results/keyframe_variants").glob("*_360_*.png"))
    parser.add_argument("images", nargs="*", default=[str(p) for p in default])
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--weights", default="hed")
    args = parser.parse_args()
    if not args.images:
        raise SystemExit("no images: run benchmarks/keyframe_variants.py first, or name stylized frames")
    style = load_image(args.style)
    head = " | ".join(f"{s:g} px" for s in SHIFTS)
    lines = [f"| image | score | {head} |", "| --- | --- |" + " ---: |" * len(SHIFTS)]
    ratios = {s: [] for s in SHIFTS}
    for path in args.images:
        image = load_image(path)
        got = [scores(moved(image, s, s), image, style, weights=args.weights) for s in SHIFTS]
        for key in ("style", "style_other"):
            own = got[0][key]
            lines.append(f"| {Path(path).stem} | {key} | " + " | ".join(
                f"{g[key]:.3g}" + ("" if s == 0 else f" ({g[key] / own:.2f}x)") for s, g in zip(SHIFTS, got)) + " |")
            if key == "style":
                for s, g in zip(SHIFTS, got):
                    ratios[s].append(g[key] / own)
        print(lines[-2], lines[-1], sep="\n", flush=True)
    lines.append("| **mean ratio** | style | " + " | ".join(f"{np.mean(ratios[s]):.2f}x" for s in SHIFTS) + " |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
