"""Two styles by mask (Gatys et al. 2017 spatial control): the masked Gram, the rule for a style without a
mask, the frame engine moving each region toward its own style, the video chain passing the masks to every
frame, and one clear line for every bad ``--style-mask``."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import nst_plugin
from nst_plugin import plugins
from nst_plugin.cli import app
from nst_plugin.config import make_config
from nst_plugin.context import FrameControls
from nst_plugin.errors import UserError
from nst_plugin.hookspecs import hookimpl
from nst_plugin.images import load_image, save_image
from nst_plugin.losses import FrameInputs, LossSettings
from nst_plugin.style_masks import from_user, resolve
from test_engines import negative_engine  # noqa: F401  (a fixture: a plugin engine without the style_masks trait)

runner = CliRunner()

TINY = ["--size", "40", "--iterations", "4", "--quiet"]
LAYERS = ("block1_conv1", "block2_conv1")


def _features(seed: int, shapes=((8, 10, 4), (4, 5, 6))) -> dict:
    rng = np.random.default_rng(seed)
    return {layer: rng.uniform(0, 3, (1, *shape)).astype(np.float32) for layer, shape in zip(LAYERS, shapes)}


def _style_loss(normalization: str):
    from nst_plugin.builtin.losses import StyleLoss

    config = make_config("default", style_layers=LAYERS, loss_normalization=normalization)
    return StyleLoss(LossSettings(name="style", weight=1.0, config=config, backbone_layers=LAYERS))


def _loss_value(term, image_features, masks) -> float:
    from keras import ops

    frame = FrameInputs(content=np.zeros((16, 20, 3), np.float32), content_features=image_features,
                        controls=FrameControls(style_masks=masks))
    return float(ops.convert_to_numpy(term.loss(None, image_features, term.frame_targets(frame))))


def _numpy_gram(features: np.ndarray, article: bool) -> np.ndarray:
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return flat.T @ flat / (flat.shape[0] * (flat.shape[1] if article else 1))


@pytest.mark.backends
@pytest.mark.parametrize("article", [False, True])
def test_masked_gram_is_the_gram_of_the_region(article):
    from keras import ops

    from nst_plugin.builtin.losses import gram, masked_gram

    features = _features(0)[LAYERS[0]]
    ones = np.ones((1, 8, 10, 1), np.float32)
    plain = ops.convert_to_numpy(gram(features, article))
    np.testing.assert_allclose(ops.convert_to_numpy(masked_gram(features, ones, article)), plain, rtol=1e-6)
    left = np.zeros_like(ones)
    left[:, :, :4] = 1.0  # a 0/1 mask: the Gram of the positions inside it, normalised by their number
    region = ops.convert_to_numpy(masked_gram(features, left, article))
    np.testing.assert_allclose(region, _numpy_gram(features[:, :, :4], article), rtol=1e-5)
    assert not np.allclose(region, plain, rtol=1e-2)


@pytest.mark.backends
@pytest.mark.parametrize("normalization", ["mean", "relative", "article"])
def test_without_masks_the_style_loss_is_the_blended_gram_loss(normalization):
    """The default path: Gram targets blended over the styles, the whole frame (a NumPy reference of the
    formula); one style with an all-ones mask gives the same value through the masked path."""
    article = normalization == "article"
    styles, image = [_features(1), _features(2)], _features(3)
    term = _style_loss(normalization)
    term.prepare_styles([(styles[0], 0.25), (styles[1], 0.75)])
    expected = 0.0
    for layer, layer_weight in zip(LAYERS, term.layer_weights):
        target = 0.25 * _numpy_gram(styles[0][layer], article) + 0.75 * _numpy_gram(styles[1][layer], article)
        scale = 1.0 / (np.mean(target ** 2) + 1e-12) if normalization == "relative" else 1.0
        error = (_numpy_gram(image[layer], article) - target) ** 2
        expected += layer_weight * scale * (error.sum() if article else error.mean())
    assert _loss_value(term, image, None) == pytest.approx(expected, rel=1e-4)
    single = _style_loss(normalization)
    single.prepare_styles([(styles[0], 1.0)])
    assert _loss_value(single, image, (np.ones((3, 5), np.float32),)) == pytest.approx(
        _loss_value(single, image, None), rel=1e-5)


@pytest.mark.backends
def test_each_style_is_matched_over_its_region_only():
    """Style 1's Grams taken from the image's left half: an image whose left half is style 1's picture has
    (nearly) no loss for style 1 whatever its right half is; an empty region adds nothing."""
    from nst_plugin.builtin.losses import layer_mask

    term = _style_loss("mean")
    style = _features(4, shapes=((8, 6, 4), (4, 3, 6)))  # the left half's size at each layer
    term.prepare_styles([(style, 1.0)])
    image = _features(5, shapes=((8, 12, 4), (4, 6, 6)))
    for layer in LAYERS:
        image[layer][:, :, : image[layer].shape[2] // 2] = style[layer]
    left = np.zeros((16, 24), np.float32)
    left[:, :12] = 1.0
    assert _loss_value(term, image, (left,)) < 1e-6
    assert _loss_value(term, image, (1.0 - left,)) > 1e-3
    assert _loss_value(term, image, (np.zeros((16, 24), np.float32),)) == 0.0
    soft = layer_mask(left[:, 2:22], 4, 5)[0, :, :, 0]  # 10 of 20 columns, area-averaged onto the layer
    assert soft.tolist() == [[1, 1, 0.5, 0, 0]] * 4


def test_a_style_without_a_mask_gets_what_no_mask_covers():
    ramp = np.tile(np.linspace(0, 1, 9, dtype=np.float32), (3, 1))
    first, second, third = resolve({0: ramp, 2: np.full((3, 9), 0.25, np.float32)}, 3)
    assert np.array_equal(first, ramp)
    np.testing.assert_allclose(second, np.clip(0.75 - ramp, 0, 1))
    assert resolve({}, 2) is None
    with pytest.raises(UserError, match="style 2 has no region: the other masks cover the whole frame"):
        resolve({0: np.ones((3, 9), np.float32)}, 2)
    with pytest.raises(UserError, match="style 1 has no region: its mask is black"):
        from_user([np.zeros((3, 9), np.uint8), None], 2, (30, 90))
    with pytest.raises(UserError, match="a mask needs its picture.s aspect ratio"):
        from_user([ramp, None], 2, (30, 30))
    with pytest.raises(UserError, match="2 entries for 3 style images"):
        from_user([ramp, None], 3, (3, 9))


def _texture(channel: int, seed: int) -> np.ndarray:
    """A noisy texture whose colour is dominated by one RGB channel."""
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 80, (64, 64, 3))
    image[..., channel] += 150 + rng.uniform(0, 25, (64, 64))
    return np.clip(image, 0, 255).astype(np.uint8)


def _red_minus_blue(image: np.ndarray) -> tuple[float, float]:
    """Mean red minus mean blue of the left and the right half."""
    half = image.shape[1] // 2
    rgb = image.astype(np.float64)
    return tuple(float(part[..., 0].mean() - part[..., 2].mean()) for part in (rgb[:, :half], rgb[:, half:]))


@pytest.mark.slow
def test_two_styles_by_mask_colour_each_half_with_its_own_style(fast):
    """Red texture on the left, blue on the right: with the masks each half takes its own style's colours
    (coarse-to-fine, so the masks are also resized for the coarse pass); blended, both halves get the same."""
    rng = np.random.default_rng(0)
    content = np.clip(128 + rng.normal(0, 12, (48, 64, 3)), 0, 255).astype(np.uint8)  # grey: red - blue ~ 0
    red, blue = _texture(0, 1), _texture(2, 2)
    left = np.zeros((48, 64), np.float32)
    left[:, :32] = 1.0
    settings = dict(fast, iterations=20, strength=1.0, coarse_to_fine=0.5)
    masked = nst_plugin.stylize_frame(content, [red, blue], style_masks=[left, None], **settings)
    blended = nst_plugin.stylize_frame(content, [red, blue], **settings)
    assert "coarse" in masked.stats
    m_left, m_right = _red_minus_blue(masked.image)
    b_left, b_right = _red_minus_blue(blended.image)
    assert m_left > 30 and m_right < -30, (m_left, m_right)
    assert m_left - m_right > (b_left - b_right) + 80, (m_left, m_right, b_left, b_right)


class RecordControls:
    """A frame plugin that records the controls each frame got and gives the content back."""

    def __init__(self):
        self.seen = {}

    @hookimpl
    def nst_stylize_frame(self, content, styles, config, context):
        self.seen[context.frame_index] = context.controls
        return nst_plugin.FrameResult(image=content, stats={})


def _recording_half_mask_clip(content_rgb):
    """A frame plugin recording each frame's controls (registered), a left-half mask, and three frames."""
    recorder = RecordControls()
    plugins.register_plugin(recorder, name="record-controls")
    mask = np.zeros(content_rgb.shape[:2], np.uint8)
    mask[:, : mask.shape[1] // 2] = 255
    return recorder, mask, [(i, np.roll(content_rgb, i, axis=1)) for i in range(3)]


def test_the_chain_gives_every_frame_the_style_masks(content_rgb, style_rgb, fish_rgb, fast):
    recorder, mask, frames = _recording_half_mask_clip(content_rgb)
    nst_plugin.stylize_sequence(frames, [style_rgb, fish_rgb], lambda i, r: None, style_masks=[mask, None],
                                warm_start=True, **fast)
    assert sorted(recorder.seen) == [0, 1, 2]
    assert recorder.seen[1].init is not None  # a warm frame keeps its masks too
    _assert_half_masks(recorder.seen.values(), mask)
    with pytest.raises(UserError, match="aspect ratio"):
        nst_plugin.stylize_sequence([(0, content_rgb[:, :20])], [style_rgb, fish_rgb], lambda i, r: None,
                                    style_masks=[mask, None], **fast)


def test_the_keyframe_engine_gives_its_keyframes_the_style_masks(content_rgb, style_rgb, fish_rgb, fast):
    recorder, mask, frames = _recording_half_mask_clip(content_rgb)
    made = {}
    nst_plugin.stylize_sequence(frames, [style_rgb, fish_rgb], made.__setitem__, style_masks=[mask, None],
                                engine="keyframes", options={"keyframes.steps": 4, "keyframes.patch": 16}, **fast)
    assert sorted(made) == [0, 1, 2] and recorder.seen  # the keyframes went through the frame engine
    _assert_half_masks(recorder.seen.values(), mask)


def _assert_half_masks(seen, mask):
    """Every frame's controls carry the given mask for style 1 and what it leaves for style 2."""
    for controls in seen:
        first, second = controls.style_masks
        np.testing.assert_array_equal(first, mask / 255.0)
        np.testing.assert_array_equal(second, 1.0 - mask / 255.0)


def nst(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.slow
def test_image_with_a_style_mask_writes_the_result_and_names_the_mask(tmp_path, samples):
    mask = np.zeros((30, 40), np.uint8)
    mask[:12] = 255  # the sky
    save_image(tmp_path / "sky.png", np.repeat(mask[..., None], 3, axis=2))
    out = tmp_path / "o.png"
    result = nst("image", samples / "street.jpg", "-s", samples / "starry_night.jpg", "-s", samples / "HappyFish.jpg",
                 "--style-mask", f"1={tmp_path / 'sky.png'}", "-o", out, *TINY)
    assert result.exit_code == 0, result.output
    assert load_image(out).shape == (30, 40, 3)
    meta = json.loads((tmp_path / "o.nst.json").read_text())
    assert meta["inputs"]["style_masks"] == {"1": str(tmp_path / "sky.png")}


def _bad_cases(tmp_path, samples) -> dict:
    save_image(tmp_path / "square.png", np.zeros((40, 40, 3), np.uint8))
    save_image(tmp_path / "wide.png", np.full((30, 40, 3), 255, np.uint8))
    (tmp_path / "notes.png").write_text("not a picture")
    return {
        "out of range": (["3=" + str(tmp_path / "wide.png")], "style 3 does not exist"),
        "zero": (["0=" + str(tmp_path / "wide.png")], "style 0 does not exist"),
        "no number": ([str(tmp_path / "wide.png")], "expected N=IMAGE"),
        "twice": (["1=" + str(tmp_path / "wide.png"), "1=" + str(tmp_path / "wide.png")], "style 1 has two masks"),
        "missing": (["2=" + str(tmp_path / "gone.png")], "does not exist"),
        "unreadable": (["2=" + str(tmp_path / "notes.png")], "cannot be read as an image"),
        "aspect": (["2=" + str(tmp_path / "square.png")], "a mask needs its picture's aspect ratio"),
        "covers all": (["1=" + str(tmp_path / "wide.png")], "style 2 has no region"),
    }


@pytest.mark.parametrize("case", ["out of range", "zero", "no number", "twice", "missing", "unreadable", "aspect",
                                  "covers all"])
def test_a_bad_style_mask_gets_one_clear_line(case, tmp_path, samples):
    specs, expected = _bad_cases(tmp_path, samples)[case]
    masks = [a for spec in specs for a in ("--style-mask", spec)]
    result = nst("image", samples / "street.jpg", "-s", samples / "starry_night.jpg", "-s", samples / "HappyFish.jpg",
                 *masks, "-o", tmp_path / "o.png", *TINY)
    assert result.exit_code not in (0, None), result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    assert not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_video_with_a_style_mask_resumes_only_with_the_same_masks(tmp_path, samples):
    top = np.zeros((30, 40, 3), np.uint8)
    top[:12] = 255
    save_image(tmp_path / "top.png", top)
    save_image(tmp_path / "bottom.png", 255 - top)
    out = tmp_path / "out"
    args = ["video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-s", samples / "HappyFish.jpg",
            "--frames", "1-2", "-o", out, *TINY]
    result = nst(*args, "--style-mask", f"1={tmp_path / 'top.png'}")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert len(manifest["style_masks"]) == 2 and sorted(manifest["frames"]) == ["1", "2"]
    again = nst(*args, "--style-mask", f"1={tmp_path / 'top.png'}")
    assert again.exit_code == 0 and "2 already there" in again.output, again.output
    other = nst(*args, "--style-mask", f"1={tmp_path / 'bottom.png'}")
    assert other.exit_code != 0 and "style masks" in other.output, other.output


@pytest.mark.parametrize("case", ["engine without the trait", "aspect"])
def test_video_refuses_style_masks_it_would_ignore(case, tmp_path, samples, negative_engine):
    save_image(tmp_path / "m.png", np.full((30, 40 if case != "aspect" else 30, 3), 255, np.uint8))
    extra = {"engine without the trait": ["--engine", "negative"], "aspect": []}[case]
    expected = {"engine without the trait": "the negative engine does not take style masks",
                "aspect": "a mask needs its picture's aspect ratio"}[case]
    result = nst("video", samples / "street.avi", "-s", samples / "starry_night.jpg", "-s", samples / "HappyFish.jpg",
                 "--style-mask", f"2={tmp_path / 'm.png'}", "--frames", "1-2", "-o", tmp_path / "out", *extra, *TINY)
    assert result.exit_code not in (0, None), result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_region_style_score_over_the_whole_frame_is_the_style_score(content_rgb, style_rgb, fish_rgb):
    from nst_plugin.metrics import region_style, scores

    whole = region_style(content_rgb, style_rgb, np.ones(content_rgb.shape[:2], np.float32))
    plain = scores(content_rgb, content_rgb, style_rgb)
    assert whole["style"] == pytest.approx(plain["style"], rel=1e-4)
    assert whole["style_other"] == pytest.approx(plain["style_other"], rel=1e-4)
    # a picture of the fish on its left half: that half is closer to the fish than the right half is
    half = content_rgb.shape[1] // 2
    left = np.zeros(content_rgb.shape[:2], np.float32)
    left[:, :half] = 1.0
    mixed = content_rgb.copy()
    mixed[:, :half] = fish_rgb[:, :half]  # both 48x64
    assert region_style(mixed, fish_rgb, left)["style_other"] < region_style(mixed, fish_rgb, 1.0 - left)["style_other"]
    assert np.isnan(region_style(mixed, fish_rgb, np.zeros_like(left))["style"])


# -- moving style masks (a video or an image sequence: each frame its own masks) ----------------------------------

def _write_grey(folder, planes) -> None:
    """(H, W) uint8 planes as one-channel PNGs 0001.png, 0002.png, ..."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for n, plane in enumerate(planes, start=1):
        assert cv2.imwrite(str(folder / f"{n:04d}.png"), plane)


def _moving(tmp_path, samples, count: int = 3) -> dict:
    """``count`` 48x36 street frames as an image sequence, and a mask sequence whose white band moves right."""
    from test_video import street_frames, write_sequence

    frames = street_frames(samples, count, size=48)
    write_sequence(tmp_path / "seq", frames)
    height, width = frames[0].shape[:2]
    planes = []
    for n in range(count):
        plane = np.zeros((height, width), np.uint8)
        plane[:, 10 * n: 10 * n + 16] = 255
        planes.append(plane)
    _write_grey(tmp_path / "band", planes)
    return dict(source=tmp_path / "seq" / "####.png", mask=tmp_path / "band" / "####.png", planes=planes,
                frames=frames, styles=("-s", samples / "starry_night.jpg", "-s", samples / "HappyFish.jpg"))


def _video(clip, out, *more):
    """``nst video`` of the clip with two styles at 48 px (stdout and stderr apart)."""
    from test_video import nst as nst_split

    return nst_split("video", clip["source"], *clip["styles"], "-o", out, "--size", "48", "--iterations", "2",
                     "--warm-iterations", "2", "--weights", "hed", "--progress", "none", *more)


def _assert_frame_masks(seen: dict, planes: list, indices) -> None:
    """Frame ``index`` got mask frame ``index`` for style 1 and what it leaves for style 2."""
    for index in indices:
        first, second = seen[index].style_masks
        np.testing.assert_allclose(first, planes[index - 1] / 255.0, atol=1e-6)
        np.testing.assert_allclose(second, 1.0 - planes[index - 1] / 255.0, atol=1e-6)


def test_a_moving_style_mask_gives_each_frame_of_the_chain_its_own_masks(tmp_path, samples):
    clip = _moving(tmp_path, samples)
    recorder = RecordControls()
    plugins.register_plugin(recorder, name="record-controls")
    result = _video(clip, tmp_path / "out", "--style-mask", f"1={clip['mask']}", "--warm-start")
    assert result.exit_code == 0, result.output
    assert sorted(recorder.seen) == [1, 2, 3] and recorder.seen[2].init is not None  # warm frames too
    _assert_frame_masks(recorder.seen, clip["planes"], [1, 2, 3])
    assert not np.array_equal(recorder.seen[1].style_masks[0], recorder.seen[2].style_masks[0])
    manifest = json.loads((tmp_path / "out" / "nst_manifest.json").read_text())
    assert manifest["style_masks"][0] and manifest["style_masks"][1] is None  # style 2 has no mask of its own


def test_a_moving_style_mask_gives_each_keyframe_its_own_masks(tmp_path, samples):
    clip = _moving(tmp_path, samples)
    recorder = RecordControls()
    plugins.register_plugin(recorder, name="record-controls")
    result = _video(clip, tmp_path / "out", "--style-mask", f"1={clip['mask']}", "--engine", "keyframes",
                    "--keyframes", "1,3", "--option", "keyframes.steps=2", "--option", "keyframes.patch=16")
    assert result.exit_code == 0, result.output
    assert sorted(recorder.seen) == [1, 3]
    _assert_frame_masks(recorder.seen, clip["planes"], [1, 3])


def test_a_run_with_moving_style_masks_resumes_only_with_the_same_mask_frames(tmp_path, samples):
    import cv2

    clip = _moving(tmp_path, samples)
    plugins.register_plugin(RecordControls(), name="record-controls")
    args = ("--style-mask", f"1={clip['mask']}")
    assert _video(clip, tmp_path / "out", *args).exit_code == 0
    again = _video(clip, tmp_path / "out", *args, "--progress", "bar")
    assert again.exit_code == 0 and "3 already there" in again.output, again.output
    changed = clip["planes"][2].copy()
    changed[0, 0] = 255 - changed[0, 0]  # one pixel of the last mask frame
    cv2.imwrite(str(tmp_path / "band" / "0003.png"), changed)
    other = _video(clip, tmp_path / "out", *args)
    assert other.exit_code != 0 and "style masks" in other.output, other.output


@pytest.mark.parametrize("case", ["count", "broken file", "aspect"])
def test_a_bad_moving_style_mask_is_one_line_before_any_work(case, tmp_path, samples):
    clip = _moving(tmp_path, samples)
    mask = clip["mask"]
    if case == "count":
        (tmp_path / "band" / "0003.png").unlink()
    elif case == "broken file":
        (tmp_path / "band" / "0003.png").write_bytes(b"not a picture")
    elif case == "aspect":
        _write_grey(tmp_path / "square", [np.zeros((36, 36), np.uint8)] * 3)
        mask = tmp_path / "square" / "####.png"
    expected = {"count": "has 2 frames but the source", "broken file": "0003.png' cannot be read as an image",
                "aspect": "a mask needs its picture's aspect ratio"}[case]
    result = _video(clip, tmp_path / "out", "--style-mask", f"2={mask}")
    from test_video import error_lines

    lines = error_lines(result)
    assert result.exit_code not in (0, None) and len(lines) == 1 and "--style-mask 2" in lines[0], result.output
    assert expected in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_style_masks_from_a_settings_file(tmp_path, samples):
    clip = _moving(tmp_path, samples)
    recorder = RecordControls()
    plugins.register_plugin(recorder, name="record-controls")
    settings = tmp_path / "run.json"
    settings.write_text(json.dumps({"style_masks": {"1": str(clip["mask"])}, "warm_start": True}))
    result = _video(clip, tmp_path / "out", "--settings", settings)
    assert result.exit_code == 0, result.output
    _assert_frame_masks(recorder.seen, clip["planes"], [1, 2, 3])
    first = tmp_path / "band" / "0001.png"
    settings.write_text(json.dumps({"style_masks": [f"1={first}"]}))  # nst image: the list form
    recorder.seen.clear()
    image = nst("image", tmp_path / "seq" / "0001.png", *clip["styles"], "-o", tmp_path / "o.png", "--settings",
                settings, *TINY)
    assert image.exit_code == 0, image.output
    np.testing.assert_allclose(recorder.seen[None].style_masks[0], clip["planes"][0] / 255.0, atol=1e-6)
    assert json.loads((tmp_path / "o.nst.json").read_text())["inputs"]["style_masks"] == {"1": str(first)}
    settings.write_text(json.dumps({"style_masks": 3}))
    bad = _video(clip, tmp_path / "bad", "--settings", settings)
    assert bad.exit_code not in (0, None) and "style_masks must be a list" in bad.output, bad.output
    assert not (tmp_path / "bad").exists()


class PaintGrey:
    """A frame plugin that paints every frame flat grey (200)."""

    @hookimpl
    def nst_stylize_frame(self, content, styles, config, context):
        return nst_plugin.FrameResult(image=np.full(content.shape, 200, np.uint8), stats={})


def test_stylize_sequence_takes_a_mask(content_rgb, style_rgb, fast):
    from nst_plugin.images import resize
    from nst_plugin.masks import composite, resize_plane

    plugins.register_plugin(PaintGrey(), name="paint-grey")
    ramp = np.tile(np.linspace(0.0, 1.0, content_rgb.shape[1], dtype=np.float32), (content_rgb.shape[0], 1))
    frames = [(i, np.roll(content_rgb, i, axis=1)) for i in range(3)]
    made = {}
    nst_plugin.stylize_sequence(frames, style_rgb, made.__setitem__, mask=ramp, **fast)
    assert sorted(made) == [0, 1, 2]
    for index, frame in frames:
        got = made[index].image
        shape = got.shape[:2]
        expected = composite(np.full(got.shape, 200, np.uint8), resize(frame, *shape), resize_plane(ramp, *shape))
        np.testing.assert_array_equal(got, expected)
        # the frame shows where the ramp is black, the engine's grey where it is white
        assert np.abs(got[:, 0].astype(int) - resize(frame, *shape)[:, 0]).max() <= 8
        assert np.abs(got[:, -1].astype(int) - 200).max() <= 2
    with pytest.raises(UserError, match="aspect ratio"):
        nst_plugin.stylize_sequence(iter([(0, content_rgb[:, :20])]), style_rgb, lambda i, r: None, mask=ramp,
                                    **fast)


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["lbfgs", "keyframes"])
def test_moving_style_masks_on_a_cluster_make_the_single_process_frames(engine, tmp_path, samples):
    """The masks go with the units (the chain's shots, the keyframes) to a real LocalCluster's worker."""
    pytest.importorskip("distributed")
    from test_masks import frames_in

    clip = _moving(tmp_path, samples)
    more = ["--style-mask", f"1={clip['mask']}", "--tolerance", "0"]
    if engine == "keyframes":
        more += ["--engine", "keyframes", "--keyframes", "1,3", "--keyframe-size", "32", "--option",
                 "keyframes.steps=8", "--option", "keyframes.patch=16"]
    for name, extra in (("single", []), ("cluster", ["--cluster", "local", "--workers", "1"])):
        result = _video(clip, tmp_path / name, *more, *extra)
        assert result.exit_code == 0, result.output
    unmasked = _video(clip, tmp_path / "unmasked", *more[2:])
    assert unmasked.exit_code == 0, unmasked.output
    single, cluster, plain = (frames_in(tmp_path / n) for n in ("single", "cluster", "unmasked"))
    assert sorted(single) == sorted(cluster) == sorted(plain) and len(single) == 3
    assert all(np.array_equal(single[name], cluster[name]) for name in single)
    assert not all(np.array_equal(single[name], plain[name]) for name in single)  # the masks changed the frames


def test_an_engine_run_whole_on_a_cluster_ships_each_frames_masks_with_its_unit(content_rgb):
    """An engine without units of its own runs as one unit on a worker: the unit carries every frame's masks."""
    from nst_plugin.cluster.client import _whole
    from nst_plugin.style_masks import FrameMasks, StillMasks

    class Dispatch:
        written: set = set()

        def run(self, tasks, on_done=None):
            self.tasks = list(tasks)

    left, right = np.zeros((4, 6), np.float32), np.ones((4, 6), np.float32)
    still = (left, right)
    per_frame = {3: still, 4: (right, left)}
    frames = [(3, content_rgb), (4, content_rgb)]
    for masks, expected in ((FrameMasks(per_frame), per_frame), (StillMasks(still), {3: still, 4: still})):
        context = plugins.get_host().run_context(style_masks=masks)
        dispatch = Dispatch()
        _whole(dispatch, iter(frames), [], make_config("default"), context)
        unit = dispatch.tasks[0][1]
        assert all(unit.style_masks.at(index) is expected[index] for index in (3, 4))
    dispatch = Dispatch()
    _whole(dispatch, iter(frames), [], make_config("default"), plugins.get_host().run_context())
    assert dispatch.tasks[0][1].style_masks is None  # no masks: nothing shipped


def test_shipped_masks_travel_each_once_compressed_and_come_back_bit_for_bit():
    import pickle

    from nst_plugin.style_masks import FrameMasks

    rng = np.random.default_rng(0)
    band = np.zeros((288, 384), np.float32)
    band[:, 100:200] = 1.0
    soft = rng.uniform(0, 1, (288, 384)).astype(np.float32)  # noise: does not compress, comes back exact
    still = (band, 1.0 - band)
    masks = FrameMasks({**{i: still for i in range(50)}, 50: (soft, None), 51: None})
    data = pickle.dumps(masks)
    back = pickle.loads(data)
    assert len(data) < soft.nbytes + 2 * band.nbytes // 20  # the still pair once, flat planes compressed
    for index in range(50):
        assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(back.at(index), still))
    assert np.array_equal(back.at(50)[0], soft) and back.at(50)[1] is None and back.at(51) is None
    assert back.at(0)[0] is back.at(49)[0]  # one copy on the worker too
