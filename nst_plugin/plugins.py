"""The plugin host: one object that owns pluggy's plugin manager, what the plugins registered, the plugins
that failed and the distributions they came from, and calls the work hooks.

* Default plugins (``nst_plugin.builtin.*``) are registered exactly like third-party ones.
* Third-party plugins load from the entry-point group ``nst_plugin``. One that fails to import is recorded
  in the host's ``failures`` (its name and error), reported, and skipped: the rest keeps working.
* ``NST_LOAD_PLUGINS``: comma-separated entry-point names to load; empty loads none. Unset loads all.
* A third-party plugin that raises inside a work hook (or inside a loss, optimizer or backbone it
  registered) is named: the host's work-hook calls turn the exception into a :class:`PluginError` whose one-line
  message names the plugin and its distribution; the original exception is its ``__cause__``.
* ``NST_STRICT_PLUGINS=1``: a broken plugin is an error instead of a warning, and an exception raised inside
  a plugin propagates unchanged, with its traceback (for plugin authors).
"""

from __future__ import annotations

import importlib
import os
import types
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import NstError, PluginError
from .context import RunContext
from .registry import KINDS, Registry
from .result import FrameResult, SequenceResult

ENTRY_POINT_GROUP = "nst_plugin"

DEFAULT_PLUGINS = (
    "nst_plugin.builtin.vgg16",
    "nst_plugin.builtin.losses",
    "nst_plugin.builtin.optimizers",
    "nst_plugin.builtin.engine",
    "nst_plugin.builtin.keyframes",
)


@dataclass
class PluginFailure:
    name: str
    error: str
    stage: str  # "import", "register" or "hook"

    def __str__(self) -> str:
        return f"plugin {self.name!r} failed at {self.stage}: {self.error}"


def strict() -> bool:
    return os.environ.get("NST_STRICT_PLUGINS", "") not in ("", "0", "false", "no")


def _allowed_names() -> set[str] | None:
    value = os.environ.get("NST_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


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


@dataclass
class PluginHost:
    """The plugins of one process (or one test): built-ins first, then entry points (``NST_LOAD_PLUGINS``
    filters them), each broken one recorded in ``failures`` and skipped."""

    pm: pluggy.PluginManager = field(init=False)
    failures: list[PluginFailure] = field(default_factory=list)
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)  # plugin name -> (dist, version)
    load_entry_points: bool = True
    _registry: Registry | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.pm = pluggy.PluginManager("nst_plugin")
        self.pm.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            self.pm.register(importlib.import_module(module_name), name=module_name)
        if self.load_entry_points:
            self._load_entry_points()
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"a plugin implements a hook that does not exist: {exc}") from None

    # -- loading ------------------------------------------------------------------------------------------

    def report_failure(self, name: str, error: BaseException | str, stage: str) -> None:
        """Record a broken plugin; raise in strict mode, otherwise warn and go on."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        failure = PluginFailure(name, text, stage)
        if strict():
            raise PluginError(f"{failure} (NST_STRICT_PLUGINS is set)")
        self.failures.append(failure)
        warnings.warn(str(failure), RuntimeWarning, stacklevel=3)

    def _load_entry_points(self) -> None:
        allowed = _allowed_names()
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and ep.name not in allowed:
                continue
            if self.pm.get_plugin(ep.name) is not None:
                continue
            try:
                self.pm.register(ep.load(), name=ep.name)
            except Exception as exc:  # a broken plugin must not stop the host
                self.report_failure(ep.name, exc, "import")
                continue
            dist = getattr(ep, "dist", None)
            if dist is not None:
                self.distributions[ep.name] = (dist.metadata["Name"], dist.version)

    def register(self, plugin, name: str | None = None) -> str:
        """Register a plugin object or module at run time (tests, notebooks). Returns its name."""
        name = self.pm.register(plugin, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            raise PluginError(f"plugin {name!r} implements a hook that does not exist: {exc}") from None
        self._registry = None
        return name

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self._registry = None

    @property
    def registry(self) -> Registry:
        """Every plugin's registrations, collected once. Cheap: factories are not called."""
        if self._registry is None:
            registry = Registry()
            for kind in KINDS:
                caller = getattr(self.pm.hook, f"nst_register_{kind}")
                for impl in caller.get_hookimpls():  # registration order: built-ins first
                    try:
                        impl.function(register=registry.registrar(kind, impl.plugin_name))
                    except Exception as exc:  # a broken plugin is named, and the others keep working
                        if impl.plugin_name in DEFAULT_PLUGINS:
                            raise
                        self.report_failure(impl.plugin_name, str(exc) if isinstance(exc, PluginError) else exc, "register")
            self._registry = registry
        return self._registry

    # -- blame ---------------------------------------------------------------------------------------------

    def _module_roots(self) -> list[tuple[str, str]]:
        """(module prefix, plugin name) of every third-party plugin: its package, or the module of its class."""
        roots = []
        for name, plugin in self.pm.list_name_plugin():
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

    def blame(self, exc: BaseException) -> str | None:
        """The third-party plugin whose code raised ``exc``: the innermost traceback frame in a plugin's
        package. None when the error came from nst-plugin itself (or a library it calls)."""
        roots = self._module_roots()
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

    def origin(self, plugin: str) -> str:
        """" (from dist 1.2)" for a plugin installed from a distribution, else ""."""
        dist, version = self.distributions.get(plugin, (None, None))
        return f" (from {dist} {version})" if dist else ""

    # -- work hooks ----------------------------------------------------------------------------------------

    def call(self, hook_name: str, **kwargs):
        """Call a work hook; an exception raised by a third-party plugin becomes a PluginError naming it.

        Errors of nst-plugin's own kinds (a :class:`~nst_plugin.errors.UserError` such as missing weights)
        pass through unchanged: their message is already meant for the user. In strict mode the original
        exception propagates, traceback and all.
        """
        try:
            return getattr(self.pm.hook, hook_name)(**kwargs)
        except NstError:
            raise
        except Exception as exc:
            culprit = getattr(exc, "nst_plugin", None) or self.blame(exc)  # nst_plugin: see nst_plugin.failures
            if culprit is None:
                raise
            failure = PluginFailure(culprit, getattr(exc, "nst_description", None) or _one_line(exc), "hook")
            self.failures.append(failure)
            if strict():
                raise
            raise PluginError(
                f"plugin {culprit!r}{self.origin(culprit)} failed during {hook_name}: {failure.error} "
                "(set NST_STRICT_PLUGINS=1 to see the traceback, or disable it with NST_LOAD_PLUGINS)"
            ) from exc

    def _answered(self, hook_name: str, result):
        if result is None:
            raise PluginError(f"no plugin returned a result from {hook_name}")
        return result

    def stylize_frame(self, content, styles, config, context) -> FrameResult:
        """``nst_stylize_frame`` through the first plugin that answers; a failing plugin is named."""
        return self._answered("nst_stylize_frame", self.call(
            "nst_stylize_frame", content=content, styles=styles, config=config, context=context))

    def stylize_sequence(self, frames, styles, config, context, sink) -> SequenceResult:
        """``nst_stylize_sequence`` through the first plugin that answers; a failing plugin is named."""
        return self._answered("nst_stylize_sequence", self.call(
            "nst_stylize_sequence", frames=frames, styles=styles, config=config, context=context, sink=sink))

    def run_context(self, on_event=None, **more) -> RunContext:
        """A fresh context for one run on this host."""
        return RunContext(host=self, on_event=on_event or (lambda event: None), **more)

    # -- listing ----------------------------------------------------------------------------------------

    def info(self) -> list[dict]:
        """Every plugin with its version, distribution and what it registers (for ``nst plugins``)."""
        from . import __version__

        registered = self.registry.by_plugin()
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            dist, version = self.distributions.get(name, (None, None))
            if name in DEFAULT_PLUGINS:
                dist, version = "nst-plugin", __version__
            hooks = sorted(h.name for h in self.pm.get_hookcallers(plugin) or [])
            rows.append({
                "name": name,
                "distribution": dist,
                "version": version,
                "builtin": name in DEFAULT_PLUGINS,
                "hooks": hooks,
                "registers": registered.get(name, {}),
            })
        return rows


# -- the process-wide host --------------------------------------------------------------------------------

_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host


def reset() -> None:
    """Forget the process-wide host (tests, after changing env vars): the next use loads plugins afresh."""
    global _host
    _host = None


def __getattr__(name: str):
    if name == "FAILURES":  # the plugins that failed in this process, for ``nst plugins``
        return get_host().failures
    raise AttributeError(name)


def get_plugin_manager() -> pluggy.PluginManager:
    return get_host().pm


def get_registry() -> Registry:
    return get_host().registry


def register_plugin(plugin, name: str | None = None) -> str:
    return get_host().register(plugin, name)


def unregister_plugin(name: str) -> None:
    get_host().unregister(name)


def reset_registry() -> None:
    get_host()._registry = None


def call_work_hook(hook_name: str, **kwargs):
    return get_host().call(hook_name, **kwargs)


def plugin_info() -> list[dict]:
    return get_host().info()
