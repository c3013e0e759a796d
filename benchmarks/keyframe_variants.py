"""Variants of the keyframe network side by side on the same keyframes: how its settings were chosen.

The tuning frames (not the report's): vtest.avi 1-48 joined to Megamind.avi 215-262 at 360 px, a cut at 49,
Starry Night, hed weights. Their two keyframes (1 and 49) and four frames stylized cold one by one (the
fidelity reference) are made once by the frame engine and kept in ``--out``; then every variant trains the
network per shot on the same keyframes (the second shot from the first's weights, as the engine does), runs
it over all 96 frames and is scored by ``nst_plugin.metrics`` (not the training loss): E_warp against the
source's own, moving-content and edge correlation against the cold frames, the style distance against the
keyframes' own (and on the keyframes' own frames: how well the network reproduces what it learned).

    .venv/bin/python benchmarks/keyframe_variants.py 'plain:{"guide": 0}' 'guide:{}' 'batch16:{"batch": 16}'

A variant is ``NAME:JSON``: ``guide`` (blob size in px, 0: no guide channels), ``filters`` ([f0, f1, f2]),
``smooth`` (the temporal filter's frames on each side, 0: none), ``transport`` (the keyframe's detail carried
along the shot: its blur in px, 0: none), ``flow_preset`` (the temporal filter's DIS preset), ``decay`` (the trust a carried point keeps through a rejected flow step), or
any ``TrainingSettings`` field (``batch``, ``patch``, ``plateau``, ``patience``, ``learning_rate``,
``max_steps``); ``fallback``: the fine detail where the keyframe's cannot be carried ("source", as the engine; "network": the
network's own; "add:W": the source's plus W times the network's); ``whole``: false, the keyframe's fine detail alone is carried, not its large shapes where the
picture stands still; ``whole_moving``: also where it moves, this fraction of the trust (0: none, as the
engine); ``recover``: false, lost points are not placed again where the picture stands still; ``around``:
the px all around a recovered point where the keyframe's source must look alike (1: the point's own 5x5
patch, as the engine: ``transport.RECOVER_AROUND``); ``clear``: the px around what moves within which no
point is recovered (``transport.RECOVER_CLEAR``); ``keyframe_clear``: false, points are recovered onto
what moved at the keyframe too (``transport.RECOVER_KEYFRAME_CLEAR``); ``cubic``: false, the keyframe is carried with bilinear sampling; ``moving_trust``: the share of
its trust a carried point keeps where the picture moves (``transport.MOVING_TRUST``, as the engine); ``interval``:
``--keyframe-interval``, keyframes chosen as the engine does with ``keyframes.coverage=0`` (default: the
first frame of each shot only); ``keys``: the keyframes (stylized cold, kept in ``--out``); ``coverage``:
keyframes chosen as the engine does (``keyframes.coverage``), each but the shots' first started from the one
before it carried to it (``warm``: false, cold; ``warm_tolerance``: the frame engine's tolerance for those);
``strokes_after_filter``: the temporal filter over the network's frames, the keyframe's strokes laid over them
after it (the engine filters the frames with the strokes); ``save``: every output frame in ``frames_NAME/``.
Defaults: the engine's, but the keyframes: 1 and 49, the shots' first frames. Each variant prints a JSON row (with the style over every other frame too,
``style_all`` and ``style_curve``, not only at the checkpoints), appends it to rows.jsonl and writes
sheet_NAME.png (source over output, frames 24, 47, 48, 51, 69).
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
from nst_plugin.images import load_image, resize, save_image, to_uint8  # noqa: E402
from nst_plugin.metrics import edge_correlation, moving_content, scores  # noqa: E402

from keyframe_bench import find_clip, read_range  # noqa: E402  (benchmarks/)
from video_bench import ewarp_series  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENGINE = {"batch": 8, "patch": 48, "learning_rate": 1e-3, "max_steps": 600, "perceptual_weight": 0.0}


class Tuning:
    """The tuning clip at ``size``, its keyframes, cold references and the scores that do not depend on a variant."""

    def __init__(self, out: Path, size: int, style_path: str, weights: str):
        first = read_range(find_clip("vtest.avi"), 1, 48)
        second = read_range(find_clip("Megamind.avi"), 215, 48, first[0].shape[:2])
        shape = nst_plugin.make_config(size=size).working_shape(*first[0].shape[:2])
        self.frames = [resize(f, *shape) for f in first + second]
        self.shape, self.cut, self.keys, self.weights = shape, 49, [1, 49], weights
        self.style = load_image(style_path)
        n = len(self.frames)
        self.checkpoints = [self.cut // 2, self.cut - 2, self.cut + 2, self.cut + (n - self.cut) // 2]
        made = lambda i, kind: self._cold(out / f"{kind}_{size}_{i}.png", i)  # noqa: E731
        self.keyframes = {k: made(k, "keyframe") for k in self.keys}
        cold = {c: made(c, "cold") for c in self.checkpoints}
        self.cold = {c: self.fidelity(cold, c) for c in self.checkpoints}
        self.keyframe_style = np.mean([self._style(self.keyframes[k], k) for k in self.keys])
        self.keyframe_scores = {k: self.fidelity(self.keyframes, k) for k in self.keys}
        self.source_ewarp = self._ewarp(self.frames)

    def _cold(self, path: Path, index: int) -> np.ndarray:
        if not path.exists():
            result = nst_plugin.stylize_frame(self.frames[index - 1], self.style, size=max(self.shape),
                                              weights=self.weights)
            save_image(path, result.image)
        return load_image(path)

    def _warm(self, path: Path, index: int, init: np.ndarray, tolerance: float | None) -> np.ndarray:
        """Keyframe ``index`` stylized from ``init`` (the keyframe before it carried to it), as the engine does."""
        if not path.exists():
            from nst_plugin.api import get_host, prepare
            from nst_plugin.builtin.keyframes.engine import WARM_TOLERANCE
            from nst_plugin.context import FrameControls

            config, styles, _ = prepare(self.style, size=max(self.shape), weights=self.weights)
            controls = FrameControls(init=init, max_iterations=config.warm_iterations, rounds=1,
                                     tolerance=WARM_TOLERANCE if tolerance is None else tolerance)
            result = get_host().run_context().stylize_frame(self.frames[index - 1], styles, config.for_image(), index,
                                                            controls)
            print(f"warm keyframe {index}: {result.stats.get('seconds', 0):.1f} s", flush=True)
            save_image(path, result.image)
        return load_image(path)

    def _style(self, image, index) -> float:
        return scores(image, self.frames[index - 1], self.style, weights=self.weights)["style"]

    def _ewarp(self, ordered) -> float:
        return float(np.mean([e for t, e in enumerate(ewarp_series(ordered, self.frames), 1) if t + 1 != self.cut]))

    def fidelity(self, images: dict, c: int) -> dict:
        style = scores(images[c], self.frames[c - 1], self.style, weights=self.weights)
        return {"moving": moving_content(images[c], self.frames[c - 1], self.frames[c - 2], weights=self.weights),
                "edge": edge_correlation(images[c], self.frames[c - 1]), "style": style["style"],
                "other": style["style_other"]}

    def variant(self, name: str, out: Path, guide: float = 8.0, filters=None, smooth: int = 3, transport: float = 4.0,
                decay: float = 0.7, flow_preset: str = "medium", interval: int | None = None, fallback: str = "source", whole: bool = True, whole_moving: float = 0.0, recover: bool = True, around: int | None = None,
                cubic: bool = True, moving_trust: float | None = None, keys: list | None = None,
                coverage: float | None = None, warm: bool = True, warm_tolerance: float | None = None,
                strokes_after_filter: bool = False, save: bool = False, clear: int | None = None, keyframe_clear: bool | None = None,
                **training) -> dict:
        from nst_plugin.builtin.keyframes.guides import CHANNELS, GuideSettings, GuideTrack
        from nst_plugin.builtin.keyframes.network import NetworkShape, build_network, stylize_image
        from nst_plugin.builtin.keyframes import smoothing
        from nst_plugin.builtin.keyframes.smoothing import smooth as smooth_frames
        from nst_plugin.builtin.keyframes.training import TrainingSettings, train
        from nst_plugin.builtin.keyframes.transport import TextureTrack, composite

        started = time.perf_counter()
        settings = TrainingSettings(**{**ENGINE, **training})
        shape = NetworkShape(guides=CHANNELS if guide else 0, **({"filters": tuple(filters)} if filters else {}))
        inputs, track = {}, GuideTrack(self.shape, GuideSettings(scale=guide)) if guide else None
        for i, frame in enumerate(self.frames, 1):
            if track is not None and i == self.cut:
                track.reset()
            inputs[i] = np.concatenate([frame, track.next(frame)], -1) if track is not None else frame
        features = None
        if settings.perceptual_weight:  # the VGG-feature term, on the run's backbone (as the engine does)
            from nst_plugin.builtin.vgg16 import VGG16Backbone

            features = VGG16Backbone(weights=self.weights).extractor(settings.perceptual_layers)
        starts = {}  # {keyframe: (the keyframe before it, how that one reaches it)}: warm starts, as the engine
        if coverage is not None:  # keyframes where the last one reaches less than this share, as the engine does
            from nst_plugin.builtin.keyframes.engine import TRANSPORT_DECAY
            from nst_plugin.builtin.keyframes.selection import make_plan
            from nst_plugin.builtin.keyframes.transport import Coverage

            plan = make_plan(list(enumerate(self.frames, 1)), nst_plugin.make_config().cut_threshold, interval or 48,
                             follow=lambda s: Coverage(s, decay=TRANSPORT_DECAY, recover=recover), coverage=coverage)
            assert [s.frames[0] for s in plan.shots] == [1, self.cut], plan.shots
            keys, interval, starts = plan.keyframes, None, plan.starts if warm else {}
        keys = sorted(keys) if keys else self.keys
        keyframes = dict(self.keyframes)
        for k in keys:
            if k in starts:  # started from the keyframe before it, carried to it
                previous, reached = starts[k]
                keyframes[k] = self._warm(out / f"keyframe_{max(self.shape)}_{k}_warm_c{coverage}_{warm_tolerance}.png",
                                          k, reached.start(keyframes[previous], self.frames[k - 1]), warm_tolerance)
            elif k not in keyframes:
                keyframes[k] = self.keyframes[k] = self._cold(out / f"keyframe_{max(self.shape)}_{k}.png", k)
        if interval:  # more keyframes, as the engine chooses them (made by the frame engine, kept in --out)
            from nst_plugin.builtin.keyframes.selection import choose_keyframes, thumbnail

            thumbs = {i: thumbnail(f) for i, f in enumerate(self.frames, 1)}
            keys = [k for shot in (range(1, self.cut), range(self.cut, len(self.frames) + 1))
                    for k in choose_keyframes(list(shot), thumbs, interval)]
            for k in keys:
                if k not in self.keyframes:
                    keyframes[k] = self._cold(out / f"keyframe_{max(self.shape)}_{k}.png", k)
        previous, networks, reports = None, [], []
        for shot in ([k for k in keys if k < self.cut], [k for k in keys if k >= self.cut]):
            model = build_network(shape, seed=0)
            if previous is not None:
                model.set_weights(previous.get_weights())
            report = train(model, [(inputs[k], keyframes[k].astype(np.float32)) for k in shot], settings,
                           features)
            reports.append([report.steps, round(report.seconds, 1), report.stopped])
            networks.append(model)
            previous = model
        trained = time.perf_counter()
        images = {i: np.clip(stylize_image(networks[int(i >= self.cut)], x, shape=shape), 0, 255)
                  for i, x in inputs.items()}
        shots_of = lambda d: [{i: v for i, v in d.items() if (i >= self.cut) == second} for second in (False, True)]  # noqa: E731
        sources = dict(enumerate(self.frames, 1))
        flows = smoothing.FlowCache(sources, flow_preset)
        if smooth and strokes_after_filter:  # the filter over the network's frames, the keyframe's strokes laid after
            images = {i: smooth_frames(i, shot, sources, smooth, flows) for shot in shots_of(images) for i in shot}
        if transport:  # the keyframe's fine detail carried along each shot, as the engine does
            given = {"moving_trust": moving_trust, "around": around, "clear": clear, "keyframe_clear": keyframe_clear}
            carry = TextureTrack(self.shape, decay=decay, recover=recover, cubic=cubic,
                                 **{k: v for k, v in given.items() if v is not None})
            for i, frame in enumerate(self.frames, 1):
                if i in keys:
                    carry.reset()
                    carry.start(keyframes[i].astype(np.float32))
                carried = carry.next(frame)
                carried = carried if whole else carried._replace(whole=None)
                if carried is not None and whole and whole_moving:  # the large shapes also where it moves
                    w = carried.whole.astype(np.float32)
                    carried = carried._replace(whole=np.rint(w + whole_moving * (carried.trust - w)).astype(np.uint8))
                mixed = composite(images[i], carried, transport, frame if fallback != "network" else None)
                if carried is not None and fallback.startswith("add:"):  # the network's fine detail added to the source's
                    import cv2

                    lost = 1.0 - cv2.GaussianBlur(carried.trust.astype(np.float32) / 255.0, (0, 0), 1.5)[..., None]
                    own = images[i] - cv2.GaussianBlur(images[i], (0, 0), transport)
                    mixed = np.clip(mixed + float(fallback[4:]) * lost * own, 0, 255)
                images[i] = mixed
        if smooth and not strokes_after_filter:  # the engine's temporal filter, within each shot
            images = {i: smooth_frames(i, shot, sources, smooth, flows) for shot in shots_of(images) for i in shot}
        images = {i: to_uint8(v) for i, v in images.items()}
        ran = time.perf_counter()
        if save:  # every output frame, to look at
            (out / f"frames_{name}").mkdir(exist_ok=True)
            for i, image in images.items():
                save_image(out / f"frames_{name}" / f"{i:04d}.png", image)
        per = {c: self.fidelity(images, c) for c in self.checkpoints}
        mean = lambda key, d: float(np.nanmean([v[key] for v in d.values()]))  # noqa: E731
        row = {"name": name, "training_s": round(trained - started, 1), "inference_s": round(ran - trained, 1),
               "steps": reports, "ewarp": round(self._ewarp([images[i] for i in sorted(images)]) / self.source_ewarp, 2),
               "moving": round(mean("moving", per) / mean("moving", self.cold), 2),
               "edge": round(mean("edge", per) / mean("edge", self.cold), 2),
               "style": round(mean("style", per) / self.keyframe_style, 2),
               "style_other": round(mean("other", per) / mean("other", self.keyframe_scores), 2),
               "keys": keys,
               "style_on_keyframes": round(np.mean([self._style(images[k], k) for k in self.keys]) / self.keyframe_style, 2),
               "per_checkpoint": {c: {k: round(v, 3) for k, v in p.items()} for c, p in per.items()}}
        # the style over every other frame, not only the checkpoints
        row["style_curve"] = {i: round(self._style(images[i], i), 3) for i in range(2, len(images) + 1, 2)}
        row["style_all"] = round(float(np.mean(list(row["style_curve"].values()))) / self.keyframe_style, 2)
        columns = [self.cut // 2, self.cut - 2, self.cut - 1, self.cut + 2, self.cut + 20]
        save_image(out / f"sheet_{name}.png", np.concatenate([np.concatenate([self.frames[c - 1] for c in columns], 1),
                                                              np.concatenate([images[c] for c in columns], 1)], 0))
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="NAME:JSON, e.g. 'plain:{\"guide\": 0}'")
    parser.add_argument("--size", type=int, default=360)
    parser.add_argument("--style", default=str(ROOT / "samples/starry_night.jpg"))
    parser.add_argument("--weights", default="hed")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/keyframe_variants"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tuning = Tuning(out, args.size, args.style, args.weights)
    for spec in args.variants:
        name, _, settings = spec.partition(":")
        row = tuning.variant(name, out, **(json.loads(settings) if settings else {}))
        print(json.dumps(row), flush=True)
        with open(out / "rows.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
