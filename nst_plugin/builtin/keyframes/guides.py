"""Guide channels for the keyframe network: a smooth random colour pattern that moves with the picture.

After Texler et al. 2020 ("Interactive Video Stylization Using Few-Shot Patch-Based Training", after
Jamriška et al. 2019): next to the content frame, the network sees a random Gaussian-mixture pattern advected
by the optical flow. In the keyframe the pattern says *where* each patch of the painting's texture lies, also
in flat regions (sky, lawn, a dark background) where the content alone cannot; because the pattern moves with
the picture, that texture moves with it in the other frames, instead of being re-invented (and flickering)
frame by frame.

The pattern is never resampled twice: a shot keeps, per pixel, where that pixel's point was in the shot's
first frame (an offset field composed with each frame's backward DIS flow, computed at a small size), and the
pattern is sampled once at those positions, so it stays sharp over a long shot. It is drawn over a domain
larger than the frame, so picture entering from the sides finds pattern too.

OpenCV only; no Keras here. Design, measurements and history: docs/design/keyframes.md#the-guide-track
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...flow import flow as dis_flow
from ...flow import gray, pixel_grid, warp
from ...images import resize

CHANNELS = 3  # an RGB pattern


@dataclass(frozen=True)
class GuideSettings:
    """``scale``: size of the pattern's blobs in pixels of the guide's frames; ``flow_side``: the longer side
    at which the flow is computed; ``seed``: the pattern's."""

    scale: float = 8.0
    flow_side: int = 384
    seed: int = 0


def pattern(height: int, width: int, scale: float, seed: int) -> np.ndarray:
    """A smooth random RGB pattern (H, W, 3) float32 0..255: Gaussian white noise on a grid of ``scale``
    pixels, interpolated bicubically and blurred once more, each channel normalised to mean 127.5 and a
    standard deviation of 50."""
    import cv2

    rng = np.random.default_rng(seed)
    gh, gw = max(2, round(height / scale) + 3), max(2, round(width / scale) + 3)
    grid = rng.normal(size=(gh, gw, CHANNELS)).astype(np.float32)
    field = cv2.resize(grid, (round(gw * scale), round(gh * scale)), interpolation=cv2.INTER_CUBIC)
    field = cv2.GaussianBlur(field, (0, 0), max(0.5, scale / 4))[:height, :width]
    field = field - field.mean(axis=(0, 1))
    field = field / (field.std(axis=(0, 1)) + 1e-6) * 50.0 + 127.5
    return np.clip(field, 0, 255).astype(np.float32)


def flow_size(shape: tuple[int, int], flow_side: int) -> tuple[int, int]:
    """The size at which a track of frames of ``shape`` computes its flows: the longer side ``flow_side`` at
    most."""
    h, w = shape
    ratio = min(1.0, flow_side / max(h, w))
    return max(8, round(h * ratio)), max(8, round(w * ratio))


def follow(offset: np.ndarray, back: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One frame on along a shot: ``offset`` (H, W, 2 at ``shape``: where each pixel's point was in the
    track's first frame, minus the pixel) composed with ``back`` (the flow from this frame to the previous
    one, at any size): ``offset_t(x) = b(x) + offset_{t-1}(x + b(x))``, the point's way back, one frame at a
    time. Returns the new offset and ``back`` at ``shape``."""
    import cv2

    h, w = shape
    fh, fw = back.shape[:2]
    if (fh, fw) != (h, w):
        back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR)
        back[..., 0] *= w / fw
        back[..., 1] *= h / fh
    return back + warp(offset, back), back


class GuideTrack:
    """The guide of each frame of a shot, frame after frame: ``next(frame)`` returns the guide (H, W, 3) uint8
    at the size ``shape`` (the network's; uint8: small to ship to a cluster's workers); ``reset()`` at a cut
    starts the pattern again (the shot's first frame sees it unmoved). After ``next``, ``back`` is the DIS flow
    it computed from that frame to the previous one, at ``flow_shape`` (None at a shot's first frame): a
    :class:`~.transport.TextureTrack` of the same frames at the same flow size needs the same flow."""

    def __init__(self, shape: tuple[int, int], settings: GuideSettings = GuideSettings()):
        self.shape = tuple(int(v) for v in shape)
        self.settings = settings
        h, w = self.shape
        self.margin = max(h, w) // 2
        self.pattern = pattern(h + 2 * self.margin, w + 2 * self.margin, settings.scale, settings.seed)
        self.flow_shape = flow_size(self.shape, settings.flow_side)
        self.grid_x, self.grid_y = pixel_grid(h, w)
        self.reset()

    def reset(self) -> None:
        self.offset = None  # (H, W, 2): where each pixel's point was in the shot's first frame, minus the pixel
        self.previous = None  # the previous frame, grey, at the flow size
        self.back = None  # the last frame's flow to the one before it

    def next(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        h, w = self.shape
        small = gray(resize(frame, *self.flow_shape))
        if self.offset is None:
            self.offset, self.back = np.zeros((h, w, 2), np.float32), None
        else:
            self.back = dis_flow(small, self.previous)
            self.offset, _ = follow(self.offset, self.back, self.shape)
        self.previous = small
        m = self.margin
        guide = cv2.remap(self.pattern, self.grid_x + self.offset[..., 0] + m, self.grid_y + self.offset[..., 1] + m,
                          interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return np.clip(np.rint(guide), 0, 255).astype(np.uint8)
