"""nst-adam-ema: Adam over the pixels, returning an exponential moving average (EMA) of the iterates.

Adam with a constant step keeps jittering around the minimum: every pixel moves by about the learning rate
on every step, which shows as high-frequency noise in the image. Averaging the iterates (Polyak-Ruppert
averaging, in its exponential form) cancels most of that jitter at no cost per step.

nst-plugin's engine keeps the best image *it evaluated*, so at the end of each round this optimizer evaluates
the averaged image once (one extra loss evaluation per round) and returns it if its loss is lower than the
last iterate's; the engine then keeps whichever of all evaluated images had the lowest loss.

Select it with ``nst image ... --optimizer adam-ema`` (``--learning-rate`` in pixel units, as for ``adam``).
"""

from __future__ import annotations

import numpy as np

from nst_plugin import PluginOption, Problem, UserError, hookimpl

__version__ = "0.1.0"
DECAY = 0.9


@hookimpl
def nst_register_optimizers(register):
    register("adam-ema", AdamEMA, "Adam over the pixels with an exponential moving average of the iterates",
             options=[PluginOption("decay", float, DECAY, "weight of the running average per step (0..1)")])


class AdamEMA:
    """Projected Adam; returns the bias-corrected EMA of the iterates (or the last iterate, if better)."""

    def __init__(self, config, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, decay: float | None = None):
        if decay is None:
            decay = config.option("adam-ema.decay", DECAY) if hasattr(config, "option") else DECAY
        if not 0 <= decay < 1:
            raise UserError(f"--option adam-ema.decay must be at least 0 and below 1, got {decay}")
        self.learning_rate = config.learning_rate
        self.beta1, self.beta2, self.eps, self.decay = beta1, beta2, eps, decay
        self.last: dict = {}  # what the last round did (tests, benchmarks)

    def minimize(self, problem: Problem, callback) -> np.ndarray:
        x = problem.x0.astype(np.float32).copy()
        m = np.zeros_like(x)
        v = np.zeros_like(x)
        average = np.zeros_like(x)
        steps = problem.max_iterations
        if problem.max_evaluations is not None:
            steps = max(1, min(steps, problem.max_evaluations - 1))  # keep one evaluation for the average
        t = 0
        loss = float("inf")
        for t in range(1, steps + 1):
            loss, grad = problem.value_and_grad(x)
            m = self.beta1 * m + (1 - self.beta1) * grad
            v = self.beta2 * v + (1 - self.beta2) * grad * grad
            m_hat = m / (1 - self.beta1**t)
            v_hat = v / (1 - self.beta2**t)
            x = np.clip(x - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps), problem.lower, problem.upper)
            average = self.decay * average + (1 - self.decay) * x
            if callback(t, float(loss)):
                break
        if t == 0:
            return x
        averaged = np.clip(average / (1 - self.decay**t), problem.lower, problem.upper).astype(np.float32)
        averaged_loss, _ = problem.value_and_grad(averaged)  # the engine keeps it if it is the best so far
        self.last = {"steps": t, "last_evaluated_loss": float(loss), "average_loss": float(averaged_loss)}
        return averaged if averaged_loss <= loss else x
