"""Preview Frame in a real (headless) Blender: the frame under the playhead of the active strip, stylized
small and fast by the engine in its own process, loaded as the image "NST Preview" that the panel shows;
its files stay in the add-on's private folder."""

import json
import time
from pathlib import Path

import bpy
import pytest
from conftest import ENGINE_PYTHON, draw_panel


def preview_folder():
    from blender_addon import preferences

    return Path(preferences.private_folder("preview"))


def test_preview_frame_with_the_fake_engine(edit, listed, monkeypatch, tmp_path):
    record = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(record))
    edit.nst.engine, edit.nst.resolution = "keyframes", "STRIP"  # a preview is one frame of the default engine
    edit.frame_current = 13  # the strip starts at 10 with 2 frames trimmed: the movie's frame 4
    assert bpy.ops.sequencer.nst_preview() == {"FINISHED"}
    seen = json.loads(record.read_text())
    argv = seen["argv"]
    assert argv[:4] == ["-m", "nst_plugin", "video", str(Path(edit.sequence_editor.strips["street"].filepath))]
    assert argv[argv.index("--frames") + 1] == "4-4" and "--overwrite" in argv
    assert "engine" not in seen["settings"] and seen["settings"]["size"] == 192  # no engine named: one frame
    assert seen["settings"]["iterations"] == 2  # the panel's, already below the preview's 10
    folder = preview_folder()
    out = Path(argv[argv.index("--output") + 1])
    assert folder in out.parents and not out.exists()  # the run's folder is gone
    assert not Path(argv[argv.index("--settings") + 1]).exists()
    image = bpy.data.images["NST Preview"]
    assert Path(bpy.path.abspath(image.filepath)) == folder / "nst_preview.png"
    assert tuple(image.size) == (8, 6)  # the fake engine's frame
    assert not (tmp_path / "nst").exists()  # nothing next to the .blend or the media
    log = draw_panel()
    assert "Frame 13, 8x6 px" in log and any(line.startswith("icon ") for line in log)
    assert "Fast: keyframes learnt by a small network, seconds per frame" in log  # the engine's trade-off

    edit.frame_current = 14  # a second preview replaces the first, in the same image
    assert bpy.ops.sequencer.nst_preview() == {"FINISHED"}
    assert bpy.data.images["NST Preview"] == image and len([i for i in bpy.data.images if i.name.startswith("NST Preview")]) == 1
    assert "Frame 14, 8x6 px" in draw_panel()


def test_preview_frame_errors_in_one_line(edit, prefs, fake_python, monkeypatch):
    prefs.python_path = fake_python
    edit.frame_current = 40
    with pytest.raises(RuntimeError, match=r"^Error: the playhead \(frame 40\) is not over strip 'street' "
                                           r"\(frames 12-14\): move it onto the strip\n$"):
        bpy.ops.sequencer.nst_preview()
    edit.frame_current = 12
    monkeypatch.setenv("NST_FAKE_MODE", "crash")
    with pytest.raises(RuntimeError, match=r"^Error: engine failed \(exit status 1\): RuntimeError: out of memory"):
        bpy.ops.sequencer.nst_preview()
    assert "NST Preview" not in bpy.data.images
    assert any("out of memory" in line for line in draw_panel())
    edit.sequence_editor.active_strip = edit.sequence_editor.strips["title"]
    with pytest.raises(RuntimeError, match="cannot stylize a color strip"):
        bpy.ops.sequencer.nst_preview()


def test_preview_follows_a_timer_and_cancels(edit, prefs, fake_python, monkeypatch):
    """The interactive path: the preview runs in the background, a timer polls it, the panel shows its
    step; Cancel stops it."""
    from blender_addon import preview

    prefs.python_path = fake_python
    monkeypatch.setenv("NST_FAKE_MODE", "busy")
    edit.frame_current = 12
    running = preview.start_preview(bpy.context)
    with pytest.raises(preview.PlanError, match="a preview is already running"):
        preview.start_preview(bpy.context)
    deadline = time.monotonic() + 30
    while running.progress.step is None and time.monotonic() < deadline:
        assert preview.preview_tick() == 0.25
        time.sleep(0.05)
    assert "progress: previewing frame 12: step 5/10" in draw_panel()
    assert bpy.ops.sequencer.nst_preview_cancel() == {"FINISHED"}
    while preview.preview_tick() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert preview.PREVIEW is None and preview.LAST["message"] == "preview cancelled"
    assert "preview cancelled" in draw_panel() and not list(preview_folder().glob("run-*"))


@pytest.mark.skipif(not ENGINE_PYTHON.exists(), reason="the engine venv .venv is missing (make test creates it)")
def test_preview_frame_with_the_real_engine(edit, prefs):
    prefs.python_path = str(ENGINE_PYTHON)
    edit.frame_current = 13
    assert bpy.ops.sequencer.nst_preview() == {"FINISHED"}
    image = bpy.data.images["NST Preview"]
    assert tuple(image.size) == (32, 24)  # street.avi is 384x288; the panel's size 32
    assert image.pixels[:] and max(image.pixels[:]) > 0
