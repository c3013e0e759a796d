"""Operators: Stylize strip (new, resume, re-run with changes), Cancel, Load settings from a result strip.

The engine runs in its own process (engine_process.EngineProcess). Interactively, a modal operator polls it
from a window timer, so Blender stays responsive; Esc or the panel's Cancel button stop it. In background
mode (``blender -b``) the operator waits for the engine before returning.
"""

import json
import os

import bpy
from bpy.props import EnumProperty

from . import engine_process
from . import strips as S
from .preferences import resolve_engine

PROP = "nst"  # custom property on a result strip: the plan (JSON) that made it
LAST_RUN = "nst_last_run"  # custom property: summary of the last run into it (JSON)

JOB = None  # the running Job, if any (one at a time)
LAST = {}  # summary of the last finished job (for the panel and for scripts)


class PlanError(Exception):
    """A problem the user can fix; its text is the one-line report."""


class Job:
    def __init__(self, scene, plan: dict, process: engine_process.EngineProcess, result_name: str | None):
        self.scene_name = scene.name
        self.plan = plan
        self.process = process
        self.result_name = result_name

    @property
    def progress(self):
        return self.process.progress

    def scene(self):
        return bpy.data.scenes.get(self.scene_name)


# -- planning -------------------------------------------------------------------------------------------------

def _abs(path: str) -> str:
    return os.path.abspath(bpy.path.abspath(path)) if path else ""


def _source_of(strip):
    """(engine source spec, timeline frame -> engine frame index) of a movie or image-sequence strip."""
    if strip.type == "MOVIE":
        path = _abs(strip.filepath)
        if not os.path.isfile(path):
            raise PlanError(f"the movie of strip {strip.name!r} is missing: {path}")
        start, offset = int(strip.frame_start), int(getattr(strip, "animation_offset_start", 0))
        return path, lambda frame: S.movie_index(frame, start, offset)
    folder = _abs(strip.directory)
    names = [element.filename for element in strip.elements]
    found = S.sequence_pattern(names)
    if found is None:
        raise PlanError(f"image strip {strip.name!r}: its files are not one numbered sequence (name_0001.png, ...)")
    pattern, numbers = found
    by_name = dict(zip(names, numbers))

    def index(frame):
        element = strip.strip_elem_from_frame(frame)
        if element is None or element.filename not in by_name:
            raise PlanError(f"image strip {strip.name!r} shows no file at frame {frame}")
        return by_name[element.filename]

    return os.path.join(folder, pattern), index


def plan_new(context, strip, settings) -> dict:
    """The job for the panel's settings on a source strip."""
    error = S.check_strip_type(strip.type)
    if error:
        raise PlanError(error)
    style = _abs(settings.style_image)
    if not settings.style_image:
        raise PlanError("choose a style image in the Style Transfer panel")
    if not os.path.isfile(style):
        raise PlanError(f"style image {style} does not exist")
    source, index_of = _source_of(strip)
    try:
        first, last = (None, None) if settings.use_strip_range else (settings.frame_first, settings.frame_last)
        lo, hi = S.timeline_range(strip.frame_final_start, strip.frame_final_end, first, last)
    except ValueError as exc:
        raise PlanError(str(exc)) from None
    indices = [index_of(frame) for frame in range(lo, hi + 1)]
    output = settings.output_dir or S.default_output_dir(strip.name, style)
    return {"version": 1, "source_strip": strip.name, "source": source, "source_type": strip.type,
            "source_channel": int(strip.channel), "style": style, "settings": settings.engine_settings(),
            "timeline": [lo, hi], "indices": indices, "output": output}


def plan_of_result(strip) -> dict:
    text = strip.get(PROP)
    if not text:
        raise PlanError(f"strip {strip.name!r} is not a style-transfer result: select one made by Stylize strip")
    try:
        plan = json.loads(text)
        plan["timeline"], plan["indices"], plan["source"]  # noqa: B018 - the keys a run needs
    except (ValueError, KeyError, TypeError):
        raise PlanError(f"strip {strip.name!r}: its style-transfer settings are damaged") from None
    return plan


def output_folder(plan: dict) -> str:
    raw = plan["output"]
    if raw.startswith("//") and not bpy.data.filepath:
        raise PlanError("save the .blend first (the output folder //nst/... is next to it) or choose an output folder")
    path = _abs(raw)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".nst-write-test-{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as exc:
        raise PlanError(f"output folder {path} is not writable ({exc.strerror or exc})") from None
    return path


def engine_command(plan: dict, python: str, output: str, overwrite: bool) -> list[str]:
    frames = (min(plan["indices"]), max(plan["indices"]))
    return engine_process.build_command(python, plan["source"], plan["style"], output, plan["settings"],
                                        frames=frames, overwrite=overwrite)


def engine_env() -> dict:
    env = engine_process.engine_environment()
    if not getattr(bpy.app, "online_access", True):
        # Blender's "Allow Online Access" is off: no ImageNet download, the engine takes its offline weights.
        env["NST_VGG16_WEIGHTS_URL"] = "http://127.0.0.1:9/online-access-disabled"
    return env


# -- the result strip -----------------------------------------------------------------------------------------

def find_strip(scene, name):
    if not name or scene is None or scene.sequence_editor is None:
        return None
    for strip in S.all_strips(scene.sequence_editor):
        if strip.name == name:
            return strip
    return None


def ensure_result_strip(job: Job):
    """The result strip, created on the first free channel above the source once a frame exists."""
    scene = job.scene()
    strip = find_strip(scene, job.result_name)
    if strip is not None or scene is None:
        return strip
    plan = job.plan
    output = _abs(plan["output"])
    files = S.frame_files(plan["indices"])
    if not any(os.path.isfile(os.path.join(output, f)) for f in files):
        return None
    editor = scene.sequence_editor_create()
    lo, hi = plan["timeline"]
    occupied = [(s.channel, s.frame_final_start, s.frame_final_end) for s in S.strips_of(editor)]
    channel = S.first_free_channel(occupied, plan.get("source_channel", 0), lo, hi + 1)
    if channel is None:
        raise PlanError("no free channel above the source strip for the result")
    strip = S.new_image(editor, S.result_strip_name(plan["style"]), os.path.join(output, files[0]), channel, lo)
    for name in files[1:]:
        strip.elements.append(name)
    if bpy.data.filepath:
        try:
            strip.directory = bpy.path.relpath(output) + os.sep
        except ValueError:  # another drive on Windows
            pass
    strip[PROP] = json.dumps(plan)
    job.result_name = strip.name
    return strip


def refresh_strip(strip) -> None:
    try:
        strip.invalidate_cache("RAW")
    except (AttributeError, TypeError, RuntimeError):
        pass


# -- running --------------------------------------------------------------------------------------------------

def start_job(context, action: str) -> Job:
    global JOB
    if JOB is not None and JOB.process.running:
        raise PlanError("a style transfer is already running: wait for it or cancel it")
    scene = context.scene
    editor = scene.sequence_editor
    strip = editor.active_strip if editor is not None else None
    if strip is None:
        raise PlanError("no active strip: click a movie or image-sequence strip in the Sequencer first")
    result_name, overwrite = None, False
    if action == "NEW":
        plan = plan_new(context, strip, scene.nst)
    else:
        plan = plan_of_result(strip)
        result_name = strip.name
        if action == "RERUN":  # the panel's settings, into this strip's folder, replacing its frames
            source = find_strip(scene, plan.get("source_strip"))
            if source is not None and S.check_strip_type(source.type) is None:
                fresh = plan_new(context, source, scene.nst)
                fresh["output"] = plan["output"]
            else:
                fresh = dict(plan, settings=scene.nst.engine_settings(), style=_abs(scene.nst.style_image))
            plan, overwrite = fresh, True
    if result_name is None:  # stylizing again into the folder of an existing result strip: reuse that strip
        result_name = _result_strip_for(scene, plan["output"])
    info = resolve_engine(context)
    if not info.ok:
        raise PlanError(info.describe())
    output = output_folder(plan)
    argv = engine_command(plan, info.python, output, overwrite)
    process = engine_process.EngineProcess(argv, cwd=output, env=engine_env())
    try:
        process.start()
    except OSError as exc:
        raise PlanError(f"engine not found: {info.python} cannot start ({exc}); {engine_process.INSTALL_HINT}") from None
    result = find_strip(scene, result_name)
    if result is not None:
        _update_result_strip(result, plan, move=action != "RESUME")
        result_name = result.name  # renamed after a new style
    JOB = Job(scene, plan, process, result_name)
    return JOB


def _result_strip_for(scene, output: str) -> str | None:
    wanted = _abs(output)
    for strip in S.all_strips(scene.sequence_editor):
        if strip.get(PROP):
            try:
                if _abs(json.loads(strip[PROP]).get("output", "")) == wanted:
                    return strip.name
            except (ValueError, AttributeError):
                continue
    return None


def _update_result_strip(strip, plan, move: bool) -> None:
    """Resume / re-run into an existing result strip: its elements follow the plan's frames; a re-run also
    aligns it with the source strip again (Resume leaves it where the editor put it)."""
    files = S.frame_files(plan["indices"])
    if [e.filename for e in strip.elements] != files:
        while len(strip.elements) > 1:
            strip.elements.pop(len(strip.elements) - 1)
        strip.elements[0].filename = files[0]
        for name in files[1:]:
            strip.elements.append(name)
    if move:
        strip.frame_start = plan["timeline"][0] - strip.frame_offset_start
    strip.name = S.result_strip_name(plan["style"])
    strip[PROP] = json.dumps(plan)


def step_job(job: Job) -> bool:
    """Read the engine's new events, update the result strip; True when the job has ended."""
    events = job.process.poll()
    if any(e.get("event") in ("frame_done", "start") for e in events):
        try:
            strip = ensure_result_strip(job)
        except PlanError as exc:
            job.process.progress.error = str(exc)
            job.process.request_cancel()
            strip = None
        if strip is not None and not bpy.app.background:
            refresh_strip(strip)
    return job.process.finished


def finish_job(job: Job) -> tuple[str, str]:
    """(report level, one-line message) at the end of a job; stores the run's summary on the strip."""
    global JOB
    job.process.poll()
    progress = job.progress
    try:
        strip = ensure_result_strip(job)
    except PlanError as exc:
        strip, progress.error = None, str(exc)
    summary = {"status": progress.status, "written": progress.written, "resumed": progress.resumed,
               "total": progress.total, "done": progress.done, "error": progress.error,
               "returncode": job.process.returncode, "strip": job.result_name}
    LAST.clear()
    LAST.update(summary)
    if strip is not None:
        strip[LAST_RUN] = json.dumps(summary)
        refresh_strip(strip)
    if JOB is job:
        JOB = None
    where = f" in strip {strip.name!r} (channel {strip.channel})" if strip is not None else ""
    if job.process.cancelled and progress.status != "ok":
        return "WARNING", f"style transfer cancelled: {progress.done} of {progress.total or '?'} frames kept{where}"
    if progress.status == "ok":
        note = f", {progress.resumed} from an earlier run" if progress.resumed else ""
        return "INFO", f"stylized {progress.written} frames{note}{where}"
    if progress.error:
        return "ERROR", progress.error
    return "ERROR", job.process.crash_message()


def handle_event(job: Job, event_type: str, event_value: str) -> str:
    """What the modal operator does with one event: ``CANCELLING`` (Esc: stop the engine, keep its frames),
    ``ENDED`` (a timer tick found the engine finished), ``STEPPED`` (a timer tick), ``PASS`` (not ours)."""
    if event_type == "ESC" and event_value == "PRESS":
        job.process.request_cancel()
        return "CANCELLING"
    if event_type != "TIMER":
        return "PASS"
    return "ENDED" if step_job(job) else "STEPPED"


def _redraw(context) -> None:
    wm = context.window_manager
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "SEQUENCE_EDITOR":
                area.tag_redraw()


class SEQUENCER_OT_nst_stylize(bpy.types.Operator):
    """Stylize the active movie or image-sequence strip with the Style Transfer panel's settings; the result
    is an image-sequence strip on the first free channel above it"""

    bl_idname = "sequencer.nst_stylize"
    bl_label = "Stylize Strip"
    bl_options = {"REGISTER"}

    action: EnumProperty(
        name="Action",
        items=[("NEW", "Stylize", "Stylize the active source strip"),
               ("RESUME", "Resume", "Finish the frames of the active result strip with its stored settings"),
               ("RERUN", "Re-run with changes", "Replace the active result strip's frames using the panel's settings")],
        default="NEW")

    _timer = None

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        try:
            job = start_job(context, self.action)
        except PlanError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background or context.window is None:
            job.process.wait(on_events=lambda events: None, interval=0.1)
            step_job(job)
            return self._finish(context, job)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        self._status(context, job)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = JOB
        if job is None:
            self._cleanup(context)
            return {"CANCELLED"}
        what = handle_event(job, event.type, event.value)
        if what == "PASS":
            return {"PASS_THROUGH"}
        self._status(context, job)
        if what == "ENDED":
            self._cleanup(context)
            return self._finish(context, job)
        return {"RUNNING_MODAL"} if what == "CANCELLING" else {"PASS_THROUGH"}

    def _status(self, context, job) -> None:
        text = job.progress.summary()
        if job.process.cancelled and job.process.running:
            text = "cancelling... " + text
        if context.workspace is not None:
            context.workspace.status_text_set(f"Style transfer: {text} (Esc to cancel)")
        _redraw(context)

    def _cleanup(self, context):
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        _redraw(context)

    def _finish(self, context, job):
        level, message = finish_job(job)
        if not bpy.app.background:
            try:  # the new strip becomes one undo step
                bpy.ops.ed.undo_push(message="Stylize Strip")
            except RuntimeError:
                pass
        self.report({level}, message)
        return {"FINISHED"} if level != "ERROR" else {"CANCELLED"}


class SEQUENCER_OT_nst_cancel(bpy.types.Operator):
    """Stop the running style transfer; finished frames and their strip are kept"""

    bl_idname = "sequencer.nst_cancel"
    bl_label = "Cancel Style Transfer"

    @classmethod
    def poll(cls, context):
        return JOB is not None and JOB.process.running

    def execute(self, context):
        JOB.process.request_cancel()
        return {"FINISHED"}


class SEQUENCER_OT_nst_load_settings(bpy.types.Operator):
    """Copy the settings stored on the active result strip into the Style Transfer panel"""

    bl_idname = "sequencer.nst_load_settings"
    bl_label = "Load Settings from Strip"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        editor = context.scene.sequence_editor
        strip = editor.active_strip if editor is not None else None
        if strip is None:
            self.report({"ERROR"}, "no active strip")
            return {"CANCELLED"}
        try:
            plan = plan_of_result(strip)
        except PlanError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        context.scene.nst.load(plan.get("settings", {}), plan.get("style"))
        return {"FINISHED"}


@bpy.app.handlers.persistent
def cancel_running_job(*_args) -> None:
    """Stop the engine when Blender loads another file or quits (finished frames stay on disk)."""
    global JOB
    if JOB is not None:
        JOB.process.request_cancel()
        JOB = None


classes = (SEQUENCER_OT_nst_stylize, SEQUENCER_OT_nst_cancel, SEQUENCER_OT_nst_load_settings)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(cancel_running_job)


def unregister():
    cancel_running_job()
    if cancel_running_job in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(cancel_running_job)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
