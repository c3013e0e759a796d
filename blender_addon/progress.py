"""Parse the engine's ``--progress jsonl`` stream (docs/events.md) into a progress state. No bpy here.

Robust by design: a line that is not a JSON object (a library printing to stdout, a half line from a
crash) is recorded in ``garbage`` and otherwise ignored; unknown event kinds and keys are ignored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field


def parse_line(line: str | bytes) -> dict | None:
    """The event of one stdout line, or None when the line is not a JSON object with an ``event`` key."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    return event


def format_duration(seconds: float | None) -> str:
    """``75`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``; None -> ``"?"``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_short(seconds: float | None) -> str:
    """A duration for a strip's name: ``45`` -> ``"45s"``, ``185`` -> ``"3m"``, ``3900`` -> ``"1h05m"``;
    None -> ``"?"``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes = int(round(seconds / 60))
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass
class Progress:
    """What a UI shows about a running job, updated by :meth:`feed` (one stdout line) or :meth:`apply`."""

    total: int | None = None
    done: int = 0  # finished frames of the range, resumed ones included
    resumed: int = 0
    written: int = 0  # frames stylized by this run
    output: str | None = None
    current: int | None = None  # index of the frame being optimised
    step: int | None = None
    steps: int | None = None
    loss: float | None = None
    status: str = "starting"  # starting | running | ok | incomplete | interrupted | error
    stage: str | None = None  # an engine's work before its first frame (its keyframe and training events)
    error: str | None = None
    warnings: list = field(default_factory=list)
    garbage: list = field(default_factory=list)  # the last few lines that were not events
    finished: dict = field(default_factory=dict)  # index -> path of frames written by this run
    frame_indices: list | None = None
    source_size: tuple | None = None  # (width, height) of the source's frames, as the engine reads them
    started_at: float | None = None
    frame_times: list = field(default_factory=list)  # wall-clock (monotonic) time of each frame_done
    frame_seconds: list = field(default_factory=list)  # the engine's optimisation seconds per frame
    clock: object = time.monotonic

    GARBAGE_KEPT = 20

    def feed(self, line: str | bytes) -> dict | None:
        event = parse_line(line)
        if event is None:
            text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
            if text.strip():
                self.garbage.append(text.rstrip("\n")[:500])
                del self.garbage[:-self.GARBAGE_KEPT]
            return None
        self.apply(event)
        return event

    def apply(self, event: dict) -> None:
        kind = event.get("event")
        try:
            if kind == "start":
                self.status = "running"
                self.total = _int(event.get("total"))
                self.resumed = _int(event.get("resumed")) or 0
                self.done = self.resumed
                self.output = event.get("output")
                frames = event.get("frames")
                self.frame_indices = [int(i) for i in frames] if isinstance(frames, list) else None
                width, height = _int(event.get("width")), _int(event.get("height"))
                self.source_size = (width, height) if width and height else None
                self.started_at = self.clock()
            elif kind == "keyframe":
                self.stage = f"keyframe {_int(event.get('done'))}/{_int(event.get('total'))} ready"
            elif kind == "training":
                shot, step, steps = _int(event.get("shot")), _int(event.get("step")), _int(event.get("total"))
                stopped = event.get("stopped")
                self.stage = (f"shot {shot} network {'loaded' if stopped == 'resumed' else 'trained'}" if stopped
                              else f"training shot {shot}, step {step}/{steps}")
            elif kind == "frame_progress":
                self.current = _int(event.get("index"))
                self.step = _int(event.get("step"))
                self.steps = _int(event.get("total"))
                self.loss = _float(event.get("loss"))
            elif kind == "frame_done":
                index = _int(event.get("index"))
                self.written += 1
                done = _int(event.get("done"))
                self.done = done if done is not None else self.done + 1
                if _int(event.get("total")) is not None:
                    self.total = _int(event.get("total"))
                if index is not None:
                    self.finished[index] = event.get("path")
                self.loss = _float(event.get("loss"))
                self.current, self.step, self.steps, self.stage = None, None, None, None
                self.frame_times.append(self.clock())
                seconds = _float(event.get("seconds"))
                if seconds is not None:
                    self.frame_seconds.append(seconds)
            elif kind == "warning":
                self.warnings.append(str(event.get("message", "")))
            elif kind == "error":
                self.error = str(event.get("message") or "the engine reported an error")
                self.status = "error"
            elif kind == "done":
                status = event.get("status")
                if self.status != "error" or status == "ok":
                    self.status = status if isinstance(status, str) else "ok"
                if event.get("output"):
                    self.output = event.get("output")
        except (TypeError, ValueError):  # a well-formed line with odd values: ignore it, keep going
            pass

    # -- derived numbers -------------------------------------------------------------------------------------

    @property
    def fraction(self) -> float:
        if not self.total:
            return 0.0
        partial = 0.0
        if self.step is not None and self.steps:
            partial = min(self.step / self.steps, 1.0)
        return min((self.done + partial) / self.total, 1.0)

    @property
    def seconds_per_frame(self) -> float | None:
        """Mean wall-clock time between the last few finished frames (set-up and I/O included); with one
        frame done, the engine's own time for it."""
        times = self.frame_times[-6:]
        if len(times) >= 2:
            return (times[-1] - times[0]) / (len(times) - 1)
        if self.frame_seconds:
            return self.frame_seconds[-1]
        return None

    @property
    def seconds_left(self) -> float | None:
        spf = self.seconds_per_frame
        if spf is None or self.total is None:
            return None
        return max(self.total - self.done, 0) * spf

    def name_suffix(self) -> str:
        """What a running job's result strip shows after its name: ``"42% 3m left"`` (``"42%"`` before the
        time left is known); empty once the job has ended."""
        if self.status not in ("starting", "running"):
            return ""
        text = f"{int(self.fraction * 100)}%"
        left = self.seconds_left
        return f"{text} {format_short(left)} left" if left is not None else text

    def summary(self) -> str:
        """One line for the status bar and the panel, e.g. ``"12/40 frames, 3.2 s/frame, 1:30 left"``."""
        if self.status == "starting":
            return "starting the engine..."
        total = "?" if self.total is None else str(self.total)
        parts = [f"{self.done}/{total} frames"]
        spf = self.seconds_per_frame
        if spf is not None:
            parts.append(f"{spf:.1f} s/frame")
            if self.status == "running":
                parts.append(f"{format_duration(self.seconds_left)} left")
        elif self.status == "running" and self.stage:
            parts.append(self.stage)
        elif self.status == "running":
            parts.append("first frame" + (f" step {self.step}/{self.steps}" if self.step is not None else ""))
        if self.status not in ("running", "starting"):
            parts.append(self.status)
        return ", ".join(parts)


def _int(value):
    if value is None or isinstance(value, bool):
        return None
    return int(value)


def _float(value):
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None
