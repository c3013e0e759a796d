"""Built-in optimizer plugin: SciPy L-BFGS-B (the article's ``fmin_l_bfgs_b``) and Adam."""

from __future__ import annotations

import numpy as np

from ..hookspecs import hookimpl
from ..optim import Callback, Problem


@hookimpl
def nst_register_optimizers(register):
    register("lbfgs", LBFGS, "SciPy L-BFGS-B over the pixels, with pixel bounds (the article's optimizer)")
    register("adam", Adam, "Adam over the pixels, projected onto the pixel range; --learning-rate in pixel units")


class LBFGS:
    """L-BFGS-B: float64 only at the SciPy boundary, bounds keep every pixel in range (no clipping after)."""

    def __init__(self, config):
        self.config = config

    def minimize(self, problem: Problem, callback: Callback) -> np.ndarray:
        from scipy.optimize import Bounds, minimize

        shape = problem.x0.shape
        state = {"iteration": 0, "x": problem.x0.astype(np.float64).ravel(), "loss": None}

        def fun(x64):
            loss, grad = problem.value_and_grad(x64.reshape(shape).astype(np.float32))
            state["loss"] = loss
            return float(loss), grad.astype(np.float64).ravel()

        def on_iteration(intermediate_result):
            state["iteration"] += 1
            state["x"] = intermediate_result.x
            if callback(state["iteration"], float(intermediate_result.fun)):
                raise StopIteration

        options = {"maxiter": problem.max_iterations, "maxcor": 10}
        if problem.max_evaluations is not None:
            options["maxfun"] = problem.max_evaluations
        else:
            options["maxfun"] = max(problem.max_iterations * 2, 20)
        result = minimize(
            fun,
            state["x"],
            jac=True,
            method="L-BFGS-B",
            bounds=Bounds(np.full(state["x"].size, problem.lower), np.full(state["x"].size, problem.upper)),
            options=options,
            callback=on_iteration,
        )
        return result.x.reshape(shape).astype(np.float32)


class Adam:
    """Projected Adam in numpy: every step is clipped back into the pixel range."""

    def __init__(self, config, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.learning_rate = config.learning_rate
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def minimize(self, problem: Problem, callback: Callback) -> np.ndarray:
        x = problem.x0.astype(np.float32).copy()
        m = np.zeros_like(x)
        v = np.zeros_like(x)
        steps = problem.max_iterations
        if problem.max_evaluations is not None:
            steps = min(steps, problem.max_evaluations)
        for t in range(1, steps + 1):
            loss, grad = problem.value_and_grad(x)
            m = self.beta1 * m + (1 - self.beta1) * grad
            v = self.beta2 * v + (1 - self.beta2) * grad * grad
            m_hat = m / (1 - self.beta1**t)
            v_hat = v / (1 - self.beta2**t)
            x = np.clip(x - self.learning_rate * m_hat / (np.sqrt(v_hat) + self.eps), problem.lower, problem.upper)
            if callback(t, float(loss)):
                break
        return x
