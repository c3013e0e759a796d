"""Video: sources, flow, temporal loss, the resumable output folder, the jsonl stream and bad inputs.

Real runs on tiny frames (48 px, a few iterations) of samples/street.avi or frames written here.
"""

import json
import os
import time

import numpy as np
import pytest
from typer.testing import CliRunner

import nst_plugin
from nst_plugin.cli import app
from nst_plugin.images import load_image, resize, save_image
from nst_plugin.testing import tiny_image

runner = CliRunner()
TINY = ["--size", "48", "--iterations", "3", "--warm-iterations", "2"]


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


def events_of(result):
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def street_frames(samples, count, size=64):
    import cv2

    capture = cv2.VideoCapture(str(samples / "street.avi"))
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        assert ok
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        frames.append(resize(rgb, round(rgb.shape[0] * size / rgb.shape[1]), size))
    capture.release()
    return frames


def ctrl_c_as_typed():
    """For a child process before it starts (``preexec_fn``): Ctrl-C's default disposition, as a process
    started from a terminal has it. A suite run in the background (``make test &``) hands its children SIGINT
    ignored, and a Python started so never turns it into KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_sequence(folder, frames, pattern="{:04d}.png", start=1):
    folder.mkdir(parents=True, exist_ok=True)
    for n, frame in enumerate(frames, start=start):
        save_image(folder / pattern.format(n), frame)
    return folder


# -- sources (no TensorFlow) ------------------------------------------------------------------------------

def test_video_source_range_step_and_fps(samples):
    from nst_plugin.video import open_source

    source = open_source(samples / "street.avi", frames="3-9", step=3)
    assert (source.kind, source.count, source.width, source.height, source.fps) == ("video", 40, 384, 288, 10.0)
    assert source.indices == [3, 6, 9]
    got = [(i, f.shape) for i, f in source]
    assert got == [(3, (288, 384, 3)), (6, (288, 384, 3)), (9, (288, 384, 3))]


def test_image_sequences_pattern_folder_glob_16bit_and_tiff(tmp_path, samples):
    import cv2

    from nst_plugin.video import open_source

    frames = street_frames(samples, 3, size=32)
    folder = tmp_path / "renders"
    write_sequence(folder, frames[:2], start=7)  # 0007.png, 0008.png
    deep = (frames[2].astype(np.uint16) * 257)[:, :, ::-1]
    cv2.imwrite(str(folder / "0009.png"), deep)  # 16-bit PNG
    cv2.imwrite(str(folder / "0010.tif"), frames[0][:, :, ::-1])
    pattern = open_source(folder / "####.png")
    assert [i for i, _ in pattern] == [7, 8, 9]  # numbers from the file names
    sixteen = dict(pattern)[9]
    assert sixteen.dtype == np.uint8 and np.abs(sixteen.astype(int) - frames[2]).max() <= 1
    assert open_source(folder / "####.png", frames="8-").indices == [8, 9]
    assert [i for i, _ in open_source(folder)] == [1, 2, 3, 4]  # a folder counts from 1, tif included
    assert [i for i, _ in open_source(str(folder / "*.tif"))] == [1]


def test_corrupt_frame_in_the_middle_is_a_warning_with_its_index(tmp_path, samples):
    from nst_plugin.video import open_source

    folder = write_sequence(tmp_path / "seq", street_frames(samples, 3, size=32))
    (folder / "0002.png").write_bytes(b"not a png")
    warnings = []
    source = open_source(folder, on_warning=warnings.append)
    assert [i for i, _ in source] == [1, 3]
    assert source.unreadable == [2] and warnings[0]["index"] == 2 and "0002.png" in warnings[0]["message"]


def test_corrupt_frame_in_the_middle_of_a_video_file(tmp_path):
    import cv2

    from nst_plugin.video import open_source

    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), 40 * i + 20, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    chunks = [i for i in range(len(data) - 4) if data[i:i + 4] == b"00dc"]
    start = chunks[2] + 8
    data[start:start + 200] = bytes(200)  # wipe the JPEG header of one frame in the middle
    path.write_bytes(bytes(data))
    warnings = []
    source = open_source(path, on_warning=warnings.append)
    got = {i: int(round(float(f.mean()))) for i, f in source}
    assert len(source.unreadable) == 1 and 1 < source.unreadable[0] < 5
    bad = source.unreadable[0]
    assert sorted(got) == [i for i in range(1, 6) if i != bad]
    assert all(abs(got[i] - (40 * (i - 1) + 20)) <= 3 for i in got)  # the indices stay aligned after the gap
    assert warnings[0]["index"] == bad and f"frame {bad} of 5" in warnings[0]["message"]


def test_shot_cut_detector_on_a_synthetic_cut(samples, fish_rgb):
    from nst_plugin.video import ShotDetector

    street = street_frames(samples, 6, size=64)
    fish = resize(fish_rgb, *street[0].shape[:2])
    shifted = [np.roll(fish, k, axis=1) for k in range(4)]
    detector = ShotDetector()
    cuts = [i for i, frame in enumerate(street + shifted + street[:2]) if detector.is_cut(frame)]
    assert cuts == [6, 10]


# -- flow and the temporal loss ---------------------------------------------------------------------------

def test_a_flow_does_not_depend_on_the_flows_computed_before_it():
    from nst_plugin.flow import flow

    a = tiny_image(36, 48, seed=1)
    first = flow(a, np.roll(a, 2, axis=1))
    for other in (tiny_image(24, 32, seed=5), tiny_image(36, 48, seed=6)):  # other work in the same process
        flow(other, np.roll(other, 3, axis=0))
    assert np.array_equal(flow(a, np.roll(a, 2, axis=1)), first)


def test_flow_warps_a_moving_frame_and_masks_what_it_cannot_see(samples):
    from nst_plugin.flow import temporal_inputs, warping_error

    frame = street_frames(samples, 1, size=96)[0]
    moved = np.ascontiguousarray(np.roll(frame, 3, axis=1))  # the picture moves 3 px right; column 0..2 new
    warped, mask = temporal_inputs(frame, moved, frame)
    inside = mask[:, 8:-8] > 0
    assert inside.mean() > 0.8
    error = np.abs(warped[:, 8:-8] - moved[:, 8:-8].astype(np.float32))[inside].mean()
    assert error < 0.35 * np.abs(frame[:, 8:-8].astype(np.float32) - moved[:, 8:-8]).mean()
    assert warping_error(frame, moved, frame, moved) < 0.3 * float(((frame / 255.0 - moved / 255.0) ** 2).sum(-1).mean())


def test_background_fill_moves_occluded_pixels_with_the_dominant_motion():
    from nst_plugin.flow import temporal_inputs

    rng = np.random.default_rng(0)
    scene = rng.integers(0, 255, (64, 96, 3)).astype(np.uint8)
    import cv2

    scene = cv2.GaussianBlur(scene, (0, 0), 2)
    before, after = scene.copy(), scene.copy()
    after[20:36, 40:56] = before[20:36, 30:46]  # a square moves 10 px right over a static background
    output = rng.integers(0, 255, (64, 96, 3)).astype(np.float32)
    flow_fill, mask = temporal_inputs(before, after, output)
    background, mask2 = temporal_inputs(before, after, output, background_fill=True)
    assert np.array_equal(mask, mask2) and (mask == 0).any()
    occluded = mask == 0
    assert np.array_equal(background[~occluded], flow_fill[~occluded])  # trusted pixels: the flow warp
    # the background hardly moves: occluded pixels take the previous output from (almost) the same place
    assert np.abs(background[occluded] - output[occluded]).mean() < 1.0
    assert np.abs(flow_fill[occluded] - output[occluded]).mean() > 5.0  # the flow drags the square's texture along


@pytest.mark.backends
def test_temporal_loss_is_zero_without_a_previous_frame_and_masks_occlusions():
    from nst_plugin.builtin.losses import TemporalLoss
    from nst_plugin.context import FrameControls, PreviousFrame
    from nst_plugin.gradients import to_tensors
    from nst_plugin.losses import FrameInputs

    term = TemporalLoss(None)
    content = np.zeros((8, 10, 3), np.float32)
    image = to_tensors(np.full((1, 8, 10, 3), 100.0))
    empty = term.frame_targets(FrameInputs(content=content, content_features={}))
    assert float(term.loss(image, {}, to_tensors(empty))) == 0.0
    mask = np.zeros((8, 10), np.float32)
    mask[:4] = 1
    full = term.frame_targets(FrameInputs(content=content, content_features={},
                                          controls=FrameControls(previous=PreviousFrame(np.full((8, 10, 3), 90.0), mask))))
    assert {k: v.shape for k, v in full.items()} == {k: v.shape for k, v in empty.items()}  # no retrace
    assert float(term.loss(image, {}, to_tensors(full))) == pytest.approx(0.5 * 100.0)


# -- the engine ---------------------------------------------------------------------------------------------

@pytest.mark.backends
def test_warm_started_frame_converges_in_fewer_evaluations_than_a_cold_one(samples, style_rgb):
    frames = street_frames(samples, 2, size=64)
    settings = dict(size=48, iterations=60, tolerance=2e-3, warm_iterations=60)

    def run(**more):
        stats = {}
        nst_plugin.stylize_sequence(list(enumerate(frames, start=1)), style_rgb,
                                    lambda i, r: stats.__setitem__(i, r.stats), **settings, **more)
        return stats

    warm = run(loss_weights={"temporal": 0.05})
    cold = run(warm_start=False)
    assert warm[2]["warm"] and not cold[2]["warm"] and warm[2]["init"] == "given"
    assert warm[2]["evaluations"] < 0.6 * cold[2]["evaluations"]
    assert warm[2]["loss"] <= 1.1 * cold[2]["loss"] + 1e-6


@pytest.mark.backends
def test_resume_after_an_interrupted_run_gives_the_same_frames(tmp_path, samples, style_rgb):
    from nst_plugin.api import prepare
    from nst_plugin.video import open_source, stylize_video

    config, styles, _ = prepare([style_rgb], size=48, iterations=3, warm_iterations=2, loss_weights={"temporal": 0.05})
    whole = stylize_video(open_source(samples / "street.avi", frames="1-4"), styles, config, tmp_path / "whole")
    assert whole.written == [1, 2, 3, 4]

    def stop_after_two(event):
        if event["event"] == "frame_done" and event["index"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_video(open_source(samples / "street.avi", frames="1-4"), styles, config, tmp_path / "cut", emit=stop_after_two)
    assert sorted(p.name for p in (tmp_path / "cut").iterdir()) == ["frame_000001.png", "frame_000002.png", "nst_manifest.json"]
    events = []
    resumed = stylize_video(open_source(samples / "street.avi", frames="1-4"), styles, config, tmp_path / "cut",
                            emit=events.append)
    assert resumed.written == [3, 4] and events[0]["resumed"] == 2
    for n in range(1, 5):
        name = f"frame_{n:06d}.png"
        assert np.array_equal(load_image(tmp_path / "whole" / name), load_image(tmp_path / "cut" / name)), name
    manifest = json.loads((tmp_path / "cut" / "nst_manifest.json").read_text())
    assert [manifest["frames"][str(n)]["status"] for n in range(1, 5)] == ["done"] * 4
    assert manifest["settings_hash"] == config.output_fingerprint()
    assert all(manifest["frames"][str(n)]["warm"] for n in (2, 3, 4))
    assert manifest["runtime"]["backend"] == os.environ.get("KERAS_BACKEND", "tensorflow")  # what made the frames


# -- the command --------------------------------------------------------------------------------------------

def test_jsonl_stream_parses_and_matches_the_files_with_a_cut(tmp_path, samples, fish_rgb):
    street = street_frames(samples, 2, size=64)
    fish = resize(fish_rgb, *street[0].shape[:2])
    folder = write_sequence(tmp_path / "seq", street + [fish, np.roll(fish, 2, axis=1)])
    out = tmp_path / "out"
    result = nst("video", folder / "####.png", "-s", samples / "starry_night.jpg", "-o", out, *TINY,
                 "--progress", "jsonl", "--step", "1", "--frames", "1-4")
    assert result.exit_code == 0, result.output
    events = events_of(result)  # every stdout line is one JSON object
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "cut" in kinds
    assert events[0]["total"] == 4 and events[0]["frames"] == [1, 2, 3, 4]
    done = [e for e in events if e["event"] == "frame_done"]
    assert [e["index"] for e in done] == [1, 2, 3, 4]
    assert [e["warm"] for e in done] == [False, True, False, True]  # the cut at frame 3 starts cold
    assert [e["shot"] for e in done] == [0, 0, 1, 1]
    for e in done:
        assert os.path.isfile(e["path"]) and load_image(e["path"]).shape == (36, 48, 3)
        assert e["seconds"] > 0 and np.isfinite(e["loss"])
    on_disk = sorted(p.name for p in out.iterdir())
    assert on_disk == sorted([os.path.basename(e["path"]) for e in done] + ["nst_manifest.json"])
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert {int(k) for k in manifest["frames"]} == {1, 2, 3, 4}
    assert events[-1]["written"] == 4 and events[-1]["cuts"] == [3]


def test_manifest_refuses_other_settings_unless_overwrite(tmp_path, samples):
    out = tmp_path / "out"
    args = ["video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-o", out, "--frames", "1", "-q",
            "--iterations", "2"]
    assert nst(*args, "--size", "48").exit_code == 0
    again = nst(*args, "--size", "48", "--progress", "jsonl")  # same settings: nothing left to do
    assert again.exit_code == 0 and events_of(again)[0]["resumed"] == 1 and events_of(again)[-1]["written"] == 0
    refused = nst(*args, "--size", "40")
    assert refused.exit_code == 2 and len(error_lines(refused)) == 1
    assert "other settings" in refused.stderr and "size 48 -> 40" in refused.stderr and "--overwrite" in refused.stderr
    other_style = nst(*args[:2], "-s", samples / "HappyFish.jpg", *args[4:], "--size", "48")
    assert other_style.exit_code == 2 and "style images" in other_style.stderr
    assert load_image(out / "frame_000001.png").shape == (36, 48, 3)  # untouched
    replaced = nst(*args, "--size", "40", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert load_image(out / "frame_000001.png").shape == (*nst_plugin.make_config(size=40).working_shape(288, 384), 3)


def test_ctrl_c_exits_130_and_the_next_run_resumes(tmp_path, samples, monkeypatch):
    from nst_plugin import video

    out = tmp_path / "out"
    args = ["video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-o", out, "--frames", "1-2", *TINY]
    original = video.OutputFolder.add

    def add_then_interrupt(self, index, image, stats):
        path = original(self, index, image, stats)
        if index == 1:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(video.OutputFolder, "add", add_then_interrupt)
    interrupted = nst(*args, "--progress", "jsonl")
    assert interrupted.exit_code == 130
    assert events_of(interrupted)[-1] == {**events_of(interrupted)[-1], "event": "done", "status": "interrupted"}
    monkeypatch.setattr(video.OutputFolder, "add", original)
    resumed = nst(*args, "--progress", "jsonl")
    assert resumed.exit_code == 0, resumed.output
    events = events_of(resumed)
    assert events[0]["resumed"] == 1 and [e["index"] for e in events if e["event"] == "frame_done"] == [2]


def test_encode_keeps_the_source_fps_and_audio(tmp_path, samples):
    import av

    clip = tmp_path / "clip.mp4"
    frames = street_frames(samples, 6, size=64)
    with av.open(str(clip), "w") as container:
        video = container.add_stream("mpeg4", rate=12)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=22050)
        audio.layout = "mono"
        for frame in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        t = np.arange(22050 // 2) / 22050
        tone = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="fltp", layout="mono")
        tone.sample_rate = 22050
        for packet in audio.encode(tone):
            container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    encoded = tmp_path / "styled.mp4"
    result = nst("video", clip, "-s", samples / "starry_night.jpg", "-o", tmp_path / "out", "--frames", "1-3", *TINY,
                 "--encode", encoded)  # with the progress bar
    assert result.exit_code == 0, result.output
    assert "wrote 3 frames to" in result.stdout and str(encoded) in result.stdout
    with av.open(str(encoded)) as container:
        video = container.streams.video[0]
        assert float(video.average_rate) == pytest.approx(12.0)
        assert sum(1 for _ in container.decode(video=0)) == 3
    with av.open(str(encoded)) as container:
        assert container.streams.audio, "the source's audio track was dropped"
        assert container.streams.audio[0].codec_context.name == "aac"


# -- bad inputs: one clear line and a non-zero exit ---------------------------------------------------------

def _one_error(result, *phrases):
    assert result.exit_code != 0
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


def test_missing_source(tmp_path, samples):
    result = nst("video", tmp_path / "nope.mp4", "-s", samples / "starry_night.jpg", "-o", tmp_path / "out")
    _one_error(result, "does not exist", "nope.mp4")


def test_zero_frame_video(tmp_path, samples):
    import cv2

    empty = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    writer.release()
    result = nst("video", empty, "-s", samples / "starry_night.jpg", "-o", tmp_path / "out")
    _one_error(result, "empty.avi")
    assert "no frames" in result.stderr or "cannot be opened" in result.stderr


def test_unreadable_frame_is_skipped_and_reported(tmp_path, samples):
    folder = write_sequence(tmp_path / "seq", street_frames(samples, 3, size=48))
    (folder / "0002.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    result = nst("video", folder, "-s", samples / "starry_night.jpg", "-o", out, *TINY, "--progress", "jsonl")
    line = _one_error(result, "frame 2", "could not be read")
    assert "the other frames are in" in line
    events = events_of(result)
    assert [e["index"] for e in events if e["event"] == "warning"] == [2]
    assert [e["index"] for e in events if e["event"] == "frame_done"] == [1, 3]
    assert events[-1]["event"] == "error"
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["frames"]["2"]["status"] == "unreadable"


def test_unwritable_output_folder(tmp_path, samples, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.geteuid() == 0:  # root may write anywhere: pretend the folder is read-only
        real_access = os.access
        def access(path, mode, **kw):
            if mode & os.W_OK and str(path).startswith(str(locked)):
                return False
            return real_access(path, mode, **kw)

        monkeypatch.setattr(os, "access", access)
    try:
        result = nst("video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-o", locked, "--frames", "1")
        _one_error(result, "not writable", "locked")
    finally:
        locked.chmod(0o700)


def test_bad_frame_range_and_step(tmp_path, samples):
    base = ["video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-o", tmp_path / "out"]
    _one_error(nst(*base, "--frames", "9-3"), "--frames")
    _one_error(nst(*base, "--frames", "abc"), "--frames")
    _one_error(nst(*base, "--step", "0"), "--step")
    _one_error(nst(*base, "--frames", "50-60"), "40 frames")


# -- webcam -------------------------------------------------------------------------------------------------

class FakeCamera:
    """A stand-in for cv2.VideoCapture(0): a few BGR frames, then nothing. A camera slower than the stylizer:
    with ``shown`` (the pictures shown so far), the next frame comes once the last one was shown."""

    def __init__(self, frames, shown=None):
        self.frames = [np.ascontiguousarray(f[:, :, ::-1]) for f in frames]
        self.released, self.shown, self.delivered = False, shown, 0

    def read(self):
        waited = time.perf_counter()
        while self.shown is not None and len(self.shown) < self.delivered and time.perf_counter() - waited < 30:
            time.sleep(0.005)
        if not self.frames:
            return False, None
        self.delivered += 1
        return True, self.frames.pop(0)

    def release(self):
        self.released = True


def test_webcam_loop_shows_warm_frames_with_an_honest_fps(samples, style_rgb, monkeypatch):
    import cv2

    from nst_plugin.api import prepare
    from nst_plugin.live.sequence import run_webcam

    shown, keys = [], iter([-1, -1, ord("q")])
    monkeypatch.setattr(cv2, "imshow", lambda name, image: shown.append(image.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda name, prop: 1.0)
    monkeypatch.setattr(cv2, "destroyAllWindows", lambda: None)
    monkeypatch.setenv("DISPLAY", ":0")  # the window is faked above
    camera = FakeCamera(street_frames(samples, 5, size=64), shown)
    config, styles, _ = prepare([style_rgb], size=48, iterations=3, warm_iterations=2, loss_weights={"temporal": 0.05})
    events = []
    summary = run_webcam(camera, styles, config, report=events.append)
    assert summary["frames"] == 3 and len(shown) == 3  # q after the third frame
    assert camera.released and shown[0].shape == (72, 96, 3)  # shown at twice the working size
    assert [e["warm"] for e in events] == [False, True, True]
    wall = sum(e["seconds"] for e in events)
    assert 0 < summary["fps"] <= 3 / wall * 1.01  # frames per wall second, stylization included


def test_webcam_command_with_a_video_as_camera(samples):
    result = nst("webcam", "-s", samples / "starry_night.jpg", "--camera", samples / "street.avi", "--max-frames", "2",
                 "--no-window", "--engine", "lbfgs", *TINY)
    assert result.exit_code == 0, result.output
    assert "frame 2:" in result.stderr and "(warm start)" in result.stderr
    assert "2 frames in" in result.stdout and "fps overall" in result.stdout
    missing = nst("webcam", "-s", samples / "starry_night.jpg", "--camera", "7", "--no-window")
    assert missing.exit_code == 2 and error_lines(missing) and "camera 7" in missing.stderr


def test_coarse_to_fine_starts_cold_frames_from_an_upsampled_small_result(samples, style_rgb):
    frames = street_frames(samples, 2, size=64)
    stats = {}
    nst_plugin.stylize_sequence(list(enumerate(frames, start=1)), style_rgb, lambda i, r: stats.__setitem__(i, r.stats),
                                size=64, iterations=3, warm_iterations=2, coarse_to_fine=0.5, warm_start=False)
    assert stats[1]["init"] == "coarse" and stats[2]["init"] == "coarse"  # both cold, both from the coarse pass
    assert stats[1]["size"] == [48, 64] and stats[1]["evaluations"] <= 2 + 2
    with pytest.raises(nst_plugin.UserError, match="coarse-to-fine"):
        nst_plugin.make_config(coarse_to_fine=1.5) and nst_plugin.stylize_sequence([], style_rgb, print, coarse_to_fine=1.5)


def test_video_and_webcam_help_import_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from nst_plugin.cli import app; "
            "r = [CliRunner().invoke(app, [c, '--help']).exit_code for c in ('video', 'webcam')]; "
            "print(r, sorted(m for m in ('tensorflow', 'cv2', 'av', 'scenedetect') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[0, 0] []"


def test_sigint_stops_cleanly_with_130_and_the_rerun_resumes(tmp_path, samples):
    """A real Ctrl-C (SIGINT) to a real process: exit 130, only whole PNGs and the manifest left, resumable."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    command = [sys.executable, "-m", "nst_plugin", "video", str(samples / "street.avi"), "-s",
               str(samples / "starry_night.jpg"), "-o", str(out), "--frames", "1-4", "--size", "48",
               "--iterations", "10", "--cold-start", "--tolerance", "0", "--progress", "jsonl"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=ctrl_c_as_typed)
    lines = []
    # cold frames of 10 iterations: seconds of work after frame 1 (a warm frame stops at its target at once,
    # before a loaded machine's signal arrives)
    for line in process.stdout:
        lines.append(json.loads(line))
        if lines[-1]["event"] == "frame_done":
            process.send_signal(signal.SIGINT)
            break
    rest, stderr = process.communicate(timeout=120)
    lines += [json.loads(line) for line in rest.splitlines() if line.strip()]
    assert process.returncode == 130, stderr
    assert lines[-1]["event"] == "done" and lines[-1]["status"] == "interrupted"
    assert "interrupted" in stderr and "Traceback" not in stderr
    names = sorted(p.name for p in out.iterdir())
    assert "frame_000001.png" in names and "nst_manifest.json" in names
    assert not [n for n in names if n.endswith(".part") or n.startswith(".")]
    for name in names:
        if name.endswith(".png"):
            load_image(out / name)  # whole, decodable files only
    rerun = subprocess.run(command[:-2] + ["--progress", "jsonl"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    events = [json.loads(line) for line in rerun.stdout.splitlines() if line.strip()]
    assert events[0]["resumed"] >= 1 and events[-1]["status"] == "ok"
    assert sorted(p.name for p in out.iterdir()) == [*(f"frame_{i:06d}.png" for i in range(1, 5)), "nst_manifest.json"]


def test_encode_falls_back_to_opencv_without_audio_when_pyav_fails(tmp_path, samples, monkeypatch):
    import cv2

    from nst_plugin import video

    frames = street_frames(samples, 3, size=64)
    paths = []
    for n, frame in enumerate(frames, start=1):
        paths.append(tmp_path / f"frame_{n:06d}.png")
        save_image(paths[-1], frame)

    def broken(*args, **kwargs):
        raise RuntimeError("no FFmpeg here")

    monkeypatch.setattr(video.encode, "_encode_pyav", broken)
    warnings = []
    info = video.encode_video(paths, tmp_path / "out.mp4", 12.0, audio_from=str(samples / "street.avi"), warn=warnings.append)
    assert info["encoder"] == "opencv/mp4v" and info["audio"] is None
    assert len(warnings) == 1 and "without audio" in warnings[0] and "no FFmpeg here" in warnings[0]
    capture = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3 and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    capture.release()
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".mp4") == ["out.mp4"]  # no temporary left
