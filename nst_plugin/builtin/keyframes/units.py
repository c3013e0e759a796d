"""The keyframe engine on a dask cluster: its work as units (:meth:`KeyframeEngine.stylize_units`), run by the
cluster's generic dispatch (:class:`nst_plugin.cluster.client.Dispatch`) with the worker kit
(:mod:`nst_plugin.cluster.worker`). Keyframes are made all at once, one network per shot is trained from the
previous shot's (a chain of futures), and every frame goes through its shot's network in chunks; the plan,
keys and resume rules are the engine's own, so the frames are the ones a single process makes.

Design: docs/design/keyframes.md#on-a-cluster
"""

from __future__ import annotations

import itertools
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ...errors import UserError

CHUNK = 8  # frames per unit of the last stage


@dataclass
class KeyframeUnit:
    """One keyframe for the frame engine (at the keyframe size); ``init``: its warm start (the keyframe before
    it carried to it), or None."""

    number: int
    shot: int
    index: int
    frame: np.ndarray
    total: int
    todo: tuple = ()
    init: np.ndarray | None = None


@dataclass
class TrainingUnit:
    """A shot's network, trained on ``pairs`` ({index: (source frame, its guide, stylized keyframe)}) under ``key``; the
    previous shot's weights come as the task's own argument (bytes, or the previous training unit's future)."""

    number: int
    shot: int
    pairs: dict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray]]
    key: str
    todo: tuple = ()


@dataclass
class FramesUnit:
    """A chunk of a shot's frames through the shot's network (whose weights come as the task's own argument)."""

    number: int
    shot: int
    # (index, frame, its guide or None, the keyframe carried onto it or None: transport.Carried), with margins
    frames: list[tuple[int, np.ndarray, np.ndarray | None, tuple | None]]
    key: str
    first: int  # the shot's first frame
    keyframes: tuple[int, ...]
    todo: list[int] = field(default_factory=list)  # the frames to make (the others: the temporal filter's margins)


def check_units(config, source) -> None:
    """What the cluster plan cannot do, refused before the output folder is touched."""
    if getattr(source, "kind", None) == "camera":
        raise UserError("--cluster with the keyframe engine reads the source three times: give a video file or an "
                        "image sequence, not a camera")


def stylize_units(dispatch, frames, styles, config, context):
    """The keyframe engine's four steps as units (see the module's docstring)."""
    from ...events import Cut, Keyframe, Training
    from ...images import load_image, save_image
    from ...result import SequenceResult
    from .engine import _Run, keyframes_read, plan_shots

    started = time.perf_counter()
    plan = plan_shots(frames, config, context)
    for shot in plan.shots[1:]:
        context.emit(Cut(index=shot.frames[0], shot=shot.number))
    run = _Run(config, styles, context, plan.shape, plan.starts)  # the keys, and what a resumed run finds in the store
    run.neighbour_flows = None  # the workers make the frames (and their filter's flows)
    store = context.store
    network_keys = {shot.number: run.network_key(shot.keyframes) for shot in plan.shots}
    frame_keys = {number: run.frames_key(key) for number, key in network_keys.items()}
    shot_number = {i: shot.number for shot in plan.shots for i in shot.frames}
    done = {i for i in context.resume.frames
            if i in shot_number and context.resume.keys.get(i) == frame_keys[shot_number[i]]}
    todo = [shot for shot in plan.shots if any(i not in done for i in shot.frames)]
    wanted = [k for shot in todo for k in shot.keyframes]
    sources = {index: (frame, guide) for index, frame, guide, _ in run.guided(frames, todo, until_keyframes=True)
               if index in wanted}  # the keyframes' source frames and guides
    todo, _ = keyframes_read(todo, sources, context)  # a keyframe the source no longer gives: its shot waits
    wanted = [k for shot in todo for k in shot.keyframes]
    numbers = itertools.count()  # the units' numbers
    counted = {"done": 0}

    def numbered(event):  # a worker's keyframe events, numbered over the whole job (not per worker)
        if isinstance(event, Keyframe):
            if event.resumed:
                return None
            counted["done"] += 1
            return replace(event, done=counted["done"], total=len(wanted))
        return event

    dispatch.event_filter = numbered

    # 1. keyframes, all at once; one that starts from the keyframe before it (plan.starts) once that one is made
    stylized = {}
    pending = [(shot, index) for shot in todo for index in shot.keyframes]
    while pending:
        ready = [(shot, index) for shot, index in pending if index not in plan.starts or plan.starts[index][0] in stylized]
        if not ready:  # (a keyframe before them all is in the same shot, made first: cannot happen)
            raise RuntimeError(f"keyframes {[index for _, index in pending]} wait for keyframes never made")
        pending = [item for item in pending if item not in ready]
        for shot, index in ready:
            name, key = f"keyframe_{index:06d}.png", run.keyframe_key(index)
            path = store.get(name, key) if store is not None else None
            if path is not None:
                stylized[index] = load_image(path, "keyframe")
                counted["done"] += 1
                context.emit(Keyframe(index=index, shot=shot.number, seconds=0.0, done=counted["done"],
                                      total=len(wanted), resumed=True))
                continue

            def keep(report, index=index, name=name, key=key):
                stylized[index] = report["image"]
                if store is not None:
                    store.put(name, key, lambda p: save_image(p, report["image"]))

            frame = sources[index][0]
            unit = KeyframeUnit(next(numbers), shot.number, index, frame, len(wanted),
                                init=run.warm_start(index, frame, stylized))
            dispatch.submit(run_keyframe, unit, styles, config, plan.shape, on_done=keep, counted=False)
        dispatch.run(())

    # 2. one network per shot, each from the previous shot's (a chain of futures), weights kept by the client
    weights: dict[int, object] = {}
    previous = None
    for shot in todo:
        name, key = f"network_shot{shot.number:03d}.weights.h5", network_keys[shot.number]
        path = store.get(name, key) if store is not None else None
        if path is not None:
            weights[shot.number] = previous = path.read_bytes()
            context.emit(Training(shot=shot.number, step=0, total=run.settings.max_steps, loss=None,
                                  seconds=0.0, stopped="resumed"))
            continue

        def kept(report, name=name, key=key):
            if store is not None:
                store.put(name, key, lambda p: p.write_bytes(report["weights"]))

        pairs = {k: (*sources[k], stylized[k]) for k in shot.keyframes}
        unit = TrainingUnit(next(numbers), shot.number, pairs, key)
        weights[shot.number] = previous = dispatch.submit(run_training, unit, previous, styles, config, plan.shape,
                                                          on_done=kept, counted=False)

    # 3. every frame through its shot's network, in chunks with the temporal filter's margins (a third pass
    # over the source; the guides and the keyframes' texture follow every frame of a shot)
    shot_of = {index: shot for shot in todo for index in shot.frames}
    textures = {k: run.target(sources[k][0], stylized[k]) for k in wanted}

    def chunks():
        for part, emit in run.chunks(run.guided(frames, todo, textures=textures), shot_of, lambda i: i not in done,
                                     CHUNK):
            shot = shot_of[part[0][0]]
            unit = FramesUnit(next(numbers), shot.number, part, frame_keys[shot.number], shot.frames[0],
                              tuple(shot.keyframes), emit)
            yield (run_frames, unit, weights[shot.number], styles, config, plan.shape)

    dispatch.run(chunks())
    return SequenceResult(frames=len(dispatch.written), seconds=time.perf_counter() - started, stats={
        "skipped": sum(len(s.frames) for s in plan.shots) - len(dispatch.written),
        "cuts": [s.frames[0] for s in plan.shots[1:]], "shots": len(plan.shots), "keyframes": plan.keyframes,
        "units": len(dispatch.reports)})


# -- on a worker ---------------------------------------------------------------------------------------------

def _keyframe_run(styles, config, context, shape):
    from ...backends import import_keras
    from ...cluster.worker import CACHE
    from .engine import _Run

    import_keras()
    key = ("nst_plugin.builtin.keyframes.units", config.fingerprint(), tuple(shape))
    run = CACHE.get(key)
    if run is None or run.styles is not styles:
        run = CACHE[key] = _Run(config, styles, context, shape)
    run.context = context
    return run


def run_keyframe(unit, styles, config, shape, queue: str, version: str) -> dict:
    """One keyframe stylized by the frame engine at the keyframe size; the client keeps it."""
    from ...cluster.worker import UnitRun

    with UnitRun(unit, styles, queue, version) as job:
        run = _keyframe_run(job.styles, config, job.context(), shape)
        run.keyframes_done = 0
        image = run.keyframe(unit.index, unit.shot, unit.frame, unit.total, init=unit.init)
        return job.report([], image=image)


def run_training(unit, previous, styles, config, shape, queue: str, version: str) -> dict:
    """A shot's network, from the previous shot's weights (as one process trains it); its weights file's
    bytes go back to the client, which keeps them in the output folder."""
    from ...cluster.worker import UnitRun

    with UnitRun(unit, styles, queue, version) as job:
        run = _keyframe_run(job.styles, config, job.context(), shape)
        before = _model(run, previous)
        model = run.network(unit.shot, unit.pairs, unit.key, before)
        return job.report([], weights=_weights_bytes(model))


def run_frames(unit, weights, styles, config, shape, queue: str, version: str) -> dict:
    """A chunk of a shot's frames through its network (its margins too, for the temporal filter); each
    frame of ``unit.todo`` goes back as it is done."""
    from ...cluster.worker import UnitRun
    from .selection import Shot

    with UnitRun(unit, styles, queue, version) as job:
        run = _keyframe_run(job.styles, config, job.context(), shape)
        model = _shot_network(run, weights)
        produced = []
        shot = Shot(unit.shot, [unit.first], list(unit.keyframes))  # what a frame's stats need of its shot
        for index, result in run.frames(unit.frames, unit.todo, model, shot=shot, key=unit.key):
            job.sink(index, result)
            produced.append(int(index))
        return job.report(produced)


def _model(run, weights):
    """The network with these weights (a weights file's bytes, or the report of the training unit that made
    them), or None."""
    if isinstance(weights, dict):
        weights = weights["weights"]
    if weights is None:
        return None
    from .network import build_network

    model = build_network(run.shape, seed=run.settings.seed)
    with tempfile.TemporaryDirectory(prefix="nst-worker-") as folder:
        path = Path(folder) / "network.weights.h5"
        path.write_bytes(weights)
        model.load_weights(str(path))
    return model


def _shot_network(run, weights):
    """The network of a frames unit, kept for this worker's next unit while the weights stay the same (a
    shot's chunks mostly come one after the other): not rebuilt, and its compiled inference not traced again,
    per chunk. Only the last one is kept (a film has thousands of shots)."""
    import hashlib

    from ...cluster.worker import CACHE

    data = weights["weights"] if isinstance(weights, dict) else weights
    digest = (repr(run.shape), hashlib.sha256(data).hexdigest() if data is not None else None)
    kept = CACHE.get("nst_plugin.builtin.keyframes.network")
    if kept is None or kept[0] != digest:
        kept = CACHE["nst_plugin.builtin.keyframes.network"] = (digest, _model(run, weights))
    return kept[1]


def _weights_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory(prefix="nst-worker-") as folder:
        path = Path(folder) / "network.weights.h5"
        model.save_weights(str(path))
        return path.read_bytes()
