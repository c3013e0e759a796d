"""Sequence engines: a third-party engine selected with --engine, the artifact store an engine keeps files
in (the video's output folder), and frames a file source gives more than once.

No TensorFlow: the engines here never call the frame engine.
"""

import json
import sys

import numpy as np
import pytest

from nst_plugin import plugins
from nst_plugin.config import make_config
from nst_plugin.errors import UserError
from nst_plugin.images import load_image, save_image
from nst_plugin.testing import tiny_image, write_distribution
from test_video import error_lines, events_of, nst

NEGATIVE = """
import time

from nst_plugin import FrameResult, PluginOption, SequenceResult, hookimpl


class Negative:
    \"\"\"Two passes over the frames: the first lists them (and keeps the list as an artifact), the second
    writes each frame's negative.\"\"\"

    def __init__(self, config):
        self.tag = config.option("negative.tag", "none")

    def stylize_sequence(self, frames, styles, config, context, sink):
        started = time.perf_counter()
        first = [index for index, _ in frames]
        key = ",".join(map(str, first))
        if context.store.get("frames.txt", key) is None:
            context.store.put("frames.txt", key, lambda tmp: tmp.write_text(self.tag + ":" + key))
        second = []
        for index, frame in frames:
            second.append(index)
            if index not in context.resume.frames:
                sink(index, FrameResult(image=255 - frame, stats={"engine": "negative"}))
        return SequenceResult(frames=len(second), seconds=time.perf_counter() - started,
                              stats={"passes": [first, second]})


@hookimpl
def nst_register_engines(register):
    register("negative", Negative, "every frame's negative, in two passes",
             options=[PluginOption("tag", str, "none", "written into the artifact")])
"""


@pytest.fixture
def negative_engine(tmp_path, monkeypatch):
    """The engine above, installed as the distribution nst_negative_engine (entry point 'negative-engine')
    on this process's sys.path, the only entry point loaded."""
    root = tmp_path / "site"
    root.mkdir()
    write_distribution(root, "nst_negative_engine", NEGATIVE, {"negative-engine": "nst_negative_engine"})
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("NST_LOAD_PLUGINS", "negative-engine")
    plugins.reset()
    yield
    sys.modules.pop("nst_negative_engine", None)


@pytest.fixture
def clip(tmp_path):
    """Three tiny frames as an image sequence, and a style image."""
    folder = tmp_path / "seq"
    folder.mkdir()
    frames = [tiny_image(seed=n) for n in (1, 2, 3)]
    for n, frame in enumerate(frames, start=1):
        save_image(folder / f"{n:04d}.png", frame)
    style = tmp_path / "style.png"
    save_image(style, tiny_image(seed=9))
    return folder, style, frames


# -- engines: registered, listed, selected ------------------------------------------------------------------

def test_a_plugin_engine_is_selected_with_engine_and_its_frames_land_in_the_folder(negative_engine, clip, tmp_path):
    folder, style, frames = clip
    out = tmp_path / "out"
    args = ["video", folder / "####.png", "-s", style, "-o", out, "--size", "48", "--progress", "jsonl",
            "--engine", "negative", "--option", "negative.tag=t1"]
    result = nst(*args)
    assert result.exit_code == 0, result.output
    events = events_of(result)
    assert [e["index"] for e in events if e["event"] == "frame_done"] == [1, 2, 3]
    for n, frame in enumerate(frames, start=1):
        assert np.array_equal(load_image(out / f"frame_{n:06d}.png"), 255 - frame), n
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["config"]["engine"] == "negative" and manifest["config"]["options"] == {"negative.tag": "t1"}
    assert manifest["artifacts"] == {"frames.txt": {"file": "frames.txt", "key": "1,2,3"}}  # both passes saw 1..3
    assert (out / "frames.txt").read_text() == "t1:1,2,3"
    assert sorted(p.name for p in out.iterdir()) == ["frame_000001.png", "frame_000002.png", "frame_000003.png",
                                                    "frames.txt", "nst_manifest.json"]

    again = nst(*args)  # same settings: resumed, the artifact found by its key and kept
    assert again.exit_code == 0, again.output
    assert events_of(again)[0]["resumed"] == 3 and events_of(again)[-1]["written"] == 0
    assert json.loads((out / "nst_manifest.json").read_text())["artifacts"] == manifest["artifacts"]

    replaced = nst(*args[:-1], "negative.tag=t2", "--overwrite")  # other settings: the artifact goes too
    assert replaced.exit_code == 0, replaced.output
    assert (out / "frames.txt").read_text() == "t2:1,2,3"


def test_an_unknown_engine_is_one_line_exit_2_before_any_work(negative_engine, clip, tmp_path):
    folder, style, _ = clip
    result = nst("video", folder, "-s", style, "-o", tmp_path / "out", "--engine", "negatve")
    assert result.exit_code == 2, result.output
    assert error_lines(result) == ["error: unknown engine 'negatve' (valid: keyframes, lbfgs, negative)"]
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_nst_plugins_lists_engines(negative_engine):
    data = json.loads(nst("plugins", "--json").stdout)
    assert data["engines"]["lbfgs"]["plugin"] == "nst_plugin.builtin.engine"
    negative = data["engines"]["negative"]
    assert negative["plugin"] == "negative-engine" and negative["options"][0]["key"] == "tag"
    row = next(p for p in data["plugins"] if p["name"] == "negative-engine")
    assert row["distribution"] == "nst_negative_engine" and row["registers"] == {"engines": ["negative"]}
    text = nst("plugins").stdout
    assert "engine    negative" in text and "--option negative.tag=<str>" in text and "engine    lbfgs" in text


def test_engine_is_a_video_option_only():
    assert "--engine" in nst("video", "--help").stdout
    assert "--engine" not in nst("image", "--help").stdout
    assert make_config().engine == "lbfgs" and make_config(engine="keyframes").engine == "keyframes"


# -- the artifact store --------------------------------------------------------------------------------------

def _folder(path, overwrite=False, **settings):
    from nst_plugin.video import OutputFolder, open_source

    config = make_config(**{"size": 48, **settings})
    return OutputFolder(path, config, open_source(path.parent / "seq"), [], overwrite=overwrite)


def _manifest(folder):
    return json.loads(folder.manifest_path.read_text())


def test_store_put_and_get(clip, tmp_path):
    from nst_plugin.context import ArtifactStore

    folder = _folder(tmp_path / "out")
    assert isinstance(folder, ArtifactStore)
    seen = {}

    def write(tmp):
        seen["tmp"], seen["manifest"] = tmp, _manifest(folder)
        tmp.write_bytes(b"weights")

    path = folder.put("student.weights.h5", "k1", write)
    assert path == folder.path / "student.weights.h5" and path.read_bytes() == b"weights"
    tmp = seen["tmp"]
    assert tmp.parent == folder.path and tmp.name.startswith(".") and tmp.name.endswith(".student.weights.h5")
    assert not tmp.exists()  # renamed into place
    assert seen["manifest"]["artifacts"]["student.weights.h5"]["status"] == "writing"  # listed before it exists
    assert _manifest(folder)["artifacts"] == {"student.weights.h5": {"file": "student.weights.h5", "key": "k1"}}
    assert folder.get("student.weights.h5", "k1") == path
    assert folder.get("student.weights.h5", "k2") is None  # made from something else
    assert folder.get("keyframe_000001.png", "k1") is None  # never stored

    folder.put("student.weights.h5", "k2", lambda tmp: tmp.write_bytes(b"new"))  # ours: replaced
    assert path.read_bytes() == b"new" and folder.get("student.weights.h5", "k1") is None

    def broken(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        folder.put("student.weights.h5", "k3", broken)
    assert folder.get("student.weights.h5", "k2") == path and path.read_bytes() == b"new"  # the old one stays
    assert not [p for p in folder.path.iterdir() if p.name.startswith(".nst-artifact")]
    with pytest.raises(RuntimeError, match="disk full"):
        folder.put("other.png", "k", broken)
    assert "other.png" not in _manifest(folder)["artifacts"] and not (folder.path / "other.png").exists()


@pytest.mark.parametrize("name", ["frame_000001.png", "nst_manifest.json", "sub/model.h5", "../model.h5", ".hidden",
                                  "", "."])
def test_store_refuses_names_the_folder_keeps_or_that_leave_it(clip, tmp_path, name):
    folder = _folder(tmp_path / "out")
    with pytest.raises(ValueError, match="plain file name"):
        folder.put(name, "k", lambda tmp: tmp.write_bytes(b"x"))
    with pytest.raises(ValueError, match="plain file name"):
        folder.get(name, "k")
    assert "artifacts" not in _manifest(folder)


def test_store_never_replaces_a_file_nst_did_not_write(clip, tmp_path):
    folder = _folder(tmp_path / "out")
    (folder.path / "notes.txt").write_text("the user's")
    with pytest.raises(UserError, match="notes.txt.*nst did not write"):
        folder.put("notes.txt", "k", lambda tmp: tmp.write_text("ours"))
    assert (folder.path / "notes.txt").read_text() == "the user's"
    assert folder.get("notes.txt", "k") is None


def test_resume_keeps_artifacts_and_overwrite_deletes_only_them(clip, tmp_path):
    from nst_plugin.safety import manifest_files

    out = tmp_path / "out"
    _folder(out).put("keyframes.png", "k", lambda tmp: save_image(tmp, tiny_image()))
    resumed = _folder(out)  # same settings
    assert resumed.get("keyframes.png", "k") == out / "keyframes.png"
    assert _manifest(resumed)["artifacts"]["keyframes.png"]["key"] == "k"
    assert "keyframes.png" in manifest_files(_manifest(resumed))
    resumed.close()  # one writer at a time: the run that resumed has ended
    with pytest.raises(UserError, match="other settings"):
        _folder(out, size=40)
    (out / "holiday.txt").write_text("the user's file")
    replaced = _folder(out, overwrite=True, size=40)
    assert not (out / "keyframes.png").exists() and replaced.get("keyframes.png", "k") is None
    assert (out / "holiday.txt").read_text() == "the user's file"  # not listed: never deleted
    assert "artifacts" not in _manifest(replaced)


def test_a_killed_runs_artifact_stays_ours_and_its_temporary_file_goes(clip, tmp_path):
    from nst_plugin.safety import video_plan
    from nst_plugin.video import open_source

    folder = _folder(tmp_path / "out")
    # as put() leaves the folder when the process is killed between the rename and the manifest update
    folder.artifacts["student.weights.h5"] = {"file": "student.weights.h5", "key": "k", "status": "writing"}
    folder._write_manifest()
    (folder.path / "student.weights.h5").write_bytes(b"whole, but not confirmed")
    stale = folder.path / ".nst-artifact.4242.0badf00d.keyframes.png"
    stale.write_bytes(b"half a png")
    folder.close()  # the killed process's lock goes with it
    again = _folder(tmp_path / "out")
    assert not stale.exists()  # a killed run's temporary file is removed
    assert again.get("student.weights.h5", "k") is None  # not confirmed: made again
    assert _manifest(again)["artifacts"]["student.weights.h5"]["status"] == "writing"  # still listed: ours
    video_plan(open_source(tmp_path / "seq"), [], tmp_path / "out").check()
    again.put("student.weights.h5", "k", lambda tmp: tmp.write_bytes(b"done"))  # ours: may be replaced
    assert again.get("student.weights.h5", "k").read_bytes() == b"done"
    again.close()
    _folder(tmp_path / "out", overwrite=True)
    assert not (tmp_path / "out" / "student.weights.h5").exists()


# -- frames a file source gives more than once --------------------------------------------------------------

def test_file_frames_read_twice_report_an_unreadable_frame_once(clip):
    from nst_plugin.video import SourceFrames, open_source

    folder, _, frames = clip
    (folder / "0002.png").write_bytes(b"not a png")
    source = open_source(folder / "####.png")
    warnings = []
    passes = source.frames(warnings.append)
    assert isinstance(passes, SourceFrames) and iter(passes) is not passes
    first = [(i, f.copy()) for i, f in passes]
    second = [(i, f.copy()) for i, f in passes]
    assert [i for i, _ in first] == [i for i, _ in second] == [1, 3]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(first, second))
    assert source.unreadable == [2]
    assert [(w.index, "0002.png" in w.message) for w in warnings] == [(2, True)]


def test_a_video_file_reads_the_same_frames_twice(samples):
    from nst_plugin.video import open_source

    passes = open_source(samples / "street.avi", frames="2-6", step=2).frames()
    first, second = dict(passes), dict(passes)
    assert sorted(first) == sorted(second) == [2, 4, 6]
    assert all(np.array_equal(first[i], second[i]) for i in first)


def test_a_camera_gives_one_pass():
    from nst_plugin.video import FrameSource, SourceFrames

    class Camera:
        def __init__(self):
            self.n = 0

        def grab(self):
            self.n += 1
            return self.n <= 3

        def retrieve(self):
            return True, np.full((4, 4, 3), self.n, np.uint8)

        def release(self):
            pass

    camera = FrameSource("0", "camera", 30.0, 4, 4, None, capture_factory=Camera)
    frames = camera.frames()
    assert iter(frames) is frames  # an iterator: one pass
    assert [i for i, _ in frames] == [1, 2, 3]
    assert list(frames) == []  # a second iteration yields nothing
    with pytest.raises(ValueError, match="camera"):
        SourceFrames(camera)
