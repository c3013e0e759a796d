"""Preview Frame: the frame under the playhead of the active strip, stylized small and fast with the panel's
settings, shown in the panel as the image datablock "NST Preview".

The engine does it in its own process, as for a whole strip: ``nst video SOURCE --frames N-N --settings
FILE --progress jsonl`` on the strip's movie or image sequence (so the frame is the one the job would make,
read by the engine's own decoder) with :func:`plan.preview_settings` (at most 192 px, 10 iterations). Its
files live in the add-on's private folder (``preview/``, never next to the user's media); one preview runs
at a time (:data:`PREVIEW`, the ``preview`` job of runner.JOBS), followed by a ``bpy.app.timers`` timer on
Blender's main thread.
"""

import glob
import os
import shutil
import tempfile

import bpy

from . import engine_process, jobs, runner
from . import result_strip as R
from .plan import PROP, Plan, PlanError, preview_settings
from .preferences import follow, private_folder

IMAGE_NAME = "NST Preview"
FILE_NAME = "nst_preview.png"
KIND = runner.PREVIEW  # PREVIEW: the running Preview, if any, kept in runner.JOBS
LAST = {}  # the last preview's outcome: status, message, frame


class Preview:
    def __init__(self, plan: Plan, frame: int, process: engine_process.EngineProcess, folder: str, run_dir: str,
                 settings_file: str | None):
        self.plan = plan
        self.frame = frame
        self.process = process
        self.folder = folder
        self.run_dir = run_dir
        self.settings_file = settings_file

    @property
    def progress(self):
        return self.process.progress

    @property
    def running(self) -> bool:
        return self.process.running

    def summary(self) -> str:
        progress = self.progress
        if self.process.cancelled:
            return f"cancelling the preview of frame {self.frame}..."
        if progress.step is not None and progress.steps:
            return f"previewing frame {self.frame}: step {progress.step}/{progress.steps}"
        return f"previewing frame {self.frame}: starting the engine..."

    @property
    def fraction(self) -> float:
        progress = self.progress
        return min(progress.step / progress.steps, 1.0) if progress.step is not None and progress.steps else 0.0


def __getattr__(name):
    if name == "PREVIEW":  # preview.PREVIEW: the running preview (or the one that ended, not finished yet), or None
        return runner.JOBS.get(KIND)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def source_strip(scene):
    """The strip to preview: the active source strip, or the source of the active result strip."""
    editor = scene.sequence_editor
    strip = editor.active_strip if editor is not None else None
    if strip is None:
        raise PlanError("no active strip: click a movie or image-sequence strip in the Sequencer first")
    if strip.get(PROP):
        plan = Plan.from_result_strip(strip)
        source = R.find(scene, plan.source_strip)
        if source is None:
            raise PlanError(f"the source strip {plan.source_strip!r} of {strip.name!r} is gone: select a source strip")
        return source
    return strip


def _sweep(folder: str) -> None:
    """Remove run folders and settings files that a Blender which crashed left in the preview folder."""
    for path in glob.glob(os.path.join(glob.escape(folder), "run-*")):
        shutil.rmtree(path, ignore_errors=True)
    engine_process.remove_stale_settings_files(folder, older_than=0.0)


def start_preview(context) -> Preview:
    """Start the engine on the frame under the playhead; PlanError with the one-line reason when it cannot."""
    if runner.JOBS.busy(KIND):
        raise PlanError("a preview is already running: wait for it or cancel it")
    scene = context.scene
    frame = int(scene.frame_current)
    plan = Plan.from_source_strip(source_strip(scene), scene.nst, R.abspath, frame=frame)
    plan.settings = preview_settings(plan.settings)
    info = jobs.working_engine(context)
    folder = private_folder("preview")
    _sweep(folder)
    run_dir = tempfile.mkdtemp(prefix="run-", dir=folder)  # the engine's output folder, for this run only
    try:
        settings_file = jobs.write_settings(info, plan.engine_settings(), folder)
        process = jobs.launch(info, jobs.engine_command(plan, info.python, run_dir, True, settings_file), run_dir,
                              settings_file)
    except PlanError:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    LAST.clear()
    return runner.JOBS.add(KIND, Preview(plan, frame, process, folder, run_dir, settings_file))


def show(path: str):
    """The image datablock "NST Preview" showing ``path`` (loaded, or reloaded from the new file)."""
    image = bpy.data.images.get(IMAGE_NAME)
    if image is None:
        image = bpy.data.images.load(path, check_existing=False)
        image.name = IMAGE_NAME
    else:
        image.filepath = path
        image.reload()
    try:  # the panel's thumbnail
        image.preview_ensure()
        image.preview.reload()
    except (AttributeError, RuntimeError):
        pass
    return image


def finish_preview(preview: Preview) -> tuple[str, str]:
    """(report level, one line) at the end of a preview; a finished frame goes to the panel's image."""
    process = preview.process
    process.poll()
    engine_process.remove_settings_file(preview.settings_file)
    frame_file = os.path.join(preview.run_dir, preview.plan.files[0])
    progress = process.progress
    if progress.status == "ok" and os.path.isfile(frame_file):
        target = os.path.join(preview.folder, FILE_NAME)
        os.replace(frame_file, target)
        try:
            image = show(target)
            level, message = "INFO", f"preview of frame {preview.frame} ({image.size[0]}x{image.size[1]} px) in the Style Transfer panel"
        except RuntimeError as exc:
            level, message = "ERROR", f"the preview {target} cannot be loaded ({exc})"
    elif process.cancelled:
        level, message = "WARNING", "preview cancelled"
    else:
        level, message = "ERROR", progress.error or process.crash_message()
    shutil.rmtree(preview.run_dir, ignore_errors=True)
    LAST.clear()
    LAST.update(status=level, message=message, frame=preview.frame)
    runner.JOBS.remove(KIND, preview)
    return level, message


def preview_tick():
    """The timer that follows a preview on Blender's main thread: poll (never blocks), redraw, finish."""
    preview = runner.JOBS.get(KIND)
    if preview is None:
        return None
    preview.process.poll()
    return follow(preview, not preview.process.finished, finish_preview, "SEQUENCE_EDITOR", 0.25)


def cancel() -> None:
    preview = runner.JOBS.get(KIND)
    if preview is not None:
        preview.process.request_cancel()


@bpy.app.handlers.persistent
def cancel_running_preview(*_args) -> None:
    """Stop a preview when Blender loads another file, quits or the add-on is disabled."""
    preview = runner.JOBS.get(KIND)
    if preview is None:
        return
    preview.process.cancel(grace=2.0)
    finish_preview(preview)


def unregister() -> None:
    cancel_running_preview()
    if bpy.app.timers.is_registered(preview_tick):
        bpy.app.timers.unregister(preview_tick)
