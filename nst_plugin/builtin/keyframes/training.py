"""Training the keyframe network on random patches of (content, stylized keyframe) pairs, after Texler et
al. 2020: an L1 term on the pixels plus a perceptual term on shallow VGG features of the run's backbone, Adam,
stopped when a fixed set of held patches stops improving (a measured plateau), or at a step or time cap.

The network is plain Keras and trains with Keras' own training step (``compile`` + ``train_on_batch``), so
it trains on any Keras 3 backend.

Design, measurements and history: docs/design/keyframes.md#training
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .network import to_unit


@dataclass(frozen=True)
class TrainingSettings:
    """``patch``: side of a training patch in pixels (a multiple of 4); ``batch``: patches per step;
    ``check_every``: steps between two measurements of the held patches; training stops when ``patience``
    measurements in a row improved the best held loss by less than ``plateau`` (relative), or at
    ``max_steps`` / ``max_seconds``. ``perceptual_weight``: weight of the VGG feature term against the L1
    term (in [-1, 1] pixel units)."""

    patch: int = 48
    batch: int = 16
    learning_rate: float = 4e-4
    max_steps: int = 2000
    max_seconds: float | None = None
    check_every: int = 50
    plateau: float = 0.01
    patience: int = 3
    perceptual_weight: float = 0.5
    perceptual_layers: tuple[str, ...] = ("block1_conv2", "block2_conv2")
    held_patches: int = 64
    noise: float = 0.0  # std of Gaussian noise added to the training inputs (0..255 units): robustness to grain
    seed: int = 0


@dataclass
class TrainingReport:
    steps: int = 0
    seconds: float = 0.0
    loss: float = math.inf  # the held patches' loss at the last measurement
    stopped: str = ""  # "plateau" | "steps" | "seconds"
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, held loss)


class PatchSampler:
    """Random aligned patches of a list of (content, target) pairs, 0..255 of the same size: the content's RGB
    (and its guide channels), the target's RGB."""

    def __init__(self, pairs, patch: int, seed: int):
        self.pairs = [(to_unit(c), to_unit(t)) for c, t in pairs]
        for content, target in self.pairs:
            if content.shape[:2] != target.shape[:2]:
                raise ValueError(f"a training pair has a content of {content.shape} and a target of {target.shape}")
        smallest = min(min(c.shape[:2]) for c, _ in self.pairs)
        self.patch = max(8, min(patch, smallest) // 4 * 4)
        self.rng = np.random.default_rng(seed)
        areas = np.array([c.shape[0] * c.shape[1] for c, _ in self.pairs], np.float64)
        self.p = areas / areas.sum()

    def sample(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        size = self.patch
        channels = self.pairs[0][0].shape[-1]
        xs, ys = np.empty((n, size, size, channels), np.float32), np.empty((n, size, size, 3), np.float32)
        for i, k in enumerate(self.rng.choice(len(self.pairs), size=n, p=self.p)):
            content, target = self.pairs[k]
            y = self.rng.integers(0, content.shape[0] - size + 1)
            x = self.rng.integers(0, content.shape[1] - size + 1)
            xs[i], ys[i] = content[y:y + size, x:x + size], target[y:y + size, x:x + size]
        return xs, ys


def train(model, pairs, settings: TrainingSettings = TrainingSettings(), features: Callable | None = None,
          on_check: Callable[[int, float], None] | None = None) -> TrainingReport:
    """Train ``model`` (see ``network.build_network``) in place on ``pairs`` of (content, stylized) RGB 0..255.

    ``features``: ``f(images 0..255) -> {layer: activation}`` (a backbone extractor for
    ``settings.perceptual_layers``), or None for the L1 term alone. ``on_check(step, held_loss)`` is called
    at every measurement (progress events).
    """
    report = TrainingReport(stopped="steps")
    for report in training_steps(model, pairs, settings, features, on_check):
        pass
    return report


def training_steps(model, pairs, settings: TrainingSettings = TrainingSettings(), features: Callable | None = None,
                   on_check: Callable[[int, float], None] | None = None) -> Iterator[TrainingReport]:
    """:func:`train` one step at a time: yields the report after every step (``stopped`` set on the last), so
    a caller can interleave other work between steps (the live mode shows frames) or stop early."""
    import keras
    from keras import ops

    started = time.perf_counter()
    sampler = PatchSampler(pairs, settings.patch, settings.seed)
    held_x, held_y = PatchSampler(pairs, settings.patch, settings.seed + 1).sample(settings.held_patches)
    weight = float(settings.perceptual_weight) if features is not None else 0.0

    def loss_of(y, prediction):
        loss = ops.mean(ops.abs(prediction - y))
        if weight:
            got = features((prediction + 1.0) * 127.5)
            want = features((y + 1.0) * 127.5)
            for layer in settings.perceptual_layers:
                scale = ops.mean(ops.abs(want[layer])) + 1e-6
                loss = loss + weight / len(settings.perceptual_layers) * ops.mean(ops.abs(got[layer] - want[layer])) / scale
        return loss

    # Keras' own training step on every backend; on TensorFlow without XLA (as fast here, compiles at once)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate), loss=loss_of,
                  jit_compile=False if keras.backend.backend() == "tensorflow" else "auto")

    def held_loss() -> float:
        value = model.test_on_batch(held_x, held_y)
        return float(value[0] if isinstance(value, (list, tuple)) else value)

    report = TrainingReport()
    best, stale = math.inf, 0
    rng = np.random.default_rng(settings.seed + 2)
    for n in range(1, settings.max_steps + 1):
        x, y = sampler.sample(settings.batch)
        if settings.noise:
            x = x + rng.normal(0.0, settings.noise / 127.5, x.shape).astype(np.float32)
        model.train_on_batch(x, y)
        report.steps = n
        over_time = settings.max_seconds is not None and time.perf_counter() - started >= settings.max_seconds
        if n % settings.check_every == 0 or n == settings.max_steps or over_time:
            loss = held_loss()
            report.loss = loss
            report.history.append((n, loss))
            if on_check is not None:
                on_check(n, loss)
            if loss < best * (1.0 - settings.plateau):
                best, stale = loss, 0
            else:
                best, stale = min(best, loss), stale + 1
            if stale >= settings.patience:
                report.stopped = "plateau"
        if over_time and not report.stopped:
            report.stopped = "seconds"
        if n == settings.max_steps and not report.stopped:
            report.stopped = "steps"
        report.seconds = time.perf_counter() - started
        yield report
        if report.stopped:
            return
