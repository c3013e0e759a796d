"""Built-in work-hook plugin: the default frame engine, the sequence dispatcher and the ``lbfgs`` sequence
engine.

Both work hooks are registered ``trylast``: a plugin that implements ``nst_stylize_frame`` or
``nst_stylize_sequence`` and returns a result runs instead of them. The built-in ``nst_stylize_sequence``
runs the sequence engine that ``config.engine`` names (``nst_register_engines``); this module registers
``lbfgs``, the frame-by-frame chain of Gatys et al. and Ruder et al.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ..hookspecs import hookimpl
from ..result import SequenceResult


@hookimpl(trylast=True)
def nst_stylize_frame(content, styles, config, context):
    from ..backends import import_keras

    import_keras()
    from .stylizer import Stylizer

    # one stylizer per config apart from the weights an animated setting changes frame by frame: it takes a
    # frame's weights without compiling again (a new one only when another term becomes active)
    key = ("nst_plugin.builtin.engine", config.fingerprint(leave_out=("strength", "loss_weights")))
    stylizer = context.cache.get(key)
    if stylizer is None or stylizer.styles_source is not styles or (stylizer.config != config
                                                                     and not stylizer.reweight(config)):
        stylizer = Stylizer(config, styles, context.registry)
        context.cache[key] = stylizer
    return stylizer.run(content, context)


@hookimpl(trylast=True)
def nst_stylize_sequence(frames, styles, config, context, sink):
    """Run the sequence engine that ``config.engine`` names (``--engine``; registered through
    ``nst_register_engines``)."""
    engine = context.registry.get("engines", config.engine).factory(config)
    return engine.stylize_sequence(frames, styles, config, context, sink)


@hookimpl
def nst_register_engines(register):
    from ..registry import EngineTraits

    register("lbfgs", LbfgsChain, "the Gatys/Ruder frame-by-frame L-BFGS chain (warm starts moved by optical flow)",
             traits=EngineTraits(frame_settings=True, style_masks=True, label="Frame by frame",
                                 hint="Best quality, every frame optimised: minutes per frame"))


class LbfgsChain:
    """The ``lbfgs`` sequence engine: every frame optimised in turn (Gatys et al.), each warm-started from the
    previous one (Ruder et al.)."""

    def __init__(self, config):
        self.config = config

    def stylize_sequence(self, frames, styles, config, context, sink):
        return _chain(frames, styles, config, context, sink)

    def stylize_units(self, dispatch, frames, styles, config, context):
        """On a cluster: a shot is a unit (:mod:`.lbfgs_units`)."""
        from .lbfgs_units import stylize_units

        return stylize_units(dispatch, frames, styles, config, context)


def _chain(frames, styles, config, context, sink):
    """Temporally coherent video after Ruder et al. 2016.

    Every frame goes through ``context.stylize_frame`` (so a frame plugin applies) with one shared context,
    so the backbone and the style targets are built once; the frame is steered by typed
    :class:`~nst_plugin.context.FrameControls`. With ``config.warm_start``, frame t starts from frame t-1's
    stylization moved by optical flow (:func:`_warm_controls`); a warm frame stops early per
    ``config.warm_stop`` (see :func:`_warm_targets`), on ``warm_tolerance``, or after ``warm_iterations``
    iterations. With a ``temporal`` loss weight, the warped previous output and its trust mask reach the loss
    terms as ``controls.previous``. A shot cut (PySceneDetect) starts the next frame cold; a cold frame is
    optimised coarse-to-fine by the frame engine (``config.coarse_to_fine``).

    Resuming: ``context.resume.frames`` maps frame indices to loaders of already finished stylized frames
    (uint8 RGB); those frames are not stylized again (the sink is not called for them), but they still feed
    the cut detector and the warm start of the next frame, so a resumed run gives the same frames as an
    uninterrupted one.

    Animated settings: ``context.schedule`` gives a frame its own strength / style / temporal weight
    (``schedule.config_at``); the frame records its key (``schedule.key``), and a finished frame whose
    recorded key differs from it is made again (the frames after it keep theirs). A warm frame aims at the
    objective of its shot's cold frame or of the previous frame only when those had the same weights.
    """
    from ..events import Cut
    from ..images import resize
    from ..shots import ShotDetector

    started = time.perf_counter()
    done, done_keys = context.resume.frames, context.resume.keys
    detector = ShotDetector(config.cut_threshold)
    carried = _Carried()
    count = skipped = 0
    cuts = []
    for index, frame in frames:
        height, width = config.working_shape(*frame.shape[:2])
        work = resize(frame, height, width)
        cut = detector.is_cut(work)
        if cut:
            carried.shot += 1
            cuts.append(index)
            context.emit(Cut(index=index, shot=carried.shot))
        key = context.schedule.key(config, index)
        if index in done and done_keys.get(index) == key:
            state = _resumed_state(context.resume.states.get(index))
            carried.previous = _Previous(work, done[index], state.get("objective"), key)
            carried.anchor = state.get("anchor")
            skipped += 1
            continue
        result = _chain_frame(index, work, cut, key, styles, config, context, carried)
        sink(index, result)
        carried.previous = _Previous(work, result.image, result.stats["objective"], key)
        count += 1
    return SequenceResult(frames=count, seconds=time.perf_counter() - started,
                          stats={"skipped": skipped, "cuts": cuts, "shots": carried.shot + 1})


@dataclass(frozen=True)
class _Previous:
    """The frame before, as the next one needs it."""

    work: object  # its content at the working size
    output: object  # its stylized output (uint8 RGB), or a callable that loads it (a resumed frame)
    objective: float | None  # :func:`_objective`
    key: object  # its animated weights (``schedule.key``)

    def stylized(self, height: int, width: int):
        import numpy as np

        from ..images import resize

        before = self.output() if callable(self.output) else self.output
        return resize(np.asarray(before), height, width)


@dataclass
class _Carried:
    """What the chain carries from frame to frame."""

    previous: _Previous | None = None
    # the shot's cold frame: {"objective": ..., "content": ...} (warm_stop="anchored"; "key": its animated weights)
    anchor: dict | None = None
    shot: int = 0


def _chain_frame(index: int, work, cut: bool, key, styles, config, context, carried: _Carried):
    """Frame ``index`` (``work``: its content at the working size) stylized, warm from ``carried.previous``
    where it can be; its stats say how, and keep what a resumed chain needs of it (``state``)."""
    from ..context import FrameControls

    schedule = context.schedule
    frame_config = schedule.config_at(config, index)
    temporal = frame_config.loss_weights.get("temporal", 0) != 0
    # the frame's style masks (the run's, still or moving: context.style_masks_at) go with it, warm or cold
    controls, warm = FrameControls(shot=carried.shot, style_masks=context.style_masks_at(index)), False
    previous, anchor = carried.previous, carried.anchor
    if previous is not None and not cut and previous.work.shape == work.shape and (config.warm_start or temporal):
        targets = _warm_targets(config, previous.objective if previous.key == key else None,
                                anchor if anchor is not None and anchor.get("key") == key else None)
        controls, warm = _warm_controls(config, previous, work, controls, temporal, targets)
    result = context.stylize_frame(work, styles, frame_config, index, controls)
    objective = _objective(result.stats)
    if not warm:  # a cold frame sets the shot's level of fidelity that its warm frames must keep
        carried.anchor = _anchor(result.stats, objective, key)
    result.stats.update(shot=carried.shot, cut=cut, warm=warm, objective=objective, anchor=carried.anchor, key=key,
                        frame_settings=schedule.record(config, index),
                        state={"objective": objective, "anchor": carried.anchor})
    return result


def _warm_controls(config, previous: _Previous, work, controls, temporal: bool, targets: dict):
    """``(controls, warm)`` of a frame from the one before it moved onto it by DIS optical flow: with a
    ``temporal`` weight, the warped previous output and its trust mask; with ``config.warm_start``, the
    start (warm: True), capped at ``warm_iterations`` and stopped at ``targets`` (:func:`_warm_targets`).

    The start, with ``occluded_init="residual"`` (the default preset's): the frame plus the warped residual
    (stylized minus content) of the frame before, times ``config.residual_keep``; otherwise the warped
    stylized frame itself, its untrusted pixels moved by the dominant motion (``"background"``), by the flow
    anyway (``"warped"``) or taken from the content frame (``"content"``)."""
    import numpy as np

    from ..context import PreviousFrame
    from ..flow import temporal_inputs
    from ..images import luminance_rgb

    warped, mask = temporal_inputs(previous.work, work, previous.stylized(*work.shape[:2]),
                                   background_fill=config.occluded_init in ("background", "residual"),
                                   residual=config.occluded_init == "residual")
    if config.preserve_color:
        warped = luminance_rgb(warped)
        start_from = luminance_rgb(work.astype(np.float32))
    else:
        start_from = work.astype(np.float32)
    if temporal:
        controls = replace(controls, previous=PreviousFrame(warped=warped, mask=mask))
    if not config.warm_start:
        return controls, False
    # "warped"/"background": start from the warped frame everywhere (occluded pixels filled as
    # temporal_inputs did), the optimizer repairs what the flow got wrong; "content": occluded
    # pixels start from the content frame
    keep = mask[..., None] if config.occluded_init == "content" else np.ones_like(mask[..., None])
    if config.occluded_init == "residual":  # the rest of the residual: the frame's own content
        keep = keep * config.residual_keep
    warm_cap = min(config.warm_iterations, config.iterations * config.rounds)
    return replace(controls, init=keep * warped + (1.0 - keep) * start_from, max_iterations=warm_cap, rounds=1,
                   tolerance=config.warm_tolerance, **targets), True


def _resumed_state(state) -> dict:
    """A finished frame's state as this engine recorded it: its objective and its shot's anchor (read from
    disk: anything else is as if none was recorded)."""
    if not isinstance(state, dict):
        return {}
    objective, anchor = state.get("objective"), state.get("anchor")
    number = (int, float)
    return {"objective": objective if isinstance(objective, number) and not isinstance(objective, bool) else None,
            "anchor": anchor if isinstance(anchor, dict) and all(isinstance(anchor.get(k), number)
                                                                 for k in ("objective", "content")) else None}


def _warm_targets(config, previous_objective, anchor) -> dict:
    """When a warm frame may stop early (FrameControls fields).

    ``warm_stop="previous"``: once its objective (without the temporal term) is as low as the previous
    frame's. Measured (benchmarks/drift_bench.py): over a long shot the chain of warm frames keeps optimising
    the same picture, so the style slowly wins and the subject fades. ``"anchored"`` (default): once its
    objective is as low as the shot's cold frame's AND its content term is no higher than that frame's: a
    frame keeps the fidelity of a cold frame, a still start costs one evaluation, and the effort goes where
    the picture changed (where the content term rose). With ``residual_keep`` below 1 the start has less
    style than the previous frame, and a frame could meet the objective with less style and more content
    (measured: the style fades over the shot), so its style term must also be no higher than the cold
    frame's.
    """
    if config.warm_stop == "anchored" and anchor is not None:
        terms = [("content", anchor["content"])]
        if config.residual_keep < 1 and "style" in anchor:
            terms.append(("style", anchor["style"]))
        return dict(target_objective=anchor["objective"], target_excludes=("temporal",), target_terms=tuple(terms))
    if previous_objective is not None:
        return dict(target_objective=previous_objective, target_excludes=("temporal",))
    return {}


def _anchor(stats: dict, objective, key=None) -> dict | None:
    losses, weights = stats.get("losses") or {}, stats.get("weights") or {}
    if objective is None or "content" not in losses:
        return None
    anchor = {"objective": float(objective), "content": float(weights.get("content", 0.0) * losses["content"])}
    if "style" in losses:
        anchor["style"] = float(weights.get("style", 0.0) * losses["style"])
    if key is not None:  # made with animated weights: only frames with the same weights aim at it
        anchor["key"] = key
    return anchor


def _objective(stats: dict):
    """The weighted loss of a finished frame without the temporal term: what the next warm frame aims for."""
    losses, weights = stats.get("losses"), stats.get("weights")
    if not losses or not weights:
        return None
    return float(sum(weights.get(k, 0.0) * v for k, v in losses.items() if k != "temporal"))
