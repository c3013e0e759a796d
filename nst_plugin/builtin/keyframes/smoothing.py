"""A flow-aligned temporal filter over the network's frames, and the chunks with margins it needs.

The network stylizes every frame on its own, and its strokes shift a little from one frame to the next where
the picture moves (flicker, nearly all of it fine detail). :func:`smooth` makes frame t the weighted mean of
the network's frames t-r .. t+r of the same shot, each moved onto frame t by DIS optical flow between the
source frames where that flow can be trusted (:func:`nst_plugin.flow.trust_mask`; elsewhere a neighbour does
not count), weights halving with each frame of distance. The strokes that move with the picture stay; what
only one frame drew fades.

A frame still depends on the source and on its own shot's network only (no chain of outputs), so frames are
made in any order and in parallel: :func:`windows` cuts a shot into chunks that carry ``r`` frames of margin
on each side, and a chunk makes the same frames wherever and whenever it runs.

Design, measurements and history: docs/design/keyframes.md#the-temporal-filter
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np


def tap_weights(radius: int) -> tuple[float, ...]:
    """The weight of the frame itself and of its neighbours 1 .. ``radius`` frames away."""
    return tuple(0.5 ** k for k in range(radius + 1))


PRESET = "medium"  # the DIS preset of the filter's flows


class FlowCache:
    """DIS flows between the (network-size) source frames of a chunk, each pair computed once; ``known``:
    {(a, b): the flow from a to b} already computed the same way (the texture track's, between neighbours:
    the same frames at the same size and preset give the same flow, bit for bit)."""

    def __init__(self, sources: dict[int, np.ndarray], preset: str | None = None,
                 known: dict[tuple[int, int], np.ndarray] | None = None):
        self.sources = sources
        self.preset = preset or PRESET
        self._flows: dict[tuple[int, int], np.ndarray] = {
            pair: f for pair, f in (known or {}).items() if pair[0] in sources and pair[1] in sources}

    def __call__(self, a: int, b: int) -> np.ndarray:
        from ...flow import flow

        if (a, b) not in self._flows:
            self._flows[(a, b)] = flow(self.sources[a], self.sources[b], self.preset)
        return self._flows[(a, b)]


def smooth(index: int, frames: dict[int, np.ndarray], sources: dict[int, np.ndarray], radius: int,
           flows: FlowCache | None = None) -> np.ndarray:
    """Frame ``index`` of ``frames`` (float RGB 0..255, the network's) averaged with its neighbours up to
    ``radius`` frames away that ``frames`` holds (the caller keeps them within the shot), each warped onto it
    by the flow between the ``sources`` frames (same size) where :func:`~nst_plugin.flow.trust_mask` trusts
    it."""
    from ...flow import trust_mask, warp

    flows = flows if flows is not None else FlowCache(sources)
    weights = tap_weights(radius)
    total = np.asarray(frames[index], np.float32) * weights[0]
    weight = np.full(total.shape[:2] + (1,), weights[0], np.float32)
    for distance in range(1, radius + 1):
        for other in (index - distance, index + distance):
            if other not in frames:
                continue
            backward, forward = flows(index, other), flows(other, index)
            trusted = trust_mask(sources[index], sources[other], backward, forward)[..., None] * weights[distance]
            total += trusted * warp(np.asarray(frames[other], np.float32), backward)
            weight += trusted
    return total / weight


def windows(items: Iterable[tuple], shot_of: Callable[[int], int], wanted: Callable[[int], bool], radius: int,
            size: int) -> Iterator[tuple[list[tuple], list[int]]]:
    """Cut ``items`` (tuples whose first element is a frame index, in the source's order) into chunks of at
    most ``size`` consecutive frames of one shot, each with up to ``radius`` frames of the same shot before
    and after it as margin (``shot_of``: a frame's shot number). Yields ``(items of the chunk with its margins, the indices to make)``, the
    indices being the chunk's ``wanted`` ones; a chunk with none is not yielded. Holds at most
    ``size + 2 * radius`` items."""
    shot, held, start = None, [], 0  # held: the current shot's items from the next chunk's margin on

    def cut(final: bool):
        nonlocal held, start
        while len(held) - start >= (1 if final else size + radius):
            core = held[start:start + size]
            emit = [item[0] for item in core if wanted(item[0])]
            if emit:
                yield held[max(0, start - radius):start + size + radius], emit
            start += len(core)
            held, start = held[max(0, start - radius):], min(start, radius)

    for item in items:
        if shot_of(item[0]) != shot:
            yield from cut(final=True)
            shot, held, start = shot_of(item[0]), [], 0
        held.append(item)
        yield from cut(final=False)
    yield from cut(final=True)


def needed(items: list[tuple], emit: Iterable[int], radius: int) -> set[int]:
    """The indices among ``items`` (a chunk with its margins) whose network frames the frames ``emit`` need:
    those and their neighbours up to ``radius`` frames away."""
    position = {item[0]: p for p, item in enumerate(items)}
    out = set()
    for index in emit:
        p = position[index]
        out.update(item[0] for item in items[max(0, p - radius):p + radius + 1])
    return out
