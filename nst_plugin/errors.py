"""Exceptions. A :class:`UserError` is the user's to fix: the CLI prints its message in one line and exits."""


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


def suggest(name, valid):
    """One clause listing the valid names, for an 'unknown name' message."""
    valid = sorted(valid)
    return f"valid: {', '.join(valid)}" if valid else "none is installed"
