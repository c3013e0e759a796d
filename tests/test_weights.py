"""VGG16 weight sources: ImageNet download (from a local server), fast offline failure, hed fallback, file."""

import functools
import http.server
import threading
import time
import warnings

import numpy as np
import pytest
import tensorflow as tf

from nst_plugin.builtin import vgg16
from nst_plugin.errors import WeightsUnavailable


def _hed_backbone(pooling="max"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return vgg16.VGG16Backbone(weights="hed", pooling=pooling)


@pytest.fixture(scope="module")
def legacy_weights(tmp_path_factory):
    """A VGG16 no-top file in the legacy HDF5 layout Keras publishes (the hed weights stand in for ImageNet's)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path = tmp_path_factory.mktemp("served") / vgg16.IMAGENET_FILE
    with h5py.File(path, "w") as h5:
        legacy_h5_format.save_weights_to_hdf5_group(h5, _hed_backbone()._base)
    return path


def _features(backbone):
    image = tf.constant(np.random.default_rng(0).uniform(0, 255, (1, 40, 48, 3)).astype(np.float32))
    return backbone.extractor(("block3_conv1",))(image)["block3_conv1"].numpy()


def test_imagenet_fails_fast_offline_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(WeightsUnavailable) as info:
        vgg16.VGG16Backbone(weights="imagenet")
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert "cannot download the ImageNet VGG16 weights" in message and "--weights hed" in message


def test_auto_falls_back_to_hed_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.warns(UserWarning, match="offline fallback"):
        backbone = vgg16.VGG16Backbone(weights="auto")
    assert backbone.weights.source == "hed" and backbone.weights.fallback
    assert "fine-tuned from ImageNet VGG16" in backbone.weights.note


def test_imagenet_downloads_once_into_keras_cache(monkeypatch, tmp_path, legacy_weights):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(legacy_weights.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("KERAS_HOME", str(tmp_path))
        monkeypatch.setenv(vgg16.URL_ENV, f"http://127.0.0.1:{server.server_address[1]}/{vgg16.IMAGENET_FILE}")
        backbone = vgg16.VGG16Backbone(weights="imagenet")
    finally:
        server.shutdown()
    cached = tmp_path / "models" / vgg16.IMAGENET_FILE
    assert cached.exists() and backbone.weights.source == "imagenet" and not backbone.weights.fallback
    assert np.allclose(_features(backbone), _features(_hed_backbone()))
    # the server is gone: the cached file is used, no network needed
    again = vgg16.VGG16Backbone(weights="auto")
    assert again.weights.source == "imagenet" and again.weights.path == str(cached)


def test_a_weights_file_path(legacy_weights):
    backbone = vgg16.VGG16Backbone(weights=str(legacy_weights))
    assert backbone.weights.source == "file"
    assert np.allclose(_features(backbone), _features(_hed_backbone()))


def test_average_pooling_changes_the_deep_features():
    avg = _hed_backbone("avg")
    mx = _hed_backbone("max")
    image = tf.constant(np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32))
    a = avg.extractor(("block1_conv1", "block3_conv1"))(image)
    m = mx.extractor(("block1_conv1", "block3_conv1"))(image)
    assert np.allclose(a["block1_conv1"], m["block1_conv1"])  # before any pooling: identical
    assert not np.allclose(a["block3_conv1"], m["block3_conv1"])
