"""The ``stylize_video`` job: a source, the output folder and ``nst_stylize_sequence`` tied together,
resumable, reporting its events (docs/events.md)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

from .. import events
from ..errors import UserError
from .encode import encode_video
from .output import OutputFolder, _finite
from .sources import FrameSource, _ignore


@dataclass
class VideoJob:
    output: OutputFolder
    source: FrameSource
    written: list[int] = field(default_factory=list)
    encoded: dict | None = None
    sequence_stats: dict = field(default_factory=dict)


def stylize_video(source: FrameSource, styles, config, output: str | os.PathLike, *, overwrite: bool = False,
                  encode: str | os.PathLike | None = None,
                  on_event: Callable[[events.Event], None] = _ignore,
                  emit: Callable[[dict], None] | None = None, schedule=None, cluster=None, mask=None,
                  style_masks=None) -> VideoJob:
    """Stylize ``source`` into the folder ``output`` through ``nst_stylize_sequence``, resuming after the
    frames a previous run with the same settings finished; the folder is the engine's artifact store
    (``context.store``). ``on_event`` receives every event of the job and of the engine
    (:mod:`nst_plugin.events`; their wire format is docs/events.md). ``emit``, the older spelling, receives
    the same events as dicts (``event.to_dict()``). ``schedule``: per-frame values of the animated settings
    (:class:`~nst_plugin.schedule.FrameSchedule`); a finished frame whose values changed is made again.
    ``cluster``: a :class:`~nst_plugin.cluster.client.Connection` (``nst_plugin.cluster.connect``) whose workers
    stylize the units (shots, keyframes, chunks of frames) in place of this process; the frames, the folder
    and the events are the same. ``mask``: a mask source (path; :mod:`nst_plugin.masks`): each frame is
    ``mask * styled + (1 - mask) * source``; a finished frame whose mask changed is composited again
    (:mod:`.masking`). ``style_masks``: the style masks (:mod:`nst_plugin.style_masks`): resolved still ones
    (one per style, for every frame) or a :class:`~nst_plugin.context.StyleMaskSource` with a ``record()`` (still
    or moving, :func:`~nst_plugin.style_masks.video_style_masks`) for an engine with the ``style_masks`` trait;
    their digests are recorded in the manifest (a resumed run needs the same masks)."""
    from ..masks import MaskSource, open_mask
    from ..plugins import get_host
    from ..safety import video_plan
    from ..schedule import NO_SCHEDULE, check_engine

    schedule = schedule or NO_SCHEDULE
    check_engine(schedule, config.engine)  # before the folder is touched

    if emit is not None:
        typed = on_event

        def on_event(event):
            typed(event)
            emit(events.as_dict(event))

    if mask is not None and not isinstance(mask, MaskSource):
        mask = open_mask(mask, source)  # a bad mask: refused before the folder is touched
    video_plan(source, [], output, encode, getattr(config, "init", None), overwrite,
               mask=mask.frames if mask is not None else None).check()  # before any work
    traits = get_host().registry.traits(config.engine)  # an unknown engine: refused before the folder is touched
    if traits.seekable and source.kind == "camera":
        raise UserError(f"the {config.engine} engine reads its source more than once: give it a video file or an "
                        "image sequence, not a camera")
    if cluster is not None:
        cluster.check_job(config, source, schedule)  # what the cluster refuses, before the folder is touched
    extra = {"mask": mask.identity()} if mask is not None else None
    if style_masks is not None:
        from ..style_masks import StillMasks, check_sequence_engine

        check_sequence_engine(config.engine)
        if not hasattr(style_masks, "at"):  # resolved still masks
            style_masks = StillMasks(tuple(style_masks))
        extra = dict(extra or {}, style_masks=style_masks.record())  # a moving mask: every frame read, now
    folder = OutputFolder(output, config, source, styles, overwrite=overwrite, extra=extra)  # locked until the end
    try:
        return _run(folder, source, styles, config, encode, on_event, schedule, cluster, traits, mask, style_masks)
    finally:
        folder.close()


def _run(folder: OutputFolder, source: FrameSource, styles, config, encode, on_event, schedule, cluster,
         traits, mask=None, style_masks=None) -> VideoJob:
    from ..plugins import get_host
    from .masking import MaskedOutput

    host = get_host()
    job = VideoJob(folder, source)
    wanted = source.indices
    wanted_set = None if wanted is None else set(wanted)
    masking = MaskedOutput(folder, source, mask) if MaskedOutput.needed(folder, mask) else None
    resume = masking.resume() if masking is not None else folder.resume()  # the engine's own frames
    resumed = sorted(i for i in resume.frames if wanted_set is None or i in wanted_set)
    if traits.frame_settings:  # frames whose animated values changed are made again
        resumed = [i for i in resumed if folder.frames[i].key == schedule.key(config, i)]
    total = len(wanted) if wanted is not None else None
    on_event(events.Start(
        source=source.spec, kind_of_source=source.kind, output=str(folder.path), manifest=str(folder.manifest_path),
        fps=source.fps, width=source.width, height=source.height, source_frames=source.count, frames=wanted,
        total=total, resumed=len(resumed), settings_hash=config.output_fingerprint(), step=source.step))
    if ignored := schedule.ignored(source):  # --frame-settings frames this run does not make
        on_event(events.Warning(ignored))
    started = time.perf_counter()
    finished = set(resumed)  # an engine may make a finished frame again (the keyframe engine, new keyframes)
    sink = _folder_sink(folder, job, cluster, finished, total, on_event)

    frames = source.frames(on_event)
    if masking is not None:  # finished frames whose mask changed: composited again, the engine not asked
        for index in masking.changed(resumed):
            sink(index, masking.again(index, resume.frames[index]))
        frames, sink = masking.lookup.watch(frames), masking.wrap(sink)
    from ..context import FrameControls
    from ..style_masks import StillMasks

    still = style_masks.masks if isinstance(style_masks, StillMasks) else None
    context = host.run_context(on_event, resume=resume, store=folder, schedule=schedule, style_masks=style_masks,
                               controls=FrameControls(style_masks=still))  # what every frame starts from
    # a file source may be read more than once (an engine's keyframe pass); a camera gives one pass
    run = host.stylize_sequence if cluster is None else cluster.stylize_sequence
    result = run(frames, styles, config, context, sink)
    job.sequence_stats = dict(result.stats)
    for index in source.unreadable:
        if index not in folder.frames:
            folder.mark(index, "unreadable", f"frame {index} could not be read")
    if encode is not None:
        job.encoded = _encode(folder, source, wanted_set, encode, on_event)
    on_event(events.Done(
        status="ok" if not source.unreadable else "incomplete", output=str(folder.path), written=len(job.written),
        resumed=len(set(resumed) - set(job.written)), total=total, unreadable=list(source.unreadable),
        seconds=round(time.perf_counter() - started, 3), encoded=job.encoded["path"] if job.encoded else None,
        cuts=job.sequence_stats.get("cuts", [])))
    return job


def _folder_sink(folder: OutputFolder, job: VideoJob, cluster, finished: set, total, on_event):
    """The engine's ``sink``: each frame into the folder (atomically, with its record) and a ``FrameDone``."""
    def sink(index, result):
        # the backend and device that made this run's frames (on a cluster the workers did: not this process;
        # each worker reports before its first frame, so the record grows with the frames)
        if cluster is not None:
            folder.header["runtime"] = cluster.runtime()
        elif "runtime" not in folder.header:
            from ..backends import describe

            folder.header["runtime"] = describe()
        path = folder.add(index, result.image, result.stats)
        job.written.append(index)
        finished.add(index)
        stats = result.stats
        on_event(events.FrameDone(
            index=index, path=str(path), seconds=round(float(stats.get("seconds", 0)), 4), loss=_finite(stats.get("loss")),
            evaluations=stats.get("evaluations"), warm=bool(stats.get("warm")), shot=stats.get("shot"),
            done=len(finished), total=total, status=stats.get("status", "ok")))
        if stats.get("status") == "nan":
            on_event(events.Warning(f"frame {index}: the loss turned non-finite; kept the best image so far", index))

    return sink


def _encode(folder: OutputFolder, source: FrameSource, wanted_set, encode, on_event) -> dict:
    """The finished frames of this run encoded to ``encode`` at the source's rate, with the source's audio over
    the same span; the video recorded in the folder's manifest."""
    finished = [(i, p) for i, p in folder.finished_paths() if wanted_set is None or i in wanted_set]
    window = None
    if source.kind == "video" and finished:
        window = ((finished[0][0] - 1) / source.fps, (finished[-1][0] - 1 + source.step) / source.fps)
    encoded = encode_video([p for _, p in finished], encode, source.fps / source.step,
                           audio_from=source.spec if source.kind == "video" else None, audio_window=window,
                           warn=lambda message: on_event(events.Warning(message)))
    folder.record_encoded(encoded["path"])
    return encoded
