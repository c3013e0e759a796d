"""Two levels of an image pyramid: a picture made at a coarse size, enlarged to the full size with the
content's detail band added back (content minus content down- and upsampled: a Laplacian pyramid level),
the fine detail (edges, small figures) that the coarse size could not hold.

The frame engine optimises a cold frame so (coarse-to-fine, Gatys et al. 2017: the coarse result, enlarged,
starts the full-size pass); the keyframe engine enlarges its keyframes and its network's frames so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..images import resize


@dataclass(frozen=True)
class Pyramid:
    coarse: tuple[int, int]  # (height, width) the picture is made at
    full: tuple[int, int]  # (height, width) it is enlarged to

    @classmethod
    def scaled(cls, full: tuple[int, int], fraction: float) -> Pyramid:
        """The coarse level at ``fraction`` of ``full`` (the frame engine's ``--coarse-to-fine``), 16 pixels a
        side at least."""
        height, width = full
        return cls((max(16, round(height * fraction)), max(16, round(width * fraction))), (height, width))

    def upsample(self, image: np.ndarray) -> np.ndarray:
        """``image`` resized to the full size, without the detail band."""
        return resize(image, *self.full)

    def detail(self, content: np.ndarray) -> np.ndarray:
        """The detail band of ``content`` (float32 at the full size) that the coarse size loses."""
        return content - resize(resize(content, *self.coarse), *self.full).astype(np.float32)

    def enlarge(self, image: np.ndarray, content: np.ndarray) -> np.ndarray:
        """``image`` (at the coarse size) at the full size plus ``content``'s detail band (``content``: at the
        full size), float32 clipped to 0..255. When the two sizes are the same: ``image`` itself."""
        target = self.upsample(image).astype(np.float32)
        if tuple(self.coarse) != tuple(self.full):
            target += self.detail(content.astype(np.float32))
        return np.clip(target, 0, 255)
