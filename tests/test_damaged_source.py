"""A damaged source (issue 25, defect 9): a video file cut short (a truncated file), a source that disappears
while a run is under way, a camera that is not there, and --frame-settings frames the run does not make.

A frame the file cuts short is skipped as unreadable (never stylized from the part FFmpeg could decode), the
frames a pass could not read are all named, in ranges, and the final error line says where the other frames
are only when some were written. Tiny real runs (48-64 px, 3 iterations, the offline ``hed`` weights)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst_plugin.images import save_image
from nst_plugin.schedule import FrameSchedule
from nst_plugin.video import FrameSource, open_source
from nst_plugin.video.sources import damaged_frames, quiet_capture, ranges_text

from test_video import _one_error, events_of, nst

TINY = ["--size", "48", "--iterations", "3", "--warm-iterations", "2", "--weights", "hed"]
KEYFRAMES = ["--engine", "keyframes", "--size", "64", "--keyframe-size", "32", "--iterations", "3", "--weights", "hed",
             "--option", "keyframes.steps=10", "--option", "keyframes.patch=24", "--progress", "jsonl"]


def level(i):
    """The grey level of frame ``i`` of the clips written here: each frame is told by its mean."""
    return 20 + 10 * i


def write_avi(path, count, size=(64, 48)):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    rng = np.random.default_rng(0)
    for i in range(1, count + 1):
        noise = rng.integers(-8, 9, (size[1], size[0], 3))  # a JPEG of some size: the cut falls inside one
        writer.write(np.clip(level(i) + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


def cut_inside_frame(path, frame, part=0.8):
    """Truncate the MJPG AVI ``path`` inside frame ``frame``'s data, keeping ``part`` of it (what an interrupted
    copy leaves): its JPEG header is whole, its picture data cut short."""
    data = path.read_bytes()
    movi = data.index(b"movi")  # the frames' chunks follow it (the header names "00dc" too)
    chunks = [i for i in range(movi, len(data) - 4) if data[i:i + 4] == b"00dc"]
    start = chunks[frame - 1]
    size = int.from_bytes(data[start + 4:start + 8], "little")
    path.write_bytes(data[:start + 8 + int(size * part)])
    return path


def manifest_of(folder):
    return json.loads((folder / "nst_manifest.json").read_text())


# -- messages (no TensorFlow) -------------------------------------------------------------------------------

def test_ranges_text_compacts_frame_numbers():
    assert ranges_text([7, 1, 2, 3, 4, 5, 9, 10, 12, 3]) == "1-5, 7, 9-10, 12"
    assert ranges_text([6]) == "6" and ranges_text([]) == ""


# -- a video file cut short ----------------------------------------------------------------------------------

def test_a_frame_the_file_cuts_short_is_unreadable_and_the_frames_after_it_are_named(tmp_path):
    import cv2

    clip = cut_inside_frame(write_avi(tmp_path / "clip.avi", 10), 7)
    assert damaged_frames(clip) == {7}  # its packet ends with the file: PyAV flags it corrupt
    assert damaged_frames(write_avi(tmp_path / "whole.avi", 10)) == set()
    warnings = []
    capture = cv2.VideoCapture(str(clip))
    assert all(capture.grab() for _ in range(7))  # OpenCV gives frame 7 (FFmpeg decodes what there is of it)
    capture.release()
    source = open_source(clip, on_warning=warnings.append)
    assert source.count == 10  # the AVI's header still promises 10 frames
    got = {i: float(f.mean()) for i, f in source}
    assert sorted(got) == [1, 2, 3, 4, 5, 6]  # frame 7 decodes only in part (FFmpeg: "overread"): not given
    assert all(abs(got[i] - level(i)) < 3 for i in got)
    assert sorted(source.unreadable) == [7, 8, 9, 10]
    assert [(w["index"], w["message"]) for w in warnings] == [
        (7, "frame 7 of 10 is damaged (the file ends inside it, so it decodes only in part): skipped"),
        (8, f"stopped reading {clip} after frame 7 (its frames end early): frames 8-10 not read")]
    list(source)  # a second pass reports nothing again
    assert len(warnings) == 2 and sorted(source.unreadable) == [7, 8, 9, 10]
    # cut in its JPEG header, frame 7 is not given at all: the same frames are named
    header_cut = cut_inside_frame(write_avi(tmp_path / "header.avi", 10), 7, part=0.02)
    warnings = []
    source = open_source(header_cut, on_warning=warnings.append)
    assert [i for i, _ in source] == [1, 2, 3, 4, 5, 6] and sorted(source.unreadable) == [7, 8, 9, 10]
    assert [w["message"] for w in warnings] == [f"stopped reading {header_cut} after frame 6 (its frames end early): "
                                                "frames 7-10 not read"]
    # a range that ends before the cut is whole
    before = open_source(clip, frames="2-5")
    assert [i for i, _ in before] == [2, 3, 4, 5] and before.unreadable == []


def test_a_cut_short_h264_file_keeps_its_frame_numbers(tmp_path):
    """H.264 with B-frames, the index at the front (faststart): a failed grab does not use up a frame and the
    decoder drops the cut-short one; the frames after them keep their numbers (their time stamps)."""
    av = pytest.importorskip("av")
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for i in range(1, 21):
            rgb = np.clip(level(i) + rng.integers(-30, 31, (48, 64, 3)), 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.7)])
    damaged = damaged_frames(path)
    source = open_source(path)
    got = {i: float(f.mean()) for i, f in source}
    assert damaged and not damaged & set(got)
    assert all(abs(got[i] - level(i)) < 4 for i in got), {i: round(v) for i, v in got.items()}  # numbers kept
    assert set(got) | set(source.unreadable) == set(range(1, 21)) and not set(got) & set(source.unreadable)


def test_a_source_that_cannot_be_opened_any_more_names_every_frame_in_one_warning():
    class Gone:  # what cv2.VideoCapture gives for a file deleted since the source was opened
        def isOpened(self):
            return False

        def release(self):
            pass

    warnings = []
    source = FrameSource("clip.avi", "video", 10.0, 4, 4, 40, first=3, last=30, capture_factory=Gone,
                         on_warning=warnings.append)
    assert list(source) == [] and source.unreadable == list(range(3, 31))
    assert [w["message"] for w in warnings] == ["clip.avi cannot be read any more (moved, deleted or replaced?): "
                                                "frames 3-30 not read"]


def test_a_decoder_that_gives_up_names_every_frame_after_it():
    class Fails:  # frames 1-4, then nothing
        def __init__(self):
            self.n = 0

        def grab(self):
            self.n += 1
            return self.n <= 4

        def retrieve(self):
            return True, np.full((4, 4, 3), self.n, np.uint8)

        def release(self):
            pass

    warnings = []
    source = FrameSource("clip.avi", "video", 10.0, 4, 4, 40, capture_factory=Fails, on_warning=warnings.append)
    assert [i for i, _ in source] == [1, 2, 3, 4] and source.unreadable == list(range(5, 41))
    assert [w["message"] for w in warnings] == ["stopped reading clip.avi after frame 4 (5 frames in a row could not "
                                                "be decoded): frames 5-40 not read"]


def test_a_cut_short_file_end_to_end_and_resumed(tmp_path, samples):
    clip = cut_inside_frame(write_avi(tmp_path / "clip.avi", 6), 4)
    out = tmp_path / "out"
    run = lambda: nst("video", clip, "-s", samples / "starry_night.jpg", "-o", out, *TINY, "--progress", "jsonl")  # noqa: E731
    first = run()
    line = _one_error(first, "3 frames of", "could not be read and were skipped (frames 4-6); the other frames are in")
    assert first.exit_code == 2, line
    stream = events_of(first)
    assert [e["index"] for e in stream if e["event"] == "frame_done"] == [1, 2, 3]
    assert stream[-2]["event"] == "done" and stream[-2]["unreadable"] == [4, 5, 6]
    frames = manifest_of(out)["frames"]
    assert {k: v["status"] for k, v in frames.items()} == {"1": "done", "2": "done", "3": "done", "4": "unreadable",
                                                             "5": "unreadable", "6": "unreadable"}
    assert not (out / "frame_000004.png").exists()
    again = run()  # the resume keeps frames 1-3 and does not take the damaged frame for a finished one
    _one_error(again, "(frames 4-6); the other frames are in")
    stream = events_of(again)
    assert stream[0]["event"] == "start" and stream[0]["resumed"] == 3
    assert [e for e in stream if e["event"] == "frame_done"] == []
    assert manifest_of(out)["frames"]["4"]["status"] == "unreadable" and not (out / "frame_000004.png").exists()
    human = nst("video", clip, "-s", samples / "starry_night.jpg", "-o", out, *TINY, "-q")
    _one_error(human, "(frames 4-6); the other frames are in")
    assert f"wrote 0 frames to {out} (3 already there);" in human.stdout  # the frames marked unreadable are not


# -- a source deleted while the keyframe engine trains -------------------------------------------------------

@pytest.mark.slow
def test_a_source_deleted_during_training_names_every_frame_and_the_folder_resumes(tmp_path, samples, monkeypatch):
    import cv2

    from nst_plugin import cli

    clip = tmp_path / "clip.avi"
    street = cv2.resize(cv2.imread(str(samples / "street.jpg")), (64, 48))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(6):
        writer.write(np.roll(street, i, axis=1))
    writer.release()
    saved = clip.read_bytes()
    report = cli.JsonlProgress.__call__

    def deleting(self, event):
        if event.kind == "training" and clip.exists():
            clip.unlink()
        report(self, event)

    monkeypatch.setattr(cli.JsonlProgress, "__call__", deleting)
    out = tmp_path / "out"
    args = ("video", clip, "-s", samples / "starry_night.jpg", "-o", out, *KEYFRAMES)
    result = nst(*args)
    line = _one_error(result, f"6 frames of {str(clip)!r} could not be read and were skipped (frames 1-6); "
                              f"no frame was written (output folder {out})")
    assert result.exit_code == 2, line
    stream = events_of(result)
    warnings = [e["message"] for e in stream if e["event"] == "warning"]
    assert warnings == [f"{clip} cannot be read any more (moved, deleted or replaced?): frames 1-6 not read"]
    assert {v["status"] for v in manifest_of(out)["frames"].values()} == {"unreadable"}
    assert len(manifest_of(out)["frames"]) == 6

    monkeypatch.setattr(cli.JsonlProgress, "__call__", report)
    clip.write_bytes(saved)  # back: the same command resumes and makes every frame
    again = nst(*args)
    assert again.exit_code == 0, again.output
    assert {k: v["status"] for k, v in manifest_of(out)["frames"].items()} == {str(i): "done" for i in range(1, 7)}


def test_a_shot_whose_keyframe_is_no_longer_read_is_left_out_with_a_warning():
    from types import SimpleNamespace

    from nst_plugin.builtin.keyframes.engine import keyframes_read

    shots = [SimpleNamespace(number=0, frames=[1, 2, 3, 4], keyframes=[1, 3]),
             SimpleNamespace(number=1, frames=[5, 6, 7], keyframes=[5])]
    emitted = []
    kept, wanted = keyframes_read(shots, {1: "a", 5: "b"}, SimpleNamespace(emit=emitted.append))
    assert kept == shots[1:] and wanted == {5}
    assert [(e.index, e.message) for e in emitted] == [
        (3, "shot 0: keyframe 3 could not be read again: its frames 1-4 are not made")]


# -- a camera that is not there ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["webcam", "--camera", "7", "--no-window", "--max-frames", "1"], ["video", "7"]])
def test_a_missing_camera_is_one_error_line(tmp_path, samples, command):
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a camera 7")
    args = [*command, "-s", str(samples / "starry_night.jpg"), "--size", "32", "--iterations", "1", "--weights", "hed"]
    if command[0] == "video":
        args += ["-o", str(tmp_path / "out")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "nst_plugin", *args], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: camera 7 cannot be opened"), result.stderr


def test_quiet_capture_gives_the_log_level_back():
    from cv2.utils import logging as cv_logging

    before = cv_logging.getLogLevel()
    assert not quiet_capture(str(Path("/nonexistent/clip.avi"))).isOpened()
    assert cv_logging.getLogLevel() == before


# -- --frame-settings frames the run does not make -----------------------------------------------------------

def test_frame_settings_outside_the_runs_frames_are_named():
    schedule = FrameSchedule({3: {"strength": 0.2}, 500: {"strength": 0.3}})
    clip = FrameSource("clip.avi", "video", 10.0, 4, 4, 40)
    assert schedule.ignored(clip) == "frame-settings frame 500 is outside the clip's frames 1-40: ignored"
    ranged = FrameSource("clip.avi", "video", 10.0, 4, 4, 40, first=5, last=10)
    assert schedule.ignored(ranged) == "frame-settings frames 3, 500 are outside this run's frames 5-10: ignored"
    stepped = FrameSource("clip.avi", "video", 10.0, 4, 4, 40, first=2, last=9, step=2)
    assert FrameSchedule({3: {"strength": 0.2}, 4: {"strength": 0.1}}).ignored(stepped) == \
        "frame-settings frame 3 is not among this run's frames 2-8 (--step 2): ignored"
    assert FrameSchedule({4: {"strength": 0.1}}).ignored(clip) is None
    assert schedule.ignored(FrameSource("0", "camera", 30.0, 4, 4, None)) is None  # a camera: frames not known


def test_a_frame_settings_frame_outside_the_clip_is_a_warning_event(tmp_path, samples):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in (1, 2):
        save_image(folder / f"{i:04d}.png", np.full((32, 48, 3), level(i), np.uint8))
    settings = tmp_path / "frames.json"
    settings.write_text(json.dumps({"2": {"strength": 0.3}, "500": {"strength": 0.8}}))
    result = nst("video", folder, "-s", samples / "starry_night.jpg", "-o", tmp_path / "out", *TINY,
                 "--frame-settings", settings, "--progress", "jsonl")
    assert result.exit_code == 0, result.output
    stream = events_of(result)
    assert [(e["message"], e["index"]) for e in stream if e["event"] == "warning"] == [
        ("frame-settings frame 500 is outside the clip's frames 1-2: ignored", None)]
    assert stream[0]["event"] == "start" and stream[1]["event"] == "warning"
