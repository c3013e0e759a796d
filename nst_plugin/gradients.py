"""Loss and gradient with respect to the input image, on whichever Keras backend runs.

Keras has no backend-neutral gradient call (keras-team/keras#19220). The losses and the backbone are
written once with ``keras.ops`` and Keras layers; this module holds the one small function per backend that
differentiates them, in the idiom of the Keras guides on custom training steps:

* TensorFlow: ``tf.GradientTape`` inside one ``tf.function`` (traced once per image size, each size its
  own graph: the result does not depend on the sizes computed before);
* JAX: ``jax.value_and_grad`` of a pure function, jitted; the backbone's weights enter as arguments through
  ``keras.StatelessScope`` (the JAX form of ``stateless_call``) rather than as constants baked into the
  compiled program;
* PyTorch: autograd on the input tensor (``torch.autograd.grad``: no gradient is kept for the weights).

The optimizer sees NumPy on both sides: float32 pixels in, ``(loss, {term: value}, gradient)`` out.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

# loss_fn(image (1, H, W, 3) tensor, targets) -> (total scalar tensor, {name: scalar tensor})
LossFn = Callable[[Any, Mapping[str, Any]], tuple[Any, Mapping[str, Any]]]
# step(image (1, H, W, 3) float32 array, targets) -> (total, {name: value}, gradient (1, H, W, 3) float32)
Step = Callable[[np.ndarray, Mapping[str, Any]], tuple[float, dict[str, float], np.ndarray]]


def to_tensors(tree):
    """Arrays and numbers of a nested structure -> float32 tensors of the active backend (on its device)."""
    import keras

    return keras.tree.map_structure(lambda t: keras.ops.convert_to_tensor(t, "float32"), tree)


def _numpy(total, parts, grad, x) -> tuple[float, dict[str, float], np.ndarray]:
    from keras import ops

    # no gradient (a loss that does not depend on the pixels): zeros, as JAX gives
    grad = np.zeros(np.shape(x), np.float32) if grad is None else np.asarray(ops.convert_to_numpy(grad), np.float32)
    return float(ops.convert_to_numpy(total)), {k: float(ops.convert_to_numpy(v)) for k, v in parts.items()}, grad


def input_gradient(loss_fn: LossFn, variables: Sequence[Any] = ()) -> Step:
    """A compiled ``step(image, targets)`` for ``loss_fn`` on the active backend. ``variables``: the Keras
    variables ``loss_fn`` reads (the backbone's weights); JAX passes their values as arguments."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(loss_fn)
    if backend == "jax":
        return _jax(loss_fn, list(variables))
    if backend == "torch":
        return _torch(loss_fn)
    raise NotImplementedError(f"the {backend} backend has no input-gradient function here")


def _tensorflow(loss_fn: LossFn) -> Step:
    import tensorflow as tf

    # one graph per image size, never a shape-generalised one. With reduce_retracing, the second size seen
    # (the full size after a coarse-to-fine pass) got a graph with unknown dimensions, whose float results
    # differ in the last bits from those of a graph traced for that size (oneDNN on or off), so a frame
    # depended on the sizes computed before it: a run resumed at a warm frame, or a cluster worker that had
    # made other units, gave other frames than an uninterrupted run (issue 25: up to 9/255). A fixed-size
    # graph also traces and runs faster (measured at 384 px: trace 1.6 s instead of 2.9 s, 1.9-2.0 s per
    # evaluation instead of 2.1-2.4 s). tests/test_resume_identical.py
    @tf.function(reduce_retracing=False)
    def step(x, targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total, parts = loss_fn(x, targets)
        return total, parts, tape.gradient(total, x)

    return lambda x, targets: _numpy(*step(tf.constant(x, tf.float32), targets), x)


def _jax(loss_fn: LossFn, variables: list) -> Step:
    import jax
    import keras

    def pure(x, values, targets):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return loss_fn(x, targets)

    compiled = jax.jit(jax.value_and_grad(pure, has_aux=True))

    def step(x, targets):
        (total, parts), grad = compiled(jax.numpy.asarray(x, jax.numpy.float32), [v.value for v in variables],
                                        targets)
        return _numpy(total, parts, grad, x)

    return step


def _torch(loss_fn: LossFn) -> Step:
    import keras
    import torch

    def step(x, targets):
        image = keras.ops.convert_to_tensor(x, "float32").detach().requires_grad_(True)
        total, parts = loss_fn(image, targets)
        (grad,) = torch.autograd.grad(total, image, allow_unused=True) if total.requires_grad else (None,)
        return _numpy(total.detach(), {k: v.detach() for k, v in parts.items()}, grad, x)

    return step
