"""The Blender add-on's bpy-free parts, without Blender: the engine runner (against a fake engine: progress,
cancel, crash, garbage on stdout), the jsonl progress parser, engine discovery and the strip helpers.
The add-on inside Blender is tested by blender_addon/tests (run by ``make test`` with the bpy venv)."""

import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blender_addon import engine_process, strips  # noqa: E402
from blender_addon.engine_process import EngineProcess, build_command, find_engine, last_error_line  # noqa: E402
from blender_addon.progress import Progress, format_duration, parse_line  # noqa: E402

FAKE = ROOT / "blender_addon" / "tests" / "fake_engine.py"
ENGINE_PYTHON = ROOT / ".venv" / "bin" / "python"


def fake(mode, tmp_path):
    return EngineProcess([sys.executable, str(FAKE), mode, str(tmp_path / "out")]).start()


def wait_for(predicate, process, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("timed out")


# -- the parser -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line", ["", "hello", "[1, 2]", '{"half": ', '{"no_event": 1}', '{"event": 3}', "null",
                                  b"\xff\xfe binary", "  {\"event\": \"start\"  "])
def test_parse_line_ignores_garbage(line):
    assert parse_line(line) is None


def test_parse_line_reads_an_event():
    assert parse_line(' {"event": "frame_done", "index": 4}\n') == {"event": "frame_done", "index": 4}


def test_progress_numbers_with_a_fake_clock():
    now = [100.0]
    progress = Progress(clock=lambda: now[0])
    assert progress.summary() == "starting the engine..."
    progress.apply({"event": "start", "total": 10, "resumed": 2, "frames": list(range(1, 11)), "output": "/o"})
    assert (progress.done, progress.resumed, progress.status) == (2, 2, "running")
    progress.apply({"event": "frame_progress", "index": 3, "step": 5, "total": 10, "loss": 3.0})
    assert progress.fraction == pytest.approx(2.5 / 10)
    assert "first frame step 5/10" in progress.summary()
    now[0] = 120.0
    progress.apply({"event": "frame_done", "index": 3, "path": "/o/frame_000003.png", "seconds": 18.0, "loss": 2.0,
                    "done": 3, "total": 10})
    assert progress.seconds_per_frame == 18.0  # one frame: the engine's own time
    for i, t in ((4, 124.0), (5, 128.0)):
        now[0] = t
        progress.apply({"event": "frame_done", "index": i, "seconds": 3.0, "done": i, "total": 10})
    assert progress.seconds_per_frame == pytest.approx(4.0)  # wall clock between frames
    assert progress.seconds_left == pytest.approx(5 * 4.0)
    assert progress.summary() == "5/10 frames, 4.0 s/frame, 0:20 left"
    assert progress.finished[3] == "/o/frame_000003.png" and progress.written == 3
    progress.apply({"event": "warning", "message": "frame 7 skipped", "index": 7})
    progress.apply({"event": "done", "status": "ok", "output": "/o"})
    assert progress.status == "ok" and progress.warnings == ["frame 7 skipped"]
    assert progress.summary().endswith(", ok")


def test_progress_keeps_an_error_and_ignores_odd_values():
    progress = Progress()
    assert progress.feed("not json at all") is None and progress.garbage == ["not json at all"]
    progress.feed('{"event": "frame_done", "index": "seven", "done": null}')
    assert progress.written == 0
    progress.feed('{"event": "error", "message": "style image \'x.jpg\' does not exist", "code": 2}')
    progress.feed('{"event": "done", "status": "incomplete"}')
    assert progress.status == "error" and progress.error == "style image 'x.jpg' does not exist"


def test_format_duration():
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05" and format_duration(None) == "?"


# -- the runner -----------------------------------------------------------------------------------------------

def test_runner_reads_progress_and_ignores_garbage(tmp_path):
    process = fake("ok", tmp_path)
    seen = []
    assert process.wait(timeout=30, on_events=seen.extend) == 0
    progress = process.progress
    assert progress.status == "ok" and progress.done == 3 and progress.total == 3 and progress.error is None
    assert sorted(progress.finished) == [1, 2, 3]
    assert all(Path(p).is_file() for p in progress.finished.values())
    assert [e["event"] for e in seen].count("frame_done") == 6  # 3 real ones and 3 with odd values
    assert any("library chatter" in g for g in progress.garbage) and any("a line cut in" in g for g in progress.garbage)


def test_poll_does_not_block(tmp_path):
    process = fake("slow", tmp_path)
    slowest = 0.0
    while not process.finished:
        t = time.perf_counter()
        process.poll()
        slowest = max(slowest, time.perf_counter() - t)
        time.sleep(0.01)
    process.poll()
    assert slowest < 0.2 and process.progress.status == "ok" and process.progress.done == 3


def test_cancel_interrupts_and_keeps_finished_frames(tmp_path):
    process = fake("hang", tmp_path)
    wait_for(lambda: process.progress.done == 1, process)
    assert process.cancel(grace=10) == 130
    process.wait(timeout=10)
    assert process.progress.status == "interrupted" and process.progress.error is None
    assert (tmp_path / "out" / "frame_000001.png").is_file()


def test_cancel_kills_a_process_that_ignores_signals(tmp_path):
    process = fake("stubborn", tmp_path)
    wait_for(lambda: process.progress.done == 1, process)
    started = time.monotonic()
    code = process.cancel(grace=0.3)
    assert code in (-signal.SIGTERM, -signal.SIGKILL) and time.monotonic() - started < 8
    process.wait(timeout=10)
    assert process.progress.status == "interrupted"


def test_request_cancel_does_not_block_and_escalates(tmp_path):
    process = fake("stubborn", tmp_path)
    wait_for(lambda: process.progress.done == 1, process)
    process.grace = 0.3
    started = time.perf_counter()
    process.request_cancel()
    assert time.perf_counter() - started < 0.2 and process.running
    assert process.wait(timeout=10) in (-signal.SIGTERM, -signal.SIGKILL)


def test_crash_reports_the_last_error_line(tmp_path):
    process = fake("crash", tmp_path)
    assert process.wait(timeout=30) == 1
    progress = process.progress
    assert progress.status == "error" and progress.done == 1
    assert progress.error == "engine failed (exit status 1): RuntimeError: out of memory while stylizing frame 2"


def test_error_event_is_the_message(tmp_path):
    process = fake("error", tmp_path)
    assert process.wait(timeout=30) == 2
    assert process.progress.error == "output folder '/x' holds frames made with other settings (size 32 -> 48)"


def test_killed_engine_says_so(tmp_path):
    process = fake("hang", tmp_path)
    wait_for(lambda: process.progress.done == 1, process)
    os.kill(process.process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    assert process.progress.status == "error" and process.progress.error.startswith("engine crashed (SIGKILL)")


def test_last_error_line():
    assert last_error_line(["warning: x", "error: folder is not writable", ""]) == "folder is not writable"
    assert last_error_line(["Traceback", '  File "x"', "ValueError: bad", "  noise"]) == "ValueError: bad"
    assert last_error_line(["just this"]) == "just this" and last_error_line([]) is None


def test_real_engine_error_goes_through_the_runner(tmp_path):
    """The real ``nst video --progress jsonl`` on a missing source: an error event and its message."""
    if not ENGINE_PYTHON.exists():
        pytest.skip("no .venv engine")
    argv = build_command(str(ENGINE_PYTHON), str(tmp_path / "missing.avi"), str(ROOT / "samples" / "starry_night.jpg"),
                         str(tmp_path / "out"), {"size": 32})
    process = EngineProcess(argv).start()
    assert process.wait(timeout=120) == 2
    assert process.progress.status == "error" and "missing.avi" in process.progress.error


# -- the command and finding the engine -----------------------------------------------------------------------

def test_build_command():
    argv = build_command("/py", "/clip.avi", "/s.jpg", "/out", {
        "preset": "default", "size": 48, "content_weight": 1.0, "style_weight": 2.5, "temporal_weight": 0.0,
        "preserve_color": True, "iterations": 2, "extra_losses": {"w2": 0.5}}, frames=(3, 5), overwrite=True)
    assert argv[:5] == ["/py", "-m", "nst_plugin", "video", "/clip.avi"]
    text = " ".join(argv)
    for part in ("--style /s.jpg", "--output /out", "--progress jsonl", "--preset default", "--size 48",
                 "--content-weight 1.0", "--style-weight 2.5", "--temporal-weight 0.0", "--preserve-color",
                 "--iterations 2", "--warm-iterations 2", "--frames 3-5", "--overwrite", "--loss w2=0.5"):
        assert part in text
    plain = build_command("/py", "a", "b", "c", {"preset": "seed", "iterations": 0})
    assert "--iterations" not in plain and "--overwrite" not in plain and "--content-weight" not in plain


def test_build_command_is_accepted_by_the_cli():
    from typer.testing import CliRunner

    from nst_plugin.cli import app

    argv = build_command("/py", "x", "y", "z", {"preset": "default", "size": 48, "content_weight": 1.0,
                                                 "style_weight": 1.0, "temporal_weight": 0.1, "preserve_color": True,
                                                 "iterations": 2, "extra_losses": {"tv": 0.1}},
                         frames=(1, 2), overwrite=True)
    result = CliRunner().invoke(app, argv[3:])  # a missing source: the options themselves were accepted
    assert result.exit_code == 2 and "No such option" not in result.output


def test_find_engine_configured_and_missing(tmp_path):
    if ENGINE_PYTHON.exists():
        info = find_engine(str(ENGINE_PYTHON), environ={"PATH": ""})
        assert info.ok and info.how == "set in the preferences" and info.version
        assert info.describe().startswith(f"nst-plugin {info.version} in {ENGINE_PYTHON}")
    info = find_engine(str(tmp_path / "nope" / "python"), environ={"PATH": ""})
    assert not info.ok and "does not exist" in info.error and "pip install nst-plugin" in info.error
    info = find_engine("", addon_dir=tmp_path / "addon", environ={"PATH": ""})
    assert not info.ok and info.error.startswith("engine not found") and "NST_PYTHON" in info.error


def test_find_engine_candidates(tmp_path):
    (tmp_path / "bin").mkdir()
    nst = tmp_path / "bin" / "nst"
    nst.write_text("#!/opt/nst-env/bin/python3\nfrom nst_plugin.cli import main\nmain()\n")
    nst.chmod(nst.stat().st_mode | stat.S_IEXEC)
    found = engine_process.candidate_pythons("", addon_dir=tmp_path / "repo" / "blender_addon",
                                             environ={"NST_PYTHON": "/env/python", "PATH": str(tmp_path / "bin")})
    paths = [p for p, _ in found]
    assert paths[0] == "/env/python"
    assert str(tmp_path / "repo" / ".venv" / "bin" / "python") in paths
    assert paths[-1] == "/opt/nst-env/bin/python3"
    if ENGINE_PYTHON.exists():  # this checkout: the .venv next to blender_addon/
        info = find_engine("", addon_dir=ROOT / "blender_addon", environ={"PATH": ""})
        assert info.ok and Path(info.python) == ENGINE_PYTHON and ".venv next to the add-on" in info.how


def test_engine_environment_drops_blenders_python_settings():
    env = engine_process.engine_environment({"PYTHONHOME": "/blender/python", "PYTHONPATH": "/x", "HOME": "/h"})
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env and env["HOME"] == "/h"


# -- strip helpers --------------------------------------------------------------------------------------------

def test_first_free_channel():
    occupied = [(1, 1, 100), (2, 10, 20), (3, 0, 5), (4, 15, 30)]
    assert strips.first_free_channel(occupied, above=1, start=20, end=25) == 2  # channel 2 ends at 20
    assert strips.first_free_channel(occupied, above=1, start=12, end=18) == 3
    assert strips.first_free_channel(occupied, above=1, start=2, end=18) == 5
    assert strips.first_free_channel([(c, 0, 10) for c in range(1, 129)], above=1, start=0, end=5) is None


def test_frame_mapping_and_range():
    assert strips.timeline_range(12, 15) == (12, 14)
    assert strips.timeline_range(12, 40, first=20, last=100) == (20, 39)
    with pytest.raises(ValueError):
        strips.timeline_range(12, 15, first=30, last=40)
    assert strips.movie_index(12, frame_start=10) == 3
    assert strips.movie_index(10, frame_start=10, animation_offset_start=5) == 6


def test_sequence_pattern_and_names():
    assert strips.sequence_pattern(["shot_0009.png", "shot_0010.png"]) == ("shot_####.png", [9, 10])
    assert strips.sequence_pattern(["a_01.png", "b_02.png"]) is None
    assert strips.sequence_pattern(["still.png"]) is None
    assert strips.default_output_dir("street.avi", "/art/Starry Night.jpg") == "//nst/street_Starry_Night/"
    assert strips.result_strip_name("/art/starry_night.jpg") == "NST starry_night"
    assert strips.check_strip_type("MOVIE") is None
    assert strips.check_strip_type("SOUND") == ("cannot stylize a sound strip: select one of the movie strips "
                                                "and image-sequence strips")
    assert strips.frame_files([1, 12]) == ["frame_000001.png", "frame_000012.png"]


def test_compatibility_layer():
    class V5:
        strips, strips_all = "top", "all"

    class V4:
        sequences, sequences_all = "top4", "all4"

    assert strips.strips_of(V5()) == "top" and strips.all_strips(V5()) == "all"
    assert strips.strips_of(V4()) == "top4" and strips.all_strips(V4()) == "all4"
