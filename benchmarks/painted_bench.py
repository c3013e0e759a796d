"""Painted keyframes (issue 27), measured with a filter standing in for the artist.

A deterministic filter is the "artist": the painted keyframe is the filter applied to frame 1 of a shot, and
the right answer for frame t is the same filter applied to frame t, so every frame has a ground truth. The
filters: ``stylization`` (OpenCV's edge-preserving watercolour look), ``pencil`` (``cv2.pencilSketch``'s
colour output) and ``cartoon`` (bilateral smoothing, colour quantisation, dark edges).

A clip is 48 frames (``--frames``) of one of OpenCV's sample videos from ``--start``, cropped to 16:9 and
scaled to 640x360. Rows, each scored over the frames after the keyframe:

* ``source``: the source frames, unstyled;
* ``carried``: the painted keyframe carried along the shot by DIS flow (each frame's backward flow composed
  along the shot, as the guide track follows it; both ways from a keyframe painted after frame 1, the first
  of ``--painted-at``): an EbSynth-like baseline;
* ``today``: the keyframe engine with its defaults before painted keyframes existed, its frame engine's
  keyframe replaced by the painting (at the keyframe size, ``--keyframes 1``): what a user got by replacing
  a keyframe file by hand;
* ``ours``: ``--keyframe-image 1=painting.png`` (``keyframes.images``).

Columns: mean PSNR and SSIM against the ground truth; PSNR of the first 8 and the last 8 of those frames
(decay); E_warp (Lai et al. 2018, ``nst_plugin.flow.warping_error``) over the source's own; seconds (wall;
results.json also has the process's CPU seconds).
``--time-style``: also today's engine on the same clip with a style image and its own keyframe (the time a
run costs, the frame engine's keyframe included), which is what a painted run's time is compared with.

    .venv/bin/python benchmarks/painted_bench.py --clip vtest.avi --start 100          # the tuning clip
    .venv/bin/python benchmarks/painted_bench.py --clip Megamind.avi --start 100 --picture docs/images/painted_megamind.jpg

Writes ``--out`` (default benchmarks/results/painted/<clip>_<start>/): results.json and table.md.
Design and measurements: docs/design/keyframes.md#painted-keyframes, docs/painted-keyframes.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keyframe_bench import find_clip  # noqa: E402  (benchmarks/keyframe_bench.py)
from machine import describe as describe_machine  # noqa: E402
from video_bench import ewarp_series  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHAPE = (360, 640)  # (height, width) of the scored frames


# -- the artists ------------------------------------------------------------------------------------------

def stylization(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.stylization(np.ascontiguousarray(rgb[..., ::-1]))[..., ::-1].copy()


def pencil(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.pencilSketch(np.ascontiguousarray(rgb[..., ::-1]), sigma_s=60, sigma_r=0.07, shade_factor=0.05)[1][..., ::-1].copy()


def cartoon(rgb: np.ndarray) -> np.ndarray:
    import cv2

    smooth = rgb
    for _ in range(2):
        smooth = cv2.bilateralFilter(smooth, 9, 75, 75)
    flat = (smooth // 32) * 32 + 16
    grey = cv2.medianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), 5)
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return (flat * (edges[..., None] > 0)).astype(np.uint8)


FILTERS = {"stylization": stylization, "pencil": pencil, "cartoon": cartoon}


# -- the clip and the scores ------------------------------------------------------------------------------

def read_clip(name: str, start: int, count: int) -> list[np.ndarray]:
    """``count`` frames from frame ``start`` (1-based) of an OpenCV sample clip, cropped to 16:9, at 640x360."""
    import cv2

    capture = cv2.VideoCapture(find_clip(name))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start - 1)
    frames = []
    for _ in range(count):
        ok, bgr = capture.read()
        if not ok:
            raise SystemExit(f"{name} has fewer than {start + count - 1} frames")
        h, w = bgr.shape[:2]
        crop = round(w * SHAPE[0] / SHAPE[1])
        top = (h - crop) // 2
        frames.append(cv2.resize(bgr[top:top + crop], SHAPE[::-1], interpolation=cv2.INTER_AREA)[..., ::-1].copy())
    return frames


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang et al. 2004 SSIM, an 11x11 Gaussian window (sigma 1.5), the mean over the RGB channels."""
    import cv2

    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    values = []
    for c in range(3):
        x, y = a[..., c], b[..., c]
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        values.append(np.mean((2 * mx * my + c1) * (2 * sxy + c2) / ((mx * mx + my * my + c1) * (sxx + syy + c2))))
    return float(np.mean(values))


def score(outputs: list[np.ndarray], truth: list[np.ndarray], sources: list[np.ndarray], source_ewarp: float,
          painted=(1,)) -> dict:
    """PSNR, SSIM (over the frames that are not ``painted``, 1-based), first 8 and last 8 of those frames'
    PSNR, E_warp (every frame) over the source's."""
    scored = [t for t in range(len(outputs)) if t + 1 not in painted]
    p = [psnr(outputs[t], truth[t]) for t in scored]
    s = [ssim(outputs[t], truth[t]) for t in scored]
    ewarp = float(np.mean(ewarp_series(outputs, sources)))
    return {"psnr": round(float(np.mean(p)), 2), "ssim": round(float(np.mean(s)), 3),
            "first8": round(float(np.mean(p[:8])), 2), "last8": round(float(np.mean(p[-8:])), 2),
            "ewarp": round(ewarp / source_ewarp, 2), "psnr_per_frame": [round(v, 2) for v in p]}


# -- the rows ---------------------------------------------------------------------------------------------

def carried(frames: list[np.ndarray], keyframe: np.ndarray, at: int = 1) -> list[np.ndarray]:
    """The keyframe (of frame ``at``, 1-based) carried along the shot by DIS flow, both ways from its frame: each
    frame's flow towards the keyframe composed with the way back so far (``guides.follow``), the keyframe
    sampled there."""
    if at > 1:
        before = _carried(frames[:at][::-1], keyframe)[::-1]
        return before[:-1] + _carried(frames[at - 1:], keyframe)
    return _carried(frames, keyframe)


def _carried(frames: list[np.ndarray], keyframe: np.ndarray) -> list[np.ndarray]:
    """The keyframe of ``frames[0]`` carried forward along ``frames``."""
    import cv2

    from nst_plugin.builtin.keyframes.guides import follow
    from nst_plugin.flow import flow, gray, pixel_grid

    h, w = keyframe.shape[:2]
    offset = np.zeros((h, w, 2), np.float32)
    grid_x, grid_y = pixel_grid(h, w)
    out = [keyframe]
    for t in range(1, len(frames)):
        offset, _ = follow(offset, flow(gray(frames[t]), gray(frames[t - 1])), (h, w))
        image = cv2.remap(keyframe.astype(np.float32), grid_x + offset[..., 0], grid_y + offset[..., 1],
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
    return out


def run_engine(frames, style, options: dict, today_keyframe: np.ndarray | None = None, **settings):
    """The keyframe engine on ``frames`` through the Python API: (outputs, seconds, its timings); the timings
    get ``cpu``, the process's CPU seconds (all threads): steadier than wall seconds on a shared machine.
    ``today_keyframe``: the frame engine's keyframe replaced by this picture (at the keyframe size)."""
    import nst_plugin
    from nst_plugin.builtin.keyframes import engine
    from nst_plugin.images import resize

    images = {}
    keyframe = engine._Run.keyframe
    if today_keyframe is not None:
        def replaced(run, index, shot, frame, total, init=None):
            return resize(today_keyframe, *run.key_shape)

        engine._Run.keyframe = replaced
    try:
        started, cpu = time.perf_counter(), time.process_time()
        result = nst_plugin.stylize_sequence(list(enumerate(frames, 1)), style, lambda i, r: images.__setitem__(i, r.image),
                                             engine="keyframes", size=0, weights="hed", options=options, **settings)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        engine._Run.keyframe = keyframe
    return [images[i] for i in range(1, len(frames) + 1)], seconds, {**result.stats.get("timings", {}), "cpu": round(cpu, 1)}


def picture(path: Path, painting, outputs, truth, source, frames=(12, 24, 48), carried_outputs=None, at: int = 1) -> None:
    """At 100 %, labelled: the source's frame ``at`` (the painted one), then the ground truth of ``frames``
    (top row); the painted keyframe, then the painting carried by the flow to those frames (``carried_outputs``,
    middle row, if given); the painted keyframe, then ours (bottom row)."""
    import cv2

    from nst_plugin.images import save_image

    def label(image, text):
        image = np.ascontiguousarray(image).copy()
        cv2.putText(image, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(image, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
        return image

    rows = [[label(source, f"source, frame {at}")] + [label(truth[f - 1], f"ground truth, frame {f}") for f in frames]]
    if carried_outputs is not None:
        rows.append([label(painting, f"painted keyframe (frame {at})")] +
                    [label(carried_outputs[f - 1], f"carried by the flow, frame {f}") for f in frames])
    rows.append([label(painting, f"painted keyframe (frame {at})")] + [label(outputs[f - 1], f"ours, frame {f}") for f in frames])
    save_image(path, np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clip", default="vtest.avi")
    parser.add_argument("--start", type=int, default=100)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--filters", default="stylization,pencil,cartoon")
    parser.add_argument("--rows", default="source,carried,today,ours")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an engine option for the 'ours' row, e.g. keyframes.smooth=0")
    parser.add_argument("--painted-at", default="1", help="the frames (1-based, of the clip) painted for the 'ours' "
                        "row, e.g. 1,48: several paintings in one shot")
    parser.add_argument("--time-style", default=None, help="a style image: also time today's engine with its own keyframe")
    parser.add_argument("--picture", default=None, help="write the picture of the first filter's 'ours' row here")
    parser.add_argument("--picture-frames", default="12,24,48", help="the frames (1-based) the picture shows")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    from nst_plugin.flow import warping_error
    from nst_plugin.images import load_image, save_image

    out = Path(args.out or ROOT / "benchmarks" / "results" / "painted" / f"{Path(args.clip).stem}_{args.start}")
    out.mkdir(parents=True, exist_ok=True)
    frames = read_clip(args.clip, args.start, args.frames)
    source_ewarp = float(np.mean([warping_error(frames[t], frames[t + 1], frames[t], frames[t + 1])
                                  for t in range(len(frames) - 1)]))
    extra = dict(item.split("=", 1) for item in args.set)
    rows = args.rows.split(",")
    painted_frames = tuple(map(int, args.painted_at.split(",")))
    results = {"clip": f"{args.clip} {args.start}-{args.start + args.frames - 1}", "machine": describe_machine(),
               "painted_at": args.painted_at,
               "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d"), "set": extra, "filters": {}}
    for name in args.filters.split(","):
        truth = [FILTERS[name](f) for f in frames]
        painting_path = out / f"painting_{name}.png"
        save_image(painting_path, truth[0])
        scores = results["filters"][name] = {}
        # the ground truth's own flicker: a filter applied frame by frame flickers too (a floor for E_warp)
        results.setdefault("truth_ewarp", {})[name] = round(float(np.mean(ewarp_series(truth, frames))) / source_ewarp, 2)
        if "source" in rows:
            scores["source"] = score(frames, truth, frames, source_ewarp, painted_frames)
        carried_outputs = None
        if "carried" in rows:
            started = time.perf_counter()
            at = painted_frames[0]  # (the first painting: carried both ways from it)
            outputs = carried_outputs = carried(frames, truth[at - 1], at)
            scores["carried"] = {**score(outputs, truth, frames, source_ewarp, (at,)), "seconds": round(time.perf_counter() - started, 1)}
        if "today" in rows:
            outputs, seconds, timings = run_engine(frames, truth[0], {}, today_keyframe=truth[0], keyframes=(1,))
            scores["today"] = {**score(outputs, truth, frames, source_ewarp), "seconds": round(seconds, 1), "timings": timings}
        if "ours" in rows:
            specs = []
            for k in painted_frames:
                save_image(out / f"painting_{name}_{k}.png", truth[k - 1])
                specs.append(f"{k}={out / f'painting_{name}_{k}.png'}")
            outputs, seconds, timings = run_engine(frames, truth[0], {"keyframes.images": tuple(specs), **extra})
            scores["ours"] = {**score(outputs, truth, frames, source_ewarp, painted_frames), "seconds": round(seconds, 1), "timings": timings}
            if args.picture and name == args.filters.split(",")[0]:
                at = painted_frames[0]
                picture(Path(args.picture), truth[at - 1], outputs, truth, frames[at - 1],
                        tuple(map(int, args.picture_frames.split(","))), carried_outputs=carried_outputs, at=at)
        for row, values in scores.items():
            print(f"{name:12s} {row:8s} PSNR {values['psnr']:6.2f}  SSIM {values['ssim']:.3f}  first 8 {values['first8']:6.2f}"
                  f"  last 8 {values['last8']:6.2f}  E_warp {values['ewarp']:.2f}x  {values.get('seconds', '')}", flush=True)
    if args.time_style:
        _, seconds, timings = run_engine(frames, load_image(args.time_style), {})
        results["today_with_style"] = {"seconds": round(seconds, 1), "timings": timings}
        print(f"today's engine with its own keyframe ({args.time_style}): {seconds:.1f} s {timings}", flush=True)
        for name, scores in results["filters"].items():
            if "ours" in scores:
                print(f"{name} ours: {scores['ours']['seconds']} s, CPU {scores['ours']['timings']['cpu']} s", flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = [f"{results['clip']}, {results['date']}, {results['machine']}, load {results['load'][0]:.1f}", "",
             "| filter | method | PSNR | SSIM | first 8 -> last 8 | E_warp / source's | seconds |",
             "| --- | --- | ---: | ---: | --- | ---: | ---: |"]
    for name, scores in results["filters"].items():
        for row, v in scores.items():
            lines.append(f"| {name} | {row} | {v['psnr']:.1f} dB | {v['ssim']:.2f} | {v['first8']:.1f} -> {v['last8']:.1f} dB "
                         f"| {v['ewarp']:.2f} | {v.get('seconds', '')} |")
    lines += ["", "E_warp of the ground truth itself over the source's: " + ", ".join(
        f"{name} {value:.2f}" for name, value in results["truth_ewarp"].items())]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
