"""The engine on each Keras 3 backend, side by side in one run: one VGG16 forward+backward, one ``nst image``
(same settings, same weights, same seed), and, with ``--video``, seconds per frame of both video engines.

Each backend runs in a process of its own (Keras picks its backend once per process). The pictures are
scored by one fixed scorer (``nst_plugin.metrics``, in this process, not the objective) so the backends'
results are compared with the same ruler. Prints a Markdown table, writes it and a picture (one column per
backend) to ``--out``.

    .venv/bin/python benchmarks/backend_bench.py                       # this machine's installed backends
    .venv/bin/python benchmarks/backend_bench.py --backends jax,torch --video --sizes 384,720,1080  # a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# runs inside one backend's process; prints one JSON line
WORKER = textwrap.dedent(
    r"""
    import json, statistics, sys, time, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    args = json.loads(sys.argv[1])
    from nst_plugin.backends import describe
    import nst_plugin
    from nst_plugin.builtin.vgg16 import VGG16Backbone
    from nst_plugin.gradients import input_gradient
    from nst_plugin.images import load_image, save_image
    from keras import ops

    out = {"runtime": describe()}
    # one VGG16 forward+backward at 224x224 through every style layer and the content layer
    backbone = VGG16Backbone(weights=args["weights"], pooling="max")
    layers = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block4_conv2", "block5_conv1")
    extract = backbone.extractor(layers)
    step = input_gradient(lambda x, t: (sum(ops.mean(ops.square(f)) for f in extract(x).values()), {}),
                          backbone.variables)
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    started = time.perf_counter()
    step(x, {})
    out["first_call"] = time.perf_counter() - started
    times = []
    for _ in range(args["repeats"]):
        started = time.perf_counter()
        step(x, {})
        times.append(time.perf_counter() - started)
    out["forward_backward"] = statistics.median(times)
    # one nst image: same settings everywhere
    content, style = load_image(args["content"]), load_image(args["style"])
    started = time.perf_counter()
    result = nst_plugin.stylize_frame(content, style, size=args["size"], iterations=args["iterations"],
                                      weights=args["weights"], seed=0)
    out["image_seconds"] = time.perf_counter() - started
    out["loss"] = result.stats["loss"]
    out["evaluations"] = result.stats["evaluations"]
    save_image(args["image_out"], result.image)
    # seconds per frame of the two video engines at each size (warm L-BFGS frames; the keyframe network)
    if args["video"]:
        from nst_plugin.api import prepare
        from nst_plugin.builtin.keyframes.network import build_network, stylize_image
        out["video"] = {}
        for side in args["sizes"]:
            h, w = (side, side * 16 // 9) if side >= 720 else (side * 3 // 4, side)
            frames = [(i, np.roll(np.resize(content, (h, w, 3)), 4 * i, axis=1)) for i in range(1, 5)]
            seconds = {}
            def sink(i, r):
                seconds[i] = r.stats["seconds"]
            nst_plugin.stylize_sequence(frames, style, sink, size=max(h, w), weights=args["weights"], seed=0)
            warm = [seconds[i] for i in (2, 3, 4)]
            net = build_network()
            frame = frames[0][1]
            stylize_image(net, frame, tile=1024)
            started = time.perf_counter()
            for _ in range(3):
                stylize_image(net, frame, tile=1024)
            out["video"][side] = {"lbfgs_warm": statistics.median(warm),
                                  "keyframes_inference": (time.perf_counter() - started) / 3}
    print("RESULT " + json.dumps(out))
    """
)


def run_backend(backend: str, settings: dict) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(settings)], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{backend} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    from nst_plugin.backends import installed

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(name for name, v in installed().items() if v))
    parser.add_argument("--content", default=str(ROOT / "samples/messi5.jpg"))
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--weights", default="hed")
    parser.add_argument("--video", action="store_true", help="also seconds per frame of both video engines")
    parser.add_argument("--sizes", default="384,720,1080")
    parser.add_argument("--scorer", default="tensorflow", help="the backend whose process scores the pictures")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/backends"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    results = {}
    for backend in backends:
        settings = dict(weights=args.weights, repeats=args.repeats, content=args.content, style=args.style,
                        size=args.size, iterations=args.iterations, image_out=str(out / f"{backend}.png"),
                        video=args.video, sizes=[int(s) for s in args.sizes.split(",")])
        print(f"{backend} ...", flush=True)
        results[backend] = run_backend(backend, settings)

    # one scorer for every picture (a fixed VGG16, not the objective)
    os.environ.setdefault("KERAS_BACKEND", args.scorer if args.scorer in backends else backends[0])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from nst_plugin.images import load_image, resize, save_image
    from nst_plugin.metrics import scores

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import describe as describe_machine

    content, style = load_image(args.content), load_image(args.style)
    pictures = []
    for backend, r in results.items():
        image = load_image(out / f"{backend}.png")
        r["scores"] = scores(image, content, style, weights=args.weights)
        pictures.append(image)
    first = results[backends[0]]
    lines = [
        f"Machine: {describe_machine().split(', Keras')[0]}. `nst image` {Path(args.content).name} with "
        f"{Path(args.style).name}, {args.size} px, {args.iterations} L-BFGS iterations, weights {args.weights}, "
        f"seed 0; VGG16 forward+backward at 224x224 (median of {args.repeats}, after the first call that "
        f"compiles). Scores by one fixed VGG16 scorer (lower is closer); last column: the largest relative "
        f"difference of the three scores from {backends[0]}'s.",
        "",
        "| backend | device | VGG16 fwd+bwd | first call | `nst image` | loss | style | style (other layers) | content | differs from first |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for backend, r in results.items():
        s, f = r["scores"], first["scores"]
        spread = max(abs(s[k] - f[k]) / abs(f[k]) for k in ("style", "style_other", "content"))
        rt = r["runtime"]
        lines.append(f"| {backend} {rt['version']} | {rt['device']} | {r['forward_backward']:.2f} s | "
                     f"{r['first_call']:.1f} s | {r['image_seconds']:.1f} s | {r['loss']:.4g} | {s['style']:.4g} | "
                     f"{s['style_other']:.4g} | {s['content']:.4g} | {spread * 100:.1f} % |")
    if args.video:
        lines += ["", "Seconds per frame (median of warm L-BFGS frames 2-4 of a 4-frame sequence; the keyframe "
                  "network's inference on one frame, tiles of 1024 px):", "",
                  "| backend | size | L-BFGS warm frame | keyframe network | frames per second (network) |",
                  "| --- | --- | --- | --- | --- |"]
        for backend, r in results.items():
            for side, v in r["video"].items():
                lines.append(f"| {backend} | {side} p | {v['lbfgs_warm']:.2f} s | {v['keyframes_inference']:.3f} s | "
                             f"{1 / v['keyframes_inference']:.1f} |")
    table = "\n".join(lines)
    print(table)
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    h = min(p.shape[0] for p in pictures)
    strip = np.concatenate([resize(p, h, round(p.shape[1] * h / p.shape[0])) for p in pictures], axis=1)
    save_image(out / "backends.jpg", strip)
    print(f"picture: {out / 'backends.jpg'} (left to right: {', '.join(results)})")


if __name__ == "__main__":
    main()
