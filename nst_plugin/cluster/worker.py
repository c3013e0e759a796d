"""What runs on a dask worker: one unit at a time through the same engines a single process runs; the kit an
engine's unit functions use (:class:`UnitRun`, :data:`CACHE`) and :func:`run_sequence`, which runs an
engine's ``nst_stylize_sequence`` on the frames a :class:`~nst_plugin.cluster.units.SequenceUnit` carries.

A worker process keeps one plugin host (``get_host``), one ``RunContext.cache`` (the frame engine's
backbone and style targets) and one copy of each set of style images for every unit it runs, so those are
built once per worker, not once per unit. Frames and events go back to the client through the job's queue
as they finish (:mod:`.units` messages); the worker writes no file.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import replace

CACHE: dict = {}  # this worker's RunContext.cache, shared by every unit it runs (an engine may keep its own there)
_STYLES: dict = {}  # digest of the style images -> the one copy every unit uses (the cache keys on it)
_UNIT = threading.local()  # .channel: the channel of the unit this thread runs now (its warnings go there)
_REPORTED: set = set()  # the jobs (their queues) this worker has sent its runtime to


def versions() -> dict:
    """What the client checks on every worker before a job: nst-plugin's version and the installed engines."""
    from .. import __version__
    from ..plugins import get_host

    return {"nst-plugin": __version__, "engines": sorted(get_host().registry.engines)}


class _Channel:
    """The job's queue, seen from a unit: frames, forwarded events and warnings, and (once a job) what this
    worker computes on. The unit's thread's warnings go to it while the unit runs (:func:`_unit`). The same
    interface as :class:`~nst_plugin.cluster.local.LocalChannel` (a unit run in the client's process)."""

    def __init__(self, name: str, unit, version: str):
        from distributed import Queue

        from .units import FORWARDED_EVENTS

        self.name, self.version = name, version
        self.cached = bool(CACHE)
        self.queue, self.unit, self.forward = Queue(name), unit.number, getattr(unit, "forward", None) or FORWARDED_EVENTS
        _UNIT.channel = self
        if name not in _REPORTED:  # before any frame of this worker's: the client knows who made it
            _REPORTED.add(name)
            from .units import runtime_message

            message = runtime_message(self.unit, _address())
            if message is not None:
                self.queue.put(message)

    cache = CACHE

    @property
    def address(self) -> str:
        return _address()

    def styles(self, styles):
        """Refuse a unit from a client of another version; the one copy of ``styles`` on this worker."""
        return _prepare(self.version, styles)

    def progress(self) -> dict | None:
        """The client's record of this unit's frames from an earlier attempt (its worker died), or None."""
        return _progress(self.name, self.unit)

    def context(self, resume, schedule):
        from ..plugins import get_host

        return get_host().run_context(self.event, resume=resume, cache=CACHE, schedule=schedule)

    def warning(self, message, category, filename: str, lineno: int) -> None:
        from .units import warning_message

        self.queue.put(warning_message(self.unit, message, category, filename, lineno))

    def sink(self, index, result) -> None:
        from .units import frame_message

        self.queue.put(frame_message(self.unit, index, result))

    def event(self, event) -> None:
        from .units import event_message

        message = event_message(self.unit, event, self.forward)
        if message is not None:
            self.queue.put(message)

    def close(self) -> None:
        _UNIT.channel = None  # warnings after the unit: nowhere near its client


def _prepare(version: str, styles):
    """Refuse a unit from a client of another version; the one copy of ``styles`` on this worker."""
    from .. import __version__
    from ..errors import UserError
    from ..video.output import image_digest

    if not _STYLES:  # this worker's first unit: its warnings (the fallback weights) go to the client
        import warnings

        warnings.showwarning = _show_warning
    if version != __version__:
        raise UserError(f"worker {_address()} runs nst-plugin {__version__}, the client {version}: install the "
                        "same version on every machine")
    digest = tuple((image_digest(image), weight) for image, weight in styles)
    return _STYLES.setdefault(digest, styles)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """A warning on this worker: to the client of the unit that raised it, which shows each one once per job
    (not once per worker, in each worker's log or terminal); outside a unit, one line on stderr."""
    channel = getattr(_UNIT, "channel", None)
    if channel is not None:
        try:
            channel.warning(message, category, filename, lineno)
            return
        except Exception:  # the job's queue gone (its client stopped): this worker's own stderr, as before
            pass
    print(f"warning: {message}", file=sys.stderr)


def _address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


class UnitRun:
    """One unit, for an engine's unit function::

        with UnitRun(unit, styles, queue, version) as job:
            context = job.context()          # this worker's cache; the unit's events go to the client
            ...; job.sink(index, result)     # a frame, back to the client as soon as it is made
            return job.report(produced, **more)

    On a worker (``queue``: the job's queue name) it refuses a unit from a client of another version, keeps one
    copy of the style images (``job.styles``) and, while the unit runs, sends its thread's warnings to the
    client. In the client's own process (``queue``: a :class:`~nst_plugin.cluster.local.LocalDispatch`) the
    unit runs with the run's context and cache (``job.cache``)."""

    def __init__(self, unit, styles, queue, version: str):
        self.unit, self.started = unit, time.perf_counter()
        self.channel = _Channel(queue, unit, version) if isinstance(queue, str) else queue.channel(unit)
        self.cached, self.cache = self.channel.cached, self.channel.cache
        self.in_process = getattr(queue, "in_process", False)  # the unit may return objects, not only data
        self.styles = self.channel.styles(styles)

    def __enter__(self) -> "UnitRun":
        return self

    def __exit__(self, *exc) -> None:
        self.channel.close()

    def context(self, resume=None, schedule=None):
        from ..context import Resume
        from ..schedule import NO_SCHEDULE

        return self.channel.context(resume or Resume(), schedule or NO_SCHEDULE)

    def progress(self) -> dict | None:
        """The frames the client received from an earlier attempt at this unit, or None."""
        return self.channel.progress()

    def sink(self, index, result) -> None:
        self.channel.sink(index, result)

    def report(self, produced, **more) -> dict:
        return {"unit": self.unit.number, "frames": produced, "seconds": round(time.perf_counter() - self.started, 3),
                "worker": self.channel.address, "pid": os.getpid(), "cached": self.cached, **more}


def progress_name(queue: str, unit: int) -> str:
    """The dask Variable in which the client records the frames of a unit it has written (units that define
    ``progress``: a second attempt continues after them)."""
    return f"{queue}-unit-{unit}"


def _progress(queue: str, unit: int) -> dict | None:
    """The client's record of this unit's frames from an earlier attempt (its worker died), or None."""
    from distributed import Variable

    try:
        return Variable(progress_name(queue, unit)).get(timeout=0.2)
    except TimeoutError:
        return None


def run_sequence(unit, styles, config, queue: str, version: str) -> dict:
    """A :class:`~nst_plugin.cluster.units.SequenceUnit` through ``nst_stylize_sequence`` (the engine
    ``config.engine`` names, or a sequence plugin), resumed from the finished frames shipped with it and, for a
    unit that records its progress, after the frames the client received from an earlier attempt."""
    with UnitRun(unit, styles, queue, version) as job:
        resume = unit.resume
        if hasattr(unit, "progress"):
            resume = resume.after(job.progress())
        context = job.context(resume=resume.to_resume(), schedule=unit.schedule)
        if unit.style_masks is not None:  # the style masks of the unit's frames, shipped by the client
            context = replace(context, style_masks=unit.style_masks)
        produced = []

        def sink(index, result):
            produced.append(int(index))
            job.sink(index, result)

        result = context.host.stylize_sequence(unit.frames, job.styles, config, context, sink)
        return job.report(produced, stats=_plain_stats(result.stats))


def _plain_stats(stats) -> dict:
    """The engine's sequence stats as plain values (they travel back to the client)."""
    import json

    from .units import _plain

    return json.loads(json.dumps(dict(stats or {}), default=_plain))
