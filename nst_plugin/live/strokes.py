"""The keyframe's brush strokes carried along the live frames, as the offline engine's texture transport
carries them (:mod:`..builtin.keyframes.transport`): the network learns a keyframe's colours and large
shapes but hardly its strokes, so where the optical flow can follow the picture back to the keyframe, the
keyframe's fine detail replaces the network's; elsewhere the camera's own fine detail is used.

A track starts from the keyframe's source frame (the flow from the current frame to it, and its trust: a
cached network met in another scene carries nothing), then follows the live filter's flows, one frame at a
time; each point keeps where it was in the keyframe (an offset field), so the keyframe is sampled once and
stays sharp. Uses only frames already seen.
"""

from __future__ import annotations

import numpy as np

DECAY = 0.7  # the trust a point keeps through a step the flow checks reject (the offline engine's TRANSPORT_DECAY)


class StrokeTrack:
    """``source``: the keyframe's source frame and ``texture`` its stylized picture (what the network learnt),
    both at the network's size; ``sigma``: the blur, in those pixels, that separates the strokes from the rest
    (0: no strokes)."""

    def __init__(self, source: np.ndarray, texture: np.ndarray, sigma: float, decay: float = DECAY):
        self.source, self.texture = source, np.asarray(texture, np.float32)
        self.sigma, self.decay = float(sigma), float(decay)
        self.offset = self.trust = None

    def start(self, frame: np.ndarray, preset: str = "fast") -> None:
        """Where each pixel of ``frame`` (grey or RGB, the network's size) was in the keyframe, and how far
        that can be trusted."""
        from ..flow import flow, gray, trust_mask

        here, there = gray(frame), gray(self.source)
        self.offset = flow(here, there, preset)
        self.trust = trust_mask(here, there, self.offset, flow(there, here, preset))

    def step(self, backward: np.ndarray, trusted: np.ndarray) -> None:
        """One frame on: ``backward`` the flow from this frame to the previous one and ``trusted`` its trust
        mask (the live filter's)."""
        from ..builtin.keyframes.guides import follow
        from ..flow import pixel_grid, warp

        h, w = self.offset.shape[:2]
        self.offset, back = follow(self.offset, backward, (h, w))
        self.trust = np.maximum(trusted, self.decay) * warp(self.trust, back)
        grid_x, grid_y = pixel_grid(h, w)
        map_x, map_y = grid_x + self.offset[..., 0], grid_y + self.offset[..., 1]
        self.trust[(map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)] = 0.0  # left the keyframe

    def apply(self, image: np.ndarray, content: np.ndarray) -> np.ndarray:
        """``image`` (float RGB, the network's size) with the keyframe's strokes where they were followed and
        ``content``'s (the camera frame at that size) fine detail elsewhere."""
        from ..builtin.keyframes.transport import Carried, carry, composite

        if not self.sigma > 0:
            return image
        carried = Carried(np.clip(carry(self.texture, self.offset), 0, 255).astype(np.uint8),
                          np.clip(self.trust * 255.0, 0, 255).astype(np.uint8))
        return composite(image, carried, self.sigma, content)
