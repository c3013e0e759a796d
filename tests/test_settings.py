"""One settings vocabulary: CLI options, --settings files and the Python API use StyleConfig's field names;
presets own the defaults; plugin options are declared, validated and typed by their plugin."""

import json
from dataclasses import fields

import pytest
from typer.testing import CliRunner

from nst_plugin import StyleConfig, make_config
from nst_plugin.errors import UserError
from nst_plugin.settings import overrides_from_settings, setting_names

runner = CliRunner()


def test_every_user_setting_is_a_cli_option_named_after_its_field():
    from nst_plugin.cli import STYLE_OPTIONS, VIDEO_OPTIONS

    option_names = {name for name, _, _ in STYLE_OPTIONS + VIDEO_OPTIONS}
    for name in setting_names():
        assert name in option_names, f"StyleConfig.{name} has no CLI option"
    # and the engines' options with a flag are options of the video commands
    assert {"keyframes", "keyframe_size", "keyframe_interval"} <= option_names
    flags = {decl for name, _, option in STYLE_OPTIONS + VIDEO_OPTIONS
             for decl in (option.param_decls or [f"--{name.replace('_', '-')}"])}
    # the names users already type keep working
    for flag in ("--max-evals", "--max-evaluations", "--square/--keep-aspect", "--warm-start/--cold-start",
                 "--content-weight", "--temporal-weight", "--style-layer-weights", "--coarse-to-fine",
                 "--keyframes", "--keyframe-size", "--keyframe-interval"):
        assert flag in flags


def test_settings_mapping_is_a_loop_over_field_names():
    preset, overrides = overrides_from_settings({
        "preset": "seed", "size": 96, "style_layers": "block1_conv1,block2_conv1", "style_blend": [0.7, 0.3],
        "content_weight": 2, "temporal_weight": 0.25, "loss": ["tv=1e-4"], "option": ["w2.eps=1e-5"],
        "warm_start": False, "max_evaluations": 7,
    })
    assert preset == "seed"
    assert overrides["size"] == 96 and overrides["max_evaluations"] == 7 and overrides["warm_start"] is False
    assert overrides["style_layers"] == ("block1_conv1", "block2_conv1") and overrides["style_blend"] == (0.7, 0.3)
    assert overrides["loss_weights"] == {"content": 2.0, "temporal": 0.25, "tv": 1e-4}
    assert overrides["options"] == {"w2.eps": "1e-5"}
    config = make_config(preset, **overrides)
    assert config.loss_weights["temporal"] == 0.25 and config.loss_weights["style"] == 0.03  # seed's own


@pytest.mark.parametrize("settings, message", [
    ({"sise": 96}, "unknown setting 'sise'"),
    ({"size": "96"}, "must be a whole number"),
    ({"warm_start": "yes"}, "must be true or false"),
    ({"content_weight": "a lot"}, "must be a number"),
    ({"option": ["w2eps=1"]}, "NAME.KEY=VALUE"),
])
def test_bad_settings_name_the_setting(settings, message):
    with pytest.raises(UserError, match=message):
        overrides_from_settings(settings)
    assert "size" in setting_names()


def test_presets_own_the_temporal_weight():
    assert make_config("default").loss_weights["temporal"] == 0.5
    assert make_config("seed").loss_weights.get("temporal", 0.0) == 0.0
    assert make_config("default", warm_start=False).loss_weights["temporal"] == 0.0  # cold frames: no pull
    assert make_config("default", warm_start=False, loss_weights={"temporal": 0.3}).loss_weights["temporal"] == 0.3


def test_settings_file_reaches_the_config_and_flags_win(tmp_path):
    from nst_plugin.cli import flat_settings

    file = tmp_path / "run.json"
    file.write_text(json.dumps({"size": 64, "tolerance": 0.01, "temporal_weight": 0.1, "weights": "hed"}))
    flat = flat_settings({"settings": file, "size": 48, "loss": []}, {"temporal_weight": None})
    preset, overrides = overrides_from_settings(flat)
    config = make_config(preset or "default", **overrides)
    assert config.size == 48 and config.tolerance == 0.01 and config.loss_weights["temporal"] == 0.1


def test_cli_refuses_a_bad_settings_file_in_one_line(tmp_path, samples):
    from nst_plugin.cli import app

    file = tmp_path / "run.json"
    for text, message in (("{not json", "is not valid JSON"), ('["size"]', "JSON object"), ('{"colour": 1}', "unknown setting 'colour'")):
        file.write_text(text)
        result = runner.invoke(app, ["image", str(samples / "street.jpg"), "-s", str(samples / "starry_night.jpg"),
                                     "-o", str(tmp_path / "out.png"), "--settings", str(file)])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines == [f"error: {lines[0][7:]}"] and message in lines[0]
    assert not (tmp_path / "out.png").exists()


def test_plugin_options_are_declared_typed_and_listed():
    from nst_plugin import LossTerm, PluginOption, bounded, hookimpl
    from nst_plugin.api import prepare
    from nst_plugin.plugins import register_plugin

    class Plugin:
        @hookimpl
        def nst_register_losses(self, register):
            register("bright", lambda settings: LossTerm(), "test loss",
                     options=[PluginOption("level", bounded(float, 0, 1), 0.5, "target level"),
                              PluginOption("mode", str, "mean")])

    register_plugin(Plugin(), name="bright-plugin")
    style = __import__("numpy").zeros((32, 32, 3), "uint8")
    config, _, registry = prepare(style, loss_weights={"bright": 1.0}, options={"bright.level": "0.75"})
    assert config.options == {"bright.level": 0.75}
    entry = registry.get("losses", "bright")
    assert entry.option_values(config) == {"level": 0.75, "mode": "mean"}
    with pytest.raises(UserError, match="has no option 'colour'.*bright.level, bright.mode"):
        prepare(style, loss_weights={"bright": 1.0}, options={"bright.colour": "red"})
    with pytest.raises(UserError, match="bright.level='high'"):
        prepare(style, loss_weights={"bright": 1.0}, options={"bright.level": "high"})
    with pytest.raises(UserError, match=r"bright.level='1.5': must be at most 1, got 1.5"):
        prepare(style, loss_weights={"bright": 1.0}, options={"bright.level": "1.5"})
    with pytest.raises(UserError, match=r"bright.level='nan': must be a number"):
        prepare(style, loss_weights={"bright": 1.0}, options={"bright.level": "nan"})
    assert entry.as_dict()["options"][0]["type"] == "float"  # listed as its kind
    with pytest.raises(UserError, match="no loss, optimizer, backbone or engine is named 'dim'"):
        prepare(style, options={"dim.level": "1"})
    from nst_plugin.plugins import plugin_info

    assert any(row["name"] == "bright-plugin" for row in plugin_info())
