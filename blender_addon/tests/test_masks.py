"""The mask picked in the panel: a Mask strip (rendered by the add-on into its private folder, the scene left
as it was, its feather kept soft), an image strip (its file), sent to the engine as ``mask`` in the
``--settings`` file; a strip that cannot be the mask is one line; with the real engine, a re-run after the mask
changed keeps the engine's frames and composites them again."""

import glob
import json
import os
from pathlib import Path

import bpy
import pytest
from conftest import ENGINE_PYTHON, SAMPLES, draw_panel

needs_engine = pytest.mark.skipif(not ENGINE_PYTHON.exists(), reason="the engine venv .venv is missing (make test creates it)")


def stylize(**kwargs):
    return bpy.ops.sequencer.nst_stylize(**kwargs)


def square_mask(scene, name="matte", channel=5, corners=((0.5, 0.2), (0.8, 0.5), (0.5, 0.8), (0.2, 0.5))):
    """A Mask strip over the whole timeline: a square standing on a corner in the middle of the frame, muted
    (a matte is usually not shown itself)."""
    mask = bpy.data.masks.new(name)
    spline = mask.layers.new(name="shape").splines.new()
    spline.points.add(len(corners) - 1)
    for point, corner in zip(spline.points, corners):
        point.co = corner
        point.handle_type = "VECTOR"  # straight edges
    spline.use_cyclic = True
    strip = scene.sequence_editor.strips.new_mask(name, mask, channel, 1)
    strip.frame_final_duration = 100
    strip.mute = True
    return strip


def pixels(path):
    """(width, height, red channel rows) of a PNG, read by Blender."""
    image = bpy.data.images.load(str(path))
    try:
        width, height = image.size
        values = list(image.pixels)
        return width, height, [[values[4 * (y * width + x)] for x in range(width)] for y in range(height)]
    finally:
        bpy.data.images.remove(image)


@pytest.fixture
def record(monkeypatch, tmp_path):
    path = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(path))
    return path


def test_a_mask_strip_is_rendered_for_the_runs_frames_and_sent_as_the_mask(edit, prefs, fake_python, record):
    prefs.python_path = fake_python
    matte = square_mask(edit)
    matte.mask.layers[0].alpha = 0.5  # a half-styled square: grey reaches the engine as grey
    edit.nst.mask_strip = matte.name
    strips_before = sorted((s.name, s.mute) for s in edit.sequence_editor.strips)
    assert stylize() == {"FINISHED"}
    settings = json.loads(record.read_text())["settings"]
    pattern = settings["mask"]
    assert pattern.endswith("mask_######.png") and "nst" not in Path(pattern).parts[-3:-1]  # private, not the output
    files = sorted(glob.glob(pattern.replace("######", "*")))
    assert [os.path.basename(f) for f in files] == ["mask_000012.png", "mask_000013.png", "mask_000014.png"]
    width, height, red = pixels(files[0])
    assert (width, height) == (384, 288)  # the source strip's frames: the engine needs their aspect ratio
    assert abs(red[height // 2][width // 2] - 0.5) < 0.01 and red[5][5] == 0.0  # grey inside, black outside
    # the scene is as it was: its strips (the matte still muted), no scene left behind
    assert sorted((s.name, s.mute) for s in edit.sequence_editor.strips if not s.get("nst")) == strips_before
    assert [s.name for s in bpy.data.scenes] == [edit.name]
    result = edit.sequence_editor.strips["NST starry_night"]
    stored = json.loads(result["nst"])
    assert stored["mask_strip"] == matte.name and stored["mask"] == pattern


def test_an_image_strip_that_shows_one_picture_is_sent_as_its_file(edit, prefs, fake_python, record, tmp_path):
    prefs.python_path = fake_python
    still = edit.sequence_editor.strips.new_image(name="still", filepath=str(SAMPLES / "street.jpg"), channel=6,
                                                  frame_start=1)
    still.frame_final_duration = 50
    edit.nst.mask_strip = still.name
    assert stylize() == {"FINISHED"}
    assert json.loads(record.read_text())["settings"]["mask"] == str(SAMPLES / "street.jpg")


def test_a_strip_that_cannot_be_the_mask_is_one_line(edit, prefs, fake_python):
    prefs.python_path = fake_python
    edit.nst.mask_strip = "title"  # a colour strip
    with pytest.raises(RuntimeError, match=r"strip 'title' \(color\) cannot be a mask: pick a mask, movie or image"):
        stylize()
    short = square_mask(edit, "short")
    short.frame_final_duration = 12  # frames 1-12: not 13 and 14
    edit.nst.mask_strip = "short"
    with pytest.raises(RuntimeError, match=r"the mask strip 'short' \(frames 1-12\) does not cover the frames to "
                                           r"stylize \(12-14\)"):
        stylize()
    edit.nst.mask_strip = "gone"
    with pytest.raises(RuntimeError, match=r"the mask strip 'gone' is not in the sequencer"):
        stylize()


class Recorder:
    """A layout that records every call (and its sub-layouts' calls) as (name, args)."""

    def __init__(self, log):
        object.__setattr__(self, "log", log)

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.log.append((name, args))
            return Recorder(self.log)

        return call

    def __setattr__(self, name, value):
        pass


def test_the_panel_draws_the_mask_picker_over_the_sequencers_strips(edit, prefs):
    from types import SimpleNamespace

    edit.nst.mask_strip = square_mask(edit).name
    draw_panel()  # every call a real UILayout has
    log = []
    context = SimpleNamespace(scene=edit, space_data=SimpleNamespace(view_type="SEQUENCER"))
    bpy.types.SEQUENCER_PT_nst.draw(SimpleNamespace(layout=Recorder(log)), context)
    searches = [args for name, args in log if name == "prop_search"]
    assert [(a[0], a[1], a[2], a[3]) for a in searches] == [(edit.nst, "mask_strip", edit.sequence_editor, "strips")]
    assert "matte" in edit.sequence_editor.strips and "mask_strip" in edit.nst.bl_rna.properties


@needs_engine
def test_a_re_run_with_another_mask_keeps_the_engines_frames(edit, prefs, tmp_path):
    prefs.python_path = str(ENGINE_PYTHON)
    matte = square_mask(edit)
    edit.nst.mask_strip = matte.name
    assert stylize() == {"FINISHED"}
    editor = edit.sequence_editor
    result = editor.strips["NST starry_night"]
    out = tmp_path / "nst" / "street_starry_night"
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["mask"]["count"] == 3 and sorted(manifest["frames"]) == ["3", "4", "5"]
    first = {k: (e["seconds"], e["loss"], e["mask"]) for k, e in manifest["frames"].items()}

    for point in matte.mask.layers[0].splines[0].points:  # the artist moves the matte
        point.co = (point.co[0] + 0.1, point.co[1])
        point.handle_type = "VECTOR"
    editor.active_strip = result
    assert stylize(action="RERUN") == {"FINISHED"}
    assert json.loads(editor.strips["NST starry_night"]["nst_last_run"])["status"] == "ok"
    manifest = json.loads((out / "nst_manifest.json").read_text())
    again = {k: (e["seconds"], e["loss"], e["mask"]) for k, e in manifest["frames"].items()}
    assert {k: v[:2] for k, v in again.items()} == {k: v[:2] for k, v in first.items()}  # not stylized again
    assert all(again[k][2] != first[k][2] for k in first)  # composited with the new mask


def test_a_plan_keeps_its_mask_and_a_plan_without_one_keeps_the_old_format():
    from blender_addon.plan import Plan

    plain = Plan(source_strip="street", source="/clips/street.avi", source_type="MOVIE", source_channel=2,
                 style="/art/starry.jpg", settings={"size": 32}, timeline=(12, 14), indices=[3, 4, 5])
    assert "mask" not in plain.to_dict() and "mask_strip" not in plain.to_dict()
    assert "mask" not in plain.engine_settings()
    masked = Plan.from_json(Plan(**{**plain.__dict__, "mask_strip": "matte", "mask": "/m/mask_######.png"}).to_json())
    assert (masked.mask_strip, masked.mask) == ("matte", "/m/mask_######.png")
    assert masked.engine_settings()["mask"] == "/m/mask_######.png"
    assert masked.same_run(plain)  # a new mask is no reason to replace the engine's frames



def test_a_feathered_mask_strip_reaches_the_engine_with_its_soft_edge(edit, prefs, fake_python, record):
    prefs.python_path = fake_python
    # clockwise, so that Blender's feather (each point's weight) lies outside the square: 0.1 of the frame
    matte = square_mask(edit, corners=((0.5, 0.2), (0.2, 0.5), (0.5, 0.8), (0.8, 0.5)))
    for point in matte.mask.layers[0].splines[0].points:
        point.weight = 0.1
    edit.nst.mask_strip = matte.name
    assert stylize() == {"FINISHED"}
    pattern = json.loads(record.read_text())["settings"]["mask"]
    width, height, red = pixels(sorted(glob.glob(pattern.replace("######", "*")))[0])
    row = red[height // 2][: width // 2]  # from the left edge to the middle: black, the feather, white
    ramp = [v for v in row if 0.02 < v < 0.98]
    assert row[0] == 0.0 and row[-1] == 1.0
    assert all(a <= b + 1e-6 for a, b in zip(row, row[1:]))  # rises without a step back
    # a ramp, not an edge: over 0.1 of the frame's width (38 px) minus the antialiasing, many levels of grey
    assert len(ramp) >= 25 and len({round(v, 2) for v in ramp}) >= 20
