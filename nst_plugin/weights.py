"""Weight files for backbones: Keras' cache, a download that fails fast offline, and a mirror override.

Public API for backbone plugins. A backbone describes its downloadable weights once as a
:class:`WeightsFile` and calls :meth:`WeightsFile.fetch`; the built-in VGG16 and the VGG19 plugin in
``hooks/nst-vgg19`` both do. Nothing here imports TensorFlow until a download actually starts.

* The file is looked up in Keras' cache first (``$KERAS_HOME/models``, default ``~/.keras/models``), so a
  machine that was online once works offline afterwards.
* Before downloading, a TCP connection to the host is tried with a short timeout (``CONNECT_TIMEOUT``): an
  offline machine gets a clear :class:`~nst_plugin.errors.WeightsUnavailable` in seconds, never a hang.
* ``url_env`` names an environment variable that replaces the URL (a mirror; in tests, a closed port). A
  replaced URL is not checked against the published MD5.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import UserError, WeightsUnavailable

CONNECT_TIMEOUT = 5.0  # seconds: an offline machine must fail fast, never hang
DOWNLOAD_SOCKET_TIMEOUT = 30.0

__all__ = ["CONNECT_TIMEOUT", "WeightsFile", "keras_cache_dir", "reachable", "weights_file_path"]


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(base) / "models"


def reachable(url: str, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """None when a TCP connection to the URL's host opens within ``timeout`` (or a ``file:`` URL exists),
    else the reason, in words."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return None if Path(parsed.path).exists() else f"{parsed.path} does not exist"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{parsed.hostname}:{port} is not reachable ({exc.__class__.__name__}: {exc})"


@dataclass(frozen=True)
class WeightsFile:
    """A weights file Keras publishes (or any URL), cached in Keras' cache folder.

    ``what`` names the weights in messages ("the ImageNet VGG19 weights"); ``alternatives`` ends the offline
    message with what the user can do instead (``"pass --weights PATH to a VGG19 no-top .h5 file"``).
    """

    filename: str
    url: str
    md5: str | None = None
    url_env: str | None = None
    what: str = "the weights"
    alternatives: str = "pass --weights PATH to a weights file"

    def current_url(self) -> str:
        return (os.environ.get(self.url_env) if self.url_env else None) or self.url

    def cached(self) -> Path | None:
        path = keras_cache_dir() / self.filename
        return path if path.exists() else None

    def fetch(self) -> Path:
        """The file: from Keras' cache, or downloaded into it. Raises WeightsUnavailable in seconds offline."""
        cached = self.cached()
        if cached is not None:
            return cached
        url = self.current_url()
        reason = reachable(url)
        if reason is not None:
            raise WeightsUnavailable(
                f"cannot download {self.what}: {reason}. Connect to the internet once (they are cached in "
                f"{keras_cache_dir()}), or {self.alternatives}"
            )
        import keras

        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_SOCKET_TIMEOUT)
        try:
            path = keras.utils.get_file(
                self.filename,
                url,
                cache_subdir="models",
                cache_dir=str(keras_cache_dir().parent),
                file_hash=self.md5 if url == self.url else None,
            )
        except Exception as exc:
            raise WeightsUnavailable(f"downloading {self.what} from {url} failed: {exc}") from None
        finally:
            socket.setdefaulttimeout(previous)
        return Path(path)


def weights_file_path(value: str, sources: tuple[str, ...] = ()) -> Path:
    """A ``--weights`` value that is not a named source: an existing file, or a clear error."""
    path = Path(value).expanduser()
    if not path.is_file():
        hint = f" (or use {', '.join(sources)})" if sources else ""
        raise UserError(f"--weights {value!r}: no such file{hint}")
    return path
