"""Image files and pixel helpers (OpenCV, imported inside the functions that need it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import UserError, storage_error

WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def load_image(path: str | os.PathLike, what: str = "image") -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3). 16-bit, grey and alpha images are converted."""
    import cv2

    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{what} {str(path)!r} does not exist")
    if path.is_dir():
        raise UserError(f"{what} {str(path)!r} is a folder, not an image file")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise UserError(f"{what} {str(path)!r} cannot be read as an image (not an image file, or damaged)")
    return to_rgb8(image, bgr=True)


def to_rgb8(image: np.ndarray, bgr: bool = False) -> np.ndarray:
    """Any 8/16-bit or float, grey/RGB/RGBA array as uint8 RGB."""
    import cv2

    if image.dtype == np.uint16:
        image = (image.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif image.dtype.kind == "f":
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise UserError(f"unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise UserError(f"unsupported image shape {image.shape}: expected (H, W, 3)")
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        image = image[:, :, :3]
    return np.ascontiguousarray(image[:, :, ::-1] if bgr else image)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (height, width):
        return image
    shrinking = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


def check_output_path(path: str | os.PathLike, inputs=(), overwrite: bool = False) -> Path:
    """Refuse to overwrite an input, or an existing file unless ``overwrite``; the folder must be writable."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in WRITABLE_SUFFIXES:
        raise UserError(f"output {str(path)!r} needs an image suffix ({', '.join(WRITABLE_SUFFIXES)})")
    for source in inputs:
        if source is not None and Path(source).expanduser().exists() and path.exists() and path.resolve() == Path(source).expanduser().resolve():
            raise UserError(f"output {str(path)!r} is one of the input files: choose another output path")
    if path.exists() and not overwrite:
        raise UserError(f"output {str(path)!r} already exists: choose another path or add --overwrite")
    folder = path.parent if str(path.parent) else Path(".")
    if folder.exists() and not os.access(folder, os.W_OK):
        raise UserError(f"output folder {str(folder)!r} is not writable")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output folder {str(folder)!r} is a file")
    return path


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to a temporary file in the same folder, then rename: never a half-written file. A write
    the storage refuses (full disk, read-only or immutable folder, ...) raises
    :class:`~nst_plugin.errors.StorageError` naming ``path``; the temporary file and any folder this call
    created are removed."""
    path = Path(path)
    created = []  # the folders this call makes, deepest first: removed again if the write fails
    folder = path.parent
    while not folder.exists() and folder.parent != folder:
        created.append(folder)
        folder = folder.parent
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        for made in created:
            try:
                os.rmdir(made)
            except FileNotFoundError:
                continue
            except OSError:  # not empty (written meanwhile) or not ours to remove: leave it and those above
                break
        failure = storage_error(exc, path, action="write")
        if failure is not None and failure is not exc:
            raise failure from exc
        raise


def save_image(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Encode an RGB uint8 image by the path's suffix and write it atomically. Refuses NaN/float data."""
    import cv2

    if rgb.dtype != np.uint8:
        raise ValueError(f"save_image expects uint8 RGB, got {rgb.dtype}")
    suffix = Path(path).suffix.lower() or ".png"
    ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise UserError(f"cannot encode an image as {suffix}")
    write_atomic(path, encoded.tobytes())


# -- colour ---------------------------------------------------------------------------------------------

_RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_YIQ_TO_RGB = np.linalg.inv(_RGB_TO_YIQ).astype(np.float32)


def rgb_to_yiq(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _RGB_TO_YIQ.T


def yiq_to_rgb(yiq: np.ndarray) -> np.ndarray:
    return yiq @ _YIQ_TO_RGB.T


def luminance_rgb(rgb: np.ndarray, like: np.ndarray | None = None) -> np.ndarray:
    """Luminance as a grey RGB float image; with ``like``, its mean and spread matched to ``like``'s
    luminance (Gatys et al. 2017, luminance-only transfer)."""
    y = rgb_to_yiq(rgb)[..., 0]
    if like is not None:
        target = rgb_to_yiq(like)[..., 0]
        y = (y - y.mean()) / (y.std() + 1e-6) * target.std() + target.mean()
    y = np.clip(y, 0, 255)
    return np.repeat(y[..., None], 3, axis=2).astype(np.float32)


def combine_luminance(luma_rgb: np.ndarray, colour_from: np.ndarray) -> np.ndarray:
    """The luminance of ``luma_rgb`` with the chroma (I, Q) of ``colour_from``: preserves the content's colours."""
    yiq = rgb_to_yiq(colour_from)
    yiq[..., 0] = rgb_to_yiq(luma_rgb)[..., 0]
    return np.clip(yiq_to_rgb(yiq), 0, 255).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
