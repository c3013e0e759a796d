"""The hook core: registry, entry-point loading, broken plugins, NST_LOAD_PLUGINS, no TensorFlow at start."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nst_plugin import LossTerm, hookimpl, plugins
from nst_plugin.errors import PluginError, UserError
from nst_plugin.registry import Registry
from nst_plugin.testing import write_distribution


def test_builtins_register_through_the_hooks():
    registry = plugins.get_registry()
    assert set(registry.losses) >= {"content", "style", "tv"}
    assert set(registry.optimizers) >= {"lbfgs", "adam"}
    assert "vgg16" in registry.backbones
    assert registry.losses["style"].plugin == "nst_plugin.builtin.losses"
    assert "block5_conv3" in registry.backbones["vgg16"].layers
    assert registry.engines["lbfgs"].plugin == "nst_plugin.builtin.engine"


def test_duplicate_name_names_both_plugins():
    registry = Registry()
    registry.registrar("losses", "first-plugin")("mine", lambda settings: None)
    with pytest.raises(PluginError) as info:
        registry.registrar("losses", "second-plugin")("mine", lambda settings: None)
    assert "first-plugin" in str(info.value) and "second-plugin" in str(info.value)


def test_duplicate_from_a_plugin_is_reported_and_the_rest_works():
    class Dup:
        @hookimpl
        def nst_register_losses(self, register):
            register("style", lambda settings: None)

    plugins.register_plugin(Dup(), name="dup-plugin")
    with pytest.warns(RuntimeWarning, match="dup-plugin"):
        registry = plugins.get_registry()
    assert registry.losses["style"].plugin == "nst_plugin.builtin.losses"
    assert any(f.name == "dup-plugin" and "registered twice" in f.error for f in plugins.FAILURES)


def test_a_duplicate_engine_name_names_both_plugins():
    class Chain:
        def __init__(self, config):
            pass

    class Dup:
        @hookimpl
        def nst_register_engines(self, register):
            register("lbfgs", Chain, "my own chain")

    plugins.register_plugin(Dup(), name="dup-engine")
    with pytest.warns(RuntimeWarning, match="dup-engine"):
        registry = plugins.get_registry()
    assert registry.engines["lbfgs"].factory.__module__ == "nst_plugin.builtin.engine"  # the first one stays
    (failure,) = [f for f in plugins.FAILURES if f.name == "dup-engine"]
    assert failure.error.startswith("engine name 'lbfgs' is registered twice: by plugin 'nst_plugin.builtin.engine' "
                                    "and by plugin 'dup-engine'")


def test_strict_mode_turns_a_broken_plugin_into_an_error(monkeypatch):
    class Dup:
        @hookimpl
        def nst_register_losses(self, register):
            register("content", lambda settings: None)

    monkeypatch.setenv("NST_STRICT_PLUGINS", "1")
    plugins.register_plugin(Dup(), name="dup-plugin")
    with pytest.raises(PluginError, match="dup-plugin"):
        plugins.get_registry()


def test_unknown_names_list_the_valid_ones(monkeypatch):
    monkeypatch.setenv("NST_LOAD_PLUGINS", "")  # the exact list of built-ins, whatever else is installed
    registry = plugins.get_registry()
    with pytest.raises(UserError, match="valid: adam, lbfgs"):
        registry.get("optimizers", "sgd")


def test_misspelled_hook_is_caught():
    class Typo:
        @hookimpl
        def nst_stylize_frme(self, content, styles, config, context):
            return None

    with pytest.raises(PluginError, match="nst_stylize_frme"):
        plugins.register_plugin(Typo(), name="typo")


def _fake_distribution(root, name, module_source, entry_name):
    """A tiny installed distribution on a sys.path entry: a module and a dist-info with one entry point."""
    write_distribution(root, name, module_source, {entry_name: name})


GOOD = """
from nst_plugin import hookimpl, LossTerm

class Zero(LossTerm):
    def __init__(self, settings):
        pass

@hookimpl
def nst_register_losses(register):
    register("zero", Zero, "always zero")
"""


def _run_cli(args, env_extra, pythonpath):
    env = dict(os.environ, PYTHONPATH=str(pythonpath), **env_extra)
    code = "import sys; from nst_plugin.cli import main; sys.argv = ['nst'] + sys.argv[1:]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


def test_entry_points_broken_plugin_and_nst_load_plugins(tmp_path):
    _fake_distribution(tmp_path, "nst_good_plugin", GOOD, "good")
    _fake_distribution(tmp_path, "nst_broken_plugin", "raise ImportError('no module named frobnicate')\n", "broken")

    result = _run_cli(["plugins", "--json"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["losses"]["zero"]["plugin"] == "good"
    good = next(p for p in data["plugins"] if p["name"] == "good")
    assert good["distribution"] == "nst_good_plugin" and good["version"] == "1.2.3"
    assert data["failures"] == [{"name": "broken", "stage": "import", "error": "ImportError: no module named frobnicate"}]
    assert "broken" in result.stderr  # reported, not silent

    text = _run_cli(["plugins"], {}, tmp_path)
    assert "FAILED broken at import" in text.stdout and "zero" in text.stdout

    only_good = json.loads(_run_cli(["plugins", "--json"], {"NST_LOAD_PLUGINS": "good"}, tmp_path).stdout)
    assert "zero" in only_good["losses"] and only_good["failures"] == []

    none = json.loads(_run_cli(["plugins", "--json"], {"NST_LOAD_PLUGINS": ""}, tmp_path).stdout)
    assert "zero" not in none["losses"] and none["failures"] == []
    assert "content" in none["losses"]  # built-ins always load

    strict = _run_cli(["plugins"], {"NST_STRICT_PLUGINS": "1"}, tmp_path)
    assert strict.returncode != 0 and "broken" in strict.stderr and "Traceback" not in strict.stderr


def test_start_up_does_not_import_tensorflow():
    code = textwrap.dedent(
        """
        import sys
        import nst_plugin
        from typer.testing import CliRunner
        from nst_plugin.cli import app
        runner = CliRunner()
        assert runner.invoke(app, ["--help"]).exit_code == 0
        assert runner.invoke(app, ["plugins"]).exit_code == 0
        assert runner.invoke(app, ["plugins", "--json"]).exit_code == 0
        assert "tensorflow" not in sys.modules, "TensorFlow was imported"
        assert "keras" not in sys.modules and "cv2" not in sys.modules
        print("light")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "light" in result.stdout


EXPLODES = """
from nst_plugin import hookimpl

@hookimpl
def nst_stylize_frame(content, styles, config, context):
    raise RuntimeError("the frame exploded\\nsecond line of detail")
"""


def test_a_plugin_raising_in_a_work_hook_is_named_in_one_line(tmp_path, samples):
    _fake_distribution(tmp_path, "nst_explodes", EXPLODES, "explodes")
    args = ["image", str(samples / "street.jpg"), "-s", str(samples / "starry_night.jpg"), "-o",
            str(tmp_path / "o.png"), "--size", "40", "-q"]
    result = _run_cli(args, {"NST_LOAD_PLUGINS": "explodes"}, tmp_path)
    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: plugin 'explodes' (from nst_explodes 1.2.3) failed during nst_stylize_frame: "
                               "RuntimeError: the frame exploded")
    assert "Traceback" not in result.stderr and not (tmp_path / "o.png").exists()

    strict = _run_cli(args, {"NST_LOAD_PLUGINS": "explodes", "NST_STRICT_PLUGINS": "1"}, tmp_path)
    assert strict.returncode != 0
    assert "Traceback" in strict.stderr and "nst_explodes.py" in strict.stderr  # the author sees where


class ExplodingTerm(LossTerm):
    def __init__(self, settings):
        pass

    def loss(self, image, features, targets):
        raise ValueError("cannot compute this loss")


class ExplodingLossPlugin:
    @hookimpl
    def nst_register_losses(self, register):
        register("explode", ExplodingTerm)


def test_a_loss_plugin_raising_inside_the_built_in_engine_is_named(content_rgb, style_rgb):
    import nst_plugin

    plugins.register_plugin(ExplodingLossPlugin(), name="exploding-loss")
    with pytest.raises(PluginError, match=r"plugin 'exploding-loss' failed during nst_stylize_frame: "
                                          r"ValueError: cannot compute this loss") as info:
        nst_plugin.stylize_frame(content_rgb, style_rgb, size=32, iterations=1, loss_weights={"explode": 1.0})
    assert isinstance(info.value.__cause__, ValueError)
    assert [(f.name, f.stage) for f in plugins.FAILURES] == [("exploding-loss", "hook")]


DUPLICATE = """
from nst_plugin import hookimpl, LossTerm

@hookimpl
def nst_register_losses(register):
    register("style", LossTerm, "my own style loss")
"""


def test_an_installed_duplicate_is_named_with_the_plugin_it_collides_with(tmp_path):
    _fake_distribution(tmp_path, "nst_dup_plugin", DUPLICATE, "dup")
    result = _run_cli(["plugins", "--json"], {"NST_LOAD_PLUGINS": "dup"}, tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["losses"]["style"]["plugin"] == "nst_plugin.builtin.losses"  # the first one stays
    (failure,) = data["failures"]
    assert failure["name"] == "dup" and failure["stage"] == "register"
    assert "'nst_plugin.builtin.losses'" in failure["error"] and "'dup'" in failure["error"]
    assert "warning: plugin 'dup' failed at register" in result.stderr

    strict = _run_cli(["plugins"], {"NST_LOAD_PLUGINS": "dup", "NST_STRICT_PLUGINS": "1"}, tmp_path)
    assert strict.returncode == 3 and "registered twice" in strict.stderr and "Traceback" not in strict.stderr
