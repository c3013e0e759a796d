"""One writer per output: a lock file that names its owner and is released when the owner's process ends.

``nst video`` holds ``<folder>/.nst-lock`` while it writes the folder; ``nst image`` and ``nst grid`` hold
``.<name>.nst-lock`` beside the picture they write. A second run meets the lock and stops in one line that
names the first (its pid, host and start time). The lock is a kernel lock on the file (``flock``; on Windows
``msvcrt.locking``), so a run killed with ``kill -9`` leaves no stale lock: the file may stay, the lock does
not. A lock file is never written through a link and never one that another name shares.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from .errors import UserError

FOLDER_LOCK = ".nst-lock"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def file_lock_path(path: str | os.PathLike) -> Path:
    """The lock beside an output file: ``.<name>.nst-lock`` in its folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.nst-lock")


class Lock:
    """A held lock; :meth:`release` (or leaving a ``with`` block) removes the file and lets go."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd, self.pid = path, fd, os.getpid()

    @property
    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        if self.fd is None or os.getpid() != self.pid:  # a forked child shares the lock: only its owner lets go
            return
        try:
            os.unlink(self.path)  # while still held: nobody can take a lock on a name that is gone
        except OSError:
            pass
        _unlock(self.fd)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "Lock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self):  # a lock never outlives the object that holds it
        try:
            self.release()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def acquire(path: str | os.PathLike, what: str) -> Lock:
    """Take the lock file ``path`` for ``what`` (the output the user named, for the message), or raise a
    :class:`~nst_plugin.errors.UserError` naming the run that holds it."""
    path = Path(path)
    for _ in range(20):  # another run may release (unlink) the file between our open and our lock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o644)
        except OSError as exc:
            if os.path.islink(path):
                raise UserError(f"{what} holds a link named {path.name!r} where nst keeps its lock: remove it") from None
            raise UserError(f"{what} cannot be locked ({path.name}: {exc.strerror or exc})") from None
        if not _try_lock(fd):
            holder = _read_owner(fd)
            os.close(fd)
            raise UserError(f"{what} is being written by another nst run ({holder}): wait for it to finish, "
                            "or stop it, then run this again")
        try:
            now = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            now = None
        mine = os.fstat(fd)
        if now is None or (now.st_dev, now.st_ino) != (mine.st_dev, mine.st_ino):
            _unlock(fd)
            os.close(fd)
            continue
        if mine.st_nlink != 1 or (hasattr(os, "geteuid") and mine.st_uid != os.geteuid()):
            _unlock(fd)
            os.close(fd)
            raise UserError(f"{what} holds a {path.name!r} that nst did not make (another name shares it, or "
                            "another user owns it): remove it")
        owner = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        try:  # who holds it, for the message of a second run; a full disk only loses that message
            os.ftruncate(fd, 0)
            os.pwrite(fd, owner.encode(), 0) if hasattr(os, "pwrite") else os.write(fd, owner.encode())
        except OSError:
            pass
        return Lock(path, fd)
    raise UserError(f"{what} cannot be locked: its lock file keeps changing (another nst run is starting?)")


def _read_owner(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 4096, 0) if hasattr(os, "pread") else os.read(fd, 4096))
        return f"pid {int(data['pid'])} on {str(data['host'])[:64]}, started {str(data['started'])[:32]}"
    except (OSError, ValueError, KeyError, TypeError):
        return "owner unknown"


try:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass


class FileLock:
    """The lock of one output file (``with FileLock(path, "output 'x.png'"):``): made beside it, with the
    folders above it that do not exist yet; on leaving, the lock goes, and so do those folders if the run
    left them empty (a run refused or failed before its first write leaves nothing behind)."""

    def __init__(self, path: str | os.PathLike, what: str):
        self.path, self.what = Path(os.path.abspath(os.path.expanduser(os.fspath(path)))), what
        self.lock: Lock | None = None
        self.made: list[Path] = []

    def __enter__(self) -> "FileLock":
        folder = self.path.parent
        while not os.path.lexists(folder) and folder.parent != folder:
            self.made.append(folder)
            folder = folder.parent
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.lock = acquire(file_lock_path(self.path), self.what)
        except OSError as exc:
            self._tidy()
            raise UserError(f"{self.what} cannot be written: {exc.strerror or exc}") from None
        except BaseException:
            self._tidy()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._tidy()

    def _tidy(self) -> None:
        if self.lock is not None:
            self.lock.release()
        for folder in self.made:  # the deepest first; only if empty
            try:
                folder.rmdir()
            except OSError:
                break
