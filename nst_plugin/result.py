"""What the work hooks return."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FrameResult:
    image: np.ndarray  # uint8 (H, W, 3), RGB
    stats: dict[str, Any] = field(default_factory=dict)  # loss, losses, evaluations, seconds, weights, ...

    @property
    def loss(self) -> float | None:
        return self.stats.get("loss")


@dataclass
class SequenceResult:
    frames: int = 0
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
