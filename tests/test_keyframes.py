"""The keyframe engine (--engine keyframes): keyframes chosen per shot, a small network that learns them,
every frame through it (in tiles when large), resumable in the output folder.

Tiny sizes and few training steps; the quality and speed measurements live in benchmarks/keyframe_bench.py.
"""

import json

import numpy as np
import pytest

from nst_plugin.builtin.keyframes.network import STRIDE, NetworkShape, build_network, predict, stylize_image
from nst_plugin.builtin.keyframes.selection import choose_keyframes, make_plan
from nst_plugin.builtin.keyframes.training import TrainingSettings, train
from nst_plugin.errors import UserError
from nst_plugin.images import load_image, resize
from nst_plugin.testing import tiny_image
from test_video import error_lines, events_of, nst, write_sequence


def moving_square_clip(fish_rgb, first=5, second=4):
    """A shot of a textured square moving right over a still background, then a cut to another picture."""
    background = tiny_image(48, 64, seed=1)
    square = tiny_image(16, 16, seed=2)[:, :, ::-1]
    frames = []
    for t in range(first):
        frame = background.copy()
        frame[16:32, 4 + 8 * t:20 + 8 * t] = square
        frames.append(frame)
    other = resize(fish_rgb, 48, 64)
    frames += [np.roll(other, 2 * t, axis=1) for t in range(second)]
    return frames


# -- the network ----------------------------------------------------------------------------------------


def test_receptive_field_is_within_the_declared_radius():
    shape = NetworkShape()
    model = build_network(shape, seed=3)
    x = np.zeros((1, 128, 128, 3), np.float32)
    base = predict(model, x)[0]
    x[0, 64, 64] = 1.0
    changed = np.abs(predict(model, x)[0] - base).max(axis=-1) > 0
    ys, xs = np.nonzero(changed)
    reach = max(64 - ys.min(), ys.max() - 64, 64 - xs.min(), xs.max() - 64)
    assert 20 < reach <= shape.radius


@pytest.mark.backends
def test_tiles_join_without_a_seam():
    model = build_network(NetworkShape(), seed=4)
    image = np.random.default_rng(0).uniform(0, 255, (150, 203, 3)).astype(np.float32)
    whole = stylize_image(model, image)
    tiled = stylize_image(model, image, tile=96)  # 3 x 3 tiles of a frame that is not a multiple of the stride
    assert whole.shape == tiled.shape == image.shape
    assert np.abs(whole - tiled).max() < 1e-2  # pixel values 0..255: no seam at all
    # too little overlap makes a seam: the check above can fail
    cut = stylize_image(model, image, tile=96, margin=STRIDE)
    assert np.abs(whole - cut).max() > 1.0


@pytest.mark.backends
def test_the_network_learns_its_keyframe():
    content = tiny_image(48, 64, seed=5)
    target = np.clip(255.0 - content[:, :, ::-1] * 0.8, 0, 255)  # a colour mapping the network can learn
    model = build_network(NetworkShape(), seed=0)
    before = np.abs(stylize_image(model, content) - target).mean()
    report = train(model, [(content, target)], TrainingSettings(patch=24, batch=8, learning_rate=2e-3,
                                                                max_steps=150, check_every=25, patience=100))
    after = np.abs(stylize_image(model, content) - target).mean()
    assert report.steps == 150 and report.stopped == "steps"
    assert report.history[-1][1] < 0.5 * report.history[0][1]  # the held patches' loss falls
    assert after < 0.35 * before and after < 25  # the keyframe's own frame comes out close to the keyframe


@pytest.mark.backends
def test_training_stops_on_a_plateau():
    content = tiny_image(32, 32, seed=6)
    report = train(build_network(NetworkShape(), seed=0), [(content, content.astype(np.float32))],
                   TrainingSettings(patch=16, batch=4, learning_rate=1e-6, max_steps=400, check_every=5, patience=2))
    assert report.stopped == "plateau" and report.steps < 400


def test_a_frame_is_enlarged_to_the_output_with_the_stylized_look_and_its_own_fine_detail():
    from nst_plugin.builtin.keyframes.engine import enlarge

    content = tiny_image(96, 128, seed=8)
    stylized = np.clip(255.0 - resize(content, 48, 64) * 0.7, 0, 255).astype(np.uint8)  # at half the size
    assert np.array_equal(enlarge(stylized, resize(content, 48, 64)), stylized.astype(np.float32))
    big = enlarge(stylized, content)
    assert big.shape == (96, 128, 3)
    # its coarse picture is the stylized one (not the content's), its finest detail the content's own
    assert np.abs(resize(big, 48, 64).astype(np.float32) - stylized).mean() < 6
    detail = lambda im: im.astype(np.float32) - resize(resize(im, 48, 64), 96, 128).astype(np.float32)  # noqa: E731
    assert np.corrcoef(detail(big).ravel(), detail(content).ravel())[0, 1] > 0.9


# -- guides ---------------------------------------------------------------------------------------------


def test_the_guide_moves_with_the_picture_and_starts_again_at_a_cut(fish_rgb):
    from nst_plugin.builtin.keyframes.guides import GuideSettings, GuideTrack

    background, square = tiny_image(96, 128, seed=1), tiny_image(32, 32, seed=2)[:, :, ::-1]
    clip = []
    for t in range(6):  # the square moves 5 px right per frame over a still background
        frame = background.copy()
        frame[32:64, 8 + 5 * t:40 + 5 * t] = square
        clip.append(frame)
    track = GuideTrack((96, 128), GuideSettings(scale=4.0))
    guides = [track.next(frame) for frame in clip]
    assert guides[0].shape == (96, 128, 3) and guides[0].dtype == np.uint8
    guides = [g.astype(np.float32) for g in guides]
    spread = np.abs(guides[0] - np.roll(guides[0], 9, axis=1)).mean()  # two unrelated places of the pattern
    for t in range(1, 6):
        inside = np.abs(guides[t][38:58, 14 + 5 * t:34 + 5 * t] - guides[0][38:58, 14:34]).mean()
        assert inside < 0.3 * spread, (t, inside, spread)  # the square's pattern went with the square
        still = np.abs(guides[t][:24] - guides[0][:24]).mean()
        assert still < 0.05 * spread, (t, still, spread)  # the background's stayed
    track.reset()  # a cut: the new shot's first frame sees the pattern unmoved
    assert np.array_equal(track.next(resize(fish_rgb, 96, 128)), guides[0].astype(np.uint8))


@pytest.mark.backends
def test_with_the_guide_the_network_puts_texture_where_the_content_is_flat():
    from nst_plugin.builtin.keyframes.guides import GuideSettings, GuideTrack

    content = np.full((48, 64, 3), 128, np.uint8)  # a flat picture (a sky, a wall)
    target = tiny_image(48, 64, seed=7).astype(np.float32)  # the keyframe: texture on it
    guide = GuideTrack((48, 64), GuideSettings(scale=3.0)).next(content)
    settings = TrainingSettings(patch=24, batch=8, learning_rate=2e-3, max_steps=200, check_every=50, patience=100)
    errors = {}
    for guides, image in ((0, content), (3, np.concatenate([content, guide], axis=-1))):
        shape = NetworkShape(guides=guides)
        model = build_network(shape, seed=0)
        train(model, [(image, target)], settings)
        errors[guides] = np.abs(stylize_image(model, image, shape=shape) - target).mean()
    # without a guide the network can only paint the flat picture one colour; with it, the texture comes back
    assert errors[3] < 0.6 * errors[0], errors


# -- the temporal filter ---------------------------------------------------------------------------------


def test_chunks_carry_margins_within_their_shot_and_make_every_wanted_frame_once():
    from nst_plugin.builtin.keyframes.smoothing import windows

    shot_of = lambda i: 0 if i < 10 else 1  # noqa: E731  (a cut at 10)
    wanted = lambda i: i not in (3, 4, 15)  # noqa: E731  (done by an earlier run)
    chunks = list(windows(((i, f"frame {i}") for i in range(1, 21)), shot_of, wanted, radius=2, size=4))
    made = [i for _, emit in chunks for i in emit]
    assert sorted(made) == [i for i in range(1, 21) if wanted(i)] and len(made) == len(set(made))
    for items, emit in chunks:
        indices = [i for i, _ in items]
        assert indices == list(range(indices[0], indices[-1] + 1))  # consecutive
        assert len({shot_of(i) for i in indices}) == 1  # one shot
        shot = [i for i in range(1, 21) if shot_of(i) == shot_of(emit[0])]
        for i in emit:  # each made frame has its neighbours up to 2 away, where its shot has them
            assert all(j in indices for j in range(i - 2, i + 3) if j in shot)
        assert len(emit) <= 4 and len(indices) <= 4 + 2 * 2
    assert [emit for _, emit in chunks][:2] == [[1, 2], [5, 6, 7, 8]]


def _moving_texture(frames: int, step: int, noise: float, seed: int):
    """A textured picture sliding ``step`` px a frame (the sources), and the same frames with fresh noise each
    (a network's frames whose strokes change a little from one frame to the next)."""
    rng = np.random.default_rng(seed)
    wide = resize(tiny_image(64, 96, seed=3), 64, 96 + step * frames).astype(np.float32)
    sources = {t: wide[:, step * t:step * t + 96] for t in range(1, frames + 1)}
    noisy = {t: np.clip(s + rng.normal(0, noise, s.shape), 0, 255).astype(np.float32) for t, s in sources.items()}
    return sources, noisy


def test_the_temporal_filter_removes_what_one_frame_drew_and_keeps_what_moves_with_the_picture():
    from nst_plugin.builtin.keyframes.smoothing import smooth
    from nst_plugin.flow import warping_error

    sources, noisy = _moving_texture(7, 2, noise=12.0, seed=0)
    smoothed = {t: smooth(t, noisy, sources, radius=3) for t in range(2, 7)}
    inner = (slice(8, -8), slice(16, -16))  # away from the borders the texture enters and leaves by
    error = lambda image, t: np.abs(image - sources[t])[inner].mean()  # noqa: E731
    for t in range(2, 7):
        # the texture stays where the source has it (not blurred away), the per-frame noise mostly goes
        assert error(smoothed[t], t) < 0.6 * error(noisy[t], t), t
    flicker = lambda images: np.mean([warping_error(images[t], images[t + 1], sources[t], sources[t + 1])  # noqa: E731
                                      for t in range(2, 6)])
    assert flicker(smoothed) < 0.5 * flicker(noisy)
    # a frame with no neighbour in its shot (held alone) is the network's frame itself
    assert np.array_equal(smooth(4, {4: noisy[4]}, sources, radius=3), noisy[4])


def test_the_carried_keyframe_follows_the_picture_and_is_not_trusted_where_the_flow_fails():
    from nst_plugin.builtin.keyframes.transport import TextureTrack

    sources, _ = _moving_texture(6, 2, noise=0.0, seed=0)
    rng = np.random.default_rng(5)
    # the "stylized" picture: the source with strokes of its own, sliding with it
    wide = resize(tiny_image(64, 96, seed=3), 64, 96 + 2 * 6).astype(np.float32)
    painted = np.clip(wide * 0.6 + rng.uniform(0, 100, wide.shape), 0, 255).astype(np.float32)
    expected = {t: painted[:, 2 * t:2 * t + 96] for t in range(1, 7)}
    frames = {t: s.copy() for t, s in sources.items()}
    frames[4][24:40, 36:52] = 0.0  # something dark passes in front of the picture at frame 4
    frames[5][24:40, 36:52] = 0.0
    track = TextureTrack((64, 96))
    assert track.next(frames[1]) is None  # nothing to carry before a keyframe
    track.reset()
    track.start(expected[1])
    carried = {t: track.next(frames[t]) for t in range(1, 7)}
    assert np.array_equal(carried[1].image, np.rint(expected[1]).astype(np.uint8)) and (carried[1].trust == 255).all()
    for t in (2, 3):
        # the picture slides left 2 px a frame: a point at x was at x + 2 (t - 1) in the keyframe
        inner = (slice(8, -8), slice(8, 96 - 2 * (t - 1) - 8))
        assert np.abs(carried[t].image[inner].astype(np.float32) - expected[t][inner]).mean() < 3.0, t
        assert (carried[t].trust[inner] > 200).mean() > 0.95, t
        assert (carried[t].trust[:, 96 - 2 * (t - 1) + 1:] == 0).all(), t  # entered from the right: nothing to carry
    # where the dark square covered the picture, the keyframe cannot be followed (and stays lost: decay 0)
    for t in (4, 5, 6):
        assert carried[t].trust[28:36, 40:48].max() == 0, t
    assert (carried[6].trust[4:16, 8:60] > 200).mean() > 0.9  # elsewhere it can
    # the whole picture slides (a camera's pan): it stands still relative to the frame, so the keyframe's large
    # shapes are carried too wherever its detail is
    assert (carried[3].whole[inner] > 200).mean() > 0.95 and (carried[3].whole <= carried[3].trust).all()
    # with a decay (the engine's 0.7), a rejected step costs a point part of its trust, not all of it (all of
    # its trust shown: the dark square stands still while the picture pans, so it moves relative to the frame)
    track = TextureTrack((64, 96), decay=0.7, moving_trust=1.0)
    track.start(expected[1])
    trust = {t: track.next(frames[t]).trust for t in range(1, 7)}
    assert 170 <= trust[4][28:36, 40:48].min() and trust[4][28:36, 40:48].max() <= 180
    assert (trust[6][4:16, 8:60] > 200).mean() > 0.9


def test_the_keyframes_large_shapes_are_carried_only_where_the_picture_stands_still():
    from nst_plugin.builtin.keyframes.transport import MOVING_TRUST, TextureTrack

    rng = np.random.default_rng(2)
    background = resize(tiny_image(64, 96, seed=4), 64, 96).astype(np.float32)
    patch = rng.uniform(0, 255, (16, 16, 3)).astype(np.float32)
    frames = []
    for t in range(4):  # a textured square walks 3 px a frame to the right over a still background
        frame = background.copy()
        frame[24:40, 20 + 3 * t:36 + 3 * t] = patch
        frames.append(frame.astype(np.uint8))
    def carried(**settings):
        track = TextureTrack((64, 96), decay=0.7, **settings)
        track.start(np.clip(background * 0.5 + 60, 0, 255))
        return [track.next(frame) for frame in frames]

    default, full = carried(), carried(moving_trust=1.0)
    assert (default[0].whole == 255).all()  # the keyframe itself
    walker, still = (slice(27, 37), slice(32, 40)), (slice(4, 16), slice(56, 92))
    assert default[3].whole[walker].max() < 30  # the moving square: the network's large shapes
    assert (default[3].whole[still] > 200).mean() > 0.95  # the still background: the keyframe's
    # and on what moves, a share of the strokes' trust (MOVING_TRUST), all of it where the picture stands still
    moving = full[3].trust[walker].astype(np.float32)
    assert moving.min() > 50 and np.abs(default[3].trust[walker] - MOVING_TRUST * moving).max() <= 1.0
    assert np.array_equal(default[3].trust[still], full[3].trust[still])


def test_a_point_a_walker_uncovered_is_recovered_where_the_keyframes_source_looks_alike_away_from_walkers():
    import cv2

    from nst_plugin.builtin.keyframes.transport import TextureTrack

    rng = np.random.default_rng(3)
    h, w = 120, 180
    background = np.clip((cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 3.0) - 128) * 4
                         + 128, 0, 255)  # a textured still picture
    walker = rng.uniform(0, 60, (16, 16, 3)).astype(np.float32)  # dark, unlike the background
    uncovered = (slice(53, 63), slice(46, 50))  # seen in the keyframe, covered at frames 7-11, seen since

    def clip(mark: bool, frames: int = 16, changed=uncovered):
        out = []
        for t in range(frames):  # the walker crosses the still background, 4 px a frame
            frame = background.copy()
            frame[50:66, 4 + 4 * t:20 + 4 * t] = walker
            if mark and t >= 12:  # what it left behind: the place changed
                frame[changed] = (40.0, 40.0, 220.0)
            out.append(np.clip(frame, 0, 255).astype(np.uint8))
        return out

    strokes = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    painted = np.clip(background * 0.5 + (strokes - 128) * 2 + 60, 0, 255)

    def last(frames, recover, **settings):
        track = TextureTrack((h, w), decay=0.7, recover=recover, **settings)
        track.start(painted)
        return [track.next(frame) for frame in frames][-1]

    lost, found = last(clip(False), False), last(clip(False), True)
    assert lost.trust[uncovered].max() < 100  # without recovery: lost, the source's detail
    assert found.trust[uncovered].min() > 180  # recovered: the keyframe's strokes back in place
    assert np.abs(found.image[uncovered].astype(np.float32) - painted[uncovered]).mean() < 4.0
    assert np.abs(lost.image[uncovered].astype(np.float32) - painted[uncovered]).mean() > 15.0
    # where the place changed, its neighbours' offsets lead to a keyframe source unlike it: not recovered
    assert last(clip(True), True).trust[uncovered].max() < 100
    # a place that changed 4 px away is the source's, but it does not keep this one from being recovered (as
    # the keyframe's source alike all over 13 px around did: a flat halo around every walker)
    beside = (slice(53, 63), slice(40, 43))
    assert last(clip(True, changed=beside), True).trust[uncovered].min() > 180
    assert last(clip(True, changed=beside), True, around=13, clear=1).trust[uncovered].max() < 100
    # while the walker that uncovered it is still near (10 px on, its flow spreading around it), the point is
    # not recovered: a walker's edges stay the source's; a frame later it is
    # nor onto where the walker stood at the keyframe, 6 px around it: the keyframe's paint there is the
    # walker's and its outline's, not the background's
    outline = (slice(54, 62), slice(24, 32))
    assert last(clip(False), True).trust[outline].max() < 100
    assert last(clip(False), True, keyframe_clear=False).trust[outline].min() > 180
    behind = (slice(53, 63), slice(47, 50))  # (its first column was never lost)
    assert last(clip(False, frames=15), True).trust[behind].max() < 100
    assert last(clip(False, frames=15), True, clear=1).trust[behind].min() > 180


def _panning(frames: int, step: float, seed: int, size=(96, 144)):
    """A textured still picture seen by a camera that pans ``step`` px a frame (fractional: frames fall between
    the picture's pixels), and a "painting" of it (the picture with strokes of its own) panned the same way:
    {t: (source frame, the painting as it should be carried to frame t)} for t = 1 .. frames."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = size
    wide = (h, w + int(np.ceil(step * frames)) + 8)
    picture = np.clip((cv2.GaussianBlur(rng.uniform(0, 255, wide + (3,)).astype(np.float32), (0, 0), 2.5) - 128) * 4
                      + 128, 0, 255)
    strokes = cv2.GaussianBlur(rng.uniform(0, 255, wide + (3,)).astype(np.float32), (0, 0), 1.2)
    painted = np.clip(picture * 0.4 + (strokes - 128) * 2.5 + 90, 0, 255)
    pan = lambda image, dx: cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, 0]]), (w, h),  # noqa: E731
                                           flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP)
    return {t: (np.clip(pan(picture, step * (t - 1)), 0, 255).astype(np.uint8), pan(painted, step * (t - 1)))
            for t in range(1, frames + 1)}


def test_the_carried_keyframe_keeps_its_strokes_sharp_when_the_picture_moves_by_fractions_of_a_pixel():
    import cv2

    from nst_plugin.builtin.keyframes.transport import TextureTrack

    clip = _panning(7, 0.45, seed=11)  # 2.7 px by frame 7
    fine = lambda image: image - cv2.GaussianBlur(image, (0, 0), 2.0)  # noqa: E731
    inner = (slice(10, -10), slice(10, -20))
    expected = fine(clip[7][1])[inner]
    track = TextureTrack((96, 144), decay=0.7)
    track.start(clip[1][1])
    carried = [track.next(source) for source, _ in clip.values()][-1]
    got = fine(carried.image.astype(np.float32))[inner]
    # the carried strokes keep their contrast, where the pan took them (measured: 1.00 of it and an error of
    # 0.10; sampled bilinearly, neighbouring strokes are averaged: 0.94 and 0.14)
    assert got.std() > 0.97 * expected.std()
    assert np.abs(got - expected).mean() < 0.12 * np.abs(expected).mean()


def test_the_texture_track_can_take_the_guide_tracks_flow_and_carries_the_same():
    from nst_plugin.builtin.keyframes.guides import GuideTrack
    from nst_plugin.builtin.keyframes.transport import TextureTrack

    clip = _panning(6, 1.5, seed=14)
    guides, shared, own = GuideTrack((96, 144)), TextureTrack((96, 144), decay=0.7), TextureTrack((96, 144), decay=0.7)
    for t, (source, painted) in clip.items():
        guides.next(source)
        assert (guides.back is None) == (t == 1)  # no flow at the shot's first frame
        if t == 2:  # the keyframe: carried from here on (the tracks saw frame 1 before it)
            shared.start(clip[2][1])
            own.start(clip[2][1])
        a, b = shared.next(source, back=guides.back), own.next(source)
        if t >= 2:
            for x, y in zip(a, b):
                assert np.array_equal(x, y), t


def test_the_carried_detail_replaces_the_networks_own_where_trusted():
    import cv2

    from nst_plugin.builtin.keyframes.transport import Carried, composite

    network = resize(tiny_image(32, 48, seed=1), 32, 48).astype(np.float32)
    keyframe = tiny_image(32, 48, seed=7)
    low = lambda a, s=2.0: cv2.GaussianBlur(np.asarray(a, np.float32), (0, 0), s)  # noqa: E731
    full = Carried(keyframe, np.full((32, 48), 255, np.uint8))
    out = composite(network, full, 2.0)
    inner = (slice(6, -6), slice(6, -6))
    target = np.clip(low(network) + keyframe - low(keyframe), 0, 255)
    assert np.abs(out - target)[inner].max() < 1e-3  # the network's large shapes, the keyframe's strokes
    assert np.array_equal(composite(network, Carried(keyframe, np.zeros((32, 48), np.uint8)), 2.0), network)
    # with the content: its own fine detail where the keyframe cannot be followed, the keyframe's where it can
    content = tiny_image(32, 48, seed=9)
    lost = composite(network, Carried(keyframe, np.zeros((32, 48), np.uint8)), 2.0, content)
    assert np.abs(lost - np.clip(low(network) + content - low(content), 0, 255))[inner].max() < 1e-3
    assert np.abs(composite(network, full, 2.0, content) - target)[inner].max() < 1e-3
    assert np.array_equal(composite(network, None, 2.0), network)
    assert np.array_equal(composite(network, full, 0.0), network)
    # with its large shapes carried too: the keyframe itself; with them half carried, half way
    whole = Carried(keyframe, full.trust, full.trust)
    assert np.abs(composite(network, whole, 2.0, content) - keyframe)[inner].max() < 1e-3
    half = composite(network, Carried(keyframe, full.trust, np.full((32, 48), 128, np.uint8)), 2.0)
    assert np.abs(half - (target + 128 / 255 * (low(keyframe) - low(network))))[inner].max() < 0.5


# -- keyframes ------------------------------------------------------------------------------------------


def test_keyframes_are_the_first_frame_and_the_most_changed_of_each_window():
    thumbs = {i: np.full((4, 4), float(v), np.float32) for i, v in enumerate([0, 1, 2, 9, 3, 3, 4, 20, 5], start=1)}
    assert choose_keyframes(list(range(1, 10)), thumbs, interval=3) == [1, 4, 8]
    assert choose_keyframes(list(range(1, 10)), thumbs, interval=20) == [1]


def test_plan_has_a_keyframe_per_shot_and_bad_keyframes_are_one_line(fish_rgb):
    frames = list(enumerate(moving_square_clip(fish_rgb), start=1))
    plan = make_plan(frames, cut_threshold=27.0, interval=48)
    assert [s.frames for s in plan.shots] == [[1, 2, 3, 4, 5], [6, 7, 8, 9]]
    assert plan.keyframes == [1, 6]
    plan = make_plan(frames, 27.0, 48, requested=(3, 4))
    assert [s.keyframes for s in plan.shots] == [[3, 4], [6]]  # a shot the user gave none gets its first frame
    with pytest.raises(UserError, match=r"--keyframes 12: not among the frames of this run \(1-9\)"):
        make_plan(frames, 27.0, 48, requested=(1, 12))


class _Scripted:
    """A follower whose reach is read from a table: {frame's first pixel value: reach}."""

    def __init__(self, reach):
        self.reach, self.started = reach, []

    def keyframe(self, frame):
        self.started.append(int(frame[0, 0, 0]))

    def next(self, frame):
        self.last = int(frame[0, 0, 0])
        return self.reach.get(self.last, 1.0)

    def reached(self):
        return f"reached {self.last}"


def test_a_keyframe_is_made_where_the_last_one_no_longer_reaches_the_picture():
    from nst_plugin.builtin.keyframes.selection import MIN_GAP

    frames = [(i, np.full((8, 8, 3), i, np.uint8)) for i in range(1, 61)]  # one shot, frame i's pixels = i
    low = {15: 0.5, 16: 0.5, 17: 0.5}  # the first keyframe lost from frame 15 on
    low.update({i: 0.5 for i in range(20, 20 + MIN_GAP)})  # ... and the second one at once: too soon
    follower = _Scripted(low)
    plan = make_plan(frames, 27.0, interval=30, follow=lambda shape: follower, coverage=0.8)
    # 15: under the threshold; 15 + MIN_GAP: the next one no sooner; 15 + 12 + 30 = 57: the interval, but
    # fewer than MIN_GAP frames follow it in the shot, so it is dropped
    assert plan.keyframes == [1, 15, 15 + MIN_GAP]
    assert follower.started == [1, 15, 15 + MIN_GAP, 57]  # followed from each keyframe it made
    assert plan.reach[15] == 0.5 and plan.reach[14] == 1.0 and 1 not in plan.reach  # the reach that made 15 one
    # each keyframe but the first starts from the one before it, as that one reaches it (57's start is dropped)
    assert plan.starts == {15: (1, "reached 15"), 15 + MIN_GAP: (15, f"reached {15 + MIN_GAP}")}
    # at the threshold: no keyframe; interval alone: every 30 frames while MIN_GAP frames follow
    assert make_plan(frames, 27.0, 30, follow=lambda s: _Scripted({}), coverage=0.8).keyframes == [1, 31]
    # an interval shorter than MIN_GAP is the user's: kept (none that fewer than 5 frames follow)
    assert make_plan(frames, 27.0, 5, follow=lambda s: _Scripted({}), coverage=0.8).keyframes == list(range(1, 52, 5))
    # the user's keyframes are not second-guessed; coverage 0: the most changed frame of each window
    assert make_plan(frames, 27.0, 30, requested=(5,), follow=lambda s: _Scripted(low), coverage=0.8).keyframes == [5]
    assert make_plan(frames, 27.0, 30, follow=lambda s: _Scripted(low), coverage=0.0).keyframes == [1, 60]


def test_coverage_falls_as_new_picture_enters_and_stays_where_the_picture_stands_still(fish_rgb):
    from nst_plugin.builtin.keyframes.transport import Coverage

    scene = resize(fish_rgb, 48, 160)
    pan = [scene[:, 2 * t:2 * t + 64] for t in range(16)]  # the camera pans 2 px a frame
    still = [scene[:, :64]] * 16
    reach = {}
    for name, clip in (("pan", pan), ("still", still)):
        coverage = Coverage(clip[0].shape[:2], decay=0.7, recover=True)
        coverage.keyframe(clip[0])
        reach[name] = [coverage.next(frame) for frame in clip[1:]]
    assert min(reach["still"]) > 0.99
    # picture that entered the frame is not reached: after 15 frames 30 of the 64 columns
    assert reach["pan"][-1] < 0.6 and reach["pan"][-1] < reach["pan"][4] < reach["pan"][0]
    plan = make_plan(list(enumerate(pan + pan[::-1], 1)), 27.0, 48,
                     follow=lambda shape: Coverage(shape, decay=0.7, recover=True), coverage=0.8)
    assert plan.keyframes[0] == 1 and len(plan.keyframes) >= 2  # the pan needs another keyframe


# -- the engine, end to end -----------------------------------------------------------------------------

KEYFRAMES = ["--engine", "keyframes", "--size", "64", "--keyframe-size", "32", "--iterations", "3",
             "--weights", "hed", "--option", "keyframes.steps=30", "--option", "keyframes.patch=24",
             "--progress", "jsonl"]


def _kinds(stream, kind):
    return [e for e in stream if e["event"] == kind]


def test_keyframe_engine_resumes_without_retraining_and_a_new_keyframe_retrains_its_shot(tmp_path, fish_rgb, style_rgb):
    from nst_plugin.images import save_image

    clip = moving_square_clip(fish_rgb)
    source = write_sequence(tmp_path / "clip", clip)
    save_image(tmp_path / "style.png", style_rgb)
    out = tmp_path / "out"
    run = lambda *more: nst("video", source, "--style", tmp_path / "style.png", "-o", out, *KEYFRAMES, *more)  # noqa: E731

    first = run()
    assert first.exit_code == 0, first.output
    stream = events_of(first)
    assert [e["index"] for e in _kinds(stream, "cut")] == [6]
    assert [(e["index"], e["shot"], e["resumed"]) for e in _kinds(stream, "keyframe")] == [(1, 0, False), (6, 1, False)]
    assert [e["stopped"] for e in _kinds(stream, "training") if e["stopped"]] == ["steps", "steps"]
    assert sorted(e["index"] for e in _kinds(stream, "frame_done")) == list(range(1, 10))
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"keyframe_000001.png", "keyframe_000006.png",
                                          "network_shot000.weights.h5", "network_shot001.weights.h5"}
    frames = {i: load_image(out / f"frame_{i:06d}.png").astype(np.float32) for i in range(1, 10)}
    assert frames[3].shape == (48, 64, 3)
    # every frame is stylized (not the content), and frames between keyframes follow their own content
    for i in range(1, 10):
        assert np.abs(frames[i] - clip[i - 1]).mean() > 10
    assert np.abs(frames[3] - frames[1]).mean() > 1

    # a killed run: one frame missing; the next run neither stylizes keyframes nor trains again, and makes
    # the same frame (its guide carried along the shot again from the shot's first frame)
    before = load_image(out / "frame_000008.png")
    (out / "frame_000008.png").unlink()
    second = run()
    assert second.exit_code == 0, second.output
    stream = events_of(second)
    assert all(e["resumed"] for e in _kinds(stream, "keyframe"))
    assert [e["stopped"] for e in _kinds(stream, "training")] == ["resumed"]  # only shot 1 has work left
    assert not _kinds(stream, "frame_progress")  # no L-BFGS at all
    assert [e["index"] for e in _kinds(stream, "frame_done")] == [8]
    assert np.abs(load_image(out / "frame_000008.png").astype(int) - before).max() <= 1

    # another keyframe in the second shot: only that shot is trained again and made again
    third = run("--keyframes", "1,8")
    assert third.exit_code == 0, third.output
    stream = events_of(third)
    assert [(e["index"], e["resumed"]) for e in _kinds(stream, "keyframe")] == [(8, False)]
    assert [(e["shot"], e["stopped"]) for e in _kinds(stream, "training") if e["stopped"]] == [(1, "steps")]
    assert sorted(e["index"] for e in _kinds(stream, "frame_done")) == [6, 7, 8, 9]
    assert np.array_equal(load_image(out / "frame_000002.png"), frames[2].astype(np.uint8))



@pytest.mark.slow
def test_a_pan_gets_a_keyframe_where_the_last_one_no_longer_reaches_the_picture(tmp_path, fish_rgb, style_rgb):
    from nst_plugin.builtin.keyframes.selection import MIN_GAP
    from nst_plugin.images import save_image

    scene = resize(fish_rgb, 48, 160)
    pan = [scene[:, 3 * t:3 * t + 64] for t in range(MIN_GAP + 13)]  # the camera pans 3 px a frame: one shot
    source = write_sequence(tmp_path / "clip", pan)
    save_image(tmp_path / "style.png", style_rgb)
    keyframes = {}
    for name, more in (("coverage", []), ("off", ["--option", "keyframes.coverage=0"]),
                       ("listed", ["--keyframes", f"1,{1 + MIN_GAP}"])):
        result = nst("video", source, "--style", tmp_path / "style.png", "-o", tmp_path / name, *KEYFRAMES,
                     "--warm-iterations", "3", *more)  # a warm keyframe: as many iterations as a cold one here
        assert result.exit_code == 0, result.output
        stream = events_of(result)
        assert not _kinds(stream, "cut")
        keyframes[name] = [e["index"] for e in _kinds(stream, "keyframe")]
        manifest = json.loads((tmp_path / name / "nst_manifest.json").read_text())
        assert {f"keyframe_{k:06d}.png" for k in keyframes[name]} <= set(manifest["artifacts"])
    # 36 of the 64 columns entered the frame by frame 1 + MIN_GAP: the first keyframe reaches too little
    assert keyframes["coverage"] == [1, 1 + MIN_GAP]
    assert keyframes["off"] == [1]
    # the second keyframe starts from the first, carried to it: where the two frames show the same picture,
    # it keeps the first one's strokes (the keyframes are 32 px wide: the pan moved them 18 px); listed with
    # --keyframes, it is stylized cold, with strokes of its own
    first = load_image(tmp_path / "coverage" / "keyframe_000001.png").astype(np.float32)
    shared = lambda name: np.abs(load_image(tmp_path / name / f"keyframe_{1 + MIN_GAP:06d}.png")  # noqa: E731
                                 .astype(np.float32)[:, 2:10] - first[:, 20:28]).mean()
    assert shared("coverage") < 0.7 * shared("listed")
    # a frame lost, run again: the warm keyframe is found under its key (made from the first one's), not
    # stylized again, and the frame is made again
    (tmp_path / "coverage" / "frame_000020.png").unlink()
    again = nst("video", source, "--style", tmp_path / "style.png", "-o", tmp_path / "coverage", *KEYFRAMES,
                "--warm-iterations", "3")
    assert again.exit_code == 0, again.output
    stream = events_of(again)
    assert [(e["index"], e["resumed"]) for e in _kinds(stream, "keyframe")] == [(1, True), (1 + MIN_GAP, True)]
    assert not _kinds(stream, "frame_progress")  # no L-BFGS at all
    assert [e["index"] for e in _kinds(stream, "frame_done")] == [20]
    # the second keyframe's strokes are carried from it on: the frames after it are closer to it than the
    # same frames made from the first keyframe alone
    second = resize(load_image(tmp_path / "coverage" / f"keyframe_{1 + MIN_GAP:06d}.png"), 48, 64).astype(np.float32)
    moved = np.roll(second, -3, axis=1)  # where the pan moved it one frame later
    near = lambda name: np.abs(load_image(tmp_path / name / f"frame_{2 + MIN_GAP:06d}.png").astype(np.float32)  # noqa: E731
                               - moved)[:, :-8].mean()
    assert near("coverage") < 0.8 * near("off")


def test_a_frames_seconds_count_its_tracks_and_the_run_counts_every_pass(fish_rgb, style_rgb):
    """The optical flow that follows the guide and the keyframe along the shot is part of a frame's cost: it is
    in the frame's seconds and in the run's timings, with the plan's pass, not left out of both."""
    import nst_plugin

    made = {}
    result = nst_plugin.stylize_sequence(
        list(enumerate(moving_square_clip(fish_rgb), start=1)), style_rgb, made.__setitem__, engine="keyframes",
        size=64, keyframe_size=32, iterations=3, weights="hed", options={"keyframes.steps": 10, "keyframes.patch": 16})
    timings = result.stats["timings"]
    assert set(timings) == {"plan", "keyframes", "training", "tracks", "frames"}
    assert timings["plan"] > 0 and timings["tracks"] > 0
    seconds = sum(r.stats["seconds"] for r in made.values())
    # each frame's seconds: its network, filter and enlargement (the "frames" timing) plus its tracks
    assert timings["frames"] + 1e-3 < seconds <= timings["frames"] + timings["tracks"] + 1e-3


def test_the_filter_takes_the_texture_tracks_flows_between_neighbours_and_makes_the_same_frames(
        fish_rgb, style_rgb, monkeypatch):
    """The temporal filter needs the DIS flows between neighbouring frames that the texture track has just
    computed at the same size: it takes them instead of computing them again, and the frames are the same, bit
    for bit."""
    import nst_plugin
    import nst_plugin.flow
    from nst_plugin.builtin.keyframes.engine import _Run

    clip = list(enumerate(moving_square_clip(fish_rgb), start=1))
    settings = dict(engine="keyframes", size=64, keyframe_size=32, iterations=3, weights="hed",
                    options={"keyframes.steps": 10, "keyframes.patch": 16})
    computed = []
    dis = nst_plugin.flow.flow  # the filter's flows (FlowCache imports it when it computes one)
    monkeypatch.setattr(nst_plugin.flow, "flow", lambda a, b, *more: computed.append(1) or dis(a, b, *more))

    def run():
        made, before = {}, len(computed)
        nst_plugin.stylize_sequence(clip, style_rgb, made.__setitem__, **settings)
        return made, len(computed) - before

    shared, shared_flows = run()
    monkeypatch.setattr(_Run, "_keep_flows", lambda *args: None)
    alone, alone_flows = run()
    # the shots have 5 and 4 frames: 4 + 3 neighbouring pairs, both ways, taken from the track
    assert alone_flows - shared_flows == 2 * (4 + 3)
    assert sorted(shared) == sorted(alone) == list(range(1, 10))
    for index in shared:
        assert np.array_equal(shared[index].image, alone[index].image), index


def test_the_keyframes_strokes_are_carried_along_the_shot(tmp_path, fish_rgb, style_rgb):
    from nst_plugin.images import save_image

    source = write_sequence(tmp_path / "clip", moving_square_clip(fish_rgb))
    save_image(tmp_path / "style.png", style_rgb)
    made = {}
    for name, more in (("carried", []), ("alone", ["--option", "keyframes.transport=0"]),
                       ("unrecovered", ["--option", "keyframes.recover=false"])):
        result = nst("video", source, "--style", tmp_path / "style.png", "-o", tmp_path / name, *KEYFRAMES, *more)
        assert result.exit_code == 0, result.output
        made[name] = {i: load_image(tmp_path / name / f"frame_{i:06d}.png").astype(np.float32) for i in (1, 3, 5)}
    carried, alone = made["carried"], made["alone"]
    # the square uncovers the background it passed over: with keyframes.recover=false, the source's detail
    # there instead of the keyframe's strokes (a few pixels at this size)
    assert np.abs(made["unrecovered"][5] - carried[5]).max() > 0  # (the same settings make the same frames)
    keyframe = load_image(tmp_path / "carried" / "keyframe_000001.png").astype(np.float32)
    assert np.array_equal(keyframe, load_image(tmp_path / "alone" / "keyframe_000001.png"))
    error = lambda image: np.abs(resize(image, *keyframe.shape[:2]).astype(np.float32) - keyframe).mean()  # noqa: E731
    assert error(carried[1]) < 0.8 * error(alone[1])  # the keyframe's frame keeps its strokes
    # the background stands still: frame 3 carries the keyframe's strokes there too
    still = (slice(36, 48), slice(0, 64))
    assert np.abs(carried[3] - carried[1])[still].mean() < np.abs(alone[3] - carried[1])[still].mean()


def test_a_frame_is_the_same_whichever_chunk_made_it(tmp_path, fish_rgb, style_rgb, monkeypatch):
    """The temporal filter needs a frame's neighbours: chunks of 2 frames (with their margins) make the same
    frames as chunks of 16 (the whole shot)."""
    from nst_plugin.builtin.keyframes import engine
    from nst_plugin.images import save_image

    source = write_sequence(tmp_path / "clip", moving_square_clip(fish_rgb, 6, 3))
    save_image(tmp_path / "style.png", style_rgb)
    made = {}
    for chunk in (2, 16):
        monkeypatch.setattr(engine, "CHUNK", chunk)
        result = nst("video", source, "--style", tmp_path / "style.png", "-o", tmp_path / f"out{chunk}", *KEYFRAMES)
        assert result.exit_code == 0, result.output
        made[chunk] = [load_image(tmp_path / f"out{chunk}" / f"frame_{i:06d}.png").astype(int) for i in range(1, 10)]
    assert max(np.abs(a - b).max() for a, b in zip(made[2], made[16])) <= 1


def _refused(tmp_path, fish_rgb, style_rgb, frames, *more):
    """``nst video`` with the keyframe engine on a short clip of ``frames`` frames, expected to be refused."""
    from nst_plugin.images import save_image

    source = write_sequence(tmp_path / "clip", moving_square_clip(fish_rgb, frames, 0))
    save_image(tmp_path / "style.png", style_rgb)
    result = nst("video", source, "--style", tmp_path / "style.png", "-o", tmp_path / "out", *KEYFRAMES, *more)
    assert result.exit_code == 2
    return result


def test_keyframe_outside_the_range_is_one_line(tmp_path, fish_rgb, style_rgb):
    result = _refused(tmp_path, fish_rgb, style_rgb, 3, "--keyframes", "2,7")
    assert error_lines(result) == ["error: --keyframes 7: not among the frames of this run (1-3)"]
    assert not list((tmp_path / "out").glob("frame_*.png"))


def test_webcam_learns_the_first_frame_then_runs_live(samples, tmp_path, monkeypatch):
    """A one-pass source (a camera; a video file stands in): the first frame is the keyframe, the network learns
    it (to the end when the camera ends first), then frames go through the network as they arrive."""
    monkeypatch.setenv("NST_CACHE_DIR", str(tmp_path))  # nothing learnt before: the network is trained here
    result = nst("webcam", "-s", samples / "starry_night.jpg", "--camera", samples / "street.avi", "--max-frames", "3",
                 "--no-window", "--engine", "keyframes", "--size", "64", "--keyframe-size", "32", "--iterations", "3",
                 "--weights", "hed", "--option", "keyframes.steps=10", "--option", "keyframes.patch=16")
    assert result.exit_code == 0, result.output
    assert "keyframe 1 stylized" in result.stderr and "network trained: 10 steps" in result.stderr
    assert "frame 3:" in result.stderr and "(warm start)" not in result.stderr
    assert "3 frames in" in result.stdout and "size 64" in result.stdout


@pytest.mark.parametrize("option, message", [
    ("keyframes.patch=4", "--option keyframes.patch='4': must be at least 16, got 4"),
    ("keyframes.transport=-1", "--option keyframes.transport='-1': must be at least 0, got -1.0"),
    ("keyframes.plateau=1", "--option keyframes.plateau='1': must be less than 1, got 1.0"),
    ("keyframes.learning_rate=0", "--option keyframes.learning_rate='0': must be more than 0, got 0.0"),
])
def test_a_keyframes_option_out_of_range_is_one_line_and_touches_nothing(tmp_path, fish_rgb, style_rgb, option,
                                                                         message):
    result = _refused(tmp_path, fish_rgb, style_rgb, 2, "--option", option)
    assert error_lines(result) == [f"error: {message}"]
    assert not (tmp_path / "out").exists()  # refused before the output folder (or its manifest) was made
