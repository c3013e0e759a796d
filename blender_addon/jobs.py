"""The job lifecycle: start (plan, engine, settings file, process), step (read events, show frames),
finish (summary on the result strip, one-line report), cancel; one job runs at a time (:data:`JOB`, the
``stylize`` job of runner.JOBS).

The engine runs in its own process (engine_process.EngineProcess, a runner.Process). Its settings travel in a
private JSON file (``nst video --settings FILE``) owned by the job and removed when it ends; an engine that
predates ``--settings`` gets them as flags.
"""

import os
import tempfile

import bpy

from . import engine_process, engines, mask_strip, props, runner
from . import result_strip as R
from . import strips as S
from .plan import Plan, PlanError
from .preferences import engine_environment, extension_folder, online_access, resolve_engine

KIND = runner.STYLIZE  # JOB: the running Job, if any (one at a time), kept in runner.JOBS
LAST = {}  # summary of the last finished job (for the panel and for scripts)
_ORPHANS = []  # cancelled jobs whose settings file goes once their engine has stopped


class Job:
    def __init__(self, scene, plan: Plan, process: engine_process.EngineProcess, result_name: str | None,
                 settings_file: str | None = None, place: bool = True):
        self.scene_name = scene.name
        self.plan = plan
        self.process = process
        self.result_name = result_name
        self.settings_file = settings_file
        self.place = place  # size and place the result strip over its source (not on Resume: the editor's)
        self.placed = False

    @property
    def progress(self):
        return self.process.progress

    @property
    def running(self) -> bool:
        return self.process.running

    def scene(self):
        return bpy.data.scenes.get(self.scene_name)

    def remove_settings_file(self) -> None:
        engine_process.remove_settings_file(self.settings_file)
        self.settings_file = None


def running():
    """The running job, or None."""
    return runner.JOBS.get(KIND)


def __getattr__(name):
    if name == "JOB":  # jobs.JOB: the running job (or the one that ended and is not finished yet), or None
        return runner.JOBS.get(KIND)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- starting -------------------------------------------------------------------------------------------------

def output_folder(plan: Plan) -> str:
    """The plan's output folder, made and checked for writing."""
    raw = plan.output
    if raw.startswith("//") and not bpy.data.filepath:
        raise PlanError("save the .blend first (the output folder //nst/... is next to it) or choose an output folder")
    path = R.abspath(raw)
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nst-write-test-", dir=path)  # O_EXCL: never through a planted link
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise PlanError(f"output folder {path} is not writable ({exc.strerror or exc})") from None
    return path


def settings_folder() -> str | None:
    """A private folder for the jobs' settings files: the extension's user folder when the add-on is
    installed as an extension, else None (the system's temporary folder)."""
    return extension_folder("runs")


def engine_env() -> dict:
    env = engine_environment()  # the chosen backend in KERAS_BACKEND
    if not online_access():
        # Blender's "Allow Online Access" is off: no ImageNet download, the engine takes its offline weights.
        env["NST_VGG16_WEIGHTS_URL"] = "http://127.0.0.1:9/online-access-disabled"
    return env


def engine_command(plan: Plan, python: str, output: str, overwrite: bool, settings_file=None) -> list[str]:
    return engine_process.build_command(python, plan.source, plan.style, output, plan.settings, frames=plan.frames,
                                        overwrite=overwrite, settings_file=settings_file)


def plan_for(context, action: str):
    """(plan, name of the result strip to run into or None, overwrite) for the active strip."""
    scene = context.scene
    editor = scene.sequence_editor
    strip = editor.active_strip if editor is not None else None
    if strip is None:
        raise PlanError("no active strip: click a movie or image-sequence strip in the Sequencer first")
    if action == "NEW":
        return Plan.from_source_strip(strip, scene.nst, R.abspath), None, False
    plan = Plan.from_result_strip(strip)
    if action == "RERUN":  # the panel's settings, into this strip's folder, replacing its frames
        source = R.find(scene, plan.source_strip)
        fresh = None
        if source is not None and S.check_strip_type(source.type) is None:
            fresh = Plan.from_source_strip(source, scene.nst, R.abspath)
        try:
            settings = scene.nst.engine_settings(strip_size=R.source_size(source) if source is not None else None)
        except ValueError as exc:
            raise PlanError(str(exc)) from None
        stored, plan = plan, plan.rerun(settings, R.abspath(scene.nst.style_image), fresh)
        # only keyframed values (or the mask) changed: the engine keeps the frames whose values (or mask) did
        # not (no --overwrite)
        animation_only = plan.same_run(stored) and (plan.frame_settings != stored.frame_settings
                                                    or bool(plan.mask_strip or stored.mask_strip))
        return plan, strip.name, not animation_only
    return plan, strip.name, False


def working_engine(context) -> engine_process.EngineInfo:
    """The engine to run, or PlanError saying why there is none."""
    info = resolve_engine(context)
    if not info.ok:
        raise PlanError(info.describe())
    return info


def write_settings(info: engine_process.EngineInfo, values: dict, folder) -> str | None:
    """The run's private ``--settings`` file in ``folder`` (None: the system's temporary folder), or None
    for an engine that does not take one (it gets flags)."""
    if not engine_process.accepts_settings_file(info.python):
        return None
    engine_process.remove_stale_settings_files(folder)  # left by a Blender that crashed
    try:
        return engine_process.write_settings_file(values, folder)
    except OSError as exc:
        raise PlanError(f"cannot write the job's settings file ({exc.strerror or exc})") from None


def launch(info: engine_process.EngineInfo, argv: list, cwd: str, settings_file) -> engine_process.EngineProcess:
    """Start the engine's process (in ``cwd``, with Blender's online-access policy); PlanError when it
    cannot start (its settings file is removed then)."""
    process = engine_process.EngineProcess(argv, cwd=cwd, env=engine_env())
    try:
        return process.start()
    except OSError as exc:
        engine_process.remove_settings_file(settings_file)
        raise PlanError(f"engine not found: {info.python} cannot start ({exc}); {engine_process.INSTALL_HINT}") from None


def start_job(context, action: str) -> Job:
    """Plan the job for the active strip (``NEW``: a source strip; ``RESUME`` / ``RERUN``: a result strip)
    and start its engine; PlanError with the one-line reason when it cannot start."""
    if runner.JOBS.busy(KIND):
        raise PlanError("a style transfer is already running: wait for it or cancel it")
    _sweep()
    scene = context.scene
    plan, result_name, overwrite = plan_for(context, action)
    props.ensure_listing(context)
    missing = engines.missing(plan.settings.get("engine"))
    if missing:  # an engine the last listing lacks (a result strip's, say): refused, never switched
        raise PlanError(missing)
    if result_name is None:  # stylizing again into the folder of an existing result strip: reuse that strip
        result_name = R.find_by_output(scene, plan.output)
    info = working_engine(context)
    output = output_folder(plan)
    plan = mask_strip.resolve(scene, plan)  # a mask strip: rendered now, as it is now
    settings_file = write_settings(info, plan.engine_settings(), settings_folder())
    if settings_file is None and (plan.frame_settings or plan.mask):
        raise PlanError(f"keyframed settings and masks need an engine that takes a settings file; {info.describe()} "
                        "does not: update it (Update in the add-on's preferences)")
    argv = engine_command(plan, info.python, output, overwrite, settings_file)
    process = launch(info, argv, output, settings_file)
    result = R.find(scene, result_name)
    if result is not None:
        R.update(result, plan, move=action != "RESUME")
        result_name = result.name  # renamed after a new style
    return runner.JOBS.add(KIND, Job(scene, plan, process, result_name, settings_file, place=action != "RESUME"))


# -- running --------------------------------------------------------------------------------------------------

def ensure_result_strip(job: Job):
    """The job's result strip, created once its first frame exists (None before)."""
    scene = job.scene()
    strip = R.find(scene, job.result_name)
    if strip is not None or scene is None:
        return strip
    strip = R.create(scene, job.plan)
    if strip is not None:
        job.result_name = strip.name
    return strip


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
        if strip is not None:
            if job.place and not job.placed and job.progress.written:  # this run's first frame is there
                job.placed = R.cover(job.scene(), strip, job.plan, job.progress.source_size)
            if not bpy.app.background:
                R.refresh(strip)
    if strip_shown := R.find(job.scene(), job.result_name):
        job.result_name = R.show_progress(strip_shown, job.plan, job.progress.name_suffix())
    return job.process.finished


def finish_job(job: Job) -> tuple[str, str]:
    """(report level, one-line message) at the end of a job; stores the run's summary on the strip."""
    job.process.poll()
    job.remove_settings_file()
    progress = job.progress
    try:
        strip = ensure_result_strip(job)
    except PlanError as exc:
        strip, progress.error = None, str(exc)
    if strip is not None:
        job.result_name = R.show_progress(strip, job.plan, "")  # the name without the progress
        if job.place:
            R.cover(job.scene(), strip, job.plan, progress.source_size)
    summary = {"status": progress.status, "written": progress.written, "resumed": progress.resumed,
               "total": progress.total, "done": progress.done, "error": progress.error,
               "returncode": job.process.returncode, "strip": job.result_name}
    LAST.clear()
    LAST.update(summary)
    if strip is not None:
        R.store_last_run(strip, summary)
        R.refresh(strip)
    runner.JOBS.remove(KIND, job)
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


def cancel(job: Job | None = None) -> None:
    """Ask the engine to stop (non-blocking); finished frames and their strip stay."""
    job = job or runner.JOBS.get(KIND)
    if job is not None:
        job.process.request_cancel()


@bpy.app.handlers.persistent
def cancel_running_job(*_args) -> None:
    """Stop the engine when Blender loads another file or quits (finished frames stay on disk)."""
    job = runner.JOBS.get(KIND)
    if job is not None:
        job.process.request_cancel()
        _ORPHANS.append(job)  # its settings file goes once the engine has stopped
        runner.JOBS.remove(KIND, job)
    _sweep()


def _sweep(force: bool = False) -> None:
    """Remove the settings files of cancelled jobs whose engine has stopped (all of them with ``force``)."""
    for job in list(_ORPHANS):
        if force or not job.process.running:
            job.remove_settings_file()
            _ORPHANS.remove(job)


def unregister() -> None:
    cancel_running_job()
    _sweep(force=True)
