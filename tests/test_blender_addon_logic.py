"""The Blender add-on's bpy-free parts, without Blender: the engine runner (against a fake engine: progress,
cancel, crash, garbage on stdout), the jsonl progress parser, engine discovery, the plan (built from a
stand-in strip, stored and read back as JSON; Preview Frame's), the settings file, the strip helpers, and
the engine's set-up (base Python, pip command lines, marker, Remove, the step runner, pip's progress).
The add-on inside Blender is tested by blender_addon/tests (run by ``make test`` with the bpy venv)."""

import json
import os
import signal
import stat
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blender_addon import compat, engine_process, engine_setup, plan, strips  # noqa: E402
from blender_addon.engine_process import EngineProcess, build_command, find_engine, last_error_line  # noqa: E402
from blender_addon.plan import Plan, PlanError  # noqa: E402
from blender_addon.progress import Progress, format_duration, format_short, parse_line  # noqa: E402

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
    assert [format_short(s) for s in (45, 185, 3900, None, -1)] == ["45s", "3m", "1h05m", "?", "?"]


def test_the_strip_names_suffix_shows_percent_and_time_left():
    now = [0.0]
    progress = Progress(clock=lambda: now[0])
    assert progress.name_suffix() == "0%"  # starting
    progress.apply({"event": "start", "total": 12, "resumed": 0, "width": 384, "height": 288})
    assert progress.name_suffix() == "0%" and progress.source_size == (384, 288)
    for i, t in ((1, 30.0), (2, 60.0), (3, 90.0)):
        now[0] = t
        progress.apply({"event": "frame_done", "index": i, "seconds": 30.0, "done": i, "total": 12})
    assert progress.name_suffix() == "25% 4m left"  # 9 frames of 30 s
    progress.apply({"event": "frame_progress", "index": 4, "step": 5, "total": 10, "loss": 1.0})
    assert progress.name_suffix() == "29% 4m left"
    progress.apply({"event": "done", "status": "ok"})
    assert progress.name_suffix() == ""  # ended: the plain name again


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

    assert compat.strips_of(V5()) == "top" and compat.all_strips(V5()) == "all"
    assert compat.strips_of(V4()) == "top4" and compat.all_strips(V4()) == "all4"


class FakeCurves(dict):
    def find(self, data_path, index=0):
        return self.get((data_path, index))


def test_compatibility_fcurves_of_42_and_of_layered_actions():
    """4.2-4.3: ``action.fcurves``; 4.4+ (the only way in 5.0): the channel bag of the ID's slot."""
    from types import SimpleNamespace as NS

    curve = object()
    old = NS(animation_data=NS(action=NS(fcurves=FakeCurves({("nst.strength", 0): curve}))))
    assert compat.fcurve(old, "nst.strength") is curve and compat.fcurve(old, "nst.size") is None
    slot, other = object(), object()
    bags = {slot: NS(fcurves=FakeCurves({("nst.strength", 0): curve})), other: NS(fcurves=FakeCurves())}
    layered = NS(layers=[NS(strips=[NS(channelbag=lambda s: None)]), NS(strips=[NS(channelbag=bags.get)])])
    assert compat.fcurve(NS(animation_data=NS(action=layered, action_slot=slot)), "nst.strength") is curve
    assert compat.fcurve(NS(animation_data=NS(action=layered, action_slot=other)), "nst.strength") is None
    for nothing in (NS(), NS(animation_data=None), NS(animation_data=NS(action=None, action_slot=None))):
        assert compat.fcurve(nothing, "nst.strength") is None


def test_the_result_strip_covers_the_source(tmp_path):
    source = {"scale_x": 2.0, "scale_y": 1.5, "offset_x": 30.0, "offset_y": -20.0, "rotation": 0.25,
              "origin": (0.5, 0.5), "flip_x": True, "flip_y": False, "crop": (96, 0, 0, 48)}
    half = strips.cover_placement(source, (1920, 1080), (960, 540))  # made at half the resolution
    assert (960 * half["scale_x"], 540 * half["scale_y"]) == (1920 * 2.0, 1080 * 1.5)  # the same size on screen
    assert half["crop"] == (48, 0, 0, 24) and {k: half[k] for k in ("offset_x", "offset_y", "rotation", "origin",
                                                                      "flip_x")} == {k: source[k] for k in (
        "offset_x", "offset_y", "rotation", "origin", "flip_x")}
    assert strips.cover_placement(source, (1920, 1080), (1920, 1080)) == source
    png = tmp_path / "f.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x01\x80\0\0\x01\x20" + b"\0" * 20)
    assert strips.png_size(png) == (384, 288)
    (tmp_path / "x.png").write_bytes(b"GIF89a" + b"\0" * 30)
    assert strips.png_size(tmp_path / "x.png") is None and strips.png_size(tmp_path / "missing.png") is None


# -- the plan -------------------------------------------------------------------------------------------------

SAMPLES = ROOT / "samples"
STYLE = str(SAMPLES / "starry_night.jpg")
# what a result strip made by the add-on before Plan existed holds (format version 1), byte for byte
V1 = ('{"version": 1, "source_strip": "street", "source": "/clips/street.avi", "source_type": "MOVIE", '
      '"source_channel": 2, "style": "/art/starry_night.jpg", "settings": {"preset": "default", "size": 32, '
      '"preserve_color": false, "iterations": 2}, "timeline": [12, 14], "indices": [3, 4, 5], '
      '"output": "//nst/street_starry_night/"}')


class FakeStrip(dict):
    """A movie strip as the plan sees it: attributes, and custom properties through ``get``."""

    def __init__(self, **attrs):
        super().__init__()
        self.__dict__.update(attrs)


def trimmed_movie(**more):
    """samples/street.avi at frame 10 on channel 2, its first two frames trimmed off, 3 frames visible."""
    attrs = {"type": "MOVIE", "name": "street", "filepath": str(SAMPLES / "street.avi"), "frame_start": 10,
             "animation_offset_start": 0, "frame_final_start": 12, "frame_final_end": 15, "channel": 2}
    attrs.update(more)
    return FakeStrip(**attrs)


def panel(**more):
    from types import SimpleNamespace

    values = {"style_image": STYLE, "use_strip_range": True, "frame_first": 1, "frame_last": 250, "output_dir": "",
              "settings": {"preset": "default", "size": 32, "preserve_color": False, "iterations": 2}}
    values.update(more)
    return SimpleNamespace(engine_settings=lambda strip_size=None: dict(values["settings"]), **values)


def test_plan_from_a_trimmed_strip():
    made = Plan.from_source_strip(trimmed_movie(), panel())
    assert made.timeline == (12, 14) and made.indices == [3, 4, 5] and made.frames == (3, 5)
    assert made.source == str(SAMPLES / "street.avi") and made.source_type == "MOVIE" and made.source_channel == 2
    assert made.output == "//nst/street_starry_night/" and made.style == STYLE and made.version == plan.VERSION
    assert made.files == ["frame_000003.png", "frame_000004.png", "frame_000005.png"]
    assert made.strip_name == "NST starry_night"
    hard = Plan.from_source_strip(trimmed_movie(animation_offset_start=5), panel(use_strip_range=False,
                                                                                frame_first=13, frame_last=99))
    assert hard.timeline == (13, 14) and hard.indices == [9, 10]  # a custom range clamped; the hard trim counts
    with pytest.raises(PlanError, match="lies outside the strip's frames 12-14"):
        Plan.from_source_strip(trimmed_movie(), panel(use_strip_range=False, frame_first=40, frame_last=50))
    with pytest.raises(PlanError, match="choose a style image"):
        Plan.from_source_strip(trimmed_movie(), panel(style_image=""))
    with pytest.raises(PlanError, match="the movie of strip 'street' is missing"):
        Plan.from_source_strip(trimmed_movie(filepath="/no/such.avi"), panel())
    with pytest.raises(PlanError, match="cannot stylize a sound strip"):
        Plan.from_source_strip(trimmed_movie(type="SOUND"), panel())


def animated_panel(animation, **more):
    """A panel whose settings in ``animation`` (name -> {timeline frame: value}) are keyframed."""
    made = panel(**more)
    made.animated = lambda: list(animation)
    made.animation = lambda frames: {name: [values[f] for f in frames] for name, values in animation.items()}
    made.engine_settings = lambda leave_out=(), strip_size=None: {k: v for k, v in made.settings.items()
                                                                  if k not in leave_out}
    return made


def test_keyframed_settings_go_to_the_engine_per_frame():
    strength = {12: 0.2, 13: 0.5, 14: 0.8}
    made = Plan.from_source_strip(trimmed_movie(), animated_panel(
        {"strength": strength}, settings={"preset": "default", "size": 32, "strength": 0.3}))
    assert made.frame_settings == {"3": {"strength": 0.2}, "4": {"strength": 0.5}, "5": {"strength": 0.8}}
    assert "strength" not in made.settings  # not a constant: the output folder's hash does not follow the curve
    values = made.engine_settings()
    assert values["frame_settings"] == made.frame_settings and "strength" not in values
    assert Plan.from_json(made.to_json()) == made  # stored on the result strip: Resume sends the same
    one = Plan.from_source_strip(trimmed_movie(), animated_panel({"strength": strength}), frame=13)
    assert one.frame_settings == {} and "frame_settings" not in json.loads(one.to_json())  # Preview: the value at the playhead
    from blender_addon import engines

    keyframes_only = {"engines": {name: {"traits": {"label": name.title(), "frame_settings": name != "keyframes"}}
                                  for name in ("lbfgs", "keyframes")}}
    engines.use_listing(keyframes_only)  # the listing says which engines take per-frame values
    try:
        with pytest.raises(PlanError, match=r"^strength keyframed on the timeline: the Keyframes engine takes one value"):
            Plan.from_source_strip(trimmed_movie(), animated_panel({"strength": strength},
                                                                   settings={"preset": "default", "engine": "keyframes"}))
        assert Plan.from_source_strip(trimmed_movie(), animated_panel(
            {"strength": strength}, settings={"engine": "lbfgs"})).frame_settings == made.frame_settings
    finally:
        engines.forget()
    assert plan.frame_schedule([7, 8], {"style_weight": [1.0, 2.0], "temporal_weight": [0.0, 0.5]}) == {
        "7": {"style_weight": 1.0, "temporal_weight": 0.0}, "8": {"style_weight": 2.0, "temporal_weight": 0.5}}


def test_keyframed_settings_are_what_the_engine_reads():
    from nst_plugin.schedule import load_frame_schedule

    made = Plan.from_source_strip(trimmed_movie(), animated_panel({"strength": {12: 0.2, 13: 0.5, 14: 0.8}}))
    values = made.engine_settings()
    schedule = load_frame_schedule(values)
    assert schedule.values == {3: {"strength": 0.2}, 4: {"strength": 0.5}, 5: {"strength": 0.8}}
    assert "frame_settings" not in values  # taken out: the rest are the run's constant settings


def test_plan_round_trip():
    made = Plan.from_source_strip(trimmed_movie(), panel(output_dir="/renders/out/"))
    assert Plan.from_json(made.to_json()) == made
    data = json.loads(made.to_json())
    assert data["version"] == 1 and data["timeline"] == [12, 14] and data["output"] == "/renders/out/"
    strip = FakeStrip(name="NST starry_night")
    strip[plan.PROP] = made.to_json()
    assert Plan.from_result_strip(strip) == made


def test_plan_reads_version_1_as_written_before_plan_existed():
    old = Plan.from_json(V1)
    assert (old.source_strip, old.source, old.source_type, old.source_channel) == ("street", "/clips/street.avi",
                                                                                   "MOVIE", 2)
    assert old.timeline == (12, 14) and old.indices == [3, 4, 5] and old.settings["size"] == 32
    assert old.output == "//nst/street_starry_night/" and old.style == "/art/starry_night.jpg"
    assert json.loads(old.to_json()) == json.loads(V1)  # the same format: written back unchanged
    assert Plan.from_json({k: v for k, v in json.loads(V1).items() if k != "version"}) == old  # the earliest strips


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", "null", '{"timeline": [12, 14]}',
                                  V1.replace('"indices": [3, 4, 5]', '"indices": []'),
                                  V1.replace('"timeline": [12, 14]', '"timeline": "12-14"'),
                                  V1.replace('"version": 1', '"version": "one"'),
                                  V1.replace('"version": 1', '"version": 0'),
                                  V1.replace('"settings": {', '"settings": [{').replace('"iterations": 2}', '"iterations": 2}]')])
def test_a_damaged_plan_is_one_clear_error(text):
    with pytest.raises(PlanError, match="^its style-transfer settings are damaged$"):
        Plan.from_json(text)
    strip = FakeStrip(name="NST x")
    strip[plan.PROP] = text
    expected = "is not a style-transfer result" if not text else "^strip 'NST x': its style-transfer settings are damaged$"
    with pytest.raises(PlanError, match=expected):
        Plan.from_result_strip(strip)


def test_a_plan_from_a_newer_add_on_says_so():
    with pytest.raises(PlanError, match=r"format 2, newer than this add-on reads \(1\): update the add-on"):
        Plan.from_json(V1.replace('"version": 1', '"version": 2'))


def test_rerun_plan():
    old = Plan.from_json(V1)
    fresh = Plan.from_source_strip(trimmed_movie(), panel(settings={"size": 40}))
    again = old.rerun({"size": 40}, "/art/wave.jpg", fresh)
    assert again.output == old.output and again.settings == {"size": 40} and again.style == STYLE
    assert not again.same_run(old) and old.same_run(old)
    from dataclasses import replace

    assert old.same_run(replace(old, frame_settings={"3": {"strength": 0.2}}))  # only keyframed values: no overwrite
    orphan = old.rerun({"size": 48}, "/art/wave.jpg")  # the source strip is gone: its stored frames
    assert (orphan.settings, orphan.style, orphan.indices, orphan.output) == ({"size": 48}, "/art/wave.jpg",
                                                                              [3, 4, 5], old.output)


# -- the settings file ----------------------------------------------------------------------------------------

PANEL = {"preset": "default", "size": 48, "content_weight": 1.0, "style_weight": 2.5, "temporal_weight": 0.0,
         "preserve_color": True, "iterations": 2, "extra_losses": {"w2": 0.5}}


def test_engine_settings_use_the_engines_names():
    assert plan.engine_settings(PANEL) == {
        "preset": "default", "size": 48, "content_weight": 1.0, "style_weight": 2.5, "temporal_weight": 0.0,
        "preserve_color": True, "loss": ["w2=0.5"], "iterations": 2, "warm_iterations": 2}
    assert plan.engine_settings({"preset": "seed", "size": None, "iterations": 0, "preserve_color": False,
                                 "content_weight": -1}) == {"preset": "seed"}  # unset: the preset's
    assert plan.engine_settings({"preset": "seed", "size": 0}) == {"preset": "seed", "size": 0}  # the source's
    assert plan.engine_settings({"preset": "default", "strength": 0.8}) == {"preset": "default", "strength": 0.8}


def test_the_keyframe_engine_from_the_panel_runs_at_the_strips_resolution():
    from nst_plugin.config import make_config
    from nst_plugin.settings import overrides_from_settings

    # Resolution "Strip's" is size 0 in the settings, whatever the engine (an engine's own default when no size
    # is given, its output_size trait, is the engine's business: nst_plugin.api.prepare)
    values = plan.engine_settings({"preset": "default", "engine": "keyframes", "size": 0, "iterations": 0})
    assert values == {"preset": "default", "engine": "keyframes", "size": 0}
    preset, overrides = overrides_from_settings(values)
    config = make_config(preset, **overrides)
    assert config.engine == "keyframes" and config.working_shape(576, 768) == (576, 768)
    _, overrides = overrides_from_settings(plan.engine_settings({"engine": "keyframes", "size": 360}))
    sized = make_config(**overrides)
    assert sized.working_shape(576, 768) == (270, 360)


def test_settings_file_written_privately_and_removed(tmp_path):
    values = plan.engine_settings(PANEL)
    path = engine_process.write_settings_file(values, tmp_path / "private")
    assert Path(path).parent == tmp_path / "private" and Path(path).name.startswith("nst-run-")
    assert json.loads(Path(path).read_text()) == values
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    engine_process.remove_settings_file(path)
    assert not Path(path).exists()
    engine_process.remove_settings_file(path)  # twice: no error
    default = engine_process.write_settings_file({})
    try:
        assert Path(default).parent == Path(__import__("tempfile").gettempdir())
    finally:
        engine_process.remove_settings_file(default)


def test_stale_settings_files_are_removed(tmp_path):
    old, new = (engine_process.write_settings_file({}, tmp_path) for _ in range(2))
    other = tmp_path / "notes.json"
    other.write_text("{}")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    os.utime(other, (time.time() - 2 * 86400,) * 2)
    assert engine_process.remove_stale_settings_files(tmp_path) == 1
    assert not Path(old).exists() and Path(new).exists() and other.exists()
    assert engine_process.remove_stale_settings_files(None) == 0


def test_build_command_with_a_settings_file():
    argv = build_command("/py", "/clip.avi", "/s.jpg", "/out", PANEL, frames=(3, 5), overwrite=True,
                         settings_file="/private/run.json")
    assert argv == ["/py", "-m", "nst_plugin", "video", "/clip.avi", "--style", "/s.jpg", "--output", "/out",
                    "--progress", "jsonl", "--settings", "/private/run.json", "--frames", "3-5", "--overwrite"]
    flags = build_command("/py", "/clip.avi", "/s.jpg", "/out", PANEL)  # an engine without --settings
    assert flags[11:] == engine_process.settings_flags(plan.engine_settings(PANEL))


def test_accepts_settings_file_asks_the_engine_once(tmp_path, monkeypatch):
    script = tmp_path / "python"
    script.write_text(f'#!/bin/sh\necho called >> "{tmp_path}/calls"\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    script.chmod(0o755)
    assert engine_process.accepts_settings_file(str(script)) is True
    assert engine_process.accepts_settings_file(str(script)) is True
    assert (tmp_path / "calls").read_text().count("called") == 1  # cached
    monkeypatch.setenv("NST_FAKE_NO_SETTINGS", "1")
    assert engine_process.accepts_settings_file(str(script), refresh=True) is False
    assert engine_process.accepts_settings_file(str(tmp_path / "missing")) is False


def test_settings_file_is_accepted_by_the_cli(tmp_path):
    """With the engine's ``--settings`` (when this checkout has it): the file the add-on writes is read, and
    gives the same settings as the flags it replaces."""
    from typer.testing import CliRunner

    from nst_plugin.cli import app

    if "--settings" not in CliRunner().invoke(app, ["video", "--help"], env={"COLUMNS": "200"}).output:
        pytest.skip("this engine has no nst video --settings yet")
    path = engine_process.write_settings_file(plan.engine_settings(PANEL | {"extra_losses": {"tv": 0.1}}), tmp_path)
    argv = build_command("/py", str(tmp_path / "missing.avi"), STYLE, str(tmp_path / "out"), settings_file=path)
    result = CliRunner().invoke(app, argv[3:])
    assert result.exit_code == 2 and "No such option" not in result.output and "missing.avi" in result.output


# -- Preview Frame's plan ---------------------------------------------------------------------------------------

def test_a_plan_for_the_frame_under_the_playhead():
    one = Plan.from_source_strip(trimmed_movie(), panel(use_strip_range=False, frame_first=1, frame_last=2), frame=13)
    assert one.timeline == (13, 13) and one.indices == [4] and one.frames == (4, 4)
    with pytest.raises(PlanError, match=r"^the playhead \(frame 15\) is not over strip 'street' \(frames 12-14\): "
                                        r"move it onto the strip$"):
        Plan.from_source_strip(trimmed_movie(), panel(), frame=15)


def test_preview_settings_are_small_and_fast():
    assert plan.preview_settings({"preset": "default", "size": 384, "iterations": 0, "engine": "keyframes",
                                  "option": ["keyframes.steps=5"], "strength": 0.8}) == {
        "preset": "default", "size": 192, "iterations": 10, "strength": 0.8}  # one frame: no engine named
    assert plan.preview_settings({"size": 64, "iterations": 3}) == {"size": 64, "iterations": 3}
    assert plan.preview_settings({"engine": "keyframes"})["size"] == 192  # the strip's resolution: capped too


# -- the engine's set-up ------------------------------------------------------------------------------------------

from blender_addon.engine_setup import SetupError, SetupJob, Source, Step  # noqa: E402

sys.path.insert(0, str(ROOT / "blender_addon" / "tests"))
from fake_engine_package import make_wheel, write_checkout  # noqa: E402


def fake_interpreter(folder, name, version, prefix="/usr", fails=False):
    """An executable that answers the base-Python probe like an interpreter of ``version``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    answer = json.dumps({"version": list(version), "executable": f"/opt/{name}", "prefix": prefix})
    body = "echo 'ModuleNotFoundError: No module named venv' >&2; exit 1" if fails else f"echo '{answer}'"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path


def test_find_base_python_takes_the_first_310_to_312_that_is_not_blenders(tmp_path):
    bin_ = tmp_path / "bin"
    fake_interpreter(bin_, "python3.11", (3, 11), fails=True)  # no venv module
    fake_interpreter(bin_, "python3.12", (3, 13))  # a shim that runs another version
    fake_interpreter(bin_, "python3.10", (3, 10), prefix=str(tmp_path / "blender" / "python"))  # Blender's own
    fake_interpreter(bin_, "python3", (3, 12))
    found = engine_setup.find_base_python(exclude_prefixes=[str(tmp_path / "blender" / "python")],
                                          environ={"PATH": str(bin_)})
    assert (found.executable, found.version, found.how) == ("/opt/python3", (3, 12), "python3 on PATH")
    with pytest.raises(SetupError, match=r"^no Python 3.10-3.12 found on PATH \(python3.11, python3.12, python3.10, "
                                         r"python3\): install one, or set Base Python"):
        engine_setup.find_base_python(environ={"PATH": str(tmp_path / "empty")})
    with pytest.raises(SetupError, match=r"^Base Python: .*python3.12 is Python 3.13; the engine needs 3.10-3.12$"):
        engine_setup.find_base_python(str(bin_ / "python3.12"), environ={"PATH": str(bin_)})  # no fall-back
    with pytest.raises(SetupError, match=r"^Base Python: .*python3.11 is not a usable Python with venv and "
                                         r"ensurepip \(ModuleNotFoundError: No module named venv\)$"):
        engine_setup.find_base_python(str(bin_ / "python3.11"))
    with pytest.raises(SetupError, match="is Blender's own Python"):
        engine_setup.find_base_python(str(bin_ / "python3.10"), exclude_prefixes=[str(tmp_path / "blender" / "python")])
    with pytest.raises(SetupError, match="cannot run"):
        engine_setup.find_base_python(str(tmp_path / "missing"))
    real = engine_setup.find_base_python(sys.executable)  # a real one answers for itself
    assert real.version == sys.version_info[:2] and Path(real.executable).exists()


def test_sources_are_checked_before_anything_runs(tmp_path):
    with pytest.raises(SetupError, match=r"^the package index needs online access: allow it in Preferences > "
                                         r"System > Network \(Allow Online Access\), or pick a local wheel or checkout"):
        Source("INDEX").check(online=False)
    Source("INDEX").check(online=True)
    with pytest.raises(SetupError, match="choose the engine's wheel file"):
        Source("WHEEL").check(online=True)
    with pytest.raises(SetupError, match=r"wheel .*engine.zip is not a \.whl file"):
        Source("WHEEL", str(tmp_path / "engine.zip")).check(online=True)
    with pytest.raises(SetupError, match="checkout .*nowhere is not a folder"):
        Source("CHECKOUT", str(tmp_path / "nowhere")).check(online=False)
    Source("WHEEL", str(make_wheel(tmp_path))).check(online=False)
    Source("CHECKOUT", str(tmp_path)).check(online=False)  # whether it is a project: pip says
    assert Source.from_dict(Source("WHEEL", "/w.whl").to_dict()) == Source("WHEEL", "/w.whl")
    assert Source.from_dict({"kind": "FTP"}) is None and Source.from_dict(None) is None


def test_pip_command_lines():
    pip = ["/env/bin/python", "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    assert engine_setup.pip_commands("/env/bin/python", Source("INDEX"), online=True) == [pip + ["nst-plugin"]]
    assert engine_setup.pip_commands("/env/bin/python", Source("INDEX"), online=True, update=True) == [
        pip + ["--upgrade", "nst-plugin"]]
    assert engine_setup.pip_commands("/env/bin/python", Source("WHEEL", "/wh/nst_plugin-1-py3-none-any.whl"), online=False) == [
        pip + ["--no-index", "--find-links", "/wh", "/wh/nst_plugin-1-py3-none-any.whl"]]
    # a checkout: the user's own ``pip install /path/to/nst-plugin``, also for the real project
    assert engine_setup.pip_commands("/env/bin/python", Source("CHECKOUT", str(ROOT)), online=True) == [pip + [str(ROOT)]]
    update = engine_setup.pip_commands("/env/bin/python", Source("CHECKOUT", "/src/nst"), online=False, update=True)
    assert update == [pip + ["--no-index", "--upgrade", "/src/nst"],
                      pip + ["--no-index", "--force-reinstall", "--no-deps", "/src/nst"]]


def test_setup_steps(tmp_path):
    base = engine_setup.BasePython("/usr/bin/python3.11", (3, 11), "python3.11 on PATH")
    steps = engine_setup.setup_steps(tmp_path / "env", Source("WHEEL", "/wh/x.whl"), online=False, base=base)
    python = str(tmp_path / "env" / "bin" / "python")
    assert [s.label for s in steps] == ["creating the environment", "installing the engine", "checking the engine"]
    assert steps[0].argv == ["/usr/bin/python3.11", "-m", "venv", str(tmp_path / "env")]
    assert steps[1].argv[0] == python and steps[1].argv[-1] == "/wh/x.whl"
    assert steps[2] == Step("checking the engine", [python, "-m", "nst_plugin", "plugins", "--json"], capture="plugins.json")
    update = engine_setup.setup_steps(tmp_path / "env", Source("WHEEL", "/wh/x.whl"), online=False, update=True)
    assert [s.label for s in update] == ["installing the engine", "reinstalling the engine", "checking the engine"]


def test_the_marker_and_remove(tmp_path):
    folder = tmp_path / "engine-env"
    engine_setup.write_marker(folder, Source("CHECKOUT", "/src/nst"),
                              engine_setup.BasePython("/usr/bin/python3.11", (3, 11), "x"))
    marker = engine_setup.read_marker(folder)
    assert marker["made_by"] == "nst_style_transfer" and marker["base_python"] == "/usr/bin/python3.11"
    assert engine_setup.recorded_source(folder) == Source("CHECKOUT", "/src/nst")
    engine_setup.write_marker(folder, Source("WHEEL", "/w.whl"))  # set up again: ours, the new source
    assert engine_setup.recorded_source(folder) == Source("WHEEL", "/w.whl")
    assert engine_setup.read_marker(folder)["base_python"] == "/usr/bin/python3.11"
    (folder / "bin").mkdir()
    (folder / "bin" / "python").write_text("")
    engine_setup.remove_environment(folder).join(30)
    assert not folder.exists() and list(tmp_path.iterdir()) == []

    foreign = tmp_path / "engine-env"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(SetupError, match=r"was not made by the add-on \(no \.nst-engine-env file\): nothing removed$"):
        engine_setup.remove_environment(foreign)
    with pytest.raises(SetupError, match="already exists and was not made by the add-on"):
        engine_setup.write_marker(foreign, Source("INDEX"))
    (foreign / ".nst-engine-env").write_text(json.dumps({"made_by": "someone else"}))
    with pytest.raises(SetupError, match="was not made by the add-on"):
        engine_setup.remove_environment(foreign)
    with pytest.raises(SetupError, match="press Set Up Engine"):
        engine_setup.recorded_source(foreign)
    link = tmp_path / "link"
    link.symlink_to(foreign)
    (foreign / ".nst-engine-env").write_text(json.dumps({"made_by": "nst_style_transfer"}))
    with pytest.raises(SetupError, match="is not an engine environment folder: nothing removed"):
        engine_setup.remove_environment(link)
    with pytest.raises(SetupError, match="is not an engine environment folder"):
        engine_setup.remove_environment(tmp_path / "nothing-here")
    assert (foreign / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize("line, words", [
    ("Collecting tensorflow>=2.16 (from nst-plugin==0.1.0)", "collecting tensorflow>=2.16"),
    ("  Downloading tensorflow-2.20.0-cp311-cp311-manylinux_2_17_x86_64.whl (620.6 MB)",
     "downloading tensorflow-2.20.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
    ("Processing /home/me/wheels/nst_plugin-0.1.0-py3-none-any.whl", "unpacking nst_plugin-0.1.0-py3-none-any.whl"),
    ("  Building wheel for nst-plugin (pyproject.toml): started", "building nst-plugin"),
    ("Installing collected packages: numpy, keras, tensorflow, nst-plugin", "installing 4 packages"),
    ("Successfully installed nst-plugin-0.1.0", "installed nst-plugin-0.1.0"),
    ("Requirement already satisfied: numpy in ./lib/python3.11/site-packages", "already there: numpy"),
    ("  Stored in directory: /tmp/x", None), ("", None), ("WARNING: something", None)])
def test_pip_activity(line, words):
    assert engine_setup.pip_activity(line) == words


def test_log_error():
    assert engine_setup.log_error(["Processing /x", "ERROR: Could not find a version that satisfies tensorflow",
                                   "ERROR: No matching distribution found for tensorflow>=2.16", ""]) == \
        "No matching distribution found for tensorflow>=2.16"
    assert engine_setup.log_error(["Traceback", "ModuleNotFoundError: No module named 'nst_plugin'"]) == \
        "ModuleNotFoundError: No module named 'nst_plugin'"


def python_step(label, code, capture=None):
    return Step(label, [sys.executable, "-c", code], capture=capture)


CHECK_ANSWER = "import json; print(json.dumps({'version': '9.9', 'presets': ['default']}))"


def test_setup_job_runs_its_steps_in_order_without_blocking(tmp_path):
    now = [0.0]
    steps = [python_step("creating the environment", "import time; time.sleep(0.3)"),
             python_step("installing the engine", "import time; print('Collecting nst-plugin'); "
                         "print('Successfully installed nst-plugin-9.9', flush=True); time.sleep(0.5)"),
             python_step("checking the engine", CHECK_ANSWER, capture=engine_setup.CHECK_NAME)]
    job = SetupJob(tmp_path / "env", steps, clock=lambda: now[0]).start()
    assert job.status_line() == "creating the environment (step 1/3, 0:00)"
    slowest, lines = 0.0, set()
    while True:
        started = time.perf_counter()
        state = job.poll()
        slowest = max(slowest, time.perf_counter() - started)
        lines.add(job.status_line())
        if state != "running":
            break
        now[0] += 1
        time.sleep(0.02)
    assert slowest < 0.2 and state == "ok" and (job.version, job.listing["presets"]) == ("9.9", ["default"])
    assert any(line.startswith("installing the engine (step 2/3, 0:") and line.endswith(": installed nst-plugin-9.9")
               for line in lines), lines
    assert job.status_line() == f"engine ready: nst-plugin 9.9 in {tmp_path / 'env' / 'bin' / 'python'}"
    log = (tmp_path / "env" / "setup.log").read_text()
    assert log.index("time.sleep") < log.index("Collecting nst-plugin") < log.index("# ok")
    assert "'version': '9.9'" not in log  # the check's answer goes to its own file


def test_setup_job_failure_is_one_line_naming_the_log(tmp_path):
    steps = [python_step("installing the engine", "import sys; print('Collecting nst-plugin'); "
                         "print('ERROR: No matching distribution found for nst-plugin.', file=sys.stderr); sys.exit(1)"),
             python_step("checking the engine", CHECK_ANSWER, capture=engine_setup.CHECK_NAME)]
    job = SetupJob(tmp_path / "env", steps).start()
    assert job.wait(timeout=60) == "failed"
    log = tmp_path / "env" / "setup.log"
    assert job.error == f"installing the engine failed: No matching distribution found for nst-plugin; full log: {log}"
    assert job.status_line() == job.error and "\n" not in job.error
    assert not (tmp_path / "env" / engine_setup.CHECK_NAME).exists()  # the check never ran

    missing = SetupJob(tmp_path / "env2", [Step("creating the environment", [str(tmp_path / "no-python"), "-m", "venv"])]).start()
    assert missing.state == "failed" and missing.error.startswith("cannot start ")

    mute = SetupJob(tmp_path / "env3", [python_step("checking the engine", "print('not json')", capture=engine_setup.CHECK_NAME)])
    assert mute.start().wait(timeout=60) == "failed"
    assert mute.error == f"the environment's nst_plugin did not answer 'plugins --json'; full log: {tmp_path / 'env3' / 'setup.log'}"


def test_setup_job_cancel(tmp_path):
    job = SetupJob(tmp_path / "env", [python_step("installing the engine", "import time; time.sleep(60)")]).start()
    job.poll()
    job.cancel()
    assert job.status_line().startswith("cancelling: installing the engine")
    assert job.wait(timeout=30) == "cancelled"
    assert job.error == f"setting up the engine cancelled; log: {tmp_path / 'env' / 'setup.log'}"


def test_set_up_from_a_checkout_offline_makes_a_working_environment(tmp_path, monkeypatch):
    """The whole set-up without Blender: a venv made with a real base Python, the stand-in engine's checkout
    installed by pip offline (its usual isolated build; nothing downloaded), checked."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    base = engine_setup.find_base_python(getattr(sys, "_base_executable", sys.executable))
    source = Source("CHECKOUT", str(write_checkout(tmp_path / "checkout")))
    folder = tmp_path / "engine-env"
    engine_setup.write_marker(folder, source, base)
    job = SetupJob(folder, engine_setup.setup_steps(folder, source, online=False, base=base)).start()
    assert job.wait(timeout=300) == "ok", job.error
    assert job.version == "0.0.1" and "stand_in_loss" in job.listing["losses"]
    version, why = engine_process.engine_version(job.python)
    assert version == "0.0.1" and why is None
    assert "Successfully installed nst-plugin-0.0.1" in (folder / "setup.log").read_text()


def test_progress_names_the_keyframe_engines_work_before_its_first_frame():
    progress = Progress()
    for event in ({"event": "start", "total": 9, "resumed": 0, "output": "/o"},
                  {"event": "frame_progress", "index": 1, "step": 3, "total": 40, "loss": 1.0},
                  {"event": "keyframe", "index": 1, "shot": 0, "seconds": 60.0, "done": 1, "total": 2, "resumed": False}):
        progress.feed(json.dumps(event))
    assert progress.summary() == "0/9 frames, keyframe 1/2 ready"
    progress.feed(json.dumps({"event": "training", "shot": 0, "step": 150, "total": 3000, "loss": 0.2, "seconds": 20.0,
                              "stopped": None}))
    assert progress.summary() == "0/9 frames, training shot 0, step 150/3000"
    progress.feed(json.dumps({"event": "training", "shot": 1, "step": 0, "total": 3000, "loss": None, "seconds": 0.0,
                              "stopped": "resumed"}))
    assert progress.summary() == "0/9 frames, shot 1 network loaded"
    progress.feed(json.dumps({"event": "frame_done", "index": 1, "path": "/o/frame_000001.png", "seconds": 0.4,
                              "loss": None, "evaluations": None, "warm": False, "shot": 0, "done": 1, "total": 9,
                              "status": "ok"}))
    assert progress.stage is None and progress.summary().startswith("1/9 frames, 0.4 s/frame")


# -- the backend the engine computes with (the preferences' Compute with) --------------------------------------

# a stand-in engine that answers like nst-plugin's CLI on the backend KERAS_BACKEND names: ``--version`` says
# what it computes with (or fails like the engine when that backend is not installed), ``plugins --json``
# lists the installed backends (INSTALLED: the ones it has)
BACKEND_ENGINE = '''import json, os, sys
INSTALLED = %r
backend = os.environ.get("KERAS_BACKEND") or "tensorflow"
if sys.argv[1:] == ["-m", "nst_plugin", "--version"]:
    if backend not in INSTALLED:
        sys.stderr.write("error: the %%s backend is not installed here (pip install 'nst-plugin[%%s]')\\n" %% (backend, backend))
        sys.exit(1)
    print("nst-plugin 0.1.0; Keras 3.15.1 on %%s 9.9, device cpu" %% backend)
elif sys.argv[1:] == ["-m", "nst_plugin", "plugins", "--json"]:
    installed = {name: ("9.9" if name in INSTALLED else None) for name in ("tensorflow", "jax", "torch")}
    print(json.dumps({"version": "0.1.0", "backends": {"selected": backend, "installed": installed}}))
else:
    sys.exit(2)
'''


def backend_engine(tmp_path, installed=("tensorflow",)) -> str:
    """An 'interpreter' (a script) that behaves like an engine with the ``installed`` backends."""
    script = tmp_path / "backend_engine.py"
    tmp_path.mkdir(parents=True, exist_ok=True)
    script.write_text(BACKEND_ENGINE % (list(installed),))
    python = tmp_path / "bin" / "python"
    python.parent.mkdir(exist_ok=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    python.chmod(0o755)
    return str(python)


def test_the_chosen_backend_reaches_the_engine(tmp_path):
    env = engine_process.engine_environment({"KERAS_BACKEND": "jax", "PATH": "/bin"}, backend="torch")
    assert env["KERAS_BACKEND"] == "torch"
    assert engine_process.engine_environment({"KERAS_BACKEND": "jax"})["KERAS_BACKEND"] == "jax"  # none chosen
    python = backend_engine(tmp_path, installed=("tensorflow", "torch", "jax"))
    for backend in ("torch", "jax", "tensorflow"):
        info = find_engine(python, environ={"PATH": ""}, backend=backend)
        assert info.ok and info.version == "0.1.0", info.error
        assert info.runtime == f"Keras 3.15.1 on {backend} 9.9, device cpu"
    # an engine from before the backends says only its version
    old = tmp_path / "old"
    old.mkdir()
    (old / "python").write_text("#!/bin/sh\necho nst-plugin 0.0.9\n")
    (old / "python").chmod(0o755)
    info = find_engine(str(old / "python"), environ={"PATH": ""})
    assert info.ok and info.version == "0.0.9" and info.runtime == ""
    # the process of a job gets it too
    process = EngineProcess([sys.executable, "-c", "import os, sys; sys.exit(os.environ.get('KERAS_BACKEND') != 'jax')"],
                            env=engine_process.engine_environment(backend="jax")).start()
    assert process.wait(timeout=30) == 0


def test_an_engine_without_the_chosen_backend_is_one_line(tmp_path):
    python = backend_engine(tmp_path, installed=("tensorflow",))
    info = find_engine(python, environ={"PATH": ""}, backend="torch")
    assert not info.ok and "\n" not in info.error
    assert info.error.startswith("the engine has no PyTorch: press Update to install it (or pip install "
                                 f"'nst-plugin[torch]' into {python})"), info.error
    assert find_engine(python, environ={"PATH": ""}, backend="tensorflow").ok
    # installed, yet it does not start (a broken CUDA build): the engine's own error line
    broken = backend_engine(tmp_path / "broken", installed=("tensorflow",))
    script = tmp_path / "broken" / "backend_engine.py"
    script.write_text(script.read_text().replace('("9.9" if name in INSTALLED else None)', '"9.9"'))
    info = find_engine(broken, environ={"PATH": ""}, backend="jax")
    assert info.error == "the engine cannot compute with JAX (the jax backend is not installed here (pip install " \
                         "'nst-plugin[jax]'))", info.error
    listing = {"version": "0.1.0", "backends": {"selected": "jax", "installed": {"tensorflow": "2.21.0", "jax": None}}}
    assert engine_process.backend_problem(listing, "jax") == "the engine has no JAX"
    assert engine_process.backend_problem(listing, "tensorflow") is None
    old = {"version": "0.0.9", "presets": ["default"]}  # no "backends": TensorFlow only
    assert engine_process.backend_problem(old, "tensorflow") is None
    assert engine_process.backend_problem(old, "torch") == \
        "the engine (nst-plugin 0.0.9) predates the choice of backend and has no PyTorch"


def test_pip_commands_install_the_backends_extra():
    pip = ["/env/bin/python", "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    assert engine_setup.pip_commands("/env/bin/python", Source("INDEX"), online=True, backend="torch") == [
        pip + ["nst-plugin[torch]"]]
    assert engine_setup.pip_commands("/env/bin/python", Source("INDEX"), online=True, update=True, backend="jax") == [
        pip + ["--upgrade", "nst-plugin[jax]"]]
    assert engine_setup.pip_commands("/env/bin/python", Source("INDEX"), online=True, backend="tensorflow") == [
        pip + ["nst-plugin"]]  # the default install has TensorFlow
    assert engine_setup.pip_commands("/env/bin/python", Source("WHEEL", "/wh/nst_plugin-1-py3-none-any.whl"),
                                     online=False, backend="torch") == [
        pip + ["--no-index", "--find-links", "/wh", "/wh/nst_plugin-1-py3-none-any.whl[torch]"]]
    update = engine_setup.pip_commands("/env/bin/python", Source("CHECKOUT", "/src/nst"), online=True, update=True,
                                       backend="torch")
    assert update == [pip + ["--upgrade", "/src/nst[torch]"], pip + ["--force-reinstall", "--no-deps", "/src/nst[torch]"]]
    steps = engine_setup.setup_steps("/env", Source("CHECKOUT", "/src/nst"), online=True, backend="jax")
    assert steps[0].argv[-1] == "/src/nst[jax]" and steps[-1].label == "checking the engine"


def test_setup_job_checks_the_chosen_backend(tmp_path):
    answer = ("import json; print(json.dumps({'version': '0.1.0', 'backends': {'selected': 'torch', "
              "'installed': {'tensorflow': '2.21.0', 'torch': None, 'jax': None}}}))")
    job = SetupJob(tmp_path / "env", [python_step("checking the engine", answer, capture=engine_setup.CHECK_NAME)],
                   backend="torch").start()
    assert job.wait(timeout=60) == "failed"
    assert job.error == ("the engine has no PyTorch after installing it (does the source offer nst-plugin[torch]?); "
                         f"full log: {tmp_path / 'env' / 'setup.log'}")
    assert job.env["KERAS_BACKEND"] == "torch"
    good = SetupJob(tmp_path / "env2", [python_step("checking the engine", answer, capture=engine_setup.CHECK_NAME)],
                    backend="tensorflow").start()
    assert good.wait(timeout=60) == "ok" and good.version == "0.1.0"


def test_resolution_choices_give_the_engines_size():
    from blender_addon import strips as S

    assert S.output_size("STRIP", 384, None) == 0  # the engine reads the source at its own resolution
    assert S.output_size("HALF", 384, (1920, 1080)) == 960
    assert S.output_size("QUARTER", 384, (100, 60)) == 32  # never under the engine's minimum
    assert S.output_size("SIZE", 384, (1920, 1080)) == 384
    with pytest.raises(ValueError, match="not known yet"):
        S.output_size("HALF", 384, None)

    class Element:
        orig_width, orig_height = 720, 576

    class Strip:
        elements = [Element()]

    assert S.frame_size(Strip()) == (720, 576)
    Element.orig_width = 0  # not read yet
    assert S.frame_size(Strip()) is None
