"""The ``lbfgs`` chain on a dask cluster: a shot is a unit (:meth:`LbfgsChain.stylize_units`). Each shot runs
through ``nst_stylize_sequence`` on a worker (:func:`nst_plugin.cluster.worker.run_sequence`), from the last
finished frame before its first unfinished one, so its frames are the ones the single-process chain makes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from ..cluster.units import SequenceUnit


@dataclass
class ShotUnit(SequenceUnit):
    """A shot (or its unfinished part) of the chain; ``shot`` its number in the whole job; ``cut_index`` the
    shot's first frame when it starts after a cut (a single process marks that frame ``cut``)."""

    shot: int = 0
    cut_index: int | None = None

    def progress(self, received: list[int], index: int, result) -> dict:
        """What the client records (a dask Variable) after each frame of this unit it wrote: the frames it has,
        and the last one (picture, objective, anchor) that seeds the next, so a second attempt continues."""
        from ..cluster.units import frame_message

        return {**frame_message(self.number, index, result), "done": sorted(received)}

    def fix_stats(self, index: int, stats: dict) -> dict:
        """The stats a single process gives this frame: the worker saw the shot alone (its shot 0, no cut)."""
        return {**stats, "shot": self.shot, "cut": index == self.cut_index}


def stylize_units(dispatch, frames, styles, config, context):
    from ..cluster.worker import run_sequence
    from ..result import SequenceResult

    started = time.perf_counter()
    cuts: list[int] = []
    shots = _shots(frames, config, context, cuts)
    tasks = ((run_sequence, unit, styles, config) for unit in _shot_units(shots, config, context))
    dispatch.run(tasks)
    return SequenceResult(frames=len(dispatch.written), seconds=time.perf_counter() - started,
                          stats={"cuts": cuts, "shots": len(cuts) + 1, "units": len(dispatch.reports)})


def _shots(frames, config, context, cuts: list) -> Iterator[list]:
    """The frames at the working size, shot by shot, cut where the chain cuts (the same detector on the same
    pictures), read as they are needed."""
    from ..events import Cut
    from ..images import resize
    from ..shots import ShotDetector

    detector = ShotDetector(config.cut_threshold)
    current: list = []
    for index, frame in frames:
        work = resize(frame, *config.working_shape(*frame.shape[:2]))
        if detector.is_cut(work):
            yield current
            cuts.append(index)
            context.emit(Cut(index=index, shot=len(cuts)))
            current = []
        current.append((index, work))
    if current:
        yield current


def _shot_units(shots: Iterator[list], config, context) -> Iterator[ShotUnit]:
    """A unit per shot with unfinished frames: from the last finished frame before its first unfinished one
    (it seeds the warm start), with what the chain needs of the finished frames it holds. A finished frame
    whose animated settings changed (its key) is unfinished, as in the chain."""
    from ..cluster.units import ShippedResume
    from ..style_masks import for_frames

    resume, schedule = context.resume, context.schedule

    def finished(i: int) -> bool:
        return i in resume.frames and resume.keys.get(i) == schedule.key(config, i)

    for number, frames in enumerate(shots):
        indices = [i for i, _ in frames]
        todo = [i for i in indices if not finished(i)]
        if not todo:
            continue
        start = max(0, indices.index(todo[0]) - 1)
        part = frames[start:]
        done = [i for i, _ in part if finished(i)]
        seeds = {i for i, nxt in zip(indices[start:], indices[start + 1:]) if finished(i) and not finished(nxt)}
        shipped = ShippedResume(done=done, images={i: resume.frames[i]() for i in seeds},
                                keys={i: resume.keys[i] for i in done if i in resume.keys},
                                states={i: resume.states[i] for i in done if i in resume.states})
        yield ShotUnit(number=number, frames=part, todo=todo, resume=shipped, schedule=schedule or None,
                       shot=number, cut_index=indices[0] if number > 0 else None,
                       style_masks=for_frames(context, [i for i, _ in part]))
