"""Nothing on disk is trusted (issue 25): a crafted manifest cannot make nst delete, replace or encode a
file it did not make; planted links and hard links at the names nst uses are never written through; one
writer per output (a second run is refused in one line naming the first; a killed run's lock goes with its
process); a run refused or failed before its first frame leaves nothing that locks out the fixed command.

Most cases need no model: building one raises MODEL-BUILD-REACHED, so a refusal must come before it and
every file around the folder is hashed before and after.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst_plugin.errors import UserError
from test_safety import SENTINEL, error_lines, hashes, no_model, nst  # noqa: F401 (no_model: a fixture)


def _png(path: Path, value: int, size=(24, 32)):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((*size, 3), value, np.uint8)
    image[::3, ::2] = 255 - value
    cv2.imwrite(str(path), image)


def _avi(path: Path, frames=3):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(frames):
        writer.write(np.full((24, 32, 3), 40 * i + 20, np.uint8))
    writer.release()


def _earlier_run(folder: Path, source: Path, frames=(1, 2), **settings):
    """An output folder as an earlier run left it: real frames and the manifest OutputFolder writes."""
    from nst_plugin.config import make_config
    from nst_plugin.video import OutputFolder, open_source

    out = OutputFolder(folder, make_config(**{"size": 48, **settings}), open_source(source), [], overwrite=True)
    for index in frames:
        out.add(index, np.full((24, 32, 3), index * 50, np.uint8), {"seconds": 1.0})
    getattr(out, "close", lambda: None)()  # (close: the run ends; a kill leaves the same files)
    return folder / "nst_manifest.json"


def _edit(manifest: Path, change) -> None:
    data = json.loads(manifest.read_text())
    change(data)
    manifest.write_text(json.dumps(data))


@pytest.fixture
def project(tmp_path):
    """The issue's folder: the source and the style inside the output folder, a user's file beside it."""
    d = tmp_path / "d"
    _avi(d / "src.avi")
    _png(d / "mystyle.png", 120)
    (tmp_path / "victim.txt").write_text("the user's file outside the folder")
    (d / "notes.txt").write_text("the user's notes inside the folder")
    manifest = _earlier_run(d, d / "src.avi")
    return tmp_path, d, manifest


CRAFTED = {
    "a done frame naming the source": lambda m: m["frames"].update({"7": {"file": "src.avi", "status": "done"}}),
    "a frame being written naming the style by ..": lambda m: m["frames"].update(
        {"8": {"file": "../d/mystyle.png", "status": "writing"}}),
    "a done frame outside the folder": lambda m: m["frames"].update(
        {"3": {"file": str(Path(m["source"]["path"]).parent.parent / "victim.txt"), "status": "done"}}),
    "another frame's name": lambda m: m["frames"].update({"4": {"file": "frame_000001.png", "status": "done"}}),
    "an artifact leaving the folder": lambda m: m.update(
        artifacts={"../victim.txt": {"file": "../victim.txt", "key": "k"}}),
    "an artifact whose file is another name": lambda m: m.update(
        artifacts={"model.h5": {"file": "notes.txt", "key": "k"}}),
    "a frame key that is no number": lambda m: m["frames"].update({"../x": {"file": None, "status": "done"}}),
    "frames that are no table": lambda m: m.update(frames=["frame_000001.png"]),
}


@pytest.mark.parametrize("overwrite", [True, False])
@pytest.mark.parametrize("crafted", sorted(CRAFTED))
def test_a_crafted_manifest_is_refused_in_one_line_and_nothing_changes(project, no_model, crafted, overwrite):
    root, d, manifest = project
    _edit(manifest, CRAFTED[crafted])
    before = hashes(root)
    args = ["video", d / "src.avi", "-s", d / "mystyle.png", "-o", d, "--size", "64", "-q"]
    result = nst(*args, *(["--overwrite"] if overwrite else []))
    lines = error_lines(result)
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "nst_manifest.json" in lines[0] and "edited" in lines[0] and SENTINEL not in result.output
    assert hashes(root) == before


def test_an_artifact_naming_an_input_is_never_deleted(project, no_model):
    root, d, manifest = project
    _edit(manifest, lambda m: m.update(artifacts={"src.avi": {"file": "src.avi", "key": "k"}}))
    before = hashes(root)
    result = nst("video", d / "src.avi", "-s", d / "mystyle.png", "-o", d, "--size", "64", "--overwrite", "-q")
    assert result.exit_code == 2 and "lists the source" in error_lines(result)[0], result.output
    assert hashes(root) == before


def test_overwrite_of_an_honest_folder_deletes_only_its_frames(project, no_model):
    root, d, _ = project
    result = nst("video", d / "src.avi", "-s", d / "mystyle.png", "-o", d, "--size", "64", "--overwrite", "-q")
    assert SENTINEL in result.output  # accepted: it got as far as the model
    assert not (d / "frame_000001.png").exists() and not (d / "frame_000002.png").exists()
    assert {p.name for p in d.iterdir()} >= {"src.avi", "mystyle.png", "notes.txt"}
    assert (root / "victim.txt").exists()


@pytest.mark.parametrize("record", ["a bare path (no tag)", "a forged tag", "a tag of the file's old content",
                                    "another user's key"])
def test_encode_replaces_only_a_video_this_user_encoded_unchanged(project, no_model, record, monkeypatch, tmp_path):
    from nst_plugin.signing import sign_file

    root, d, manifest = project
    video = root / "final.mp4"
    video.write_bytes(b"the user's edit")
    real = os.path.realpath(video)
    if record == "a bare path (no tag)":
        entry = real
    elif record == "a forged tag":
        entry = {"path": real, "tag": "0" * 64}
    elif record == "a tag of the file's old content":
        video.write_bytes(b"what nst encoded")
        entry = {"path": real, "tag": sign_file(real)}
        video.write_bytes(b"the user's edit")  # the user replaced it since
    else:
        monkeypatch.setenv("NST_STATE_DIR", str(tmp_path / "someone-else"))
        entry = {"path": real, "tag": sign_file(real)}
        monkeypatch.undo()
    _edit(manifest, lambda m: m.update(encoded=[entry]))
    before = hashes(root)
    result = nst("video", d / "src.avi", "-s", d / "mystyle.png", "-o", d, "--size", "48", "--encode", video, "-q")
    assert result.exit_code == 2 and "already exists" in error_lines(result)[0], result.output
    assert hashes(root) == before


def test_encode_of_this_users_unchanged_video_is_ours(project, no_model):
    from nst_plugin.signing import sign_file

    root, d, manifest = project
    video = root / "final.mp4"
    video.write_bytes(b"what nst encoded")
    _edit(manifest, lambda m: m.update(encoded=[{"path": os.path.realpath(video), "tag": sign_file(os.path.realpath(video))}]))
    from nst_plugin.safety import video_plan

    video_plan(d / "src.avi", [d / "mystyle.png"], d, video).check()  # accepted without --overwrite
    video.write_bytes(b"what nst encoded, then edited by the user")
    with pytest.raises(UserError, match="already exists"):
        video_plan(d / "src.avi", [d / "mystyle.png"], d, video).check()


def test_a_done_frame_that_is_a_link_is_not_resumed(project):
    from nst_plugin.config import make_config
    from nst_plugin.video import OutputFolder, open_source

    root, d, _ = project
    (d / "frame_000002.png").unlink()
    os.symlink(root / "victim.txt", d / "frame_000002.png")
    folder = OutputFolder(d, make_config(size=48), open_source(d / "src.avi"), [])
    try:
        assert sorted(folder.frames) == [1]  # the link is not a frame nst wrote
    finally:
        folder.close()


# -- planted links at the names nst writes -------------------------------------------------------------------

def test_planted_links_at_probe_and_lock_names_are_never_written_through(tmp_path, no_model):
    _avi(tmp_path / "clip.avi")
    _png(tmp_path / "style.png", 90)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    pid = os.getpid()
    for n in range(pid, pid + 2000):  # the old probe's predictable names, for this process and the next pids
        os.symlink(victim, out / f".nst-write-test-{n}")
    before = hashes(tmp_path)
    result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", out, "--size", "48", "-q")
    assert result.exit_code == 2 and "not empty" in error_lines(result)[0], result.output
    assert victim.read_text() == "precious" and hashes(tmp_path) == before

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    os.symlink(victim, fresh / ".nst-lock")
    for overwrite in ([], ["--overwrite"]):
        result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", fresh, "--size", "48", "-q",
                     *overwrite)
        assert result.exit_code == 2, result.output
        assert victim.read_text() == "precious"
    image_link = tmp_path / ".styled.png.nst-lock"
    os.symlink(victim, image_link)
    result = nst("image", tmp_path / "style.png", "-s", tmp_path / "style.png", "-o", tmp_path / "styled.png")
    assert result.exit_code == 2 and "link" in error_lines(result)[0], result.output
    assert victim.read_text() == "precious"


def test_a_hard_link_at_the_lock_name_is_not_written(tmp_path):
    from nst_plugin.locking import acquire

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.link(victim, tmp_path / ".nst-lock")
    with pytest.raises(UserError, match="did not make"):
        acquire(tmp_path / ".nst-lock", "output folder 'x'")
    assert victim.read_text() == "precious"


def test_the_blender_addon_probe_makes_its_file_exclusively():
    source = (Path(__file__).resolve().parent.parent / "blender_addon" / "jobs.py").read_text()
    assert "mkstemp" in source and "nst-write-test-{os.getpid()}" not in source


# -- one writer per output -----------------------------------------------------------------------------------

HOLD = """
import sys, time
from nst_plugin.locking import acquire
lock = acquire(sys.argv[1], "x")
print("held", flush=True)
time.sleep(120)
"""


def _hold_in_another_process(lock_path: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_writer_is_refused_naming_the_first_and_a_killed_ones_lock_goes(tmp_path, no_model):
    _avi(tmp_path / "clip.avi")
    _png(tmp_path / "style.png", 90)
    out = tmp_path / "out"
    _earlier_run(out, tmp_path / "clip.avi")
    holder = _hold_in_another_process(out / ".nst-lock")
    try:
        before = hashes(tmp_path)
        for extra in ([], ["--overwrite", "--frames", "1-1", "--size", "64"]):
            result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", out, "--size", "48",
                         "-q", *extra)
            lines = error_lines(result)
            assert result.exit_code == 2 and len(lines) == 1, result.output
            assert f"another nst run (pid {holder.pid} on " in lines[0]
            assert hashes(tmp_path) == before  # not a frame made again, not the manifest rewritten
    finally:
        holder.kill()  # kill -9: no clean-up runs in the holder
        holder.wait()
    assert (out / ".nst-lock").exists()  # the file stays; the kernel's lock went with the process
    result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", out, "--size", "48", "-q",
                 "--overwrite")
    assert SENTINEL in result.output, result.output  # the lock is free: the run got as far as the model
    assert not (out / ".nst-lock").exists()  # released and removed when the run ended


def test_two_image_runs_on_one_output(tmp_path, no_model):
    _png(tmp_path / "content.png", 60)
    _png(tmp_path / "style.png", 120)
    out = tmp_path / "same.png"
    holder = _hold_in_another_process(tmp_path / ".same.png.nst-lock")
    try:
        result = nst("image", tmp_path / "content.png", "-s", tmp_path / "style.png", "-o", out, "-q")
        assert result.exit_code == 2 and f"pid {holder.pid}" in error_lines(result)[0], result.output
    finally:
        holder.kill()
        holder.wait()
    result = nst("image", tmp_path / "content.png", "-s", tmp_path / "style.png", "-o", out, "-q")
    assert SENTINEL in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "style.png"]  # the stale lock file went too


def test_the_image_output_is_checked_again_under_the_lock(tmp_path, no_model, monkeypatch):
    """A run that finished between this run's first check and its lock made the file: not replaced."""
    import nst_plugin.locking as locking

    _png(tmp_path / "content.png", 60)
    _png(tmp_path / "style.png", 120)
    out = tmp_path / "deep" / "er" / "same.png"
    real_acquire = locking.acquire

    def acquire_after_another_run(path, what):
        _png(out, 7)  # the other run's result, written while this one prepared
        return real_acquire(path, what)

    monkeypatch.setattr(locking, "acquire", acquire_after_another_run)
    result = nst("image", tmp_path / "content.png", "-s", tmp_path / "style.png", "-o", out, "-q")
    assert result.exit_code == 2 and "already exists" in error_lines(result)[0], result.output
    assert sorted(p.name for p in out.parent.iterdir()) == ["same.png"]  # its lock gone, the other's picture kept


def test_a_refused_image_run_leaves_no_folder(tmp_path, no_model, monkeypatch):
    import nst_plugin.locking as locking

    _png(tmp_path / "content.png", 60)
    _png(tmp_path / "style.png", 120)

    def held(path, what):
        raise UserError(f"{what} is being written by another nst run (pid 1 on elsewhere)")

    monkeypatch.setattr(locking, "acquire", held)
    result = nst("image", tmp_path / "content.png", "-s", tmp_path / "style.png", "-o", tmp_path / "a" / "b" / "x.png")
    assert result.exit_code == 2 and not (tmp_path / "a").exists()


# -- a failed run does not lock out the fixed command ---------------------------------------------------------

def test_a_bad_init_image_is_refused_before_anything_is_written(tmp_path, no_model):
    _avi(tmp_path / "clip.avi")
    _png(tmp_path / "style.png", 90)
    (tmp_path / "secret.png").write_text("not an image: a text file named .png")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"init": str(tmp_path / "secret.png")}))
    result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", tmp_path / "out", "--size", "48",
                 "--settings", settings, "-q")
    lines = error_lines(result)
    assert result.exit_code == 2 and len(lines) == 1 and "--init image" in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_a_run_that_failed_before_its_first_frame_leaves_nothing(tmp_path, no_model):
    _avi(tmp_path / "clip.avi")
    _png(tmp_path / "style.png", 90)
    result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", tmp_path / "out", "--size", "48")
    assert SENTINEL in result.output  # failed while building the model, after the folder was made
    assert not (tmp_path / "out").exists()
    (tmp_path / "mine").mkdir()
    result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", tmp_path / "mine", "--size", "48")
    assert SENTINEL in result.output and list((tmp_path / "mine").iterdir()) == []  # the user's folder stays


def test_a_manifest_with_no_frames_does_not_refuse_other_settings(tmp_path, no_model):
    """What a kill -9 before the first frame leaves: a manifest that lists nothing."""
    from nst_plugin.config import make_config
    from nst_plugin.video import OutputFolder, open_source

    _avi(tmp_path / "clip.avi")
    _png(tmp_path / "style.png", 90)
    out = tmp_path / "out"
    OutputFolder(out, make_config(size=96), open_source(tmp_path / "clip.avi"), [])._lock.release()  # killed
    assert (out / "nst_manifest.json").exists()
    result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", out, "--size", "48")
    assert SENTINEL in result.output, result.output


# -- two real runs racing on one folder ------------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_racing_on_one_folder(tmp_path):
    _avi(tmp_path / "clip.avi", frames=6)
    _png(tmp_path / "style.png", 90)
    out = tmp_path / "out"
    nst_bin = Path(sys.executable).with_name("nst")
    args = [str(nst_bin), "video", str(tmp_path / "clip.avi"), "-s", str(tmp_path / "style.png"), "-o", str(out),
            "--size", "48", "--iterations", "2", "--weights", "hed", "--progress", "jsonl"]
    env = dict(os.environ)
    first = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        for line in first.stdout:  # wait until the first run writes frames
            if json.loads(line).get("event") == "frame_done":
                break
        first.send_signal(signal.SIGSTOP)  # held mid-run, deterministically, while the second one starts
        try:
            second = subprocess.run(args[:-2] + ["--overwrite", "--frames", "1-1"], capture_output=True, text=True,
                                    env=env, timeout=120)
        finally:
            first.send_signal(signal.SIGCONT)
        lines = [line for line in second.stderr.splitlines() if line.startswith("error:")]
        assert second.returncode == 2 and len(lines) == 1 and f"pid {first.pid}" in lines[0], second.stderr
        rest = first.communicate(timeout=300)[0]
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGKILL)
            first.wait()
    assert first.returncode == 0, rest
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert sorted(int(k) for k, e in manifest["frames"].items() if e["status"] == "done") == [1, 2, 3, 4, 5, 6]
    assert manifest["config"]["size"] == 48 and not (out / ".nst-lock").exists()


def test_a_run_refused_for_other_settings_leaves_the_folder_as_it_was(tmp_path, no_model):
    _avi(tmp_path / "clip.avi")
    _png(tmp_path / "style.png", 90)
    out = tmp_path / "out"
    _earlier_run(out, tmp_path / "clip.avi")
    before = hashes(tmp_path)
    result = nst("video", tmp_path / "clip.avi", "-s", tmp_path / "style.png", "-o", out, "--size", "64", "-q")
    assert result.exit_code == 2 and "other settings" in error_lines(result)[0], result.output
    assert hashes(tmp_path) == before  # the manifest that lists the frames is kept, the lock is gone


def test_a_lock_on_a_full_disk_still_locks(tmp_path, monkeypatch):
    """Writing who holds the lock may fail (ENOSPC): the kernel's lock holds all the same, the file goes."""
    import errno

    import nst_plugin.locking as locking

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(locking.os, "pwrite", full)
    lock = locking.acquire(tmp_path / ".nst-lock", "output folder 'x'")
    with pytest.raises(UserError, match="another nst run \\(owner unknown\\)"):
        locking.acquire(tmp_path / ".nst-lock", "output folder 'x'")
    lock.release()
    assert list(tmp_path.iterdir()) == []


def test_grid_checks_memory_at_size_0(tmp_path, no_model, monkeypatch):
    import nst_plugin.validation as validation

    _png(tmp_path / "content.png", 60, size=(600, 800))
    _png(tmp_path / "style.png", 120)
    monkeypatch.setattr(validation, "available_memory_bytes", lambda: 2**30)
    result = nst("grid", tmp_path / "content.png", "-s", tmp_path / "style.png", "-o", tmp_path / "g.png",
                 "--size", "0", "--strengths", "0.5")
    lines = error_lines(result)
    assert result.exit_code == 2 and len(lines) == 1 and "--size 0" in lines[0] and "memory" in lines[0], result.output
