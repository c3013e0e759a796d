"""``nst video --cluster``: a 2-worker LocalCluster against one process on a clip with several shots, and a
model of N workers for a 2-minute clip.

The clip: four shots of ``--frames`` frames each from the samples (street.avi, face.avi, HappyFish.jpg
panning, walkers.avi), at the street clip's size, written as a PNG sequence. The L-BFGS engine (default
preset, ``--size``, hed weights) stylizes it with the ``nst video`` command, timed from the command's start
to its end (TensorFlow's start included):

* in one process (TensorFlow's threads: every core), and
* with ``--cluster local --workers N`` (TensorFlow's threads: the cores shared out), a shot a unit, frames
  shipped to and from the workers,

and the frames of the two runs are compared. The model: a unit is a shot, its cost the cold first frame plus
the warm frames (both measured here, per frame, in the one-process run), a worker's start-up (the one-process
run's time outside its frames: TensorFlow, backbone, style targets) once; N workers take the units longest
first (LPT); the critical path is the longest shot. For the keyframe
engine the model uses the costs measured in keyframe_bench.py (docs/benchmarks/keyframes.md): keyframes are independent, but each
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
SHOTS = ("street.avi", "face.avi", "HappyFish.jpg", "walkers.avi")  # a cut between each two (HappyFish pans)
FPS = 24


def write_clip(folder: Path, frames: int) -> Path:
    from nst_plugin.images import resize, save_image
    from nst_plugin.video import open_source

    from nst_plugin.images import load_image

    folder.mkdir(parents=True, exist_ok=True)
    shape, n = None, 0
    for name in SHOTS:
        if name.endswith(".jpg"):
            still = resize(load_image(ROOT / "samples" / name), *shape)
            shot = [np.roll(still, 3 * k, axis=1) for k in range(frames)]
        else:
            shot = [frame for _, frame in open_source(ROOT / "samples" / name, frames=f"1-{frames}")]
        for frame in shot:
            shape = shape or frame.shape[:2]
            n += 1
            save_image(folder / f"{n:04d}.png", resize(frame, *shape))
    return folder / "####.png"


def timed_command(*args) -> float:
    """``nst video`` in its own process; its wall time."""
    import subprocess
    import sys

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nst_plugin", "video", *map(str, args), "--progress", "none"], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - started


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
    one = lpt(costs, 1, startup)
    rows = []
    for n in workers:
        span = lpt(costs, n, startup)
        rows.append({"workers": n, "hours": span / 3600, "speedup": one / span})
    return rows, one / (startup + max(costs))


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

    from nst_plugin.images import load_image

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    pattern = write_clip(out / "clip", args.frames)
    machine = describe_machine()
    settings = [pattern, "--style", args.style, "--size", args.size, "--weights", "hed"]
    one = timed_command(*settings, "-o", out / "one")
    spread = timed_command(*settings, "-o", out / "cluster", "--cluster", "local", "--workers", args.workers)

    manifest = json.loads((out / "one" / "nst_manifest.json").read_text())["frames"]
    cold = float(np.mean([e["seconds"] for e in manifest.values() if not e["warm"]]))
    warm = float(np.mean([e["seconds"] for e in manifest.values() if e["warm"]]))
    startup = one - sum(e["seconds"] for e in manifest.values())
    shots = sorted({e["shot"] for e in manifest.values()})
    on_workers = json.loads((out / "cluster" / "nst_manifest.json").read_text())["frames"]
    frames = sorted(p.name for p in (out / "one").glob("frame_*.png"))
    differ = [n for n in frames if not np.array_equal(load_image(out / "one" / n), load_image(out / "cluster" / n))]

    lengths = shot_lengths()
    workers = [1, 2, 8, 32]
    lbfgs_rows, lbfgs_bound = lbfgs_model(cold, warm, startup, lengths, workers)
    key_rows, key_bound = keyframes_model(lengths, workers)

    lines = [
        f"machine: {machine}; clip: {len(SHOTS)} x {args.frames} frames ({len(shots)} shots found), {args.size} px, "
        "L-BFGS default preset, hed weights",
        "",
        "| run | wall (s) | frames/min | speed-up |",
        "| --- | ---: | ---: | ---: |",
        f"| one process | {one:.1f} | {len(frames) / one * 60:.2f} | 1.00 |",
        f"| `--cluster local --workers {args.workers}` | {spread:.1f} | "
        f"{len(frames) / spread * 60:.2f} | {one / spread:.2f} |",
        "",
        f"frames equal to the one-process run: {len(frames) - len(differ)}/{len(frames)}"
        + (f" (differ: {', '.join(differ)})" if differ else ""),
        f"shots (units): {len(shots)}; frame seconds, one process: {sum(e['seconds'] for e in manifest.values()):.1f}, "
        f"on the workers: {sum(e['seconds'] for e in on_workers.values()):.1f}",
        f"per frame, one process: cold {cold:.1f} s, warm {warm:.1f} s; start-up (outside the frames): {startup:.1f} s",
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
        "machine": machine, "one": one, "cluster": spread, "frames": len(frames), "differ": differ, "shots": len(shots),
        "cold": cold, "warm": warm, "startup": startup, "lengths": lengths, "lbfgs": lbfgs_rows,
        "keyframes": key_rows}, indent=1, default=str))


if __name__ == "__main__":
    main()
