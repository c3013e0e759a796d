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

    Extras the built-in engines use (a plugin may read them, or set them when it drives the frame engine):

    * per frame, set by the sequence engine, read by the frame engine and the loss terms:
      ``"init"``; ``"previous_warped"`` (float RGB 0..255, the stylized previous frame warped into this one)
      and ``"temporal_mask"`` ((H, W) float, 1 where the optical flow is trusted), read by the ``temporal``
      loss; ``"max_iterations"``, ``"rounds"``, ``"tolerance"`` (caps of a warm-started frame);
      ``"target_loss"`` with ``"target_excludes"`` (stop once the weighted loss without those terms is
      down to this); ``"working_shape"`` ((height, width), the coarse pass of coarse-to-fine); ``"shot"``.
    * per run, given to ``nst_stylize_sequence``: ``"done"`` (frame index -> callable returning a frame
      finished by an earlier run, uint8 RGB: not stylized again, but it seeds the next frame) and
      ``"done_objectives"`` (frame index -> its loss without the temporal term), so a resumed run gives the
      frames an uninterrupted one would.
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
