"""nst-vgg19: the VGG19 backbone of Gatys et al. 2015 ("A Neural Algorithm of Artistic Style").

The paper's layers exist under Keras' names: style at conv1_1, conv2_1, conv3_1, conv4_1, conv5_1
(``block1_conv1`` ... ``block5_conv1``), content at conv4_2 (``block4_conv2``): nst-plugin's default layers,
so ``--backbone vgg19`` needs no other option.

Weight sources (``--weights``):

* ``imagenet`` (and ``auto``, the same): Keras' ImageNet VGG19 no-top weights, downloaded once (80 MB) into
  Keras' cache through :class:`nst_plugin.WeightsFile`, exactly as the built-in VGG16 does. Offline, and not
  cached, the run stops within seconds with a message that says what to do. ``NST_VGG19_WEIGHTS_URL``
  replaces the download URL (a mirror).
* a path to a Keras VGG19 no-top weights file (``.h5`` / ``.weights.h5``).

There is no offline fallback: no package on PyPI bundles VGG19 weights in Keras layout.
"""

from __future__ import annotations

from nst_plugin import KerasBackbone, WeightsFile, WeightsInfo, hookimpl, load_keras_weights

__version__ = "0.1.0"

LAYERS = (
    "block1_conv1", "block1_conv2", "block1_pool",
    "block2_conv1", "block2_conv2", "block2_pool",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4", "block3_pool",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4", "block4_pool",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4", "block5_pool",
)
WEIGHT_SOURCES = ("auto", "imagenet")
URL_ENV = "NST_VGG19_WEIGHTS_URL"

IMAGENET = WeightsFile(
    filename="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    md5="253f8cb515780f3b799900260a226db6",  # as published by keras.applications.vgg19
    url_env=URL_ENV,
    what="the ImageNet VGG19 weights",
    alternatives="pass --weights PATH to a Keras VGG19 no-top .h5 file, or use --backbone vgg16 (which has an "
                 "offline fallback)",
)


@hookimpl
def nst_register_backbones(register):
    register(
        "vgg19",
        VGG19Backbone,
        "Keras VGG19, the network of Gatys et al. 2015 (ImageNet weights; no offline fallback)",
        layers=LAYERS,
        weight_sources=WEIGHT_SOURCES,
    )


def resolve_weights(source: str):
    """(kind, path) for a ``--weights`` value."""
    from nst_plugin.weights import weights_file_path

    if source in ("auto", "imagenet"):
        return "imagenet", IMAGENET.fetch()
    return "file", weights_file_path(source, WEIGHT_SOURCES)


class VGG19Backbone(KerasBackbone):
    name = "vgg19"
    layers = LAYERS

    def __init__(self, weights: str = "auto", pooling: str = "max"):
        kind, path = resolve_weights(weights)  # before importing Keras: offline fails in seconds
        import keras

        base = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
        load_keras_weights(base, path, "VGG19")
        super().__init__(base, pooling, WeightsInfo(source=kind, path=str(path)))
