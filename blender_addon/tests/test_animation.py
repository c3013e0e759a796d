"""Keyframed settings reach the engine frame by frame, the result strip covers its source at the source's
resolution, and a running job's strip name shows its progress (headless Blender 5.0)."""

import json
import re
import time
from pathlib import Path

import bpy
import pytest
from conftest import ENGINE_PYTHON, draw_panel


def key(scene, name, values):
    """Keyframes of ``scene.nst.<name>``: {timeline frame: value}."""
    for frame, value in values.items():
        setattr(scene.nst, name, value)
        scene.keyframe_insert(f"nst.{name}", frame=frame)


def recorded(record):
    return json.loads(Path(record).read_text())["settings"]


def test_keyframed_strength_goes_to_the_engine_frame_by_frame(edit, prefs, fake_python, monkeypatch, tmp_path):
    record = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(record))
    prefs.python_path = fake_python
    edit.frame_set(1)
    key(edit, "strength", {12: 0.2, 14: 0.8})  # Bezier keys: 0.5 half way at frame 13
    key(edit, "style_weight", {12: 10.0, 14: 30.0})  # not used without Custom weights
    edit.frame_set(1)
    assert "Keyframed, per frame: strength" in draw_panel()
    assert bpy.ops.sequencer.nst_stylize() == {"FINISHED"}
    settings = recorded(record)
    assert settings["frame_settings"] == {"3": {"strength": 0.2}, "4": {"strength": 0.5}, "5": {"strength": 0.8}}
    assert "strength" not in settings and "style_weight" not in settings  # not a constant: the folder's hash stays
    assert edit.frame_current == 1  # evaluated from the F-curve; the playhead did not move
    result = edit.sequence_editor.strips["NST starry_night"]
    assert json.loads(result["nst"])["frame_settings"]["5"] == {"strength": 0.8}  # Resume sends the same

    edit.nst.custom_weights = True  # the weights then, not the strength
    key(edit, "temporal_weight", {12: 0.0, 13: 1.0, 14: 0.25})
    edit.sequence_editor.active_strip = edit.sequence_editor.strips["street"]
    assert bpy.ops.sequencer.nst_stylize(action="NEW") == {"FINISHED"}
    settings = recorded(record)
    assert settings["frame_settings"] == {"3": {"style_weight": 10.0, "temporal_weight": 0.0},
                                          "4": {"style_weight": 20.0, "temporal_weight": 1.0},
                                          "5": {"style_weight": 30.0, "temporal_weight": 0.25}}
    assert "style_weight" not in settings and "temporal_weight" not in settings and settings["content_weight"] == 1000.0

    assert bpy.ops.nst.check_engine() == {"FINISHED"}  # the fake engine's listing: Keyframes takes one value per run
    edit.nst.engine = "keyframes"
    with pytest.raises(RuntimeError, match=r"style weight and temporal weight keyframed on the timeline: the Keyframes "
                                           r"engine takes one value per run"):
        bpy.ops.sequencer.nst_stylize()


def test_settings_without_keyframes_stay_constants(edit, prefs, fake_python, monkeypatch, tmp_path):
    record = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(record))
    prefs.python_path = fake_python
    edit.nst.strength = 0.7
    assert bpy.ops.sequencer.nst_stylize() == {"FINISHED"}
    settings = recorded(record)
    assert settings["strength"] == 0.7 and "frame_settings" not in settings
    assert "frame_settings" not in json.loads(edit.sequence_editor.strips["NST starry_night"]["nst"])


def test_the_result_strip_covers_its_source_at_the_sources_resolution(edit, prefs, fake_python):
    """The fake engine's frames are 8x6, the source movie 384x288: the result is scaled 48 times more than
    the source, at the same place, turned, flipped and cropped the same."""
    prefs.python_path = fake_python
    source = edit.sequence_editor.strips["street"]
    source.transform.scale_x, source.transform.scale_y = 2.0, 1.5
    source.transform.offset_x, source.transform.offset_y = 30.0, -20.0
    source.transform.rotation, source.transform.origin = 0.25, (0.25, 0.75)
    source.use_flip_x = True
    source.crop.min_x, source.crop.max_y = 96, 48
    assert bpy.ops.sequencer.nst_stylize() == {"FINISHED"}
    result = edit.sequence_editor.strips["NST starry_night"]
    width, height = 8, 6  # the result's frames
    assert (width * result.transform.scale_x, height * result.transform.scale_y) == (384 * 2.0, 288 * 1.5)
    assert (result.transform.offset_x, result.transform.offset_y) == (30.0, -20.0)
    assert result.transform.rotation == pytest.approx(0.25) and tuple(result.transform.origin) == (0.25, 0.75)
    assert result.use_flip_x and not result.use_flip_y
    assert (result.crop.min_x, result.crop.max_x, result.crop.min_y, result.crop.max_y) == (2, 0, 0, 1)

    result.transform.offset_x = 99.0  # the editor moved it: Resume leaves it there
    edit.sequence_editor.active_strip = result
    assert bpy.ops.sequencer.nst_stylize(action="RESUME") == {"FINISHED"}
    assert result.transform.offset_x == 99.0


def test_a_running_jobs_strip_name_shows_its_progress(edit, prefs, fake_python, monkeypatch):
    from blender_addon import jobs

    prefs.python_path = fake_python
    monkeypatch.setenv("NST_FAKE_MODE", "hang")  # one frame of three, then it waits
    job = jobs.start_job(bpy.context, "NEW")
    deadline = time.monotonic() + 30
    while job.progress.done < 1 and time.monotonic() < deadline:
        jobs.step_job(job)
        time.sleep(0.05)
    jobs.step_job(job)
    names = [s.name for s in edit.sequence_editor.strips if s.get("nst")]
    assert len(names) == 1 and re.fullmatch(r"NST starry_night 33%( \d+s left)?", names[0]), names
    jobs.cancel(job)
    while jobs.handle_event(job, "TIMER", "NOTHING") != "ENDED" and time.monotonic() < deadline:
        time.sleep(0.05)
    jobs.finish_job(job)
    assert [s.name for s in edit.sequence_editor.strips if s.get("nst")] == ["NST starry_night"]


@pytest.mark.skipif(not ENGINE_PYTHON.exists(), reason="the engine venv .venv is missing (make test creates it)")
def test_a_changed_curve_remakes_only_the_frames_it_changed_with_the_real_engine(edit, prefs, tmp_path):
    prefs.python_path = str(ENGINE_PYTHON)
    key(edit, "strength", {12: 0.2, 13: 0.5, 14: 0.8})
    assert bpy.ops.sequencer.nst_stylize() == {"FINISHED"}
    out = tmp_path / "nst" / "street_starry_night"
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert [manifest["frames"][str(i)]["settings"]["strength"] for i in (3, 4, 5)] == [0.2, 0.5, 0.8]
    frames = {i: out / f"frame_{i:06d}.png" for i in (3, 4, 5)}
    before = {i: (f.read_bytes(), f.stat().st_mtime_ns) for i, f in frames.items()}

    key(edit, "strength", {14: 0.9})  # one key changed: frame 14 (source frame 5) only
    edit.sequence_editor.active_strip = edit.sequence_editor.strips["street"]
    assert bpy.ops.sequencer.nst_stylize() == {"FINISHED"}
    result = edit.sequence_editor.strips["NST starry_night"]
    run = json.loads(result["nst_last_run"])
    assert (run["status"], run["written"], run["resumed"]) == ("ok", 1, 2)
    assert all((frames[i].read_bytes(), frames[i].stat().st_mtime_ns) == before[i] for i in (3, 4))
    assert frames[5].stat().st_mtime_ns != before[5][1]
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["frames"]["5"]["settings"]["strength"] == 0.9
    assert [s.name for s in edit.sequence_editor.strips if s.get("nst")] == ["NST starry_night"]

    key(edit, "strength", {12: 0.3})  # Re-run with Changes from the result strip: the same, by its frame only
    stamps = {i: frames[i].stat().st_mtime_ns for i in (3, 4, 5)}
    edit.sequence_editor.active_strip = result
    assert bpy.ops.sequencer.nst_stylize(action="RERUN") == {"FINISHED"}
    run = json.loads(result["nst_last_run"])
    assert (run["status"], run["written"], run["resumed"]) == ("ok", 1, 2)
    assert {i: frames[i].stat().st_mtime_ns == stamps[i] for i in (3, 4, 5)} == {3: False, 4: True, 5: True}
    assert json.loads(result["nst"])["frame_settings"]["3"] == {"strength": 0.3}
    width = 32  # the panel's size: 32 px frames over the 384 px source
    assert width * result.transform.scale_x == pytest.approx(384 * edit.sequence_editor.strips["street"].transform.scale_x)
