"""The panel's engines come from the engine's listing (``nst plugins --json``, asked by Check): a plugin's
engine with its label, hint, traits and options; no listing, one item that names no engine; a result strip's
engine kept as stored, listed or not (headless Blender 5.0, the fake engine)."""

import json

import bpy
import pytest
from conftest import draw_panel

CROSSFADE = {"crossfade": {
    "name": "crossfade", "plugin": "nst_crossfade", "description": "stylized keyframes, crossfaded",
    "options": [{"key": "every", "type": "int", "default": 3, "help": "a keyframe every N frames"}],
    "traits": {"output_size": "source", "frame_settings": True, "seekable": True, "label": "Crossfade",
               "hint": "Keyframes every few frames, crossfaded: quick"}}}


def items(settings):
    from blender_addon import props

    return {identifier: (label, hint) for identifier, label, hint, _icon, _number in props.engine_items(settings, bpy.context)}


def stylize(**kwargs):
    return bpy.ops.sequencer.nst_stylize(**kwargs)


def recorded(record):
    return json.loads(record.read_text())["settings"]


@pytest.fixture
def record(monkeypatch, tmp_path):
    path = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(path))
    return path


@pytest.fixture
def crossfade(prefs, fake_python, monkeypatch):
    """Check with a fake engine that has a plugin's third engine, crossfade."""
    monkeypatch.setenv("NST_FAKE_EXTRA_ENGINES", json.dumps(CROSSFADE))
    prefs.python_path = fake_python
    assert bpy.ops.nst.check_engine() == {"FINISHED"}
    assert prefs.last_check.endswith("engines: lbfgs, keyframes, crossfade")
    return prefs


def test_no_listing_one_item_that_names_no_engine(edit, prefs, fake_python, record):
    settings = edit.nst
    assert list(items(settings)) == ["DEFAULT"] and settings.engine == "DEFAULT"
    assert "press Check in the add-on's preferences to list the engines" in draw_panel()
    assert "engine" not in settings.engine_settings() and "option" not in settings.engine_settings()
    prefs.python_path = fake_python
    assert stylize() == {"FINISHED"}
    assert "engine" not in recorded(record)  # the engine runs its own default
    with pytest.raises(TypeError, match='enum "keyframes" not found'):
        settings.engine = "keyframes"  # nothing listed: no engine to choose


def test_a_plugin_engine_with_its_label_hint_resolution_and_option(edit, crossfade, record):
    settings = edit.nst
    listed = items(settings)
    assert list(listed) == ["DEFAULT", "lbfgs", "keyframes", "crossfade"]
    assert listed["crossfade"] == ("Crossfade", "Keyframes every few frames, crossfaded: quick")
    assert listed["lbfgs"] == ("Frame by frame", "Best quality, every frame optimised: minutes per frame")
    assert settings.resolution == "SIZE"  # the edit fixture's 32 px
    settings.engine = "crossfade"  # its frames are at the source's resolution: the strip's
    assert settings.engine_name == "crossfade" and settings.resolution == "STRIP"
    log = draw_panel()
    assert "Keyframes every few frames, crossfaded: quick" in log and "prop Crossfade options" in log
    settings.show_options = True
    assert "prop every" in draw_panel()  # its field, at the listed default
    (field,) = settings.option_fields()
    assert (field.name, field.value, field.default, field.kind, field.help) == (
        "crossfade.every", "3", "3", "int", "a keyframe every N frames")
    assert "option" not in settings.engine_settings()  # at its default: not sent
    field.value = "2"
    assert "prop Crossfade options (1 changed)" in draw_panel()
    settings.resolution = "SIZE"
    assert stylize() == {"FINISHED"}
    sent = recorded(record)
    assert sent["engine"] == "crossfade" and sent["option"] == ["crossfade.every=2"]
    plan = json.loads(edit.sequence_editor.strips["NST starry_night"]["nst"])
    assert plan["settings"]["engine"] == "crossfade" and plan["settings"]["option"] == ["crossfade.every=2"]
    field.value = "two"
    edit.sequence_editor.active_strip = edit.sequence_editor.strips["street"]
    with pytest.raises(RuntimeError, match=r"^Error: engine option crossfade.every: 'two' is not a whole number\n$"):
        stylize()
    settings.engine = "lbfgs"  # an engine at --size's default: the resolution stays as chosen
    assert settings.resolution == "SIZE" and "option" not in settings.engine_settings()


def test_a_result_strip_re_runs_with_its_engine_listed_or_not(edit, crossfade, fake_python, record, monkeypatch):
    settings = edit.nst
    settings.engine = "crossfade"
    settings.option_fields()[0].value = "2"
    assert stylize() == {"FINISHED"}
    editor = edit.sequence_editor
    result = editor.strips["NST starry_night"]

    settings.engine = "keyframes"  # the panel changed since; Load Settings brings the strip's back
    settings.option_fields()[0].value = "5"  # keyframes.steps
    editor.active_strip = result
    assert bpy.ops.sequencer.nst_load_settings() == {"FINISHED"}
    assert settings.engine == "crossfade" and settings.option_fields()[0].value == "2"
    assert stylize(action="RERUN") == {"FINISHED"}
    sent = recorded(record)
    assert sent["engine"] == "crossfade" and sent["option"] == ["crossfade.every=2"]

    monkeypatch.delenv("NST_FAKE_EXTRA_ENGINES")  # the plugin is gone from the engine: Check lists two engines
    assert bpy.ops.nst.check_engine() == {"FINISHED"}
    assert list(items(settings)) == ["DEFAULT", "lbfgs", "keyframes", "crossfade"]  # the selected one: shown
    settings.engine = "lbfgs"
    assert "crossfade" not in items(settings)
    editor.active_strip = result
    assert bpy.ops.sequencer.nst_load_settings() == {"FINISHED"}
    assert settings.engine == "crossfade" and settings.engine_name == "crossfade"  # kept, not switched
    assert settings.engine_settings()["option"] == ["crossfade.every=2"]
    not_installed = ("the crossfade engine is not installed in the engine (it lists: lbfgs, keyframes): install the "
                     "plugin that provides it and press Check in the add-on's preferences, or choose another engine")
    assert not_installed in draw_panel()  # under the choice and in the result strip's box
    assert draw_panel().count(not_installed) == 2
    record.unlink()
    for action in ("RERUN", "RESUME"):
        with pytest.raises(RuntimeError, match=rf"^Error: {not_installed.replace('(', '.').replace(')', '.')}\n$"):
            stylize(action=action)
    assert not record.exists() and settings.engine == "crossfade"  # no run, no other engine
    assert json.loads(result["nst"])["settings"]["engine"] == "crossfade"


def test_keyframed_settings_follow_the_engines_frame_settings_trait(edit, crossfade, record):
    edit.frame_set(1)
    for frame, value in {12: 0.2, 14: 0.8}.items():
        edit.nst.strength = value
        edit.keyframe_insert("nst.strength", frame=frame)
    edit.nst.engine = "crossfade"  # frame_settings true: per-frame values go to it
    assert stylize() == {"FINISHED"}
    sent = recorded(record)
    assert sent["engine"] == "crossfade" and sent["frame_settings"] == {"3": {"strength": 0.2}, "4": {"strength": 0.5},
                                                                        "5": {"strength": 0.8}}
    edit.nst.engine = "keyframes"  # frame_settings false: refused in one line, naming those that take them
    edit.sequence_editor.active_strip = edit.sequence_editor.strips["street"]
    with pytest.raises(RuntimeError, match=r"^Error: strength keyframed on the timeline: the Keyframes engine takes one "
                                           r"value per run; choose Frame by frame or Crossfade, or remove the keyframes\n$"):
        stylize()


def test_the_listing_is_kept_for_the_next_session(edit, crossfade):
    from blender_addon import engines, props

    assert json.loads(crossfade.engine_listing)["engines"]["crossfade"]["traits"]["label"] == "Crossfade"
    props.forget_listing()  # Blender started again: nothing checked in this session
    assert engines.LISTED is None
    assert items(edit.nst)["crossfade"][0] == "Crossfade"  # from the preferences, before any Check
    edit.nst.engine = "crossfade"
    assert [f.name for f in edit.nst.option_fields()] == ["crossfade.every"]
