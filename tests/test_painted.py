"""Painted keyframes (``--keyframe-image FRAME=IMAGE``, ``keyframes.images``): the painting is the output at its
frame, its shot follows it, a changed painting re-makes only its shot, bad specs are refused in one line.

The artist is a filter (as in benchmarks/painted_bench.py): the painting is the filter applied to frame 1, the
right answer for frame t the filter applied to frame t. Tiny sizes, few training steps.
"""

import json
import warnings

import numpy as np
import pytest

from nst_plugin.images import load_image, save_image
from nst_plugin.testing import tiny_image
from test_video import error_lines, events_of, nst, write_sequence

FAST = ["--engine", "keyframes", "--keyframe-size", "32", "--iterations", "3", "--weights", "hed",
        "--option", "keyframes.patch=24", "--progress", "jsonl"]


def artist(rgb: np.ndarray) -> np.ndarray:
    """The stand-in artist: an edge-preserving watercolour look (OpenCV), at this clip's scale."""
    import cv2

    return cv2.stylization(np.ascontiguousarray(rgb[..., ::-1]), sigma_s=20, sigma_r=0.3)[..., ::-1].copy()


def square_clip(frames=10, step=5):
    """A textured square moving right over a still textured background, 96x128."""
    import cv2

    background = cv2.resize(tiny_image(48, 64, seed=1), (128, 96), interpolation=cv2.INTER_CUBIC)
    square = cv2.resize(tiny_image(16, 16, seed=2)[:, :, ::-1], (32, 32), interpolation=cv2.INTER_CUBIC)
    clip = []
    for t in range(frames):
        frame = background.copy()
        frame[32:64, 8 + step * t:40 + step * t] = square
        clip.append(frame)
    return clip


def psnr(a, b) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def carried(clip, keyframe):
    """The painting carried along the clip by DIS flow (the benchmark's baseline)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from painted_bench import carried as carry

    return carry(clip, keyframe)


@pytest.fixture
def painted_clip(tmp_path):
    clip = square_clip()
    source = write_sequence(tmp_path / "clip", clip)
    painting = artist(clip[0])
    save_image(tmp_path / "painted.png", painting)
    save_image(tmp_path / "style.png", tiny_image(64, 64, seed=9))
    return clip, source, painting


def frames_of(folder, count):
    return [load_image(folder / f"frame_{i:06d}.png") for i in range(1, count + 1)]


def test_the_shot_follows_its_painted_keyframe_closer_than_the_carried_painting(tmp_path, painted_clip):
    clip, source, painting = painted_clip
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = nst("video", source, "-s", tmp_path / "style.png", "-o", out, *FAST, "--keyframe-image",
                     f"1={tmp_path / 'painted.png'}", "--option", "keyframes.painted_steps=600")
    assert result.exit_code == 0, result.output
    assert not [w for w in caught if "enlarged" in str(w.message)]  # a painting at the output's size
    stream = events_of(result)
    assert [(e["index"], e["resumed"]) for e in stream if e["event"] == "keyframe"] == [(1, False)]
    assert not [e for e in stream if e["event"] == "frame_progress"]  # the painting, not the frame engine
    frames = frames_of(out, len(clip))
    assert np.array_equal(frames[0], painting)  # the output frame at the painted keyframe is the painting
    truth = [artist(frame) for frame in clip]
    ours = np.mean([psnr(f, t) for f, t in zip(frames[1:], truth[1:])])
    theirs = np.mean([psnr(f, t) for f, t in zip(carried(clip, painting)[1:], truth[1:])])
    unstyled = np.mean([psnr(f, t) for f, t in zip(clip[1:], truth[1:])])
    assert ours > BOUND > theirs and ours > unstyled + 3, (ours, theirs, unstyled)
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"network_shot000.weights.h5"}  # no keyframe of the frame engine


def test_a_painting_much_smaller_than_the_output_is_a_warning_that_names_the_frame_to_paint_on(tmp_path, painted_clip):
    import cv2

    clip, source, painting = painted_clip
    small = cv2.resize(painting, (64, 48), interpolation=cv2.INTER_AREA)  # half the frames' 128x96
    save_image(tmp_path / "small.png", small)
    with pytest.warns(UserWarning) as caught:  # (`nst` shows each as a `warning:` line: tests/test_quiet.py)
        result = nst("video", source, "-s", tmp_path / "style.png", "-o", tmp_path / "out", *FAST, "--frames", "1-3",
                     "--keyframe-image", f"1={tmp_path / 'small.png'}", "--option", "keyframes.painted_steps=5")
    assert result.exit_code == 0, result.output
    warned = [str(w.message) for w in caught if "enlarged" in str(w.message)]
    assert len(warned) == 1 and warned[0].startswith("--keyframe-image 1="), warned
    assert "64x48 is enlarged 2.0x to the output's 128x96" in warned[0] and "frame_000001.png" in warned[0]


BOUND = 26.0  # dB: between ours and the carried painting on this clip (docs/design/keyframes.md#painted-keyframes)


def test_the_painting_carried_along_the_flow_sharpens_the_frames_near_it_and_a_new_setting_remakes_only_frames(
        tmp_path, painted_clip):
    clip, source, painting = painted_clip
    out = tmp_path / "out"

    def run(carry):
        result = nst("video", source, "-s", tmp_path / "style.png", "-o", out, *FAST, "--keyframe-image",
                     f"1={tmp_path / 'painted.png'}", "--option", "keyframes.painted_steps=150", "--option",
                     f"keyframes.painted_carry={carry}")
        assert result.exit_code == 0, result.output
        return events_of(result), frames_of(out, len(clip))

    _, alone = run(0)  # the network's frames (and the temporal filter) only
    stream, laid = run(32)
    # the same network (resumed from the output folder), every frame made again with the painting laid over
    assert [e["stopped"] for e in stream if e["event"] == "training" and e["stopped"]] == ["resumed"]
    assert sorted(e["index"] for e in stream if e["event"] == "frame_done") == list(range(1, len(clip) + 1))
    truth = [artist(frame) for frame in clip]
    near = [(psnr(a, t), psnr(b, t)) for a, b, t in zip(alone[1:5], laid[1:5], truth[1:5])]
    assert all(b > a + CARRY_GAIN for a, b in near), near
    assert np.array_equal(laid[0], painting)


CARRY_GAIN = 2.0  # dB, each of frames 2-5 of this clip (measured 3.6-7.9): docs/design/keyframes.md#painted-keyframes


def test_a_painting_is_carried_by_a_flow_at_the_outputs_size_and_texture_transport_keeps_its_own():
    from types import SimpleNamespace

    from nst_plugin.builtin.keyframes import engine, painted
    from nst_plugin.builtin.keyframes.training import TrainingSettings

    options = {"painted_guide": 0, "painted_carry": 48, "painted_steps": 100, "seed": 0}

    def tracks(out_shape):
        run = SimpleNamespace(out_shape=out_shape, key_shape=(216, 384), net_shape=(216, 384), transport=0.5,
                              carry_frames=0.0, flow_side=engine.FLOW_SIDE, recover=True, settings=TrainingSettings())
        variant = painted.painted_run(run, options)
        return engine._Run.texture_track(run).flow_shape, engine._Run.texture_track(variant).flow_shape

    # the painting's thin strokes follow a flow at the output's own size, up to 1280 px on the longer side
    assert tracks((360, 640)) == ((216, 384), (360, 640))
    assert tracks((1080, 1920)) == ((216, 384), (720, 1280))


def test_a_painting_is_carried_back_over_the_frames_before_it(tmp_path):
    # the painting at the clip's last frame: the frames before it take it along the flow too, not only the
    # network's look (and the temporal filter's 3 frames)
    clip = square_clip()
    source = write_sequence(tmp_path / "clip", clip)
    painting = artist(clip[-1])
    save_image(tmp_path / "painted.png", painting)
    out = tmp_path / "out"

    def run(carry):
        result = nst("video", source, "-o", out, *FAST, "--keyframe-image", f"{len(clip)}={tmp_path / 'painted.png'}",
                     "--option", "keyframes.painted_steps=150", "--option", f"keyframes.painted_carry={carry}")
        assert result.exit_code == 0, result.output
        return frames_of(out, len(clip))

    alone, laid = run(0), run(32)
    truth = [artist(frame) for frame in clip]
    near = [(psnr(a, t), psnr(b, t)) for a, b, t in zip(alone[-5:-1], laid[-5:-1], truth[-5:-1])]
    assert all(b > a + BACK_GAIN for a, b in near), near
    assert np.array_equal(laid[-1], painting)


BACK_GAIN = 1.0  # dB, each of frames 6-9 of this clip (measured 2.1-5.1; before the painting was carried back: none)


def test_between_two_paintings_each_is_laid_by_its_own_reach_and_they_share_where_both_are_trusted():
    from nst_plugin.builtin.keyframes.painted import Reaches, lay
    from nst_plugin.builtin.keyframes.transport import Carried

    network = np.full((1, 2, 3), 100.0, np.float32)
    trust = np.array([[255, 0]], np.uint8)
    before, after = Carried(np.full((1, 2, 3), 200, np.uint8), trust), Carried(np.full((1, 2, 3), 40, np.uint8), trust)
    # next to the painting after it: that one, carried back; none of the one before (a lost point: the network)
    alone_back = lay(network, Reaches(None, after), 5, 10.0, until=0)
    assert np.allclose(alone_back[0, 0], 40) and np.allclose(alone_back[0, 1], 100)
    # the painting after it fades out towards the reach's end (the frames before it were not carried back)
    assert np.allclose(lay(network, Reaches(None, after), 5, 10.0, until=10)[0, 0], 100)
    tapered = lay(network, Reaches(None, after), 5, 10.0, until=5)
    assert np.allclose(tapered[0, 0], 100 + (40 - 100) * np.exp(-0.5) * 0.5)
    # both near: each by its weight, shared in proportion where they weigh more than 1 together
    both = lay(network, Reaches(before, after), 0, 10.0, until=0)
    assert np.allclose(both[0, 0], (200 + 40) / 2) and np.allclose(both[0, 1], 100)
    # a frame after the last painting: the one before only, as a plain Carried
    assert np.allclose(lay(network, Reaches(before, None), 0, 10.0), lay(network, before, 0, 10.0))


def test_the_carried_painting_is_laid_by_the_flows_trust_its_alpha_and_fades_with_the_frames_since_it():
    from nst_plugin.builtin.keyframes.painted import lay
    from nst_plugin.builtin.keyframes.transport import Carried

    network = np.full((2, 3, 3), 100.0, np.float32)
    picture = np.full((2, 3, 4), 200, np.uint8)
    picture[..., 3] = [[255, 255, 0], [255, 255, 255]]  # the painting's alpha, carried with it
    trust = np.array([[255, 0, 255], [255, 255, 255]], np.uint8)
    carried = Carried(picture, trust)
    at_it = lay(network, carried, 0, 10.0)
    assert np.allclose(at_it[0, 0], 200) and np.allclose(at_it[0, 1], 100)  # trusted: the painting; lost: the network
    assert np.allclose(at_it[0, 2], 100)  # where the painting was transparent: the network's frame
    later = lay(network, carried, 10, 10.0)
    assert np.allclose(later[1, 1], 100 + 100 * np.exp(-1.0))  # fading with the frames since the painting
    assert np.array_equal(lay(network, carried, 3, 0.0), network) and np.array_equal(lay(network, None, 0, 10.0), network)
    opaque = lay(network, Carried(picture[..., :3], trust), 0, 10.0)
    assert np.allclose(opaque[0, 2], 200)


def test_a_painting_applies_where_its_alpha_says_and_the_source_shows_elsewhere_without_a_style(tmp_path):
    import nst_plugin
    from nst_plugin.api import prepare
    from nst_plugin.plugins import get_host

    clip = square_clip(frames=4)
    painting = artist(clip[0])
    alpha = np.zeros(painting.shape[:2], np.uint8)
    alpha[:, 64:] = 255  # the right half painted
    import cv2

    cv2.imwrite(str(tmp_path / "half.png"), np.dstack([painting[..., ::-1], alpha]))
    config, _, _ = prepare(tiny_image(32, 32, seed=9), engine="keyframes", size=0, weights="hed",
                           options={"keyframes.images": (f"1={tmp_path / 'half.png'}",), "keyframes.painted_steps": 5,
                                    "keyframes.patch": 24})
    images = {}
    host = get_host()
    host.stylize_sequence(list(enumerate(clip, 1)), [], config, host.run_context(None),
                          lambda i, r: images.__setitem__(i, r.image))
    assert sorted(images) == [1, 2, 3, 4]
    assert np.array_equal(images[1][:, 64:], painting[:, 64:])
    assert np.array_equal(images[1][:, :64], clip[0][:, :64])  # no style: the source where the alpha is 0
    assert nst_plugin  # (the package, imported for its plugins)


def test_no_style_is_needed_when_every_shot_is_painted_and_refused_before_any_work_otherwise(tmp_path, painted_clip):
    clip, source, painting = painted_clip
    result = nst("video", source, "-o", tmp_path / "out", *FAST, "--frames", "1-3", "--keyframe-image",
                 f"1={tmp_path / 'painted.png'}", "--option", "keyframes.painted_steps=5")
    assert result.exit_code == 0, result.output
    assert np.array_equal(load_image(tmp_path / "out" / "frame_000001.png"), painting)
    for engine in (["--engine", "lbfgs"], FAST):  # no painting, or an engine that takes none: no style, no run
        refused = nst("video", source, "-o", tmp_path / "bare", *engine, "--frames", "1-3")
        assert refused.exit_code == 2 and error_lines(refused) == ["error: at least one style image is needed (--style)"]
        assert not (tmp_path / "bare").exists()


def test_a_changed_painting_remakes_only_its_shot(tmp_path):
    first, second = square_clip(frames=4), [np.roll(f, 20, axis=0)[:, ::-1].copy() for f in square_clip(frames=4)]
    second = [255 - f for f in second]  # a cut: another picture
    clip = first + second
    source = write_sequence(tmp_path / "clip", clip)
    save_image(tmp_path / "style.png", tiny_image(64, 64, seed=9))
    save_image(tmp_path / "a.png", artist(clip[0]))
    save_image(tmp_path / "b.png", artist(clip[4]))
    out = tmp_path / "out"

    def run():
        result = nst("video", source, "-s", tmp_path / "style.png", "-o", out, *FAST, "--option",
                     "keyframes.painted_steps=20", "--keyframe-image", f"1={tmp_path / 'a.png'}",
                     "--keyframe-image", f"5={tmp_path / 'b.png'}")
        assert result.exit_code == 0, result.output
        return events_of(result)

    stream = run()
    assert [e["index"] for e in stream if e["event"] == "cut"] == [5]
    assert sorted(e["index"] for e in stream if e["event"] == "frame_done") == list(range(1, 9))
    before = frames_of(out, 8)
    assert np.array_equal(before[4], artist(clip[4]))

    save_image(tmp_path / "b.png", np.clip(artist(clip[4]).astype(int) + 40, 0, 255).astype(np.uint8))  # retouched
    stream = run()
    assert sorted(e["index"] for e in stream if e["event"] == "frame_done") == [5, 6, 7, 8]
    assert [(e["shot"], e["stopped"]) for e in stream if e["event"] == "training" and e["stopped"]] == [(1, "steps")]
    after = frames_of(out, 8)
    assert all(np.array_equal(before[i], after[i]) for i in range(4))
    assert not np.array_equal(before[4], after[4])

    assert not [e for e in run() if e["event"] == "frame_done"]  # the same paintings: nothing to make


def test_two_paintings_in_a_shot_are_both_its_frames_and_one_network_learns_them(tmp_path, painted_clip):
    clip, source, painting = painted_clip
    last = artist(clip[-1])
    save_image(tmp_path / "last.png", last)
    out = tmp_path / "out"
    result = nst("video", source, "-s", tmp_path / "style.png", "-o", out, *FAST, "--option",
                 "keyframes.painted_steps=300", "--keyframe-image", f"1={tmp_path / 'painted.png'}",
                 "--keyframe-image", f"{len(clip)}={tmp_path / 'last.png'}")
    assert result.exit_code == 0, result.output
    stream = events_of(result)
    assert [e["index"] for e in stream if e["event"] == "keyframe"] == [1, len(clip)]
    assert [e["shot"] for e in stream if e["event"] == "training" and e["stopped"]] == [0]  # one network
    frames = frames_of(out, len(clip))
    assert np.array_equal(frames[0], painting) and np.array_equal(frames[-1], last)
    # the frame before the last painting takes it along the flow: closer to its truth than with one painting
    truth = artist(clip[-2])
    one = tmp_path / "one"
    alone = nst("video", source, "-s", tmp_path / "style.png", "-o", one, *FAST, "--option",
                "keyframes.painted_steps=300", "--keyframe-image", f"1={tmp_path / 'painted.png'}")
    assert alone.exit_code == 0, alone.output
    assert psnr(frames[-2], truth) > psnr(frames_of(one, len(clip))[-2], truth) + 1.5  # measured: 28.9 against 25.2


@pytest.mark.parametrize("spec, says", [
    ("painted.png", "is not FRAME=IMAGE"),
    ("x=painted.png", "is not a whole number"),
    ("-3=painted.png", "0 or more"),
    ("2=missing.png", "does not exist"),
    ("2=.", "is a folder"),
    ("2=notes.png", "cannot be read as an image"),
    ("99=painted.png", "not among the frames of this run"),
    ("1=wide.png", "is not the shape of the frames"),
])
def test_a_bad_keyframe_image_is_refused_in_one_line_and_nothing_is_written(tmp_path, monkeypatch, spec, says):
    monkeypatch.chdir(tmp_path)
    clip = square_clip(frames=3)
    source = write_sequence(tmp_path / "clip", clip)
    save_image(tmp_path / "style.png", tiny_image(64, 64, seed=9))
    save_image(tmp_path / "painted.png", artist(clip[0]))
    save_image(tmp_path / "wide.png", tiny_image(32, 96, seed=3))
    (tmp_path / "notes.png").write_text("not a picture")
    result = nst("video", source, "-s", tmp_path / "style.png", "-o", tmp_path / "out", *FAST,
                 "--keyframe-image", spec)
    assert result.exit_code != 0
    errors = error_lines(result)
    assert len(errors) == 1 and says in errors[0] and "--keyframe-image" in errors[0], result.stderr
    assert "('" not in errors[0]  # the item that failed, not the whole list as a tuple
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_painted_shot_on_a_cluster_makes_the_single_process_frames(tmp_path):
    import os
    import subprocess
    import sys

    cluster_tests = pytest.importorskip("test_cluster")  # (skipped without dask.distributed)
    first = square_clip(frames=4)
    clip = first + [255 - np.roll(f, 20, axis=0)[:, ::-1] for f in first]  # a painted shot, then a styled one
    source = write_sequence(tmp_path / "clip", clip)
    save_image(tmp_path / "style.png", tiny_image(64, 64, seed=9))
    save_image(tmp_path / "a.png", artist(clip[2]))  # mid-shot: carried back over frames 1-2, forward over 4
    settings = ["-s", str(tmp_path / "style.png"), *FAST, "--option", "keyframes.painted_steps=20", "--option",
                "keyframes.steps=20", "--keyframe-image", f"3={tmp_path / 'a.png'}"]
    # training's float sums depend on TensorFlow's thread count: the single process uses the workers' one thread
    single = subprocess.run([sys.executable, "-m", "nst_plugin", "video", str(source), "-o", str(tmp_path / "single"),
                             *settings], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **cluster_tests.WORKER_ENV, "PYTHONPATH": str(cluster_tests.ROOT)})
    assert single.returncode == 0, single.stderr
    cluster = cluster_tests.LocalDask(tmp_path / "dask")
    try:
        spread = nst("video", source, "-o", tmp_path / "cluster", *settings, "--cluster", cluster.address)
    finally:
        cluster.close()
    assert spread.exit_code == 0, spread.output
    stream = events_of(spread)
    assert sorted(e["index"] for e in stream if e["event"] == "keyframe") == [3, 5]
    got, expected = frames_of(tmp_path / "cluster", 8), frames_of(tmp_path / "single", 8)
    assert np.array_equal(got[2], artist(clip[2]))
    for i in range(8):
        assert np.array_equal(got[i], expected[i]), i
