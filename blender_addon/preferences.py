"""Add-on preferences: where the engine (a Python with nst-plugin installed) lives, a Check button, and the
engine's set-up without a terminal (Set Up Engine / Update / Remove: a private environment made by
engine_setup, run in the background and followed by a timer)."""

import os
import sys

import bpy
from bpy.props import EnumProperty, StringProperty

from . import engine_process, engine_setup, engines, props, runner

ADDON_DIR = os.path.dirname(os.path.abspath(__file__))
_ENGINE_CACHE = {}  # (configured path, backend) -> EngineInfo that worked
KIND = runner.SETUP  # SETUP: the running engine_setup.SetupJob, if any (one at a time), kept in runner.JOBS


def __getattr__(name):
    if name == "SETUP":  # preferences.SETUP: the running set-up (or the one that ended, not finished yet), or None
        return runner.JOBS.get(KIND)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- Blender 4.2+ facts the add-on depends on (small, named) ---------------------------------------------------

def online_access() -> bool:
    """Blender's *Allow Online Access* (4.2+; older Blenders have no such switch: on)."""
    return bool(getattr(bpy.app, "online_access", True))


def extension_folder(name: str):
    """``name`` in the extension's own user folder, made if missing, when the add-on is installed as an
    extension; else None."""
    package = __package__ or ""
    get = getattr(bpy.utils, "extension_path_user", None)
    if get is None or not package.startswith("bl_ext."):
        return None
    try:
        return get(package, path=name, create=True)
    except (ValueError, OSError, TypeError):
        return None


def private_folder(name: str) -> str:
    """A folder for the add-on's own files (never the add-on's folder, never the user's media): the
    extension's user folder, or, for an add-on that is not installed as an extension, Blender's user
    data folder (``.../datafiles/nst_style_transfer/<name>``)."""
    folder = extension_folder(name)
    if folder is None:
        base = bpy.utils.user_resource("DATAFILES", path=engine_setup.ADDON_ID, create=True)
        folder = os.path.join(base, name)
        os.makedirs(folder, exist_ok=True)
    return folder


def engine_env_folder() -> str:
    """Where Set Up Engine makes the engine's environment (the folder itself is made by the set-up)."""
    folder = extension_folder("")
    if folder is None:
        folder = bpy.utils.user_resource("DATAFILES", path=engine_setup.ADDON_ID, create=True)
    return os.path.join(folder, engine_setup.FOLDER_NAME)


def tag_redraw(area_type: str, context=None) -> None:
    """Redraw every area of ``area_type`` (e.g. ``SEQUENCE_EDITOR``, ``PREFERENCES``) in every window."""
    wm = getattr(context or bpy.context, "window_manager", None)
    for window in getattr(wm, "windows", ()):
        for area in window.screen.areas:
            if area.type == area_type:
                area.tag_redraw()


def follow(job, running: bool, finish, area_type: str, interval: float):
    """One tick of a ``bpy.app.timers`` timer that follows a background job: redraw the areas that show it;
    while it runs, the next tick's interval; at its end, ``finish(job)`` (its one line to the console) and
    None, which stops the timer."""
    if not running:
        _level, message = finish(job)
        print(f"Neural Style Transfer: {message}")
    tag_redraw(area_type)
    return interval if running else None


# -- the engine -------------------------------------------------------------------------------------------------

def get_preferences(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon is not None else None


def chosen_backend(context=None) -> str:
    """The Keras backend the engine computes with: the preferences' *Compute with* (TensorFlow without
    preferences)."""
    prefs = get_preferences(context)
    return getattr(prefs, "backend", "") or engine_process.DEFAULT_BACKEND


def engine_environment(context=None) -> dict:
    """The environment of every engine process the add-on starts: the chosen backend in ``KERAS_BACKEND``."""
    return engine_process.engine_environment(backend=chosen_backend(context))


def resolve_engine(context=None, refresh: bool = False) -> engine_process.EngineInfo:
    """The engine to run, computing with the chosen backend: the configured interpreter, else NST_PYTHON, a
    .venv next to the add-on, or the interpreter of ``nst`` on PATH. Successful look-ups are cached for the
    session."""
    prefs = get_preferences(context)
    configured = bpy.path.abspath(prefs.python_path) if prefs is not None and prefs.python_path else ""
    key = (configured, chosen_backend(context))
    if not refresh and key in _ENGINE_CACHE:
        return _ENGINE_CACHE[key]
    info = engine_process.find_engine(configured, addon_dir=ADDON_DIR, backend=key[1])
    if refresh and info.ok:  # an updated engine may have learnt --settings
        engine_process.accepts_settings_file(info.python, refresh=True)
    if info.ok:
        _ENGINE_CACHE[key] = info
    else:
        _ENGINE_CACHE.pop(key, None)
    return info


def use_engine(prefs, info: engine_process.EngineInfo, listing: dict | None) -> str:
    """Take a checked engine's plugin list into the panel; the one line that says what was found."""
    extra = ""
    if listing:
        props.set_engine_lists(listing)
        extra = f"; presets: {', '.join(props.PRESETS)}; losses: {', '.join(sorted(listing.get('losses', {})))}"
        if engines.LISTED is not None:
            extra += f"; engines: {', '.join(engines.LISTED)}"
        if prefs is not None:  # the panel's lists in the next session, before any Check
            prefs.engine_listing = props.kept_listing(listing)
    if prefs is not None:
        prefs.last_check = info.describe() + extra
        prefs.engine_runtime = info.runtime
    return info.describe() + extra


class NST_OT_check_engine(bpy.types.Operator):
    """Look for the nst-plugin engine and report what was found and its version"""

    bl_idname = "nst.check_engine"
    bl_label = "Check"

    def execute(self, context):
        info = resolve_engine(context, refresh=True)
        prefs = get_preferences(context)
        if prefs is not None:
            prefs.last_check = info.describe()
            prefs.engine_runtime = ""
        if not info.ok:
            self.report({"ERROR"}, info.describe())
            return {"CANCELLED"}
        self.report({"INFO"}, use_engine(prefs, info, engine_process.plugin_list(info.python, chosen_backend(context))))
        return {"FINISHED"}


# -- Set Up Engine: the job, followed by a timer ---------------------------------------------------------------

def _setup_source(prefs) -> engine_setup.Source:
    path = {"WHEEL": prefs.engine_wheel, "CHECKOUT": prefs.engine_checkout}.get(prefs.engine_source, "")
    return engine_setup.Source(prefs.engine_source, os.path.abspath(bpy.path.abspath(path)) if path else "")


def start_setup(context, update: bool = False) -> engine_setup.SetupJob:
    """Start Set Up Engine (a new environment from the preferences' source) or Update (the source the
    environment was made from) in the background; SetupError with the one-line reason when it cannot."""
    if runner.JOBS.busy(KIND):
        raise engine_setup.SetupError("the engine is being set up already: wait for it or cancel it")
    prefs = get_preferences(context)
    folder = engine_env_folder()
    online = online_access()
    source = engine_setup.recorded_source(folder) if update else _setup_source(prefs)
    source.check(online)
    base = None
    if not update:
        configured = bpy.path.abspath(prefs.base_python) if prefs.base_python else ""
        base = engine_setup.find_base_python(configured, exclude_prefixes=(sys.prefix,))  # never Blender's Python
    engine_setup.write_marker(folder, source, base)
    backend = chosen_backend(context)
    steps = engine_setup.setup_steps(folder, source, online, base, update=update, backend=backend)
    title = f"{'updating' if update else 'setting up'} the engine from {source.describe()}"
    return runner.JOBS.add(KIND, engine_setup.SetupJob(folder, steps, title=title, backend=backend).start())


def finish_setup(job: engine_setup.SetupJob) -> tuple[str, str]:
    """(report level, one line) at the end of a set-up; a working engine becomes the add-on's interpreter."""
    prefs = get_preferences()
    if job.state == "ok":
        info = engine_process.EngineInfo(job.python, job.version, "set up by the add-on")
        engine_process.forget_engine(job.python)  # asked again whether it takes --settings
        if prefs is not None:
            prefs.python_path = job.python
        _ENGINE_CACHE[(job.python, job.backend or chosen_backend())] = info
        use_engine(prefs, info, job.listing)
        level, message = "INFO", job.status_line()
    else:
        level, message = ("WARNING" if job.state == "cancelled" else "ERROR"), job.status_line()
    if prefs is not None:
        prefs.setup_status = message
    runner.JOBS.remove(KIND, job)
    return level, message


def setup_tick():
    """The timer that follows a set-up on Blender's main thread: poll (never blocks), redraw, finish."""
    job = runner.JOBS.get(KIND)
    if job is None:
        return None
    return follow(job, job.poll() == "running", finish_setup, "PREFERENCES", 0.5)


class NST_OT_setup_engine(bpy.types.Operator):
    """Make a private Python environment for the engine and install nst-plugin into it, in the background"""

    bl_idname = "nst.setup_engine"
    bl_label = "Set Up Engine"

    action: EnumProperty(
        name="Action",
        items=[("SETUP", "Set Up Engine", "Make the engine's environment and install nst-plugin from the chosen source"),
               ("UPDATE", "Update", "Reinstall the engine from the source it was set up from")],
        default="SETUP")

    def execute(self, context):
        try:
            job = start_setup(context, update=self.action == "UPDATE")
        except engine_setup.SetupError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background:  # scripts and tests: run to the end
            job.wait()
            level, message = finish_setup(job)
            self.report({level}, message)
            return {"FINISHED"} if level == "INFO" else {"CANCELLED"}
        if not bpy.app.timers.is_registered(setup_tick):
            bpy.app.timers.register(setup_tick, first_interval=0.5, persistent=True)
        self.report({"INFO"}, f"{job.title}: progress in the add-on's preferences")
        return {"FINISHED"}


class NST_OT_cancel_setup(bpy.types.Operator):
    """Stop the engine's set-up; Remove deletes what it made"""

    bl_idname = "nst.cancel_setup"
    bl_label = "Cancel Set-Up"

    @classmethod
    def poll(cls, context):
        return runner.JOBS.busy(KIND)

    def execute(self, context):
        runner.JOBS.get(KIND).cancel()
        return {"FINISHED"}


REMOVING = []  # threads deleting removed environments (tests join them)


class NST_OT_remove_engine(bpy.types.Operator):
    """Delete the engine environment that Set Up Engine made (only that folder, and only if it carries the
    add-on's marker file)"""

    bl_idname = "nst.remove_engine"
    bl_label = "Remove Engine"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        if runner.JOBS.busy(KIND):
            self.report({"ERROR"}, "the engine is being set up: cancel it first")
            return {"CANCELLED"}
        folder = engine_env_folder()
        try:
            REMOVING.append(engine_setup.remove_environment(folder))
        except engine_setup.SetupError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        prefs = get_preferences(context)
        if prefs is not None:
            if prefs.python_path and os.path.abspath(bpy.path.abspath(prefs.python_path)).startswith(folder + os.sep):
                prefs.python_path = ""  # it pointed into the removed environment
                prefs.last_check = ""
            prefs.setup_status = f"removed the engine environment {folder}"
        _ENGINE_CACHE.clear()
        self.report({"INFO"}, f"removed the engine environment {folder}")
        return {"FINISHED"}


# -- the preferences --------------------------------------------------------------------------------------------

class NST_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    python_path: StringProperty(
        name="Engine interpreter", subtype="FILE_PATH", default="",
        description="Python of an environment where nst-plugin is installed (Set Up Engine fills it in). "
                    "Empty: NST_PYTHON, a .venv next to the add-on, or the interpreter of nst on PATH")
    last_check: StringProperty(name="Last check", default="")
    base_python: StringProperty(
        name="Base Python", subtype="FILE_PATH", default="",
        description="A Python 3.10-3.12 of the system to make the engine's environment with. Empty: found on "
                    "its own (python3.11, python3.12, python3.10, python3 on PATH; never Blender's own)")
    engine_source: EnumProperty(
        name="Source", default="INDEX",
        items=[("INDEX", "Package index", "nst-plugin from PyPI (needs Allow Online Access)"),
               ("WHEEL", "Wheel file", "A local nst-plugin wheel (.whl); offline, its folder must hold the "
                                       "wheels of its dependencies too"),
               ("CHECKOUT", "Checkout", "A local nst-plugin source folder (a git checkout)")],
        description="Where Set Up Engine installs nst-plugin from")
    engine_wheel: StringProperty(name="Wheel", subtype="FILE_PATH", default="",
                                 description="An nst-plugin .whl file")
    engine_checkout: StringProperty(name="Checkout", subtype="DIR_PATH", default="",
                                    description="A folder with nst-plugin's source (its pyproject.toml)")
    setup_status: StringProperty(name="Set-up status", default="")
    backend: EnumProperty(
        name="Compute with", default=engine_process.DEFAULT_BACKEND,
        items=[(name, words, f"{words}: {good_for}")
               for name, (words, _extra, good_for) in engine_process.BACKENDS.items()],
        update=lambda prefs, _context: setattr(prefs, "engine_runtime", ""),
        description="The Keras backend the engine computes with (its KERAS_BACKEND). Set Up Engine and Update "
                    "install it; Check shows the device it finds")
    engine_runtime: StringProperty(name="Engine computes with", default="")
    painter: StringProperty(
        name="Painter", subtype="FILE_PATH", default="",
        description="A painting program Edit Keyframe also opens the keyframe in (Krita, GIMP, ...); empty: "
                    "Blender's Image Editor only")
    engine_listing: StringProperty(
        name="Engine listing", default="",
        description="What the last Check or Set Up Engine listed (presets, losses, engines with their traits and "
                    "options): the panel's lists until the next Check")

    def draw(self, context):
        layout = self.layout
        row = layout.row(align=True)
        row.prop(self, "python_path")
        row.operator(NST_OT_check_engine.bl_idname, icon="VIEWZOOM")
        if self.last_check:
            layout.label(text=self.last_check)
        draw_backend(self, layout)
        layout.prop(self, "painter")
        draw_setup(self, layout.box())
        layout.label(text="Or by hand: python3 -m venv nst-env && nst-env/bin/pip install nst-plugin, then set "
                          "Engine interpreter to nst-env/bin/python")
        if not online_access():
            layout.label(text="Online access is off: the engine uses its offline fallback weights", icon="INFO")


def draw_backend(prefs, layout) -> None:
    """*Compute with*, what the chosen backend is good for, and what the engine said at the last Check."""
    row = layout.row()
    row.label(text="Compute with:")
    row.prop(prefs, "backend", expand=True)
    _words, _extra, good_for = engine_process.BACKENDS[prefs.backend]
    col = layout.column(align=True)
    col.label(text=good_for, icon="INFO")
    if prefs.engine_runtime:
        col.label(text=f"The engine computes with {prefs.engine_runtime}", icon="CHECKMARK")
    else:
        col.label(text="Press Check to see the device the engine computes on")


def draw_setup(prefs, box) -> None:
    """The Set Up Engine box: base Python, source, the buttons, and the running set-up's status line."""
    box.label(text="Set up the engine: a private Python environment with nst-plugin", icon="SETTINGS")
    col = box.column()
    col.prop(prefs, "base_python")
    col.row().prop(prefs, "engine_source", expand=True)
    if prefs.engine_source == "WHEEL":
        col.prop(prefs, "engine_wheel")
    elif prefs.engine_source == "CHECKOUT":
        col.prop(prefs, "engine_checkout")
    elif not online_access():
        col.label(text="Online access is off: allow it in Preferences > System, or pick a wheel or checkout",
                  icon="ERROR")
    job = runner.JOBS.get(KIND)
    running = runner.JOBS.busy(KIND)
    row = box.row(align=True)
    row.enabled = not running
    row.operator(NST_OT_setup_engine.bl_idname, text="Set Up Engine", icon="IMPORT").action = "SETUP"
    row.operator(NST_OT_setup_engine.bl_idname, text="Update", icon="FILE_REFRESH").action = "UPDATE"
    row.operator(NST_OT_remove_engine.bl_idname, text="Remove", icon="TRASH")
    if running:
        row = box.row()
        row.label(text=job.status_line(), icon="SORTTIME")
        row.operator(NST_OT_cancel_setup.bl_idname, text="", icon="CANCEL")
    elif prefs.setup_status:
        box.label(text=prefs.setup_status, icon="CHECKMARK" if prefs.setup_status.startswith("engine ready") else "INFO")
    box.label(text=f"Folder: {engine_env_folder()}")


classes = (NST_OT_check_engine, NST_OT_setup_engine, NST_OT_cancel_setup, NST_OT_remove_engine, NST_AddonPreferences)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    job = runner.JOBS.get(KIND)
    if job is not None:
        job.cancel()
        job.wait(timeout=10)
        runner.JOBS.remove(KIND, job)
    if bpy.app.timers.is_registered(setup_tick):
        bpy.app.timers.unregister(setup_tick)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    _ENGINE_CACHE.clear()
