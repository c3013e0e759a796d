"""nst-adam-ema: the optimizer on a problem with a known minimum, then through nst-plugin's API and CLI."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from nst_adam_ema import AdamEMA
from typer.testing import CliRunner

import nst_plugin
from nst_plugin import Problem, plugins
from nst_plugin.cli import app
from nst_plugin.images import save_image


def quadratic(counter=None):
    """0.5 * sum(a * (x - c)^2) over an 8x8 'image', minimum 0 at c (inside the pixel range)."""
    rng = np.random.default_rng(0)
    c = rng.uniform(20, 235, (8, 8, 3)).astype(np.float32)
    a = rng.uniform(0.5, 2.0, (8, 8, 3)).astype(np.float32)

    def value_and_grad(x):
        if counter is not None:
            counter.append(1)
        d = x - c
        return float(0.5 * (a * d * d).sum()), (a * d).astype(np.float32)

    return value_and_grad


def adam(lr):
    return plugins.get_registry().optimizers["adam"].factory(SimpleNamespace(learning_rate=lr))


def test_the_average_is_closer_to_the_minimum_than_adams_last_iterate():
    f = quadratic()
    config = SimpleNamespace(learning_rate=8.0)
    start = lambda: Problem(x0=np.full((8, 8, 3), 128, np.float32), value_and_grad=f, max_iterations=50)  # noqa: E731
    plain = adam(8.0).minimize(start(), lambda i, loss: False)
    optimizer = AdamEMA(config)
    averaged = optimizer.minimize(start(), lambda i, loss: False)
    assert f(averaged)[0] < 0.5 * f(plain)[0]
    assert optimizer.last["average_loss"] == pytest.approx(f(averaged)[0])


def test_budget_bounds_and_callback_are_respected():
    calls = []
    f = quadratic(calls)
    optimizer = AdamEMA(SimpleNamespace(learning_rate=300.0))  # huge steps: the bounds must hold
    x = optimizer.minimize(Problem(x0=np.zeros((8, 8, 3), np.float32), value_and_grad=f, max_iterations=100,
                                   max_evaluations=10), lambda i, loss: False)
    assert len(calls) == 10  # 9 steps + the one evaluation of the average
    assert x.min() >= 0 and x.max() <= 255
    calls.clear()
    optimizer.minimize(Problem(x0=np.zeros((8, 8, 3), np.float32), value_and_grad=f, max_iterations=100),
                       lambda i, loss: i == 3)
    assert len(calls) == 4 and optimizer.last["steps"] == 3


def _images():
    y, x = np.mgrid[0:30, 0:40].astype(np.float32)
    content = np.stack([x * 6, y * 8, np.full_like(x, 100)], -1).astype(np.uint8)
    style = np.where((((x + y) // 3) % 2 == 0)[..., None], (30, 60, 200), (240, 200, 30)).astype(np.uint8)
    return content, style


def test_python_api_lowers_the_loss_and_evaluates_the_average():
    content, style = _images()
    result = nst_plugin.stylize_frame(content, style, optimizer="adam-ema", size=40, iterations=12,
                                      tolerance=0.0, learning_rate=6.0)
    history = result.stats["history"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert result.stats["evaluations"] == 12 + 1
    assert result.stats["loss"] <= min(h["loss"] for h in history)


def test_cli_selects_it_by_name_and_nst_load_plugins_can_leave_it_out(tmp_path, monkeypatch):
    content, style = _images()
    save_image(tmp_path / "c.png", content)
    save_image(tmp_path / "s.png", style)
    args = ["image", str(tmp_path / "c.png"), "-s", str(tmp_path / "s.png"), "-o", str(tmp_path / "o.png"),
            "--optimizer", "adam-ema", "--size", "40", "--iterations", "4", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o.nst.json").read_text())["config"]["optimizer"] == "adam-ema"
    monkeypatch.setenv("NST_LOAD_PLUGINS", "nst-w2-loss")
    plugins.reset()
    result = CliRunner().invoke(app, args + ["--overwrite"])
    assert result.exit_code == 2 and "unknown optimizer 'adam-ema' (valid: adam, lbfgs)" in result.output
