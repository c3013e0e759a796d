"""Quality scores measured by a fixed VGG16, separate from whatever objective a run optimised.

* style score: mean over block1..5_conv1 of the mean squared difference between the Gram matrices
  (normalised per position, features scaled to unit mean activation of the style) of the image and the
  style image, both at the same size. Lower is closer to the style.
* content score: mean squared difference of block4_conv2 features between the image and the content image,
  divided by the mean squared content feature. Lower is closer to the content.

The measurement always uses max pooling and the same weights for every method compared in one run.
"""

from __future__ import annotations

import numpy as np

from .config import VGG_STYLE_LAYERS
from .images import resize

CONTENT_LAYER = "block4_conv2"
_extractors: dict[str, object] = {}


def _extractor(weights: str):
    if weights not in _extractors:
        from .builtin.vgg16 import VGG16Backbone
        from .tf_import import import_tensorflow

        import_tensorflow()
        _extractors[weights] = VGG16Backbone(weights=weights, pooling="max").extractor((*VGG_STYLE_LAYERS, CONTENT_LAYER))
    return _extractors[weights]


def _features(image: np.ndarray, weights: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    out = _extractor(weights)(tf.constant(np.asarray(image, np.float32)[None]))
    return {name: value.numpy()[0] for name, value in out.items()}


def _gram(features: np.ndarray) -> np.ndarray:
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return flat.T @ flat / flat.shape[0]


def scores(image: np.ndarray, content: np.ndarray, style: np.ndarray, weights: str = "auto") -> dict[str, float]:
    """{"style": ..., "content": ...} for an RGB uint8 ``image``; content and style are resized to match it."""
    h, w = image.shape[:2]
    content = resize(content, h, w)
    sh, sw = style.shape[:2]
    scale = max(h, w) / max(sh, sw)
    style = resize(style, max(16, round(sh * scale)), max(16, round(sw * scale)))
    fi, fc, fs = _features(image, weights), _features(content, weights), _features(style, weights)
    style_terms = []
    for layer in VGG_STYLE_LAYERS:
        norm = float(np.mean(fs[layer])) ** 2 + 1e-8
        style_terms.append(np.mean((_gram(fi[layer]) - _gram(fs[layer])) ** 2) / norm**2)
    content_score = np.mean((fi[CONTENT_LAYER] - fc[CONTENT_LAYER]) ** 2) / (np.mean(fc[CONTENT_LAYER] ** 2) + 1e-8)
    return {"style": float(np.mean(style_terms)), "content": float(content_score)}
