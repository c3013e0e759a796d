"""The backbone interface: a feature extractor, built by a factory registered with ``nst_register_backbones``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a backbone runs with; written into every run's metadata."""

    source: str  # "imagenet", "hed", "file"
    path: str | None = None
    fallback: bool = False  # True when these are not the weights the method was designed for
    note: str = ""


class Backbone:
    """A feature extractor. ``extractor(layers)`` returns ``f(images) -> {layer: activation}`` where
    ``images`` is a float32 batch (N, H, W, 3), RGB 0..255; it does its own preprocessing and stops at the
    deepest layer asked for."""

    name: str = ""
    layers: tuple[str, ...] = ()
    weights: WeightsInfo = WeightsInfo("none")

    def extractor(self, layers: tuple[str, ...]) -> Callable[[Any], Mapping[str, Any]]:
        raise NotImplementedError
