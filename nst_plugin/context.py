"""What a work hook gets besides the pictures: the run context, and the typed controls with which a
sequence engine steers a frame engine.

A sequence engine never talks to a frame engine through loose keys: it builds a :class:`FrameControls`
(frozen: a misspelt field is a ``TypeError``, not a silently ignored key) and calls
:meth:`RunContext.stylize_frame`, which goes through the plugin host, so a frame plugin applies and a
failing plugin is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from .schedule import NO_SCHEDULE, FrameSchedule


def _ignore(event) -> None:
    pass


@dataclass(frozen=True)
class PreviousFrame:
    """The stylized previous frame warped into this one by optical flow, and where that warp is trusted."""

    warped: Any  # float32 (H, W, 3), RGB 0..255, at the working size
    mask: Any  # float32 (H, W): 1 where the flow passed the consistency checks, 0 where occluded


@dataclass(frozen=True)
class FrameControls:
    """How one frame is to be optimised. Every field's default means "as the config says".

    * ``init``: float RGB image to start from (any size: it is resized to the working shape);
    * ``max_iterations``, ``rounds``, ``tolerance``: caps of this frame (a warm-started frame costs less);
      ``tolerance_window``: the loss change is measured over this many iterations;
    * ``target_objective``: stop once the weighted loss, without the terms named in ``target_excludes``,
      is down to this value; ``target_terms``: ``((name, value), ...)``, and each of these weighted terms is
      down to its value (a start that already meets the targets is not optimised at all);
    * ``working_shape``: ``(height, width)`` to optimise at (the coarse pass of coarse-to-fine);
    * ``shot``: 0-based shot number within the sequence;
    * ``previous``: the warped previous output and its trust mask (the ``temporal`` loss reads it);
    * ``style_masks``: one entry per style image, a float (H, W) 0..1 array at any size with the frame's
      aspect ratio, or ``None`` for that style everywhere; given, each style's Gram matrices are matched over
      its region (Gatys et al. 2017 spatial control) instead of blending them over the whole frame.
    """

    init: Any = None
    max_iterations: int | None = None
    rounds: int | None = None
    tolerance: float | None = None
    tolerance_window: int | None = None
    target_objective: float | None = None
    target_excludes: tuple[str, ...] = ()
    target_terms: tuple[tuple[str, float], ...] = ()
    working_shape: tuple[int, int] | None = None
    shot: int = 0
    previous: PreviousFrame | None = None
    style_masks: tuple[Any, ...] | None = None  # tuple[np.ndarray | None, ...]: numpy is not imported here


@runtime_checkable
class StyleMaskSource(Protocol):
    """Style masks that may change from frame to frame (a moving ``--style-mask``): ``at(index)`` gives frame
    ``index``'s, one float (H, W) 0..1 array per style image (what :attr:`FrameControls.style_masks` takes),
    or ``None`` for no mask. :mod:`nst_plugin.style_masks` makes them; a sequence engine asks
    :meth:`RunContext.style_masks_at` for each frame it optimises."""

    def at(self, index: int | None) -> tuple[Any, ...] | None: ...


@dataclass(frozen=True)
class Resume:
    """Frames an earlier run of the same job finished: not stylized again, but they still seed the next
    frame, so a resumed run gives the frames an uninterrupted one would."""

    frames: Mapping[int, Callable[[], Any]] = field(default_factory=dict)  # index -> loader of its uint8 RGB
    # index -> the key its engine recorded (``stats["key"]``: the keyframe engine's shot network, animated
    # weights): an engine may make a finished frame again when the key it would give it now differs
    keys: Mapping[int, str] = field(default_factory=dict)
    # index -> the engine's own state of that frame (``stats["state"]``, any JSON), handed back untouched; it
    # was read from disk: an engine checks what it uses
    states: Mapping[int, Any] = field(default_factory=dict)


@runtime_checkable
class ArtifactStore(Protocol):
    """Files a sequence engine keeps with a job's results (a trained network, stylized keyframes), so that a
    resumed run finds them: ``nst video`` keeps them in the output folder and lists them in its manifest.

    * ``get(name, key)``: the file if the store holds an artifact ``name`` recorded with exactly this
      ``key`` (what it was made from: a hash of its inputs and settings), else ``None``;
    * ``put(name, key, write)``: calls ``write(tmp_path)`` with a temporary path in the same folder whose name
      ends with ``name`` (so its suffixes, ``.weights.h5`` or ``.png``, tell Keras or OpenCV the format),
      moves the file to ``name`` atomically and records it with ``key``; returns the final path.

    ``name`` is a plain file name (no folder, not hidden, not a name the folder keeps for itself such as
    ``frame_000001.png`` or ``nst_manifest.json``); anything else is a ``ValueError``. ``--overwrite``
    deletes the artifacts with the frames; a resumed run with the same settings keeps them.
    """

    def get(self, name: str, key: str) -> Path | None: ...

    def put(self, name: str, key: str, write: Callable[[Path], None]) -> Path: ...


@dataclass
class RunContext:
    """Lives as long as one run (an image, or a whole sequence).

    ``host``: the :class:`~nst_plugin.plugins.PluginHost` (registry, work-hook calls). ``on_event``: receives
    the run's typed events (:mod:`nst_plugin.events`). ``cache``: a dict a plugin may keep things in across
    the frames of a run (the built-in engine keeps its backbone and style targets there). ``controls`` and
    ``frame_index``: this frame's (see :meth:`for_frame`). ``resume``: frames finished by an earlier run.
    ``store``: an :class:`ArtifactStore` for files a sequence engine keeps with the results (the video's
    output folder), or ``None`` where there is none (the Python API, the webcam). ``schedule``: per-frame
    values of the animated settings (:class:`~nst_plugin.schedule.FrameSchedule`; empty: none), which a
    sequence engine applies with ``schedule.config_at(config, index)``. ``style_masks``: the run's per-frame
    style masks (a :class:`StyleMaskSource`), or ``None``: then every frame starts from ``controls.style_masks``
    (see :meth:`style_masks_at`).
    """

    host: Any
    on_event: Callable[[Any], None] = _ignore
    cache: dict = field(default_factory=dict)
    controls: FrameControls = field(default_factory=FrameControls)
    frame_index: int | None = None
    resume: Resume = field(default_factory=Resume)
    store: ArtifactStore | None = None
    schedule: FrameSchedule = NO_SCHEDULE
    style_masks: StyleMaskSource | None = None

    @property
    def registry(self):
        return self.host.registry

    @property
    def plugin_manager(self):
        return self.host.pm

    def emit(self, event) -> None:
        self.on_event(event)

    def style_masks_at(self, index: int | None) -> tuple[Any, ...] | None:
        """The style masks of frame ``index`` (what a sequence engine puts in that frame's
        :class:`FrameControls`): the run's per-frame ones, else the run's controls' (the same for every frame)."""
        if self.style_masks is not None:
            return self.style_masks.at(index)
        return self.controls.style_masks

    def for_frame(self, index: int | None, controls: FrameControls | None = None) -> "RunContext":
        """A context for one frame of a sequence: same cache and events, its own controls."""
        return replace(self, frame_index=index, controls=controls or FrameControls())

    def stylize_frame(self, content, styles, config, index: int | None = None,
                      controls: FrameControls | None = None):
        """Stylize one frame through ``nst_stylize_frame`` (any installed frame plugin applies)."""
        return self.host.stylize_frame(content=content, styles=styles, config=config,
                                       context=self.for_frame(index, controls))
