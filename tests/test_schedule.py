"""Animated settings: per-frame strength / style / temporal weights (nst_plugin.schedule, --frame-settings).

The values reach each frame's loss (a spying frame hook sees them), the manifest records them, and a changed
schedule re-makes exactly the frames whose values changed. Real runs on three 32 px frames of the sample
clip; the errors are one line before any work."""

import json

import pytest

from nst_plugin.config import make_config
from nst_plugin.errors import UserError
from nst_plugin.schedule import FrameSchedule, load_frame_schedule, parse_frame_schedule

from test_video import _one_error, events_of, nst

TINY = dict(size=32, iterations=2, warm_iterations=2)


# -- the schedule (no TensorFlow) ---------------------------------------------------------------------------

@pytest.mark.parametrize("constant", [None, 0.8])
def test_a_frames_strength_gives_the_weights_of_a_constant_run_at_that_strength(constant):
    config = make_config(strength=constant, loss_weights={"temporal": 0.3})
    schedule = parse_frame_schedule({"1": {"strength": 0.0}, "2": {"strength": 0.25}, "3": {"strength": 1},
                                     "4": {"style_weight": 12.5, "temporal_weight": 0.0}})
    for index, strength in ((1, 0.0), (2, 0.25), (3, 1.0)):
        frame = schedule.config_at(config, index)
        assert frame.loss_weights == make_config(strength=strength, loss_weights={"temporal": 0.3}).loss_weights
        assert frame.strength == strength and schedule.key(config, index) is not None
    assert schedule.config_at(config, 4).loss_weights == {**config.loss_weights, "style": 12.5, "temporal": 0.0}
    assert schedule.config_at(config, 5) is config and schedule.key(config, 5) is None  # not listed: the run's
    assert schedule.record(config, 5) is None
    assert schedule.record(config, 2) == {"strength": 0.25, "style_weight": frame_style(0.25), "temporal_weight": 0.3}
    # a frame whose values give the run's own weights has no key: nothing to make again
    assert parse_frame_schedule({"7": {"strength": constant or 0.5}}).key(config, 7) is None


def frame_style(strength):
    return make_config(strength=strength).loss_weights["style"]


@pytest.mark.parametrize("data, phrase", [
    ([0.3], "must be a JSON object of frame numbers"),
    ({"x": {"strength": 0.3}}, "'x' is not a frame number"),
    ({"-2": {"strength": 0.3}}, "'-2' is not a frame number"),
    ({"3": 0.3}, "frame 3: expected an object"),
    ({"3": {"strenght": 0.3}}, "frame 3: 'strenght' cannot be animated (valid: strength, style_weight, temporal_weight)"),
    ({"3": {"strength": 1.5}}, "frame 3: strength must be from 0 (barely styled) to 1 (all style), got 1.5"),
    ({"3": {"strength": "high"}}, "frame 3: strength must be a number"),
    ({"3": {"temporal_weight": -1}}, "frame 3: temporal_weight must be >= 0"),
    ({"3": {"style_weight": float("nan")}}, "frame 3: style_weight must be a number"),
    ({"3": {"strength": 0.2, "style_weight": 9.0}}, "strength and style_weight both set the style weight"),
])
def test_bad_schedules_are_one_clear_error(data, phrase):
    with pytest.raises(UserError) as caught:
        parse_frame_schedule(data)
    assert phrase in str(caught.value) and "\n" not in str(caught.value)


def test_an_animated_strength_with_given_weights_is_refused():
    with pytest.raises(UserError, match="the strength is animated but the content or style weight is set"):
        load_frame_schedule({"style_weight": 100.0, "frame_settings": {"1": {"strength": 0.2}}})
    settings = {"temporal_weight": 0.1, "frame_settings": {"1": {"strength": 0.2}}}
    assert load_frame_schedule(settings).values == {1: {"strength": 0.2}} and "frame_settings" not in settings
    assert not load_frame_schedule({})


# -- the command: errors in one line, exit 2 ------------------------------------------------------------------

def test_frame_settings_errors_are_one_line_and_exit_2(tmp_path, samples):
    args = ["video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-o", tmp_path / "out", "--frames", "1-2"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"strength": 2}}))
    result = nst(*args, "--frame-settings", bad)
    assert result.exit_code == 2
    _one_error(result, "frame settings file", "bad.json", "frame 1: strength must be from 0")
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"1": {"strength": 0.2}}))
    result = nst(*args, "--frame-settings", good, "--engine", "keyframes")
    assert result.exit_code == 2
    _one_error(result, "per-frame settings (--frame-settings) work with the lbfgs engine", "keyframes engine")
    result = nst(*args, "--frame-settings", good, "--style-weight", "10")
    assert result.exit_code == 2
    _one_error(result, "the strength is animated but the content or style weight is set")
    settings = tmp_path / "run.json"  # the same schedule inside a --settings file (what the Blender add-on writes)
    settings.write_text(json.dumps({"size": 32, "frame_settings": {"1": {"strenght": 0.2}}}))
    result = nst(*args, "--settings", settings)
    assert result.exit_code == 2
    _one_error(result, "settings: frame_settings, frame 1: 'strenght' cannot be animated")
    assert not (tmp_path / "out").exists()  # refused before any work


# -- real runs ----------------------------------------------------------------------------------------------

@pytest.fixture
def style_weights_seen(nst_host):
    """{frame index: the style weight its frame engine was given}, from a spying frame hook."""
    from nst_plugin.hookspecs import hookimpl

    seen = {}

    class Spy:
        @hookimpl(hookwrapper=True)
        def nst_stylize_frame(self, content, styles, config, context):
            seen[context.frame_index] = config.loss_weights["style"]
            yield

    nst_host.pm.register(Spy(), name="spy")
    return seen


def run(samples, styles, config, out, schedule, events=None):
    from nst_plugin.video import open_source, stylize_video

    return stylize_video(open_source(samples / "street.avi", frames="1-3"), styles, config, out,
                         schedule=parse_frame_schedule(schedule), emit=(events.append if events is not None else None))


def test_animated_strength_reaches_each_frame_and_a_changed_curve_remakes_only_its_frames(
        tmp_path, samples, style_rgb, style_weights_seen):
    from nst_plugin.api import prepare

    config, styles, _ = prepare([style_rgb], **TINY)
    out = tmp_path / "out"
    first = run(samples, styles, config, out, {"2": {"strength": 0.9}, "3": {"strength": 0.1}})
    assert first.written == [1, 2, 3]
    assert style_weights_seen == {1: config.loss_weights["style"], 2: frame_style(0.9), 3: frame_style(0.1)}
    manifest = json.loads((out / "nst_manifest.json").read_text())
    frames = manifest["frames"]
    assert "settings" not in frames["1"] and frames["1"]["key"] is None
    assert frames["2"]["settings"] == {"strength": 0.9, "style_weight": frame_style(0.9), "temporal_weight": 0.5}
    assert frames["3"]["settings"]["strength"] == 0.1 and frames["2"]["key"] != frames["3"]["key"]
    assert manifest["settings_hash"] == config.output_fingerprint()  # the schedule is not in the folder's hash
    before = {n: (out / f"frame_{n:06d}.png").read_bytes() for n in (1, 2, 3)}
    stamps = {n: (out / f"frame_{n:06d}.png").stat().st_mtime_ns for n in (1, 2, 3)}

    style_weights_seen.clear()
    events = []
    changed = run(samples, styles, config, out, {"2": {"strength": 0.9}, "3": {"strength": 0.6}}, events)
    assert changed.written == [3] and list(style_weights_seen) == [3]  # only the frame whose value changed
    assert style_weights_seen[3] == frame_style(0.6)
    assert events[0]["resumed"] == 2 and events[-1]["written"] == 1
    for n in (1, 2):  # the others: the same bytes, not even rewritten
        assert (out / f"frame_{n:06d}.png").read_bytes() == before[n]
        assert (out / f"frame_{n:06d}.png").stat().st_mtime_ns == stamps[n]
    assert json.loads((out / "nst_manifest.json").read_text())["frames"]["3"]["settings"]["strength"] == 0.6

    style_weights_seen.clear()
    assert run(samples, styles, config, out, {"2": {"strength": 0.9}, "3": {"strength": 0.6}}).written == []
    back = run(samples, styles, config, out, {})  # the animation removed: its frames take the run's values again
    assert back.written == [2, 3] and style_weights_seen == {2: config.loss_weights["style"], 3: config.loss_weights["style"]}
    assert (out / "frame_000001.png").read_bytes() == before[1]


def test_frame_settings_option_runs_and_records(tmp_path, samples):
    schedule = tmp_path / "curve.json"
    schedule.write_text(json.dumps({"2": {"temporal_weight": 0.0, "style_weight": 100.0}}))
    out = tmp_path / "out"
    args = ["video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-o", out, "--frames", "1-2",
            "--size", "32", "--iterations", "2", "--warm-iterations", "2", "--progress", "jsonl"]
    result = nst(*args, "--frame-settings", schedule)
    assert result.exit_code == 0, result.output
    frames = json.loads((out / "nst_manifest.json").read_text())["frames"]
    assert frames["2"]["settings"] == {"strength": 0.5, "style_weight": 100.0, "temporal_weight": 0.0}
    again = nst(*args, "--frame-settings", schedule)
    assert again.exit_code == 0 and events_of(again)[0]["resumed"] == 2 and events_of(again)[-1]["written"] == 0
