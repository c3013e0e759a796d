"""The optimizer interface. An optimizer plugin registers a factory ``factory(config) -> optimizer`` whose
``minimize(problem, callback)`` returns the optimised image.

The engine owns the objective: ``problem.value_and_grad(x)`` takes and returns float32 arrays of the
image's shape. ``callback(iteration, loss)`` is called once per iteration; when it returns ``True`` the
optimizer stops and returns its current image. A non-finite loss raises :class:`NonFiniteLoss` from
``value_and_grad``: let it propagate, the engine keeps the best image seen so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


class NonFiniteLoss(FloatingPointError):
    """The loss or its gradient turned NaN or infinite."""


@dataclass
class Problem:
    x0: np.ndarray  # float32 (H, W, 3), RGB 0..255
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]]
    lower: float = 0.0
    upper: float = 255.0
    max_iterations: int = 100
    max_evaluations: int | None = None


Callback = Callable[[int, float], bool]
