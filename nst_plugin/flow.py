"""Optical flow, occlusion masks and warping (OpenCV only), after Ruder et al. 2016.

Conventions: a flow ``f`` from image ``a`` to image ``b`` is an (H, W, 2) float32 array of (dx, dy) such that
``a(x) ~ b(x + f(x))``. :func:`warp` samples an image at ``x + f(x)`` (backward warping), so
``warp(b, flow(a, b))`` looks like ``a``.

Used by the video engine (start frame t from the stylized frame t-1 warped into t; the temporal loss) and
by the warping-error metric :func:`warping_error` (Lai et al. 2018). OpenCV is imported inside the functions.

How the keyframe engine uses it, and measurements: docs/design/keyframes.md#optical-flow
"""

from __future__ import annotations

import functools

import numpy as np

def gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 grey image of an RGB array (uint8 or float 0..255)."""
    import cv2

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def flow(a: np.ndarray, b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """DIS optical flow from ``a`` to ``b`` (RGB or grey images of the same size).

    A new DIS object per call (cheap): one object reused gives flows that depend on what it computed before,
    and so frames that depend on which other work ran in the process first (a resumed run would not remake
    the same frames)."""
    import cv2

    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    a = a if a.ndim == 2 else gray(a)
    b = b if b.ndim == 2 else gray(b)
    return cv2.DISOpticalFlow_create(presets[preset]).calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None)


def own_motion(f: np.ndarray) -> np.ndarray:
    """(H, W) float32: how far each pixel's flow ``f`` is from the frame's median flow (the dominant motion,
    e.g. a camera pan), in pixels: what moves in the picture, not with the camera."""
    return np.linalg.norm(f - np.median(f.reshape(-1, 2), axis=0), axis=-1)


@functools.lru_cache(maxsize=8)
def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixel coordinates of an (h, w) image, float32, read-only (shared by every warp of that size)."""
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    grid_x.flags.writeable = grid_y.flags.writeable = False
    return grid_x, grid_y


def warp(image: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``x + f(x)`` (bilinear, border replicated). Keeps the dtype's float-ness."""
    import cv2

    grid_x, grid_y = pixel_grid(*f.shape[:2])
    map_x = grid_x + f[..., 0]
    map_y = grid_y + f[..., 1]
    src = np.asarray(image)
    out = cv2.remap(src.astype(np.float32) if src.dtype != np.float32 else src, map_x, map_y,
                    interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def consistency_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where the flow can be trusted, after Ruder et al. 2016, section 3.2.

    ``backward``: flow from frame t to frame t-1 (the one used to warp t-1 into t); ``forward``: from t-1
    to t. A pixel is occluded (0) when the forward-backward check fails,
    ``|w~ + w|^2 > 0.01 (|w~|^2 + |w|^2) + 0.5`` with ``w~ = forward(x + backward(x))``, or when it lies on
    a motion boundary, ``|grad u|^2 + |grad v|^2 > 0.01 |w|^2 + 0.002``. Returns float32 (H, W) in {0, 1}.
    """
    # component by component: a sum over a last axis of 2 is several times slower in NumPy (same values)
    u, v = backward[..., 0], backward[..., 1]
    w_tilde = warp(forward, backward)
    tu, tv = w_tilde[..., 0], w_tilde[..., 1]
    su, sv = tu + u, tv + v
    w_sq = u * u + v * v
    consistent = su * su + sv * sv <= 0.01 * ((tu * tu + tv * tv) + w_sq) + 0.5
    du_y, du_x = np.gradient(u)
    dv_y, dv_x = np.gradient(v)
    boundary = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > 0.01 * w_sq + 0.002
    return (consistent & ~boundary).astype(np.float32)


PHOTOMETRIC_THRESHOLD = 24.0  # mean RGB difference (0..255) above which a warped pixel is not trusted


def trust_mask(content: np.ndarray, other: np.ndarray, backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Where ``other`` moved onto ``content`` by ``backward`` (the flow content -> other; ``forward``: other ->
    content) can be trusted: the flow passes :func:`consistency_mask` and ``other`` warped so matches
    ``content`` (a mean RGB difference of at most ``PHOTOMETRIC_THRESHOLD``: DIS flow can be consistent and
    wrong, e.g. on a repetitive texture that moves). Float32 (H, W) in {0, 1}."""
    content = np.asarray(content, np.float32)
    difference = np.abs(warp(np.asarray(other, np.float32), backward) - content)
    if difference.ndim == 3:  # the mean over the channels, added one by one (as np.mean does, several times faster)
        total = difference[..., 0].copy()
        for c in range(1, difference.shape[-1]):
            total += difference[..., c]
        difference = total / np.float32(difference.shape[-1])
    photometric = difference <= PHOTOMETRIC_THRESHOLD
    return consistency_mask(forward, backward) * photometric.astype(np.float32)


def temporal_inputs(previous_content: np.ndarray, content: np.ndarray, previous_output: np.ndarray,
                    preset: str = "medium", background_fill: bool = False,
                    residual: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(previous output warped into the current frame, trust mask) for two consecutive content frames.

    All images at the same size; the output is float32 RGB 0..255 and a float32 (H, W) mask in {0, 1}. A
    pixel is trusted when the flow passes the consistency checks (:func:`consistency_mask`) and the previous
    content warped the same way matches the current content there (photometric check: DIS flow can be
    consistent and wrong, e.g. on a repetitive texture that moves).

    With ``background_fill``, untrusted pixels (mostly background a moving object uncovered, where the
    smoothed flow drags the object's texture along) are warped by the dominant motion instead: the median
    flow of the trusted pixels. With ``residual``, what is warped is the stylization residual (previous
    output minus previous content), added to the current content: the picture's structure always comes from
    the current frame (a subject is where it is now, even where the flow is wrong), the style's texture from
    the previous output.
    """
    backward = flow(content, previous_content, preset)  # t -> t-1
    forward = flow(previous_content, content, preset)  # t-1 -> t
    previous_output = np.asarray(previous_output, np.float32)
    content_f = np.asarray(content, np.float32)
    previous_f = np.asarray(previous_content, np.float32)
    source = previous_output - previous_f if residual else previous_output
    mask = trust_mask(content_f, previous_f, backward, forward)
    warped = warp(source, backward)
    if background_fill and (mask < 1).any():
        trusted = backward[mask > 0] if (mask > 0).any() else backward.reshape(-1, 2)
        dominant = np.broadcast_to(np.median(trusted, axis=0).astype(np.float32), backward.shape)
        background = warp(source, np.ascontiguousarray(dominant))
        keep = mask[..., None]
        warped = keep * warped + (1.0 - keep) * background
    if residual:
        warped = np.clip(content_f + warped, 0, 255)
    return warped, mask


def warping_error(output_t: np.ndarray, output_next: np.ndarray, source_t: np.ndarray, source_next: np.ndarray,
                  preset: str = "medium") -> float:
    """Temporal warping error of Lai et al. 2018 for one pair of frames: the mean over valid pixels of
    the squared RGB difference (in [0, 1]) between output t and output t+1 warped back into t. The flow
    and the occlusion mask come from the source frames (resized to the output's size)."""
    from .images import resize

    h, w = output_t.shape[:2]
    src_t = resize(source_t, h, w)
    src_n = resize(source_next, h, w)
    to_next = flow(src_t, src_n, preset)  # t -> t+1: warps t+1 into t
    to_prev = flow(src_n, src_t, preset)
    mask = consistency_mask(to_prev, to_next)
    warped = warp(np.asarray(output_next, np.float32) / 255.0, to_next)
    diff = np.sum((np.asarray(output_t, np.float32) / 255.0 - warped) ** 2, axis=-1)
    valid = mask.sum()
    return float((diff * mask).sum() / valid) if valid else 0.0
