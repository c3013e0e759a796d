"""The panel's settings (``scene.nst``): one PropertyGroup, saved with the .blend."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty, StringProperty

from . import compat
from . import strips as S

# Filled by the preferences' Check button from ``nst plugins --json``; kept alive at module level because
# Blender does not copy the strings of dynamic enum items.
PRESETS = ["default", "seed"]
LOSSES = []  # loss terms a plugin adds (the built-in content, style, tv and temporal have their own fields)
BUILTIN_LOSSES = ("content", "style", "tv", "temporal")
_PRESET_ITEMS = []
_LOSS_ITEMS = []


# settings that may be keyframed on the timeline and reach the engine frame by frame (nst_plugin.schedule's
# FRAME_SETTING_KEYS): the strength, or with Custom weights the style and temporal weights
ANIMATABLE = {False: ("strength",), True: ("style_weight", "temporal_weight")}

ENGINE_HINTS = {  # the panel's one-line trade-off under the engine choice (the enum's tooltips say more)
    "lbfgs": "Best quality, every frame optimised: minutes per frame",
    "keyframes": "Fast: keyframes learnt by a small network, seconds per frame",
}


def preset_items(self, context):
    _PRESET_ITEMS[:] = [(name, name, f"the engine's {name} preset") for name in PRESETS]
    return _PRESET_ITEMS


def loss_items(self, context):
    _LOSS_ITEMS[:] = [("NONE", "None", "no extra loss term")] + [
        (name, name, f"the {name} loss term from an installed plugin") for name in LOSSES]
    return _LOSS_ITEMS


def set_engine_lists(listing: dict) -> None:
    """Presets and plugin losses from ``nst plugins --json``."""
    if listing.get("presets"):
        PRESETS[:] = list(listing["presets"])
    LOSSES[:] = sorted(name for name in listing.get("losses", {}) if name not in BUILTIN_LOSSES)


class NST_Settings(bpy.types.PropertyGroup):
    style_image: StringProperty(name="Style image", subtype="FILE_PATH",
                                description="The painting (or any image) whose style is transferred")
    preset: EnumProperty(name="Preset", items=preset_items,
                         description="default: quality per second, temporally coherent; seed: the article's exact method")
    engine: EnumProperty(name="Engine", items=(
        ("lbfgs", "Frame by frame", "Every frame optimised (Gatys et al.), each started from the previous one: "
                                    "the article's method, minutes per frame at high resolution"),
        ("keyframes", "Keyframes", "A few keyframes per shot optimised, a small network learns them and "
                                   "stylizes every frame: seconds per frame at the strip's resolution")),
        default="lbfgs", description="How the frames are stylized")
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

    def engine_settings(self, leave_out=(), strip_size=None) -> dict:
        """The panel's settings for a run (plan.engine_settings turns them into the engine's names);
        ``leave_out``: the animated ones, which go to the engine frame by frame; ``strip_size``: (width,
        height) of the strip's frames, for a fraction of its resolution (ValueError without it)."""
        settings = {"preset": self.preset, "size": S.output_size(self.resolution, self.size, strip_size),
                    "preserve_color": self.preserve_color, "iterations": self.iterations, "engine": self.engine}
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
        self.engine = settings.get("engine") if settings.get("engine") in ("lbfgs", "keyframes") else "lbfgs"
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


classes = (NST_Settings,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.nst = PointerProperty(type=NST_Settings)


def unregister():
    del bpy.types.Scene.nst
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
