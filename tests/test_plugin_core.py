"""The hook core: registry, entry-point loading, broken plugins, NST_LOAD_PLUGINS, no TensorFlow at start."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from nst_plugin import hookimpl, plugins
from nst_plugin.errors import PluginError, UserError
from nst_plugin.registry import Registry


def test_builtins_register_through_the_hooks():
    registry = plugins.get_registry()
    assert set(registry.losses) >= {"content", "style", "tv"}
    assert set(registry.optimizers) >= {"lbfgs", "adam"}
    assert "vgg16" in registry.backbones
    assert registry.losses["style"].plugin == "nst_plugin.builtin.losses"
    assert "block5_conv3" in registry.backbones["vgg16"].layers


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


def test_strict_mode_turns_a_broken_plugin_into_an_error(monkeypatch):
    class Dup:
        @hookimpl
        def nst_register_losses(self, register):
            register("content", lambda settings: None)

    monkeypatch.setenv("NST_STRICT_PLUGINS", "1")
    plugins.register_plugin(Dup(), name="dup-plugin")
    with pytest.raises(PluginError, match="dup-plugin"):
        plugins.get_registry()


def test_unknown_names_list_the_valid_ones():
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
    (root / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[nst_plugin]\n{entry_name} = {name}\n")


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
