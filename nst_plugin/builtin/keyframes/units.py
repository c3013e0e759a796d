"""The keyframe engine's work as units (:meth:`KeyframeEngine.stylize_units`): one process runs them in order on
a :class:`nst_plugin.cluster.local.LocalDispatch`, a cluster ships them with its generic dispatch
(:class:`nst_plugin.cluster.client.Dispatch`) to the worker kit (:mod:`nst_plugin.cluster.worker`), so the
frames are the same by construction. Keyframes are made all at once, one network per shot is trained from the
previous shot's (a chain of futures), and every frame goes through its shot's network in chunks; the plan,
keys, resume rules and the output folder's files are this client side's.

Design: docs/design/keyframes.md#on-a-cluster
"""

from __future__ import annotations

import itertools
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from ...errors import UserError

CHUNK = 8  # frames per unit of the last stage


@dataclass
class KeyframeUnit:
    """One keyframe for the frame engine (at the keyframe size); ``init``: its warm start (the keyframe before
    it carried to it), or None; ``style_masks``: its style masks (the run's at this frame), or None."""

    number: int
    shot: int
    index: int
    frame: np.ndarray
    total: int
    todo: tuple = ()
    init: np.ndarray | None = None
    style_masks: tuple | None = None


@dataclass
class TrainingUnit:
    """A shot's network, trained on ``pairs`` ({index: (source frame, its guide, stylized keyframe)}) under ``key``; the
    previous shot's weights come as the task's own argument (bytes, or the previous training unit's future)."""

    number: int
    shot: int
    pairs: dict[int, tuple[np.ndarray, np.ndarray | None, np.ndarray]]
    key: str
    todo: tuple = ()
    painted: bool = False  # the shot has painted keyframes: its network is the run's painted variant


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
    # {painted keyframe among ``frames``: its frame (the painting over the engine's keyframe or the source by
    # its alpha)}; a shot with any painted keyframe is made by the run's painted variant (``painted``)
    paintings: dict = field(default_factory=dict)
    painted: bool = False


def check_units(config, source) -> None:
    """What the cluster plan cannot do, refused before the output folder is touched."""
    if getattr(source, "kind", None) == "camera":
        raise UserError("--cluster with the keyframe engine reads the source three times: give a video file or an "
                        "image sequence, not a camera")


def stylize_units(dispatch, frames, styles, config, context):
    """The keyframe engine's four steps as units (see the module's docstring), on a cluster's dispatch or, in
    one process, on a :class:`~nst_plugin.cluster.local.LocalDispatch` (the units share the run's memory)."""
    from ...result import SequenceResult
    from .engine import CHUNK as PROCESS_CHUNK
    from .engine import prepare

    started = time.perf_counter()
    work = prepare(frames, styles, config, context)  # the keys, and what a resumed run finds in the store
    in_process = getattr(dispatch, "in_process", False)
    if in_process:  # the units find this run (its flows, timings, painted variant) in the run's cache
        context.cache[_run_key(config, work.plan.shape)] = work.run
    else:
        work.run.neighbour_flows = None  # the workers make the frames (and their filter's flows)
    units = _Units(dispatch, work, frames, styles, config, context, chunk=PROCESS_CHUNK if in_process else CHUNK)
    stylized = units.keyframes()
    dispatch.run(units.frames(stylized, units.networks(stylized)))
    plan = work.plan
    return SequenceResult(frames=len(dispatch.written), seconds=time.perf_counter() - started, stats={
        "skipped": sum(len(s.frames) for s in plan.shots) - len(dispatch.written),
        "cuts": [s.frames[0] for s in plan.shots[1:]], "shots": len(plan.shots), "keyframes": plan.keyframes,
        "units": len(dispatch.reports), **(work.run.summary() if in_process else {})})


def _run_key(config, shape) -> tuple:
    return ("nst_plugin.builtin.keyframes.units", config.fingerprint(), tuple(shape))


@dataclass
class _KeyframeCount:
    """The keyframe events of the job, numbered over the whole job (a worker numbers its own)."""

    total: int
    done: int = 0

    def __call__(self, event):  # the dispatch's event_filter: a worker's events
        from ...events import Keyframe

        if isinstance(event, Keyframe):
            if event.resumed:
                return None
            self.done += 1
            return replace(event, done=self.done, total=self.total)
        return event

    def given(self, index: int, shot: int):
        """The event of a painted keyframe (the client's own)."""
        from ...events import Keyframe

        self.done += 1
        return Keyframe(index=index, shot=shot, seconds=0.0, done=self.done, total=self.total, resumed=False)

    def resumed(self, index: int, shot: int):
        """The event of a keyframe found in the store."""
        from ...events import Keyframe

        self.done += 1
        return Keyframe(index=index, shot=shot, seconds=0.0, done=self.done, total=self.total, resumed=True)


@dataclass(eq=False)
class _Units:
    """The client's side of one job: it submits the units step by step and keeps what comes back."""

    dispatch: object
    work: object  # :class:`~.engine.Work`
    source: object  # the frames (read again by the last step)
    styles: list
    config: object
    context: object
    chunk: int = CHUNK  # frames per unit of the last step
    numbers: Iterator[int] = field(default_factory=itertools.count)  # the units' numbers

    def keyframes(self) -> dict:
        """2. {keyframe: stylized}, all at once; one that starts from the keyframe before it (``plan.starts``)
        once that one is made."""
        starts = self.work.plan.starts
        count = self.dispatch.event_filter = _KeyframeCount(len(self.work.keyframes))
        stylized = {}
        pending = [(shot, index) for shot in self.work.shots for index in shot.keyframes]
        while pending:
            ready = [(shot, index) for shot, index in pending if index not in starts or starts[index][0] in stylized]
            if not ready:  # (a keyframe before them all is in the same shot, made first: cannot happen)
                raise RuntimeError(f"keyframes {[index for _, index in pending]} wait for keyframes never made")
            pending = [item for item in pending if item not in ready]
            for shot, index in ready:
                if index not in self.work.run.paintings or self.work.run.needs_optimised(index):
                    self._keyframe(shot, index, stylized, count)
            self.dispatch.run(())
        self._painted(stylized, count)
        return stylized

    def _painted(self, stylized: dict, count: _KeyframeCount) -> None:
        """The painted keyframes into ``stylized``, each over the frame engine's keyframe that its alpha lets show
        (made by now; :meth:`~.engine._Run.painted_keyframe`)."""
        run = self.work.run
        for shot in self.work.shots:
            for index in shot.keyframes:
                if index in run.paintings:
                    optimised = stylized.get(index) if run.needs_optimised(index) else None
                    stylized[index] = run.painted_keyframe(index, self.work.sources[index][0], optimised)
                    if optimised is None:  # (else its event was the frame engine's keyframe's)
                        self.context.emit(count.given(index, shot.number))

    def _keyframe(self, shot, index: int, stylized: dict, count: _KeyframeCount) -> None:
        """Keyframe ``index`` into ``stylized``: from the store, or as a unit (there once it is made)."""
        from ...images import load_image, save_image

        run, store = self.work.run, self.context.store
        name, key = f"keyframe_{index:06d}.png", run.optimised_key(index)
        path = store.get(name, key) if store is not None else None
        if path is not None:
            stylized[index] = load_image(path, "keyframe")
            self.context.emit(count.resumed(index, shot.number))
            return

        def keep(report):
            stylized[index] = report["image"]
            if store is not None:
                store.put(name, key, lambda p: save_image(p, report["image"]))

        frame = self.work.sources[index][0]
        unit = KeyframeUnit(next(self.numbers), shot.number, index, frame, count.total,
                            init=run.warm_start(index, frame, stylized),
                            style_masks=self.context.style_masks_at(index))
        self.dispatch.submit(run_keyframe, unit, self.styles, self.config, self.work.plan.shape, on_done=keep,
                             counted=False)

    def networks(self, stylized: dict) -> dict:
        """3. {shot: its network's weights file (bytes) or the future of the unit training it}: one network per
        shot, each from the previous shot's (a chain of futures), the weights kept by the client."""
        from ...events import Training

        work, store = self.work, self.context.store
        weights: dict[int, object] = {}
        previous = {}  # {painted or not: the last network's weights}: a shot starts from the last one made alike
        for shot in work.shots:
            name, key = f"network_shot{shot.number:03d}.weights.h5", work.network_keys[shot.number]
            painted = work.run.run_for(shot) is not work.run
            path = store.get(name, key) if store is not None else None
            if path is not None:
                weights[shot.number] = previous[painted] = path.read_bytes()
                work.run.reports[shot.number] = {"stopped": "resumed"}
                self.context.emit(Training(shot=shot.number, step=0, total=work.run.settings.max_steps, loss=None,
                                           seconds=0.0, stopped="resumed"))
                continue

            def kept(report, name=name, key=key):
                if store is not None:
                    store.put(name, key, lambda p: _save_weights(report, p))

            pairs = {k: (*work.sources[k], stylized[k]) for k in shot.keyframes}
            unit = TrainingUnit(next(self.numbers), shot.number, pairs, key, painted=painted)
            weights[shot.number] = previous[painted] = self.dispatch.submit(
                run_training, unit, previous.get(painted), self.styles, self.config, work.plan.shape, on_done=kept,
                counted=False)
        return weights

    def frames(self, stylized: dict, weights: dict):
        """4. the tasks of every frame through its shot's network, in chunks with the temporal filter's margins
        (a third pass over the source; the guides and the keyframes' texture follow every frame of a shot)."""
        work, run = self.work, self.work.run
        shot_of = {index: shot for shot in work.shots for index in shot.frames}
        textures = {k: run.target(work.sources[k][0], stylized[k]) for k in work.keyframes if k not in run.paintings}
        for part, emit in run.chunks(run.guided(self.source, work.shots, textures=textures), shot_of,
                                     lambda i: i not in work.done, self.chunk):
            shot = shot_of[part[0][0]]
            unit = FramesUnit(next(self.numbers), shot.number, part, work.frame_keys[shot.number], shot.frames[0],
                              tuple(shot.keyframes), emit, paintings=run.painted_frames(part, stylized),
                              painted=run.run_for(shot) is not run)
            yield (run_frames, unit, weights[shot.number], self.styles, self.config, work.plan.shape)


# -- on a worker ---------------------------------------------------------------------------------------------

def _keyframe_run(job, config, shape):
    """The unit's engine run: the client's own in one process; on a worker, one kept per job."""
    from ...backends import import_keras
    from .engine import _Run

    import_keras()
    key, styles, context = _run_key(config, shape), job.styles, job.context()
    run = job.cache.get(key)
    if run is None or run.styles is not styles:
        run = job.cache[key] = _Run(config, styles, context, shape)
    run.context = context
    return run


def run_keyframe(unit, styles, config, shape, queue: str, version: str) -> dict:
    """One keyframe stylized by the frame engine at the keyframe size; the client keeps it."""
    from ...cluster.worker import UnitRun

    with UnitRun(unit, styles, queue, version) as job:
        run = _keyframe_run(job, config, shape)
        run.keyframes_done = 0
        if unit.style_masks is not None:  # shipped with the unit: a worker's context has no masks of its own
            from ...style_masks import FrameMasks

            run.context = replace(run.context, style_masks=FrameMasks({unit.index: unit.style_masks}))
        image = run.keyframe(unit.index, unit.shot, unit.frame, unit.total, init=unit.init)
        return job.report([], image=image)


def run_training(unit, previous, styles, config, shape, queue: str, version: str) -> dict:
    """A shot's network, from the previous shot's weights (as one process trains it); its weights file's
    bytes go back to the client, which keeps them in the output folder."""
    from ...cluster.worker import UnitRun

    with UnitRun(unit, styles, queue, version) as job:
        run = _keyframe_run(job, config, shape)
        run = run.painted_variant() if unit.painted else run
        before = _model(run, previous)
        model = run.network(unit.shot, unit.pairs, before)
        if job.in_process:  # the network itself: the frames' units and the output folder take it from here
            return job.report([], model=model)
        return job.report([], weights=_weights_bytes(model))


def run_frames(unit, weights, styles, config, shape, queue: str, version: str) -> dict:
    """A chunk of a shot's frames through its network (its margins too, for the temporal filter); each
    frame of ``unit.todo`` goes back as it is done."""
    from ...cluster.worker import UnitRun
    from .selection import Shot

    with UnitRun(unit, styles, queue, version) as job:
        run = _keyframe_run(job, config, shape)
        run = run.painted_variant() if unit.painted else run
        model = _shot_network(run, weights, job.cache)
        produced = []
        shot = Shot(unit.shot, [unit.first], list(unit.keyframes))  # what a frame's stats need of its shot
        for index, result in run.frames(unit.frames, unit.todo, model, shot=shot, key=unit.key, paintings=unit.paintings):
            job.sink(index, result)
            produced.append(int(index))
        return job.report(produced)


def _model(run, weights):
    """The network with these weights (a weights file's bytes, or the report of the training unit that made
    them), or None."""
    if isinstance(weights, dict):
        if "model" in weights:  # trained in this process
            return weights["model"]
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


def _shot_network(run, weights, cache: dict):
    """The network of a frames unit, kept for this worker's next unit while the weights stay the same (a
    shot's chunks mostly come one after the other): not rebuilt, and its compiled inference not traced again,
    per chunk. Only the last one is kept (a film has thousands of shots)."""
    import hashlib

    if isinstance(weights, dict) and "model" in weights:  # trained in this process
        return weights["model"]
    data = weights["weights"] if isinstance(weights, dict) else weights
    digest = (repr(run.shape), hashlib.sha256(data).hexdigest() if data is not None else None)
    kept = cache.get("nst_plugin.builtin.keyframes.network")
    if kept is None or kept[0] != digest:
        kept = cache["nst_plugin.builtin.keyframes.network"] = (digest, _model(run, weights))
    return kept[1]


def _save_weights(report: dict, path: Path) -> None:
    """A training unit's network (``report``) into the weights file ``path``."""
    if "model" in report:
        report["model"].save_weights(str(path))
    else:
        path.write_bytes(report["weights"])


def _weights_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory(prefix="nst-worker-") as folder:
        path = Path(folder) / "network.weights.h5"
        model.save_weights(str(path))
        return path.read_bytes()
