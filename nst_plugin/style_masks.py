"""Two styles by mask (Gatys et al. 2017 spatial control): which style goes where.

The user names masks per style (``--style-mask 2=ground.png``; the Python API's ``style_masks``); this module
reads and checks them before any work and resolves them into the frame engine's
:attr:`~nst_plugin.context.FrameControls.style_masks`: one float (H, W) 0..1 mask per style image.

The rule: a style without a mask gets what no other style's mask covers (1 - the sum of the given masks,
clipped to 0..1); without any mask the styles are blended over the whole frame as before.
"""

from __future__ import annotations

import os
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


def load_mask(value, what: str) -> np.ndarray:
    """A mask as float32 (H, W) 0..1, read as ``--mask`` reads one (:func:`nst_plugin.masks.mask_plane`:
    luminance times alpha; white = the style's region): an image file, or an array ((H, W) or RGB(A);
    uint8/uint16, or float 0..1)."""
    import cv2

    from .masks import mask_plane

    if isinstance(value, (str, os.PathLike)):
        from .images import load_image

        load_image(value, what)  # a missing, a folder or an unreadable file: its one line
        image = cv2.imdecode(np.fromfile(os.path.expanduser(os.fspath(value)), np.uint8), cv2.IMREAD_UNCHANGED)
        plane = mask_plane(image)
    else:
        array = np.asarray(value)
        if array.size == 0 or array.ndim not in (2, 3):
            raise UserError(f"{what} must be an (H, W) or (H, W, 3) array, got shape {array.shape}")
        plane = mask_plane(array, bgr=False)
    if not np.isfinite(plane).all():
        raise UserError(f"{what} has values that are not finite")
    return plane.astype(np.float32)


def check_aspect(mask_shape: tuple[int, int], frame_shape: tuple[int, int], what: str) -> None:
    """The mask must have the frame's aspect ratio (it is stretched onto the frame), as ``--mask``'s."""
    from .masks import check_aspect as check

    check(what, (mask_shape[1], mask_shape[0]), (frame_shape[1], frame_shape[0]), "the content")


def resolve(masks: Mapping[int, np.ndarray], n_styles: int) -> tuple[np.ndarray, ...] | None:
    """One mask per style from the given ones ``{index: (H, W) 0..1}`` (None: no mask at all, the blend):
    a style without a mask gets 1 - the sum of the given masks, clipped. A style left with no region is an
    error."""
    if not masks:
        return None
    height, width = max((m.shape for m in masks.values()), key=lambda shape: shape[0] * shape[1])
    same = {i: _fit(m, height, width) for i, m in masks.items()}
    rest = np.clip(1.0 - sum(same.values()), 0.0, 1.0).astype(np.float32)
    resolved = tuple(same.get(i, rest) for i in range(n_styles))
    for i, mask in enumerate(resolved):
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
        what = f"--style-mask {i + 1} {str(value)!r}" if isinstance(value, (str, os.PathLike)) else f"style mask {i + 1}"
        loaded[i] = load_mask(value, what)
        if frame_shape is not None:
            check_aspect(loaded[i].shape, frame_shape, what)
    return resolve(loaded, n_styles)


def check_sequence_engine(engine: str, cluster=None) -> None:
    """Still style masks reach the frames of an engine that declares the ``style_masks`` trait, in this process
    (the run's controls); another engine or a cluster's workers would ignore them: refused."""
    from .plugins import get_host

    if not get_host().registry.traits(engine).style_masks:
        raise UserError(f"--style-mask: the {engine} engine does not take style masks")
    if cluster is not None:
        raise UserError("--style-mask runs in one process: leave out --cluster")


def video_style_masks(paths: Mapping[int, str], n_styles: int, source, engine: str, cluster=None):
    """``nst video --style-mask``: the still masks of :func:`parse_specs` read and checked against the source's
    frames and the engine (:func:`check_sequence_engine`), resolved; None without masks."""
    if not paths:
        return None
    check_sequence_engine(engine, cluster)
    shape = (source.height, source.width) if source.height and source.width else None
    return from_user(paths, n_styles, shape)


def check_frames(frames, masks: Sequence[np.ndarray]):
    """``(index, rgb)`` frames as given, the first one checked against the masks' aspect ratio (a sequence's
    frames are known only as they come)."""
    first = True
    for index, frame in frames:
        if first:
            check_aspect(masks[0].shape, np.shape(frame)[:2], "a style mask")
            first = False
        yield index, frame


def _fit(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    from .masks import resize_plane

    return resize_plane(mask, height, width)
