"""What runs on a dask worker: one unit at a time through the same engines a single process runs.

A worker process keeps one plugin host (``get_host``), one ``RunContext.cache`` (the frame engine's
backbone and style targets) and one copy of each set of style images for every unit it runs, so those are
built once per worker, not once per unit. Frames and events go back to the client through the job's queue
as they finish (:mod:`.units` messages); the worker writes no file.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

_CACHE: dict = {}  # this worker's RunContext.cache, shared by every unit it runs
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
    worker computes on. The unit's thread's warnings go to it while the unit runs (:func:`_unit`)."""

    def __init__(self, name: str, unit: int):
        from distributed import Queue

        self.queue, self.unit = Queue(name), unit
        _UNIT.channel = self
        if name not in _REPORTED:  # before any frame of this worker's: the client knows who made it
            _REPORTED.add(name)
            from .units import runtime_message

            message = runtime_message(unit, _address())
            if message is not None:
                self.queue.put(message)

    def warning(self, message, category, filename: str, lineno: int) -> None:
        from .units import warning_message

        self.queue.put(warning_message(self.unit, message, category, filename, lineno))

    def sink(self, index, result) -> None:
        from .units import frame_message

        self.queue.put(frame_message(self.unit, index, result))

    def event(self, event) -> None:
        from .units import event_message

        message = event_message(self.unit, event)
        if message is not None:
            self.queue.put(message)


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


def _unit(function):
    """A unit's function: its thread's warnings go to the unit's channel while it runs, and nowhere after."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            _UNIT.channel = None

    return run


def _address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"pid {os.getpid()}"


def _context(channel: _Channel, resume=None, store=None):
    from ..context import Resume
    from ..plugins import get_host

    return get_host().run_context(channel.event, resume=resume or Resume(), store=store, cache=_CACHE)


def _report(unit, produced, started, cached: bool, **more) -> dict:
    return {"unit": unit.number, "frames": produced, "seconds": round(time.perf_counter() - started, 3),
            "worker": _address(), "pid": os.getpid(), "cached": cached, **more}


def progress_name(queue: str, unit: int) -> str:
    """The dask Variable in which the client records the frames of a shot unit it has written."""
    return f"{queue}-unit-{unit}"


def _progress(queue: str, unit: int) -> dict | None:
    """The client's record of this unit's frames from an earlier attempt (its worker died), or None."""
    from distributed import Variable

    try:
        return Variable(progress_name(queue, unit)).get(timeout=0.2)
    except TimeoutError:
        return None


@_unit
def run_shot(unit, styles, config, queue: str, version: str) -> dict:
    """A shot of the ``lbfgs`` chain through ``nst_stylize_sequence`` (so a sequence plugin applies), resumed
    from the finished frames shipped with it and, when this is the unit's second attempt, after the frames
    the client received from the first."""
    started, cached = time.perf_counter(), bool(_CACHE)
    styles = _prepare(version, styles)
    channel = _Channel(queue, unit.number)
    context = _context(channel, resume=unit.resume.after(_progress(queue, unit.number)).to_resume())
    produced = []

    def sink(index, result):
        produced.append(int(index))
        channel.sink(index, result)

    result = context.host.stylize_sequence(unit.frames, styles, config, context, sink)
    return _report(unit, produced, started, cached, cuts=[int(i) for i in result.stats.get("cuts", [])])


def _keyframe_run(styles, config, context, shape):
    from ..builtin.keyframes.engine import _Run
    from ..backends import import_keras

    import_keras()
    key = ("nst_plugin.cluster.keyframes", config.fingerprint(), tuple(shape))
    run = _CACHE.get(key)
    if run is None or run.styles is not styles:
        run = _CACHE[key] = _Run(config, styles, context, shape)
    run.context = context
    return run


@_unit
def run_keyframe(unit, styles, config, shape, queue: str, version: str) -> dict:
    """One keyframe stylized by the frame engine at the keyframe size; the client keeps it."""
    started, cached = time.perf_counter(), bool(_CACHE)
    styles = _prepare(version, styles)
    context = _context(_Channel(queue, unit.number))
    run = _keyframe_run(styles, config, context, shape)
    run.keyframes_done = 0
    image = run.keyframe(unit.index, unit.shot, unit.frame, unit.total, init=unit.init)
    return _report(unit, [], started, cached, image=image)


@_unit
def run_training(unit, previous, styles, config, shape, queue: str, version: str) -> dict:
    """A shot's network, from the previous shot's weights (as one process trains it); its weights file's
    bytes go back to the client, which keeps them in the output folder."""
    started, cached = time.perf_counter(), bool(_CACHE)
    styles = _prepare(version, styles)
    context = _context(_Channel(queue, unit.number))
    run = _keyframe_run(styles, config, context, shape)
    before = _model(run, previous)
    model = run.network(unit.shot, unit.pairs, unit.key, before)
    return _report(unit, [], started, cached, weights=_weights_bytes(model))


@_unit
def run_frames(unit, weights, styles, config, shape, queue: str, version: str) -> dict:
    """A chunk of a shot's frames through its network (its margins too, for the temporal filter); each
    frame of ``unit.todo`` goes back as it is done."""
    from ..builtin.keyframes.selection import Shot

    started, cached = time.perf_counter(), bool(_CACHE)
    styles = _prepare(version, styles)
    channel = _Channel(queue, unit.number)
    run = _keyframe_run(styles, config, _context(channel), shape)
    model = _shot_network(run, weights)
    produced = []
    shot = Shot(unit.shot, [unit.first], list(unit.keyframes))  # what a frame's stats need of its shot
    for index, result in run.frames(unit.frames, unit.todo, model, shot=shot, key=unit.key):
        channel.sink(index, result)
        produced.append(int(index))
    return _report(unit, produced, started, cached)


def _model(run, weights):
    """The network with these weights (a weights file's bytes, or the report of the training unit that made
    them), or None."""
    if isinstance(weights, dict):
        weights = weights["weights"]
    if weights is None:
        return None
    from ..builtin.keyframes.network import build_network

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

    data = weights["weights"] if isinstance(weights, dict) else weights
    digest = (repr(run.shape), hashlib.sha256(data).hexdigest() if data is not None else None)
    kept = _CACHE.get("nst_plugin.cluster.network")
    if kept is None or kept[0] != digest:
        kept = _CACHE["nst_plugin.cluster.network"] = (digest, _model(run, weights))
    return kept[1]


def _weights_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory(prefix="nst-worker-") as folder:
        path = Path(folder) / "network.weights.h5"
        model.save_weights(str(path))
        return path.read_bytes()
