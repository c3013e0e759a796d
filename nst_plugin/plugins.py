"""The plugin manager: default plugins, entry-point plugins, isolation of broken plugins.

* Default plugins (``nst_plugin.builtin.*``) are registered exactly like third-party ones.
* Third-party plugins load from the entry-point group ``nst_plugin``. One that fails to import is recorded
  in :data:`FAILURES` (its name and error), reported, and skipped: the rest keeps working.
* ``NST_LOAD_PLUGINS``: comma-separated entry-point names to load; empty loads none. Unset loads all.
* A third-party plugin that raises inside a work hook (or inside a loss, optimizer or backbone it
  registered) is named: :func:`call_work_hook` turns the exception into a :class:`PluginError` whose one-line
  message names the plugin and its distribution; the original exception is its ``__cause__``.
* ``NST_STRICT_PLUGINS=1``: a broken plugin is an error instead of a warning, and an exception raised inside
  a plugin propagates unchanged, with its traceback (for plugin authors).
"""

from __future__ import annotations

import importlib
import os
import types
import warnings
from dataclasses import dataclass
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import NstError, PluginError
from .registry import KINDS, Registry

ENTRY_POINT_GROUP = "nst_plugin"

DEFAULT_PLUGINS = (
    "nst_plugin.builtin.vgg16",
    "nst_plugin.builtin.losses",
    "nst_plugin.builtin.optimizers",
    "nst_plugin.builtin.engine",
)


@dataclass
class PluginFailure:
    name: str
    error: str
    stage: str  # "import", "register" or "hook"

    def __str__(self) -> str:
        return f"plugin {self.name!r} failed at {self.stage}: {self.error}"


FAILURES: list[PluginFailure] = []
_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None


def strict() -> bool:
    return os.environ.get("NST_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def report_failure(name: str, error: BaseException | str, stage: str) -> None:
    """Record a broken plugin; raise in strict mode, otherwise warn and go on."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    failure = PluginFailure(name, text, stage)
    if strict():
        raise PluginError(f"{failure} (NST_STRICT_PLUGINS is set)")
    FAILURES.append(failure)
    warnings.warn(str(failure), RuntimeWarning, stacklevel=2)


def _allowed_names() -> set[str] | None:
    value = os.environ.get("NST_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed_names()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not stop the host
            report_failure(ep.name, exc, "import")
            continue
        dist = getattr(ep, "dist", None)
        if dist is not None:
            pm._nst_dists[ep.name] = (dist.metadata["Name"], dist.version)  # type: ignore[attr-defined]


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("nst_plugin")
        pm.add_hookspecs(hookspecs)
        pm._nst_dists = {}  # type: ignore[attr-defined]
        for module_name in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(module_name), name=module_name)
        _load_entry_points(pm)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from None
        _pm = pm
    return _pm


def register_plugin(plugin, name: str | None = None) -> str:
    """Register a plugin object or module at run time (tests, notebooks). Returns its name."""
    pm = get_plugin_manager()
    name = pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(name=name)
        raise PluginError(f"plugin {name!r} implements a hook that does not exist: {exc}") from None
    reset_registry()
    return name


def unregister_plugin(name: str) -> None:
    get_plugin_manager().unregister(name=name)
    reset_registry()


def reset_registry() -> None:
    global _registry
    _registry = None


def reset() -> None:
    """Forget the plugin manager, the registry and recorded failures (tests, after changing env vars)."""
    global _pm
    _pm = None
    FAILURES.clear()
    reset_registry()


def get_registry() -> Registry:
    """Collect every plugin's registrations. Cheap: factories are not called."""
    global _registry
    if _registry is None:
        pm = get_plugin_manager()
        registry = Registry()
        for kind in KINDS:
            caller = getattr(pm.hook, f"nst_register_{kind}")
            for impl in caller.get_hookimpls():  # registration order: built-ins first
                try:
                    impl.function(register=registry.registrar(kind, impl.plugin_name))
                except Exception as exc:  # a broken plugin is named, and the others keep working
                    if impl.plugin_name in DEFAULT_PLUGINS:
                        raise
                    report_failure(impl.plugin_name, str(exc) if isinstance(exc, PluginError) else exc, "register")
        _registry = registry
    return _registry


def _module_roots(pm: pluggy.PluginManager) -> list[tuple[str, str]]:
    """(module prefix, plugin name) of every third-party plugin: its package, or the module of its class."""
    roots = []
    for name, plugin in pm.list_name_plugin():
        if name in DEFAULT_PLUGINS or plugin is None:
            continue
        if isinstance(plugin, types.ModuleType):
            module = plugin.__name__
        elif isinstance(plugin, type):
            module = plugin.__module__
        else:
            module = type(plugin).__module__
        if not module or module == "nst_plugin" or module.startswith("nst_plugin."):
            continue
        roots.append((module.split(".")[0], name))
    return roots


def blame(exc: BaseException, pm: pluggy.PluginManager | None = None) -> str | None:
    """The third-party plugin whose code raised ``exc``: the innermost traceback frame in a plugin's package.
    None when the error came from nst-plugin itself (or a library it calls)."""
    pm = pm or get_plugin_manager()
    roots = _module_roots(pm)
    if not roots:
        return None
    culprit = None
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        for root, name in roots:
            if module == root or module.startswith(root + "."):
                culprit = name
        tb = tb.tb_next
    return culprit


def _one_line(exc: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if text.endswith(":") and len(lines) > 1:  # a header such as TensorFlow's "in user code:": the cause is last
        text = lines[-1]
    prefix = f"{type(exc).__name__}: "
    if text.startswith(prefix):
        text = text[len(prefix):]
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def call_work_hook(hook_name: str, **kwargs):
    """Call a work hook; an exception raised by a third-party plugin becomes a PluginError naming it.

    Errors of nst-plugin's own kinds (a :class:`~nst_plugin.errors.UserError` such as missing weights) pass
    through unchanged: their message is already meant for the user. In strict mode the original exception
    propagates, traceback and all.
    """
    pm = get_plugin_manager()
    try:
        return getattr(pm.hook, hook_name)(**kwargs)
    except NstError:
        raise
    except Exception as exc:
        culprit = getattr(exc, "nst_plugin", None) or blame(exc, pm)  # nst_plugin: see nst_plugin.failures
        if culprit is None:
            raise
        failure = PluginFailure(culprit, getattr(exc, "nst_description", None) or _one_line(exc), "hook")
        FAILURES.append(failure)
        if strict():
            raise
        dist, version = pm._nst_dists.get(culprit, (None, None))  # type: ignore[attr-defined]
        origin = f" (from {dist} {version})" if dist else ""
        raise PluginError(
            f"plugin {culprit!r}{origin} failed during {hook_name}: {failure.error} "
            "(set NST_STRICT_PLUGINS=1 to see the traceback, or disable it with NST_LOAD_PLUGINS)"
        ) from exc


def plugin_info() -> list[dict]:
    """Every plugin with its version, distribution and what it registers (for ``nst plugins``)."""
    pm = get_plugin_manager()
    registry = get_registry()
    registered = registry.by_plugin()
    from . import __version__

    rows = []
    for name, plugin in pm.list_name_plugin():
        dist, version = pm._nst_dists.get(name, (None, None))  # type: ignore[attr-defined]
        if name in DEFAULT_PLUGINS:
            dist, version = "nst-plugin", __version__
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append({
            "name": name,
            "distribution": dist,
            "version": version,
            "builtin": name in DEFAULT_PLUGINS,
            "hooks": hooks,
            "registers": registered.get(name, {}),
        })
    return rows
