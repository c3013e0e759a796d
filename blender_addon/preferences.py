"""Add-on preferences: where the engine (a Python with nst-plugin installed) lives, and a Check button."""

import json
import os
import subprocess

import bpy
from bpy.props import StringProperty

from . import engine_process, props

ADDON_DIR = os.path.dirname(os.path.abspath(__file__))
_ENGINE_CACHE = {}  # configured path -> EngineInfo that worked


def get_preferences(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def resolve_engine(context=None, refresh: bool = False) -> engine_process.EngineInfo:
    """The engine to run: the configured interpreter, else NST_PYTHON, a .venv next to the add-on, or the
    interpreter of ``nst`` on PATH. Successful look-ups are cached for the session."""
    prefs = get_preferences(context)
    configured = bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else ""
    if not refresh and configured in _ENGINE_CACHE:
        return _ENGINE_CACHE[configured]
    info = engine_process.find_engine(configured, addon_dir=ADDON_DIR)
    if refresh and info.ok:  # an updated engine may have learnt --settings
        engine_process.accepts_settings_file(info.python, refresh=True)
    if info.ok:
        _ENGINE_CACHE[configured] = info
    else:
        _ENGINE_CACHE.pop(configured, None)
    return info


def load_plugin_list(python: str) -> dict | None:
    """``nst plugins --json`` of the engine (it does not import TensorFlow), or None."""
    try:
        done = subprocess.run([python, "-m", "nst_plugin", "plugins", "--json"], capture_output=True, text=True,
                              timeout=120, env=engine_process.engine_environment())
        return json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


class NST_OT_check_engine(bpy.types.Operator):
    """Look for the nst-plugin engine and report what was found and its version"""

    bl_idname = "nst.check_engine"
    bl_label = "Check"

    def execute(self, context):
        info = resolve_engine(context, refresh=True)
        prefs = get_preferences(context)
        if prefs is not None:
            prefs.last_check = info.describe()
        if not info.ok:
            self.report({"ERROR"}, info.describe())
            return {"CANCELLED"}
        listing = load_plugin_list(info.python)
        extra = ""
        if listing:
            props.set_engine_lists(listing)
            extra = f"; presets: {', '.join(props.PRESETS)}; losses: {', '.join(sorted(listing.get('losses', {})))}"
        if prefs is not None:
            prefs.last_check = info.describe() + extra
        self.report({"INFO"}, info.describe() + extra)
        return {"FINISHED"}


class NST_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    python_path: StringProperty(
        name="Engine interpreter", subtype="FILE_PATH", default="",
        description="Python of an environment where nst-plugin is installed (e.g. ~/nst-env/bin/python). "
                    "Empty: NST_PYTHON, a .venv next to the add-on, or the interpreter of nst on PATH")
    last_check: StringProperty(name="Last check", default="")

    def draw(self, context):
        layout = self.layout
        row = layout.row(align=True)
        row.prop(self, "python_path")
        row.operator(NST_OT_check_engine.bl_idname, icon="VIEWZOOM")
        if self.last_check:
            layout.label(text=self.last_check)
        layout.label(text="Install the engine: python -m venv nst-env && nst-env/bin/pip install nst-plugin")
        if not getattr(bpy.app, "online_access", True):
            layout.label(text="Online access is off: the engine uses its offline fallback weights", icon="INFO")


classes = (NST_OT_check_engine, NST_AddonPreferences)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    _ENGINE_CACHE.clear()
