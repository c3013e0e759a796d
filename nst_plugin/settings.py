"""The settings vocabulary: one spelling for the CLI, ``--settings`` files, the API and the Blender add-on.

A setting is a :class:`~nst_plugin.config.StyleConfig` field name (``size``), a loss weight ``<loss>_weight``,
an extra loss ``loss``, a plugin option ``option`` or an engine option's flag (``keyframe_size``);
:func:`overrides_from_settings` turns a flat mapping of them into :func:`~nst_plugin.config.make_config`
overrides, and :func:`_coerce` is the one place a value from
JSON or the command line becomes the field's type (:func:`setting_type` the one reading of that type). No
TensorFlow import here."""

from __future__ import annotations

import json
import numbers
import os
from dataclasses import fields
from pathlib import Path

from .config import StyleConfig
from .errors import UserError, suggest

SETTING_FIELDS = {f.name: f for f in fields(StyleConfig) if f.name != "per_frame_options"}
LOSS_WEIGHT_SUFFIX = "_weight"


def setting_names() -> list[str]:
    """Every name a settings mapping may use (besides ``<loss>_weight``, ``loss`` and ``option``)."""
    return sorted(name for name in SETTING_FIELDS if name not in ("loss_weights", "options"))


def setting_type(name: str) -> str:
    """The type of setting ``name``'s values: ``"bool"``, ``"int"``, ``"float"``, ``"str"``, or a list
    (comma-separated text on the command line) of ``"floats"``, ``"ints"`` or ``"strs"``; ``""`` for a
    mapping (``loss_weights``, ``options``). ``None`` is always allowed: "not given"."""
    kind = str(SETTING_FIELDS[name].type)
    if "tuple" in kind:
        return "floats" if "float" in kind else "ints" if "int" in kind else "strs"
    for scalar in ("bool", "int", "float", "str"):
        if kind.startswith(scalar):
            return scalar
    return ""


def _coerce(name: str, value):
    """A settings value (from JSON or the CLI) as the field's type, with a one-line error."""
    kind = setting_type(name)
    if value is None:
        return None
    if kind in ("floats", "ints", "strs"):
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, (list, tuple)):
            parts = list(value)
        else:
            raise UserError(f"setting {name!r} must be a list or comma-separated text, got {value!r}")
        if kind == "floats":
            return parse_floats(",".join(str(p) for p in parts), f"setting {name!r}")
        if kind == "ints":
            try:
                return tuple(int(str(p)) for p in parts)
            except ValueError:
                raise UserError(f"setting {name!r} must be comma-separated whole numbers, got {value!r}") from None
        return tuple(str(p) for p in parts)
    if kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"setting {name!r} must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise UserError(f"setting {name!r} must be a whole number, got {value!r}")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise UserError(f"setting {name!r} must be a number, got {value!r}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise UserError(f"setting {name!r} must be text, got {value!r}")
        return value
    return value


def parse_option(text: str) -> tuple[str, str]:
    """``"w2.eps=1e-5"`` -> ``("w2.eps", "1e-5")`` (typed later by the plugin's declaration)."""
    key, sep, value = str(text).partition("=")
    name, dot, option = key.strip().rpartition(".")
    if not sep or not dot or not name or not option:
        raise UserError(f"--option expects NAME.KEY=VALUE (e.g. w2.eps=1e-5), got {text!r}")
    return f"{name}.{option}", value.strip()


def overrides_from_settings(settings: dict, what: str = "settings") -> tuple[str | None, dict]:
    """(preset, :func:`~nst_plugin.config.make_config` overrides) from a flat settings mapping: a field name
    per key, loss weights as ``<loss>_weight``, extra losses as ``loss: ["name=weight", ...]``, plugin options
    as ``option: ["name.key=value", ...]`` or ``options: {"name.key": value}``. ``None`` values are skipped.
    The one mapping from the user's words to a config: the CLI, ``--settings`` files and the add-on use it."""
    if not isinstance(settings, dict):
        raise UserError(f"{what} must be a JSON object of setting names and values")
    overrides: dict = {}
    weights: dict[str, float] = {}
    options: dict[str, object] = {}
    preset = None
    for key, value in settings.items():
        if value is None:
            continue
        if key == "preset":
            preset = _coerce("preset", value)
        elif key == "loss":
            for text in [value] if isinstance(value, str) else value:
                name, weight = parse_loss_option(text)
                weights[name] = weight
        elif key == "option":
            for text in [value] if isinstance(value, str) else value:
                name, raw = parse_option(text)
                options[name] = raw
        elif key == "options":
            if not isinstance(value, dict):
                raise UserError(f"{what}: 'options' must map NAME.KEY to a value")
            options.update(value)
        elif key == "loss_weights":
            if not isinstance(value, dict):
                raise UserError(f"{what}: 'loss_weights' must map loss names to weights")
            weights.update({str(k): v for k, v in value.items()})
        elif key in SETTING_FIELDS:
            overrides[key] = _coerce(key, value)
        elif key.endswith(LOSS_WEIGHT_SUFFIX) and len(key) > len(LOSS_WEIGHT_SUFFIX):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise UserError(f"{what}: {key!r} must be a number, got {value!r}")
            weights[key[: -len(LOSS_WEIGHT_SUFFIX)]] = float(value)
        elif key in (flagged := _flagged_options()):
            entry, option = flagged[key]
            options[f"{entry.name}.{option.key}"] = tuple(value) if isinstance(value, list) else value
        else:
            names = setting_names() + sorted(_flagged_options()) + ['<loss>_weight', 'loss', 'option']
            raise UserError(f"{what}: unknown setting {key!r} ({suggest(key, names)})")
    if weights:
        overrides["loss_weights"] = weights
    if options:
        overrides["options"] = options
    return preset, overrides


def _flagged_options() -> dict:
    """The installed engines' options that have a flag, by setting name (``keyframe_size``): they are settings
    too (``--keyframe-size`` on the command line, ``"keyframe_size"`` in a settings file or the Python API)."""
    from .plugins import get_registry

    return get_registry().flagged_options()


def load_settings_file(path: str | os.PathLike) -> dict:
    """A ``--settings`` JSON file as a flat settings mapping (see :func:`overrides_from_settings`)."""
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"settings file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"settings file {str(path)!r} cannot be read: {exc}") from None
    except ValueError as exc:
        raise UserError(f"settings file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UserError(f"settings file {str(path)!r} must hold a JSON object of setting names and values")
    return data


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """``"0.7,0.3"`` -> ``(0.7, 0.3)`` with a clear error."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UserError(f"{what} must be comma-separated numbers, got {text!r}") from None


def parse_loss_option(text: str) -> tuple[str, float]:
    """``"histogram=10"`` -> ``("histogram", 10.0)``; a bare name gets weight 1."""
    name, _, weight = text.partition("=")
    if not name.strip():
        raise UserError(f"--loss expects NAME or NAME=WEIGHT, got {text!r}")
    if not weight:
        return name.strip(), 1.0
    try:
        return name.strip(), float(weight)
    except ValueError:
        raise UserError(f"--loss {text!r}: the weight after '=' must be a number") from None
