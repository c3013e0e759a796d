"""The live loop: the newest camera frame, stylized by the shown style's current stage, filtered, drawn,
shown and recorded; keys 1-9 switch styles, q or Esc quits.

The loop runs on the calling thread; the camera (:mod:`.capture`) and the learning (:mod:`.stages`) each
on their own. The fps shown is frames shown per second of wall time, capture to screen.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UserError
from .stages import LEARNING, LiveSettings, StyleState

ENGINE = "keyframes"  # the engine whose network the live mode trains and shows (its options apply)
# the live mode's settings where the user gives none (--size, --iterations, --coarse-to-fine): small frames and
# a quick keyframe, one optimisation at its size (docs/benchmarks-live.md)
DEFAULTS = {"size": 360, "iterations": 30, "coarse_to_fine": 0}
NETWORK_SIDE = 240  # the network's longer side (its frames are enlarged to --size)
KEYFRAME_SIDE = 160  # the keyframe's longer side unless --keyframe-size is given
TRAINING_STEPS = 200  # training steps at most unless --option keyframes.steps is given
CHECK_EVERY = 25  # training steps between two measurements of the held patches (the plateau test)
FIRST_FRAME_SECONDS = 10.0  # how long to wait for the camera's first picture


class FpsMeter:
    """Frames per second over the last ``window`` frames, on the wall clock."""

    def __init__(self, window: int = 10, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.times: deque[float] = deque(maxlen=window + 1)
        self.times.append(clock())

    def tick(self) -> float:
        self.times.append(self.clock())
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


def live_settings(config, source_shape: tuple[int, int]) -> LiveSettings:
    """The sizes and the training of a live run for a camera of ``source_shape`` (height, width): the
    keyframe engine's options (``--option keyframes.*``) apply; steps and checks are the live defaults."""
    from ..builtin.keyframes.training import TrainingSettings
    from ..plugins import get_registry

    options = get_registry().get("engines", ENGINE).option_values(config)
    out_shape = config.working_shape(*source_shape)
    key_side = min(int(options["size"] or KEYFRAME_SIDE), max(out_shape))
    net_side = min(max(NETWORK_SIDE, key_side), max(out_shape))
    key_shape, net_shape = (replace(config, size=side).working_shape(*source_shape) for side in (key_side, net_side))
    training = TrainingSettings(
        patch=options["patch"], batch=options["batch"], learning_rate=options["learning_rate"],
        max_steps=int(config.option("keyframes.steps", TRAINING_STEPS)), max_seconds=options["seconds"],
        plateau=options["plateau"], check_every=CHECK_EVERY, perceptual_weight=0.0, seed=options["seed"])
    # the keyframe's strokes: the blur that separates them is given in keyframe pixels (keyframes.transport)
    strokes = options["transport"] * net_side / key_side
    return LiveSettings(out_shape=tuple(out_shape), net_shape=tuple(net_shape), key_shape=tuple(key_shape),
                        training=training, seed=options["seed"], strokes=strokes)


def keyframe_config(config, settings: LiveSettings):
    """The frame engine's settings for a keyframe: the run's, for one image at the network's size."""
    return replace(config.for_image(), size=max(settings.key_shape), square=False)


def cache_key(style: np.ndarray, config, settings: LiveSettings) -> str:
    """A style's network's key: its pixels, the keyframe's settings (weights included) and the training's."""
    from ..builtin.keyframes.network import NetworkShape
    from .cache import network_key

    return network_key(style, {"keyframe": keyframe_config(config, settings).output_fingerprint(),
                               "training": settings.training.__dict__, "network": NetworkShape().__dict__,
                               "network_side": max(settings.net_shape)})


@dataclass
class LiveRun:
    """What a live run did. ``first_shown``: {(style number, stage): seconds from the start to the first frame
    of that stage on screen}; ``lags``: per shown frame, how many frames the camera had delivered after it
    when it was shown."""

    frames: int
    seconds: float
    first_shown: dict
    lags: list
    styles: list
    recorded: dict | None
    quit: bool

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _Screen:
    """The screen side of a live run: a frame painted in the shown style's stage, drawn with its overlay,
    shown, recorded and reported; the measurements (fps, lag, when each stage was first shown)."""

    def __init__(self, camera, screen, painter, recorder, report, on_frame, started: float, styles: int, scale: int):
        self.camera, self.screen, self.painter, self.recorder = camera, screen, painter, recorder
        self.report, self.on_frame, self.started, self.styles, self.scale = report, on_frame, started, styles, scale
        self.meter, self.first_shown, self.lags, self.count = FpsMeter(), {}, [], 0

    def show(self, frame, state) -> tuple[int, str, float]:
        """(the key pressed, the stage shown, when) for one camera frame."""
        from .display import draw

        t0 = time.perf_counter()
        image, stage = self.painter(state, frame.image)
        self.count += 1
        fps = self.meter.tick()
        lag = self.camera.produced - frame.number
        self.lags.append(lag)
        now = time.perf_counter()
        self.first_shown.setdefault((state.number, stage), now - self.started)
        progress = f" {state.step}/{state.total}" if stage == LEARNING else ""
        key = self.screen.show(draw(image, f"{fps:.1f} fps  {stage}{progress}  style {state.number}/{self.styles}"
                                           f"  lag {lag}", self.scale))
        if self.recorder is not None:
            self.recorder.write(image, now)
        if self.on_frame is not None:
            self.on_frame(frame, image, stage)
        self.report({"event": "frame", "index": self.count, "number": frame.number, "fps": fps, "stage": stage,
                     "style": state.number, "lag": lag, "seconds": now - t0, "at": now - self.started})
        return key, stage, now

    def run(self, first, learner, states: list, shown: dict, learning_fps: float, max_frames: int | None) -> bool:
        """Show the camera's newest frames, from ``first``, in the style ``shown["style"]`` (keys 1-9 switch it)
        until the camera ends or ``max_frames`` were shown (False), or the user quits (True)."""
        from .display import QUIT

        frame = first
        while frame is not None and (max_frames is None or self.count < max_frames):
            if learner.error is not None:
                raise learner.error
            key, stage, now = self.show(frame, states[shown["style"]])
            if key in QUIT or self.screen.closed:
                return True
            if ord("1") <= key <= ord("9") and key - ord("1") < len(states) and key - ord("1") != shown["style"]:
                shown["style"] = key - ord("1")
                self.painter.reset()
                self.report({"event": "style", "style": shown["style"] + 1, "name": states[shown["style"]].name})
            if stage == LEARNING:  # fewer frames while the network trains, which then has the CPU sooner
                time.sleep(max(0.0, now + 1.0 / learning_fps - time.perf_counter()))
            frame = self.camera.newest(frame.number, timeout=None)
        return False


def run_live(camera, styles: list[tuple[str, np.ndarray]], config, context, screen, *,
             settings: LiveSettings | None = None, cache=None, keep: float | None = None,
             max_frames: int | None = None, record: Path | None = None, scale: int = 1,
             report: Callable[[dict], None] = lambda event: None,
             on_frame: Callable[[object, np.ndarray, str], None] | None = None) -> LiveRun:
    """Show ``camera`` (a started :class:`~.capture.LatestFrame`) stylized by ``styles`` ((name, RGB) pairs;
    keys 1-9 switch) on ``screen`` (:class:`~.display.Window` or :class:`~.display.Offscreen`) until q/Esc,
    the window is closed, the camera ends or ``max_frames`` were shown. At a natural end (not a quit) the
    shown style's network is learnt to the end and cached first. ``keep``: the live filter's (default
    :data:`.filter.KEEP`; 0: none). ``on_frame(frame, shown RGB, stage)`` sees every shown frame (benchmarks)."""
    from ..context import FrameControls
    from .cache import NetworkCache
    from .painter import Painter
    from .record import Recorder
    from .stages import Learner

    started = time.perf_counter()
    first = camera.newest(0, timeout=FIRST_FRAME_SECONDS)
    if first is None:
        camera.stop()
        raise UserError("the camera gave no picture")
    settings = settings or live_settings(config, first.image.shape[:2])
    cache = cache if cache is not None else NetworkCache()
    states = [StyleState(i + 1, name, image, cache_key(image, config, settings)) for i, (name, image) in enumerate(styles)]
    key_config = keyframe_config(config, settings)
    shown = {"style": 0}

    def paint(frame: np.ndarray, style: np.ndarray) -> np.ndarray:
        return context.stylize_frame(frame, [(style, 1.0)], key_config, None, FrameControls()).image

    def newest():
        frame = camera.newest(0, timeout=0.5)
        return (frame.number, frame.image) if frame is not None else None

    learner = Learner(states, settings, paint, newest, lambda: shown["style"], cache, context.emit,
                      first=(first.number, first.image)).start()
    painter, recorder = Painter(settings, keep), Recorder(record) if record is not None else None
    loop, quit_ = _Screen(camera, screen, painter, recorder, report, on_frame, started, len(states), scale), False
    try:
        quit_ = loop.run(first, learner, states, shown, settings.learning_fps, max_frames)
        if not quit_ and learner.busy:  # the camera ended: the network in hand is finished for the cache
            report({"event": "finishing", "style": shown["style"] + 1})
            learner.stop(finish=True)
        if learner.error is not None:
            raise learner.error
    finally:
        learner.stop(timeout=10)
        camera.stop()
        screen.close()
        recorded = recorder.close() if recorder is not None else None
    return LiveRun(frames=loop.count, seconds=time.perf_counter() - started, first_shown=loop.first_shown, lags=loop.lags,
                   styles=[{"name": s.name, "stage": s.stage, "trainings": s.trainings} for s in states],
                   recorded=recorded, quit=quit_)
