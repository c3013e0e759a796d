"""``nst video --cluster``: a 2-worker LocalCluster against one process on a clip with several shots, and a
model of N workers for a 2-minute clip.

The clip: four shots of ``--frames`` frames each, cut from the samples (street.avi 1-F, walkers.avi 1-F,
face.avi 1-F, street.avi 21-), at the street clip's size, written as a PNG sequence. The L-BFGS engine
(default preset, ``--size``, hed weights) stylizes it

* in one process (TensorFlow's threads: every core), and
* on a LocalCluster of ``--workers`` worker processes (TensorFlow's threads: the cores shared out), a shot a
  unit, frames shipped to and from the workers,

and the frames of the two runs are compared. The model: a unit is a shot, its cost the cold first frame plus
the warm frames (both measured here, per frame), a worker's start-up (TensorFlow, backbone, style targets)
once; N workers take the units longest first (LPT); the critical path is the longest shot. For the keyframe
engine the model uses the costs measured in keyframe_bench.py (README): keyframes are independent, but each
shot's network starts from the previous shot's, so training is a chain.

    .venv/bin/python benchmarks/cluster_bench.py [--frames 6] [--size 128] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from machine import describe as describe_machine  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parent.parent
SHOTS = (("street.avi", 1), ("walkers.avi", 1), ("face.avi", 1), ("street.avi", 21))
FPS = 24


def write_clip(folder: Path, frames: int) -> Path:
    from nst_plugin.images import resize, save_image
    from nst_plugin.video import open_source

    folder.mkdir(parents=True, exist_ok=True)
    shape, n = None, 0
    for name, first in SHOTS:
        for _, frame in open_source(ROOT / "samples" / name, frames=f"{first}-{first + frames - 1}"):
            shape = shape or frame.shape[:2]
            n += 1
            save_image(folder / f"{n:04d}.png", resize(frame, *shape))
    return folder / "####.png"


def lpt(costs: list[float], workers: int, startup: float = 0.0) -> float:
    """Makespan of units given longest first to the first free of ``workers`` (each starts after ``startup``)."""
    free = [startup] * workers
    for cost in sorted(costs, reverse=True):
        i = int(np.argmin(free))
        free[i] += cost
    return max(free)


def shot_lengths(seconds: float = 120.0, mean_shot: float = 5.0, seed: int = 0) -> list[int]:
    """A film-like cut of a clip: shot lengths (frames) log-normal around ``mean_shot`` seconds."""
    rng = np.random.default_rng(seed)
    total, lengths = int(seconds * FPS), []
    while sum(lengths) < total:
        lengths.append(max(12, int(rng.lognormal(math.log(mean_shot * FPS) - 0.18, 0.6))))
    lengths[-1] -= sum(lengths) - total
    return [n for n in lengths if n > 0]


def lbfgs_model(cold: float, warm: float, startup: float, lengths: list[int], workers: list[int]) -> tuple[list[dict], float]:
    costs = [cold + warm * (n - 1) for n in lengths]
    one = sum(costs)
    rows = []
    for n in workers:
        span = lpt(costs, n, startup)
        rows.append({"workers": n, "hours": span / 3600, "speedup": one / span})
    return rows, one / max(costs)


def keyframes_model(lengths: list[int], workers: list[int], keyframe=67.5, training=140.0, fps=7.06,
                    interval=48) -> tuple[list[dict], float]:
    """The keyframe engine at 360 px (keyframe_bench.py): keyframes independent, training a chain over the
    shots (each from the previous shot's network), frames independent."""
    keys = [1 + max(0, (n - 1) // interval) for n in lengths]
    one = sum(keys) * keyframe + len(lengths) * training + sum(lengths) / fps
    rows = []
    for n in workers:
        span = lpt([keyframe] * sum(keys), n) + len(lengths) * training + sum(lengths) / fps / n
        rows.append({"workers": n, "hours": span / 3600, "speedup": one / span})
    return rows, one / (keyframe + len(lengths) * training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=6, help="frames per shot (4 shots)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--style", default=str(ROOT / "samples" / "starry_night.jpg"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cluster"))
    args = parser.parse_args()

    import shutil

    from nst_plugin.api import prepare
    from nst_plugin.cluster import ClusterSpec, connect
    from nst_plugin.images import load_image
    from nst_plugin.video import open_source, stylize_video

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    pattern = write_clip(out / "clip", args.frames)
    config, styles, _ = prepare([load_image(args.style)], size=args.size, weights="hed")
    machine = describe_machine()

    started = time.perf_counter()
    stylize_video(open_source(pattern), styles, config, out / "one")
    one = time.perf_counter() - started

    started = time.perf_counter()
    with connect(ClusterSpec("local", args.workers)) as connection:
        connected = time.perf_counter() - started
        job = stylize_video(open_source(pattern), styles, config, out / "cluster", cluster=connection)
        units = connection.units
    spread = time.perf_counter() - started

    manifest = json.loads((out / "one" / "nst_manifest.json").read_text())["frames"]
    cold = float(np.mean([e["seconds"] for e in manifest.values() if not e["warm"]]))
    warm = float(np.mean([e["seconds"] for e in manifest.values() if e["warm"]]))
    frames = sorted(p.name for p in (out / "one").glob("frame_*.png"))
    differ = [n for n in frames if not np.array_equal(load_image(out / "one" / n), load_image(out / "cluster" / n))]
    first_units = [u["seconds"] for u in units if not u["cached"]]
    later_units = [u["seconds"] for u in units if u["cached"]]
    # a worker's start-up: its first unit's extra time over the mean of the units that found the cache warm
    startup = max(0.0, float(np.mean(first_units) - np.mean(later_units))) if first_units and later_units else 0.0

    lengths = shot_lengths()
    workers = [1, 2, 8, 32]
    lbfgs_rows, lbfgs_bound = lbfgs_model(cold, warm, startup, lengths, workers)
    key_rows, key_bound = keyframes_model(lengths, workers)

    lines = [
        f"machine: {machine}; clip: 4 shots x {args.frames} frames, {args.size} px, L-BFGS default preset, hed weights",
        "",
        "| run | wall (s) | frames/min | speed-up |",
        "| --- | ---: | ---: | ---: |",
        f"| one process | {one:.1f} | {len(frames) / one * 60:.2f} | 1.00 |",
        f"| LocalCluster, {args.workers} workers (start {connected:.1f} s included) | {spread:.1f} | "
        f"{len(frames) / spread * 60:.2f} | {one / spread:.2f} |",
        "",
        f"frames equal to the one-process run: {len(frames) - len(differ)}/{len(frames)}"
        + (f" (differ: {', '.join(differ)})" if differ else ""),
        f"units: {len(units)}; per unit (s): " + ", ".join(f"{u['seconds']:.1f} on {u['worker'].rsplit(':', 1)[-1]}"
                                                         + ("" if u["cached"] else " (first on its worker)") for u in units),
        f"per frame, one process: cold {cold:.1f} s, warm {warm:.1f} s; a worker's start-up: {startup:.1f} s",
        "",
        f"model: a 2-minute clip at {FPS} fps, {len(lengths)} shots (mean {np.mean(lengths) / FPS:.1f} s, longest "
        f"{max(lengths)} frames = {max(lengths) / FPS:.1f} s), these per-frame costs; keyframes at 360 px with "
        "keyframe_bench.py's costs (67.5 s a keyframe, 140 s a shot's training, 7.06 frames/s)",
        "",
        "| workers | lbfgs (h) | lbfgs speed-up | keyframes (h) | keyframes speed-up |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for a, b in zip(lbfgs_rows, key_rows):
        lines.append(f"| {a['workers']} | {a['hours']:.2f} | {a['speedup']:.1f} | {b['hours']:.2f} | {b['speedup']:.1f} |")
    lines += ["", f"upper bound, any number of workers: lbfgs {lbfgs_bound:.1f}x (all / the longest shot), "
              f"keyframes {key_bound:.1f}x (all / the chain of shots' training + one keyframe)"]
    text = "\n".join(lines)
    print(text)
    (out / "table.md").write_text(text + "\n")
    (out / "results.json").write_text(json.dumps({
        "machine": machine, "one": one, "cluster": spread, "connect": connected, "frames": len(frames),
        "differ": differ, "units": units, "cold": cold, "warm": warm, "startup": startup, "lengths": lengths,
        "lbfgs": lbfgs_rows, "keyframes": key_rows, "written": len(job.written)}, indent=1, default=str))


if __name__ == "__main__":
    main()
