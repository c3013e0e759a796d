"""One frame, the article's method (``seed`` preset) against ``default``, same weights, same run.

Prints a table (seconds, loss evaluations, style and content scores measured by a separate fixed VGG16,
ratios) and writes it with a picture (content | seed | default) and the loss curves to benchmarks/results/.

    .venv/bin/python benchmarks/frame_bench.py [--size 224] [--weights auto]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import nst_plugin  # noqa: E402
from nst_plugin.images import load_image, resize, save_image  # noqa: E402
from nst_plugin.metrics import scores  # noqa: E402
from nst_plugin.report import plot_losses  # noqa: E402

from machine import describe as describe_machine  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=str(ROOT / "samples/street.jpg"))
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    content = load_image(args.content)
    style = load_image(args.style)
    common = dict(size=args.size, square=True, weights=args.weights)  # the article's 224x224 for both
    rows = {}
    for name in ("seed", "default"):
        started = time.perf_counter()
        result = nst_plugin.stylize_frame(content, style, preset=name, seed=0, **common)
        seconds = time.perf_counter() - started
        measured = scores(result.image, resize(content, args.size, args.size), style, weights=args.weights)
        rows[name] = {"seconds": seconds, "evaluations": result.stats["evaluations"], **measured,
                      "weights": result.stats["backbone_weights"]["source"]}
        save_image(out / f"frame_{name}.png", result.image)
        plot_losses(result.stats["history"], out / f"frame_{name}_loss.png", title=f"{name} preset: weighted loss per term")
        print(f"{name}: {seconds:.1f} s, {result.stats['evaluations']} evaluations, "
              f"style {measured['style']:.4g}, content {measured['content']:.4g}", flush=True)

    seed, default = rows["seed"], rows["default"]
    table = [
        f"Machine: {describe_machine()}. Image {args.size}x{args.size}, weights: {seed['weights']}.",
        "",
        "| preset | seconds | evaluations | style score (lower is better) | content score (lower is better) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        table.append(f"| {name} | {row['seconds']:.1f} | {row['evaluations']} | {row['style']:.4g} | {row['content']:.4g} |")
    table += [
        f"| default / seed | {default['seconds'] / seed['seconds']:.3f} | "
        f"{default['evaluations'] / seed['evaluations']:.3f} | {default['style'] / seed['style']:.3f} | "
        f"{default['content'] / seed['content']:.3f} |",
    ]
    targets = {
        "time <= 1/5 of seed": default["seconds"] <= seed["seconds"] / 5,
        "style score <= 1/2 of seed": default["style"] <= seed["style"] / 2,
        "content score < seed": default["content"] < seed["content"],
    }
    table.append("")
    table.append("Targets: " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in targets.items()))
    text = "\n".join(table)
    print("\n" + text)
    (out / "frame_bench.md").write_text(text + "\n")
    (out / "frame_bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    strip = np.concatenate([resize(content, args.size, args.size), load_image(out / "frame_seed.png"),
                            load_image(out / "frame_default.png")], axis=1)
    save_image(out / "frame_strip.png", strip)
    print(f"\npictures: {out / 'frame_strip.png'} (content | seed | default), loss curves: {out}/frame_*_loss.png")


if __name__ == "__main__":
    main()
