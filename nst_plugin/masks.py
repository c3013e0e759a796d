"""Masks (``--mask SOURCE``): where a frame shows the styled picture (white), where the source (black), and
a mix in between (grey; a soft edge stays soft). A mask is read with the project's own source reader
(:func:`~nst_plugin.video.sources.open_source`): a video file, an image sequence, or one image that holds
for every frame.

A mask frame's value is its luminance (Rec. 709) times its alpha where it has one (a transparent pixel:
the source), from 0 to 1; it is resized smoothly to the output's size. Its frames go with the source's in
order: one mask frame per source frame, or per frame of the run (``--frames``/``--step``), or one for all.
Everything that can be refused is refused by :func:`open_mask`, before any work. No TensorFlow import here;
OpenCV is imported inside the functions that need it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .errors import UserError

if TYPE_CHECKING:
    from .video.sources import FrameSource

ASPECT_TOLERANCE = 0.01  # a mask's width/height may differ from the source's by this fraction
_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)  # Rec. 709, on R, G, B
_KEPT = 8  # mask frames a reader keeps decoded (a chunk of frames asks for the same ones again)


def mask_plane(image: np.ndarray, bgr: bool = True) -> np.ndarray:
    """An image as OpenCV decodes it (grey, BGR or BGRA; 8 or 16 bits; ``bgr=False``: RGB) as a float32
    (H, W) mask from 0 to 1: luminance times alpha."""
    scale = 65535.0 if image.dtype == np.uint16 else 255.0 if image.dtype.kind in "iu" else 1.0
    pixels = image.astype(np.float32) / scale
    if pixels.ndim == 2:
        return np.clip(pixels, 0.0, 1.0)
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise UserError(f"unsupported mask image shape {image.shape}")
    if pixels.shape[2] == 1:
        return np.clip(pixels[..., 0], 0.0, 1.0)
    colour = pixels[..., 2::-1] if bgr else pixels[..., :3]
    plane = colour[..., :3] @ _LUMA
    if pixels.shape[2] == 4:
        plane = plane * pixels[..., 3]
    return np.clip(plane, 0.0, 1.0).astype(np.float32)


def resize_plane(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A mask at ``height`` x ``width``: area-averaged when it shrinks, bilinear when it grows (no overshoot,
    so a soft edge stays a soft ramp and black stays exactly 0, white exactly 1)."""
    import cv2

    if plane.shape[:2] == (height, width):
        return plane
    shrinking = height * width < plane.shape[0] * plane.shape[1]
    resized = cv2.resize(plane, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0)


def composite(styled: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``mask * styled + (1 - mask) * source`` as uint8 RGB, all three at the same size (0: the source's
    pixels exactly, 1: the styled ones)."""
    weight = mask[..., None].astype(np.float32)
    mixed = weight * styled.astype(np.float32) + (1.0 - weight) * source.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


@dataclass
class MaskSource:
    """A checked mask for one source (:func:`open_mask`). ``order``: the mask frame number of each frame of
    the run's source (None: one still image for every frame)."""

    spec: str
    frames: "FrameSource"  # the mask's own frames
    order: dict[int, int] | None = None
    what: str = "--mask"  # how its messages name it (``--style-mask 2``)
    _kept: dict = field(default_factory=dict, repr=False)  # mask frame number -> (its plane's digest, plane)
    _reader: Iterator | None = field(default=None, repr=False)
    _position: int = field(default=0, repr=False)

    def identity(self) -> dict:
        """What the manifest records of the mask (its path, kind, size and frame count)."""
        frames = self.frames
        path = str(Path(frames.spec).expanduser().resolve())
        return {"path": path, "kind": "image" if self.order is None else frames.kind, "width": frames.width,
                "height": frames.height, "count": frames.count}

    def number(self, index: int) -> int:
        """The mask frame that goes with source frame ``index``."""
        if self.order is None:
            return self.frames.files[0][0]
        if index not in self.order:
            raise UserError(f"{self.what} {self.spec!r} has no frame for source frame {index}")
        return self.order[index]

    def plane(self, index: int) -> np.ndarray:
        """The mask of source frame ``index`` at the mask's own size (float32, 0..1)."""
        return self._read(self.number(index))[1]

    def digest(self, index: int) -> str:
        """What the frame's record keeps of its mask: a frame whose mask digest changed is composited again."""
        return self._read(self.number(index))[0]

    def frame_digest(self, number: int) -> str:
        """The digest of the mask's own frame ``number``."""
        return self._read(number)[0]

    def at(self, index: int, height: int, width: int) -> np.ndarray:
        """The mask of source frame ``index`` at ``height`` x ``width``."""
        return resize_plane(self.plane(index), height, width)

    def _read(self, number: int) -> tuple[str, np.ndarray]:
        if number not in self._kept:
            plane = self._decode(number)
            digest = hashlib.sha256(str(plane.shape).encode() + plane.tobytes()).hexdigest()[:16]
            if len(self._kept) >= _KEPT:
                self._kept.pop(next(iter(self._kept)))
            self._kept[number] = (digest, plane)
        return self._kept[number]

    def _decode(self, number: int) -> np.ndarray:
        import cv2

        if self.frames.kind == "images":
            path = dict(self.frames.files)[number]
            data = np.fromfile(str(path), dtype=np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
            if image is None:
                raise UserError(f"{self.what}: {str(path)!r} cannot be read as an image")
            return mask_plane(image)
        # a video: read forward in order (as the run's frames are), from the start again to go back
        if self._reader is None or number <= self._position:
            self._reader, self._position = self.frames.read(), 0
        for found, rgb in self._reader:
            self._position = found
            if found == number:
                return mask_plane(rgb, bgr=False)
            if found > number:
                break
        self._reader = None
        raise UserError(f"{self.what} {self.spec!r}: frame {number} cannot be decoded")


def check_aspect(what: str, mask_size: tuple[int, int], size: tuple[int, int], of: str) -> None:
    """One line when a mask's width/height (``mask_size``: width, height) is more than 1% off ``size``'s."""
    (mw, mh), (sw, sh) = mask_size, size
    if sw and sh and mw and mh and abs((mw / mh) / (sw / sh) - 1.0) > ASPECT_TOLERANCE:
        raise UserError(f"{what} is {mw}x{mh} (aspect {mw / mh:.3f}) but {of} is {sw}x{sh} (aspect {sw / sh:.3f}): "
                        "a mask needs its picture's aspect ratio")


def image_mask(value, shape: tuple[int, int], what: str = "--mask") -> np.ndarray:
    """The mask of one picture of ``shape`` (height, width), at that size (:func:`read_plane`)."""
    plane, what = read_plane(value, what)
    check_aspect(what, (plane.shape[1], plane.shape[0]), (shape[1], shape[0]), "the picture")
    return resize_plane(plane, *shape)


def read_plane(value, what: str) -> tuple[np.ndarray, str]:
    """``(mask, its name in an error line)``: ``value`` is an image file (read as the frames of a mask are) or an
    array, (H, W) or RGB(A), uint8/uint16 or float from 0 to 1; the mask float32 (H, W) 0..1 at its own size."""
    import cv2

    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
        if image is None:
            why = "cannot be read as an image" if path.is_file() else "does not exist"
            raise UserError(f"{what} {str(value)!r} {why}")
        plane, what = mask_plane(image), f"{what} {str(value)!r}"
    else:
        array = np.asarray(value)
        if array.size == 0 or array.ndim not in (2, 3):
            raise UserError(f"{what} must be an (H, W) or (H, W, 3) array, got shape {array.shape}")
        plane = mask_plane(array, bgr=False)
    return plane.astype(np.float32), what


def masked_result(result, content: np.ndarray, plane: np.ndarray | None):
    """A stylized picture (a :class:`~nst_plugin.result.FrameResult`) composited over its ``content`` with the
    mask ``plane`` (None: as it is), both at the result's size."""
    from .images import resize

    if plane is None:
        return result
    height, width = result.image.shape[:2]
    result.image = composite(result.image, resize(content, height, width), resize_plane(plane, height, width))
    return result


def _all_numbers(source) -> list[int]:
    """Every frame number of a source, whatever the run selects."""
    if source.kind == "images":
        return [n for n, _ in source.files]
    return list(range(1, (source.count or 0) + 1))


def open_mask(spec: str | os.PathLike, source: "FrameSource", what: str = "--mask") -> MaskSource:
    """The mask ``spec`` checked against ``source`` (a :class:`~nst_plugin.video.sources.FrameSource`): a
    file that is missing or cannot be read (every file of an image sequence), a frame count that is neither
    one, the source's, nor the run's, and an aspect ratio more than 1% off the source's are each one
    :class:`UserError` line (``what``: how it names the mask)."""
    from .video.sources import open_source

    if not isinstance(spec, (str, os.PathLike)) or not str(spec).strip():
        raise UserError(f"{what} must name a video, an image sequence or an image, got {spec!r}")
    text = str(spec)
    if text.isdigit() and not Path(text).exists():
        raise UserError(f"{what} {text!r} does not exist (a mask is a video file, an image sequence or an image)")
    try:
        frames = open_source(text)
    except UserError as exc:
        raise UserError(f"{what}: {exc}") from None
    check_aspect(f"{what} {text!r}", (frames.width, frames.height), (source.width, source.height),
                 f"the source {source.spec!r}")
    if frames.count == 1 and frames.kind == "images":
        return MaskSource(text, frames, None, what)
    mask_numbers = _all_numbers(frames)
    if source.kind == "camera":
        raise UserError(f"{what} {text!r} has {len(mask_numbers)} frames, and a camera's frames are not known "
                        "before they come: give one image as the mask of a camera")
    if frames.kind == "images":
        _probe_files(frames.files, what)
    whole, run = _all_numbers(source), source.indices or []
    if len(mask_numbers) == len(whole):
        return MaskSource(text, frames, dict(zip(whole, mask_numbers)), what)
    if len(mask_numbers) == len(run):
        return MaskSource(text, frames, dict(zip(run, mask_numbers)), what)
    makes = f" and this run makes {len(run)}" if len(run) != len(whole) else ""
    raise UserError(f"{what} {text!r} has {len(mask_numbers)} frames but the source {source.spec!r} has "
                    f"{len(whole)}{makes}: give one mask frame per frame, or one image for all of them")


def _probe_files(files, what: str) -> None:
    """Every file of an image sequence mask is there, not empty and in a format OpenCV reads (its first bytes:
    cheap, no decoding), so a broken file later in the sequence is refused before any work, not mid-run."""
    import cv2

    for _, path in files:
        try:
            readable = os.path.getsize(path) > 0 and cv2.haveImageReader(str(path))
        except OSError:
            readable = False
        if not readable:
            raise UserError(f"{what}: {str(path)!r} cannot be read as an image")
