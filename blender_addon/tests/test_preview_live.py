"""Live Preview in a real (headless) Blender with the real engine (``.venv``'s ``nst preview-server``): the
toggle starts a server for the active strip, each frame change asks it for the playhead's frame, the timer
(ticked by hand here: a headless Blender runs no timers) loads each answer into "NST Preview"; a change of
settings starts a new server; the toggle off, or the add-on disabled, stops it. Errors reach the panel."""

import time
from pathlib import Path

import addon_utils
import bpy
import pytest
from conftest import ADDON, ENGINE_PYTHON, draw_panel

WAIT = 240  # seconds: TensorFlow's import, the keyframe and the network's training on a busy machine


def tick_until(done, timeout=WAIT):
    from blender_addon import preview_live

    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, preview_live.status()
        preview_live.tick()
        time.sleep(0.02)


def shown_frame():
    from blender_addon import preview

    return preview.LAST.get("frame")


@pytest.mark.skipif(not ENGINE_PYTHON.exists(), reason="the engine venv .venv is missing (make test creates it)")
def test_live_preview_follows_the_playhead_with_the_real_engine(edit, prefs, monkeypatch, tmp_path):
    from blender_addon import preview, preview_live

    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "cache"))  # the engine's network cache: not the user's
    monkeypatch.setattr(preview, "LAST", {})  # not the frame an earlier test's Preview Frame showed
    prefs.python_path = str(ENGINE_PYTHON)
    edit.frame_set(13)  # the strip starts at 10 with 2 frames trimmed: the movie's frame 4
    edit.nst.live_preview = True
    server = preview_live.session().server
    assert server.sent == 4 and server.argv[2:4] == ["nst_plugin", "preview-server"]
    tick_until(lambda: shown_frame() == 13)  # at once in the style's colours, while the network learns
    assert "(palette)" in preview_live.status()
    tick_until(lambda: "network learnt" in preview_live.status())  # then again, through the network
    image = bpy.data.images[preview.IMAGE_NAME]
    assert tuple(image.size) == (32, 24)  # street.avi is 384x288; the panel's size 32
    assert shown_frame() == 13 and list((tmp_path / "cache" / "live").glob("network_*.weights.h5"))
    first = list(image.pixels[:])
    assert max(first) > 0
    assert any(line.startswith("Live: frame 4 in") for line in draw_panel())

    started = time.monotonic()
    edit.frame_set(14)  # the frame change handler asks for the movie's frame 5
    assert server.sent == 5
    tick_until(lambda: shown_frame() == 14)
    assert preview_live.status().startswith("frame 5 in ")  # live: no stage named
    assert time.monotonic() - started < 20  # the network only (the benchmark measures it: docs/benchmarks-live.md)
    assert list(bpy.data.images[preview.IMAGE_NAME].pixels[:]) != first
    assert preview_live.session().server is server  # the same server answered
    edit.sequence_editor.active_strip = None  # nothing selected for a moment: the server waits
    preview_live.tick()
    assert preview_live.session().server is server and server.running and "no active strip" in preview_live.status()
    edit.sequence_editor.active_strip = edit.sequence_editor.strips["street"]

    edit.nst.strength = 0.8  # other settings: a new server (the old one stopped)
    tick_until(lambda: preview_live.session().server is not server)
    assert server.returncode is not None
    run_dir = Path(preview_live.session().run_dir)
    assert run_dir.is_dir()
    again = preview_live.session().server
    edit.nst.live_preview = False  # off: stopped, its files gone
    assert preview_live.session() is None and again.returncode is not None and not run_dir.exists()


def test_errors_reach_the_panel_and_nothing_is_left_running(edit, prefs, fake_python, monkeypatch):
    from blender_addon import preview_live

    edit.sequence_editor.active_strip = edit.sequence_editor.strips["title"]
    edit.nst.live_preview = True
    assert preview_live.failed() and "cannot stylize a color strip" in preview_live.status()
    assert any("cannot stylize a color strip" in line for line in draw_panel())

    edit.sequence_editor.active_strip = edit.sequence_editor.strips["street"]
    prefs.python_path = fake_python
    monkeypatch.setenv("NST_FAKE_MODE", "error")  # an engine that fails (one without preview-server, say)
    edit.frame_set(12)
    server = preview_live.session().server
    tick_until(lambda: preview_live.failed(), timeout=30)
    assert server.returncode is not None and "Live: " + preview_live.status() in draw_panel()

    monkeypatch.setenv("NST_FAKE_MODE", "hang")  # one that keeps running: the add-on disabled stops it
    edit.nst.strength = 0.3
    preview_live.tick()
    server = preview_live.session().server
    assert server.running and not preview_live.failed()
    addon_utils.disable(ADDON, default_set=True)
    assert server.returncode is not None and not preview_live.session()
    addon_utils.enable(ADDON, default_set=True)  # (the fixture disables it again)
