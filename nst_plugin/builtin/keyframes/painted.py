"""Painted keyframes: frames an artist painted or retouched (``--keyframe-image 17=painted.png``), each the
truth for its frame, which the keyframe engine propagates through the shot.

A shot with a painted keyframe is made differently from one whose keyframes the frame engine stylizes
(:meth:`_Run.run_for`): its network learns the paintings at the output size (a painting holds the output's
fine detail: nothing is added back from the source, and no fine detail alone is carried along the flow,
which fought a painting: issue 27); the painting itself, carried along the flow, is laid over the network's
frames where the flow is trusted, fading with the frames since it (:func:`lay`); and the painting is the
output at its frame and feeds the temporal filter of its neighbours (the change from the painting to the
network's frames does not show). A PNG's alpha says where the painting applies; elsewhere the frame is the
engine's own look (the frame engine's keyframe, with ``--style``) or the source (without).

Design, measurements and history: docs/design/keyframes.md#painted-keyframes; user guide:
docs/painted-keyframes.md
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from ...errors import UserError

# the levels a painted shot's network learns its paintings in (0..255 squeezed into them, its frames stretched
# back): a painting mostly at 255 (a pencil sketch on white paper) drove the tanh output to its end and every
# ReLU before it died in 50 steps (a white frame); measured, docs/design/keyframes.md#painted-keyframes
SQUEEZE = (64.0, 191.0)
# the longer side of the flow that carries a painting, at most: the output's own size up to it (the painting's
# fine strokes land where they belong; measured, docs/design/keyframes.md#painted-keyframes)
PAINTED_FLOW_SIDE = 1280
ASPECT_TOLERANCE = 0.03  # a painting whose aspect ratio differs more from the frame's is refused
# a painting enlarged more than this to the output's size gets a warning: the output frame is the painting, and
# the network learns its look at that size (a keyframe copied at --keyframe-size, 384 px, paints HD soft)
ENLARGED_WARNING = 1.5


def parse_spec(value) -> tuple[int, str]:
    """One ``--keyframe-image`` item: ``"17=painted.png"`` (or ``(17, "painted.png")``) -> ``(17, path)``; the
    file must exist. A bad item: a one-line ``ValueError``."""
    if isinstance(value, (tuple, list)) and len(value) == 2:
        frame, path = value
    else:
        frame, sep, path = str(value).partition("=")
        if not sep or not path.strip():
            raise ValueError(f"{str(value)!r} is not FRAME=IMAGE (e.g. 17=painted.png)")
    try:
        frame = int(str(frame).strip())
    except ValueError:
        raise ValueError(f"{str(value)!r}: the frame {str(frame).strip()!r} is not a whole number") from None
    if frame < 0:
        raise ValueError(f"{str(value)!r}: the frame must be 0 or more")
    path = str(Path(str(path).strip()).expanduser())
    if not Path(path).is_file():
        raise ValueError(f"frame {frame}: {path!r} {'is a folder, not an image' if Path(path).is_dir() else 'does not exist'}")
    return frame, path


@dataclass(frozen=True, eq=False)
class Painting:
    """A painted keyframe as read: ``image`` uint8 RGB at its own size, ``alpha`` float32 0..1 (None: opaque),
    ``digest`` the file's content hash (the key of what it changes)."""

    index: int
    path: str
    image: np.ndarray
    alpha: np.ndarray | None
    digest: str

    def at(self, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
        """(RGB uint8, alpha float32 (H, W, 1) or None) scaled to ``shape`` (height, width)."""
        from ...images import resize

        h, w = shape
        if self.image.shape[:2] == (h, w):
            image = self.image
        else:
            image = resize(self.image, h, w)
        alpha = None
        if self.alpha is not None:
            import cv2

            alpha = cv2.resize(self.alpha, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        return image, alpha


def read_painting(index: int, path: str) -> Painting:
    """The painting file at ``path`` for frame ``index``; a file that cannot be read: a one-line UserError."""
    import cv2

    from ...images import to_rgb8

    what = f"--keyframe-image {index}={path}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"{what}: cannot be read ({exc.strerror or exc})") from None
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if raw is None:
        raise UserError(f"{what}: cannot be read as an image (not an image file, or damaged)")
    alpha = None
    if raw.ndim == 3 and raw.shape[2] == 4:
        top = 65535.0 if raw.dtype == np.uint16 else 255.0 if raw.dtype == np.uint8 else 1.0
        alpha = np.clip(raw[..., 3].astype(np.float32) / top, 0.0, 1.0)
        if alpha.min() >= 1.0:  # an opaque alpha channel: the painting applies everywhere
            alpha = None
        raw = raw[..., :3]
    return Painting(index, path, to_rgb8(raw, bgr=True), alpha, hashlib.sha256(data).hexdigest()[:16])


def read_paintings(specs) -> dict[int, Painting]:
    """{frame: Painting} of the option's items ((frame, path) pairs); a frame given twice is refused."""
    paintings: dict[int, Painting] = {}
    for index, path in specs or ():
        if index in paintings:
            raise UserError(f"--keyframe-image: frame {index} is given twice ({paintings[index].path}, {path})")
        paintings[index] = read_painting(index, path)
    return paintings


def check_paintings(paintings: dict[int, Painting], plan, styles, out_shape: tuple[int, int]) -> None:
    """Refused with one line before any work: a painting of a frame this run does not make, one whose aspect
    ratio is not the frame's, and a shot with neither a painting nor a style to stylize its keyframes. A
    painting much smaller than the output (``out_shape``, (height, width)) is a warning: it paints its shot soft."""
    import warnings

    from ...video.sources import ranges_text

    frames = {i for shot in plan.shots for i in shot.frames}
    outside = sorted(k for k in paintings if k not in frames)
    if outside:
        every = sorted(frames)
        raise UserError(f"--keyframe-image {','.join(map(str, outside))}: not among the frames of this run "
                        f"({ranges_text(every)})")
    h, w = plan.shape
    for painting in paintings.values():
        ph, pw = painting.image.shape[:2]
        if abs((pw / ph) / (w / h) - 1.0) > ASPECT_TOLERANCE:
            raise UserError(f"--keyframe-image {painting.index}={painting.path}: {pw}x{ph} is not the shape of the "
                            f"frames ({w}x{h}); scale or crop it to their aspect ratio")
        enlarged = max(out_shape) / max(ph, pw)
        if enlarged > ENLARGED_WARNING:
            warnings.warn(f"--keyframe-image {painting.index}={painting.path}: {pw}x{ph} is enlarged {enlarged:.1f}x "
                          f"to the output's {out_shape[1]}x{out_shape[0]}, and its shot will be as soft; paint at the "
                          f"output's size (the output folder's frame_{painting.index:06d}.png is)", UserWarning,
                          stacklevel=2)
    if not styles:
        bare = [shot for shot in plan.shots if not any(k in paintings for k in shot.frames)]
        if bare:
            raise UserError(f"no --style, and frames {ranges_text(bare[0].frames)} (shot {bare[0].number}) have no "
                            "--keyframe-image: give a style, or a painted keyframe for every shot")


def apply_to_plan(plan, paintings: dict[int, Painting]) -> None:
    """A shot with painted keyframes has them as its keyframes (the frame engine makes none there, and no
    keyframe of it starts from another)."""
    for shot in plan.shots:
        painted = sorted(k for k in paintings if k in set(shot.frames))
        if painted:
            shot.keyframes = painted
    kept = set(plan.keyframes)
    plan.starts = {k: v for k, v in plan.starts.items() if k in kept and k not in paintings}


def over(painting: np.ndarray, alpha: np.ndarray | None, base: np.ndarray) -> np.ndarray:
    """``painting`` laid over ``base`` (float RGB 0..255) by its ``alpha``; opaque: the painting itself."""
    if alpha is None:
        return np.asarray(painting, np.float32)
    return alpha * np.asarray(painting, np.float32) + (1.0 - alpha) * np.asarray(base, np.float32)


def texture(painting: Painting, shape: tuple[int, int]) -> np.ndarray:
    """What the painted shot's texture track carries from ``painting``: its RGB at ``shape`` (float32), with its
    alpha (0..255) as a fourth channel when it has one, so that the carried painting applies where it did."""
    image, alpha = painting.at(shape)
    image = np.asarray(image, np.float32)
    return image if alpha is None else np.concatenate([image, alpha * 255.0], axis=-1)


class Reaches(NamedTuple):
    """A frame of a painted shot within reach of the painting after it: the painting before it carried forward
    (:class:`~.transport.Carried`, None before the shot's first painting) and the one after it carried back to
    it (:func:`carried_back`)."""

    forward: object
    backward: object


def lay(image: np.ndarray, carried, since: int, frames: float, until: int | None = None) -> np.ndarray:
    """The network's frame ``image`` (float RGB 0..255) under the painting carried to it along the flow
    (``carried``: :class:`~.transport.Carried` of :func:`texture`), weighted by how far the flow is trusted
    there (``carried.trust``), the painting's alpha, and exp(-``since`` / ``frames``), ``since`` the frames
    since the painting: near it the carried painting is sharper than the network's frame, further on it
    drifts. ``carried`` a :class:`Reaches`: also the painting after it carried back, ``until`` frames ahead, by
    the same weight tapered to none at ``frames`` frames (where the backward pass starts, :func:`carried_back`);
    where both weigh more than 1 together, shared in proportion. ``carried`` None or ``frames`` 0: the frame."""
    image = np.asarray(image, np.float32)
    if carried is None or not frames > 0:
        return image
    if not isinstance(carried, Reaches):
        carried = Reaches(carried, None)
    layers = []
    if carried.forward is not None:
        layers.append(_weighed(carried.forward, since, frames))
    if carried.backward is not None and until is not None:
        picture, weight = _weighed(carried.backward, until, frames)
        layers.append((picture, weight * max(0.0, 1.0 - until / frames)))
    if not layers:
        return image
    total = sum(weight for _, weight in layers)
    share = np.maximum(total, 1.0)
    out = (1.0 - total / share) * image
    for picture, weight in layers:
        out = out + (weight / share) * picture
    return out


def _weighed(carried, distance: int, frames: float) -> tuple[np.ndarray, np.ndarray]:
    """(the carried painting's RGB float32, its weight (H, W, 1)): the flow's trust, the painting's alpha and
    exp(-``distance`` / ``frames``)."""
    picture = carried.image.astype(np.float32)
    weight = carried.trust.astype(np.float32) * (np.exp(-distance / frames) / 255.0)
    if picture.shape[-1] == 4:
        weight = weight * (picture[..., 3] / 255.0)
        picture = picture[..., :3]
    return picture, weight[..., None]


def carried_back(items: Iterator, shot_of: dict, run_for) -> Iterator:
    """``items`` ((index, frame, guide, carried) in order, :meth:`_Run.guided`) with each painting carried back
    along the flow over the frames of its shot before it, within its painted run's ``carry_frames`` frames:
    those frames' ``carried`` become :class:`Reaches`. They are held until their painting's frame comes (at most
    ``carry_frames`` of them), then a texture track runs back from the painting over them. ``run_for(shot)``:
    the run that makes a shot (its painted variant for a painted shot)."""
    held: list = []
    for item in items:
        index = item[0]
        shot = shot_of.get(index)
        run = run_for(shot) if shot is not None else None
        reach = int(round(run.carry_frames)) if run is not None and run.paintings else 0
        if held:
            waiting = shot_of[held[0][0]]
            if shot is waiting and index in shot.keyframes:  # the painting they wait for
                yield from _back_from(held, item, run_for(waiting))
                held = []
                continue
            if shot is not waiting:  # a cut came first (the shot's painting is not among the items)
                yield from held
                held = []
        ahead = [k for k in (shot.keyframes if reach else ()) if k > index and k in run.paintings]
        if ahead and min(ahead) - index < reach:
            held.append(item)
        else:
            yield item
    if held:  # the shot ended before the painting came (frames not made this run): as they were
        yield from held


def _back_from(held: list, painting_item, run) -> Iterator:
    """The ``held`` items with the painting of ``painting_item`` carried back over them (newest first along
    the flow), then that item."""
    import time

    t0 = time.perf_counter()
    track = run.texture_track()
    track.start(run.painted_texture(painting_item[0]))
    track.next(painting_item[1])
    back = {}
    for index, frame, *_ in reversed(held):
        back[index] = track.next(frame)
    seconds = (time.perf_counter() - t0) / len(held)
    for index, frame, guide, carried in held:
        run.track_seconds[index] = run.track_seconds.get(index, 0.0) + seconds
        yield index, frame, guide, Reaches(carried, back[index])
    run.timings["tracks"] += seconds * len(held)
    yield painting_item


def painted_run(run, options: dict):
    """The run as a shot with painted keyframes makes it: the network at the output size, trained on the
    paintings for ``keyframes.painted_steps`` (no plateau stop; ``keyframes.seconds`` still caps it), with the
    guide only if ``keyframes.painted_guide``, and no texture transport: the painting itself is carried along the
    flow and laid over the network's frames near it (``keyframes.painted_carry``, :func:`lay`). It shares the
    run's store, timings and reports."""
    from .guides import CHANNELS, GuideSettings
    from .network import NetworkShape

    painted = copy.copy(run)
    painted.net_shape = run.out_shape
    guide = options["painted_guide"]
    painted.guides = GuideSettings(scale=guide * max(run.out_shape) / max(run.key_shape), seed=options["seed"]) if guide else None
    painted.shape = NetworkShape(guides=CHANNELS if painted.guides is not None else 0)
    painted.transport = 0.0
    painted.carry_frames = options["painted_carry"]  # the painting carried along the flow over the frames (:func:`lay`)
    painted.flow_side = PAINTED_FLOW_SIDE  # (a smaller output: its own size, ``guides.flow_size``)
    painted.squeeze = SQUEEZE
    # a fixed number of steps: the plateau rule stopped at 900 of them, 2 dB short (measured)
    painted.settings = replace(run.settings, max_steps=options["painted_steps"], patience=options["painted_steps"] + 1)
    painted.painted = None
    return painted
