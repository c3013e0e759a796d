"""The ``stylize_video`` job: a source, the output folder and ``nst_stylize_sequence`` tied together,
resumable, reporting its events (docs/events.md)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Callable

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
                  encode: str | os.PathLike | None = None, emit: Callable[[dict], None] = _ignore,
                  progress: Callable[[dict], None] | None = None) -> VideoJob:
    """Stylize ``source`` into the folder ``output`` through ``nst_stylize_sequence``, resuming after the
    frames a previous run with the same settings finished. ``emit`` receives the job's events (see
    docs/events.md); ``progress`` the engine's per-iteration events."""
    from ..context import RunContext
    from ..errors import PluginError
    from ..plugins import call_work_hook, get_plugin_manager, get_registry
    from ..safety import video_plan

    video_plan(source, [], output, encode, getattr(config, "init", None), overwrite).check()  # before any work
    folder = OutputFolder(output, config, source, styles, overwrite=overwrite)
    job = VideoJob(folder, source)
    wanted = source.indices
    resumed = sorted(i for i in folder.frames if wanted is None or i in set(wanted))
    total = len(wanted) if wanted is not None else None
    emit({"event": "start", "schema": 1, "source": source.spec, "kind": source.kind, "output": str(folder.path),
          "manifest": str(folder.manifest_path), "fps": source.fps, "width": source.width, "height": source.height,
          "source_frames": source.count, "frames": wanted, "total": total, "resumed": len(resumed),
          "settings_hash": config.fingerprint(), "step": source.step})
    source.on_warning = emit
    started = time.perf_counter()
    done_count = [len(resumed)]

    def sink(index, result):
        path = folder.add(index, result.image, result.stats)
        job.written.append(index)
        done_count[0] += 1
        stats = result.stats
        emit({"event": "frame_done", "index": index, "path": str(path), "seconds": round(float(stats.get("seconds", 0)), 4),
              "loss": _finite(stats.get("loss")), "evaluations": stats.get("evaluations"),
              "warm": bool(stats.get("warm")), "shot": stats.get("shot"), "done": done_count[0], "total": total,
              "status": stats.get("status", "ok")})
        if stats.get("status") == "nan":
            emit({"event": "warning", "index": index, "message": f"frame {index}: the loss turned non-finite; kept the best image so far"})

    def engine_progress(event):
        if event.get("event") == "cut":
            emit({"event": "cut", "index": event["index"], "shot": event["shot"]})
        if progress is not None:
            progress(event)

    pm = get_plugin_manager()
    context = RunContext(registry=get_registry(), plugin_manager=pm, progress=engine_progress,
                         extras={"done": folder.done(), "done_objectives": folder.done_objectives()})
    result = call_work_hook("nst_stylize_sequence", frames=iter(source), styles=styles, config=config,
                            context=context, sink=sink)
    if result is None:
        raise PluginError("no plugin returned a result from nst_stylize_sequence")
    job.sequence_stats = dict(result.stats)
    for index in source.unreadable:
        if index not in folder.frames:
            folder.mark(index, "unreadable", f"frame {index} could not be read")
    if encode is not None:
        paths = [p for i, p in folder.finished_paths() if wanted is None or i in set(wanted)]
        indices = [i for i, _ in folder.finished_paths() if wanted is None or i in set(wanted)]
        window = None
        if source.kind == "video" and indices:
            window = ((indices[0] - 1) / source.fps, (indices[-1] - 1 + source.step) / source.fps)
        job.encoded = encode_video(paths, encode, source.fps / source.step,
                                   audio_from=source.spec if source.kind == "video" else None, audio_window=window,
                                   warn=lambda message: emit({"event": "warning", "index": None, "message": message}))
        folder.record_encoded(job.encoded["path"])
    emit({"event": "done", "status": "ok" if not source.unreadable else "incomplete", "written": len(job.written),
          "resumed": len(resumed), "total": total, "unreadable": list(source.unreadable),
          "seconds": round(time.perf_counter() - started, 3), "output": str(folder.path),
          "encoded": job.encoded["path"] if job.encoded else None,
          "cuts": job.sequence_stats.get("cuts", [])})
    return job
