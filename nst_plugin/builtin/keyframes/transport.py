"""Texture transport: a shot's stylized keyframe carried along the shot by the optical flow, its brush strokes
laid over the network's frames where that flow can be trusted.

The network learns a keyframe's colours and large shapes but not its brush strokes. So, as Jamriška et al.
2019 ("Stylizing Video by Example") carry a keyframe's style along the flow, each frame after a keyframe gets
the keyframe's fine detail moved to where the picture moved (:class:`TextureTrack`: an offset field composed
with each frame's backward DIS flow, so the keyframe is resampled once and stays sharp; :func:`composite`);
the frame's own fine detail, from the source, where the keyframe cannot be followed; the keyframe's large
shapes too where the picture stands still (relative to the frame's median motion); and a point lost where the
picture stands still again (what a walker uncovered) is recovered from its neighbours (``recover``).

OpenCV only; no Keras here. Design, measurements and history: docs/design/keyframes.md#texture-transport
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...flow import flow as dis_flow
from ...flow import own_motion, pixel_grid, trust_mask, warp
from ...images import resize
from .guides import flow_size, follow


class Carried(NamedTuple):
    """The keyframe moved onto a frame: ``image`` (H, W, 3) uint8 at the network's size; ``trust`` (H, W)
    uint8, how much of the keyframe's fine detail is used there (255: all of it; 0: none, the frame's own);
    ``whole`` (H, W) uint8 or None, how much of its large shapes too (its colours and swirls, in place of the
    network's): the trust where the picture stands still, none where it moves (and where it moves ``trust``
    is a share of the point's, :data:`MOVING_TRUST`). uint8: small to ship to a cluster's workers."""

    image: np.ndarray
    trust: np.ndarray
    whole: np.ndarray | None = None


# flow, in the flow's pixels, relative to the frame's median, from which the picture moves (soft up to 4x it)
MOVING_FLOW = 0.5


# recovering lost points (``recover``): a point under this trust is lost (one failed flow check at decay 0.7
# is); its still neighbours' offsets spread this many pixels; the keyframe's source alike (RMS Lab over the
# point's 5x5 patch) up to the first, unlike from the second
RECOVER_BELOW = 0.75
RECOVER_SPREAD = 12.0
RECOVER_ALIKE, RECOVER_UNLIKE = 4.0, 10.0
# px: the side of the square around a point over which the keyframe's source must look alike too (1: the
# point's own patch; a larger square leaves a flat halo around every walker)
RECOVER_AROUND = 1
# px: the side of the square around what moves now (a walker: its edges stay the source's) within which no
# point is recovered
RECOVER_CLEAR = 13
# nor onto what moved at the keyframe and RECOVER_CLEAR px around it (seen at the first step after it): the
# keyframe's strokes there are a walker's and the paint around its outline, not the path it uncovered
RECOVER_KEYFRAME_CLEAR = True

# the keyframe is sampled where each point was in it bicubically: bilinear sampling averages neighbouring
# strokes wherever that place falls between pixels
CUBIC = True
# the share of its trust a carried point keeps for the frame where the picture moves (a walker, a turning
# face): the keyframe's strokes there are dragged from where the flow last followed them
MOVING_TRUST = 0.8


def carry(texture: np.ndarray, offset: np.ndarray, cubic: bool = CUBIC) -> np.ndarray:
    """``texture`` (float32, at ``offset``'s size) sampled where each pixel's point was in it (``offset``:
    (h, w, 2), that place minus the pixel), bicubically (:data:`CUBIC`) or bilinearly, the border reflected."""
    import cv2

    grid_x, grid_y = pixel_grid(*offset.shape[:2])
    return cv2.remap(texture, grid_x + offset[..., 0], grid_y + offset[..., 1],
                     interpolation=cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    lab = cv2.cvtColor(np.clip(rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    return cv2.GaussianBlur(lab, (0, 0), 1.0)


def stillness(back: np.ndarray) -> np.ndarray:
    """(H, W) float32 at the flow's size: 1 where the picture stands still (its flow within ``MOVING_FLOW`` of
    the frame's median, the camera's motion), 0 where it moves by 4 times that or more, and 5 px around."""
    import cv2

    moving = np.clip((own_motion(back) - MOVING_FLOW) / (3 * MOVING_FLOW), 0, 1).astype(np.float32)
    return 1.0 - cv2.dilate(moving, np.ones((5, 5), np.uint8))


class TextureTrack:
    """Frame after frame of a shot: ``start(texture)`` at a keyframe (its stylized image at ``shape``, the
    network's size), ``next(frame)`` for every frame (the keyframe's own too, after ``start``), which returns
    the :class:`Carried` keyframe, or None while no keyframe was started since the last ``reset()`` (a cut).

    ``flow_side``: the longer side at which the flow is computed; ``decay``: the trust a point keeps through
    a step the flow checks reject (0: none); ``recover``: lost points where the picture stands still are
    placed again from their neighbours (:meth:`_recover`); ``cubic``: the keyframe is sampled bicubically, not
    bilinearly (:data:`CUBIC`); ``moving_trust``: the share of its trust a point keeps in the frame where the
    picture moves (:data:`MOVING_TRUST`; its trust along the way is not changed); ``around``: the side in
    pixels of the square all over which a recovered point's keyframe source must look like the frame
    (:data:`RECOVER_AROUND`); ``clear``: the side of the square around what moves now within which no point is
    recovered (:data:`RECOVER_CLEAR`; 0 or 1: only what moves); ``keyframe_clear``: nor onto what moved at the
    keyframe (:data:`RECOVER_KEYFRAME_CLEAR`)."""

    def __init__(self, shape: tuple[int, int], flow_side: int = 384, decay: float = 0.0, recover: bool = False,
                 cubic: bool = CUBIC, moving_trust: float = MOVING_TRUST, around: int = RECOVER_AROUND,
                 clear: int = RECOVER_CLEAR, keyframe_clear: bool = RECOVER_KEYFRAME_CLEAR):
        self.shape = tuple(int(v) for v in shape)
        self.flow_shape = flow_size(self.shape, flow_side)
        self.decay, self.recover, self.cubic = float(decay), bool(recover), bool(cubic)
        self.moving_trust, self.around, self.clear = float(moving_trust), int(around), int(clear)
        self.keyframe_clear = bool(keyframe_clear)
        self.grid_x, self.grid_y = pixel_grid(*self.shape)
        self.previous = None  # the previous frame, RGB at the flow size
        self.reset()

    def reset(self) -> None:
        self.texture = None  # the keyframe being carried, float32 RGB at the network's size
        self.offset = None  # (H, W, 2): where each pixel's point was in the keyframe, minus the pixel
        self.trust = None  # (H, W) float32 in [0, 1]
        self.still = None  # (H, W) float32: the last step's stillness
        self.previous = None
        self.flows = None  # (this frame -> the previous one, back), at flow_shape, when next() computed them

    def start(self, texture: np.ndarray) -> None:
        """Carry ``texture`` (the stylized keyframe at the network's size) from the frame ``next`` gets next."""
        if tuple(texture.shape[:2]) != self.shape:
            raise ValueError(f"a keyframe of {texture.shape[:2]} for a track of {self.shape}")
        self.texture = np.asarray(texture, np.float32)
        self.offset = None
        self.key_moving = None  # (H, W) float32 0..1: what moved at the keyframe, and around it (its strokes)

    def _step(self, small: np.ndarray, back: np.ndarray | None = None) -> None:
        """Move the offsets and the trust one frame on, from ``self.previous`` to ``small`` (``back``: the flow
        from ``small`` to it, when known)."""
        import cv2

        h, w = self.shape
        back = dis_flow(small, self.previous) if back is None else back  # this frame -> the previous one
        forward = dis_flow(self.previous, small)
        self.flows = back, forward
        step_trust = trust_mask(small.astype(np.float32), self.previous.astype(np.float32), back, forward)
        still = stillness(back)
        if step_trust.shape != (h, w):
            step_trust = cv2.resize(step_trust, (w, h), interpolation=cv2.INTER_LINEAR)
            still = cv2.resize(still, (w, h), interpolation=cv2.INTER_LINEAR)
        self.offset, back = follow(self.offset, back, self.shape)
        self.trust = np.maximum(step_trust, self.decay) * warp(self.trust, back)
        self.still = still
        if self.recover and self.keyframe_clear and self.key_moving is None:
            # the first step after the keyframe: what moves there moved at the keyframe too (a walker), and its
            # strokes there, halo included, are the walker's, not what it will uncover
            self.key_moving = self._moving()
        map_x, map_y = self.grid_x + self.offset[..., 0], self.grid_y + self.offset[..., 1]
        self.trust[(map_x < 0) | (map_x > w - 1) | (map_y < 0) | (map_y > h - 1)] = 0.0  # left the keyframe

    def _moving(self) -> np.ndarray:
        """(H, W) float32 0/1: where the picture moves in the last step, and ``clear`` px around it."""
        import cv2

        moving = (self.still < 0.5).astype(np.float32)
        return cv2.dilate(moving, np.ones((self.clear, self.clear), np.uint8)) if self.clear > 1 else moving

    def _recover(self, frame: np.ndarray) -> None:
        """Where a point was lost but the picture stands still (e.g. what a walker uncovered): where its
        trusted neighbours say it was in the keyframe, if the keyframe's source there looks like the frame
        (``frame``, at the track's size)."""
        import cv2

        lost = (self.trust < RECOVER_BELOW) & (self.still > 0.5)
        if not lost.any():
            return
        # the neighbours that stand still too (a trusted walker next to it went elsewhere)
        weight = np.where(self.trust >= RECOVER_BELOW, self.trust * self.still, 0.0).astype(np.float32)
        spread = lambda v: cv2.GaussianBlur(v, (0, 0), RECOVER_SPREAD)  # noqa: E731
        total = spread(weight)
        guess = np.stack([spread(self.offset[..., c] * weight) for c in (0, 1)], -1) / np.maximum(total, 1e-3)[..., None]
        lab = _lab(frame)
        there = cv2.remap(self.key_lab, self.grid_x + guess[..., 0], self.grid_y + guess[..., 1],
                          interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        mean_square = np.maximum(cv2.blur(np.square(lab - there).mean(-1), (5, 5)), 0.0)  # (the box sum rounds below 0)
        distance = np.sqrt(mean_square)  # RMS Lab over a 5x5 patch
        if self.around > 1:  # all around alike
            distance = cv2.dilate(distance, np.ones((self.around, self.around), np.uint8))
        alike = np.clip((RECOVER_UNLIKE - distance) / (RECOVER_UNLIKE - RECOVER_ALIKE), 0, 1)
        found = self.still * alike * (1.0 - self._moving()) * (total > 0.05)  # and clear of what moves now
        if self.key_moving is not None:  # not where the keyframe had something that moved
            found = found * (1.0 - cv2.remap(self.key_moving, self.grid_x + guess[..., 0], self.grid_y + guess[..., 1],
                                             interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        renew = lost & (found > self.trust)
        self.offset[renew] = guess[renew]
        self.trust[renew] = found[renew]

    def next(self, frame: np.ndarray, back: np.ndarray | None = None) -> Carried | None:
        """The keyframe carried to ``frame``. ``back``: the DIS flow from ``frame`` to the previous frame at
        ``flow_shape``, when the caller has it (:attr:`.guides.GuideTrack.back` of the same frames); else
        computed here."""
        small = resize(frame, *self.flow_shape)
        self.flows = None
        if self.texture is not None:
            sized = None  # the frame at the track's size, which only the recovery needs
            if self.recover:
                sized = small if self.flow_shape == self.shape else resize(frame, *self.shape)
            if self.offset is None:  # the keyframe itself
                self.offset = np.zeros(self.shape + (2,), np.float32)
                self.trust, self.still = np.ones(self.shape, np.float32), np.ones(self.shape, np.float32)
                if self.recover:
                    self.key_lab = _lab(sized)
            else:
                self._step(small, back)
                if self.recover:
                    self._recover(sized)
        self.previous = small
        if self.texture is None:
            return None
        image = carry(self.texture, self.offset, self.cubic)
        as_uint8 = lambda v: np.clip(np.rint(v), 0, 255).astype(np.uint8)  # noqa: E731
        trust = self.trust * (self.moving_trust + (1.0 - self.moving_trust) * self.still)
        return Carried(as_uint8(image), as_uint8(trust * 255.0), as_uint8(self.trust * self.still * 255.0))


def composite(image: np.ndarray, carried: Carried | None, sigma: float, content: np.ndarray | None = None) -> np.ndarray:
    """The network's frame ``image`` (float RGB 0..255 at the network's size) with its fine detail (what a
    Gaussian blur of ``sigma`` pixels removes) replaced by the carried keyframe's where that is trusted, and its
    large shapes by the keyframe's where ``carried.whole`` says so (both blurred by 1.5 px, so that there is no
    seam); with ``content`` (the source frame at that size), the content's own fine detail where the
    keyframe's is not used. ``carried`` None or ``sigma`` 0: the frame itself."""
    import cv2

    image = np.asarray(image, np.float32)
    if carried is None or not sigma > 0:
        return image
    weight = lambda m: cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), 1.5)[..., None]  # noqa: E731
    blur = lambda picture: cv2.GaussianBlur(picture, (0, 0), sigma)  # noqa: E731
    keyframe = carried.image.astype(np.float32)
    trust, key_large = weight(carried.trust), blur(keyframe)
    source = image if content is None else np.asarray(content, np.float32)
    own, large = source - blur(source), blur(image)
    if carried.whole is not None:
        whole = weight(carried.whole)
        large = large + whole * (key_large - large)
    return np.clip(large + trust * (keyframe - key_large) + (1.0 - trust) * own, 0, 255)


class Reached(NamedTuple):
    """How the latest keyframe reaches a frame: ``offset`` (h, w, 2) float32, where each pixel's point was in
    it, minus the pixel; ``trust`` (h, w) float32 0..1, how far its strokes are used there (as
    :attr:`Carried.trust`)."""

    offset: np.ndarray
    trust: np.ndarray

    def start(self, stylized: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """A start for the frame engine at this frame (float RGB 0..255 at the offset's size): the keyframe's
        ``stylized`` image carried to it where trusted, the frame itself (``frame``) elsewhere, as the L-BFGS
        engine starts a warm frame."""
        h, w = self.trust.shape
        carried = carry(resize(stylized, h, w).astype(np.float32), self.offset)
        trust = self.trust[..., None]
        return np.clip(trust * carried + (1.0 - trust) * resize(frame, h, w).astype(np.float32), 0, 255)


class Coverage:
    """How much of each frame of a shot the latest keyframe's strokes still reach: the mean of the trust a
    :class:`TextureTrack` gives them there (what :func:`composite` uses), followed at the flow's size. The
    keyframe engine's plan (:func:`~.selection.make_plan`) makes a frame a keyframe where it falls under the
    engine's ``coverage``, and starts that keyframe's stylization from the last one carried to it
    (:meth:`reached`). ``decay`` and ``recover``: the engine's texture track's."""

    def __init__(self, source_shape: tuple[int, int], decay: float, recover: bool, flow_side: int = 384):
        self.track = TextureTrack(flow_size(source_shape, flow_side), flow_side=flow_side, decay=decay, recover=recover)
        self.trust = None

    def keyframe(self, frame: np.ndarray) -> None:
        """A keyframe at ``frame`` (the shot's first, or the next one)."""
        small = resize(frame, *self.track.shape)
        self.track.reset()
        self.track.start(small.astype(np.float32))
        self.trust = self.track.next(small).trust

    def next(self, frame: np.ndarray) -> float:
        """The share (0..1) of ``frame`` that the keyframe's strokes reach."""
        self.trust = self.track.next(frame).trust
        return float(self.trust.mean()) / 255.0

    def reached(self) -> Reached:
        """How the keyframe reaches the last frame :meth:`next` got."""
        return Reached(self.track.offset.copy(), self.trust.astype(np.float32) / 255.0)
