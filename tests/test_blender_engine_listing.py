"""The Blender add-on's engine list without Blender (blender_addon/engines.py): the engines, their traits and
options as ``nst plugins --json`` lists them, the panel's items and hint, the checks before a run, and the
plugin options in the engine's words; and that the add-on's modules name no engine."""

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blender_addon import engines, plan  # noqa: E402

LISTING = {"version": "0.1.0", "engines": {
    "lbfgs": {"name": "lbfgs", "plugin": "nst_plugin.builtin.engine", "description": "the frame-by-frame chain",
              "options": [], "traits": {"output_size": "size", "frame_settings": True, "seekable": False,
                                        "label": "Frame by frame", "hint": "Best quality, every frame optimised: minutes per frame"}},
    "keyframes": {"name": "keyframes", "plugin": "nst_plugin.builtin.keyframes", "description": "keyframes",
                  "options": [{"key": "steps", "type": "int", "default": 600, "help": "Training steps per shot"},
                              {"key": "seconds", "type": "float", "default": None, "help": "a time limit"},
                              {"key": "full_size", "type": "bool", "default": False, "help": "at the output size"},
                              {"key": "learning_rate", "type": "float", "default": 1e-3, "help": "Adam's"}],
                  "traits": {"output_size": "source", "frame_settings": False, "seekable": False,
                             "label": "Keyframes", "hint": "Fast: keyframes learnt by a small network, seconds per frame"}},
    "crossfade": {"name": "crossfade", "plugin": "nst_crossfade", "description": "stylized keyframes, crossfaded",
                  "options": [{"key": "every", "type": "int", "default": 3, "help": "a keyframe every\n N frames"}],
                  "traits": {"output_size": "source", "frame_settings": True, "seekable": True, "label": "Crossfade",
                             "hint": "Keyframes every few frames, crossfaded: quick"}},
    "bare": {"name": "bare", "plugin": "old_plugin", "description": "an engine from before traits", "options": []}}}


@pytest.fixture(autouse=True)
def no_listing():
    engines.forget()
    yield
    engines.forget()


def test_engines_and_their_traits_from_the_listing():
    found = engines.from_listing(LISTING)
    assert list(found) == ["lbfgs", "keyframes", "crossfade", "bare"]  # the listing's order
    crossfade = found["crossfade"]
    assert (crossfade.label, crossfade.hint, crossfade.output_size, crossfade.frame_settings) == (
        "Crossfade", "Keyframes every few frames, crossfaded: quick", "source", True)
    assert crossfade.options == (engines.Option("every", "int", "3", "a keyframe every N frames"),)
    assert [(o.key, o.default) for o in found["keyframes"].options] == [
        ("steps", "600"), ("seconds", ""), ("full_size", "false"), ("learning_rate", "0.001")]
    bare = found["bare"]  # no traits: its name and description, frames at --size, per-frame values not known
    assert (bare.label, bare.hint, bare.output_size, bare.frame_settings) == ("bare", "an engine from before traits",
                                                                               "size", None)
    assert engines.from_listing({"version": "0.0.9", "presets": ["default"]}) is None  # an engine without the table
    assert engines.from_listing(None) is None


def test_items_before_and_after_a_listing():
    assert engines.items() == [("DEFAULT", "Engine's default", engines.items()[0][2])]  # one item, no engine named
    assert "press Check" in engines.items()[0][2]
    assert engines.hint("") == ("press Check in the add-on's preferences to list the engines", False)
    assert [i[0] for i in engines.items("crossfade")] == ["DEFAULT", "crossfade"]  # a strip's engine: shown
    assert engines.missing("crossfade") is None  # no listing: the engine decides
    engines.use_listing(LISTING)
    assert engines.items()[1:] == [("lbfgs", "Frame by frame", "Best quality, every frame optimised: minutes per frame"),
                                   ("keyframes", "Keyframes", "Fast: keyframes learnt by a small network, seconds per frame"),
                                   ("crossfade", "Crossfade", "Keyframes every few frames, crossfaded: quick"),
                                   ("bare", "bare", "an engine from before traits")]
    assert engines.hint("crossfade") == ("Keyframes every few frames, crossfaded: quick", False)
    engines.use_listing({"version": "0.0.9"})  # an answer without engines leaves what was known
    assert engines.get("crossfade") is not None
    engines.use_listing({"engines": {k: v for k, v in LISTING["engines"].items() if k != "crossfade"}})
    assert engines.get("crossfade") is None and [i[0] for i in engines.items("crossfade")][-1] == "crossfade"
    line = engines.missing("crossfade")
    assert line == ("the crossfade engine is not installed in the engine (it lists: lbfgs, keyframes, bare): install "
                    "the plugin that provides it and press Check in the add-on's preferences, or choose another engine")
    assert engines.hint("crossfade") == (line, True) and engines.items("crossfade")[-1][2] == line
    assert engines.missing("") is None and engines.missing("lbfgs") is None


def test_keyframed_settings_only_for_an_engine_that_takes_them():
    assert engines.per_frame_refusal("keyframes", ["strength"]) is None  # no listing: the engine decides
    engines.use_listing(LISTING)
    assert engines.per_frame_refusal("keyframes", ["style_weight", "temporal_weight"]) == (
        "style weight and temporal weight keyframed on the timeline: the Keyframes engine takes one value per run; "
        "choose Frame by frame or Crossfade, or remove the keyframes")
    assert engines.per_frame_refusal("keyframes", []) is None
    for name in ("crossfade", "lbfgs", "bare", "", "gone"):  # declared, not known, the default, not listed
        assert engines.per_frame_refusal(name, ["strength"]) is None


def test_plugin_options_in_the_engines_words():
    assert not engines.changed("int", "3", "3") and not engines.changed("int", " ", "3")  # empty: the default
    assert engines.changed("int", "2", "3") and not engines.changed("float", "1e-3", "0.001")
    assert not engines.changed("bool", "no", "false") and engines.changed("bool", "on", "false")
    assert engines.changed("float", "0.5", "") and engines.changed("str", "b", "a")
    assert engines.changed("int", "two", "3")  # sent, so that check_value says why not
    with pytest.raises(ValueError, match=r"^engine option crossfade.every: 'two' is not a whole number$"):
        engines.check_value("crossfade", "every", "int", "two")
    engines.check_value("crossfade", "every", "int", "2")
    engines.check_value("x", "y", "str", "anything")
    assert engines.option_arg("crossfade", "every", " 2 ") == "crossfade.every=2"
    assert engines.parse_option_arg("crossfade.every=2") == ("crossfade", "every", "2")
    assert engines.parse_option_arg("my.engine.every=2") == ("my.engine", "every", "2")
    assert engines.parse_option_arg("nonsense") is None


def test_the_settings_carry_the_engine_and_its_options_as_the_engine_reads_them():
    from nst_plugin.settings import overrides_from_settings

    values = plan.engine_settings({"preset": "default", "size": 0, "engine": "keyframes",
                                   "option": ["keyframes.steps=5"]})
    assert values == {"preset": "default", "size": 0, "engine": "keyframes", "option": ["keyframes.steps=5"]}
    _preset, overrides = overrides_from_settings(values)
    assert overrides["engine"] == "keyframes" and overrides["options"] == {"keyframes.steps": "5"}
    assert "engine" not in plan.engine_settings({"preset": "default"})  # the engine's default


def test_the_add_on_names_no_engine():
    """Every engine name and label comes from the listing: none in the add-on's modules (its tests may)."""
    for path in (ROOT / "blender_addon").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("lbfgs", "keyframes", "Frame by frame"):
            assert not re.search(rf"[\"']{word}[\"']", text), f"{path.name} names the engine {word!r}"
