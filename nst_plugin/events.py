"""The events of a run, one type per event, shared by the engines, the video job, the CLI's progress
displays and ``--progress jsonl`` (whose wire format, ``to_dict()`` plus a time stamp, is documented in
docs/events.md; a test fails when the two disagree).

Engines emit :class:`FrameProgress` (while a frame is optimised) and :class:`Cut`, the keyframe engine also
:class:`Keyframe` and :class:`Training`; the video job adds
:class:`Start`, :class:`FrameDone`, :class:`Warning`, :class:`Error` and :class:`Done`. Every consumer takes
one callable, ``on_event(event)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

SCHEMA = 1  # the version of docs/events.md; the ``start`` event carries it


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return {"event": self.kind, **asdict(self)}


@dataclass(frozen=True)
class Start(Event):
    kind: ClassVar[str] = "start"
    source: str
    kind_of_source: str
    output: str
    manifest: str
    fps: float
    width: int
    height: int
    source_frames: int | None
    frames: list[int] | None
    total: int | None
    resumed: int
    settings_hash: str
    step: int
    schema: int = SCHEMA

    def to_dict(self) -> dict:
        data = super().to_dict()
        data["kind"] = data.pop("kind_of_source")  # "kind" on the wire: video, images or camera
        return data


@dataclass(frozen=True)
class Cluster(Event):
    """The job runs on a dask cluster (``--cluster``): its scheduler, workers at the start, the dashboard's
    link (None without bokeh) and how frames reach the workers."""

    kind: ClassVar[str] = "cluster"
    address: str
    workers: int
    dashboard: str | None
    mode: str


@dataclass(frozen=True)
class FrameProgress(Event):
    kind: ClassVar[str] = "frame_progress"
    index: int | None
    step: int
    total: int
    loss: float


@dataclass(frozen=True)
class Cut(Event):
    kind: ClassVar[str] = "cut"
    index: int
    shot: int


@dataclass(frozen=True)
class Keyframe(Event):
    """The keyframe engine stylized a keyframe (``resumed``: it was already in the output folder)."""

    kind: ClassVar[str] = "keyframe"
    index: int
    shot: int
    seconds: float
    done: int
    total: int
    resumed: bool = False


@dataclass(frozen=True)
class Training(Event):
    """The keyframe engine's network of one shot: ``step`` of at most ``total`` training steps and the loss
    on held patches; ``stopped`` is set on the last event of a shot (plateau, steps, seconds or resumed)."""

    kind: ClassVar[str] = "training"
    shot: int
    step: int
    total: int
    loss: float | None
    seconds: float
    stopped: str | None = None


@dataclass(frozen=True)
class FrameDone(Event):
    kind: ClassVar[str] = "frame_done"
    index: int
    path: str
    seconds: float
    loss: float | None
    evaluations: int | None
    warm: bool
    shot: int | None
    done: int
    total: int | None
    status: str


@dataclass(frozen=True)
class Warning(Event):  # noqa: A001 - the event's name on the wire
    kind: ClassVar[str] = "warning"
    message: str
    index: int | None = None


@dataclass(frozen=True)
class Error(Event):
    kind: ClassVar[str] = "error"
    message: str
    code: int


@dataclass(frozen=True)
class Done(Event):
    """``status``: ok, incomplete or interrupted; an interrupted run reports ``status`` and ``output`` only."""

    kind: ClassVar[str] = "done"
    status: str
    output: str
    written: int | None = None
    resumed: int | None = None
    total: int | None = None
    unreadable: list[int] | None = None
    seconds: float | None = None
    encoded: str | None = None
    cuts: list[int] | None = None

    def to_dict(self) -> dict:
        data = super().to_dict()
        if self.status == "interrupted":
            return {"event": self.kind, "status": self.status, "output": self.output}
        return data


EVENT_TYPES: dict[str, type[Event]] = {t.kind: t for t in (Start, Cluster, FrameProgress, Cut, Keyframe, Training, FrameDone,
                                                             Warning, Error, Done)}


def wire_keys(event_type: type[Event]) -> list[str]:
    """The keys an event of this type has on the wire (besides ``event`` and ``time``)."""
    return ["kind" if f.name == "kind_of_source" else f.name for f in fields(event_type)]


def as_dict(event: Any) -> dict:
    """An event as a plain dict (typed events and, from older plugins, dicts alike)."""
    return event.to_dict() if isinstance(event, Event) else dict(event)
