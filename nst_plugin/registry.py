"""Named losses, optimizers, backbones and sequence engines, collected from the ``nst_register_*`` hooks.

Registration is cheap and imports nothing heavy: a factory is only called when a run needs it. Each plugin's
hook implementation gets its own ``register`` callable, so the registry knows who registered what and a
duplicate name is an error that names both plugins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import PluginError, UserError, suggest

KINDS = ("losses", "optimizers", "backbones", "engines")
SINGULAR = {"losses": "loss", "optimizers": "optimizer", "backbones": "backbone", "engines": "engine"}


@dataclass(frozen=True)
class PluginOption:
    """A setting a plugin's loss, optimizer, backbone or engine accepts: ``--option NAME.KEY=VALUE`` on the command
    line, ``options: {"NAME.KEY": VALUE}`` in a settings file. ``type`` converts and checks the value
    (``float``, ``int``, ``str``, ``bool`` or any callable that raises ``ValueError`` on a bad one).

    An engine's option may also have a ``flag`` of its own on ``nst video`` (``--keyframe-size 48``; its
    setting name ``keyframe_size`` in a settings file and the Python API); ``repeat``: the flag may be given
    several times and the value is a tuple (``type`` converts one item); ``per_frame``: the engine records the
    option's effect in each frame's key, so changing it re-makes only the frames it changes instead of
    refusing the output folder's settings."""

    key: str
    type: Callable[[Any], Any] = float
    default: Any = None
    help: str = ""
    flag: str = ""
    repeat: bool = False
    per_frame: bool = False

    def __post_init__(self):
        if self.flag and (not self.flag.startswith("--") or not self.flag[2:].replace("-", "").isalnum()):
            raise PluginError(f"option {self.key!r}: flag {self.flag!r} must look like --some-name")

    @property
    def alias(self) -> str:
        """The setting name of ``flag`` (``--keyframe-size`` -> ``keyframe_size``), or ""."""
        return self.flag[2:].replace("-", "_")

    def convert(self, value):
        if self.repeat:
            items = value if isinstance(value, (list, tuple)) else [value]
            converted = []
            for item in items:  # a refusal names the item, not the whole list
                try:
                    converted.append(self._one(item))
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{item!r}: {exc}") from None
            return tuple(converted)
        return self._one(value)

    def _one(self, value):
        if self.type is bool and isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"not a yes/no value: {value!r}")
        return self.type(value)

    def as_dict(self) -> dict:
        return {"key": self.key, "type": getattr(self.type, "__name__", str(self.type)), "default": self.default,
                "help": self.help, "flag": self.flag, "repeat": self.repeat, "per_frame": self.per_frame}


def bounded(kind: Callable[[Any], Any], low=None, high=None, *, above: bool = False, below: bool = False):
    """An option ``type`` (:class:`PluginOption`): ``kind`` of the value, refused with one line when it is under
    ``low`` (or at it, ``above``) or over ``high`` (or at it, ``below``). Checked with the other options, before
    a run touches its output."""

    def convert(value):
        number = kind(value)
        if number != number:
            raise ValueError("must be a number, got nan")
        if low is not None and (number <= low if above else number < low):
            raise ValueError(f"must be {'more than' if above else 'at least'} {low}, got {number}")
        if high is not None and (number >= high if below else number > high):
            raise ValueError(f"must be {'less than' if below else 'at most'} {high}, got {number}")
        return number

    convert.__name__ = getattr(kind, "__name__", str(kind))
    return convert


OUTPUT_SIZES = ("size", "source")


@dataclass(frozen=True)
class EngineTraits:
    """What the core, the CLI, a cluster and the Blender add-on need to know of a sequence engine, given when it
    is registered (``register(name, factory, description, traits=EngineTraits(...))``); the defaults fit an
    engine that stylizes frames one after the other through ``context.stylize_frame``.

    * ``output_size``: ``"size"``: frames at ``--size`` (the preset's, 384 px) unless given; ``"source"``: at the
      source's own resolution unless ``--size`` is given;
    * ``frame_settings``: it applies per-frame settings (``context.schedule``), so ``--frame-settings`` is
      accepted; otherwise refused before any work;
    * ``seekable``: it reads the source more than once, so a camera is refused before any work;
    * ``memory``: ``memory(config, height, width) -> bytes`` its run needs at the output size (checked before
      any work, ``--size 0`` included); None: one backbone pass at the working size;
    * ``label``, ``hint``: a short name and one line for a user interface (the Blender panel); default: the
      name and the description;
    * ``style_optional``: ``style_optional(config) -> bool``: the run may have no style image (its look comes
      from elsewhere, e.g. painted keyframes); None: a style image is needed (refused before any work);
    * ``style_masks``: its frames honour the run's style masks (``--style-mask``: every ``context.stylize_frame``
      call it makes for frame ``index`` passes ``context.style_masks_at(index)`` on, and a unit it ships to a
      cluster carries them); otherwise ``--style-mask`` is refused before any work.
    """

    output_size: str = "size"
    frame_settings: bool = False
    seekable: bool = False
    memory: Callable[..., int] | None = None
    label: str = ""
    hint: str = ""
    style_optional: Callable[..., bool] | None = None
    style_masks: bool = False

    def as_dict(self) -> dict:
        return {"output_size": self.output_size, "frame_settings": self.frame_settings, "seekable": self.seekable,
                "style_masks": self.style_masks, "label": self.label, "hint": self.hint}


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    description: str = ""
    layers: tuple[str, ...] = ()  # backbones only
    weight_sources: tuple[str, ...] = ()  # backbones only
    options: tuple[PluginOption, ...] = ()
    traits: EngineTraits | None = None  # engines only

    def option_values(self, config) -> dict[str, Any]:
        """This entry's options for a run: the declared defaults with the user's ``NAME.KEY`` values."""
        return {o.key: config.options.get(f"{self.name}.{o.key}", o.default) for o in self.options}

    def as_dict(self) -> dict:
        data = {"name": self.name, "plugin": self.plugin, "description": self.description,
                "options": [o.as_dict() for o in self.options]}
        if self.kind == "backbones":
            data["layers"] = list(self.layers)
            data["weight_sources"] = list(self.weight_sources)
        if self.kind == "engines":
            traits = self.traits or EngineTraits()
            data["traits"] = {**traits.as_dict(), "label": traits.label or self.name,
                              "hint": traits.hint or self.description}
        return data


# names an engine option's flag may not take: the settings and the video commands' own options
COMMAND_OPTIONS = ("style", "output", "frames", "step", "fps", "encode", "progress", "overwrite", "quiet",
                   "frame_settings", "cluster", "workers", "settings", "option", "loss", "camera", "record", "help",
                   "mask")


def _check_flags(plugin: str, kind: str, name: str, options, taken: dict) -> None:
    """An option's flag is an engine's, and names nothing else on the command line."""
    from dataclasses import fields

    from .config import StyleConfig

    reserved = {f.name for f in fields(StyleConfig)} | set(COMMAND_OPTIONS)
    for option in options:
        if not option.flag:
            continue
        if kind != "engines":
            raise PluginError(f"plugin {plugin!r}: {SINGULAR[kind]} {name!r} option {option.key!r} has a flag; "
                              "only an engine's options may (others are --option NAME.KEY=VALUE)")
        if option.alias in reserved or option.alias.endswith("_weight"):
            raise PluginError(f"plugin {plugin!r}: engine {name!r} option {option.key!r} flag {option.flag} is "
                              "already a setting or an option of nst video")
        if option.alias in taken:
            other = taken[option.alias][0]
            raise PluginError(f"flag {option.flag} is declared twice: by engine {other.name!r} (plugin "
                              f"{other.plugin!r}) and by engine {name!r} (plugin {plugin!r})")


@dataclass
class Registry:
    losses: dict[str, Entry] = field(default_factory=dict)
    optimizers: dict[str, Entry] = field(default_factory=dict)
    backbones: dict[str, Entry] = field(default_factory=dict)
    engines: dict[str, Entry] = field(default_factory=dict)

    def registrar(self, kind: str, plugin: str) -> Callable[..., None]:
        """The ``register`` callable handed to one plugin's ``nst_register_<kind>`` implementation."""
        table: dict[str, Entry] = getattr(self, kind)

        def register(name, factory, description="", *, layers=(), weight_sources=(), options=(), traits=None):
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
            if any(not isinstance(o, PluginOption) for o in options):
                raise PluginError(f"plugin {plugin!r} registered {SINGULAR[kind]} {name!r} with options that are not "
                                  "nst_plugin.PluginOption objects")
            if traits is not None and (kind != "engines" or not isinstance(traits, EngineTraits)):
                raise PluginError(f"plugin {plugin!r} registered {SINGULAR[kind]} {name!r} with traits that are not "
                                  "an nst_plugin.EngineTraits (engines only)")
            _check_flags(plugin, kind, name, options, self.flagged_options())
            if kind == "engines" and (traits or EngineTraits()).output_size not in OUTPUT_SIZES:
                raise PluginError(f"plugin {plugin!r} registered engine {name!r} with output_size "
                                  f"{traits.output_size!r} (valid: {', '.join(OUTPUT_SIZES)})")
            table[name] = Entry(kind, name, factory, plugin, description, tuple(layers), tuple(weight_sources),
                                tuple(options), (traits or EngineTraits()) if kind == "engines" else None)

        return register

    def get(self, kind: str, name: str) -> Entry:
        table: dict[str, Entry] = getattr(self, kind)
        try:
            return table[name]
        except KeyError:
            raise UserError(f"unknown {SINGULAR[kind]} {name!r} ({suggest(name, table)})") from None

    def traits(self, engine: str) -> EngineTraits:
        """The traits of the engine ``engine`` (an unknown name: one line listing the installed ones)."""
        return self.get("engines", engine).traits or EngineTraits()

    def flagged_options(self) -> dict[str, tuple[Entry, PluginOption]]:
        """{setting name: (engine entry, option)} of the engines' options that have a ``flag``."""
        return {option.alias: (entry, option) for entry in self.engines.values() for option in entry.options
                if option.flag}

    def per_frame_options(self) -> tuple[str, ...]:
        """The ``NAME.KEY`` of every option whose effect its plugin records per frame (``per_frame``)."""
        return tuple(sorted(f"{entry.name}.{option.key}" for kind in KINDS for entry in getattr(self, kind).values()
                            for option in entry.options if option.per_frame))

    def find(self, name: str) -> list[Entry]:
        """Every entry of any kind registered under ``name``."""
        return [getattr(self, kind)[name] for kind in KINDS if name in getattr(self, kind)]

    def by_plugin(self) -> dict[str, dict[str, list[str]]]:
        out: dict[str, dict[str, list[str]]] = {}
        for kind in KINDS:
            for entry in getattr(self, kind).values():
                out.setdefault(entry.plugin, {}).setdefault(kind, []).append(entry.name)
        return out
