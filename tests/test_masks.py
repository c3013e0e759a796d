"""``--mask``: white is styled, black is the source, grey in between, for both engines, the CLI, the Python API
and a ``--settings`` file; a bad mask is one line before any work; a changed mask re-makes only the frames it
changes; a resumed run and a cluster give the frames of one uninterrupted run.

Real runs on tiny frames (48 px, a few iterations) of samples/street.avi written as an image sequence.
"""

import json

import numpy as np
import pytest

from nst_plugin.images import load_image, resize, save_image
from test_video import error_lines, events_of, nst, street_frames, write_sequence

TINY = ["--size", "48", "--iterations", "3", "--warm-iterations", "2", "--weights", "hed", "--tolerance", "0"]


def grey(plane: np.ndarray) -> np.ndarray:
    """A float 0..1 plane as an 8-bit RGB picture."""
    return np.repeat(np.rint(plane * 255).astype(np.uint8)[..., None], 3, axis=2)


def frames_in(folder) -> dict:
    return {p.name: load_image(p) for p in sorted(folder.glob("frame_*.png"))}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """Three 48x36 frames (the run's size: no resizing) as an image sequence, the style, and masks."""
    from pathlib import Path

    samples = Path(__file__).resolve().parent.parent / "samples"
    folder = tmp_path_factory.mktemp("masks")
    frames = street_frames(samples, 3, size=48)
    write_sequence(folder / "seq", frames)
    height, width = frames[0].shape[:2]
    ramp = np.tile(np.linspace(0.0, 1.0, width, dtype=np.float32), (height, 1))  # soft: black left, white right
    ramp = (np.rint(ramp * 255) / 255).astype(np.float32)  # as its 8-bit picture holds it
    save_image(folder / "black.png", grey(np.zeros((height, width))))
    save_image(folder / "white.png", grey(np.ones((height, width))))
    save_image(folder / "ramp.png", grey(ramp))
    return dict(folder=folder, source=folder / "seq" / "####.png", style=samples / "starry_night.jpg",
                frames=frames, ramp=ramp, shape=(height, width))


@pytest.fixture(scope="module")
def unmasked(clip):
    """The run without a mask: its folder."""
    out = clip["folder"] / "unmasked"
    result = nst("video", clip["source"], "-s", clip["style"], "-o", out, *TINY, "--progress", "none")
    assert result.exit_code == 0, result.output
    return out


def run(clip, out, mask, *more):
    result = nst("video", clip["source"], "-s", clip["style"], "-o", out, *TINY, "--progress", "jsonl",
                 *(["--mask", mask] if mask is not None else []), *more)
    assert result.exit_code == 0, result.output
    return events_of(result)


# -- the mask itself (no TensorFlow) ---------------------------------------------------------------------------

def test_a_mask_is_luminance_times_alpha_and_its_soft_edge_stays_soft_when_resized():
    from nst_plugin.masks import composite, mask_plane, resize_plane

    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., :3] = 255
    bgra[..., 3] = [[255, 128, 0], [255, 255, 255]]
    bgra[1, 1, :3] = (0, 0, 255)  # pure red in BGR: Rec. 709 luminance 0.2126
    plane = mask_plane(bgra)
    assert plane[0].tolist() == pytest.approx([1.0, 128 / 255, 0.0])
    assert plane[1, 1] == pytest.approx(0.2126, abs=1e-4)
    assert mask_plane(np.full((2, 2), 65535, np.uint16)).tolist() == [[1.0, 1.0], [1.0, 1.0]]

    edge = np.clip(np.linspace(-1, 2, 64, dtype=np.float32), 0, 1)[None].repeat(8, 0)  # a ramp between 0 and 1
    for width in (16, 200):
        row = resize_plane(edge, 4, width)[0]
        assert row[0] == 0.0 and row[-1] == 1.0 and np.all(np.diff(row) >= -1e-6)  # no overshoot, no step
        assert 0.2 < row[width // 2] < 0.8 and ((row > 0.05) & (row < 0.95)).sum() >= width // 4  # still a ramp
    styled, source = np.full((1, 3, 3), 200, np.uint8), np.full((1, 3, 3), 100, np.uint8)
    mixed = composite(styled, source, np.array([[0.0, 0.25, 1.0]], np.float32))
    assert mixed[0, :, 0].tolist() == [100, 125, 200]


def test_a_video_mask_goes_with_the_source_frame_by_frame(samples):
    import cv2

    from nst_plugin.masks import mask_plane, open_mask
    from nst_plugin.video import open_source

    mask = open_mask(samples / "street.avi", open_source(samples / "street.avi", frames="3-5"))
    assert mask.identity()["kind"] == "video" and mask.number(4) == 4  # one mask frame per source frame
    capture = cv2.VideoCapture(str(samples / "street.avi"))
    for _ in range(4):
        ok, bgr = capture.read()
    capture.release()
    assert ok and np.allclose(mask.plane(4), mask_plane(bgr), atol=1e-6)
    assert mask.plane(3).shape == bgr.shape[:2] and not np.array_equal(mask.plane(3), mask.plane(4))
    assert mask.at(4, 36, 48).shape == (36, 48)


def test_a_source_frame_the_lookup_no_longer_keeps_is_read_again(clip):
    from nst_plugin.video import open_source
    from nst_plugin.video.masking import SourceLookup

    lookup = SourceLookup(open_source(clip["source"]), keep_bytes=1)  # keeps the last 2 frames only
    read = list(lookup.watch(open_source(clip["source"]).frames()))
    assert [i for i, _ in read] == [1, 2, 3] and sorted(lookup.kept) == [2, 3]
    for index in (3, 1, 2, 1):  # kept, then read again from the source (backwards too)
        assert np.array_equal(lookup.get(index), clip["frames"][index - 1])


# -- bad masks: one line, before any work ------------------------------------------------------------------------

def test_a_bad_mask_is_one_error_line_and_no_output_folder(clip, tmp_path):
    height, width = clip["shape"]
    write_sequence(tmp_path / "two", [grey(np.ones((height, width)))] * 2)
    save_image(tmp_path / "wide.png", grey(np.ones((height, width * 2))))
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    write_sequence(tmp_path / "late", [grey(np.ones((height, width)))] * 3)
    (tmp_path / "late" / "0003.png").write_bytes(b"")  # the last file of a sequence: refused before the run too
    cases = [(tmp_path / "missing.png", ["missing.png", "does not exist"]),
             (tmp_path / "two", ["has 2 frames", "has 3"]),
             (tmp_path / "late", ["0003.png", "cannot be read"]),
             (tmp_path / "wide.png", ["wide.png", "96x36", "48x36", "aspect"]),
             (tmp_path / "broken.png", ["broken.png"])]
    for mask, phrases in cases:
        out = tmp_path / "out"
        result = nst("video", clip["source"], "-s", clip["style"], "-o", out, *TINY, "--mask", mask)
        assert result.exit_code == 2, result.output
        lines = error_lines(result)
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert all(phrase in lines[0] for phrase in ["--mask", *phrases]), lines[0]
        assert not out.exists()
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"mask": str(tmp_path / "two")}))
    result = nst("video", clip["source"], "-s", clip["style"], "-o", tmp_path / "out", *TINY, "--settings", settings)
    assert result.exit_code == 2 and "has 2 frames" in error_lines(result)[0]
    assert not (tmp_path / "out").exists()


def test_a_mask_whose_count_is_the_runs_frames_goes_with_them(clip, tmp_path):
    from nst_plugin.masks import open_mask
    from nst_plugin.video import open_source

    height, width = clip["shape"]
    write_sequence(tmp_path / "two", [grey(np.zeros((height, width))), grey(np.ones((height, width)))], start=7)
    mask = open_mask(tmp_path / "two", open_source(clip["source"], frames="2-3"))
    assert [mask.plane(i).mean() for i in (2, 3)] == [0.0, 1.0]


# -- the lbfgs engine ----------------------------------------------------------------------------------------------

def test_black_is_the_source_white_the_unmasked_run_and_grey_in_between(clip, unmasked, tmp_path):
    from nst_plugin.masks import composite

    styled = frames_in(unmasked)
    assert len(styled) == 3
    run(clip, tmp_path / "black", clip["folder"] / "black.png")  # one image: every frame's mask
    for n, frame in enumerate(clip["frames"], start=1):
        assert np.array_equal(load_image(tmp_path / "black" / f"frame_{n:06d}.png"), frame)
    run(clip, tmp_path / "white", clip["folder"] / "white.png")
    assert all(np.array_equal(frames_in(tmp_path / "white")[name], styled[name]) for name in styled)

    stream = run(clip, tmp_path / "ramp", clip["folder"] / "ramp.png")
    ramp = frames_in(tmp_path / "ramp")
    for n, frame in enumerate(clip["frames"], start=1):
        name = f"frame_{n:06d}.png"
        assert np.array_equal(ramp[name], composite(styled[name], frame, clip["ramp"]))
        middle = ramp[name][:, 20:28].astype(int)
        low, high = np.minimum(frame, styled[name])[:, 20:28], np.maximum(frame, styled[name])[:, 20:28]
        assert np.all((low <= middle) & (middle <= high)) and np.abs(middle - frame[:, 20:28]).mean() > 2
    manifest = json.loads((tmp_path / "ramp" / "nst_manifest.json").read_text())
    assert manifest["mask"]["path"] == str((clip["folder"] / "ramp.png").resolve())
    assert manifest["mask"]["kind"] == "image" and all(e["mask"] for e in manifest["frames"].values())
    assert [e["event"] for e in stream].count("frame_done") == 3


def test_a_changed_mask_re_makes_only_the_frames_it_changes_without_the_engine(clip, unmasked, tmp_path,
                                                                              monkeypatch):
    from nst_plugin.builtin.stylizer import Stylizer
    from nst_plugin.masks import composite

    height, width = clip["shape"]
    left = np.zeros((height, width)); left[:, : width // 2] = 1
    right = 1 - left
    write_sequence(tmp_path / "a", [grey(left)] * 3)
    write_sequence(tmp_path / "b", [grey(left), grey(right), grey(left)])
    out = tmp_path / "out"
    run(clip, out, tmp_path / "a")
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("frame_*.png")}
    optimised = []
    stylize = Stylizer.run
    monkeypatch.setattr(Stylizer, "run", lambda self, *a, **k: optimised.append(1) or stylize(self, *a, **k))
    stream = run(clip, out, tmp_path / "b")
    assert stream[0]["resumed"] == 3
    done = [e for e in stream if e["event"] == "frame_done"]
    assert [e["index"] for e in done] == [2] and stream[-1]["written"] == 1
    assert optimised == []  # the engine optimised nothing
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("frame_*.png")}
    assert [name for name in before if before[name] != after[name]] == ["frame_000002.png"]
    styled, got = frames_in(unmasked), frames_in(out)
    assert np.array_equal(got["frame_000002.png"], composite(styled["frame_000002.png"], clip["frames"][1], right))
    # a fresh run with mask b makes the same frames; a run without a mask gives the engine's frames back
    run(clip, tmp_path / "fresh", tmp_path / "b")
    assert len(optimised) >= 3  # (the counter counts: a cold frame runs coarse, then fine)
    assert all(np.array_equal(frames_in(tmp_path / "fresh")[name], got[name]) for name in got)
    stream = run(clip, out, None)
    assert [e["index"] for e in stream if e["event"] == "frame_done"] == [1, 2, 3]
    assert all(np.array_equal(frames_in(out)[name], styled[name]) for name in styled)


def test_a_resumed_masked_run_gives_the_uninterrupted_frames(clip, tmp_path):
    from nst_plugin.api import prepare
    from nst_plugin.video import open_source, stylize_video

    config, styles, _ = prepare([load_image(clip["style"])], size=48, iterations=3, warm_iterations=2,
                                weights="hed", tolerance=0)
    mask = clip["folder"] / "ramp.png"
    whole = stylize_video(open_source(clip["source"]), styles, config, tmp_path / "whole", mask=mask)
    assert whole.written == [1, 2, 3]

    def stop_after_one(event):
        if event["event"] == "frame_done" and event["index"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stylize_video(open_source(clip["source"]), styles, config, tmp_path / "cut", mask=mask, emit=stop_after_one)
    resumed = stylize_video(open_source(clip["source"]), styles, config, tmp_path / "cut", mask=mask)
    assert resumed.written == [2, 3]
    a, b = frames_in(tmp_path / "whole"), frames_in(tmp_path / "cut")
    assert sorted(a) == sorted(b) and all(np.array_equal(a[name], b[name]) for name in a)


def test_the_mask_setting_of_a_settings_file(clip, unmasked, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"mask": str(clip["folder"] / "black.png"), "iterations": 3}))
    result = nst("video", clip["source"], "-s", clip["style"], "-o", tmp_path / "out", *TINY, "--settings", settings,
                 "--progress", "none", "--frames", "1")
    assert result.exit_code == 0, result.output
    assert np.array_equal(load_image(tmp_path / "out" / "frame_000001.png"), clip["frames"][0])


# -- the keyframe engine, the image command, the API ---------------------------------------------------------------

def test_the_keyframe_engine_is_masked_the_same_way(clip, tmp_path):
    engine = ["--engine", "keyframes", "--keyframe-size", "32", "--option", "keyframes.steps=20",
              "--option", "keyframes.patch=16"]
    height, width = clip["shape"]
    half = np.zeros((height, width)); half[height // 2:] = 1  # the lower half styled
    save_image(tmp_path / "half.png", grey(half))
    run(clip, tmp_path / "plain", None, *engine)
    run(clip, tmp_path / "masked", tmp_path / "half.png", *engine)
    plain, masked = frames_in(tmp_path / "plain"), frames_in(tmp_path / "masked")
    assert sorted(plain) == sorted(masked) and len(plain) == 3
    for n, frame in enumerate(clip["frames"], start=1):
        name = f"frame_{n:06d}.png"
        assert np.array_equal(masked[name][: height // 2], frame[: height // 2])
        assert np.array_equal(masked[name][height // 2:], plain[name][height // 2:])


def test_nst_image_and_the_api_take_a_mask(clip, tmp_path):
    import nst_plugin

    content = clip["frames"][0]
    save_image(tmp_path / "content.png", content)
    result = nst("image", tmp_path / "content.png", "-s", clip["style"], "-o", tmp_path / "out.png", "--size", "48",
                 "--iterations", "3", "--weights", "hed", "--mask", clip["folder"] / "black.png", "-q")
    assert result.exit_code == 0, result.output
    assert np.array_equal(load_image(tmp_path / "out.png"), content)
    meta = json.loads((tmp_path / "out.nst.json").read_text())
    assert meta["inputs"]["mask"] == str(clip["folder"] / "black.png")

    style = resize(load_image(clip["style"]), 48, 48)
    plain = nst_plugin.stylize_frame(content, style, size=48, iterations=3, weights="hed")
    ramp = nst_plugin.stylize_frame(content, style, size=48, iterations=3, weights="hed", mask=clip["ramp"])
    from nst_plugin.masks import composite

    assert np.array_equal(ramp.image, composite(plain.image, content, clip["ramp"]))
    bad = nst("image", tmp_path / "content.png", "-s", clip["style"], "-o", tmp_path / "bad.png",
              "--mask", tmp_path / "nope.png")
    assert bad.exit_code == 2 and "nope.png" in error_lines(bad)[0] and not (tmp_path / "bad.png").exists()


# -- a cluster ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_masked_run_on_a_cluster_makes_the_single_process_frames(clip, tmp_path):
    pytest.importorskip("distributed")
    mask = clip["folder"] / "ramp.png"
    run(clip, tmp_path / "single", mask)
    stream = run(clip, tmp_path / "cluster", mask, "--cluster", "local", "--workers", "1")
    assert [e["event"] for e in stream][:2] == ["start", "cluster"]
    single, cluster = frames_in(tmp_path / "single"), frames_in(tmp_path / "cluster")
    assert sorted(single) == sorted(cluster) and len(single) == 3
    assert all(np.array_equal(single[name], cluster[name]) for name in single)
    # a changed mask on the cluster's folder: composited again, no unit shipped
    height, width = clip["shape"]
    save_image(tmp_path / "black.png", grey(np.zeros((height, width))))
    stream = run(clip, tmp_path / "cluster", tmp_path / "black.png", "--cluster", "local", "--workers", "1")
    assert sorted(e["index"] for e in stream if e["event"] == "frame_done") == [1, 2, 3]
    assert all(np.array_equal(frames_in(tmp_path / "cluster")[f"frame_{n:06d}.png"], frame)
               for n, frame in enumerate(clip["frames"], start=1))
    # the keyframe engine's units on the cluster: each frame its own engine frame composited with the ramp
    from nst_plugin.masks import composite

    run(clip, tmp_path / "keyframes", mask, "--engine", "keyframes", "--keyframe-size", "32", "--option",
        "keyframes.steps=20", "--option", "keyframes.patch=16", "--cluster", "local", "--workers", "1")
    for n, frame in enumerate(clip["frames"], start=1):
        got = load_image(tmp_path / "keyframes" / f"frame_{n:06d}.png")
        styled = load_image(tmp_path / "keyframes" / f"unmasked_{n:06d}.png")
        assert np.array_equal(got, composite(styled, frame, clip["ramp"])) and not np.array_equal(got, styled)
