"""The ``keyframes`` sequence engine: plan, keyframes, training, then every frame.

1. Plan (one pass over the frames): shots by the cut detector, keyframes per shot (``--keyframes`` or,
   by default, the first frame of every shot, then the frame where the latest keyframe's strokes, followed
   along the shot as the texture track follows them, reach less than ``keyframes.coverage`` of the picture,
   or ``--keyframe-interval`` frames after it; see :mod:`.selection`).
2. Keyframes (a second pass keeps only them): each is stylized by ``context.stylize_frame`` at
   ``--keyframe-size`` (a shot's first: a cold frame, coarse-to-fine; a later one chosen by coverage: warm,
   from the keyframe before it carried to it, ``plan.starts``), and kept in the output folder
   (``keyframe_NNNNNN.png``, through ``context.store``) so a resumed run does not stylize it again.
3. Training, per shot: the network (:mod:`.network`) learns (content at the keyframes' size and its guide ->
   the keyframe) on random patches (:mod:`.training`); it starts from the previous shot's weights; the weights are
   kept in the output folder (``network_shotNNN.weights.h5``) under a key of the shot's keyframes, so a
   resumed run does not retrain and another keyframe retrains only its shot.
4. Frames (a third pass): every frame through its shot's network at the keyframes' size, in tiles when larger
   than ``keyframes.tile``, then enlarged to the output size (``--size``; default the source's) with the
   frame's own fine detail added (:func:`enlarge`). With ``keyframes.full_size`` the network learns the
   keyframe enlarged so and runs at the output size instead. With its guide (:mod:`.guides`: a random
   pattern carried along the shot by the optical flow, computed in the second and third passes) as the
   network's second input; otherwise a frame depends on its own content only. The network's
   fine detail is then replaced by the shot's latest keyframe's, carried to the frame by the optical flow
   where it can be followed (its large shapes too where the picture stands still; a point lost there, e.g.
   what a walker uncovered, placed again from its neighbours where the keyframe's source looks alike), and
   by the frame's own where it cannot (:mod:`.transport`, ``keyframes.transport``; computed in the third
   pass with the guides and shipped with them). Then the
   temporal filter (:mod:`.smoothing`, ``keyframes.smooth`` frames on each side, default 3): a frame is
   averaged with its shot's neighbouring network frames moved onto it by the optical flow. The frames go in
   chunks that carry the filter's margins, so a frame is the same whichever chunk, process or machine made it.

A source that can only be read once (a camera, ``nst webcam``) runs live: its first frame is the keyframe,
the network learns it, then every following frame goes through the network as it arrives.

Design, measurements and history: docs/design/keyframes.md
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, replace

import numpy as np

from ...context import FrameControls
from ...errors import UserError
from ...events import Cut, Keyframe, Training
from ...images import luminance_rgb, resize, to_uint8
from ...result import FrameResult, SequenceResult
from ..pyramid import Pyramid
from .selection import make_plan

CHUNK = 16  # frames a chunk of the last stage makes: the temporal filter's margins are made once per chunk
# the trust a carried point keeps through a step the flow checks reject: strokes stay where DIS is only
# briefly unsure (less flicker); more drags them over what moves
TRANSPORT_DECAY = 0.7
# what texture transport lays over the network's frames; a new value remakes the frames of a resumed run
# (each version: docs/design/keyframes.md#texture-transport)
TRANSPORT_VERSION = 5
FLOW_SIDE = 384  # the longer side of texture transport's flow (its network's frames are 384 px by default)
DEFAULT_KEYFRAME_SIZE = 384  # the default preset's --size: the keyframes' look is the frame engine's at it
# a keyframe that starts from the one before it carried to it (a warm start, see plan_shots) runs all of
# --warm-iterations: stopped at the tolerance, it stays nearly its start
WARM_TOLERANCE = 0.0


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.tobytes() if isinstance(part, np.ndarray) else json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def enlarge(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """A stylized picture at the (larger) content's size: upsampled, plus the content's detail band that the
    smaller picture could not hold (:class:`~..pyramid.Pyramid`, as the frame engine's coarse-to-fine does).
    The same size: the picture itself."""
    return Pyramid(stylized.shape[:2], content.shape[:2]).enlarge(stylized, content)


def plan_shots(frames, config, context):
    """The run's :class:`~.selection.Plan`: shots, and keyframes per shot (``--keyframes``; or, with texture
    transport and ``keyframes.coverage``, where the latest keyframe no longer reaches enough of the picture,
    followed as the texture track will follow it, each such keyframe started from the one before it carried
    to it (``plan.starts``); or one per ``--keyframe-interval`` window)."""
    from .transport import Coverage

    options = context.registry.get("engines", "keyframes").option_values(config)
    coverage = options["coverage"] if options["transport"] else 0.0

    def follow(shape):
        return Coverage(shape, decay=TRANSPORT_DECAY, recover=options["recover"])

    return make_plan(frames, config.cut_threshold, options["interval"], options["frames"], follow=follow,
                     coverage=coverage)


def _shared_flow(guides, carry):
    """The flow the guide track just computed (this frame to the previous one), when the texture track
    follows the same frames at the same flow size and so needs the same flow; else None (computed again)."""
    if guides is None or carry is None or guides.flow_shape != carry.flow_shape:
        return None
    return guides.back


def keyframes_read(shots, sources, context):
    """The shots whose keyframes are in ``sources`` (what the keyframe pass read), and those keyframes. A shot
    whose keyframe the source no longer gives (moved, deleted or damaged since the plan's pass) is left out
    with a warning: its frames are not made in this run (a later run makes them)."""
    from ...events import Warning
    from ...video.sources import ranges_text

    kept = [shot for shot in shots if all(k in sources for k in shot.keyframes)]
    for shot in shots:
        missing = [k for k in shot.keyframes if k not in sources]
        if missing:
            context.emit(Warning(f"shot {shot.number}: keyframe{'s' if len(missing) > 1 else ''} {ranges_text(missing)} "
                                 f"could not be read again: its frames {ranges_text(shot.frames)} are not made", missing[0]))
    return kept, {k for shot in kept for k in shot.keyframes}


@dataclass(eq=False)
class Work:
    """What a run (one process, or a cluster's client) has to make, known before any keyframe is made."""

    plan: object  # :class:`~.selection.Plan`
    run: _Run
    network_keys: dict  # {shot number: its network's key}
    frame_keys: dict  # {shot number: the key its frames record}
    done: set  # the frames a resumed run has, made with their shot's key
    shots: list  # the shots with a frame to make whose keyframes could be read
    sources: dict  # {keyframe: (its source frame, its guide or None)}

    @property
    def keyframes(self) -> list:
        """The keyframes to make (or find in the store), shot by shot."""
        return [k for shot in self.shots for k in shot.keyframes]


def prepare(frames, styles, config, context) -> Work:
    """1. the plan (a first pass over the frames), each shot's keys, what a resumed run already has, and the
    keyframes' source frames and guides (a second pass, which stops at each shot's last keyframe)."""
    from .painted import apply_to_plan, check_paintings, read_paintings

    paintings = read_paintings(config.option("keyframes.images", ()))  # a file that cannot be read: before any pass
    started = time.perf_counter()
    plan = plan_shots(frames, config, context)
    planned = time.perf_counter() - started
    if paintings or not styles:  # a painted keyframe is its shot's keyframe (refused: a frame not in the run)
        check_paintings(paintings, plan, styles, config.working_shape(*plan.shape))
        apply_to_plan(plan, paintings)
    for shot in plan.shots[1:]:
        context.emit(Cut(index=shot.frames[0], shot=shot.number))
    run = _Run(config, styles, context, plan.shape, plan.starts, paintings)
    run.timings["plan"] = planned
    # a shot's network is known by its keyframes and how it learns them; every frame records its
    # network's key, so a finished frame is made again only when its shot's keyframes changed
    network_keys = {shot.number: run.run_for(shot).network_key(shot.keyframes) for shot in plan.shots}
    frame_keys = {shot.number: run.run_for(shot).frames_key(network_keys[shot.number]) for shot in plan.shots}
    shot_number = {i: shot.number for shot in plan.shots for i in shot.frames}
    done = {i for i in context.resume.frames
            if i in shot_number and context.resume.keys.get(i) == frame_keys[shot_number[i]]}
    todo = [shot for shot in plan.shots if any(i not in done for i in shot.frames)]
    wanted = {k for shot in todo for k in shot.keyframes}
    sources = {index: (frame, guide) for index, frame, guide, _ in run.guided(frames, todo, until_keyframes=True)
               if index in wanted}
    todo, _ = keyframes_read(todo, sources, context)  # a keyframe the source no longer gives: its shot waits
    return Work(plan, run, network_keys, frame_keys, done, todo, sources)


class KeyframeEngine:
    def __init__(self, config):
        self.config = config

    def check_units(self, config, source) -> None:
        """On a cluster: refused before the output folder where the units cannot run (:mod:`.units`)."""
        from .units import check_units

        check_units(config, source)

    def stylize_units(self, dispatch, frames, styles, config, context):
        """On a cluster: keyframes, a shot's training and chunks of frames are units (:mod:`.units`)."""
        from .units import stylize_units

        return stylize_units(dispatch, frames, styles, config, context)

    def stylize_sequence(self, frames, styles, config, context, sink):
        """One process: the same units a cluster ships (:mod:`.units`), run here in order."""
        from ...backends import import_keras
        from ...cluster.local import LocalDispatch
        from .units import stylize_units

        import_keras()
        if iter(frames) is frames:
            return self._live(frames, styles, config, context, sink)
        return stylize_units(LocalDispatch(context, sink), frames, styles, config, context)

    def _live(self, frames, styles, config, context, sink):
        """One pass (a camera): the first frame is the keyframe; the network learns it, then every following
        frame goes through it as it arrives."""
        if config.option("keyframes.images"):
            raise UserError("--keyframe-image needs a video file or an image sequence: a camera's frames are read once")
        started = time.perf_counter()
        first = next(frames, None)
        if first is None:
            return SequenceResult(seconds=time.perf_counter() - started, stats={"cuts": [], "shots": 0})
        index, frame = first
        run = _Run(config, styles, context, frame.shape[:2])
        track, carry = run.guide_track(), run.texture_track()
        guide = track.next(frame) if track is not None else None
        stylized = run.keyframe(index, 0, frame, 1)
        key = run.network_key([index])
        model = run.network(0, {index: (frame, guide, stylized)}, None)
        key = run.frames_key(key)
        if carry is not None:
            carry.start(run.target(frame, stylized))
        carried = carry.next(frame) if carry is not None else None
        sink(index, run.frame(frame, model, shot=0, key=key, cut=False, keyframe=True, guide=guide, carried=carried))
        written = 1
        for index, frame in frames:
            t0 = time.perf_counter()
            guide = track.next(frame) if track is not None else None
            carried = carry.next(frame, back=_shared_flow(track, carry)) if carry is not None else None
            tracks = time.perf_counter() - t0
            run.timings["tracks"] += tracks
            sink(index, run.frame(frame, model, shot=0, key=key, cut=False, keyframe=False, guide=guide,
                                  carried=carried, tracks=tracks))
            written += 1
        return SequenceResult(frames=written, seconds=time.perf_counter() - started, stats={
            "skipped": 0, "cuts": [], "shots": 1, "keyframes": [first[0]], **run.summary()})


class _Run:
    """What one run of the engine shares: sizes, settings, and the three steps of a shot."""

    def __init__(self, config, styles, context, source_shape, starts: dict | None = None, paintings: dict | None = None):
        from .guides import CHANNELS, GuideSettings
        from .network import NetworkShape
        from .training import TrainingSettings

        options = self.options = context.registry.get("engines", "keyframes").option_values(config)
        self.styles, self.context = styles, context
        # {frame: painted.Painting} (the client's; a worker is told which shots are painted): their shots are
        # made by :meth:`painted_variant`
        self.paintings = paintings or {}
        self._painted = None
        # (low, high): the levels 0..255 the network learns its targets in, None: as they are (the painted
        # variant's: away from the tanh's ends, :data:`~.painted.SQUEEZE`)
        self.squeeze = None
        self.tile, self.smooth = options["tile"], options["smooth"]
        self.out_shape = config.working_shape(*source_shape)
        key_side = min(options["size"] or DEFAULT_KEYFRAME_SIZE, max(self.out_shape))
        self.key_config = replace(config.for_image(), size=key_side)
        self.key_shape = self.key_config.working_shape(*source_shape)
        self.key_fingerprint = self.key_config.output_fingerprint()  # which keyframes were chosen is not part of it
        # where the network works: at the keyframes' size, where it learns their strokes (a larger output is
        # that, enlarged, plus the frame's own fine detail); or at the output size (keyframes.full_size)
        self.net_shape = self.out_shape if options["full_size"] else self.key_shape
        # the guide pattern's blobs are given in keyframe pixels (the style's texture scale there)
        self.guides = GuideSettings(scale=options["guide"] * max(self.net_shape) / max(self.key_shape),
                                    seed=options["seed"]) if options["guide"] else None
        self.shape = NetworkShape(guides=CHANNELS if self.guides is not None else 0)
        # the keyframe's fine detail carried along the shot (transport.py): its blur, in the network's pixels
        self.transport = options["transport"] * max(self.net_shape) / max(self.key_shape)
        self.recover = options["recover"]
        # frames over which a painting carried along the flow fades from the frames (the painted variant's, 0 here)
        self.carry_frames = 0.0
        self.flow_side = FLOW_SIDE  # the longer side of the texture track's flow
        self.settings = TrainingSettings(
            patch=options["patch"], batch=options["batch"], learning_rate=options["learning_rate"],
            max_steps=options["steps"], max_seconds=options["seconds"], plateau=options["plateau"],
            perceptual_weight=options["perceptual"], seed=options["seed"])
        self.features = None
        if self.settings.perceptual_weight:
            from ..stylizer import get_backbone

            self.features = get_backbone(context.registry, config).extractor(self.settings.perceptual_layers)
        # {keyframe: (the keyframe before it, how that one reaches it)}: warm starts (plan_shots)
        self.starts = starts or {}
        self.warm_iterations = config.warm_iterations
        # seconds: the plan's pass (cuts, coverage), the keyframes, the training, the guide and texture tracks
        # (following the frames by the optical flow, in the passes that need them), and the frames themselves
        self.timings = {"plan": 0.0, "keyframes": 0.0, "training": 0.0, "tracks": 0.0, "frames": 0.0}
        self.track_seconds: dict[int, float] = {}  # {frame: seconds its tracks took in the latest pass}
        # {(frame, its neighbour): DIS flow} the texture track computed, which the temporal filter needs too
        # (the same frames at the same size: the same flows); the frames of the latest chunks only. None: not
        # kept (a cluster's client, whose workers make the frames)
        self.neighbour_flows: dict[tuple[int, int], np.ndarray] | None = {}
        self.reports: dict[int, dict] = {}
        self.keyframes_done = 0

    def run_for(self, shot) -> _Run:
        """The run that makes ``shot``: :meth:`painted_variant` when it has a painted keyframe, else this one."""
        return self.painted_variant() if any(k in self.paintings for k in shot.keyframes) else self

    def painted_variant(self) -> _Run:
        """This run as a shot with painted keyframes makes it (:func:`~.painted.painted_run`)."""
        if self._painted is None:
            from .painted import painted_run

            self._painted = painted_run(self, self.options)
            self._painted._painted = self._painted
        self._painted.context = self.context  # (a worker's run gets each unit's context)
        return self._painted

    def needs_optimised(self, index: int) -> bool:
        """Whether painted keyframe ``index`` needs the frame engine's keyframe: where its alpha lets the engine's
        own look show (with a style; without, the source shows there)."""
        return self.paintings[index].alpha is not None and bool(self.styles)

    def keyframe_key(self, index: int) -> str:
        """What keyframe ``index`` is made from: its painting's content (and, under its alpha, the frame
        engine's keyframe), or the frame engine's keyframe (:meth:`optimised_key`)."""
        painting = self.paintings.get(index)
        if painting is None:
            return self.optimised_key(index)
        h, w = self.out_shape
        key = f"painted:{painting.digest}:{index}:{h}x{w}"
        return key + f":over:{self.optimised_key(index)}" if self.needs_optimised(index) else key

    def optimised_key(self, index: int) -> str:
        """The key of the frame engine's keyframe ``index`` (kept in the output folder under it)."""
        h, w = self.key_shape
        key = f"{self.key_fingerprint}:{index}:{h}x{w}"
        start = self.starts.get(index)
        if start is not None:  # started from the keyframe before it: made anew when that one is
            key += f":from:{_digest(self.keyframe_key(start[0]), self.warm_iterations, WARM_TOLERANCE)}"
        return key

    def warm_start(self, index: int, frame: np.ndarray, stylized: dict):
        """Where the frame engine starts keyframe ``index`` (``frame``: its source frame): the keyframe before it
        (in ``stylized``) carried to it where its strokes reach, the frame elsewhere; None: a cold start."""
        start = self.starts.get(index)
        if start is None:
            return None
        previous, reached = start
        init = reached.start(stylized[previous], frame)
        # with --preserve-color the frame engine optimises luminance (as the L-BFGS engine's warm frames start)
        return luminance_rgb(init) if self.key_config.preserve_color else init

    def network_key(self, keyframes) -> str:
        squeeze = (self.squeeze,) if self.squeeze is not None else ()
        return _digest([self.keyframe_key(k) for k in keyframes], list(self.out_shape), list(self.net_shape),
                       self.settings.__dict__,
                       self.shape.__dict__, self.guides.__dict__ if self.guides is not None else None, *squeeze)

    def frames_key(self, network_key: str) -> str:
        """What a frame is made from: its shot's network and what is laid over the network's frames."""
        if self.carry_frames:  # (the painted variant: the painting carried over its frames)
            return _digest(network_key, "painted carried", self.carry_frames, TRANSPORT_DECAY, self.recover, "both ways",
                           self.flow_side)
        return (_digest(network_key, self.transport, TRANSPORT_DECAY, TRANSPORT_VERSION, self.recover) if self.transport
                else network_key)

    def chunks(self, items, shot_of: dict, wanted, size: int | None = None):
        """``(items, indices to make)``: ``items`` ((index, frame, guide, carried) in order, see :meth:`guided`)
        in chunks of ``size`` frames (default ``CHUNK``) of one shot with the temporal filter's margins
        (:func:`~.smoothing.windows`)."""
        from .smoothing import windows

        return windows(items, lambda index: shot_of[index].number, wanted, self.smooth, size or CHUNK)

    def guide_track(self):
        """A new :class:`~.guides.GuideTrack` at the network's size, or None when the network has no guides."""
        from .guides import GuideTrack

        return GuideTrack(self.net_shape, self.guides) if self.guides is not None else None

    def texture_track(self):
        """A new :class:`~.transport.TextureTrack` at the network's size, or None without texture transport (nor,
        in the painted variant, a painting to carry)."""
        from .transport import TextureTrack

        carries = self.transport or self.carry_frames
        return (TextureTrack(self.net_shape, flow_side=self.flow_side, decay=TRANSPORT_DECAY, recover=self.recover)
                if carries else None)

    def target(self, frame: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        """What the network learns of a keyframe, at the network's size (``frame``: its source frame)."""
        target = enlarge(stylized, resize(frame, *self.net_shape))
        if self.squeeze is not None:
            low, high = self.squeeze
            target = low + np.asarray(target, np.float32) * ((high - low) / 255.0)
        return target

    def guided(self, frames, shots, until_keyframes: bool = False, textures: dict | None = None):
        """:meth:`_guided`, and with ``textures`` (the frames' pass) each painting carried back over the frames
        of its shot before it too (:func:`~.painted.carried_back`)."""
        items = self._guided(frames, shots, until_keyframes, textures)
        if textures is None or not self.paintings:
            return items
        from .painted import carried_back

        return carried_back(items, {index: shot for shot in shots for index in shot.frames}, self.run_for)

    def _guided(self, frames, shots, until_keyframes: bool = False, textures: dict | None = None):
        """``(index, frame, guide, carried)`` for the frames of ``shots`` (in the source's order), the guide
        following the picture from each shot's first frame (None without guides); ``until_keyframes``: only up
        to each shot's last keyframe. ``textures``: {keyframe: :meth:`target`}, carried along the shot from each
        keyframe to the next (:class:`~.transport.Carried`; None without them, before a shot's first keyframe,
        or without texture transport); a painted shot's track carries its paintings instead
        (:func:`~.painted.texture`). Every frame of a shot is needed for its guides, also one that is not
        made."""
        def texture_track(run):  # (textures None: only the guides are wanted, the keyframes' pass)
            return run.texture_track() if textures or (textures is not None and run.carry_frames) else None

        # {the run that makes a shot (:meth:`run_for`): its guide and texture tracks}: a painted shot's differ
        tracks = {self: (self.guide_track(), texture_track(self))}
        track, carry = tracks[self]
        shot_of = {index: shot for shot in shots for index in shot.frames}
        previous, run = None, self  # the frame before, in the shot; the run that makes the shot
        for index, frame in frames:
            shot = shot_of.get(index)
            if shot is None or (until_keyframes and index > max(shot.keyframes)):
                continue
            t0 = time.perf_counter()
            guide = carried = None
            if index == shot.frames[0]:  # a new shot: the tracks start again
                previous = None
                run = self.run_for(shot)
                if run not in tracks:
                    tracks[run] = (run.guide_track(), texture_track(run))
                track, carry = tracks[run]
                for started in (track, carry):
                    if started is not None:
                        started.reset()
            if track is not None:
                guide = track.next(frame)
            if carry is not None:
                if index in shot.keyframes:
                    carry.start(textures[index] if index in textures else run.painted_texture(index))
                carried = carry.next(frame, back=_shared_flow(track, carry))
                run._keep_flows(carry, previous, index)  # (at the size of the frames that run filters)
            previous = index
            self.track_seconds[index] = time.perf_counter() - t0
            self.timings["tracks"] += self.track_seconds[index]
            yield index, frame, guide, carried

    def _keep_flows(self, carry, previous: int | None, index: int) -> None:
        """Keep the flows ``carry`` (the texture track) just computed between frame ``index`` and ``previous``
        for the temporal filter, when it filters frames of the track's flow size (:attr:`neighbour_flows`)."""
        flows = self.neighbour_flows
        if flows is None or carry.flows is None or previous is None or carry.flow_shape != tuple(self.net_shape):
            return
        flows[(index, previous)], flows[(previous, index)] = carry.flows
        oldest = index - 2 * (CHUNK + 2 * self.smooth)  # older frames' chunks are made (chunks() goes in order)
        for pair in [pair for pair in flows if min(pair) < oldest]:
            del flows[pair]

    def keyframe(self, index: int, shot: int, frame: np.ndarray, total: int, init=None) -> np.ndarray:
        """A keyframe stylized by the frame engine at the keyframe size; ``init``: its warm start
        (:meth:`warm_start`), or None for a cold frame (coarse-to-fine)."""
        t0 = time.perf_counter()
        controls = FrameControls(shot=shot, style_masks=self.context.style_masks_at(index))  # the run's, this frame's
        if init is not None:
            controls = replace(controls, init=init, max_iterations=self.warm_iterations, rounds=1,
                               tolerance=WARM_TOLERANCE)
        image = self.context.stylize_frame(resize(frame, *self.key_shape), self.styles, self.key_config, index,
                                           controls).image
        seconds = time.perf_counter() - t0
        self.timings["keyframes"] += seconds
        self.keyframes_done += 1
        self.context.emit(Keyframe(index=index, shot=shot, seconds=round(seconds, 3), done=self.keyframes_done,
                                   total=total, resumed=False))
        return image

    def painted_keyframe(self, index: int, frame: np.ndarray, optimised=None) -> np.ndarray:
        """Painted keyframe ``index`` at the output size (float RGB 0..255) laid, by its alpha, over the frame
        engine's keyframe ``optimised`` enlarged with the frame's (``frame``) fine detail, or without a style
        over the source frame."""
        from .painted import over

        image, alpha = self.paintings[index].at(self.out_shape)
        base = None
        if alpha is not None:
            content = resize(frame, *self.out_shape)
            base = enlarge(optimised, content) if optimised is not None else content
        return over(image, alpha, base)

    def painted_texture(self, index: int) -> np.ndarray:
        """Painting ``index`` as the painted variant's texture track carries it (:func:`~.painted.texture`)."""
        from .painted import texture

        return texture(self.paintings[index], self.net_shape)

    def painted_frames(self, items, stylized: dict) -> dict:
        """{painted keyframe: its frame} of the frames ``items`` ((index, ...) tuples) that have a painting:
        :meth:`painted_keyframe`'s picture in ``stylized``, the output at that frame (:meth:`frames`)."""
        return {item[0]: stylized[item[0]] for item in items if item[0] in self.paintings}

    def network(self, shot: int, pairs: dict, previous):
        """The shot's network trained on ``pairs`` ({index: (source frame, its guide or None, stylized
        keyframe)}); ``previous``: the network to start from (the previous shot's), or None."""
        from .network import build_network
        from .training import train

        t0 = time.perf_counter()
        settings = self.settings
        model = build_network(self.shape, seed=settings.seed)
        if previous is not None:  # the previous shot's network is a better start than random weights
            model.set_weights(previous.get_weights())
        examples = [(self._input(resize(frame, *self.net_shape), guide), self.target(frame, image))
                    for k, (frame, guide, image) in pairs.items()]

        def on_check(step, loss):
            self.context.emit(Training(shot=shot, step=step, total=settings.max_steps, loss=round(loss, 5),
                                       seconds=round(time.perf_counter() - t0, 2)))

        report = train(model, examples, settings, self.features, on_check)
        self.reports[shot] = {"steps": report.steps, "seconds": round(report.seconds, 2), "loss": report.loss,
                              "stopped": report.stopped}
        self.context.emit(Training(shot=shot, step=report.steps, total=settings.max_steps,
                                   loss=round(report.loss, 5), seconds=round(report.seconds, 2),
                                   stopped=report.stopped))
        self.timings["training"] += time.perf_counter() - t0
        return model

    def _input(self, content: np.ndarray, guide) -> np.ndarray:
        """The network's input: the content (at the network's size) and its guide channels."""
        if (guide is None) != (self.guides is None):
            raise ValueError("a frame's guide is missing" if guide is None else "this network takes no guide")
        return content if guide is None else np.concatenate([content.astype(np.float32), guide], axis=-1)

    def _network_frame(self, model, content: np.ndarray, guide, carried=None) -> np.ndarray:
        """The network's frame (float RGB 0..255 at the network's size) of ``content`` at that size, with the
        keyframe's fine detail where it was ``carried`` and the content's own elsewhere
        (:func:`~.transport.composite`)."""
        from .network import stylize_image
        from .transport import composite

        image = stylize_image(model, self._input(content, guide), tile=self.tile, shape=self.shape)
        if self.squeeze is not None:
            low, high = self.squeeze
            image = (image - low) * (255.0 / (high - low))
        image = np.clip(image, 0, 255)
        return composite(image, carried, self.transport, content)

    def _result(self, image: np.ndarray, frame: np.ndarray, seconds: float, *, shot: int, key: str, cut: bool,
                keyframe: bool, tracks: float = 0.0) -> FrameResult:
        """``seconds``: the frame's own work so far; ``tracks``: its guide and texture tracks' (counted in the
        run's ``tracks`` timing, and in the frame's seconds)."""
        t0 = time.perf_counter()
        if self.net_shape != self.out_shape:
            image = enlarge(image, resize(frame, *self.out_shape))
        seconds += time.perf_counter() - t0
        self.timings["frames"] += seconds
        return FrameResult(image=to_uint8(image), stats={
            "seconds": seconds + tracks, "shot": shot, "cut": cut, "warm": False, "keyframe": keyframe, "engine": "keyframes",
            "status": "ok", "key": key, "size": list(self.out_shape)})

    def frame(self, frame: np.ndarray, model, *, shot: int, key: str, cut: bool, keyframe: bool,
              guide: np.ndarray | None = None, carried=None, tracks: float = 0.0) -> FrameResult:
        """One frame on its own (a live source: no temporal filter, which needs the frames after it);
        ``tracks``: the seconds its ``guide`` and ``carried`` took."""
        t0 = time.perf_counter()
        image = self._network_frame(model, resize(frame, *self.net_shape), guide, carried)
        return self._result(image, frame, time.perf_counter() - t0, shot=shot, key=key, cut=cut, keyframe=keyframe,
                            tracks=tracks)

    def frames(self, items: list, emit, model, *, shot, key: str, paintings: dict | None = None):
        """``(index, FrameResult)`` for the frames ``emit`` of a chunk (``items``: (index, frame, guide, carried) of one
        shot in order, with the temporal filter's margins; ``shot``: its :class:`~.selection.Shot` or an object
        with the same ``number``, ``frames[0]`` and ``keyframes``). The network runs on the frames ``emit``
        and their neighbours within ``smooth`` frames; each frame is then filtered (:func:`~.smoothing.smooth`)
        and enlarged to the output size. ``paintings``: {painted keyframe: its frame at the network's size}
        (:meth:`painted_frames`): the output at that frame, and the filter's input there too, so that its
        neighbours take the painting along the flow (no jump from the painting to the network's look); and with
        ``carry_frames`` the painting ``carried`` to each frame over its network frame (:func:`~.painted.lay`)."""
        from .painted import lay
        from .smoothing import FlowCache, needed, smooth

        paintings = paintings or {}
        need = needed(items, emit, self.smooth)
        sources, images, seconds, frames = {}, {}, {}, {}
        for index, frame, guide, carried in items:
            if index in need:
                t0 = time.perf_counter()
                sources[index] = resize(frame, *self.net_shape)
                painted = paintings.get(index)
                images[index] = (np.asarray(painted, np.float32) if painted is not None
                                 else self._network_frame(model, sources[index], guide, carried))
                if painted is None and self.carry_frames:
                    since = index - max((k for k in shot.keyframes if k <= index), default=index)
                    until = min((k for k in shot.keyframes if k > index), default=index) - index
                    images[index] = lay(images[index], carried, since, self.carry_frames, until or None)
                seconds[index], frames[index] = time.perf_counter() - t0, frame
        flows = FlowCache(sources, known=self.neighbour_flows)
        share = sum(seconds.values()) / len(emit)  # the margins' network frames are shared by the chunk's frames
        for index in emit:
            t0 = time.perf_counter()
            image = smooth(index, images, sources, self.smooth, flows) if self.smooth else images[index]
            if index in paintings:  # the painting is the truth for its frame
                image = images[index]
            tracks = self.track_seconds.pop(index, 0.0)  # (made in this process: its guide and texture tracks)
            yield index, self._result(image, frames[index], share + time.perf_counter() - t0, tracks=tracks, shot=shot.number,
                                      key=key, cut=index == shot.frames[0] and shot.number > 0,
                                      keyframe=index in shot.keyframes)

    def summary(self) -> dict:
        return {"keyframe_size": list(self.key_shape), "size": list(self.out_shape), "network_size": list(self.net_shape),
                "training": self.reports,
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}
