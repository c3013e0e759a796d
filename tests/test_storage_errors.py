"""Issue 25: the memory check at the size a run really has (``--size 0``: the source's own), storage failures
mid-run (a full disk, a read-only or immutable folder) as the user's to fix, SIGTERM as Ctrl-C, usage errors
as JSON events with ``--progress jsonl``, and the ``--encode`` video's permissions.

Storage failures are injected (``os.fsync`` / ``os.replace`` raising ``OSError`` with the errno a full or
read-only filesystem gives): a real small tmpfs needs root and is not used here.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nst_plugin.cli import app
from nst_plugin.errors import StorageError, UserError
from nst_plugin.images import save_image, write_atomic

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
STYLE = SAMPLES / "starry_night.jpg"
TINY = ["--size", "48", "--iterations", "3", "--warm-iterations", "2", "--weights", "hed"]
SENTINEL = "MODEL-BUILD-REACHED"
GiB = 2**30


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def events_of(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def no_model(monkeypatch):
    """Building a model raises: a run that gets there went past the memory check."""
    import nst_plugin.tf_import

    def refuse():
        raise RuntimeError(SENTINEL)

    monkeypatch.setattr(nst_plugin.tf_import, "import_tensorflow", refuse)


@pytest.fixture
def memory(monkeypatch):
    """This machine has 8 GiB free, whatever it really has."""
    import nst_plugin.validation

    monkeypatch.setattr(nst_plugin.validation, "available_memory_bytes", lambda: 8 * GiB)


@pytest.fixture(scope="session")
def huge(tmp_path_factory):
    """A 12000x12000 PNG of one colour (a few hundred KB on disk), alone in a folder (an image sequence)."""
    import cv2

    folder = tmp_path_factory.mktemp("huge")
    path = folder / "0001.png"
    assert cv2.imwrite(str(path), np.full((12000, 12000, 3), 90, np.uint8))
    return path


# -- defect 5: --size 0 is checked at the source's own size, before any model ---------------------------------

def test_size_0_of_a_huge_image_is_refused_before_any_model(huge, tmp_path, no_model, memory):
    out = tmp_path / "sub" / "out.png"
    started = time.monotonic()
    result = nst("image", huge, "-s", STYLE, "-o", out, "--size", "0", "--weights", "hed")
    assert result.exit_code == 2, result.output
    assert time.monotonic() - started < 30
    (line,) = error_lines(result)
    assert "--size 0 (the content image's own size, 12000x12000)" in line and "memory" in line
    assert "8 GiB free; use --size" in line and SENTINEL not in result.output
    assert not (tmp_path / "sub").exists()


@pytest.mark.parametrize("engine", ["lbfgs", "keyframes"])
def test_video_at_the_source_size_is_checked_for_both_engines(huge, tmp_path, no_model, memory, engine):
    out = tmp_path / "out"
    size = ["--size", "0"] if engine == "lbfgs" else []  # the keyframe engine's default is the source's size
    result = nst("video", huge.parent, "-s", STYLE, "-o", out, "--engine", engine, *size, "--weights", "hed",
                 "--progress", "jsonl")
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result)
    assert "--size 0 (the source's own size, 12000x12000) needs about" in line and "memory" in line
    assert line.startswith("error: the keyframes engine at") == (engine == "keyframes")
    assert events_of(result.stdout)[-1] == {**events_of(result.stdout)[-1], "event": "error", "code": 2}
    assert not out.exists() and SENTINEL not in result.output


def test_memory_estimates_follow_the_engine_and_the_resolved_size(memory):
    from dataclasses import replace

    from nst_plugin.config import make_config
    from nst_plugin.validation import check_memory, check_size, memory_needed

    config = make_config("default")
    source = replace(config, size=0)
    assert memory_needed(source, 3000, 4000) == memory_needed(replace(config, size=4000), 3000, 4000)
    assert memory_needed(config, 3000, 4000) < memory_needed(source, 3000, 4000)  # 384 px
    keyframes = replace(source, engine="keyframes")
    # the keyframe engine's VGG pass is at the keyframes' size: far less than the frame engine's at 4000 px
    assert memory_needed(keyframes, 3000, 4000) < memory_needed(source, 3000, 4000) / 10
    full = replace(keyframes, options={"keyframes.full_size": True})
    assert memory_needed(full, 3000, 4000) > memory_needed(keyframes, 3000, 4000)
    check_memory(keyframes, 3000, 4000)  # fits in 8 GiB
    check_memory(source, 480, 640)
    with pytest.raises(UserError, match=r"--size 0 \(the source's own size, 4000x3000\) needs about \d+ GiB"):
        check_memory(source, 3000, 4000)
    with pytest.raises(UserError, match="--size 0"):  # a single image runs the frame engine, whatever the engine
        check_memory(keyframes, 3000, 4000, "content image", image=True)
    check_size(3000, replace(config, engine="keyframes"))  # no longer refused as a 3000 px VGG pass
    with pytest.raises(UserError, match="--size 3000 needs about"):
        check_size(3000, config)
    # the size it suggests fits
    with pytest.raises(UserError) as info:
        check_memory(source, 3000, 4000)
    largest = int(str(info.value).rsplit("--size ", 1)[1].split()[0])
    check_memory(replace(config, size=largest), 3000, 4000)
    with pytest.raises(UserError):
        check_memory(replace(config, size=largest + 1), 3000, 4000)


def test_size_0_of_a_huge_image_is_refused_in_a_real_process(huge, tmp_path):
    """No monkeypatching: the segmentation fault of the report becomes one line and exit 2 (732 GiB needed)."""
    command = [sys.executable, "-m", "nst_plugin", "image", str(huge), "-s", str(STYLE), "-o",
               str(tmp_path / "out.png"), "--size", "0", "--weights", "hed"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - started < 60
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "needs about 732 GiB of memory" in lines[0], done.stderr
    assert not (tmp_path / "out.png").exists()


# -- defect 6: a full disk or a read-only folder is the user's to fix -----------------------------------------

def _fail_fsync_of(monkeypatch, name: str, code: int):
    """``os.fsync`` of a temporary file for ``name`` fails with ``code`` (as a full disk fails a write: the
    error names no file)."""
    real = os.fsync

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(f".{name}."):
            raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def _fail_replace_onto(monkeypatch, name: str, code: int):
    """``os.replace(tmp, .../name)`` fails with ``code`` (the error names the temporary file first)."""
    real = os.replace

    def replace(src, dst, **kw):
        if os.path.basename(os.fspath(dst)) == name:
            raise OSError(code, os.strerror(code), os.fspath(src), None, os.fspath(dst))
        return real(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_write_atomic_names_the_path_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "new" / "deeper" / "frame_000003.png"
    _fail_fsync_of(monkeypatch, target.name, errno.ENOSPC)
    with pytest.raises(StorageError) as info:
        write_atomic(target, b"x" * 1000)
    assert str(info.value) == f"cannot write {str(target)!r}: No space left on device; free some space"
    assert info.value.exit_code == 2 and info.value.path == str(target)
    assert not (tmp_path / "new").exists()  # the folders it made are gone again, with the temporary file
    monkeypatch.undo()
    (tmp_path / "kept").mkdir()
    _fail_replace_onto(monkeypatch, "x.png", errno.EROFS)
    with pytest.raises(StorageError, match=r"cannot write '.*/kept/x\.png': Read-only file system"):
        write_atomic(tmp_path / "kept" / "x.png", b"x")
    assert list((tmp_path / "kept").iterdir()) == []  # the folder was there before: kept, empty
    monkeypatch.undo()
    write_atomic(tmp_path / "kept" / "x.png", b"x")  # ENOENT and the like stay what they are
    with pytest.raises(FileExistsError):  # a file where a folder should be: not the storage's fault
        write_atomic(tmp_path / "kept" / "x.png" / "y.png", b"x")


def test_storage_errors_that_are_not_the_users_stay_bugs():
    from nst_plugin.errors import storage_error

    assert storage_error(OSError(errno.ENOENT, "No such file or directory", "x")) is None
    assert storage_error(OSError(errno.EMFILE, "Too many open files")) is None
    assert storage_error(ValueError("x")) is None
    failure = storage_error(PermissionError(errno.EACCES, "Permission denied", "/data/in.png"))
    assert str(failure).startswith("cannot access '/data/in.png': Permission denied; check the permissions")
    assert "run the same command again" in str(storage_error(failure, resume=True))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("code, inject, reason", [
    (errno.ENOSPC, _fail_fsync_of, "No space left on device"),
    (errno.EROFS, _fail_replace_onto, "Read-only file system"),
])
def test_a_full_or_read_only_disk_mid_video_is_one_line_exit_2_and_the_run_resumes(tmp_path, monkeypatch, code,
                                                                                    inject, reason):
    out = tmp_path / "out"
    args = ["video", SAMPLES / "street.avi", "-s", STYLE, "-o", out, "--frames", "1-3", *TINY, "--progress", "jsonl"]
    inject(monkeypatch, "frame_000002.png", code)
    failed = nst(*args)
    assert failed.exit_code == 2, failed.output
    (line,) = error_lines(failed)
    frame = out.resolve() / "frame_000002.png"
    assert line.startswith(f"error: cannot write {str(frame)!r}: {reason}; "), line
    assert line.endswith("then run the same command again: it resumes after the finished frames")
    assert "internal error" not in failed.output and "Traceback" not in failed.output
    events = events_of(failed.stdout)
    assert events[-1]["event"] == "error" and events[-1]["code"] == 2 and events[-1]["message"] == line[len("error: "):]
    assert [e["index"] for e in events if e["event"] == "frame_done"] == [1]
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["frames"]["1"]["status"] == "done"
    assert sorted(p.name for p in out.iterdir()) == ["frame_000001.png", "nst_manifest.json"]  # no .part left
    monkeypatch.undo()
    resumed = nst(*args)
    assert resumed.exit_code == 0, resumed.output
    events = events_of(resumed.stdout)
    assert events[0]["resumed"] == 1 and [e["index"] for e in events if e["event"] == "frame_done"] == [2, 3]
    assert events[-1]["status"] == "ok"


def test_an_os_error_of_the_storage_anywhere_in_a_command_is_exit_2(tmp_path, monkeypatch, no_model):
    """Not through write_atomic (a plugin's artifact, a library's file): the error's own file is named."""
    from nst_plugin.video import job

    src = tmp_path / "src"
    src.mkdir()
    save_image(src / "0001.png", np.full((24, 32, 3), 100, np.uint8))
    broken = {"error": OSError(errno.EDQUOT, "Disk quota exceeded", str(tmp_path / "out" / "weights.h5"))}

    def output_folder(*args, **kwargs):
        raise broken["error"]

    monkeypatch.setattr(job, "OutputFolder", output_folder)
    args = ["video", src, "-s", STYLE, "-o", tmp_path / "out", "--progress", "jsonl"]
    result = nst(*args)
    assert result.exit_code == 2, result.output
    (line,) = error_lines(result)
    assert line.startswith(f"error: cannot write {str(tmp_path / 'out' / 'weights.h5')!r}: Disk quota exceeded;")
    assert events_of(result.stdout)[-1]["code"] == 2
    broken["error"] = OSError(errno.ENOENT, "No such file or directory", "gone")  # still a bug: exit 1
    result = nst(*args)
    assert result.exit_code == 1 and error_lines(result)[0].startswith("error: internal error: FileNotFoundError")
    assert events_of(result.stdout)[-1]["code"] == 1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_nst_image_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    content = tmp_path / "content.png"
    save_image(content, np.full((24, 32, 3), 100, np.uint8))
    out = tmp_path / "new" / "out.png"
    _fail_fsync_of(monkeypatch, "out.png", errno.ENOSPC)
    result = nst("image", content, "-s", STYLE, "-o", out, "--size", "32", "--iterations", "2", "--weights", "hed",
                 "--quiet")
    assert result.exit_code == 2, result.output
    assert error_lines(result) == [f"error: cannot write {str(out)!r}: No space left on device; free some space"]
    assert not (tmp_path / "new").exists()


# -- cosmetic: the --encode video gets the usual permissions ---------------------------------------------------

def test_the_encoded_video_has_the_frames_permissions(tmp_path):
    from nst_plugin.video import encode_video

    frames = []
    for n in range(1, 4):
        frames.append(tmp_path / f"frame_{n:06d}.png")
        save_image(frames[-1], np.full((32, 48, 3), 40 * n, np.uint8))
    info = encode_video(frames, tmp_path / "clip.mp4", 10.0)
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "clip.mp4").stat().st_mode & 0o777 == 0o666 & ~umask == frames[0].stat().st_mode & 0o777
    assert info["path"] == str(tmp_path / "clip.mp4")


# -- cosmetic: SIGTERM as Ctrl-C, usage errors as JSON events ---------------------------------------------------

def test_sigterm_stops_like_ctrl_c_with_143_and_an_interrupted_event(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nst_plugin", "video", str(SAMPLES / "street.avi"), "-s", str(STYLE), "-o",
               str(out), "--frames", "1-3", "--size", "48", "--iterations", "3", "--warm-iterations", "400",
               "--tolerance", "0", "--weights", "hed", "--progress", "jsonl"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:  # frame 1 is quick (3 iterations); frame 2 may run 400
        lines.append(json.loads(line))
        if lines[-1]["event"] == "frame_done":
            process.send_signal(signal.SIGTERM)
            break
    rest, stderr = process.communicate(timeout=120)
    lines += events_of(rest)
    assert process.returncode == 143, stderr
    assert lines[-1] == {**lines[-1], "event": "done", "status": "interrupted", "output": str(out)}
    assert "terminated" in stderr.splitlines() and "Traceback" not in stderr
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["frames"]["1"]["status"] == "done"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.name.endswith(".part")]


@pytest.mark.parametrize("extra, message", [
    (["--bogus-option"], "No such option: --bogus-option"),
    (["--size", "abc"], "Invalid value for '--size'"),
])
def test_usage_errors_with_progress_jsonl_are_an_error_event(tmp_path, extra, message):
    base = [sys.executable, "-m", "nst_plugin", "video", "clip.avi", "-s", "x.jpg", "-o", str(tmp_path / "out")]
    for progress in (["--progress", "jsonl"], ["--progress=jsonl"]):
        done = subprocess.run(base + progress + extra, capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        (event,) = events_of(done.stdout)
        assert event["event"] == "error" and event["code"] == 2 and event["message"].startswith(message)
        assert done.stderr.splitlines() == [f"error: {event['message']}"]
    human = subprocess.run(base + extra, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert human.returncode == 2 and human.stdout == "" and message.split("'")[0] in human.stderr
    assert not human.stderr.startswith("error:")  # typer's own usage output, unchanged
