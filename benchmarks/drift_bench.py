"""Does a long shot keep its subject? The default engine (warm-started frames) over a whole shot, next to the
same frames stylized cold one by one, in one run, on a held-out clip.

For every frame of the shot: edge correlation with its source frame (Pearson correlation of Sobel
magnitudes) and moving-content (block3_conv3 content distance where the DIS flow differs from its median by
more than 1 px: the subjects), from ``nst_plugin.metrics`` (a fixed VGG16, not the objective). Cold frames are
stylized at a few checkpoints (cold frames cost several times a warm one). Targets (issue 10): at the end of
a 40-frame shot, warm frames' moving-content at most 1.25x and their edge correlation at least 0.9x those of
the same frames stylized cold.

Writes benchmarks/results/drift/<clip>_<style>/: table.md, results.json, drift.png (per-frame plot) and
strip.png (source / warm / cold at the checkpoints).

    .venv/bin/python benchmarks/drift_bench.py [--clip samples/walkers.avi] [--style samples/baboon.jpg]
        [--frames 40] [--size 224] [--cold 1,20,40] [--set key=value ...]
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
from nst_plugin.metrics import edge_correlation, moving_content, scores  # noqa: E402

from machine import describe as describe_machine  # noqa: E402  (benchmarks/machine.py)
from video_bench import ewarp_series, plot, read_frames, run_engine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"warm edge": (31, 119, 180), "cold edge": (214, 39, 40), "warm moving": (44, 160, 44),
           "cold moving": (148, 103, 189)}


def parse_sets(pairs: list[str]) -> dict:
    """``key=value`` pairs (JSON values where they parse) as engine settings."""
    settings = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value
    return settings


def frame_scores(image, source, previous_source, style, weights) -> dict:
    row = {"edge": edge_correlation(image, source)}
    row["moving"] = moving_content(image, source, previous_source, weights=weights) if previous_source is not None else float("nan")
    row.update(scores(image, source, style, weights=weights))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default=str(ROOT / "samples/walkers.avi"))
    parser.add_argument("--style", default=str(ROOT / "samples/baboon.jpg"))
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--weights", default="hed")
    parser.add_argument("--cold", default="1,20,40", help="frames also stylized cold (1-based)")
    parser.add_argument("--set", action="append", default=[], help="engine setting key=value (repeatable)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/drift"))
    args = parser.parse_args()

    sources = read_frames(args.clip, args.frames)
    style = load_image(args.style)
    settings = dict(size=args.size, weights=args.weights, **parse_sets(args.set))
    label = f"{Path(args.clip).stem}_{Path(args.style).stem}"
    out = Path(args.out) / label
    out.mkdir(parents=True, exist_ok=True)
    print(f"{describe_machine()}; {len(sources)} frames of {Path(args.clip).name}, style {Path(args.style).name}, "
          f"{args.size} px, settings {settings}", flush=True)

    started = time.perf_counter()
    warm = run_engine("warm", sources, style, settings)
    warm_seconds = time.perf_counter() - started
    checkpoints = [int(c) for c in args.cold.split(",") if c.strip() and 1 <= int(c) <= len(sources)]
    cold = {}
    cold_seconds = []
    for index in checkpoints:
        t0 = time.perf_counter()
        result = nst_plugin.stylize_frame(sources[index - 1], style, **settings)
        cold_seconds.append(time.perf_counter() - t0)
        cold[index] = result.image
        print(f"  cold frame {index}: {cold_seconds[-1]:.1f} s, {result.stats['evaluations']} evaluations", flush=True)

    shape = warm["images"][0].shape[:2]
    small = [resize(s, *shape) for s in sources]
    rows = {}
    for i, image in enumerate(warm["images"], start=1):
        rows[i] = {"warm": frame_scores(image, small[i - 1], small[i - 2] if i > 1 else None, style, args.weights)}
        if i in cold:
            rows[i]["cold"] = frame_scores(cold[i], small[i - 1], small[i - 2] if i > 1 else None, style, args.weights)

    last = checkpoints[-1]
    end = rows[last]
    moving_ratio = end["warm"]["moving"] / end["cold"]["moving"] if end["cold"]["moving"] else float("nan")
    edge_ratio = end["warm"]["edge"] / end["cold"]["edge"] if end["cold"]["edge"] else float("nan")
    lines = [
        f"{describe_machine()}; {len(sources)} frames of `{Path(args.clip).name}` at {args.size} px, style "
        f"`{Path(args.style).name}`, weights {args.weights}; settings {settings or 'the default preset'}",
        "",
        "| frame | warm edge | cold edge | warm moving | cold moving | warm content | cold content | warm style | cold style |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i in checkpoints:
        w, c = rows[i]["warm"], rows[i]["cold"]
        lines.append(f"| {i} | {w['edge']:.3f} | {c['edge']:.3f} | {w['moving']:.3f} | {c['moving']:.3f} | "
                     f"{w['content']:.3f} | {c['content']:.3f} | {w['style']:.3g} | {c['style']:.3g} |")
    per_warm = float(np.mean(warm["seconds"][1:])) if len(warm["seconds"]) > 1 else float("nan")
    ewarp = float(np.mean(ewarp_series(warm["images"], small)))
    ewarp_source = float(np.mean(ewarp_series(small, small)))
    lines += [
        "",
        f"At frame {last}: warm moving-content {moving_ratio:.2f}x cold (target <= 1.25), warm edge correlation "
        f"{edge_ratio:.2f}x cold (target >= 0.9). Seconds: warm frames {per_warm:.1f} s each after the first "
        f"({warm_seconds:.0f} s for the shot), cold frames {np.mean(cold_seconds):.1f} s each. E_warp of the "
        f"warm shot {ewarp:.5f} (the source's own {ewarp_source:.5f}).",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    (out / "table.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({
        "settings": settings, "clip": args.clip, "style": args.style, "size": args.size, "rows": rows,
        "moving_ratio": moving_ratio, "edge_ratio": edge_ratio, "warm_seconds": warm["seconds"], "ewarp": ewarp,
        "ewarp_source": ewarp_source,
        "cold_seconds": cold_seconds, "warm_stats": warm["stats"],
    }, indent=1, default=float))
    n = len(warm["images"])
    series = {
        "warm edge": [rows[i]["warm"]["edge"] for i in range(1, n + 1)],
        "cold edge": [rows[i]["cold"]["edge"] if "cold" in rows[i] else float("nan") for i in range(1, n + 1)],
        "warm moving": [rows[i]["warm"]["moving"] for i in range(1, n + 1)],
        "cold moving": [rows[i]["cold"]["moving"] if "cold" in rows[i] else float("nan") for i in range(1, n + 1)],
    }
    plot(series, out / "drift.png", f"{label}: edge correlation (higher is better) and moving-content (lower)",
         xlabel="frame of the shot (values on a log scale)", colours=COLOURS)
    h, w = shape
    columns = [np.concatenate([small[i - 1], warm["images"][i - 1], cold[i]], axis=0) for i in checkpoints]
    save_image(out / "strip.png", np.concatenate(columns, axis=1))
    for i in checkpoints:
        save_image(out / f"warm_{i:03d}.png", warm["images"][i - 1])
        save_image(out / f"cold_{i:03d}.png", cold[i])
    print(f"wrote {out}/table.md, results.json, drift.png, strip.png (rows: source, warm, cold)")


if __name__ == "__main__":
    main()
