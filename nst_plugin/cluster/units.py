"""The units a job is cut into, and the messages a unit sends back while it runs (plain data: they travel
through the scheduler's queue, msgpack-encoded).

A unit carries its own frames (the client read them; workers need no shared folder) and what it needs to
resume; it names the frames the client expects back (``todo``). An engine defines its own units (any
dataclass with ``number`` and ``todo``; see docs/plugins.md); :class:`SequenceUnit` runs an engine's
``nst_stylize_sequence`` on a part of the source or on all of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..result import FrameResult

FORWARDED_EVENTS = ("keyframe", "training", "warning")  # the events of a worker's a client shows by default
WHOLE_EVENTS = ("cut", *FORWARDED_EVENTS)  # an engine run whole on a worker: its cuts are only known there


class _Finished:
    """A finished frame's loader (``Resume.frames``): the picture the client shipped, or None where the
    engine will not need it (only the frame right before an unfinished one seeds a warm start)."""

    def __init__(self, index: int, image: np.ndarray | None):
        self.index, self.image = index, image

    def __call__(self) -> np.ndarray:
        if self.image is None:
            raise RuntimeError(f"finished frame {self.index} was not shipped with its unit")
        return self.image


@dataclass
class ShippedResume:
    """What a unit's worker needs of the frames an earlier run finished (a :class:`~nst_plugin.context.Resume`
    without the output folder): which ones, their pictures where the engine needs them, their keys and the
    engine's states."""

    done: list[int] = field(default_factory=list)
    images: dict[int, np.ndarray] = field(default_factory=dict)
    keys: dict[int, str] = field(default_factory=dict)
    states: dict[int, Any] = field(default_factory=dict)

    def after(self, progress: dict | None) -> "ShippedResume":
        """This resume plus the frames the client received from an earlier attempt at the unit (its
        ``progress`` record): a unit run again after its worker died continues after them."""
        if not progress:
            return self
        index, result = read_frame(progress)
        return ShippedResume(done=sorted(set(self.done) | set(progress["done"])), images={**self.images, index: result.image},
                             keys={**self.keys, **({index: result.stats["key"]} if result.stats.get("key") else {})},
                             states={**self.states, index: result.stats.get("state")})

    def to_resume(self):
        from ..context import Resume

        return Resume({i: _Finished(i, self.images.get(i)) for i in self.done}, self.keys,
                      {i: s for i, s in self.states.items() if s is not None})


@dataclass
class SequenceUnit:
    """Frames through ``nst_stylize_sequence`` on a worker (:func:`~nst_plugin.cluster.worker.run_sequence`):
    the whole source for an engine that cuts its work into no units (one unit, on one worker), or the part an
    engine cut (a shot of the ``lbfgs`` chain). ``todo``: the frames the client expects back (empty: whatever
    the engine makes); ``resume``: what the engine needs of the frames an earlier run finished; ``schedule``:
    the animated settings (a :class:`~nst_plugin.schedule.FrameSchedule`, or None); ``forward``: the kinds of
    the engine's events the client shows; ``style_masks``: the style masks of its frames
    (:class:`~nst_plugin.style_masks.FrameMasks`), or None."""

    number: int
    frames: list[tuple[int, np.ndarray]]
    todo: list[int] = field(default_factory=list)
    resume: ShippedResume = field(default_factory=ShippedResume)
    schedule: Any = None
    forward: tuple[str, ...] = FORWARDED_EVENTS
    style_masks: Any = None


# -- messages -------------------------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def frame_message(unit: int, index: int, result: FrameResult) -> dict:
    image = np.ascontiguousarray(result.image, dtype=np.uint8)
    stats = {k: v for k, v in result.stats.items() if k != "history"}  # the loss curve stays on the worker
    return {"unit": unit, "index": int(index), "shape": list(image.shape), "pixels": image.tobytes(),
            "stats": json.dumps(stats, default=_plain)}


def read_frame(message: dict) -> tuple[int, FrameResult]:
    image = np.frombuffer(message["pixels"], dtype=np.uint8).reshape(message["shape"]).copy()
    return message["index"], FrameResult(image=image, stats=json.loads(message["stats"]))


def event_message(unit: int, event, forward: tuple[str, ...] = FORWARDED_EVENTS) -> dict | None:
    from ..events import as_dict

    data = as_dict(event)
    if data.get("event") not in forward:
        return None  # frame progress (per iteration), and cuts where the client knows them, stay on the worker
    return {"unit": unit, "event": json.dumps(data, default=_plain)}


def read_event(message: dict):
    from ..events import EVENT_TYPES

    data = json.loads(message["event"])
    kind = EVENT_TYPES[data["event"]]
    return kind(**{f.name: data[f.name] for f in fields(kind) if f.name in data})


def runtime_message(unit: int, worker: str) -> dict | None:
    """What this worker computes on (:func:`nst_plugin.backends.describe`: backend, versions, device), sent
    once a job, before its first frame; None when the backend cannot say."""
    from ..backends import describe

    try:
        runtime = describe()
    except Exception:
        return None
    return {"unit": unit, "runtime": json.dumps(runtime, default=_plain), "worker": worker}


def warning_message(unit: int, message, category, filename: str, lineno: int) -> dict:
    """A warning raised on a worker (the fallback weights), for the client to show once: its text, its
    category's name and where it was raised (a module name, so the client's warning registry applies)."""
    import sys

    module = next((name for name, m in list(sys.modules.items()) if getattr(m, "__file__", None) == filename), None)
    return {"unit": unit, "warning": str(message), "category": getattr(category, "__name__", "UserWarning"),
            "module": module, "filename": filename, "lineno": int(lineno)}


def show_warning(message: dict) -> None:
    """A worker's warning (:func:`warning_message`), raised again here as the worker raised it: the CLI shows
    it as one ``warning:`` line, and Python's registry of the module that raised it (this process's copy of
    it) shows it once, as a single process does."""
    import builtins
    import sys
    import warnings

    category = getattr(builtins, message.get("category") or "", None)
    if not (isinstance(category, type) and issubclass(category, Warning)):
        category = UserWarning
    module, filename = message.get("module"), message.get("filename") or "<dask worker>"
    loaded = sys.modules.get(module) if module else None
    registry = None
    if loaded is not None:
        filename = getattr(loaded, "__file__", None) or filename
        registry = vars(loaded).setdefault("__warningregistry__", {})
    warnings.warn_explicit(message["warning"], category, filename, message.get("lineno") or 0,
                           module=module or "nst_plugin.cluster", registry=registry)
