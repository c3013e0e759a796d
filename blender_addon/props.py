"""The panel's settings (``scene.nst``): one PropertyGroup, saved with the .blend."""

import json

import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)

from . import compat, engines
from . import strips as S

# Filled by the preferences' Check button from ``nst plugins --json``; kept alive at module level because
# Blender does not copy the strings of dynamic enum items.
PRESETS = ["default", "seed"]
LOSSES = []  # loss terms a plugin adds (the built-in content, style, tv and temporal have their own fields)
BUILTIN_LOSSES = ("content", "style", "tv", "temporal")
_PRESET_ITEMS = []
_LOSS_ITEMS = []
_ENGINE_ITEMS = []
_RESTORED = []  # [True] once this session looked for a listing the preferences kept
_KEPT_TEXT = {}  # every string handed to Blender in the engine items: Blender does not copy them


# settings that may be keyframed on the timeline and reach the engine frame by frame (nst_plugin.schedule's
# FRAME_SETTING_KEYS): the strength, or with Custom weights the style and temporal weights
ANIMATABLE = {False: ("strength",), True: ("style_weight", "temporal_weight")}


def _live_preview_changed(self, context):
    from . import preview_live

    preview_live.on_toggle(self, context)


def preset_items(self, context):
    _PRESET_ITEMS[:] = [(name, name, f"the engine's {name} preset") for name in PRESETS]
    return _PRESET_ITEMS


def loss_items(self, context):
    _LOSS_ITEMS[:] = [("NONE", "None", "no extra loss term")] + [
        (name, name, f"the {name} loss term from an installed plugin") for name in LOSSES]
    return _LOSS_ITEMS


def set_engine_lists(listing: dict, sync: bool = True) -> None:
    """Presets, plugin losses and the engines (their traits and options) from ``nst plugins --json``;
    ``sync``: give every scene's panel fields for the options of its engine (not while Blender draws)."""
    if listing.get("presets"):
        PRESETS[:] = list(listing["presets"])
    LOSSES[:] = sorted(name for name in listing.get("losses", {}) if name not in BUILTIN_LOSSES)
    engines.use_listing(listing)
    if sync:
        sync_scenes()


def kept_listing(listing: dict) -> str:
    """What the preferences keep of a listing for the next session (``engine_listing``): JSON text."""
    return json.dumps({key: listing[key] for key in ("version", "presets", "losses", "engines") if key in listing})


def ensure_listing(context=None) -> None:
    """In a new session, the listing the preferences kept from the last Check or Set Up Engine (once)."""
    if _RESTORED:
        return
    _RESTORED.append(True)
    try:
        context = context or bpy.context
        addon = context.preferences.addons.get(__package__)
        text = getattr(addon.preferences, "engine_listing", "") if addon is not None else ""
        listing = json.loads(text) if text else None
    except (AttributeError, TypeError, ValueError):
        listing = None
    if isinstance(listing, dict) and engines.LISTED is None:
        set_engine_lists(listing, sync=False)  # maybe while Blender draws: the fields come with a timer
        schedule_sync()


def forget_listing() -> None:
    """A new session of the add-on (register): no listing known until one is restored or checked."""
    engines.forget()
    _RESTORED.clear()


def sync_scenes():
    """The option fields of every scene's engine, from the listing (also a one-shot timer: returns None)."""
    for scene in getattr(bpy.data, "scenes", ()):
        settings = getattr(scene, "nst", None)
        if settings is not None:
            settings.sync_options()
    return None


def schedule_sync() -> None:
    """Sync the option fields soon, from a timer (Blender refuses to write data while it draws)."""
    if not bpy.app.timers.is_registered(sync_scenes):
        bpy.app.timers.register(sync_scenes, first_interval=0.0)


def engine_items(self, context):
    ensure_listing(context)
    keep = lambda text: _KEPT_TEXT.setdefault(text, text)  # noqa: E731
    _ENGINE_ITEMS[:] = [(keep(name), keep(label), keep(hint), "", number)
                        for number, (name, label, hint) in enumerate(engines.items(self.engine_name))]
    return _ENGINE_ITEMS


def _get_engine(self) -> int:
    selected = self.engine_name or engines.DEFAULT
    for identifier, _label, _hint, _icon, number in engine_items(self, None):
        if identifier == selected:
            return number
    return 0


def _set_engine(self, value: int) -> None:
    for identifier, _label, _hint, _icon, number in engine_items(self, None):
        if number == value:
            self.choose_engine("" if identifier == engines.DEFAULT else identifier)
            return


class NST_EngineOption(bpy.types.PropertyGroup):
    """One plugin option of an engine, as the listing gives it; ``name`` is ``ENGINE.KEY``."""

    engine: StringProperty(name="Engine")
    key: StringProperty(name="Key")
    value: StringProperty(name="Value", description="The option's value (empty: the engine's default); the ? "
                                                    "beside it says what it does")
    default: StringProperty(name="Default", description="The listed default, as text")
    kind: StringProperty(name="Type", description="The listed type (int, float, bool, str, ...)")
    help: StringProperty(name="Help")


class NST_Settings(bpy.types.PropertyGroup):
    style_image: StringProperty(name="Style image", subtype="FILE_PATH",
                                description="The painting (or any image) whose style is transferred")
    preset: EnumProperty(name="Preset", items=preset_items,
                         description="default: quality per second, temporally coherent; seed: the article's exact method")
    engine_name: StringProperty(name="Engine name", default="",
                                description="The engine the frames are made with (empty: the engine's default); "
                                            "a result strip's engine is kept as stored, listed or not")
    engine: EnumProperty(name="Engine", items=engine_items, get=_get_engine, set=_set_engine,
                         description="How the frames are stylized: the engines the engine lists (Check in the "
                                     "add-on's preferences lists them)")
    options: CollectionProperty(type=NST_EngineOption, name="Engine options")
    show_options: BoolProperty(name="Engine options", default=False, description="Show the engine's plugin options")
    resolution: EnumProperty(name="Resolution", items=(
        ("STRIP", "Strip's", "The strip's own resolution: the result strip fits the project as it is"),
        ("HALF", "Half", "Half the strip's resolution (a quarter of the pixels), scaled up to cover the strip"),
        ("QUARTER", "Quarter", "A quarter of the strip's resolution, scaled up to cover the strip"),
        ("SIZE", "Size", "The longer side below, in pixels")),
        default="STRIP", description="Resolution of the stylized frames; the result strip covers its source")
    size: IntProperty(name="Size", default=384, min=32, soft_max=1024,
                      description="Longer side of the stylized frames in pixels (Resolution: Size)")
    strength: FloatProperty(name="Strength", default=0.5, min=0.0, max=1.0, subtype="FACTOR",
                            description="0: barely styled, 1: all style; 0.5 is the preset's balance")
    custom_weights: BoolProperty(name="Custom weights", default=False,
                                 description="Set the loss weights here instead of using the preset's (and the strength)")
    content_weight: FloatProperty(name="Content", default=1000.0, min=0.0, soft_max=100000.0, precision=1,
                                  description="The default preset's content weight is 1000")
    style_weight: FloatProperty(name="Style", default=6000.0, min=0.0, soft_max=100000.0, precision=1,
                                description="The default preset's style weight is 6000")
    temporal_weight: FloatProperty(name="Temporal", default=0.5, min=0.0, soft_max=2.0, precision=3,
                                   description="Pull toward the previous frame warped by optical flow (0: off)")
    extra_loss: EnumProperty(name="Extra loss", items=loss_items,
                             description="A loss term from a plugin (press Check in the add-on's preferences to list them)")
    extra_loss_weight: FloatProperty(name="Weight", default=1.0, min=0.0, soft_max=10.0, precision=3)
    preserve_color: BoolProperty(name="Preserve colour", default=False,
                                 description="Transfer luminance only; keep the strip's colours")
    iterations: IntProperty(name="Iterations", default=0, min=0, soft_max=500,
                            description="Optimizer iterations per frame (0: the preset's)")
    use_strip_range: BoolProperty(name="Strip's frames", default=True,
                                  description="Stylize the strip's visible frames; off: the range below")
    frame_first: IntProperty(name="First", default=1)
    frame_last: IntProperty(name="Last", default=250)
    output_dir: StringProperty(name="Output folder", subtype="DIR_PATH", default="",
                               description="Where the frames go; empty: //nst/<strip>_<style>/ next to the .blend")
    mask_strip: StringProperty(name="Mask", default="",
                               description="A strip whose picture says where the style goes (white: styled, black: "
                                           "the source, grey: in between): a Mask strip, a movie or an image strip "
                                           "over the frames to stylize; empty: everywhere")
    live_preview: BoolProperty(name="Live Preview", default=False, update=_live_preview_changed,
                               description="Show the frame under the playhead styled as it moves: the live mode's "
                                           "network, learnt from the first frame (seconds), then a fraction of a "
                                           "second a frame")

    def animated(self) -> list:
        """The settings a run uses that have an F-curve (keyframes on the timeline): the strength, or with
        Custom weights the style and temporal weights."""
        return [name for name in ANIMATABLE[bool(self.custom_weights)] if self._fcurve(name) is not None]

    def animation(self, frames) -> dict:
        """name -> its value at each timeline frame in ``frames``, evaluated from its F-curve (the playhead
        does not move; drivers and NLA strips are not evaluated), kept within the setting's limits and
        rounded to 4 decimals so that an unchanged curve gives the same values again."""
        values = {}
        for name in self.animated():
            curve, rna = self._fcurve(name), self.bl_rna.properties[name]
            values[name] = [round(min(max(float(curve.evaluate(frame)), rna.hard_min), rna.hard_max), 4)
                            for frame in frames]
        return values

    def _fcurve(self, name):
        return compat.fcurve(self.id_data, f"{self.path_from_id()}.{name}")

    def find_strip(self, name: str):
        """The strip ``name`` of this scene's sequencer (the mask's), or None."""
        editor = self.id_data.sequence_editor
        return compat.strips_of(editor).get(name) if editor is not None and name else None

    def engine_settings(self, leave_out=(), strip_size=None) -> dict:
        """The panel's settings for a run (plan.engine_settings turns them into the engine's names);
        ``leave_out``: the animated ones, which go to the engine frame by frame; ``strip_size``: (width,
        height) of the strip's frames, for a fraction of its resolution (ValueError without it)."""
        settings = {"preset": self.preset, "size": S.output_size(self.resolution, self.size, strip_size),
                    "preserve_color": self.preserve_color, "iterations": self.iterations}
        if self.engine_name:  # none: the engine's default
            settings["engine"] = self.engine_name
        options = self.option_args()
        if options:
            settings["option"] = options
        if abs(self.strength - 0.5) > 1e-6 and "strength" not in leave_out:
            settings["strength"] = round(float(self.strength), 4)
        if self.custom_weights:
            settings.update({name: getattr(self, name) for name in ("content_weight", "style_weight", "temporal_weight")
                             if name not in leave_out})
        if self.extra_loss and self.extra_loss != "NONE":
            settings["extra_losses"] = {self.extra_loss: self.extra_loss_weight}
        return settings

    def load(self, settings: dict, style: str = None) -> None:
        if style:
            self.style_image = style
        if settings.get("preset") in PRESETS:
            self.preset = settings["preset"]
        for key in ("size", "iterations"):
            if settings.get(key) is not None:
                setattr(self, key, int(settings[key]))
        # the engine as stored, listed or not: a run with one the engine lacks is refused, never switched
        self.engine_name = str(settings.get("engine") or "")
        self.resolution = "SIZE" if settings.get("size") else "STRIP"  # size 0 or none: the strip's own
        self.strength = float(settings.get("strength", 0.5))
        self.preserve_color = bool(settings.get("preserve_color"))
        self.custom_weights = "content_weight" in settings
        for key in ("content_weight", "style_weight", "temporal_weight"):
            if settings.get(key) is not None:
                setattr(self, key, float(settings[key]))
        extra = settings.get("extra_losses") or {}
        for name, weight in extra.items():
            if name not in LOSSES:
                LOSSES.append(name)
            self.extra_loss, self.extra_loss_weight = name, float(weight)
        if not extra:
            self.extra_loss = "NONE"
        self.load_options(settings.get("option") or ())

    # -- the engine and its plugin options ------------------------------------------------------------------------

    def choose_engine(self, name: str) -> None:
        """Select an engine ("" the engine's default): an engine whose frames are at the source's resolution
        sets Resolution to the strip's; its option fields come from the listing."""
        if name == self.engine_name:
            return
        self.engine_name = name
        engine = engines.get(name)
        if engine is not None and engine.output_size == engines.SOURCE:
            self.resolution = "STRIP"
        self.sync_options()

    def sync_options(self) -> None:
        """A field for each listed option of the selected engine (new ones at their default); a field still
        at its old default follows a new default; changed values stay."""
        engine = engines.get(self.engine_name)
        if engine is None:
            return
        fields = {item.name: item for item in self.options}
        for option in engine.fields:
            item = fields.get(f"{engine.name}.{option.key}")
            if item is None:
                item = self.options.add()
                item.name, item.engine, item.key = f"{engine.name}.{option.key}", engine.name, option.key
                item.value = option.default
            elif item.default != option.default and not engines.changed(item.kind, item.value, item.default):
                item.value = option.default
            for name in ("default", "kind", "help"):
                if getattr(item, name) != getattr(option, name):
                    setattr(item, name, getattr(option, name))

    def option_fields(self) -> list:
        """The selected engine's option fields, in the listing's order (listed engine), else those it has."""
        engine = engines.get(self.engine_name)
        fields = [item for item in self.options if item.engine == self.engine_name]
        if engine is None:
            return fields
        order = {option.key: number for number, option in enumerate(engine.fields)}
        return sorted((item for item in fields if item.key in order), key=lambda item: order[item.key])

    def option_args(self) -> list[str]:
        """``["ENGINE.KEY=VALUE", ...]``: the selected engine's options changed from their defaults;
        ValueError (one line) for a value its type refuses."""
        if not self.engine_name:
            return []
        args = []
        for item in self.option_fields():
            if engines.changed(item.kind, item.value, item.default):
                engines.check_value(item.engine, item.key, item.kind, item.value)
                args.append(engines.option_arg(item.engine, item.key, item.value))
        return args

    def load_options(self, texts) -> None:
        """A stored plan's ``option`` list: its engine's fields at their defaults but for those it names."""
        self.sync_options()
        for item in self.options:
            if item.engine == self.engine_name and item.value != item.default:
                item.value = item.default
        fields = {item.name: item for item in self.options}
        for text in [texts] if isinstance(texts, str) else texts:
            parsed = engines.parse_option_arg(text)
            if parsed is None:
                continue
            engine, key, value = parsed
            item = fields.get(f"{engine}.{key}")
            if item is None:  # an engine (or option) the listing lacks: kept as stored
                item = self.options.add()
                item.name, item.engine, item.key = f"{engine}.{key}", engine, key
                fields[item.name] = item
            item.value = value


classes = (NST_EngineOption, NST_Settings)


def register():
    forget_listing()
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.nst = PointerProperty(type=NST_Settings)


def unregister():
    if bpy.app.timers.is_registered(sync_scenes):
        bpy.app.timers.unregister(sync_scenes)
    del bpy.types.Scene.nst
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
