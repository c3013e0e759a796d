"""Two styles by mask (issue 27; Gatys et al. 2017 spatial control), measured on a street frame.

The content is samples/street.jpg; the mask is its lawn (green pixels, closed, opened and blurred into a soft
edge), made here from the picture itself. Style 1 (``--style1``, default The Starry Night) goes on the lawn,
style 2 (``--style2``, default HappyFish) on the rest (``--style-mask 1=lawn.png``: a style without a mask
gets what no mask covers). Rows, each one run of ``nst_plugin.stylize_frame`` with the default preset:

* ``masked``: both styles, each over its region (ours);
* ``blended``: both styles blended over the whole frame (what several ``--style`` did before);
* ``style 1 only``, ``style 2 only``: one style everywhere (how close a region can get to a style alone).

Columns: per region, the style score of ``nst_plugin.metrics.region_style`` against each style: ``style_other``
(the Gram distance at layers no preset's objective uses) and ``style`` (the objective's layers); lower is
closer. A region should be closer to its own style than the blend puts it, and farther from the other one.
The content score (``metrics.scores``) of the whole frame, and the seconds of the run.

    .venv/bin/python benchmarks/style_mask_bench.py                       # picture: docs/images/style_mask.jpg

Writes ``--out`` (default benchmarks/results/style_mask/): lawn_mask.png, the results, results.json and
table.md. Docs: docs/style-masks.md
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


def lawn_mask(rgb: np.ndarray) -> np.ndarray:
    """Float (H, W) 0..1: the green grass of the frame, cleaned up and with a soft edge."""
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    green = ((hsv[..., 0] >= 30) & (hsv[..., 0] <= 90) & (hsv[..., 1] >= 60) & (hsv[..., 2] >= 40)).astype(np.uint8)
    side = max(rgb.shape[:2])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side // 50 * 2 + 1,) * 2)
    green = cv2.morphologyEx(cv2.morphologyEx(green, cv2.MORPH_CLOSE, kernel), cv2.MORPH_OPEN, kernel)
    soft = cv2.GaussianBlur(green.astype(np.float32), (0, 0), sigmaX=side / 150)
    return np.clip(soft, 0.0, 1.0)


def run(content, styles, masks, seed: int) -> tuple[np.ndarray, float]:
    import nst_plugin

    started = time.perf_counter()
    result = nst_plugin.stylize_frame(content, styles, style_masks=masks, seed=seed)
    return result.image, time.perf_counter() - started


def score(image, content, styles, lawn) -> dict:
    from nst_plugin.images import resize
    from nst_plugin.metrics import region_style, scores

    h, w = image.shape[:2]
    regions = {"lawn": resize(lawn, h, w), "rest": 1.0 - resize(lawn, h, w)}
    row = {"content": scores(image, content, styles[0])["content"]}
    for region, mask in regions.items():
        for n, style in enumerate(styles, start=1):
            row[f"{region}:style{n}"] = region_style(image, style, mask)
    return row


def picture(path: Path, panels: list[tuple[str, np.ndarray]]) -> None:
    """The panels side by side, each labelled, as a JPEG."""
    import cv2

    from nst_plugin.images import save_image

    labelled = []
    for label, image in panels:
        image = np.ascontiguousarray(image)
        cv2.putText(image, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(image, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        labelled.append(image)
    save_image(path, np.concatenate(labelled, axis=1))


def table(results: dict) -> str:
    lines = ["| run | lawn: style 1 | lawn: style 2 | rest: style 1 | rest: style 2 | content | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in results["rows"].items():
        cells = [f"{row[k]['style_other']:.3g} ({row[k]['style']:.3g})"
                 for k in ("lawn:style1", "lawn:style2", "rest:style1", "rest:style2")]
        lines.append(f"| {name} | {' | '.join(cells)} | {row['content']:.3f} | {row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--content", default=str(SAMPLES / "street.jpg"))
    parser.add_argument("--style1", default=str(SAMPLES / "starry_night.jpg"), help="the lawn's style")
    parser.add_argument("--style2", default=str(SAMPLES / "HappyFish.jpg"), help="the rest's style")
    parser.add_argument("--rows", default="masked,blended,style 1 only,style 2 only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--picture", default=str(ROOT / "docs" / "images" / "style_mask.jpg"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "style_mask"))
    args = parser.parse_args()

    from nst_plugin.images import load_image, resize, save_image

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    content = load_image(args.content, "content")
    styles = [load_image(args.style1, "style 1"), load_image(args.style2, "style 2")]
    lawn = lawn_mask(content)
    save_image(out / "lawn_mask.png", np.repeat((lawn * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2))
    setups = {"masked": (styles, [lawn, None]), "blended": (styles, None),
              "style 1 only": (styles[:1], None), "style 2 only": (styles[1:], None)}
    results = {"content": args.content, "styles": [args.style1, args.style2], "machine": describe_machine(),
               "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d"), "lawn_fraction": float(lawn.mean()),
               "rows": {}}
    images = {}
    for name in args.rows.split(","):
        images[name], seconds = run(content, *setups[name], seed=args.seed)
        save_image(out / f"{name.replace(' ', '_')}.png", images[name])
        results["rows"][name] = dict(score(images[name], content, styles, lawn), seconds=seconds)
        print(name, json.dumps(results["rows"][name]), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "table.md").write_text(table(results))
    print(table(results))
    if "masked" in images and "blended" in images:
        h, w = images["masked"].shape[:2]
        mask_rgb = np.repeat((resize(lawn, h, w) * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
        picture(Path(args.picture), [("content", resize(content, h, w)), ("mask: lawn = style 1", mask_rgb),
                                     ("two styles by mask", images["masked"]), ("blended (before)", images["blended"])])
        print(f"wrote {args.picture}")


if __name__ == "__main__":
    main()
