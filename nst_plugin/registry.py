"""Named losses, optimizers and backbones, collected from the ``nst_register_*`` hooks.

Registration is cheap and imports nothing heavy: a factory is only called when a run needs it. Each plugin's
hook implementation gets its own ``register`` callable, so the registry knows who registered what and a
duplicate name is an error that names both plugins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import PluginError, UserError, suggest

KINDS = ("losses", "optimizers", "backbones")
SINGULAR = {"losses": "loss", "optimizers": "optimizer", "backbones": "backbone"}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    layers: tuple[str, ...] = ()  # backbones only
    weight_sources: tuple[str, ...] = ()  # backbones only

    def as_dict(self) -> dict:
        data = {"name": self.name, "plugin": self.plugin, "description": self.description}
        if self.kind == "backbones":
            data["layers"] = list(self.layers)
            data["weight_sources"] = list(self.weight_sources)
        return data


@dataclass
class Registry:
    losses: dict[str, Entry] = field(default_factory=dict)
    optimizers: dict[str, Entry] = field(default_factory=dict)
    backbones: dict[str, Entry] = field(default_factory=dict)

    def registrar(self, kind: str, plugin: str) -> Callable[..., None]:
        """The ``register`` callable handed to one plugin's ``nst_register_<kind>`` implementation."""
        table: dict[str, Entry] = getattr(self, kind)

        def register(name, factory, description="", *, layers=(), weight_sources=()):
            if not isinstance(name, str) or not name.strip() or "=" in name or "," in name:
                raise PluginError(f"plugin {plugin!r} registered an invalid {SINGULAR[kind]} name {name!r}")
            if not callable(factory):
                raise PluginError(f"plugin {plugin!r} registered {SINGULAR[kind]} {name!r} with a factory that is not callable")
            if kind == "backbones" and not layers:
                raise PluginError(f"plugin {plugin!r} registered backbone {name!r} without its layer names")
            if name in table:
                raise PluginError(
                    f"{SINGULAR[kind]} name {name!r} is registered twice: by plugin {table[name].plugin!r} "
                    f"and by plugin {plugin!r}; uninstall one or disable it with NST_LOAD_PLUGINS"
                )
            table[name] = Entry(kind, name, factory, plugin, description, tuple(layers), tuple(weight_sources))

        return register

    def get(self, kind: str, name: str) -> Entry:
        table: dict[str, Entry] = getattr(self, kind)
        try:
            return table[name]
        except KeyError:
            raise UserError(f"unknown {SINGULAR[kind]} {name!r} ({suggest(name, table)})") from None

    def by_plugin(self) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for kind in KINDS:
            for entry in getattr(self, kind).values():
                out.setdefault(entry.plugin, {}).setdefault(kind, []).append(entry.name)
        return out
