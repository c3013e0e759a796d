"""``nst preview-server`` (the Blender add-on's Live Preview) as docs/benchmarks-live.md reports it.

A real server process on a clip, at the Live Preview's size (360 px, the add-on's cap), driven as the add-on
drives it (one ``{"frame": N}`` line per playhead move, answers read from its stdout):

* cold (an empty network cache): seconds from the process's start to its ``ready`` line; the first answer
  (the frame in the style's colours, at once); then seconds from the process's start to the first answer
  through the network, and from the request to it (the keyframe stylized and the network learnt from it);
* scrub: ``--scrub`` frames asked one after another in a random order (each once its predecessor is answered):
  median and max of the time from the request to the answer, on the client's clock;
* drag: ``--scrub`` requests 1/24 s apart (a playhead dragged): how many were answered, and the time from the
  last request to its answer;
* warm: a new process with the cache the cold one left: seconds from its start to its first answer through
  the network.

Then the look: ``--shots`` of the answered frames beside the live mode's picture of the same frames (the same
network and keyframe, the frames read in order from the clip's start through the live painter, its temporal
filter included) and the source; the mean difference between the two and ``nst_plugin.metrics`` content and
style distances of each. Writes the table (markdown) to stdout and ``--out``, the picture to ``--picture``.

    .venv/bin/python benchmarks/preview_bench.py [--clip samples/street.avi] [--size 360] [--scrub 20]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from live_bench import picture  # noqa: E402  (benchmarks/live_bench.py)
from machine import describe as describe_machine  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parent.parent


class Client:
    """The server process, driven as the add-on drives it."""

    def __init__(self, clip: str, style: str, folder: Path, cache: Path, size: int):
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nst_plugin", "preview-server", clip, "-s", style, "-o", str(folder), "--size",
             str(size)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, NST_CACHE_DIR=str(cache)))
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put((time.perf_counter(), json.loads(line)))

    def ready(self, timeout: float = 600) -> float:
        """When the server said it is ready (its source opened, its settings checked)."""
        while True:
            at, data = self.lines.get(timeout=timeout)
            if data.get("event") == "ready":
                return at

    def ask(self, frame: int) -> float:
        self.process.stdin.write(json.dumps({"frame": frame}) + "\n")
        self.process.stdin.flush()
        return time.perf_counter()

    def answer(self, live: bool = False, timeout: float = 600) -> tuple[float, dict]:
        """(when, the next answer); ``live``: the next one through the trained network."""
        while True:
            at, data = self.lines.get(timeout=timeout)
            if "error" in data:
                raise RuntimeError(data["error"])
            if "frame" in data and (not live or data["stage"] == "live"):
                return at, data

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def timings(clip: str, style: str, size: int, scrub: int, work: Path, seed: int = 0) -> tuple[dict, dict]:
    """(the numbers, {frame: answered PNG path})."""
    cache, count = work / "cache", _frame_count(clip)
    client = Client(clip, style, work / "cold", cache, size)
    key = count // 2
    ready = client.ready()
    asked = client.ask(key)
    shown, _ = client.answer()  # the palette, at once
    at, first = client.answer(live=True)
    result = {"ready": ready - client.started, "cold_palette": shown - asked, "cold_from_start": at - client.started,
              "cold_from_request": at - asked,
              "network": first["network"], "size": f"{first['width']}x{first['height']}"}
    paths = {first["frame"]: first["path"]}
    frames = random.Random(seed).sample([n for n in range(1, count + 1) if n != key], min(scrub, count - 1))
    latencies = []
    for frame in frames:
        asked = client.ask(frame)
        at, data = client.answer()
        latencies.append(at - asked)
        paths[data["frame"]] = data["path"]
    result.update(scrub_median=statistics.median(latencies), scrub_max=max(latencies), scrubbed=len(latencies))
    drag = list(range(1, min(scrub, count) + 1))
    for frame in drag:
        last = client.ask(frame)
        time.sleep(1 / 24)
    answers = [client.answer()]
    while answers[-1][1]["frame"] != drag[-1]:
        answers.append(client.answer())
    result.update(drag_answered=len(answers), drag_asked=len(drag), drag_last=answers[-1][0] - last)
    client.close()
    warm = Client(clip, style, work / "warm", cache, size)
    warm.ask(key)
    at, data = warm.answer(live=True)
    result.update(warm_from_start=at - warm.started, warm_network=data["network"])
    warm.close()
    return result, paths


def _frame_count(clip: str) -> int:
    from nst_plugin.video import open_source

    return open_source(clip).count


def live_pictures(clip: str, style_path: str, size: int, cache: Path, frames: list[int]) -> dict[int, np.ndarray]:
    """The live mode's pictures of ``frames``: the server's cached network and keyframe, the clip's frames
    read in order from its start through the live painter (temporal filter and strokes as a camera gets them)."""
    from nst_plugin.api import prepare
    from nst_plugin.builtin.keyframes.network import NetworkShape, build_network
    from nst_plugin.images import load_image
    from nst_plugin.live.cache import NetworkCache
    from nst_plugin.live.painter import Painter
    from nst_plugin.live.preview import live_flat, preview_key
    from nst_plugin.live.session import live_settings
    from nst_plugin.live.stages import LIVE, StyleState
    from nst_plugin.settings import overrides_from_settings
    from nst_plugin.video import open_source

    style = load_image(style_path, "style image")
    preset, overrides = overrides_from_settings(live_flat({"size": size}))
    config, _, _ = prepare([style], preset or "default", **overrides)
    source = open_source(clip)
    settings = live_settings(config, (source.height, source.width))
    store = NetworkCache(cache / "live")
    key = preview_key(style, config, settings, source)
    model = build_network(NetworkShape())
    model.load_weights(str(store.find(key)))
    state = StyleState(1, "style", style, key, keyframe=store.find_keyframe(key))
    state.publish(model.get_weights(), LIVE)
    painter, shown = Painter(settings), {}
    for index, image in source.read():
        if index > max(frames):
            break
        shown[index] = painter(state, image)[0]
    return {n: shown[n] for n in frames}


def look(clip: str, style_path: str, size: int, cache: Path, paths: dict, shots: int, out: Path) -> dict:
    from nst_plugin.images import load_image, resize
    from nst_plugin.metrics import scores
    from nst_plugin.video import open_source

    frames = sorted(paths)[:: max(1, len(paths) // shots)][:shots]
    live = live_pictures(clip, style_path, size, cache, frames)
    style = load_image(style_path, "style image")
    sources = {n: image for n, image in open_source(clip).read() if n in frames}
    served = {n: load_image(paths[n]) for n in frames}
    h, w = served[frames[0]].shape[:2]
    rows = {"source": [resize(sources[n], h, w) for n in frames], "Live Preview (server)": [served[n] for n in frames],
            "live mode (same network, clip played)": [live[n] for n in frames]}
    picture(rows, out)
    measured = {name: [scores(rows[name][i], rows["source"][i], style) for i in range(len(frames))]
                for name in list(rows)[1:]}
    difference = float(np.mean([np.abs(served[n].astype(float) - live[n]).mean() for n in frames]))
    return {"frames": frames, "difference": difference,
            **{name: {k: float(np.mean([s[k] for s in values])) for k in ("content", "style_other")}
               for name, values in measured.items()}}


def report(n: dict, quality: dict, args, load: float, end: float) -> str:
    """The markdown that docs/benchmarks-live.md quotes."""
    where = args.picture.relative_to(ROOT) if args.picture.is_relative_to(ROOT) else args.picture
    looks = "; ".join(f"{name} {quality[name]['content']:.3f} / {quality[name]['style_other']:.3g}"
                      for name in ("Live Preview (server)", "live mode (same network, clip played)"))
    return "\n".join([
        f"{time.strftime('%Y-%m-%d')}; {describe_machine()}; clip `{Path(args.clip).name}`, style "
        f"`{Path(args.style).name}`; load average {load:.2f} at the start, {end:.2f} at the end", "",
        "| size | server ready | palette, cold | first live answer, cold (from start / from request) | scrub: median "
        f"/ max over {n['scrubbed']} frames, random order | drag: answered / asked, last answer after | first live "
        "answer, warm (network cached), from start |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {n['size']} | {n['ready']:.1f} s | {n['cold_palette'] * 1000:.0f} ms | {n['cold_from_start']:.1f} s / "
        f"{n['cold_from_request']:.1f} s ({n['network']}) | {n['scrub_median'] * 1000:.0f} ms / "
        f"{n['scrub_max'] * 1000:.0f} ms | {n['drag_answered']} / {n['drag_asked']}, {n['drag_last'] * 1000:.0f} ms | "
        f"{n['warm_from_start']:.1f} s ({n['warm_network']}) |", "",
        f"Look, frames {', '.join(map(str, quality['frames']))}: mean |server - live mode| {quality['difference']:.1f} "
        f"/ 255; content distance (block4) / style distance (layers the objective does not use), mean: {looks}",
        f"Picture: {where}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", default=str(ROOT / "samples" / "street.avi"))
    parser.add_argument("--style", default=str(ROOT / "samples" / "starry_night.jpg"))
    parser.add_argument("--size", type=int, default=360)
    parser.add_argument("--scrub", type=int, default=20, help="frames asked in a random order (and dragged over)")
    parser.add_argument("--shots", type=int, default=4, help="frames side by side in the picture")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "preview" / "table.md")
    parser.add_argument("--picture", type=Path, default=ROOT / "docs" / "images" / "preview_live_street.jpg")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="nst-preview-bench-") as work:
        numbers, paths = timings(args.clip, args.style, args.size, args.scrub, Path(work))
        quality = look(args.clip, args.style, args.size, Path(work) / "cache", paths, args.shots, args.picture)
    text = report(numbers, quality, args, load, os.getloadavg()[0])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
