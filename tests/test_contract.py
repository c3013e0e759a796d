"""The contract between engines and front ends: typed frame controls, the plugin host, typed events, and
the same frames from every front end for the same settings."""

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

import nst_plugin
from nst_plugin import FrameControls, SequenceResult, events, hookimpl
from nst_plugin.images import load_image, resize, save_image
from nst_plugin.plugins import get_host, register_plugin

TINY = dict(size=32, iterations=4, warm_iterations=3, tolerance=0.0)


def test_frame_controls_are_typed_and_closed():
    controls = FrameControls(max_iterations=3, shot=1)
    with pytest.raises(TypeError):
        FrameControls(max_iteration=3)  # a misspelt control is an error, not an ignored key
    with pytest.raises(dataclasses.FrozenInstanceError):
        controls.max_iterations = 5
    assert {f.name for f in dataclasses.fields(FrameControls)} == {
        "init", "max_iterations", "rounds", "tolerance", "tolerance_window", "target_objective", "target_excludes",
        "target_terms", "working_shape", "shot", "previous", "style_masks"}


def test_a_third_party_sequence_engine_steers_the_frame_engine_through_controls(content_rgb, style_rgb):
    seen = []

    class CappedEngine:
        @hookimpl
        def nst_stylize_sequence(self, frames, styles, config, context, sink):
            count = 0
            for index, frame in frames:
                shape = (16, 24) if index == 1 else None
                result = context.stylize_frame(frame, styles, config, index,
                                               FrameControls(max_iterations=2, working_shape=shape))
                seen.append((index, result.image.shape[:2], result.stats["iterations"]))
                sink(index, result)
                count += 1
            return SequenceResult(frames=count, seconds=0.0)

    register_plugin(CappedEngine(), name="capped-engine")
    frames = [(1, content_rgb), (2, content_rgb)]
    nst_plugin.stylize_sequence(frames, style_rgb, lambda i, r: None, **dict(TINY, iterations=30))
    assert [s[0] for s in seen] == [1, 2]
    assert seen[0][1] == (16, 24)  # working_shape honoured
    assert all(iterations <= 2 for _, _, iterations in seen)  # max_iterations honoured, not the config's 30


def test_api_events_are_typed(content_rgb, style_rgb):
    received = []
    nst_plugin.stylize_frame(content_rgb, style_rgb, on_event=received.append, **TINY)
    assert received and all(isinstance(e, events.FrameProgress) for e in received)
    assert received[-1].step <= received[-1].total and received[0].to_dict()["event"] == "frame_progress"


def test_host_is_one_object_with_typed_work_calls(content_rgb, style_rgb):
    host = get_host()
    assert host.registry is host.registry  # collected once
    from nst_plugin.api import prepare

    config, styles, _ = prepare(style_rgb, **TINY)
    result = host.stylize_frame(content_rgb, styles, config, host.run_context())
    assert result.image.dtype == np.uint8


def test_stylize_sequence_and_nst_video_give_the_same_frames(tmp_path, samples, style_rgb):
    """The preset owns every default (the temporal weight too): the API and the CLI agree pixel for pixel."""
    from nst_plugin.cli import app

    source = tmp_path / "seq"
    source.mkdir()
    clip = [resize(load_image(samples / "street.jpg"), 36, 48)]
    clip.append(np.roll(clip[0], 2, axis=1))
    clip.append(np.roll(clip[0], 4, axis=1))
    for n, frame in enumerate(clip, start=1):
        save_image(source / f"f_{n:04d}.png", frame)
    style_path = tmp_path / "style.png"
    save_image(style_path, style_rgb)

    from_api = {}
    nst_plugin.stylize_sequence([(n, f) for n, f in enumerate(clip, start=1)], load_image(style_path),
                                lambda i, r: from_api.__setitem__(i, r.image), **TINY)
    out = tmp_path / "out"
    flags = ["--size", "32", "--iterations", "4", "--warm-iterations", "3", "--tolerance", "0"]
    result = CliRunner().invoke(app, ["video", str(source / "f_####.png"), "-s", str(style_path), "-o", str(out),
                                      "--progress", "none", *flags])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["config"]["loss_weights"]["temporal"] == 0.5  # the preset's, not a CLI-only default
    for n in (1, 2, 3):
        assert np.array_equal(load_image(out / f"frame_{n:06d}.png"), from_api[n]), n

    # and a --settings file with the same settings makes the same frames again
    settings = tmp_path / "run.json"
    settings.write_text(json.dumps({"size": 32, "iterations": 4, "warm_iterations": 3, "tolerance": 0}))
    again = tmp_path / "again"
    result = CliRunner().invoke(app, ["video", str(source / "f_####.png"), "-s", str(style_path), "-o", str(again),
                                      "--progress", "none", "--settings", str(settings)])
    assert result.exit_code == 0, result.output
    for n in (1, 2, 3):
        assert np.array_equal(load_image(again / f"frame_{n:06d}.png"), from_api[n]), n
