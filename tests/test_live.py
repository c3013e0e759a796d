"""nst webcam's live mode (nst_plugin/live/): the frame-dropping capture, styles learnt once and cached, the
live temporal filter, --record, and bad input as one error line. Tiny frames, few steps."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from nst_plugin.cli import app

runner = CliRunner()


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


class FastCamera:
    """A camera that delivers a frame every ``interval`` seconds, forever (BGR, the frame's number in every
    pixel of the first row), and counts its reads."""

    def __init__(self, interval: float = 0.002, shape=(24, 32)):
        self.interval, self.shape, self.count, self.released = interval, shape, 0, False
        from nst_plugin.builtin.keyframes.guides import pattern

        self.pattern = np.clip(pattern(*shape, 6.0, 0), 0, 255).astype(np.uint8)  # smooth: a codec keeps it

    def read(self):
        time.sleep(self.interval)
        self.count += 1
        frame = self.pattern.copy()
        frame[0, :, :] = self.count % 256
        return True, frame

    def release(self):
        self.released = True


def test_capture_hands_out_the_newest_frame_and_drops_the_rest():
    """A camera 10x faster than the consumer: the consumer always gets the newest frame (never a queued one),
    frames in between are dropped, and how far behind a shown frame is stays bounded (it does not grow)."""
    from nst_plugin.live.capture import LatestFrame

    camera = FastCamera(interval=0.002)
    latest = LatestFrame(camera).start()
    taken, lags, last = [], [], 0
    try:
        for _ in range(25):
            frame = latest.newest(last, timeout=2)
            newest_then = latest.produced
            assert frame.number >= newest_then - 1  # the newest (one more may have arrived since)
            assert frame.image[0, 0, 0] == frame.number % 256  # RGB of that very frame
            time.sleep(0.02)  # the stylizer: 10 camera frames' time
            lags.append(latest.produced - frame.number)
            taken.append(frame.number)
            last = frame.number
    finally:
        latest.stop()
    assert camera.released
    assert all(b > a for a, b in zip(taken, taken[1:]))
    assert taken[-1] - taken[0] > 5 * len(taken)  # most frames were dropped, not queued
    bound = 0.02 / 0.002 * 2 + 2  # the frames one stylization lasts, twice, and slack for a busy machine
    assert max(lags) <= bound and np.mean(lags[-10:]) <= np.mean(lags[:10]) + 4  # bounded, not growing


def test_a_video_file_as_camera_is_paced_at_its_own_rate(tmp_path):
    import cv2

    from nst_plugin.live.capture import LatestFrame, open_camera

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (32, 24))
    for i in range(10):
        writer.write(np.full((24, 32, 3), i * 20, np.uint8))
    writer.release()
    capture, fps = open_camera(str(path))
    assert fps == pytest.approx(20.0)
    latest = LatestFrame(capture, fps).start()
    started, numbers = time.perf_counter(), []
    while (frame := latest.newest(numbers[-1] if numbers else 0, timeout=2)) is not None:
        numbers.append(frame.number)
    elapsed = time.perf_counter() - started
    latest.stop()
    assert numbers == list(range(1, 11))  # a fast consumer sees every frame
    assert 0.4 <= elapsed < 1.5  # 10 frames at 20 fps: 9 intervals of 0.05 s, not read as fast as possible


# -- styles: learnt once, cached, switched with keys ----------------------------------------------------------

def _config(**more):
    from nst_plugin.api import prepare

    config, _, _ = prepare([np.zeros((8, 8, 3), np.uint8)], engine="keyframes", size=48, iterations=3, weights="hed",
                           options={"keyframes.size": 32, "keyframes.steps": 4, "keyframes.patch": 16,
                                   "keyframes.batch": 2, **more})
    return config


class ScriptedScreen:
    """Off-screen, pressing keys by what the last frame showed: ``script`` is a list of ((style, stage), key):
    the key is pressed once the shown style reaches that stage."""

    closed = False

    def __init__(self, script):
        self.script, self.last, self.count = list(script), None, 0

    def show(self, picture):
        self.count += 1
        if self.script and self.last == self.script[0][0]:
            return ord(self.script.pop(0)[1])
        return 0xFF

    def close(self):
        pass


def _run(tmp_path, screen, styles, **kwargs):
    from nst_plugin.live.cache import NetworkCache
    from nst_plugin.live.capture import LatestFrame
    from nst_plugin.live.session import run_live
    from nst_plugin.plugins import get_host

    events = []

    def report(event):
        events.append(event)
        if event["event"] == "frame":
            screen.last = (event["style"], event["stage"])

    camera = LatestFrame(FastCamera(interval=0.02, shape=(36, 48))).start()
    run = run_live(camera, styles, _config(), get_host().run_context(), screen, cache=NetworkCache(tmp_path / "cache"),
                   report=report, **kwargs)
    return run, events


def test_style_switching_trains_each_style_once_and_the_next_run_starts_from_the_cache(tmp_path, style_rgb, fish_rgb):
    styles = [("starry", style_rgb), ("fish", fish_rgb)]
    screen = ScriptedScreen([((1, "live"), "2"), ((2, "live"), "1"), ((1, "live"), "9"), ((1, "live"), "q")])
    run, events = _run(tmp_path, screen, styles)
    assert run.quit and not screen.script  # every key pressed: style 1 live, 2 live, back to 1, 9 (no style), q
    assert [s["trainings"] for s in run.styles] == [1, 1]  # switching back to style 1 did not train it again
    assert [e["style"] for e in events if e["event"] == "style"] == [2, 1]  # 9: no such style, ignored
    stages = [(e["style"], e["stage"]) for e in events if e["event"] == "frame"]
    assert stages[0] == (1, "palette") and (2, "live") in stages
    assert len(list((tmp_path / "cache").glob("network_*.weights.h5"))) == 2

    screen = ScriptedScreen([((1, "live"), "2"), ((2, "live"), "q")])
    run, events = _run(tmp_path, screen, styles, max_frames=400)
    assert [s["trainings"] for s in run.styles] == [0, 0]  # both from the cache: no training at all
    assert not any(stage == "learning" for _, stage in run.first_shown) and run.quit


def test_cache_folder_honours_nst_cache_dir_then_xdg(monkeypatch, tmp_path):
    from nst_plugin.live.cache import cache_folder, network_key

    monkeypatch.delenv("NST_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "nst-plugin" / "live"
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_folder() == tmp_path / "mine" / "live"
    style = np.zeros((4, 4, 3), np.uint8)
    assert network_key(style, {"a": 1}) == network_key(style.copy(), {"a": 1})
    assert network_key(style, {"a": 1}) != network_key(style, {"a": 2}) != network_key(style + 1, {"a": 1})


# -- the live filter ------------------------------------------------------------------------------------------

def _textured(shape=(72, 96), shift: int = 0, seed=0):
    """A smooth random texture, ``shift`` pixels to the left (whole pixels: no interpolation blur of its own)."""
    from nst_plugin.builtin.keyframes.guides import pattern

    big = pattern(shape[0] + 80, shape[1] + 80, 6.0, seed)
    return big[40:40 + shape[0], 40 + shift:40 + shift + shape[1]]


def _flickering_stylizer(source):
    """A stylizer that amplifies the camera's noise threefold, as a network does: flicker on a still scene."""
    return np.clip((source - 127.5) * 3.0 + 127.5, 0, 255)


def _ewarp(frames, sources):
    from nst_plugin.flow import warping_error

    return float(np.mean([warping_error(frames[t], frames[t + 1], sources[t], sources[t + 1])
                          for t in range(len(frames) - 1)]))


@pytest.mark.parametrize("shift", [0, 2])  # a still scene, and one panning 2 px a frame
def test_live_filter_keeps_a_still_textured_scene_still_and_follows_motion(shift):
    from nst_plugin.live.filter import LiveFilter

    rng = np.random.default_rng(1)
    clean = [_textured(shift=shift * t) for t in range(12)]
    sources = [np.clip(c + rng.normal(0, 2.0, c.shape), 0, 255).astype(np.uint8) for c in clean]  # sensor noise
    raw = [_flickering_stylizer(s.astype(np.float32)) for s in sources]
    live = LiveFilter()
    filtered = [live(s, r) for s, r in zip(sources, raw)]
    source, unfiltered, kept = _ewarp(sources, sources), _ewarp(raw, sources), _ewarp(filtered, sources)
    assert unfiltered > 4 * source  # the stylizer flickers
    if shift == 0:
        assert kept <= 2 * source  # still: the filter takes it back to the camera's own level
    else:
        assert kept < 0.65 * unfiltered  # panning: less flicker (measured 2.9x the source's, raw 5.3x)
    truth = [_flickering_stylizer(c) for c in clean]  # what a noise-free camera would give: motion followed
    error = lambda frames: np.mean([np.abs(f - t)[8:-8, 8:-8].mean() for f, t in zip(frames[4:], truth[4:])])  # noqa: E731
    assert error(filtered) < error(raw)  # closer to the picture, not dragged behind it


def test_strokes_follow_the_picture_and_are_not_carried_onto_another_scene():
    """The keyframe's strokes move with a panning picture (its texture lands where the picture went); a
    keyframe of another scene (a cached network met elsewhere) carries nothing."""
    from nst_plugin.builtin.keyframes.transport import carry
    from nst_plugin.live.filter import LiveFilter
    from nst_plugin.live.strokes import StrokeTrack

    frames = [_textured(shift=2 * t).astype(np.uint8) for t in range(6)]
    strokes = _textured(seed=7)  # the keyframe's stylized picture: another texture, aligned with frame 0
    track, live = StrokeTrack(frames[0], strokes, sigma=3.0), LiveFilter()
    for t, frame in enumerate(frames):
        live(frame, frame.astype(np.float32))
        track.start(frame) if t == 0 else track.step(live.backward, live.trusted)
    carried = carry(track.texture, track.offset)[8:-8, 8:-20]
    moved = _textured(shift=10, seed=7)[8:-8, 8:-20]  # where the picture went in 5 frames of 2 px
    assert np.abs(carried - moved).mean() < 0.2 * np.abs(strokes[8:-8, 8:-20] - moved).mean()
    assert track.trust[8:-8, 8:-20].mean() > 0.9

    elsewhere = StrokeTrack(_textured(seed=3).astype(np.uint8), strokes, sigma=3.0)
    elsewhere.start(frames[0])
    assert elsewhere.trust.mean() < 0.2


# -- --record -----------------------------------------------------------------------------------------------

def test_record_writes_the_frames_shown_at_the_times_they_were_shown(tmp_path, style_rgb):
    import av

    from nst_plugin.live.display import Offscreen

    shown = []
    run, events = _run(tmp_path, Offscreen(keys=[(12, "q")]), [("starry", style_rgb)], record=tmp_path / "out.mp4",
                       on_frame=lambda frame, image, stage: shown.append(image.copy()))
    times = [e["at"] for e in events if e["event"] == "frame"]
    assert run.frames == 12 and run.recorded["frames"] == 12
    with av.open(str(tmp_path / "out.mp4")) as container:
        decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    assert len(decoded) == len(shown) == 12
    for (_, image), want in zip(decoded, shown):
        h, w = image.shape[:2]
        assert np.abs(image.astype(np.float32) - want[:h, :w]).mean() < 6  # the same pictures (a lossy codec)
    wall = [t - times[0] for t in times]
    assert max(abs(p - w) for (p, _), w in zip(decoded, wall)) < 0.05  # each at the time it was shown
    assert not list(tmp_path.glob(".out.*"))  # no temporary file left


# -- the command ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["-s", "missing.jpg"], "style image 'missing.jpg' does not exist"),
    (["--camera", "no_such_clip.mp4"], "video 'no_such_clip.mp4' cannot be opened"),
    (["--option", "keyframes.stepz=3"], "stepz"),
    (["--record", "out.txt"], "--record"),
])
def test_bad_input_is_one_error_line_before_any_long_work(samples, tmp_path, args, message):
    style = [] if "-s" in args else ["-s", samples / "starry_night.jpg"]
    started = time.perf_counter()
    result = nst("webcam", *style, "--camera", samples / "street.avi", "--no-window", *args)
    assert result.exit_code != 0
    assert len(error_lines(result)) == 1 and message in error_lines(result)[0], result.stderr
    assert time.perf_counter() - started < 20  # refused before a keyframe or a network is made
    assert "frames in" not in result.stdout


def test_no_display_is_one_error_line(samples, monkeypatch):
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is Linux's (DISPLAY / WAYLAND_DISPLAY)")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for engine in ("keyframes", "lbfgs"):
        result = nst("webcam", "-s", samples / "starry_night.jpg", "--camera", samples / "street.avi", "--engine", engine)
        assert result.exit_code != 0 and error_lines(result) == [
            "error: no display to show the window on (DISPLAY is not set): use --no-window"], result.stderr


def test_ten_styles_are_refused(samples):
    result = nst("webcam", *["-s", samples / "starry_night.jpg"] * 10, "--camera", samples / "street.avi", "--no-window")
    assert result.exit_code != 0 and error_lines(result) == ["error: 10 styles given: keys 1-9 switch between at most 9"]


def test_webcam_help_names_the_live_options():
    result = nst("webcam", "--help")
    assert result.exit_code == 0 and "--record" in result.stdout and "1-9" in result.stdout
