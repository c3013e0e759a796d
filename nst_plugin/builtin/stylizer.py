"""The built-in frame engine: one backbone forward pass per evaluation feeds every loss term; loss and
gradient come from one compiled function of the active Keras backend (:mod:`nst_plugin.gradients`); a
registered optimizer moves the pixels.

Imported only when a frame is stylized (it imports Keras on the selected backend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
import time
import warnings

import numpy as np

from ..config import StyleConfig
from ..errors import NstError
from ..events import FrameProgress
from ..gradients import input_gradient, to_tensors
from ..images import combine_luminance, load_image, luminance_rgb, resize, to_uint8
from ..losses import FrameInputs, LossSettings
from ..optim import NonFiniteLoss, Problem
from ..result import FrameResult
from .pyramid import Pyramid

_BACKBONES: dict[tuple, object] = {}


def get_backbone(registry, config: StyleConfig):
    """Build a backbone once per (name, weights, pooling) in this process: loading weights costs seconds."""
    key = (config.backbone, config.weights, config.pooling)
    if key not in _BACKBONES:
        entry = registry.get("backbones", config.backbone)
        _BACKBONES[key] = entry.factory(weights=config.weights, pooling=config.pooling)
    return _BACKBONES[key]


def _blend_weights(config: StyleConfig, n: int) -> list[float]:
    weights = list(config.style_blend) if config.style_blend else [1.0] * n
    total = sum(weights)
    return [w / total for w in weights]


class Stylizer:
    """Everything that stays the same from frame to frame: backbone, loss terms, style targets, compiled step."""

    def __init__(self, config: StyleConfig, styles, registry):
        self.config = config
        self.registry = registry
        self.backbone = get_backbone(registry, config)
        self.weights = config.active_losses()
        self.terms = {}
        for name, weight in self.weights.items():
            entry = registry.get("losses", name)
            settings = LossSettings(name=name, weight=weight, config=config, backbone_layers=tuple(self.backbone.layers),
                                    options=entry.option_values(config))
            self.terms[name] = entry.factory(settings)
        needed = {layer for term in self.terms.values() for layer in term.layers}
        self.layers = tuple(layer for layer in self.backbone.layers if layer in needed)
        self.extract = self.backbone.extractor(self.layers) if self.layers else (lambda images: {})
        self.styles_source = styles  # the list this stylizer was built for (the engine's cache checks it)
        self.styles = [(np.asarray(image), w) for (image, _), w in zip(styles, _blend_weights(config, len(styles)))]
        self._styles_ready = False
        self._step = self._compile()

    # -- set-up ---------------------------------------------------------------------------------------

    def _compile(self):
        terms, extract = self.terms, self.extract

        def objective(x, inputs):  # the weights are inputs too: an animated weight does not recompile
            features = extract(x)
            parts = {name: term.loss(x, features, inputs["targets"][name]) for name, term in terms.items()}
            return sum(inputs["weights"][name] * parts[name] for name in terms), parts

        return input_gradient(objective, self.backbone.variables)

    def reweight(self, config: StyleConfig) -> bool:
        """Take ``config``'s loss weights (an animated strength or weight, frame by frame) without building
        or compiling anything again, when nothing else differs and the same terms are active. False: build a
        new stylizer for ``config``."""
        keep = ("strength", "loss_weights")
        weights = config.active_losses()
        if config.fingerprint(leave_out=keep) != self.config.fingerprint(leave_out=keep) or set(weights) != set(self.weights):
            return False
        self.config, self.weights = config, weights
        return True

    def features(self, image: np.ndarray) -> dict:
        try:
            return self.extract(np.asarray(image, np.float32)[None])
        except Exception as exc:  # a plugin's backbone: name it
            from ..failures import attribute_backbone_failure

            attribute_backbone_failure(exc, self)
            raise

    def _prepare_styles(self, content: np.ndarray) -> None:
        """Style features once per run: resized to ``size * style_scale``; luminance-only with preserve_color."""
        side = max(16, round((self.config.size or max(content.shape[:2])) * self.config.style_scale))  # 0: the source's
        prepared = []
        for image, weight in self.styles:
            h, w = image.shape[:2]
            scale = side / max(h, w)
            style = resize(image, max(16, round(h * scale)), max(16, round(w * scale))).astype(np.float32)
            if self.config.preserve_color:
                style = luminance_rgb(style, like=content)
            prepared.append((self.features(style), weight))
        for term in self.terms.values():
            term.prepare_styles(prepared)
        self._styles_ready = True

    def _initial_image(self, content: np.ndarray, controls) -> np.ndarray:
        init = controls.init
        if init is not None:
            return resize(np.asarray(init, np.float32), *content.shape[:2]).astype(np.float32)
        if self.config.init == "content":
            return content.copy()
        if self.config.init == "noise":
            rng = np.random.default_rng(self.config.seed)
            return rng.uniform(0, 255, content.shape).astype(np.float32)
        image = resize(load_image(self.config.init, "--init image"), *content.shape[:2]).astype(np.float32)
        return luminance_rgb(image) if self.config.preserve_color else image

    # -- one frame ------------------------------------------------------------------------------------

    def run(self, content_rgb: np.ndarray, context) -> FrameResult:
        """One frame, steered by ``context.controls``; a cold frame goes coarse-to-fine when the config says so."""
        started = time.perf_counter()
        if self.config.seed is not None:
            import keras

            keras.utils.set_random_seed(self.config.seed)
        controls = context.controls
        if self.config.coarse_to_fine and controls.init is None and controls.working_shape is None:
            return self._coarse_to_fine(content_rgb, context, started)
        return self._optimise(content_rgb, context, controls, started)

    def _coarse_to_fine(self, content_rgb: np.ndarray, context, started: float) -> FrameResult:
        """A cold frame after Gatys et al. 2017: optimised at ``coarse_to_fine`` x the size, then at full size
        from that result enlarged with the content's detail band (:class:`~.pyramid.Pyramid`), which the
        full-size pass would otherwise have to rebuild; both passes stop on iterations or on the tolerance
        over ``tolerance_window``."""
        config, controls = self.config, context.controls
        pyramid = Pyramid.scaled(config.working_shape(*content_rgb.shape[:2]), config.coarse_to_fine)
        coarse = self.run(content_rgb, context.for_frame(context.frame_index,
                                                         replace(controls, working_shape=pyramid.coarse)))
        if coarse.stats["status"] != "ok":  # the loss turned NaN: stop there, keep the best image so far
            stats = dict(coarse.stats, size=list(pyramid.full), seconds=time.perf_counter() - started, init="coarse")
            return FrameResult(image=pyramid.upsample(coarse.image), stats=stats)
        start = pyramid.enlarge(coarse.image, resize(content_rgb, *pyramid.full))
        controls = replace(controls, init=luminance_rgb(start) if config.preserve_color else start,
                           tolerance_window=controls.tolerance_window or config.tolerance_window)
        return self._optimise(content_rgb, context, controls, started, coarse=coarse)

    def _optimise(self, content_rgb: np.ndarray, context, controls, started: float, coarse=None) -> FrameResult:
        """One pass at the working size (``controls.working_shape`` or the config's); ``coarse``: the coarse
        pass's result this one starts from."""
        config = self.config
        height, width = controls.working_shape or config.working_shape(*content_rgb.shape[:2])
        content_colour = resize(content_rgb, height, width).astype(np.float32)
        content = luminance_rgb(content_colour) if config.preserve_color else content_colour
        if not self._styles_ready:
            self._prepare_styles(content)
        frame = FrameInputs(content=content, content_features=self.features(content), controls=controls)
        targets = {name: to_tensors(term.frame_targets(frame)) for name, term in self.terms.items()}
        one = _Pass(self, context, _Stops.of(config, controls), targets, to_tensors(dict(self.weights)))
        optimizer = self.registry.get("optimizers", config.optimizer).factory(config)
        x, status, message = one.minimize(self._initial_image(content, controls), optimizer)
        result = one.best_x if one.best_x is not None else x
        if config.preserve_color:
            result = combine_luminance(result, content_colour)
        init = "coarse" if coarse is not None else ("given" if controls.init is not None else config.init)
        stats = self._stats(one, status, message, started, init, [height, width])
        if coarse is not None:
            stats["coarse"] = {k: coarse.stats[k] for k in ("size", "evaluations", "iterations", "seconds", "loss")}
        return FrameResult(image=to_uint8(result), stats=stats)

    def _stats(self, one: _Pass, status: str, message: str, started: float, init: str, size: list) -> dict:
        info = self.backbone.weights
        return {
            "loss": one.best_loss,
            "losses": one.best_parts,
            "weights": dict(self.weights),
            "evaluations": one.evaluations,
            "iterations": one.iterations,
            "seconds": time.perf_counter() - started,
            "status": status,
            "message": message,
            "init": init,
            "stopped": one.stop or ("nan" if status == "nan" else "budget"),
            "size": size,
            "backbone": self.backbone.name,
            "backbone_weights": {"source": info.source, "path": info.path, "fallback": info.fallback, "note": info.note},
            "history": one.history,
        }


@dataclass(frozen=True)
class _Stops:
    """When one pass stops: the optimizer's budget, the tolerance, and the frame's targets."""

    iterations: int  # per round
    rounds: int
    max_evaluations: int | None
    tolerance: float
    window: int  # the tolerance compares the loss with the one this many iterations back
    budget: int  # what the progress counts to: iterations, or evaluations with max_evaluations
    target: float | None  # the weighted objective, without the terms in ``excluded``, to stop at
    excluded: tuple
    term_targets: dict  # {term: its weighted loss to stop at}

    @classmethod
    def of(cls, config: StyleConfig, controls) -> _Stops:
        # a sequence engine may cap a warm-started frame, and stop it once its objective (without the
        # terms in target_excludes) is down to target_objective
        iterations = int(controls.max_iterations or config.iterations)
        rounds = int(controls.rounds or config.rounds)
        # a cold frame uses config.tolerance_window (L-BFGS's first steps are short, a one-iteration change
        # stops it too early); a frame started from a given image (a warm video frame) keeps the
        # one-iteration rule unless its controls say otherwise
        window = controls.tolerance_window or (config.tolerance_window if controls.init is None else 1)
        return cls(iterations=iterations, rounds=rounds, max_evaluations=config.max_evaluations,
                   tolerance=config.tolerance if controls.tolerance is None else controls.tolerance, window=window,
                   budget=rounds * (config.max_evaluations or iterations), target=controls.target_objective,
                   excluded=tuple(controls.target_excludes), term_targets=dict(controls.target_terms))

    @property
    def targeted(self) -> bool:
        return self.target is not None or bool(self.term_targets)

    def met(self, weighted: dict) -> bool:
        """``weighted`` ({term: weighted loss}) reaches the objective target and every term's target."""
        if self.target is not None and sum(v for k, v in weighted.items() if k not in self.excluded) > self.target:
            return False
        return all(weighted.get(name, 0.0) <= value for name, value in self.term_targets.items())

    def converged(self, losses: list) -> bool:
        """The latest loss changed by less than the tolerance (relative) over the window."""
        if not self.tolerance or len(losses) <= self.window:
            return False
        previous, loss = losses[-1 - self.window], losses[-1]
        return abs(previous - loss) / max(abs(loss), 1e-12) < self.tolerance


@dataclass(eq=False)
class _Pass:
    """One optimisation of a frame at one size: the objective the optimizer calls, what it has seen (the
    best image, the history) and why it stopped."""

    stylizer: Stylizer
    context: object
    stops: _Stops
    targets: dict  # {term: its frame targets as tensors}
    weights: dict  # {term: its weight as a tensor}
    best_loss: float = math.inf
    best_x: np.ndarray | None = None
    best_parts: dict | None = None  # {term: unweighted loss} of the best image
    evaluations: int = 0
    iterations: int = 0
    stop: str | None = None  # "target" or "converged": stopped before the budget
    history: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    start: tuple | None = None  # (x, total, grad) of the start, evaluated for the targets: the first call reuses it

    def minimize(self, x: np.ndarray, optimizer) -> tuple[np.ndarray, str, str]:
        """``(the optimizer's last image, status, message)``: status "nan" when the loss turned NaN after a
        finite one (the best image is kept)."""
        stops = self.stops
        try:
            if stops.targeted:
                total, grad = self.value_and_grad(x)  # a start that already meets the targets costs nothing more
                self.start = (x.copy(), total, grad)
                if self.targets_met():
                    self.stop = "target"
            for _ in range(0 if self.stop else stops.rounds):
                x = optimizer.minimize(Problem(x0=x, value_and_grad=self.value_and_grad, max_iterations=stops.iterations,
                                               max_evaluations=stops.max_evaluations), self.on_iteration)
                if self.stop:
                    break
        except NonFiniteLoss as exc:
            if self.best_x is None:
                raise NstError(f"{exc}: no finite result to keep; lower the weights or the learning rate") from None
            message = f"{exc}; stopped and kept the best image so far (loss {self.best_loss:.4g})"
            warnings.warn(message, RuntimeWarning, stacklevel=4)  # at Stylizer.run's caller
            return x, "nan", message
        return x, "ok", ""

    def value_and_grad(self, x: np.ndarray):
        if self.start is not None and np.array_equal(x, self.start[0]):
            _, total, grad = self.start
            self.start = None
            return total, grad
        image = np.asarray(x, np.float32)[None]
        try:
            total, parts, grad = self.stylizer._step(image, {"targets": self.targets, "weights": self.weights})
        except Exception as exc:  # a plugin's loss or backbone failing in the compiled step: name it
            from ..failures import attribute_step_failure

            attribute_step_failure(exc, self.stylizer, image, self.targets)
            raise
        grad = grad[0]
        self.evaluations += 1
        if not math.isfinite(total) or not np.isfinite(grad).all():
            raise NonFiniteLoss(f"the loss turned {total} at evaluation {self.evaluations}")
        if total < self.best_loss:
            self.best_loss, self.best_x, self.best_parts = total, x.copy(), dict(parts)
        return total, grad

    def on_iteration(self, iteration: int, loss: float) -> bool:
        """The optimizer's callback: record the iteration, report progress; True: stop."""
        self.iterations += 1
        self.history.append({"iteration": self.iterations, "evaluations": self.evaluations, "loss": loss,
                             "losses": self.weighted()})
        stops = self.stops
        done = self.evaluations if stops.max_evaluations else self.iterations
        self.context.emit(FrameProgress(index=self.context.frame_index, step=min(done, stops.budget),
                                        total=stops.budget, loss=loss))
        self.losses.append(loss)
        if self.targets_met():
            self.stop = "target"
            return True
        if stops.converged(self.losses):
            self.stop = "converged"
            return True
        return False

    def weighted(self) -> dict:
        """{term: weighted loss} of the best image so far."""
        return {k: self.stylizer.weights[k] * v for k, v in (self.best_parts or {}).items()}

    def targets_met(self) -> bool:
        return self.stops.targeted and self.best_parts is not None and self.stops.met(self.weighted())
