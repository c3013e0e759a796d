"""nst-vgg19 through nst-plugin's CLI and Python API. No network: a randomly initialised VGG19 saved with
``save_weights`` stands in for the ImageNet file, and the ImageNet URL points at a closed local port."""

import json
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import nst_plugin
from nst_plugin import plugins
from nst_plugin.cli import app
from nst_plugin.images import load_image, save_image

PAPER_STYLE = ("block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path_factory.mktemp("vgg19") / "random_vgg19_notop.weights.h5"
    model.save_weights(str(path))
    return path, model.get_layer("block3_conv4").get_weights()[0]


@pytest.fixture
def images(tmp_path):
    y, x = np.mgrid[0:30, 0:40].astype(np.float32)
    content = np.stack([x * 6, y * 8, np.full_like(x, 100)], -1).astype(np.uint8)
    style = np.where((((x + y) // 3) % 2 == 0)[..., None], (30, 60, 200), (240, 200, 30)).astype(np.uint8)
    save_image(tmp_path / "content.png", content)
    save_image(tmp_path / "style.png", style)
    return tmp_path / "content.png", tmp_path / "style.png"


def nst(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_registered_with_the_layers_of_the_paper():
    entry = plugins.get_registry().backbones["vgg19"]
    assert entry.plugin == "nst-vgg19"
    assert set(PAPER_STYLE) | {"block4_conv2", "block3_conv4", "block5_conv4"} <= set(entry.layers)
    assert entry.weight_sources == ("auto", "imagenet")


def test_offline_without_weights_fails_fast_with_one_clear_line(images, tmp_path):
    content, style = images
    started = time.perf_counter()
    result = nst("image", content, "-s", style, "-o", tmp_path / "o.png", "--backbone", "vgg19", "--size", "40", "-q")
    assert time.perf_counter() - started < 60
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot download the ImageNet VGG19 weights"), result.output
    assert "127.0.0.1:9 is not reachable" in lines[0] and "--weights PATH" in lines[0]
    assert not (tmp_path / "o.png").exists()


def test_a_weights_file_runs_through_the_cli_and_changes_the_result(images, tmp_path, weights_file):
    content, style = images
    common = ["image", content, "-s", style, "--size", "40", "--iterations", "5", "--tolerance", "0", "-q"]
    assert nst(*common, "-o", tmp_path / "vgg16.png").exit_code == 0
    result = nst(*common, "-o", tmp_path / "vgg19.png", "--backbone", "vgg19", "--weights", weights_file[0])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "vgg19.nst.json").read_text())
    assert meta["stats"]["backbone"] == "vgg19"
    assert meta["stats"]["backbone_weights"] == {"source": "file", "path": str(weights_file[0]), "fallback": False, "note": ""}
    assert np.isfinite(meta["stats"]["loss"])
    a, b = load_image(tmp_path / "vgg16.png"), load_image(tmp_path / "vgg19.png")
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 0.5


@pytest.mark.backends
def test_python_api_loads_the_file_and_offers_the_deep_layers(weights_file):
    path, saved_kernel = weights_file
    backbone = plugins.get_registry().backbones["vgg19"].factory(weights=str(path), pooling="avg")
    assert np.array_equal(backbone._base.get_layer("block3_conv4").get_weights()[0], saved_kernel)
    features = backbone.extractor(("block3_conv4", "block5_conv4"))(np.zeros((1, 64, 64, 3), np.float32))
    assert tuple(features["block3_conv4"].shape) == (1, 16, 16, 256) and tuple(features["block5_conv4"].shape) == (1, 4, 4, 512)
    result = nst_plugin.stylize_frame(np.zeros((32, 32, 3), np.uint8) + 128, np.eye(32, dtype=np.uint8)[..., None].repeat(3, -1) * 255,
                                      backbone="vgg19", weights=str(path), size=32, iterations=2,
                                      content_layer="block5_conv4")
    assert result.stats["backbone"] == "vgg19"


def test_a_file_that_is_not_vgg19_weights_is_one_clear_line(images, tmp_path):
    content, style = images
    bogus = tmp_path / "notes.weights.h5"
    bogus.write_bytes(b"not hdf5")
    result = nst("image", content, "-s", style, "-o", tmp_path / "o.png", "--backbone", "vgg19", "--weights", bogus, "-q")
    assert result.exit_code == 2, result.output
    assert "is not a Keras VGG19 no-top weights file" in result.output and "Traceback" not in result.output


def test_auto_uses_the_imagenet_file_from_keras_cache_without_the_network(tmp_path, monkeypatch, weights_file):
    """The file Keras publishes is in the legacy HDF5 layout; once downloaded it sits in Keras' cache."""
    import h5py
    import keras
    import nst_vgg19
    from keras.src.legacy.saving import legacy_h5_format

    model = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    model.load_weights(str(weights_file[0]))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / nst_vgg19.IMAGENET.filename
    cached.parent.mkdir()
    with h5py.File(cached, "w") as h5:
        legacy_h5_format.save_weights_to_hdf5_group(h5, model)
    backbone = plugins.get_registry().backbones["vgg19"].factory(weights="auto", pooling="max")
    assert backbone.weights.source == "imagenet" and backbone.weights.path == str(cached)
    assert np.array_equal(backbone._base.get_layer("block3_conv4").get_weights()[0], weights_file[1])
