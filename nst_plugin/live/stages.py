"""What a style shows while it learns, and the background thread that teaches it.

A style goes through three stages, and the overlay names the one showing:

* ``palette``: from the first frame, the camera in the style's colours (Reinhard et al. 2001: the mean and
  spread of each Lab channel moved to the style's); OpenCV only, so it shows while TensorFlow still loads.
* ``learning``: a keyframe (the newest camera frame, stylized by the frame engine at the keyframe size) is
  learnt by the keyframe engine's small network (:mod:`..builtin.keyframes.network`), trained on a
  background thread one step at a time (:func:`~..builtin.keyframes.training.training_steps`); its weights
  are handed to the display every few steps, so the network is shown while it still trains.
* ``live``: the trained network, kept in the cache (:mod:`.cache`); a later run with the same style and
  settings starts here.

One :class:`Learner` thread teaches the styles one after another, the shown one first; while the shown
style is live it leaves part of the CPU to the frames (``background_share``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..events import Keyframe, Training
from ..images import resize

PALETTE, LEARNING, LIVE = "palette", "learning", "live"


@dataclass(frozen=True)
class LiveSettings:
    """``out_shape``: the shown frames' (height, width); ``net_shape``: the network's (its frames are enlarged
    to ``out_shape`` with the camera's own fine detail); ``key_shape``: the keyframe's (the frame engine's
    work; enlarged to ``net_shape`` the same way for the network to learn); ``training``: a
    :class:`~..builtin.keyframes.training.TrainingSettings`; ``publish_every``: training steps between two
    weight hand-overs to the display (from ``first_shown`` on); ``learn_share``: the share of its time the
    learner trains while its style is the one shown (the rest it sleeps, for the frames);
    ``background_share``: the same while another, live style is shown."""

    out_shape: tuple[int, int]
    net_shape: tuple[int, int]
    key_shape: tuple[int, int]
    training: object
    seed: int = 0
    strokes: float = 0.0  # the blur, in network pixels, that separates the keyframe's strokes (0: not carried)
    learning_fps: float = 8.0  # frames shown per second at most while the shown style learns (the rest: training)
    first_shown: int = 20
    publish_every: int = 10
    learn_share: float = 1.0
    background_share: float = 0.5


def palette_of(style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The style's Lab mean and standard deviation per channel (float32, OpenCV's 8-bit Lab scale)."""
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(style, np.uint8), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    return lab.mean(axis=0), lab.std(axis=0) + 1.0


def palette(frame: np.ndarray, stats: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``frame`` (RGB uint8) in the style's colours: each Lab channel's mean and spread moved to ``stats``'."""
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(frame, np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    mean, std = lab.reshape(-1, 3).mean(axis=0), lab.reshape(-1, 3).std(axis=0) + 1.0
    lab = (lab - mean) * (stats[1] / std) + stats[0]
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


@dataclass(eq=False)
class StyleState:
    """One style as both threads see it. The learner publishes weights (:meth:`publish`); the display thread
    runs its own copy of the network (:meth:`stylize`), so the two never share a model."""

    number: int  # 1-based: the key that shows it
    name: str
    image: np.ndarray
    key: str  # the network's cache key
    stage: str = PALETTE
    step: int = 0  # training steps so far (the overlay's progress)
    total: int = 0
    trainings: int = 0  # networks trained for this style in this process (a cached one: 0)
    keyframe: tuple | None = None  # (source frame, stylized picture) at the network's size: the strokes' origin
    colours: tuple = field(default=None)
    _weights: list | None = None
    _version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _model: object = None
    _loaded: int = 0

    def __post_init__(self):
        self.colours = palette_of(self.image)

    def publish(self, weights: list, stage: str, step: int = 0) -> None:
        with self._lock:
            self._weights, self._version = weights, self._version + 1
            self.stage, self.step = stage, step

    def network_ready(self) -> bool:
        return self._weights is not None

    def stylize(self, frame: np.ndarray, shape) -> np.ndarray:
        """The network's picture (float RGB 0..255) of ``frame`` (RGB at the network's size), with the
        newest published weights; ``shape``: the :class:`~..builtin.keyframes.network.NetworkShape`."""
        from ..builtin.keyframes.network import build_network, stylize_image

        with self._lock:
            weights, version = self._weights, self._version
        if self._model is None:
            self._model = build_network(shape)
        if version != self._loaded:
            self._model.set_weights(weights)
            self._loaded = version
        return np.clip(stylize_image(self._model, frame, shape=shape), 0, 255)


class Learner:
    """Teaches ``states`` their networks on a background thread, one style at a time: a cached network is
    loaded; otherwise ``paint(frame, style)`` makes the keyframe of the newest camera frame
    (``newest() -> RGB or None``) and the network learns it. ``shown() -> index`` names the style on screen,
    which is learnt first, from ``first`` (the camera's first frame) if given. ``emit`` receives :class:`~..events.Keyframe` and :class:`~..events.Training`
    events (``shot``: the style's index)."""

    def __init__(self, states: list[StyleState], settings: LiveSettings, paint: Callable, newest: Callable,
                 shown: Callable[[], int], cache, emit: Callable = lambda event: None, first=None):
        self.states, self.settings, self.paint, self.newest, self.shown = states, settings, paint, newest, shown
        self.first = first  # (number, RGB): the first style's keyframe, the camera's first frame
        self.cache, self.emit = cache, emit
        self.error: BaseException | None = None
        self.finish = threading.Event()  # learn the style in hand to the end, then stop (the source ended)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nst-live-learner", daemon=True)

    def start(self) -> "Learner":
        self._thread.start()
        return self

    def stop(self, finish: bool = False, timeout: float | None = None) -> None:
        """Stop at the next training step; ``finish``: after the style being learnt is done (and cached)."""
        (self.finish if finish else self._stop).set()
        self._thread.join(timeout)

    @property
    def busy(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            from ..backends import import_keras

            import_keras()
            if self._stop.is_set():
                return
            for state in self.states:  # cached networks first: each one is live at once
                self._load(state)
            while not self._stop.is_set():
                todo = [s for s in self.states if not s.network_ready()]
                shown = self.states[self.shown()]
                if not todo or (self.finish.is_set() and shown not in todo):
                    return
                self._learn(shown if shown in todo else todo[0])
                if self.finish.is_set() and shown.network_ready():
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the display thread, which reports it
            self.error = exc

    def _load(self, state: StyleState) -> None:
        from ..builtin.keyframes.network import NetworkShape, build_network

        path = self.cache.find(state.key) if self.cache is not None else None
        if path is None:
            return
        model = build_network(NetworkShape())
        model.load_weights(str(path))
        state.keyframe = self.cache.find_keyframe(state.key)
        state.publish(model.get_weights(), LIVE)
        self.emit(Training(shot=state.number - 1, step=0, total=0, loss=None, seconds=0.0, stopped="resumed"))

    def _learn(self, state: StyleState) -> None:
        from ..builtin.keyframes.engine import enlarge
        from ..builtin.keyframes.network import NetworkShape, build_network
        from ..builtin.keyframes.training import training_steps

        frame, self.first = self.first, None
        while frame is None and not self._stop.is_set():
            frame = self.newest()
        if frame is None:
            return
        number, image = frame
        t0 = time.perf_counter()
        keyframe = self.paint(resize(image, *self.settings.key_shape), state.image)
        self.emit(Keyframe(index=number, shot=state.number - 1, seconds=round(time.perf_counter() - t0, 3), done=1, total=1))
        settings = self.settings
        model = build_network(NetworkShape(), seed=settings.seed)
        content = resize(image, *settings.net_shape)
        state.keyframe = (content, enlarge(keyframe, content))
        pairs = [state.keyframe]
        state.trainings += 1
        state.total = settings.training.max_steps
        t0 = time.perf_counter()

        def on_check(step, loss):
            self.emit(Training(shot=state.number - 1, step=step, total=settings.training.max_steps, loss=round(loss, 5),
                               seconds=round(time.perf_counter() - t0, 2)))

        report, resumed = None, time.perf_counter()
        for report in training_steps(model, pairs, settings.training, None, on_check):
            step_seconds = time.perf_counter() - resumed  # this step's own time, without the sleeps
            if self._stop.is_set():
                return
            n = report.steps
            if not report.stopped and n >= settings.first_shown and (n - settings.first_shown) % settings.publish_every == 0:
                state.publish(model.get_weights(), LEARNING, n)
            else:
                state.step = n
            share = settings.learn_share if self.states[self.shown()] is state else settings.background_share
            if share < 1.0:  # leave the rest of the time to the frames on screen
                self._stop.wait(step_seconds * (1.0 - share) / max(share, 0.05))
            resumed = time.perf_counter()
        if self.cache is not None:
            self.cache.put_keyframe(state.key, *state.keyframe)
            self.cache.put(state.key, lambda path: model.save_weights(str(path)))
        state.publish(model.get_weights(), LIVE, report.steps)
        self.emit(Training(shot=state.number - 1, step=report.steps, total=settings.training.max_steps,
                           loss=round(report.loss, 5), seconds=round(report.seconds, 2), stopped=report.stopped))
