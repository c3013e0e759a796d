"""Never destroy what the user made (issue 8): every path a command writes is checked against every path it
reads before any work; every plugin failure is named (exit 3); the exit codes are what the docs say.

The walks below try every combination of source, output, --encode, --loss-plot, --init and --overwrite that
points at the same file, the same folder, a symlink, a parent folder or the source folder, and hash every
file before and after. They need no model: building one raises MODEL-BUILD-REACHED (exit 1), so an
accepted combination stops right after everything that runs before the model (the output folder's
--overwrite clean-up included) and a refusal must come before it.
"""

import hashlib
import itertools
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nst_plugin.cli import app
from nst_plugin.errors import PluginError, UserError

runner = CliRunner()
SENTINEL = "MODEL-BUILD-REACHED"


def nst(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def hashes(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():
                out[str(path.relative_to(root))] = "link->" + os.readlink(path)
            else:
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture
def no_model(monkeypatch):
    """Building a model raises: a test that gets there ran past every check."""
    import nst_plugin.tf_import

    def refuse():
        raise RuntimeError(SENTINEL)

    monkeypatch.setattr(nst_plugin.tf_import, "import_tensorflow", refuse)


def _png(path: Path, value: int, size=(12, 16)):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.full((*size, 3), value, np.uint8)
    image[::3, ::2] = 255 - value
    cv2.imwrite(str(path), image)


def _avi(path: Path, frames=4):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for i in range(frames):
        writer.write(np.full((24, 32, 3), 30 * i + 20, np.uint8))
    writer.release()


def _encoded(video: Path) -> dict:
    """The manifest's record of a video an --encode of this user wrote (signed for its path and content)."""
    from nst_plugin.signing import sign_file

    real = os.path.realpath(video)
    return {"path": real, "tag": sign_file(real)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A user's folder: inputs, a source sequence named like our frames, a clip, foreign files, symlinks,
    an earlier nst output folder (ours) and a folder of the user's own frame_*.png files."""
    root = tmp_path_factory.mktemp("world")
    _png(root / "content.png", 60)
    _png(root / "style.png", 120)
    _png(root / "init.png", 200)
    _png(root / "foreign.png", 90)  # the user's: not made by nst
    for i in (1, 2, 3):
        _png(root / "src" / f"frame_{i:06d}.png", 40 * i)
    _avi(root / "clip.avi")
    (root / "notes.mp4").write_bytes(b"the user's notes, not a video")
    (root / "sub").mkdir()
    os.symlink("content.png", root / "link.png")
    os.symlink("src", root / "srclink")
    os.symlink("clip.avi", root / "cliplink.avi")
    done = root / "done"  # an earlier run's folder: frame 1 and done.mp4 are ours
    _png(done / "frame_000001.png", 10)
    (done / "holiday.txt").write_text("the user's file that happens to be here")
    (root / "done.mp4").write_bytes(b"an earlier --encode of done/")
    (done / "nst_manifest.json").write_text(json.dumps({
        "format": "nst-video-manifest", "version": 1, "settings_hash": "old", "config": {"size": 1},
        "styles": [], "source": {"path": "elsewhere"}, "step": 1,
        "frames": {"1": {"file": "frame_000001.png", "status": "done"}},
        "encoded": [_encoded(root / "done.mp4")]}))
    _png(root / "mine" / "frame_000002.png", 33)  # the user's own frames, no manifest
    return root


def _copy(world, tmp_path):
    target = tmp_path / "w"
    shutil.copytree(world, target, symlinks=True)
    manifest = target / "done" / "nst_manifest.json"
    data = json.loads(manifest.read_text())
    data["encoded"] = [_encoded(target / "done.mp4")]  # where this copy's earlier --encode went
    manifest.write_text(json.dumps(data))
    return target


# -- the walks ------------------------------------------------------------------------------------------------

IMAGE_OUTPUTS = ["content.png", "link.png", "sub/../content.png", "style.png", "init.png", "foreign.png",
                 "fresh.png", "new/deep/fresh.png", "src/frame_000001.png"]
IMAGE_PLOTS = [None, "SAME", "content.png", "link.png", "foreign.png", "plot.png"]


def test_image_walk_never_changes_an_input_or_a_foreign_file(world, tmp_path, no_model, monkeypatch):
    w = _copy(world, tmp_path)
    monkeypatch.chdir(w)
    failures = []
    for output, plot, init, overwrite in itertools.product(IMAGE_OUTPUTS, IMAGE_PLOTS, [None, "init.png"], [False, True]):
        inputs = {os.path.realpath(w / p) for p in ("content.png", "style.png", init) if p}
        plot = output if plot == "SAME" else plot
        before = hashes(w)
        args = ["image", "content.png", "-s", "style.png", "-o", output, "-q"]
        args += ["--loss-plot", plot] if plot else []
        args += ["--init", init] if init else []
        args += ["--overwrite"] if overwrite else []
        started = time.perf_counter()
        result = nst(*args)
        seconds = time.perf_counter() - started
        after = hashes(w)
        case = f"{args[5:]}"
        writes = [os.path.realpath(w / output)] + ([os.path.realpath(w / plot)] if plot else [])
        must_refuse = (any(p in inputs for p in writes) or len(set(writes)) < len(writes)
                       or any(os.path.exists(p) and not overwrite for p in writes))
        changed = [k for k in before if after.get(k) != before[k]]
        if changed:
            failures.append(f"{case}: changed {changed}")
        if result.exit_code == 2:
            if len(error_lines(result)) != 1 or "Traceback" in result.output:
                failures.append(f"{case}: not one error line: {result.output!r}")
            if seconds > 3:
                failures.append(f"{case}: refusal took {seconds:.1f} s")
        elif SENTINEL not in result.output or must_refuse:
            failures.append(f"{case}: exit {result.exit_code}, must refuse {must_refuse}: {result.output!r}")
        for p in list(after):
            if p not in before:
                (w / p).unlink()  # a refused run writes nothing; an accepted one stopped before writing
                failures.append(f"{case}: left a new file {p}")
    assert not failures, "\n".join(failures[:20])


VIDEO_SOURCES = ["src", "src/frame_######.png", "src/*.png", "srclink", "cliplink.avi"]
VIDEO_OUTPUTS = ["src", "srclink", "sub/../src", ".", "done", "mine", "fresh", "clip.avi"]
VIDEO_ENCODES = [None, "clip.avi", "notes.mp4", "done.mp4", "fresh.mp4"]


def test_video_walk_never_changes_an_input_or_a_foreign_file(world, tmp_path, no_model, monkeypatch):
    failures = []
    base = _copy(world, tmp_path)
    for n, (source, output, encode, overwrite) in enumerate(
            itertools.product(VIDEO_SOURCES, VIDEO_OUTPUTS, VIDEO_ENCODES, [False, True])):
        w = tmp_path / f"case{n}"
        os.rename(base, w)  # one copy of the world per case, re-made only after a case changed it
        monkeypatch.chdir(w)
        before = hashes(w)
        args = ["video", source, "-s", "style.png", "-o", output, "--size", "48", "-q"]
        args += ["--encode", encode] if encode else []
        args += ["--overwrite"] if overwrite else []
        started = time.perf_counter()
        result = nst(*args)
        seconds = time.perf_counter() - started
        after = hashes(w)
        case = f"{args[1]} -o {output} --encode {encode} overwrite={overwrite}"
        ours = {"done/frame_000001.png", "done/nst_manifest.json"} if overwrite else {"done/nst_manifest.json"}
        ours |= {"done.mp4"} | ({"notes.mp4", "fresh.mp4"} if overwrite else set())  # named with --overwrite
        changed = [k for k in before if after.get(k) != before[k] and k not in ours]
        if changed:
            failures.append(f"{case}: changed {changed}")
        source_real = os.path.realpath(w / source.split("/")[0]) if "clip" not in source else os.path.realpath(w / source)
        must_refuse = (os.path.realpath(w / output) == os.path.realpath(w / "src") and "clip" not in source
                       or output in ("src", "srclink", "sub/../src", "mine", "clip.avi") and not overwrite
                       or output in ("mine", "src", "srclink", "sub/../src", "clip.avi")  # foreign frames, a file
                       or encode is not None and os.path.realpath(w / encode) == source_real
                       or encode == "notes.mp4" and not overwrite)
        if result.exit_code == 2:
            if len(error_lines(result)) != 1 or "Traceback" in result.output:
                failures.append(f"{case}: not one error line: {result.output!r}")
            if seconds > 3:
                failures.append(f"{case}: refusal took {seconds:.1f} s")
        elif SENTINEL not in result.output or must_refuse:
            failures.append(f"{case}: exit {result.exit_code}, must refuse {must_refuse}: {result.output!r}")
        if after != before:
            shutil.rmtree(w)
            w = _copy(world, tmp_path)
        os.rename(w, base)
    assert not failures, "\n".join(failures[:20])


# -- each case of the issue -----------------------------------------------------------------------------------

def test_video_into_its_own_source_folder_with_overwrite_keeps_every_frame(world, tmp_path, no_model):
    w = _copy(world, tmp_path)
    before = hashes(w)
    for frames in (None, "2"):
        args = ["video", w / "src", "-s", w / "style.png", "-o", w / "src", "--overwrite"]
        result = nst(*args, *(["--frames", frames] if frames else []))
        assert result.exit_code == 2 and "is the folder of the source sequence" in error_lines(result)[0], result.output
    assert hashes(w) == before


def test_encode_onto_a_foreign_file_or_the_source_is_refused(world, tmp_path, no_model):
    w = _copy(world, tmp_path)
    before = hashes(w)
    base = ["video", w / "clip.avi", "-s", w / "style.png", "-o", w / "done", "--size", "48"]
    notes = nst(*base, "--encode", w / "notes.mp4")
    assert notes.exit_code == 2 and "--encode" in notes.stderr and "already exists" in notes.stderr
    for encode in (w / "clip.avi", w / "cliplink.avi", w / "sub" / ".." / "clip.avi"):
        result = nst(*base, "--encode", encode, "--overwrite")
        assert result.exit_code == 2 and "is one of the input files" in error_lines(result)[0], result.output
        assert str(encode) in error_lines(result)[0]  # the path the user gave
    assert hashes(w) == before


def test_encode_recorded_in_the_manifest_is_ours(world, tmp_path, no_model):
    from nst_plugin.safety import video_plan

    w = _copy(world, tmp_path)
    video_plan(w / "clip.avi", [w / "style.png"], w / "done", w / "done.mp4").check()  # ours: no --overwrite needed
    with pytest.raises(UserError, match="already exists"):
        video_plan(w / "clip.avi", [w / "style.png"], w / "fresh", w / "done.mp4").check()  # another folder's


def test_loss_plot_onto_the_output_is_refused(world, tmp_path, no_model):
    w = _copy(world, tmp_path)
    for plot in ("out.png", "sub/../out.png"):
        result = nst("image", w / "content.png", "-s", w / "style.png", "-o", w / "out.png", "--loss-plot", w / plot)
        assert result.exit_code == 2 and "are the same file" in error_lines(result)[0], result.output
    assert not (w / "out.png").exists()


def test_metadata_next_to_the_output_is_never_replaced_unless_ours_and_overwrite(world, tmp_path, no_model):
    from nst_plugin.safety import image_plan

    w = _copy(world, tmp_path)
    (w / "out.nst.json").write_text('{"my": "notes"}')
    base = ["image", w / "content.png", "-s", w / "style.png", "-o", w / "out.png"]
    for extra in ([], ["--overwrite"]):
        result = nst(*base, *extra)
        assert result.exit_code == 2 and "out.nst.json" in result.stderr and "not made by nst" in result.stderr
    assert (w / "out.nst.json").read_text() == '{"my": "notes"}'
    (w / "out.nst.json").write_text(json.dumps({"format": "nst-image-metadata", "output": "out.png"}))
    with pytest.raises(UserError, match="already exists"):
        image_plan(w / "content.png", [w / "style.png"], w / "out.png").check()
    image_plan(w / "content.png", [w / "style.png"], w / "out.png", overwrite=True).check()


@pytest.mark.parametrize("option", ["-o", "--loss-plot", "video -o", "--encode"])
def test_impossible_destination_fails_in_a_second_naming_the_given_path(world, tmp_path, option, no_model):
    w = _copy(world, tmp_path)
    image = ["image", w / "content.png", "-s", w / "style.png"]
    video = ["video", w / "clip.avi", "-s", w / "style.png"]
    args = {
        "-o": [*image, "-o", "/proc/nst/out.png"],
        "--loss-plot": [*image, "-o", w / "out.png", "--loss-plot", "/proc/nst/plot.png"],
        "video -o": [*video, "-o", "/proc/nst/frames"],
        "--encode": [*video, "-o", w / "out", "--encode", "/proc/nst/x.mp4"],
    }[option]
    started = time.perf_counter()
    result = nst(*args)
    assert time.perf_counter() - started < 2
    line = error_lines(result)[0]
    assert result.exit_code == 2 and "/proc/nst/" in line and "not writable" in line and ".part" not in line
    assert not (w / "out").exists()


def test_overwrite_deletes_only_the_frames_the_manifest_lists(world, tmp_path):
    from nst_plugin.config import make_config
    from nst_plugin.video import OutputFolder, open_source

    w = _copy(world, tmp_path)
    source = open_source(w / "clip.avi")
    config = make_config(size=48)
    OutputFolder(w / "done", config, source, [], overwrite=True)
    assert not (w / "done" / "frame_000001.png").exists()  # ours: deleted
    assert (w / "done" / "holiday.txt").read_text().startswith("the user's file")
    _png(w / "done" / "frame_000007.png", 5)  # the user's, not listed
    from nst_plugin.safety import video_plan

    with pytest.raises(UserError, match="frame_000007.png"):
        video_plan(source, [], w / "done", overwrite=True).check()


def test_a_frame_written_before_a_kill_stays_ours(world, tmp_path):
    from nst_plugin.config import make_config
    from nst_plugin.safety import video_plan
    from nst_plugin.video import OutputFolder, open_source
    from nst_plugin.video.output import FrameRecord

    w = _copy(world, tmp_path)
    source = open_source(w / "clip.avi")
    folder = OutputFolder(w / "fresh", make_config(size=48), source, [])
    folder.leftovers[2] = FrameRecord("frame_000002.png", "writing")  # as add() leaves it mid-frame
    folder._write_manifest()
    _png(w / "fresh" / "frame_000002.png", 1)
    video_plan(source, [], w / "fresh").check()  # listed: not foreign


# -- frame selection -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("frames", ["0", "0-0", "0-3", "2-0"])
def test_frame_zero_is_refused(world, frames):
    result = nst("video", world / "clip.avi", "-s", world / "style.png", "-o", world / "never", "--frames", frames)
    assert result.exit_code == 2 and "count from 1" in error_lines(result)[0], result.output
    assert not (world / "never").exists()


@pytest.mark.parametrize("fps", ["0", "-1", "nan", "inf"])
def test_fps_must_be_positive_and_finite(world, fps):
    result = nst("video", world / "src", "-s", world / "style.png", "-o", world / "never", "--fps", fps)
    assert result.exit_code == 2 and "--fps" in error_lines(result)[0], result.output


def test_a_bad_frame_outside_the_range_is_neither_reported_nor_recorded():
    from nst_plugin.video import FrameSource

    class Capture:  # frame 2 cannot be grabbed
        def __init__(self):
            self.n = 0

        def grab(self):
            self.n += 1
            return self.n != 2

        def retrieve(self):
            return True, np.full((4, 4, 3), self.n, np.uint8)

        def release(self):
            pass

    warnings = []
    odd = FrameSource("clip.avi", "video", 10.0, 4, 4, 5, first=1, last=5, step=2, capture_factory=Capture,
                      on_warning=warnings.append)
    assert [i for i, _ in odd] == [1, 3, 5] and odd.unreadable == [] and warnings == []
    every = FrameSource("clip.avi", "video", 10.0, 4, 4, 5, capture_factory=Capture, on_warning=warnings.append)
    assert [i for i, _ in every] == [1, 3, 4, 5] and every.unreadable == [2] and warnings[0]["index"] == 2


# -- encode failures name the user's path ---------------------------------------------------------------------

def test_encode_failure_names_the_users_path(world, tmp_path, monkeypatch):
    from nst_plugin import video

    def broken(*args, **kw):
        raise RuntimeError("codec trouble")

    monkeypatch.setattr(video.encode, "_encode_pyav", broken)
    monkeypatch.setattr(video.encode, "_encode_opencv", lambda *a, **k: (_ for _ in ()).throw(
        video.encode.NstError("cannot encode .x.part.mp4")))
    frames = [world / "src" / "frame_000001.png"]
    with pytest.raises(Exception) as info:
        video.encode_video(frames, tmp_path / "x.mp4", 10.0)
    assert not isinstance(info.value, UserError) and "x.mp4" in str(info.value) and ".part" not in str(info.value)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m, **k: False if str(p) == str(tmp_path) else real_access(p, m, **k))
    with pytest.raises(UserError, match=r"--encode '.*x\.mp4' cannot be written"):
        video.encode_video(frames, tmp_path / "x.mp4", 10.0)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]


# -- unexpected errors: one line, exit 1, an error event --------------------------------------------------------

def test_an_unexpected_error_is_one_line_exit_1_and_an_error_event(world, tmp_path, monkeypatch):
    from nst_plugin.video import job

    def boom(*args, **kw):
        raise ZeroDivisionError("division by zero somewhere inside")

    monkeypatch.setattr(job, "OutputFolder", boom)
    args = ["video", world / "clip.avi", "-s", world / "style.png", "-o", tmp_path / "out"]
    result = nst(*args, "--progress", "jsonl")
    assert result.exit_code == 1
    lines = error_lines(result)
    assert len(lines) == 1 and "internal error" in lines[0] and "NST_DEBUG=1" in lines[0] and "Traceback" not in result.output
    event = json.loads(result.stdout.splitlines()[-1])
    assert event["event"] == "error" and event["code"] == 1 and "ZeroDivisionError" in event["message"]
    debug = nst(*args, env={"NST_DEBUG": "1"})
    assert isinstance(debug.exception, ZeroDivisionError)  # the traceback is there for whoever asks


# -- plugins failing inside the compiled step -----------------------------------------------------------------

def _loss_plugin(kind):
    from nst_plugin import LossTerm, hookimpl

    class Term(LossTerm):
        def __init__(self, settings):
            pass

        def loss(self, image, features, targets):
            import tensorflow as tf

            if kind == "assert":
                tf.debugging.assert_equal(tf.reduce_sum(image) * 0.0, 1.0, message="the plugin's own check")
                return tf.reduce_sum(image) * 0.0
            return tf.reduce_sum(tf.matmul(tf.reshape(image, (3, -1)), tf.ones((5, 2))))  # shape error

    class Plugin:
        @hookimpl
        def nst_register_losses(self, register):
            register(f"{kind}-loss", Term)

    return Plugin()


TINY = ["--size", "32", "--iterations", "1", "-q"]


@pytest.mark.parametrize("kind", ["assert", "shape"])
def test_a_loss_failing_in_the_graph_is_named_cli_jsonl_and_api(kind, world, tmp_path, content_rgb, style_rgb):
    import nst_plugin
    from nst_plugin import plugins

    plugins.register_plugin(_loss_plugin(kind), name=f"{kind}-plugin")
    # what the entry-point loader records for an installed plugin (test_plugin_core checks that part)
    plugins.get_host().distributions[f"{kind}-plugin"] = ("nst_asserts", "1.2.3")
    loss = f"{kind}-loss=1"
    result = nst("image", world / "content.png", "-s", world / "style.png", "-o", tmp_path / "o.png", "--loss", loss, *TINY)
    assert result.exit_code == 3, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: plugin '{kind}-plugin' (from nst_asserts 1.2.3) failed")
    assert "Traceback" not in result.output and len(lines[0]) < 600
    if kind == "assert":  # no plugin frame in TensorFlow's traceback: found by running each loss eagerly
        assert "loss 'assert-loss' failed" in lines[0] and "the plugin's own check" in lines[0]
    else:  # raised while tracing, from the plugin's own line
        assert "Dimensions must be equal" in lines[0]
    assert not (tmp_path / "o.png").exists()

    jsonl = nst("video", world / "clip.avi", "-s", world / "style.png", "-o", tmp_path / "v", "--frames", "1",
                "--loss", loss, "--progress", "jsonl", *TINY)
    assert jsonl.exit_code == 3, jsonl.output
    events = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "error" and events[-1]["code"] == 3
    assert f"plugin '{kind}-plugin'" in events[-1]["message"]

    with pytest.raises(PluginError, match=fr"plugin '{kind}-plugin' \(from nst_asserts 1.2.3\) failed during "
                                          f"nst_stylize_frame: (loss '{kind}-loss' failed: InvalidArgumentError|ValueError): \\w"):
        nst_plugin.stylize_frame(content_rgb, style_rgb, size=32, iterations=1, loss_weights={f"{kind}-loss": 1.0})


def test_strict_mode_raises_the_original_tensorflow_error(content_rgb, style_rgb, monkeypatch):
    import tensorflow as tf

    import nst_plugin
    from nst_plugin import plugins

    plugins.register_plugin(_loss_plugin("assert"), name="assert-plugin")
    monkeypatch.setenv("NST_STRICT_PLUGINS", "1")
    with pytest.raises(tf.errors.InvalidArgumentError):
        nst_plugin.stylize_frame(content_rgb, style_rgb, size=32, iterations=1, loss_weights={"assert-loss": 1.0})


# -- the exit codes are documented, and the docs agree ----------------------------------------------------------

def _table_codes(text, heading):
    section = text.split(heading, 1)[1]
    return {int(m) for m in re.findall(r"^\| (\d+) \|", section.split("\n## ", 1)[0], re.M)}


def test_exit_codes_are_documented_in_the_readme_and_events_md():
    from nst_plugin.failures import EXIT_CODES

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    assert _table_codes(readme, "### Exit codes") == set(EXIT_CODES) == {0, 1, 2, 3, 4, 130, 143}
    events = (root / "docs" / "events.md").read_text()
    assert _table_codes(events, "## Exit status") == {0, 1, 2, 3, 130, 143}
