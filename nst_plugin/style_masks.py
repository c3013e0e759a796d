"""Two styles by mask (Gatys et al. 2017 spatial control): which style goes where.

The user names masks per style (``--style-mask 2=ground.png``; the Python API's ``style_masks``); this module
reads and checks them before any work and resolves them into the frame engine's
:attr:`~nst_plugin.context.FrameControls.style_masks`: one float (H, W) 0..1 mask per style image.

The rule: a style without a mask gets what no other style's mask covers (1 - the sum of the given masks,
clipped to 0..1); without any mask the styles are blended over the whole frame as before.

In a video a mask is one image (:class:`StillMasks`) or a video or an image sequence read with ``--mask``'s
reader (:class:`MovingMasks`, resolved frame by frame); a sequence engine asks
:meth:`~nst_plugin.context.RunContext.style_masks_at` for each frame's, and a cluster's unit carries its
frames' (:class:`FrameMasks`, :func:`for_frames`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .errors import UserError


def parse_specs(specs: Sequence[str], n_styles: int) -> dict[int, str]:
    """``["2=mask.png", ...]`` -> ``{1: "mask.png"}`` (0-based style index), checked against ``n_styles``."""
    masks: dict[int, str] = {}
    for spec in specs:
        number, sep, path = str(spec).partition("=")
        if not sep or not number.strip().isdigit() or not path:
            raise UserError(f"--style-mask {spec!r}: expected N=IMAGE, N the style's number (1 for the first --style)")
        n = int(number)
        if not 1 <= n <= n_styles:
            raise UserError(f"--style-mask {spec!r}: style {n} does not exist ({n_styles} --style image"
                            f"{'s' * (n_styles != 1)} given, numbered from 1)")
        if n - 1 in masks:
            raise UserError(f"--style-mask: style {n} has two masks; give one per style")
        masks[n - 1] = path
    return masks


def settings_specs(options: Sequence[str], setting) -> list[str]:
    """The ``--style-mask`` specs: the options given, else a ``--settings`` file's ``style_masks`` (a list of
    ``"N=SOURCE"`` or an object ``{"N": SOURCE}``); the options win."""
    if options or setting is None:
        return list(options)
    if isinstance(setting, Mapping):
        return [f"{n}={path}" for n, path in setting.items()]
    if isinstance(setting, list) and all(isinstance(spec, str) for spec in setting):
        return setting
    raise UserError(f"the settings file's style_masks must be a list of \"N=IMAGE\" or an object "
                    f"{{\"N\": IMAGE}}, got {setting!r}")


def load_mask(value, what: str) -> np.ndarray:
    """A mask as float32 (H, W) 0..1, read as ``--mask`` reads one (:func:`nst_plugin.masks.read_plane`:
    luminance times alpha; white = the style's region): an image file, or an array ((H, W) or RGB(A);
    uint8/uint16, or float 0..1). ``what``: its name, without the file's (an error line adds it)."""
    from .masks import read_plane

    plane, what = read_plane(value, what)
    if not np.isfinite(plane).all():
        raise UserError(f"{what} has values that are not finite")
    return plane


def check_aspect(mask_shape: tuple[int, int], frame_shape: tuple[int, int], what: str) -> None:
    """The mask must have the frame's aspect ratio (it is stretched onto the frame), as ``--mask``'s."""
    from .masks import check_aspect as check

    check(what, (mask_shape[1], mask_shape[0]), (frame_shape[1], frame_shape[0]), "the content")


def resolve(masks: Mapping[int, np.ndarray], n_styles: int, strict: bool = True) -> tuple[np.ndarray, ...] | None:
    """One mask per style from the given ones ``{index: (H, W) 0..1}`` (None: no mask at all, the blend):
    a style without a mask gets 1 - the sum of the given masks, clipped. A style left with no region is an
    error (``strict``; a moving mask's style may leave the picture in some frames)."""
    if not masks:
        return None
    height, width = max((m.shape for m in masks.values()), key=lambda shape: shape[0] * shape[1])
    same = {i: _fit(m, height, width) for i, m in masks.items()}
    rest = np.clip(1.0 - sum(same.values()), 0.0, 1.0).astype(np.float32)
    resolved = tuple(same.get(i, rest) for i in range(n_styles))
    for i, mask in enumerate(resolved if strict else ()):
        if float(mask.max()) < 1.0 / 255.0:
            why = "its mask is black" if i in masks else "the other masks cover the whole frame"
            raise UserError(f"style {i + 1} has no region: {why}")
    return resolved


def from_user(style_masks, n_styles: int, frame_shape: tuple[int, int] | None) -> tuple[np.ndarray, ...] | None:
    """The API's ``style_masks`` (a sequence with one entry per style, ``None`` for a style without a mask;
    paths or arrays) or the CLI's ``{0-based index: path}`` (:func:`parse_specs`), loaded, checked against the frame's shape (when known)
    and resolved (:func:`resolve`)."""
    if style_masks is None:
        return None
    if isinstance(style_masks, Mapping):
        given = dict(style_masks)
    else:
        items = list(style_masks)
        if len(items) != n_styles:
            raise UserError(f"style_masks has {len(items)} entries for {n_styles} style images: give one per style "
                            "(None for a style without a mask)")
        given = {i: m for i, m in enumerate(items) if m is not None}
    loaded = {}
    for i, value in sorted(given.items()):
        name = f"--style-mask {i + 1}" if isinstance(value, (str, os.PathLike)) else f"style mask {i + 1}"
        what = f"{name} {str(value)!r}" if name.startswith("--") else name
        loaded[i] = load_mask(value, name)
        if frame_shape is not None:
            check_aspect(loaded[i].shape, frame_shape, what)
    return resolve(loaded, n_styles)


def check_sequence_engine(engine: str) -> None:
    """Style masks reach the frames of an engine that declares the ``style_masks`` trait (in this process, or
    shipped with its units to a cluster's workers); another engine would ignore them: refused."""
    from .plugins import get_host

    if not get_host().registry.traits(engine).style_masks:
        raise UserError(f"--style-mask: the {engine} engine does not take style masks")


@dataclass(frozen=True)
class StillMasks:
    """The same resolved masks for every frame (a :class:`~nst_plugin.context.StyleMaskSource`)."""

    masks: tuple

    def at(self, index: int | None) -> tuple:
        return self.masks

    def record(self) -> list:
        """What the output folder's manifest keeps of them: one digest per style."""
        from .video.output import image_digest

        return [image_digest(m) for m in self.masks]


@dataclass(frozen=True)
class FrameMasks:
    """The resolved masks of given frames, ``{index: masks}``: what a unit carries to a worker."""

    masks: Mapping[int, tuple]

    def at(self, index: int | None) -> tuple:
        if index not in self.masks:
            raise RuntimeError(f"no style masks were shipped for frame {index}")
        return self.masks[index]

    def __reduce__(self):
        """Pickled (to a worker) with each distinct mask once, zlib-compressed (lossless): a mask is mostly flat,
        and a still one is the same for every frame of the unit."""
        import zlib

        arrays: list = []
        seen: dict[int, int] = {}
        packed = {}
        for index, masks in self.masks.items():
            refs = []
            for mask in masks or ():
                if mask is not None and id(mask) not in seen:
                    seen[id(mask)] = len(arrays)
                    plane = np.ascontiguousarray(mask)
                    arrays.append((plane.shape, plane.dtype.str, zlib.compress(plane.tobytes(), 1)))
                refs.append(None if mask is None else seen[id(mask)])
            packed[index] = None if masks is None else tuple(refs)
        return _unpack_masks, (arrays, packed)


def _unpack_masks(arrays: list, packed: dict) -> FrameMasks:
    import zlib

    planes = [np.frombuffer(bytearray(zlib.decompress(data)), dtype).reshape(shape) for shape, dtype, data in arrays]
    return FrameMasks({index: None if refs is None else tuple(None if r is None else planes[r] for r in refs)
                       for index, refs in packed.items()})


@dataclass(eq=False)
class MovingMasks:
    """Masks per frame: some styles' masks are videos or image sequences (:class:`~nst_plugin.masks.MaskSource`,
    frame by frame with the source), the others still planes; resolved frame by frame (:func:`resolve`; a style
    may have no region in some frames)."""

    given: Mapping[int, object]  # style index -> MaskSource, or a still (H, W) plane
    n_styles: int
    _last: tuple = (None, None)  # (frame index, its resolved masks): a frame is asked for more than once

    def at(self, index: int | None) -> tuple:
        if self._last[1] is None or self._last[0] != index:
            planes = {i: m if isinstance(m, np.ndarray) else m.plane(index) for i, m in self.given.items()}
            self._last = (index, resolve(planes, self.n_styles, strict=False))
        return self._last[1]

    def record(self) -> list:
        """One digest per style: of its mask's frames (each one decoded: a broken frame is refused here, before
        any work) or of its still plane; a style without a mask: None."""
        from .video.output import image_digest

        digests: list = [None] * self.n_styles
        for i, mask in self.given.items():
            if isinstance(mask, np.ndarray):
                digests[i] = image_digest(mask)
            else:
                frames = sorted(set(mask.order.values()))
                digests[i] = _digest_of([mask.frame_digest(n) for n in frames])
        return digests


def for_frames(context, indices) -> FrameMasks | None:
    """The style masks of frames ``indices`` as a unit carries them to a worker (None: the run has none)."""
    if context.style_masks is None and context.controls.style_masks is None:
        return None
    return FrameMasks({int(i): context.style_masks_at(i) for i in indices})


def video_style_masks(paths: Mapping[int, str], n_styles: int, source, engine: str):
    """``nst video --style-mask``: the masks of :func:`parse_specs` read and checked against the source and the
    engine (:func:`check_sequence_engine`) before any work: :class:`StillMasks` when every mask is one image,
    :class:`MovingMasks` when one is a video or an image sequence (its frame count and aspect ratio checked as
    ``--mask``'s, :func:`nst_plugin.masks.open_mask`); None without masks."""
    from .masks import open_mask

    if not paths:
        return None
    check_sequence_engine(engine)
    given: dict[int, object] = {}
    for i, path in sorted(paths.items()):
        mask = open_mask(path, source, what=f"--style-mask {i + 1}")  # (its aspect ratio checked there)
        given[i] = load_mask(path, f"--style-mask {i + 1}") if mask.order is None else mask  # one image: still
    if all(isinstance(m, np.ndarray) for m in given.values()):
        return StillMasks(resolve(given, n_styles))
    return MovingMasks(given, n_styles)


def check_frames(frames, masks: Sequence[np.ndarray]):
    """``(index, rgb)`` frames as given, the first one checked against the masks' aspect ratio (a sequence's
    frames are known only as they come)."""
    first = True
    for index, frame in frames:
        if first:
            check_aspect(masks[0].shape, np.shape(frame)[:2], "a style mask")
            first = False
        yield index, frame


def _digest_of(parts: list) -> str:
    import hashlib

    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _fit(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    from .masks import resize_plane

    return resize_plane(mask, height, width)
