"""The loss-term interface. A loss plugin subclasses :class:`LossTerm` and registers a factory.

One backbone forward pass per evaluation feeds every term: a term names the layers it needs in ``layers``
and gets their activations in :meth:`LossTerm.loss`. Targets that do not change between frames (a style's
Gram matrices) are computed once in :meth:`LossTerm.prepare_styles`; per-frame targets (the content's
features, a warped previous frame) come from :meth:`LossTerm.frame_targets` and reach :meth:`LossTerm.loss`
as tensors, so the compiled loss-and-gradient function is traced once per image size, not once per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .context import FrameControls


@dataclass(frozen=True)
class LossSettings:
    """What a loss factory receives."""

    name: str  # the name the loss was selected by
    weight: float  # applied by the engine; a term returns its unweighted value
    config: Any  # nst_plugin.config.StyleConfig
    backbone_layers: tuple[str, ...]  # every layer the backbone offers, shallow to deep
    options: Mapping[str, Any] = field(default_factory=dict)  # this loss's declared options, user values applied


@dataclass
class FrameInputs:
    """What a term may build per-frame targets from."""

    content: Any  # float32 array (H, W, 3), RGB 0..255, at the working size
    content_features: Mapping[str, Any]  # layer name -> tensor (1, h, w, c), for the layers the terms need
    controls: FrameControls = field(default_factory=FrameControls)  # e.g. controls.previous (video)


class LossTerm:
    """Base class of a loss term. Override what you need; every method has a harmless default."""

    #: backbone layers whose activations this term reads
    layers: tuple[str, ...] = ()

    def prepare_styles(self, styles: list[tuple[Mapping[str, Any], float]]) -> None:
        """Called once per run with ``[(features of a style image, blend weight), ...]`` (weights sum to 1)."""

    def frame_targets(self, frame: FrameInputs) -> dict[str, Any]:
        """Tensors or arrays that :meth:`loss` needs for this frame. Keys are yours."""
        return {}

    def loss(self, image, features: Mapping[str, Any], targets: Mapping[str, Any]):
        """The unweighted loss, a scalar tensor. ``image``: (1, H, W, 3) RGB 0..255 being optimised;
        ``features``: layer -> activation of ``image``. Runs inside the engine's compiled step on the active
        Keras backend: use ``keras.ops`` (docs/plugins.md, "Backends")."""
        raise NotImplementedError
