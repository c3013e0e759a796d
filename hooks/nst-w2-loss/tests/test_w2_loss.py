"""nst-w2-loss through nst-plugin's public API and its CLI, on tiny synthetic images (offline weights)."""

import json

import numpy as np
import pytest
from nst_w2_loss import W2StyleLoss, gaussian, w2_squared
from typer.testing import CliRunner

import nst_plugin
from nst_plugin import LossSettings, make_config, plugins
from nst_plugin.cli import app
from nst_plugin.gradients import input_gradient, to_tensors
from nst_plugin.images import load_image, resize, save_image

LAYERS = ("block1_conv1", "block2_conv1", "block3_conv1")


def content_image():
    y, x = np.mgrid[0:36, 0:48].astype(np.float32)
    image = np.stack([x / 48 * 200 + 30, y / 36 * 180 + 40, np.full_like(x, 90)], -1)
    image[10:26, 14:34] = (220, 60, 40)  # a red box on a gradient
    return image.astype(np.uint8)


def style_image():
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:48]
    stripes = ((x + y) // 4) % 2 == 0
    image = np.where(stripes[..., None], (20, 40, 160), (250, 210, 40)).astype(np.float32)
    return np.clip(image + rng.normal(0, 20, image.shape), 0, 255).astype(np.uint8)


def term(layers=("a",), weights=(1.0,)):
    config = make_config(style_layers=layers, style_layer_weights=weights)
    return W2StyleLoss(LossSettings(name="w2", weight=1.0, config=config, backbone_layers=layers))


def tensor(array):
    return to_tensors(np.asarray(array, np.float32))


def loss_value(loss_term, image_features, style_features):
    loss_term.prepare_styles([({"a": tensor(style_features[None, None])}, 1.0)])
    targets = to_tensors(loss_term.frame_targets(None))
    return float(loss_term.loss(None, {"a": tensor(image_features[None, None])}, targets))


@pytest.mark.backends
def test_the_loss_is_the_closed_form_w2_distance():
    rng = np.random.default_rng(1)
    a = (rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6)) + 3).astype(np.float32)
    b = (rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6)) - 1).astype(np.float32)
    expected = w2_squared(*gaussian(a), *gaussian(b)) / 6
    assert loss_value(term(), a, b) == pytest.approx(expected, rel=1e-3)
    assert loss_value(term(), b, b) == pytest.approx(0.0, abs=1e-3 * expected)
    # independent check: between diagonal Gaussians W2^2 = |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    assert w2_squared(np.zeros(3), np.diag(s1), np.ones(3), np.diag(s2)) == pytest.approx(3 + 2.0)


@pytest.mark.backends
def test_gradient_is_finite_when_the_features_are_rank_deficient():
    rng = np.random.default_rng(2)
    loss_term = term()
    loss_term.prepare_styles([({"a": tensor(rng.normal(size=(1, 1, 4, 16)))}, 1.0)])
    step = input_gradient(lambda x, targets: (loss_term.loss(None, {"a": x}, targets), {}))
    x = rng.normal(size=(1, 1, 3, 16)).astype(np.float32)  # 3 positions, 16 channels
    value, _, grad = step(x, to_tensors(loss_term.frame_targets(None)))
    assert np.isfinite(value) and np.isfinite(grad).all() and np.abs(grad).max() > 0


def _w2_to_style(image, style):
    """W2 between VGG16 features of image and style, measured outside the optimised objective."""
    from keras import ops

    backbone = plugins.get_registry().backbones["vgg16"].factory(weights="auto", pooling="max")
    extract = backbone.extractor(LAYERS)
    fi = {k: ops.convert_to_numpy(v) for k, v in extract(np.asarray(image[None], np.float32)).items()}
    fs = {k: ops.convert_to_numpy(v) for k, v in extract(np.asarray(style[None], np.float32)).items()}
    return sum(w2_squared(*gaussian(fi[k]), *gaussian(fs[k])) / fi[k].shape[-1] for k in LAYERS)


def test_cli_w2_instead_of_the_gram_loss_moves_the_feature_distribution_to_the_style(tmp_path):
    content, style = content_image(), style_image()
    save_image(tmp_path / "content.png", content)
    save_image(tmp_path / "style.png", style)
    out = tmp_path / "out.png"
    result = CliRunner().invoke(app, [
        "image", str(tmp_path / "content.png"), "--style", str(tmp_path / "style.png"), "-o", str(out),
        "--style-weight", "0", "--loss", "w2=5", "--style-layers", ",".join(LAYERS), "--size", "48",
        "--iterations", "15", "--tolerance", "0", "--quiet",
    ])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out.nst.json").read_text())
    assert meta["config"]["loss_weights"]["w2"] == 5.0
    assert set(meta["stats"]["losses"]) == {"content", "w2"}  # style weight 0: the Gram loss is off
    styled = load_image(out)
    before = _w2_to_style(resize(content, *styled.shape[:2]), style)
    after = _w2_to_style(styled, style)
    assert after < 0.6 * before, (before, after)


@pytest.mark.backends
def test_python_api_next_to_the_gram_loss_with_two_styles():
    content, style = content_image(), style_image()
    result = nst_plugin.stylize_frame(
        content, [style, 255 - style], style_blend=(0.8, 0.2), size=40, iterations=5, tolerance=0.0,
        loss_weights={"w2": 1.0},
    )
    assert set(result.stats["losses"]) == {"content", "style", "w2"}
    assert np.isfinite(result.stats["loss"])


def test_not_loaded_when_nst_load_plugins_leaves_it_out(monkeypatch, tmp_path):
    monkeypatch.setenv("NST_LOAD_PLUGINS", "")
    plugins.reset()
    save_image(tmp_path / "c.png", content_image())
    result = CliRunner().invoke(app, ["image", str(tmp_path / "c.png"), "-s", str(tmp_path / "c.png"),
                                      "-o", str(tmp_path / "o.png"), "--loss", "w2=1"])
    assert result.exit_code == 2 and "unknown loss 'w2'" in result.output
    monkeypatch.setenv("NST_LOAD_PLUGINS", "nst-w2-loss")
    plugins.reset()
    assert plugins.get_registry().losses["w2"].plugin == "nst-w2-loss"


def test_a_second_plugin_registering_w2_is_named_next_to_this_one():
    from nst_plugin import hookimpl

    class Copycat:
        @hookimpl
        def nst_register_losses(self, register):
            register("w2", W2StyleLoss)

    plugins.register_plugin(Copycat(), name="copycat")
    with pytest.warns(RuntimeWarning, match="registered twice: by plugin 'nst-w2-loss' and by plugin 'copycat'"):
        registry = plugins.get_registry()
    assert registry.losses["w2"].plugin == "nst-w2-loss"


def test_eps_is_a_declared_option_the_user_can_set(tmp_path):
    from nst_plugin.api import prepare
    from nst_plugin.errors import UserError

    config, _, registry = prepare(style_image(), style_weight=0.0, loss_weights={"w2": 1.0}, options={"w2.eps": "1e-4"})
    entry = registry.get("losses", "w2")
    assert [o.key for o in entry.options] == ["eps"] and config.options == {"w2.eps": 1e-4}
    term = entry.factory(LossSettings(name="w2", weight=1.0, config=config, backbone_layers=LAYERS,
                                      options=entry.option_values(config)))
    assert term.eps == 1e-4
    with pytest.raises(UserError, match="w2.eps"):
        prepare(style_image(), loss_weights={"w2": 1.0}, options={"w2.eps": "tiny"})
    listing = CliRunner().invoke(app, ["plugins"])
    assert "--option w2.eps=<float> (default 1e-06)" in listing.output
