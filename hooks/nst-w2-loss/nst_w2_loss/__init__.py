"""nst-w2-loss: a style loss that matches the mean and covariance of the features, not the Gram matrix.

Each style layer's activations are summarised as a Gaussian (mean ``mu``, covariance ``C``); the loss is the
squared Wasserstein-2 distance between the image's Gaussian and the style's, per channel::

    W2^2 = |mu - mu_s|^2 + tr(C) + tr(C_s) - 2 tr((C_s^1/2 C C_s^1/2)^1/2)

(Dowson & Landau 1982; used for style transfer by Mroueh 2019, "Wasserstein Style Transfer", and Kolkin et
al. 2019). The Gram matrix ``F^T F / n = C + mu mu^T`` mixes mean and covariance into one number per pair
of channels and has no natural scale; W2 is a true distance between distributions, is zero only when mean
and covariance both match, and is in units of squared activations, like the content loss, so weights of
order 1 work.

``C_s^1/2`` is computed once per run (``prepare_styles``); per evaluation the loss needs one ``c x c``
symmetric eigenvalue problem per layer, in float64. Several style images blend as a mixture: the target is
the Gaussian with the mixture's mean and covariance.

Select it with ``nst image ... --loss w2=1`` (next to the Gram loss) or ``--style-weight 0 --loss w2=1``
(instead of it). It uses the run's ``--style-layers`` and ``--style-layer-weights``.
"""

from __future__ import annotations

import numpy as np

from nst_plugin import LossSettings, LossTerm, PluginOption, UserError, hookimpl

__version__ = "0.1.0"
EPS = 1e-6  # eigenvalues below this (relative to the largest) are treated as 0: sqrt has no finite slope at 0


@hookimpl
def nst_register_losses(register):
    register("w2", W2StyleLoss, "Wasserstein-2 distance between Gaussian fits (mean + covariance) of the style features",
             options=[PluginOption("eps", float, EPS, "eigenvalues below eps x the largest count as 0 (sqrt's slope)")])


# -- numpy reference (tests, benchmarks, prepare_styles) ------------------------------------------------


def gaussian(features) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of an activation (..., c), over all positions, in float64."""
    x = np.asarray(features, np.float64).reshape(-1, np.shape(features)[-1])
    mu = x.mean(axis=0)
    xc = x - mu
    return mu, xc.T @ xc / x.shape[0]


def sqrtm_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative rounding noise clipped to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def w2_squared(mu1, cov1, mu2, cov2) -> float:
    """Squared Wasserstein-2 distance between N(mu1, cov1) and N(mu2, cov2)."""
    root2 = sqrtm_psd(cov2)
    middle = np.linalg.eigvalsh(root2 @ cov1 @ root2)
    cross = np.sqrt(np.clip(middle, 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2 * cross)


def blend(gaussians: list[tuple[np.ndarray, np.ndarray, float]]) -> tuple[np.ndarray, np.ndarray]:
    """The mean and covariance of a mixture ``[(mu, cov, weight), ...]`` (weights sum to 1)."""
    mu = sum(w * m for m, _, w in gaussians)
    second = sum(w * (c + np.outer(m, m)) for m, c, w in gaussians)
    return mu, second - np.outer(mu, mu)


# -- the loss term --------------------------------------------------------------------------------------


class W2StyleLoss(LossTerm):
    """Unweighted value: sum over style layers of (layer weight) * W2^2 / channels."""

    def __init__(self, settings: LossSettings):
        config = settings.config
        self.layers = tuple(config.style_layers)
        total = sum(config.style_layer_weights)
        self.layer_weights = tuple(w / total if total else 0.0 for w in config.style_layer_weights)
        self.targets: dict[str, dict[str, np.ndarray]] = {}
        self.eps = float(settings.options.get("eps", EPS))
        if not 0 < self.eps < 1:
            raise UserError(f"--option w2.eps must be between 0 and 1, got {self.eps}")

    def prepare_styles(self, styles):
        for layer in self.layers:
            parts = [(*gaussian(_numpy(features[layer])), weight) for features, weight in styles]
            mu, cov = blend(parts)
            self.targets[layer] = {"mean": mu, "root": sqrtm_psd(cov), "trace": np.array(np.trace(cov))}

    def frame_targets(self, frame):
        return {layer: self.targets[layer] for layer in self.layers}

    def loss(self, image, features, targets):
        from keras import ops

        wide = _wide_dtype()  # the eigenvalues in float64 where the backend allows it
        total = 0.0
        for layer, weight in zip(self.layers, self.layer_weights):
            f = features[layer]
            channels = f.shape[-1]
            x = ops.reshape(f, (-1, channels))
            n = ops.cast(ops.shape(x)[0], "float32")
            mu = ops.mean(x, axis=0)
            xc = x - mu
            cov = ops.cast(ops.matmul(ops.transpose(xc), xc) / n, wide)
            t = targets[layer]
            root = ops.cast(t["root"], wide)
            # einsum, not matmul: Keras 3.15's PyTorch matmul returns float32 for float64 inputs
            middle = ops.einsum("ij,jk,kl->il", root, cov, root)
            values, _ = ops.eigh((middle + ops.transpose(middle)) / 2)
            floor = self.eps * ops.maximum(ops.max(values), 1e-12)
            cross = ops.sum(ops.sqrt(ops.maximum(values, floor)))
            w2 = ops.trace(cov) + ops.cast(t["trace"], wide) - 2.0 * cross
            w2 = ops.cast(w2, "float32") + ops.sum(ops.square(mu - ops.cast(t["mean"], "float32")))
            total = total + weight * ops.maximum(w2, 0.0) / channels
        return total


def _numpy(tensor) -> np.ndarray:
    from keras import ops

    return ops.convert_to_numpy(tensor)


def _wide_dtype() -> str:
    """float64 on TensorFlow and PyTorch; on JAX only when x64 is enabled (else float32, JAX's default)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    return "float64"
