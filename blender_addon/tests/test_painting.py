"""Painted keyframes from Blender (issue 27): Edit Keyframe writes the frame under the playhead to a PNG next
to the .blend (a source strip's own frame, rendered by Blender; a result strip's keyframe or frame) and never
replaces a painting; Use Painted Keyframe stores the painting on the result strip and resumes it with the
painting sent to the engine; an engine whose listing takes no paintings is refused in one line."""

import json
import subprocess
from pathlib import Path

import bpy
import pytest

from conftest import ENGINE_PYTHON, SAMPLES

PAINTED = "nst/painted/street/keyframe_{:06d}.png"


def stylize(**kwargs):
    return bpy.ops.sequencer.nst_stylize(**kwargs)


def source_distances(picture: Path, frames=range(1, 8)) -> dict:
    """{movie frame: mean absolute difference to ``picture``}, read by the engine's OpenCV (not Blender's)."""
    code = ("import sys, json, cv2, numpy as np\n"
            "p = cv2.imread(sys.argv[1]).astype(np.float32)\n"
            "cap = cv2.VideoCapture(sys.argv[2]); out = {}\n"
            f"for i in range(1, {max(frames) + 1}):\n"
            "    ok, f = cap.read()\n"
            "    out[i] = float(np.abs(f.astype(np.float32) - p).mean()) if ok and f.shape == p.shape else None\n"
            "print(json.dumps(out))")
    done = subprocess.run([str(ENGINE_PYTHON), "-c", code, str(picture), str(SAMPLES / "street.avi")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {int(k): v for k, v in json.loads(done.stdout).items()}


def test_edit_keyframe_on_a_source_strip_paints_its_frame_and_leaves_the_scene_as_it_was(edit, tmp_path):
    scene = edit
    scene.frame_set(13)  # the strip shows the movie's frame 4 there (timeline 12-14: frames 3-5)
    render = scene.render
    before = (render.resolution_x, render.resolution_y, render.filepath, scene.view_settings.view_transform)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    painting = tmp_path / PAINTED.format(4)
    assert painting.is_file()
    distances = source_distances(painting)
    assert min(distances, key=lambda i: distances[i] if distances[i] is not None else 1e9) == 4, distances
    assert distances[4] < 3.0, distances  # the frame's own colours, not a view transform's
    assert (render.resolution_x, render.resolution_y, render.filepath, scene.view_settings.view_transform) == before
    assert scene.frame_current == 13
    assert not any(strip.mute for strip in scene.sequence_editor.strips_all)  # the title strip shows again
    assert any(Path(bpy.path.abspath(image.filepath)) == painting for image in bpy.data.images)  # loaded to paint


def test_edit_keyframe_never_replaces_a_painting(edit, tmp_path):
    edit.frame_set(12)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    painting = tmp_path / PAINTED.format(3)
    painted = painting.read_bytes()[:-16] + bytes(16)  # the artist's strokes, whatever they are
    painting.write_bytes(painted)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    assert painting.read_bytes() == painted


def test_edit_keyframe_needs_a_saved_blend_and_the_playhead_on_the_strip(edit, tmp_path):
    edit.frame_set(30)
    with pytest.raises(RuntimeError, match="the playhead \\(frame 30\\) is not over strip 'street'"):
        bpy.ops.sequencer.nst_edit_keyframe()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    editor.active_strip = editor.strips.new_movie(name="street", filepath=str(SAMPLES / "street.avi"), channel=1,
                                                  frame_start=1)
    scene.frame_set(2)
    with pytest.raises(RuntimeError, match="save the .blend first"):
        bpy.ops.sequencer.nst_edit_keyframe()
    assert not list(tmp_path.glob("nst/painted/**/*.png"))


@pytest.fixture
def result(edit, prefs, fake_python, monkeypatch, tmp_path):
    """A result strip made by the stand-in engine (frames 3-5 at timeline 12-14), its settings file recorded."""
    monkeypatch.setenv("NST_FAKE_RECORD", str(tmp_path / "record.json"))
    prefs.python_path = fake_python
    assert bpy.ops.nst.check_engine() == {"FINISHED"}  # the listing: the keyframe engine takes paintings
    edit.nst.choose_engine("keyframes")
    assert stylize() == {"FINISHED"}
    strip = edit.sequence_editor.strips["NST starry_night"]
    edit.sequence_editor.active_strip = strip
    return strip


def png(path, size, colour):
    """A PNG of ``size`` (width, height) in one colour, written by Blender."""
    image = bpy.data.images.new("picture", *size)
    image.pixels[:] = list(colour) * (size[0] * size[1])
    image.filepath_raw, image.file_format = str(path), "PNG"
    image.save()
    bpy.data.images.remove(image)
    return Path(path).read_bytes()


def test_edit_keyframe_starts_from_the_engines_keyframe_at_the_outputs_size_else_the_stylized_frame(result, edit, tmp_path):
    output = Path(bpy.path.abspath(json.loads(result["nst"])["output"]))
    frame = bpy.data.images.load(str(output / "frame_000004.png"))
    size = tuple(frame.size)
    bpy.data.images.remove(frame)
    kept = png(output / "keyframe_000004.png", size, (0.2, 0.4, 0.6, 1.0))  # kept at the output's size
    edit.frame_set(13)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    assert (tmp_path / PAINTED.format(4)).read_bytes() == kept
    # a keyframe kept smaller than the output (the default --keyframe-size): the stylized frame, at full size
    png(output / "keyframe_000005.png", (size[0] // 2, size[1] // 2), (0.2, 0.4, 0.6, 1.0))
    edit.frame_set(14)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    assert (tmp_path / PAINTED.format(5)).read_bytes() == (output / "frame_000005.png").read_bytes()
    edit.frame_set(12)  # no keyframe kept there: the stylized frame
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    assert (tmp_path / PAINTED.format(3)).read_bytes() == (output / "frame_000003.png").read_bytes()


def test_use_painted_keyframe_resumes_the_strip_with_the_paintings(result, edit, tmp_path):
    record = tmp_path / "record.json"
    edit.frame_set(13)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    painting = tmp_path / PAINTED.format(4)
    image = next(i for i in bpy.data.images if Path(bpy.path.abspath(i.filepath)) == painting)
    image.pixels[0:4] = (1.0, 0.0, 0.0, 1.0)  # a stroke painted in Blender, not saved yet
    assert image.is_dirty
    before = painting.read_bytes()
    assert bpy.ops.sequencer.nst_use_painted_keyframe() == {"FINISHED"}
    assert painting.read_bytes() != before and not image.is_dirty  # saved before the engine reads it
    seen = json.loads(record.read_text())
    assert seen["settings"]["keyframe_image"] == [f"4={painting}"] and "--overwrite" not in seen["argv"]
    assert json.loads(result["nst"])["settings"]["keyframe_image"] == [f"4={painting}"]

    other = tmp_path / "retouched.png"  # any image file, for the frame under the playhead
    other.write_bytes(painting.read_bytes())
    edit.frame_set(12)
    assert bpy.ops.sequencer.nst_use_painted_keyframe(filepath=str(other)) == {"FINISHED"}
    assert json.loads(record.read_text())["settings"]["keyframe_image"] == [f"3={other}", f"4={painting}"]
    assert stylize(action="RERUN") == {"FINISHED"}  # a re-run with changes keeps the strip's paintings
    assert json.loads(record.read_text())["settings"]["keyframe_image"] == [f"3={other}", f"4={painting}"]


def test_an_engine_that_takes_no_paintings_is_refused_before_anything_runs(result, edit, tmp_path):
    record = tmp_path / "record.json"
    record.unlink()
    edit.frame_set(13)
    with pytest.raises(RuntimeError, match="missing.png does not exist"):
        bpy.ops.sequencer.nst_use_painted_keyframe(filepath=str(tmp_path / "missing.png"))
    plan = json.loads(result["nst"])
    plan["settings"]["engine"] = "lbfgs"  # its listing has no --keyframe-image option
    result["nst"] = json.dumps(plan)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    with pytest.raises(RuntimeError, match="the Frame by frame engine takes no painted keyframes"):
        bpy.ops.sequencer.nst_use_painted_keyframe()
    assert not record.exists() and "keyframe_image" not in json.loads(result["nst"])["settings"]


def test_a_painting_becomes_its_frame_with_the_real_engine(edit, prefs, tmp_path):
    """The whole way with the real engine: the keyframe engine's result strip, a frame painted in Blender,
    Use Painted Keyframe: the engine re-makes the shot and the painted frame is the painting."""
    from conftest import ENGINE_PYTHON

    prefs.python_path = str(ENGINE_PYTHON)
    assert bpy.ops.nst.check_engine() == {"FINISHED"}
    settings = edit.nst
    settings.choose_engine("keyframes")
    for item in settings.option_fields():  # a tiny run
        if item.key in ("steps", "painted_steps"):
            item.value = "10"
    settings.size = 48
    assert stylize() == {"FINISHED"}
    result = edit.sequence_editor.strips["NST starry_night"]
    edit.sequence_editor.active_strip = result
    edit.frame_set(13)
    assert bpy.ops.sequencer.nst_edit_keyframe() == {"FINISHED"}
    painting = tmp_path / PAINTED.format(4)
    image = next(i for i in bpy.data.images if Path(bpy.path.abspath(i.filepath)) == painting)
    width, height = image.size
    image.pixels[:] = [value for y in range(height) for x in range(width)  # the painter's blocks of colour
                       for value in ((1.0, 0.2, 0.1, 1.0) if (x // 8 + y // 8) % 2 else (0.1, 0.3, 0.9, 1.0))]
    assert bpy.ops.sequencer.nst_use_painted_keyframe() == {"FINISHED"}
    run = json.loads(result["nst_last_run"])
    assert (run["status"], run["written"]) == ("ok", 3), run  # the painting's shot, made again
    output = Path(bpy.path.abspath(json.loads(result["nst"])["output"]))
    made = bpy.data.images.load(str(output / "frame_000004.png"))
    made.reload()
    shown = [round(v * 255) for v in made.pixels[:]]
    painted = [round(v * 255) for v in bpy.data.images.load(str(painting), check_existing=True).pixels[:]]
    assert made.size[:] == image.size[:] and max(abs(a - b) for a, b in zip(shown, painted)) <= 1
