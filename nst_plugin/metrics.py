"""Quality scores measured by a fixed VGG16, separate from whatever objective a run optimised.

* style score: mean over block1..5_conv1 of the mean squared difference between the Gram matrices
  (normalised per position, features scaled to unit mean activation of the style) of the image and the
  style image, both at the same size. Lower is closer to the style.
* content score: mean squared difference of block4_conv2 features between the image and the content image,
  divided by the mean squared content feature. Lower is closer to the content.

These two are the project's reported scores and do not change. But the style score's layers are the ones
the objective of every preset optimises, so a method that optimises them looks better than it is. Hence:

* ``style_other`` (also returned by :func:`scores`): the same Gram distance at layers no preset's style
  loss uses (``block1_conv2``, ``block2_conv2``, ``block3_conv3``, ``block4_conv3``): the style as another
  observer sees it. Report it next to ``style``.

Added for the subject of the shot (faces, people, edges), which a stylizer must keep recognisable:

* :func:`edge_correlation`: Pearson correlation of the Sobel gradient magnitudes of the image and the
  source (grey). 1: the same edges; about 0: the source's edges are gone. No network involved.
* :func:`moving_content`: the content distance at ``block3_conv3`` (relative, as the content score)
  restricted to the positions that move differently from the frame's dominant motion (DIS optical flow
  differs from its median by more than 1 px): the walking people, the turning face. ``nan`` when nothing
  moves.
* :func:`content_profile`: the relative content distance at block2_conv2, block3_conv3 and block4_conv2.

The measurement always uses max pooling and the same weights for every method compared in one run.
"""

from __future__ import annotations

import numpy as np

from .config import VGG_STYLE_LAYERS
from .images import resize

CONTENT_LAYER = "block4_conv2"
MOVING_LAYER = "block3_conv3"
PROFILE_LAYERS = ("block2_conv2", MOVING_LAYER, CONTENT_LAYER)
OTHER_STYLE_LAYERS = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3")
_extractors: dict[str, object] = {}


def _extractor(weights: str):
    if weights not in _extractors:
        from .builtin.vgg16 import VGG16Backbone
        from .backends import import_keras

        import_keras()
        _extractors[weights] = VGG16Backbone(weights=weights, pooling="max").extractor(
            tuple(dict.fromkeys((*VGG_STYLE_LAYERS, *PROFILE_LAYERS, *OTHER_STYLE_LAYERS))))
    return _extractors[weights]


def _features(image: np.ndarray, weights: str) -> dict[str, np.ndarray]:
    from keras import ops

    out = _extractor(weights)(np.asarray(image, np.float32)[None])
    return {name: ops.convert_to_numpy(value)[0] for name, value in out.items()}


def _gram(features: np.ndarray) -> np.ndarray:
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return flat.T @ flat / flat.shape[0]


def scores(image: np.ndarray, content: np.ndarray, style: np.ndarray, weights: str = "auto") -> dict[str, float]:
    """{"style": ..., "style_other": ..., "content": ...} for an RGB uint8 ``image``; content and style are
    resized to match it."""
    h, w = image.shape[:2]
    content = resize(content, h, w)
    sh, sw = style.shape[:2]
    scale = max(h, w) / max(sh, sw)
    style = resize(style, max(16, round(sh * scale)), max(16, round(sw * scale)))
    fi, fc, fs = _features(image, weights), _features(content, weights), _features(style, weights)
    def style_distance(layers) -> float:
        terms = []
        for layer in layers:
            norm = float(np.mean(fs[layer])) ** 2 + 1e-8
            terms.append(np.mean((_gram(fi[layer]) - _gram(fs[layer])) ** 2) / norm**2)
        return float(np.mean(terms))

    content_score = np.mean((fi[CONTENT_LAYER] - fc[CONTENT_LAYER]) ** 2) / (np.mean(fc[CONTENT_LAYER] ** 2) + 1e-8)
    return {"style": style_distance(VGG_STYLE_LAYERS), "style_other": style_distance(OTHER_STYLE_LAYERS),
            "content": float(content_score)}


def _relative(fi: np.ndarray, fc: np.ndarray, weight: np.ndarray | None = None) -> float:
    """mean((fi - fc)^2) / mean(fc^2) over the positions, each position weighted by ``weight`` (h, w)."""
    diff = np.mean((fi.astype(np.float64) - fc) ** 2, axis=-1)
    energy = np.mean(fc.astype(np.float64) ** 2, axis=-1)
    if weight is None:
        return float(diff.mean() / (energy.mean() + 1e-8))
    total = float(weight.sum())
    if total <= 0:
        return float("nan")
    return float((diff * weight).sum() / ((energy * weight).sum() + 1e-8))


def content_profile(image: np.ndarray, content: np.ndarray, weights: str = "auto") -> dict[str, float]:
    """{layer: relative content distance} at block2_conv2, block3_conv3 and block4_conv2 (the last one is the
    content score). Shallow layers see edges and small shapes, deep ones objects."""
    h, w = image.shape[:2]
    fi, fc = _features(image, weights), _features(resize(content, h, w), weights)
    return {layer: _relative(fi[layer], fc[layer]) for layer in PROFILE_LAYERS}


def _sobel_magnitude(rgb: np.ndarray) -> np.ndarray:
    import cv2

    from .flow import gray

    g = gray(rgb).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def edge_correlation(image: np.ndarray, source: np.ndarray) -> float:
    """Pearson correlation of the Sobel gradient magnitudes of ``image`` and ``source`` (grey; the source is
    resized to the image's size). 1 for the same edges, about 0 when the source's edges are lost (or
    the image is flat), negative when edges appear where the source has none."""
    h, w = image.shape[:2]
    a = _sobel_magnitude(image).ravel().astype(np.float64)
    b = _sobel_magnitude(resize(np.asarray(source), h, w)).ravel().astype(np.float64)
    a -= a.mean()
    b -= b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def moving_mask(content: np.ndarray, previous_content: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    """(H, W) bool, at the content's size: where the DIS optical flow from the previous frame to this one
    differs from the frame's median flow (the dominant motion, e.g. a camera pan) by more than ``threshold``
    pixels. ``previous_content`` is resized to the content's size."""
    from .flow import flow, own_motion

    h, w = content.shape[:2]
    return own_motion(flow(resize(np.asarray(previous_content), h, w), np.asarray(content))) > threshold


def moving_content(image: np.ndarray, content: np.ndarray, previous_content: np.ndarray,
                   weights: str = "auto", threshold: float = 1.0) -> float:
    """Relative content distance at ``block3_conv3`` where the subject moves: mean over the moving positions
    of the squared feature difference between ``image`` and ``content``, divided by the mean squared content
    feature there. The mask (:func:`moving_mask`, at the image's size) is area-averaged onto the feature
    map and used as a per-position weight. ``nan`` when no pixel moves. Lower is better."""
    import cv2

    h, w = image.shape[:2]
    content = resize(np.asarray(content), h, w)
    mask = moving_mask(content, previous_content, threshold)
    if not mask.any():
        return float("nan")
    fi, fc = _features(image, weights)[MOVING_LAYER], _features(content, weights)[MOVING_LAYER]
    weight = cv2.resize(mask.astype(np.float32), (fc.shape[1], fc.shape[0]), interpolation=cv2.INTER_AREA)
    return _relative(fi, fc, weight)


def region_style(image: np.ndarray, style: np.ndarray, mask: np.ndarray, weights: str = "auto") -> dict[str, float]:
    """{"style": ..., "style_other": ...} of :func:`scores`, measured over a region of ``image``: its
    features weighted by ``mask`` ((H, W) 0..1 at any size, area-averaged onto each feature map) and their
    Gram normalised by the mask's sum of squares, against the whole ``style`` image's Gram (two styles by
    mask: is each region close to its own style?). Lower is closer; ``nan`` for an empty region."""
    import cv2

    h, w = image.shape[:2]
    sh, sw = style.shape[:2]
    scale = max(h, w) / max(sh, sw)
    style = resize(style, max(16, round(sh * scale)), max(16, round(sw * scale)))
    fi, fs = _features(image, weights), _features(style, weights)
    mask = np.asarray(mask, np.float32)

    def distance(layers) -> float:
        terms = []
        for layer in layers:
            f = fi[layer].astype(np.float64)
            m = cv2.resize(mask, (f.shape[1], f.shape[0]), interpolation=cv2.INTER_AREA).astype(np.float64)
            area = float((m * m).sum())
            if area <= 1e-6:
                return float("nan")
            flat = (f * m[..., None]).reshape(-1, f.shape[-1])
            norm = float(np.mean(fs[layer])) ** 2 + 1e-8
            terms.append(np.mean((flat.T @ flat / area - _gram(fs[layer])) ** 2) / norm**2)
        return float(np.mean(terms))

    return {"style": distance(VGG_STYLE_LAYERS), "style_other": distance(OTHER_STYLE_LAYERS)}
