"""Exceptions. A :class:`UserError` is the user's to fix: the CLI prints its message in one line and exits."""

import errno
import os


class NstError(Exception):
    """Base class of nst-plugin's own errors."""


class UserError(NstError):
    """Bad input, with a message that says what to do. The CLI prints it without a traceback."""

    exit_code = 2


class PluginError(NstError):
    """A plugin failed: at import, at registration (e.g. a duplicate name) or inside a hook."""

    exit_code = 3


class WeightsUnavailable(UserError):
    """No weights could be found or downloaded for a backbone."""


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop as Ctrl-C does (the same clean-up, an ``interrupted`` event), exit 143."""


def _errnos(*names: str) -> frozenset:
    return frozenset(getattr(errno, name) for name in names if hasattr(errno, name))


# what the user's storage refused: a full disk or quota, a file too large for the filesystem, a read-only
# filesystem, a folder or file without permission or immutable (chattr +i: EPERM), a failing disk or a
# network share gone away. Not EMFILE/ENFILE (a process limit, or a leak of ours) nor ENOENT (a bug, or a
# folder removed under a run).
STORAGE_ERRNOS = _errnos("ENOSPC", "EDQUOT", "EFBIG", "EROFS", "EACCES", "EPERM", "EIO", "ESTALE")
_WRITE_ONLY = _errnos("ENOSPC", "EDQUOT", "EFBIG", "EROFS")  # only a write meets these
_HINTS = {
    **dict.fromkeys(_errnos("ENOSPC", "EDQUOT"), "free some space"),
    **dict.fromkeys(_errnos("EFBIG"), "choose a folder on another filesystem"),
    **dict.fromkeys(_errnos("EROFS"), "make it writable or choose another folder"),
    **dict.fromkeys(_errnos("EACCES", "EPERM"), "check the permissions (and immutable flags) of the file and its folder"),
    **dict.fromkeys(_errnos("EIO", "ESTALE"), "check the disk or the network share"),
}


class StorageError(UserError):
    """A file could not be written (or read) because of the user's storage: a full disk, a read-only or
    immutable folder... One line naming the path and the cause; exit 2. ``resume``: finished work was kept
    and the same command picks it up (``nst video``)."""

    def __init__(self, path, cause: OSError, action: str | None = None, resume: bool = False):
        self.path = os.fspath(path) if path is not None else None
        self.cause = cause
        self.errno = cause.errno
        self.action = action or ("write" if cause.errno in _WRITE_ONLY else "access")
        self.resume = resume
        reason = cause.strerror or (os.strerror(cause.errno) if cause.errno else str(cause))
        where = f"{self.path!r}" if self.path is not None else "a file"
        hint = _HINTS.get(cause.errno, "check the storage")
        if resume:
            hint += ", then run the same command again: it resumes after the finished frames"
        super().__init__(f"cannot {self.action} {where}: {reason}; {hint}")

    def with_resume(self) -> "StorageError":
        return self if self.resume else StorageError(self.path, self.cause, self.action, resume=True)


def storage_error(exc: BaseException, path=None, action: str | None = None,
                  resume: bool = False) -> StorageError | None:
    """The :class:`StorageError` that ``exc`` is (an ``OSError`` of :data:`STORAGE_ERRNOS`, naming ``path``
    or else the file the error names), or None: not the storage's fault."""
    if isinstance(exc, StorageError):
        return exc.with_resume() if resume else exc
    if not isinstance(exc, OSError) or exc.errno not in STORAGE_ERRNOS:
        return None
    if path is None:  # os.replace(tmp, final): filename2 is the destination
        path = exc.filename2 if exc.filename2 is not None else exc.filename
    return StorageError(path, exc, action, resume)


def suggest(name, valid):
    """One clause listing the valid names, for an 'unknown name' message."""
    valid = sorted(valid)
    return f"valid: {', '.join(valid)}" if valid else "none is installed"
