"""Each style's trained live network, kept in the user's cache folder so that the next run with the same
style and settings starts at full speed.

The folder: ``$NST_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/nst-plugin``, else ``~/.cache/nst-plugin``
(``live/`` under it). A network is known by its key (:func:`network_key`: the style's pixels, the settings
that shape the keyframe and the training, the backbone weights); it is written to a temporary file and
renamed, so a half-written file is never found.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

VERSION = 1  # what a cached network is; a new value makes every older one unused


def cache_folder() -> Path:
    """Where live networks are kept (not created here)."""
    override = os.environ.get("NST_CACHE_DIR")
    if override:
        return Path(override).expanduser() / "live"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "nst-plugin" / "live"


def network_key(style: np.ndarray, settings: dict) -> str:
    """A style's network's key: its pixels and ``settings`` (JSON-able: the keyframe's fingerprint, sizes, the
    training and network settings)."""
    digest = hashlib.sha256(np.ascontiguousarray(style).tobytes())
    digest.update(repr(style.shape).encode())
    digest.update(json.dumps({"version": VERSION, **settings}, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:24]


class NetworkCache:
    """Trained networks by key, as Keras weights files in ``folder`` (default :func:`cache_folder`)."""

    def __init__(self, folder: Path | None = None):
        self.folder = Path(folder) if folder is not None else cache_folder()

    def path(self, key: str) -> Path:
        return self.folder / f"network_{key}.weights.h5"

    def find(self, key: str) -> Path | None:
        path = self.path(key)
        return path if path.is_file() else None

    def put(self, key: str, write: Callable[[Path], None]) -> Path | None:
        """``write(path)`` to a temporary file beside the final one, then renamed; None (nothing kept) when the
        folder cannot be written: the cache is a convenience, never a reason to stop a live run."""
        return self._put(self.path(key), write)

    def keyframe_path(self, key: str) -> Path:
        return self.folder / f"keyframe_{key}.npz"

    def put_keyframe(self, key: str, source: np.ndarray, texture: np.ndarray) -> Path | None:
        """The keyframe the network learnt (its source frame and its stylized picture): its strokes are
        carried where a later run's camera sees the same scene."""
        def write(path: Path) -> None:
            with open(path, "wb") as file:
                np.savez(file, source=np.asarray(source, np.uint8), texture=np.asarray(texture, np.float32))

        return self._put(self.keyframe_path(key), write)

    def find_keyframe(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        path = self.keyframe_path(key)
        try:
            with np.load(path) as data:
                return data["source"], data["texture"]
        except (OSError, KeyError, ValueError):
            return None

    def _put(self, final: Path, write: Callable[[Path], None]) -> Path | None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            stem, dot, suffix = final.name.partition(".")  # (Keras wants its weights named *.weights.h5)
            fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=f"{dot}{suffix}", dir=self.folder)
            os.close(fd)
        except OSError:
            return None
        tmp = Path(name)
        try:
            write(tmp)
            os.replace(tmp, final)
            return final
        except OSError:
            return None
        finally:
            tmp.unlink(missing_ok=True)
