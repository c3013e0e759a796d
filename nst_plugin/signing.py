"""What this user's own runs wrote, told apart from what anyone who can write a folder could claim.

A manifest is data on disk: anybody who can write the output folder (a shared render folder, a downloaded
project) can edit it. Where the manifest's word would let nst replace a file outside the folder (the
``--encode`` video a later run may replace without ``--overwrite``), the claim carries a tag: an HMAC of the
file's real path and content digest under a key only this user can read (``$NST_STATE_DIR/signing.key``,
default ``~/.local/state/nst-plugin``, made on first use with mode 0600). A claim whose tag does not match
the file as it is now (another user's, edited since, or made up) is not trusted.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
from pathlib import Path

KEY_NAME = "signing.key"


def state_dir() -> Path:
    """This user's private folder for nst's own state (``NST_STATE_DIR`` overrides it)."""
    override = os.environ.get("NST_STATE_DIR")
    if override:
        return Path(override).expanduser()
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "nst-plugin"
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "nst-plugin"


def _key() -> bytes | None:
    """The user's signing key, made on first use; None where no private file can be kept (nothing is trusted)."""
    folder = state_dir()
    path = folder / KEY_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(os.urandom(32))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            stat = os.fstat(handle.fileno())
            key = handle.read()
    except OSError:
        return None
    if os.name != "nt" and (stat.st_uid != os.geteuid() or stat.st_mode & 0o077):
        return None  # a key another user could read or wrote is no key
    return key if len(key) >= 32 else None


def file_digest(path: str | os.PathLike) -> str | None:
    """SHA-256 of a regular file's bytes, or None if it is not one (a link's target counts). A file unchanged
    since it was last hashed in this process (same inode, size and modification time) is not read again: a
    run checks its --encode video's record twice before any work."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    return _digest(os.fspath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _digest(path: str, inode: int, size: int, mtime_ns: int) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _tag(key: bytes, real_path: str, digest: str) -> str:
    return hmac.new(key, f"{real_path}\0{digest}".encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def sign_file(real_path: str) -> str | None:
    """The tag that vouches for the file at ``real_path`` as it is now (None: no key, or no such file)."""
    key, digest = _key(), file_digest(real_path)
    if key is None or digest is None:
        return None
    return _tag(key, real_path, digest)


def verify_file(real_path: str, tag) -> bool:
    """True if ``tag`` was made by this user for the file at ``real_path`` with exactly its present content."""
    if not isinstance(tag, str) or not isinstance(real_path, str):
        return False
    key, digest = _key(), file_digest(real_path)
    if key is None or digest is None:
        return False
    return hmac.compare_digest(_tag(key, real_path, digest), tag)
