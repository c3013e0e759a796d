"""The built-in frame engine: one backbone forward pass per evaluation feeds every loss term; loss and
gradient come from one compiled function of the active Keras backend (:mod:`nst_plugin.gradients`); a
registered optimizer moves the pixels.

Imported only when a frame is stylized (it imports Keras on the selected backend).
"""

from __future__ import annotations

import math
from dataclasses import replace
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
        config = self.config
        started = time.perf_counter()
        if config.seed is not None:
            import keras

            keras.utils.set_random_seed(config.seed)
        controls = context.controls
        coarse = None
        if config.coarse_to_fine and controls.init is None and controls.working_shape is None:
            # a cold frame, coarse-to-fine (Gatys et al. 2017): optimise at coarse_to_fine x the size, then
            # finish at full size from the upsampled result, both stopped by iterations / tolerance over
            # tolerance_window
            height, width = config.working_shape(*content_rgb.shape[:2])
            small = (max(16, round(height * config.coarse_to_fine)), max(16, round(width * config.coarse_to_fine)))
            coarse = self.run(content_rgb, context.for_frame(context.frame_index, replace(controls, working_shape=small)))
            if coarse.stats["status"] != "ok":  # the loss turned NaN: stop there, keep the best image so far
                stats = dict(coarse.stats, size=[height, width], seconds=time.perf_counter() - started, init="coarse")
                return FrameResult(image=resize(coarse.image, height, width), stats=stats)
            # the upsampled coarse result has lost the content's fine detail (edges, small figures) that the
            # full-size pass would have to rebuild: add the content's high-frequency band back (a Laplacian
            # pyramid level: content minus content down- and upsampled)
            full = resize(content_rgb, height, width).astype(np.float32)
            detail = full - resize(resize(full, *small), height, width)
            start = np.clip(resize(coarse.image, height, width).astype(np.float32) + detail, 0, 255)
            controls = replace(controls, init=luminance_rgb(start) if config.preserve_color else start,
                               tolerance_window=controls.tolerance_window or config.tolerance_window)
        height, width = controls.working_shape or config.working_shape(*content_rgb.shape[:2])
        content_colour = resize(content_rgb, height, width).astype(np.float32)
        content = luminance_rgb(content_colour) if config.preserve_color else content_colour
        if not self._styles_ready:
            self._prepare_styles(content)
        frame = FrameInputs(content=content, content_features=self.features(content), controls=controls)
        targets = {name: to_tensors(term.frame_targets(frame)) for name, term in self.terms.items()}
        weights = to_tensors(dict(self.weights))

        best = {"loss": math.inf, "x": None, "parts": None}
        history: list[dict] = []
        counters = {"evaluations": 0, "iterations": 0, "stop": None}
        losses_seen: list[float] = []
        # a sequence engine may cap a warm-started frame, and stop it once its objective (without the
        # terms in target_excludes) is down to target_objective
        iterations = int(controls.max_iterations or config.iterations)
        tolerance = config.tolerance if controls.tolerance is None else controls.tolerance
        rounds = int(controls.rounds or config.rounds)
        # the tolerance compares the loss with the one ``window`` iterations back: a cold frame uses
        # config.tolerance_window (L-BFGS's first steps are short, a one-iteration change stops it too early);
        # a frame started from a given image (a warm video frame) keeps the one-iteration rule unless its
        # controls say otherwise
        window = controls.tolerance_window or (config.tolerance_window if controls.init is None else 1)
        target = controls.target_objective
        excluded = tuple(controls.target_excludes)
        term_targets = dict(controls.target_terms)
        budget = rounds * (config.max_evaluations or iterations)

        def targets_met() -> bool:
            """The frame's targets (objective without the excluded terms, and each named term) are reached."""
            if (target is None and not term_targets) or best["parts"] is None:
                return False
            weighted = {k: self.weights[k] * v for k, v in best["parts"].items()}
            if target is not None and sum(v for k, v in weighted.items() if k not in excluded) > target:
                return False
            return all(weighted.get(name, 0.0) <= value for name, value in term_targets.items())

        start = {}  # the start's evaluation when the targets were checked first: the optimizer's first call reuses it

        def value_and_grad(x: np.ndarray):
            if start and np.array_equal(x, start["x"]):
                cached = (start["total"], start["grad"])
                start.clear()
                return cached
            image = np.asarray(x, np.float32)[None]
            try:
                total, parts, grad = self._step(image, {"targets": targets, "weights": weights})
            except Exception as exc:  # a plugin's loss or backbone failing in the compiled step: name it
                from ..failures import attribute_step_failure

                attribute_step_failure(exc, self, image, targets)
                raise
            grad = grad[0]
            counters["evaluations"] += 1
            if not math.isfinite(total) or not np.isfinite(grad).all():
                raise NonFiniteLoss(f"the loss turned {total} at evaluation {counters['evaluations']}")
            if total < best["loss"]:
                best.update(loss=total, x=x.copy(), parts=dict(parts))
            return total, grad

        def callback(iteration: int, loss: float) -> bool:
            counters["iterations"] += 1
            history.append({"iteration": counters["iterations"], "evaluations": counters["evaluations"],
                            "loss": loss,
                            "losses": {k: self.weights[k] * v for k, v in (best["parts"] or {}).items()}})
            done = counters["evaluations"] if config.max_evaluations else counters["iterations"]
            context.emit(FrameProgress(index=context.frame_index, step=min(done, budget), total=budget, loss=loss))
            losses_seen.append(loss)
            previous = losses_seen[-1 - window] if len(losses_seen) > window else None
            if targets_met():
                counters["stop"] = "target"
                return True
            if tolerance and previous is not None:
                change = abs(previous - loss) / max(abs(loss), 1e-12)
                if change < tolerance:
                    counters["stop"] = "converged"
                    return True
            return False

        optimizer = self.registry.get("optimizers", config.optimizer).factory(config)
        x = self._initial_image(content, controls)
        status, message = "ok", ""
        try:
            if target is not None or term_targets:
                total, grad = value_and_grad(x)  # a start that already meets the targets costs nothing more
                start.update(x=x.copy(), total=total, grad=grad)
                if targets_met():
                    counters["stop"] = "target"
            for _ in range(0 if counters["stop"] else rounds):
                x = optimizer.minimize(
                    Problem(x0=x, value_and_grad=value_and_grad, max_iterations=iterations,
                            max_evaluations=config.max_evaluations),
                    callback,
                )
                if counters["stop"]:
                    break
        except NonFiniteLoss as exc:
            if best["x"] is None:
                raise NstError(f"{exc}: no finite result to keep; lower the weights or the learning rate") from None
            status = "nan"
            message = f"{exc}; stopped and kept the best image so far (loss {best['loss']:.4g})"
            warnings.warn(message, RuntimeWarning, stacklevel=2)

        result = best["x"] if best["x"] is not None else x
        if config.preserve_color:
            result = combine_luminance(result, content_colour)
        info = self.backbone.weights
        stats = {
            "loss": best["loss"],
            "losses": best["parts"],
            "weights": dict(self.weights),
            "evaluations": counters["evaluations"],
            "iterations": counters["iterations"],
            "seconds": time.perf_counter() - started,
            "status": status,
            "message": message,
            "init": "coarse" if coarse is not None else ("given" if controls.init is not None else config.init),
            "stopped": counters["stop"] or ("nan" if status == "nan" else "budget"),
            "size": [height, width],
            "backbone": self.backbone.name,
            "backbone_weights": {"source": info.source, "path": info.path, "fallback": info.fallback, "note": info.note},
            "history": history,
        }
        if coarse is not None:
            stats["coarse"] = {k: coarse.stats[k] for k in ("size", "evaluations", "iterations", "seconds", "loss")}
        return FrameResult(image=to_uint8(result), stats=stats)
