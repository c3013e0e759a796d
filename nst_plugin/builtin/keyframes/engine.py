"""The ``keyframes`` sequence engine: plan, keyframes, training, then every frame.

1. Plan (one pass over the frames): shots by the cut detector, keyframes per shot (``--keyframes`` or,
   by default, the first frame of every shot and one per ``--keyframe-interval`` frames where the picture
   changed most; see :mod:`.selection`).
2. Keyframes (a second pass keeps only them): each is stylized by ``context.stylize_frame`` at
   ``--keyframe-size`` (a cold frame: coarse-to-fine), and kept in the output folder
   (``keyframe_NNNNNN.png``, through ``context.store``) so a resumed run does not stylize it again.
3. Training, per shot: the network (:mod:`.network`) learns (content at the output size -> the keyframe
   upsampled to the output size, with the content's own fine detail band added when the keyframe is
   smaller) on random patches (:mod:`.training`); it starts from the previous shot's weights; the weights are
   kept in the output folder (``network_shotNNN.weights.h5``) under a key of the shot's keyframes, so a
   resumed run does not retrain and another keyframe retrains only its shot.
4. Frames (a third pass): every frame through its shot's network at the output size (``--size``; default
   the source's), in tiles when larger than ``keyframes.tile``. Frames are independent of each other.

A source that can only be read once (a camera) is kept in memory.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace

import numpy as np

from ...context import FrameControls
from ...events import Cut, Keyframe, Training
from ...images import load_image, resize, save_image, to_uint8
from ...result import FrameResult, SequenceResult
from .selection import make_plan

DEFAULT_KEYFRAME_SIZE = 384  # the default preset's --size: the keyframes' look is the frame engine's at it


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def training_target(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The keyframe as the network should learn it at the content's (output) size: upsampled, plus the
    content's detail band that the smaller keyframe could not hold (content minus content down- and
    upsampled to the keyframe's size), as the frame engine's coarse-to-fine does."""
    h, w = content.shape[:2]
    kh, kw = stylized.shape[:2]
    target = resize(stylized, h, w).astype(np.float32)
    if (kh, kw) != (h, w):
        full = content.astype(np.float32)
        target += full - resize(resize(full, kh, kw), h, w).astype(np.float32)
    return np.clip(target, 0, 255)


class KeyframeEngine:
    def __init__(self, config):
        self.config = config

    def stylize_sequence(self, frames, styles, config, context, sink):
        from ...tf_import import import_tensorflow

        import_tensorflow()
        from .network import NetworkShape, build_network, stylize_image
        from .training import TrainingSettings, train

        started = time.perf_counter()
        options = context.registry.get("engines", "keyframes").option_values(config)
        if iter(frames) is frames:  # one pass only (a camera): keep the frames
            frames = list(frames)
        plan = make_plan(frames, config.cut_threshold, config.keyframe_interval, config.keyframes)
        for shot in plan.shots[1:]:
            context.emit(Cut(index=shot.frames[0], shot=shot.number))
        out_h, out_w = config.working_shape(*plan.shape)
        key_side = min(config.keyframe_size or DEFAULT_KEYFRAME_SIZE, max(out_h, out_w))
        key_config = replace(config.for_image(), size=key_side)
        key_h, key_w = key_config.working_shape(*plan.shape)
        key_fingerprint = key_config.output_fingerprint()  # which keyframes were chosen is not part of it
        keyframe_key = lambda index: f"{key_fingerprint}:{index}:{key_h}x{key_w}"  # noqa: E731
        shape = NetworkShape()
        settings = TrainingSettings(patch=options["patch"], batch=options["batch"], learning_rate=options["learning_rate"],
                                    max_steps=options["steps"], max_seconds=options["seconds"], plateau=options["plateau"],
                                    perceptual_weight=options["perceptual"], seed=options["seed"])
        # a shot's network is known by its keyframes and how it learns them; every frame records its
        # network's key, so a finished frame is made again only when its shot's keyframes changed
        network_keys = {shot.number: _digest([keyframe_key(k) for k in shot.keyframes], [out_h, out_w],
                                             settings.__dict__, shape.__dict__) for shot in plan.shots}
        shot_number = {i: shot.number for shot in plan.shots for i in shot.frames}
        done = {i for i in context.resume.frames
                if i in shot_number and context.resume.keys.get(i) == network_keys[shot_number[i]]}
        todo = [shot for shot in plan.shots if any(i not in done for i in shot.frames)]
        wanted = {k for shot in todo for k in shot.keyframes}
        store = context.store
        timings = {"keyframes": 0.0, "training": 0.0, "frames": 0.0}

        # 2. keyframes: their source frames (a second pass), then the frame engine
        sources = {index: frame for index, frame in frames if index in wanted}
        stylized: dict[int, np.ndarray] = {}
        count = 0
        for shot in todo:
            for index in shot.keyframes:
                t0 = time.perf_counter()
                name, key = f"keyframe_{index:06d}.png", keyframe_key(index)
                path = store.get(name, key) if store is not None else None
                if path is not None:
                    stylized[index] = load_image(path, "keyframe")
                else:
                    result = context.stylize_frame(resize(sources[index], key_h, key_w), styles, key_config, index,
                                                   FrameControls(shot=shot.number))
                    stylized[index] = result.image
                    if store is not None:
                        store.put(name, key, lambda p, image=result.image: save_image(p, image))
                count += 1
                seconds = time.perf_counter() - t0
                timings["keyframes"] += seconds
                context.emit(Keyframe(index=index, shot=shot.number, seconds=round(seconds, 3), done=count,
                                      total=len(wanted), resumed=path is not None))

        # 3. one network per shot
        features = None
        if settings.perceptual_weight:
            from ..stylizer import get_backbone

            features = get_backbone(context.registry, config).extractor(settings.perceptual_layers)
        networks, reports, previous = {}, {}, None
        for shot in todo:
            t0 = time.perf_counter()
            contents = {k: resize(sources[k], out_h, out_w) for k in shot.keyframes}
            pairs = [(contents[k], training_target(stylized[k], contents[k])) for k in shot.keyframes]
            name = f"network_shot{shot.number:03d}.weights.h5"
            key = network_keys[shot.number]
            model = build_network(shape, seed=settings.seed)
            path = store.get(name, key) if store is not None else None
            if path is not None:
                model.load_weights(str(path))
                reports[shot.number] = {"stopped": "resumed"}
                context.emit(Training(shot=shot.number, step=0, total=settings.max_steps, loss=None, seconds=0.0,
                                      stopped="resumed"))
            else:
                if previous is not None:  # the previous shot's network is a better start than random weights
                    model.set_weights(previous.get_weights())

                def on_check(step, loss, shot=shot, t0=t0):
                    context.emit(Training(shot=shot.number, step=step, total=settings.max_steps, loss=round(loss, 5),
                                          seconds=round(time.perf_counter() - t0, 2)))

                report = train(model, pairs, settings, features, on_check)
                reports[shot.number] = {"steps": report.steps, "seconds": round(report.seconds, 2),
                                        "loss": report.loss, "stopped": report.stopped}
                context.emit(Training(shot=shot.number, step=report.steps, total=settings.max_steps,
                                      loss=round(report.loss, 5), seconds=round(report.seconds, 2),
                                      stopped=report.stopped))
                if store is not None:
                    store.put(name, key, lambda p, model=model: model.save_weights(str(p)))
            networks[shot.number] = previous = model
            timings["training"] += time.perf_counter() - t0

        # 4. every frame through its shot's network
        shot_of = {index: shot for shot in todo for index in shot.frames}
        written = 0
        for index, frame in frames:
            if index in done or index not in shot_of:
                continue
            shot = shot_of[index]
            t0 = time.perf_counter()
            image = stylize_image(networks[shot.number], resize(frame, out_h, out_w), tile=options["tile"], shape=shape)
            seconds = time.perf_counter() - t0
            timings["frames"] += seconds
            sink(index, FrameResult(image=to_uint8(image), stats={
                "seconds": seconds, "shot": shot.number, "cut": index == shot.frames[0] and shot.number > 0,
                "warm": False, "keyframe": index in shot.keyframes, "engine": "keyframes", "status": "ok",
                "key": network_keys[shot.number],
                "size": [out_h, out_w]}))
            written += 1
        return SequenceResult(frames=written, seconds=time.perf_counter() - started, stats={
            "skipped": sum(len(s.frames) for s in plan.shots) - written, "cuts": [s.frames[0] for s in plan.shots[1:]],
            "shots": len(plan.shots), "keyframes": plan.keyframes, "keyframe_size": [key_h, key_w],
            "size": [out_h, out_w], "training": reports, "timings": {k: round(v, 3) for k, v in timings.items()}})
