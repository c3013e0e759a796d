"""The sequence engines the engine offers, as its ``nst plugins --json`` lists them: the panel's Engine
items and their one-line hints, the checks before a run, and the engines' plugin options in the engine's
words. No bpy here, and no engine's name: everything the add-on knows of an engine comes from the listing.

The listing's ``engines`` table is ``{name: {"name", "plugin", "description", "options": [{"key", "type",
"default", "help", "flag", "repeat"}, ...], "traits": {"output_size": "size" | "source", "frame_settings": bool, "seekable":
bool, "label": str, "hint": str}}}``. ``output_size`` "source": the engine's frames are at the source's own
resolution unless a size is given ("size": at ``--size``'s default); ``frame_settings``: it takes
per-frame (keyframed) settings; ``seekable``: it reads its source more than once (the add-on only sends
files, so it never matters here); ``label`` and ``hint``: its short name and one line for the panel.

The last listing is module state (:data:`LISTED`), set by the preferences' Check and Set Up Engine (and
restored from the preferences in a new session); None until one is known. Before that the panel offers
one item, :data:`DEFAULT`: no engine named, the engine runs its own default.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT = "DEFAULT"  # the Engine item that names no engine: the settings carry no "engine" key

SOURCE = "source"  # output_size: the source's own resolution unless a size is given
BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True)
class Option:
    """One plugin option of an engine (``--option ENGINE.KEY=VALUE``); ``default`` as text ("": none)."""

    key: str
    kind: str = ""  # the listing's type name: int, float, bool, str, ... ("": not said)
    default: str = ""
    help: str = ""
    flag: str = ""  # its own flag on the command line (--keyframe-size), or ""
    repeat: bool = False  # a list of values (painted keyframes): no panel field; an operator of its own sets it


@dataclass(frozen=True)
class Engine:
    name: str
    label: str
    hint: str
    output_size: str = "size"
    frame_settings: bool | None = None  # None: the listing does not say (an engine from before its traits)
    options: tuple[Option, ...] = ()

    @property
    def fields(self) -> tuple[Option, ...]:
        """The options the panel shows as a text field each (one value each)."""
        return tuple(option for option in self.options if not option.repeat)


LISTED: dict[str, Engine] | None = None  # name -> Engine, in the listing's order; None: no listing known yet


def option_text(value) -> str:
    """A listed default as the text of an option field: ``None`` -> "", ``False`` -> "false", 1e-06 -> "1e-06"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def from_listing(listing) -> dict[str, Engine] | None:
    """The engines of an ``nst plugins --json`` answer; None when it has no engines table (an old engine)."""
    table = listing.get("engines") if isinstance(listing, dict) else None
    if not isinstance(table, dict):
        return None
    found: dict[str, Engine] = {}
    for name, entry in table.items():
        if not isinstance(name, str) or not name or not isinstance(entry, dict):
            continue
        traits = entry.get("traits") if isinstance(entry.get("traits"), dict) else {}
        options = []
        for option in entry.get("options") or ():
            if isinstance(option, dict) and isinstance(option.get("key"), str) and option["key"]:
                options.append(Option(option["key"], str(option.get("type") or ""), option_text(option.get("default")),
                                      " ".join(str(option.get("help") or "").split()), str(option.get("flag") or ""),
                                      option.get("repeat") is True))
        frame_settings = traits.get("frame_settings")
        found[name] = Engine(
            name=name, label=str(traits.get("label") or name),
            hint=" ".join(str(traits.get("hint") or entry.get("description") or "").split()),
            output_size=SOURCE if traits.get("output_size") == SOURCE else "size",
            frame_settings=bool(frame_settings) if isinstance(frame_settings, bool) else None,
            options=tuple(options))
    return found


def use_listing(listing) -> None:
    """Take the engines of a listing (an answer without an engines table leaves what was known)."""
    global LISTED
    engines = from_listing(listing)
    if engines is not None:
        LISTED = engines


def forget() -> None:
    global LISTED
    LISTED = None


def get(name: str | None) -> Engine | None:
    """The listed engine ``name``; None for the default item, an engine not listed, or no listing."""
    return LISTED.get(name) if name and LISTED is not None else None


# -- the panel ----------------------------------------------------------------------------------------------------

def items(selected: str = "") -> list[tuple[str, str, str]]:
    """The Engine enum's (identifier, name, description): the default item, the listed engines, and the
    selected engine when the listing lacks it (a result strip's, loaded as stored)."""
    default = ("The engine's own default engine (no engine named); press Check in the add-on's preferences "
               "to list the installed engines" if LISTED is None else "The engine's own default engine (no engine named)")
    found = [(DEFAULT, "Engine's default", default)]
    found += [(engine.name, engine.label, engine.hint or engine.name) for engine in (LISTED or {}).values()]
    if selected and (LISTED is None or selected not in LISTED):
        found.append((selected, selected, missing(selected) or f"the {selected} engine (press Check in the add-on's "
                                                                 "preferences to list the engines)"))
    return found


def hint(selected: str = "") -> tuple[str, bool]:
    """The panel's line under the Engine choice, and whether it is a problem."""
    engine = get(selected)
    if engine is not None:
        return engine.hint, False
    if selected and LISTED is not None:
        return missing(selected), True
    if LISTED is None:
        what = f"{selected}: " if selected else ""
        return f"{what}press Check in the add-on's preferences to list the engines", False
    return "The engine's own default engine", False


# -- before a run -------------------------------------------------------------------------------------------------

def missing(name: str | None) -> str | None:
    """One line when the last listing lacks the engine ``name`` (a run with it is refused, never switched to
    another engine); None when it is listed, is the default, or no listing is known (the engine decides)."""
    if not name or LISTED is None or name in LISTED:
        return None
    listed = ", ".join(LISTED) or "none"
    return (f"the {name} engine is not installed in the engine (it lists: {listed}): install the plugin that "
            "provides it and press Check in the add-on's preferences, or choose another engine")


def per_frame_refusal(name: str | None, animated) -> str | None:
    """One line when settings keyframed on the timeline (``animated``) go to an engine whose listing says it
    takes one value per run (``frame_settings`` false); None otherwise (no listing: the engine decides)."""
    engine = get(name)
    if not animated or engine is None or engine.frame_settings is not False:
        return None
    others = [e.label for e in (LISTED or {}).values() if e.frame_settings]
    choose = f"choose {' or '.join(others)}" if others else "choose an engine that takes per-frame values"
    return (f"{' and '.join(n.replace('_', ' ') for n in animated)} keyframed on the timeline: the {engine.label} "
            f"engine takes one value per run; {choose}, or remove the keyframes")


# -- plugin options -----------------------------------------------------------------------------------------------

def _number(kind: str, text: str):
    return int(text) if kind == "int" else float(text)


def changed(kind: str, value: str, default: str) -> bool:
    """Whether an option field's text differs from its default (empty text: the default)."""
    value, default = value.strip(), default.strip()
    if not value or value == default:
        return False
    try:
        if kind in ("int", "float"):
            return _number(kind, value) != _number(kind, default)
        if kind == "bool":
            return BOOL_WORDS[value.lower()] != BOOL_WORDS[default.lower()]
    except (KeyError, ValueError):
        pass
    return True


def check_value(engine: str, key: str, kind: str, value: str) -> None:
    """ValueError (one line) for a value the option's type refuses (int, float, bool); others: the engine checks."""
    value = value.strip()
    try:
        if kind in ("int", "float"):
            _number(kind, value)
        elif kind == "bool":
            BOOL_WORDS[value.lower()]
    except (KeyError, ValueError):
        words = {"int": "a whole number", "float": "a number", "bool": "yes or no (true, false)"}[kind]
        raise ValueError(f"engine option {engine}.{key}: {value!r} is not {words}") from None


def option_arg(engine: str, key: str, value: str) -> str:
    """``ENGINE.KEY=VALUE``: one entry of the settings' ``option`` list (the engine's ``--option``)."""
    return f"{engine}.{key}={value.strip()}"


def parse_option_arg(text) -> tuple[str, str, str] | None:
    """``"crossfade.every=2"`` -> ("crossfade", "every", "2"); None for text that is not ``NAME.KEY=VALUE``."""
    key, sep, value = str(text).partition("=")
    name, dot, option = key.strip().rpartition(".")
    if not sep or not dot or not name or not option:
        return None
    return name, option, value.strip()
