"""A video job's mask (``--mask``, :mod:`nst_plugin.masks`): between the engine and the output folder.

The engine never sees the mask: it makes and chains its own (unmasked) frames, which the folder keeps as
artifacts (``unmasked_NNNNNN.png``) and hands back to a resumed run, so a resumed run makes the frames of an
uninterrupted one and any engine (``lbfgs``, ``keyframes``, a plugin's) is masked the same way. The frame the
folder shows is ``mask * styled + (1 - mask) * source`` at the output size; its record keeps the digest of
its mask frame (``mask``), so a run with a changed mask composites again only the frames whose mask changed,
from their unmasked frames, without the engine. The folder's settings hash leaves the mask out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Callable, Iterable, Iterator

import numpy as np

from ..errors import UserError
from ..images import load_image, resize, save_image
from ..masks import MaskSource, composite
from ..result import FrameResult
from .output import FrameRecord, OutputFolder
from .sources import FrameSource, _ignore

UNMASKED = "unmasked_{:06d}.png"  # the engine's own frame, kept while the folder's frame is masked
UNMASKED_KEY = "engine output"
KEEP_BYTES = 256 * 2**20  # source frames kept after the engine read them, for their composite (at least 2)


class SourceLookup:
    """Source frames by index, for their composite: the ones the engine read lately are kept; any other is
    read again (a file source, forward in order; a camera cannot be read again)."""

    def __init__(self, source: FrameSource, keep_bytes: int = KEEP_BYTES):
        self.source, self.keep_bytes = source, keep_bytes
        self.kept: OrderedDict[int, np.ndarray] = OrderedDict()
        self._reader: Iterator | None = None
        self._position = 0

    def watch(self, frames: Iterable) -> Iterable:
        """``frames`` as the engine gets them (re-readable or one pass, as they were), each one kept."""
        if iter(frames) is frames:
            return (self._keep(index, frame) for index, frame in frames)
        return _Watched(self, frames)

    def _keep(self, index: int, frame: np.ndarray) -> tuple[int, np.ndarray]:
        self.kept[index] = frame
        self.kept.move_to_end(index)
        while len(self.kept) > 2 and sum(f.nbytes for f in self.kept.values()) > self.keep_bytes:
            self.kept.popitem(last=False)
        return index, frame

    def get(self, index: int) -> np.ndarray:
        if index in self.kept:
            return self.kept[index]
        if self.source.kind == "camera":
            raise RuntimeError(f"camera frame {index} is gone before its mask was applied")
        if self._reader is None or index <= self._position:
            self._reader, self._position = self.source.read(_ignore), 0
        for found, frame in self._reader:
            self._position = found
            if found == index:
                return frame
            if found > index:
                break
        self._reader = None
        raise UserError(f"frame {index} of {self.source.spec!r} cannot be read again to apply its mask")


class _Watched:
    def __init__(self, lookup: SourceLookup, frames: Iterable):
        self.lookup, self.frames = lookup, frames

    def __iter__(self):
        return (self.lookup._keep(index, frame) for index, frame in self.frames)


class MaskedOutput:
    """The mask's part of one job: the engine's resume (its own frames), the frames whose mask changed, and
    the sink that composites each new frame. ``mask`` None: no mask this run (a folder masked before gets its
    unmasked frames back)."""

    def __init__(self, folder: OutputFolder, source: FrameSource, mask: MaskSource | None):
        self.folder, self.source, self.mask = folder, source, mask
        self.lookup = SourceLookup(source)

    @staticmethod
    def needed(folder: OutputFolder, mask: MaskSource | None) -> bool:
        return mask is not None or any(record.mask for record in folder.frames.values())

    def digest(self, index: int) -> str | None:
        return self.mask.digest(index) if self.mask is not None else None

    def _unmasked(self, index: int, record: FrameRecord) -> Callable[[], np.ndarray] | None:
        """A loader of the engine's own frame ``index``: the folder's frame when it was not masked, else its
        kept unmasked frame (None when that is gone: the frame is made again)."""
        if record.mask is None:
            path = self.folder.frame_path(index)
        else:
            path = self.folder.get(UNMASKED.format(index), UNMASKED_KEY)
            if path is None:
                return None
        return lambda: load_image(path, "finished frame")

    def resume(self):
        """What the engine gets of the finished frames: its own frames, their keys and states."""
        from ..context import Resume

        frames = {}
        for index, record in self.folder.frames.items():
            if record.status == "done" and (loader := self._unmasked(index, record)) is not None:
                frames[index] = loader
        return Resume(frames=frames, keys={i: k for i, k in self.folder.done_keys().items() if i in frames},
                      states={i: s for i, s in self.folder.done_states().items() if i in frames})

    def changed(self, indices: Iterable[int]) -> list[int]:
        """The finished frames among ``indices`` whose mask is not the one they were composited with."""
        return [i for i in sorted(indices) if self.folder.frames[i].mask != self.digest(i)]

    def again(self, index: int, unmasked: Callable[[], np.ndarray]) -> FrameResult:
        """Finished frame ``index`` composited with this run's mask, from its unmasked frame; its record's
        values are kept."""
        record = self.folder.frames[index]
        styled = unmasked()
        if record.mask is None:  # the folder's frame becomes masked: keep the engine's first
            self._keep_unmasked(index, styled)
        stats = {"seconds": record.seconds, "loss": record.loss, "evaluations": record.evaluations,
                 "key": record.key, "shot": record.shot, "warm": record.warm, "status": record.result,
                 "frame_settings": record.settings, "state": record.state}
        image, digest = self._composite(index, styled)
        return FrameResult(image, {**stats, "mask": digest})

    def wrap(self, sink: Callable) -> Callable:
        """``sink`` for the engine: each new frame kept unmasked, then composited with its mask."""
        def masked(index, result):
            styled = np.asarray(result.image)
            if self.mask is not None:
                self._keep_unmasked(index, styled)
            image, digest = self._composite(index, styled)
            sink(index, replace(result, image=image, stats={**result.stats, "mask": digest}))

        return masked

    def _keep_unmasked(self, index: int, styled: np.ndarray) -> None:
        self.folder.put(UNMASKED.format(index), UNMASKED_KEY, lambda tmp: save_image(tmp, styled))

    def _composite(self, index: int, styled: np.ndarray) -> tuple[np.ndarray, str | None]:
        if self.mask is None:
            return styled, None
        height, width = styled.shape[:2]
        source = resize(self.lookup.get(index), height, width)
        return composite(styled, source, self.mask.at(index, height, width)), self.mask.digest(index)
