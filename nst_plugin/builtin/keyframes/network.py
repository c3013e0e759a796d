"""The small fully-convolutional network that learns a shot's keyframes (after Texler et al. 2020,
"Interactive Video Stylization Using Few-Shot Patch-Based Training": an encoder with two stride-2 steps,
residual blocks at a quarter of the resolution, a decoder with skip connections, no normalisation layers so
that a picture cut into tiles gives the same pixels as the whole).

Images go in and come out as float RGB 0..255; inside, the network works on [-1, 1]. Keras is imported
inside the functions: any Keras 3 backend builds, trains (``training.py``) and runs it.

Design, measurements and history: docs/design/keyframes.md#the-network (tiles: #tiles)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRIDE = 4  # the encoder halves the resolution twice: tiles start on multiples of this


@dataclass(frozen=True)
class NetworkShape:
    """How big the network is. ``filters``: channels at full, half and quarter resolution; ``blocks``:
    residual blocks at a quarter of the resolution. Sized for a CPU: most of the work is at a quarter of
    the resolution, the full-resolution layers are narrow."""

    filters: tuple[int, int, int] = (16, 32, 64)
    blocks: int = 3
    # the decoder's two x2 upsamplings: bilinear (less flicker than nearest, moving subjects closer to the source)
    upsampling: str = "bilinear"
    # extra input channels next to the content's RGB: the advected guide pattern (guides.py), 0 for none
    guides: int = 0

    @property
    def radius(self) -> int:
        """Pixels of context on each side that one output pixel depends on (receptive field radius): 5x5 in
        (2), two stride-2 3x3 (1 + 2), each block two 3x3 at stride 4 (8), the decoder's 3x3 at stride 4, 2
        and 1 (4 + 2 + 1), and the two nearest-neighbour upsamplings (2 + 1)."""
        return 2 + 1 + 2 + 8 * self.blocks + 4 + 2 + 1 + (3 if self.upsampling == "nearest" else 6)


def build_network(shape: NetworkShape = NetworkShape(), seed: int = 0):
    """A Keras model: (N, H, W, 3) in [-1, 1] -> (N, H, W, 3) in [-1, 1]; H and W multiples of ``STRIDE``."""
    import random

    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    # each convolution's initial weights from its own seed, drawn from a generator of this call: the draws
    # Keras would take from the process-wide `random` (the same numbers), which another thread of the
    # process (a dask worker's event loop) may draw from at the same time
    draws = random.Random(seed)

    def conv(*args, **kwargs):
        return layers.Conv2D(*args, kernel_initializer=keras.initializers.GlorotUniform(draws.randint(1, int(1e9))),
                             **kwargs)

    f0, f1, f2 = shape.filters
    inputs = keras.Input(shape=(None, None, 3 + shape.guides), name="content")
    leaky = lambda: layers.LeakyReLU(negative_slope=0.2)  # noqa: E731
    out0 = leaky()(conv(f0, 5, padding="same", name="conv0")(inputs))
    out1 = leaky()(conv(f1, 3, strides=2, padding="same", name="conv1")(out0))
    out2 = leaky()(conv(f2, 3, strides=2, padding="same", name="conv2")(out1))
    x = out2
    for i in range(shape.blocks):
        y = layers.ReLU()(x)
        y = conv(f2, 3, padding="same", name=f"block{i}_a")(y)
        y = layers.ReLU()(y)
        y = conv(f2, 3, padding="same", name=f"block{i}_b")(y)
        x = layers.Add()([x, y])
    # decoder: each convolution before its upsampling (cheaper), skip connections from the encoder
    x = layers.ReLU()(conv(f1, 3, padding="same", name="up2")(layers.Concatenate()([x, out2])))
    x = layers.UpSampling2D(2, interpolation=shape.upsampling)(x)
    x = layers.ReLU()(conv(f0, 3, padding="same", name="up1")(layers.Concatenate()([x, out1])))
    x = layers.UpSampling2D(2, interpolation=shape.upsampling)(x)
    x = layers.ReLU()(conv(f0, 3, padding="same", name="fuse")(layers.Concatenate()([x, out0, inputs])))
    outputs = conv(3, 1, activation="tanh", name="rgb")(x)
    return keras.Model(inputs, outputs, name="keyframe_network")


def to_unit(image) -> np.ndarray:
    """RGB 0..255 -> [-1, 1] float32."""
    return np.asarray(image, np.float32) / 127.5 - 1.0


def from_unit(values) -> np.ndarray:
    """[-1, 1] -> RGB 0..255 float32."""
    return (np.asarray(values, np.float32) + 1.0) * 127.5


def _padded(image: np.ndarray, multiple: int) -> tuple[np.ndarray, int, int]:
    h, w = image.shape[:2]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect" if min(h, w) > max(ph, pw) else "edge")
    return image, h, w


def _starts(length: int, tile: int, margin: int) -> list[int]:
    """Origins (multiples of STRIDE) of tiles of ``tile`` pixels that overlap by at least ``2 * margin``."""
    if length <= tile:
        return [0]
    step = max(STRIDE, ((tile - 2 * margin) // STRIDE) * STRIDE)
    starts = list(range(0, length - tile, step)) + [((length - tile) // STRIDE) * STRIDE]
    return sorted(set(starts))


def predict(model, batch: np.ndarray) -> np.ndarray:
    """The network on a batch (N, H, W, 3) in [-1, 1], as a NumPy array, compiled: on TensorFlow a graph
    function traced once per input shape (a frame and its few tile shapes; faster than eager and than XLA on
    a CPU, and Keras' own predict step relaxes the shapes, which bilinear upsampling cannot trace);
    elsewhere Keras' inference step (jitted on JAX, no gradient bookkeeping on PyTorch)."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return keras.ops.convert_to_numpy(model.predict_on_batch(batch))
    import tensorflow as tf

    run = getattr(model, "_nst_predict", None)
    if run is None:
        run = tf.function(lambda x: model(x, training=False), reduce_retracing=False)
        model._nst_predict = run
    return run(tf.constant(batch, tf.float32)).numpy()


def stylize_image(model, image: np.ndarray, tile: int | None = None, margin: int | None = None,
                  shape: NetworkShape = NetworkShape()) -> np.ndarray:
    """One frame through the network: RGB 0..255 (H, W, 3), followed by its guide channels when the network
    has them (H, W, 3 + ``shape.guides``), in; float32 RGB 0..255 out.

    With ``tile`` (pixels), a frame larger than that is cut into tiles that overlap by twice ``margin``
    (default: the receptive-field radius, rounded up to ``STRIDE``), start on multiples of ``STRIDE`` (so the
    encoder's stride-2 grid is the same as the whole frame's) and are joined by keeping each tile's centre:
    an output pixel then sees exactly the context it would see in the whole frame, so there is no seam.
    """
    padded, h, w = _padded(to_unit(image), STRIDE)
    if tile is None or max(padded.shape[:2]) <= tile:
        out = predict(model, padded[None])[0]
        return from_unit(out[:h, :w])
    margin = margin if margin is not None else -(-shape.radius // STRIDE) * STRIDE
    tile = max(tile, 2 * margin + 4 * STRIDE) // STRIDE * STRIDE
    H, W = padded.shape[:2]
    out = np.zeros((H, W, 3), np.float32)
    ys, xs = _starts(H, tile, margin), _starts(W, tile, margin)
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            y1, x1 = min(H, y0 + tile), min(W, x0 + tile)
            piece = predict(model, padded[None, y0:y1, x0:x1])[0]
            # keep the centre: from the middle of the overlap with the previous tile to the middle of the
            # overlap with the next one (the frame's own border at the ends)
            top = 0 if iy == 0 else (ys[iy - 1] + tile + y0) // 2 - y0
            left = 0 if ix == 0 else (xs[ix - 1] + tile + x0) // 2 - x0
            bottom = (y1 - y0) if iy == len(ys) - 1 else (y0 + tile + ys[iy + 1]) // 2 - y0
            right = (x1 - x0) if ix == len(xs) - 1 else (x0 + tile + xs[ix + 1]) // 2 - x0
            out[y0 + top:y0 + bottom, x0 + left:x0 + right] = piece[top:bottom, left:right]
    return from_unit(out[:h, :w])
