"""The ``nst`` command: real runs on tiny images, and one clear line for every bad input."""

import json
import math

import pytest
from typer.testing import CliRunner

from nst_plugin.cli import app
from nst_plugin.images import load_image

runner = CliRunner()
TINY = ["--size", "40", "--iterations", "4", "--quiet"]


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_image_writes_result_metadata_and_loss_plot(tmp_path, samples):
    out = tmp_path / "styled.png"
    plot = tmp_path / "loss.png"
    result = nst("image", samples / "street.jpg", "--style", samples / "starry_night.jpg", "-o", out, "--loss-plot", plot, *TINY)
    assert result.exit_code == 0, result.output
    image = load_image(out)
    assert image.shape == (30, 40, 3)
    meta = json.loads((tmp_path / "styled.nst.json").read_text())
    assert meta["stats"]["backbone_weights"]["source"] == "hed"
    assert meta["stats"]["backbone_weights"]["fallback"] is True
    assert meta["config"]["size"] == 40 and meta["config"]["preset"] == "default"
    assert math.isfinite(meta["stats"]["loss"])
    assert "fallback weights: hed" in result.output
    plot_image = load_image(plot)
    assert plot_image.shape == (500, 900, 3) and (plot_image < 128).any()  # curves and axes were drawn
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_several_styles_blend_preserve_color_and_overrides(tmp_path, samples):
    out = tmp_path / "blend.jpg"
    result = nst(
        "image", samples / "street.jpg", "-s", samples / "starry_night.jpg", "-s", samples / "HappyFish.jpg",
        "--style-blend", "0.7,0.3", "--preserve-color", "--tv-weight", "1", "--optimizer", "adam",
        "--style-layers", "block1_conv1,block2_conv1", "-o", out, *TINY,
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "blend.nst.json").read_text())
    assert meta["config"]["style_blend"] == [0.7, 0.3]
    assert meta["config"]["style_layer_weights"] == [1.0, 1.0]
    assert meta["config"]["loss_weights"]["tv"] == 1.0
    assert meta["config"]["preserve_color"] is True


def test_existing_output_is_kept_unless_overwrite(tmp_path, samples):
    out = tmp_path / "mine.png"
    out.write_bytes(b"the user's own file")
    args = ["image", samples / "street.jpg", "-s", samples / "starry_night.jpg", "-o", out, *TINY]
    result = nst(*args)
    assert result.exit_code != 0 and "already exists" in result.output
    assert out.read_bytes() == b"the user's own file"
    assert nst(*args, "--overwrite").exit_code == 0
    assert load_image(out).shape == (30, 40, 3)


def _bad(tmp_path, samples):
    street, starry = samples / "street.jpg", samples / "starry_night.jpg"
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    out = tmp_path / "o.png"
    base = ["image", street, "-s", starry, "-o", out]
    return {
        "missing content": (["image", tmp_path / "nope.jpg", "-s", starry, "-o", out], "does not exist"),
        "missing style": (["image", street, "-s", tmp_path / "gone.png", "-o", out], "does not exist"),
        "unreadable": (["image", text, "-s", starry, "-o", out], "cannot be read as an image"),
        "folder": (["image", tmp_path, "-s", starry, "-o", out], "is a folder"),
        "unknown layer": ([*base, "--content-layer", "block9_conv9"], "valid: block1_conv1"),
        "unknown loss": ([*base, "--loss", "wasserstein"], "unknown loss 'wasserstein' (valid: content, style, temporal, tv)"),
        "unknown optimizer": ([*base, "--optimizer", "sgd"], "unknown optimizer 'sgd' (valid: adam, lbfgs)"),
        "unknown preset": ([*base, "--preset", "fast"], "valid: default, seed"),
        "negative weight": ([*base, "--style-weight", "-1"], "finite number >= 0"),
        "nan weight": ([*base, "--content-weight", "nan"], "finite number >= 0"),
        "inf weight": ([*base, "--loss", "tv=inf"], "finite number >= 0"),
        "size too small": ([*base, "--size", "8"], "at least 32"),
        "size too large": ([*base, "--size", "1000000"], "GiB of memory"),
        "blend count": ([*base, "--style-blend", "0.5,0.5"], "2 weights for 1 style"),
        "blend text": ([*base, "--style-blend", "a,b"], "comma-separated numbers"),
        "layer weights": ([*base, "--style-layer-weights", "1,2"], "one weight per layer"),
        "output is input": (["image", street, "-s", starry, "-o", street, "--overwrite"], "is one of the input files"),
        "output suffix": (["image", street, "-s", starry, "-o", tmp_path / "o.txt"], "needs an image suffix"),
        "bad weights": ([*base, "--weights", "nowhere.h5"], "neither a weight source"),
        "bad init": ([*base, "--init", "nowhere.png"], "--init must be"),
        "zero iterations": ([*base, "--iterations", "0"], "iterations must be"),
        "all zero": ([*base, "--content-weight", "0", "--style-weight", "0"], "nothing to optimise"),
    }


@pytest.mark.parametrize("case", [
    "missing content", "missing style", "unreadable", "folder", "unknown layer", "unknown loss", "unknown optimizer",
    "unknown preset", "negative weight", "nan weight", "inf weight", "size too small", "size too large",
    "blend count", "blend text", "layer weights", "output is input", "output suffix", "bad weights", "bad init",
    "zero iterations", "all zero",
])
def test_bad_input_gets_one_clear_line(case, tmp_path, samples, monkeypatch):
    args, expected = _bad(tmp_path, samples)[case]
    if case in ("unknown loss", "unknown optimizer"):
        monkeypatch.setenv("NST_LOAD_PLUGINS", "")  # the exact list of built-ins, whatever else is installed
    before = samples / "street.jpg"
    original = before.read_bytes()
    result = nst(*args)
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert before.read_bytes() == original  # an input is never touched
    assert not (tmp_path / "o.png").exists()


def test_python_dash_m_and_version():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "nst_plugin", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("nst-plugin ")


def test_a_nan_loss_keeps_the_best_image_and_exits_4(tmp_path, samples):
    from nst_plugin import plugins
    from test_engine import NaNPlugin

    plugins.register_plugin(NaNPlugin(), name="nan-plugin")
    out = tmp_path / "o.png"
    result = nst("image", samples / "street.jpg", "-s", samples / "starry_night.jpg", "-o", out,
                 "--loss", "nan-after-three=1", *TINY)
    assert result.exit_code == 4, result.output
    assert "kept the best image" in result.output
    image = load_image(out)
    assert image.shape == (30, 40, 3)
    meta = json.loads((tmp_path / "o.nst.json").read_text())
    assert meta["stats"]["status"] == "nan" and math.isfinite(meta["stats"]["loss"])
