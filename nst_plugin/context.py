"""The run context handed to the work hooks."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable


def _ignore(event: dict) -> None:
    pass


@dataclass
class RunContext:
    """Lives as long as one run (an image, or a whole sequence).

    ``cache``: a dict a plugin may keep things in across the frames of a run (the built-in engine keeps its
    backbone and style targets there). ``progress(event)``: receives dicts with an ``"event"`` key.
    ``extras``: per-frame inputs (``"init"``: an RGB float array to start from; video adds more).
    """

    registry: Any
    plugin_manager: Any
    progress: Callable[[dict], None] = _ignore
    cache: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)
    frame_index: int | None = None

    def for_frame(self, index: int, **extras) -> "RunContext":
        """A context for one frame of a sequence: same cache, its own extras."""
        return replace(self, frame_index=index, extras=extras)
