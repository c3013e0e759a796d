"""The keyframe engine's last stage (every frame: tracks, network, strokes, temporal filter), part by part: how
far from real time, and what the temporal filter gains by taking the texture track's flows.

On the keyframe benchmark's report clip (vtest.avi 400-447 + Megamind.avi 100-147, a cut at 49), the engine
runs all in through ``nst_plugin.stylize_sequence``, with cheap keyframes and training (``--iterations``,
``--steps``: the last stage's cost does not depend on them), twice per variant, alternating, side by side in
one process:

* ``shared``: the engine as it is (the filter takes the flows between neighbouring frames from the texture
  track);
* ``recomputed``: the filter computes those flows again (as before 2026-12-05).

Each part is timed by wrapping it: the plan's pass (following each keyframe, not part of the last stage), the guide track and the texture track (optical flow, checks, recovery,
the keyframe resampled), the network, the strokes laid over it (``composite``), the temporal filter, the
enlargement to the output size. Frames of the two variants must be the same, bit for bit. Prints a table
and writes it to benchmarks/results/last_stage/table.md.

    .venv/bin/python benchmarks/last_stage_bench.py [--size 360] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import nst_plugin  # noqa: E402
from nst_plugin.images import load_image  # noqa: E402

from keyframe_bench import find_clip, read_range  # noqa: E402  (benchmarks/)
from machine import describe as describe_machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("plan", "guide track", "texture track", "network", "strokes (composite)", "temporal filter", "enlarge")


def timed(spent: dict, part: str, function):
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - t0
    return wrapper


def run(frames, style, size: int, shared: bool, iterations: int, steps: int):
    """One all-in run: {part: seconds}, the run's timings, its frames."""
    from nst_plugin.builtin.keyframes import engine, guides, network, smoothing, transport

    spent = defaultdict(float)
    patches = [(guides.GuideTrack, "next", "guide track"), (transport.TextureTrack, "next", "texture track"),
               (network, "stylize_image", "network"), (transport, "composite", "strokes (composite)"),
               (smoothing, "smooth", "temporal filter"), (engine, "enlarge", "enlarge"),
               (transport.Coverage, "next", "plan"), (transport.Coverage, "keyframe", "plan")]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    keep = engine._Run._keep_flows
    try:
        for owner, name, part in patches:
            setattr(owner, name, timed(spent, part, getattr(owner, name)))
        if not shared:
            engine._Run._keep_flows = lambda *args: None
        made = {}
        result = nst_plugin.stylize_sequence(frames, style, made.__setitem__, engine="keyframes", size=size,
                                             iterations=iterations, weights="hed",
                                             options={"keyframes.steps": steps})
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
        engine._Run._keep_flows = keep
    spent["texture track"] -= spent["plan"]  # the plan follows the keyframes with a texture track of its own
    return dict(spent), result.stats["timings"], made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=360)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10, help="the keyframes' L-BFGS iterations (cheap)")
    parser.add_argument("--steps", type=int, default=100, help="training steps (cheap)")
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/last_stage"))
    args = parser.parse_args()
    first = read_range(find_clip("vtest.avi"), 400, 48)
    second = read_range(find_clip("Megamind.avi"), 100, 48, first[0].shape[:2])
    frames = list(enumerate(first + second, start=1))
    style = load_image(args.style)
    n = len(frames)
    rows, images = defaultdict(list), {}
    for repeat in range(args.repeats):
        for variant in ("shared", "recomputed"):
            spent, timings, made = run(frames, style, args.size, variant == "shared", args.iterations, args.steps)
            rows[variant].append((spent, timings))
            images.setdefault(variant, made)
            last = spent and sum(spent.values())
            print(f"{variant} #{repeat + 1}: last stage {n / (timings['tracks'] + timings['frames']):.2f} frames/s, "
                  f"parts {last:.1f} s", flush=True)
    same = all(np.array_equal(images["shared"][i].image, images["recomputed"][i].image) for i in images["shared"])
    h, w = images["shared"][1].image.shape[:2]
    mean = lambda variant, get: float(np.mean([get(*row) for row in rows[variant]]))  # noqa: E731
    lines = [f"{describe_machine()}; {n} frames of the report clip at {w}x{h}, {args.repeats} runs per variant, "
             f"alternating; frames of the two variants the same bit for bit: {same}", "",
             "| part (ms a frame) | " + " | ".join(rows) + " |", "| --- | " + " | ".join("---:" for _ in rows) + " |"]
    for part in PARTS:
        lines.append(f"| {part} | " + " | ".join(f"{1000 * mean(v, lambda s, t: s.get(part, 0.0)) / n:.1f}"
                                                 for v in rows) + " |")
    lines.append("| **last stage: tracks + frames (engine's timings)** | " + " | ".join(
        f"**{1000 * mean(v, lambda s, t: t['tracks'] + t['frames']) / n:.1f}**" for v in rows) + " |")
    lines.append("| last stage, frames/s | " + " | ".join(
        f"{n / mean(v, lambda s, t: t['tracks'] + t['frames']):.2f}" for v in rows) + " |")
    text = "\n".join(lines) + "\n"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
