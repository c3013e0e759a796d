"""The backbone interface: a feature extractor, built by a factory registered with ``nst_register_backbones``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a backbone runs with; written into every run's metadata."""

    source: str  # "imagenet", "hed", "file"
    path: str | None = None
    fallback: bool = False  # True when these are not the weights the method was designed for
    note: str = ""


class Backbone:
    """A feature extractor. ``extractor(layers)`` returns ``f(images) -> {layer: activation}`` where
    ``images`` is a float32 batch (N, H, W, 3), RGB 0..255; it does its own preprocessing and stops at the
    deepest layer asked for."""

    name: str = ""
    layers: tuple[str, ...] = ()
    weights: WeightsInfo = WeightsInfo("none")

    @property
    def variables(self) -> tuple:
        """The Keras variables (weights) the extractors read. The JAX backend passes their values into its
        compiled step as arguments; a backbone that returns none still works there (its weights become
        constants of the compiled program, which compiles slower)."""
        return ()

    def extractor(self, layers: tuple[str, ...]) -> Callable[[Any], Mapping[str, Any]]:
        raise NotImplementedError


# Keras' VGG preprocessing ("caffe" mode): RGB -> BGR, minus the ImageNet mean.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)


def keras_layer_extractor(base, layer_order, layers, pooling: str = "max", bgr_mean=CAFFE_BGR_MEAN):
    """``f(images) -> {layer: activation}`` for a sequential Keras model such as ``keras.applications.VGG16``,
    on any Keras backend (``keras.ops``); ``images`` may be an array or a tensor of the backend.

    ``base``: the Keras model (built with ``input_shape=(None, None, 3)``); ``layer_order``: its layer names,
    shallow to deep; ``layers``: the ones to return. The model is cut after the deepest layer asked for. With
    ``pooling="avg"`` every layer whose name ends in ``_pool`` becomes average pooling (Gatys et al.).
    Images are RGB 0..255; they are converted to BGR minus ``bgr_mean`` (Keras' "caffe" preprocessing).
    Imports Keras: call it from :meth:`Backbone.extractor`, not at import time.
    """
    import keras
    from keras import ops

    layers = tuple(dict.fromkeys(layers))
    deepest = max(layer_order.index(name) for name in layers)
    inputs = keras.Input(shape=(None, None, 3))
    x = inputs
    outputs = {}
    for name in layer_order[: deepest + 1]:
        if name.endswith("_pool") and pooling == "avg":
            x = keras.layers.AveragePooling2D(2, 2, name=name)(x)
        else:
            x = base.get_layer(name)(x)
        outputs[name] = x
    model = keras.Model(inputs, [outputs[name] for name in layers])
    mean = np.asarray(bgr_mean, np.float32)

    def extract(images):
        bgr = ops.subtract(ops.flip(ops.convert_to_tensor(images, "float32"), axis=-1), ops.convert_to_tensor(mean))
        out = model(bgr, training=False)
        if not isinstance(out, (list, tuple)):
            out = [out]
        return dict(zip(layers, out))

    return extract


class KerasBackbone(Backbone):
    """A backbone around a sequential ``keras.applications`` model (VGG16, VGG19, ...).

    Subclasses set ``name`` and ``layers`` (shallow to deep), build the Keras model with
    ``input_shape=(None, None, 3)`` and call ``super().__init__(model, pooling, weights_info)``. One cut model
    is built per set of layers asked for, and reused.
    """

    bgr_mean = CAFFE_BGR_MEAN

    def __init__(self, base, pooling: str, weights: WeightsInfo):
        base.trainable = False
        self._base = base
        self.pooling = pooling
        self.weights = weights
        self._extractors: dict[tuple[str, ...], Callable] = {}

    @property
    def variables(self) -> tuple:
        return tuple(self._base.weights)

    def extractor(self, layers):
        layers = tuple(dict.fromkeys(layers))
        if layers not in self._extractors:
            self._extractors[layers] = keras_layer_extractor(self._base, self.layers, layers, self.pooling, self.bgr_mean)
        return self._extractors[layers]


def load_keras_weights(model, path, what: str) -> None:
    """``model.load_weights(path)``; a file that does not fit is a one-line :class:`UserError` naming ``what``."""
    from .errors import UserError

    try:
        model.load_weights(str(path))
    except Exception as exc:
        raise UserError(f"--weights {str(path)!r} is not a Keras {what} no-top weights file ({exc})") from None
