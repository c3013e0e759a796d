"""Operators: Stylize strip (new, resume, re-run with changes), Cancel, Load settings from a result strip,
Preview Frame and its Cancel, Edit Keyframe and Use Painted Keyframe.

Only the operators and their registration live here: the plan is plan.Plan, the result strip is handled by
result_strip, the job lifecycle (start, step, finish, cancel, the one running job) by jobs, the preview's by
preview. Interactively,
a modal operator polls the engine from a window timer, so Blender stays responsive; Esc or the panel's
Cancel button stop it. In background mode (``blender -b``) the operator waits for the engine before
returning.
"""

import bpy
from bpy.props import EnumProperty, StringProperty

from . import jobs, paint_editor, preview
from .plan import Plan, PlanError
from .preferences import get_preferences, tag_redraw


def _redraw(context) -> None:
    tag_redraw("SEQUENCE_EDITOR", context)


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
            job = jobs.start_job(context, self.action)
        except PlanError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background or context.window is None:
            job.process.wait(on_events=lambda events: None, interval=0.1)
            jobs.step_job(job)
            return self._finish(context, job)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        self._status(context, job)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = jobs.JOB
        if job is None:
            self._cleanup(context)
            return {"CANCELLED"}
        what = jobs.handle_event(job, event.type, event.value)
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
        level, message = jobs.finish_job(job)
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
        return jobs.JOB is not None and jobs.JOB.process.running

    def execute(self, context):
        jobs.cancel()
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
            plan = Plan.from_result_strip(strip)
        except PlanError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        context.scene.nst.load(plan.settings, plan.style)
        context.scene.nst.mask_strip = plan.mask_strip
        return {"FINISHED"}


class SEQUENCER_OT_nst_preview(bpy.types.Operator):
    """Stylize the frame under the playhead of the active strip with the panel's settings, small and fast
    (at most 192 px, 10 iterations); the result shows in the Style Transfer panel"""

    bl_idname = "sequencer.nst_preview"
    bl_label = "Preview Frame"

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        try:
            job = preview.start_preview(context)
        except PlanError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if bpy.app.background or context.window is None:
            job.process.wait(interval=0.1)
            level, message = preview.finish_preview(job)
            self.report({level}, message)
            return {"FINISHED"} if level == "INFO" else {"CANCELLED"}
        if not bpy.app.timers.is_registered(preview.preview_tick):
            bpy.app.timers.register(preview.preview_tick, first_interval=0.25)
        _redraw(context)
        return {"FINISHED"}


class SEQUENCER_OT_nst_preview_cancel(bpy.types.Operator):
    """Stop the running preview"""

    bl_idname = "sequencer.nst_preview_cancel"
    bl_label = "Cancel Preview"

    @classmethod
    def poll(cls, context):
        return preview.PREVIEW is not None and preview.PREVIEW.process.running

    def execute(self, context):
        preview.cancel()
        return {"FINISHED"}


class SEQUENCER_OT_nst_edit_keyframe(bpy.types.Operator):
    """Write the frame under the playhead of the active strip (a result strip's keyframe or frame, or a source
    strip's own frame) to a PNG next to the .blend and open it for painting; a painting already there is
    reopened, never replaced"""

    bl_idname = "sequencer.nst_edit_keyframe"
    bl_label = "Edit Keyframe"

    @classmethod
    def poll(cls, context):
        return context.scene is not None

    def execute(self, context):
        prefs = get_preferences(context)
        try:
            path, created = paint_editor.edit_keyframe(context, getattr(prefs, "painter", "") if prefs else "")
        except PlanError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{'new painting' if created else 'your painting'}: {path}; paint it (Image Editor, "
                              "Paint mode), save it (Image > Save), then Use Painted Keyframe")
        return {"FINISHED"}


class SEQUENCER_OT_nst_use_painted_keyframe(bpy.types.Operator):
    """Use the painting of the frame under the playhead (Edit Keyframe's, or the chosen image) as the keyframe
    of that frame of the active result strip, and resume the strip: the engine re-makes the frames it changes"""

    bl_idname = "sequencer.nst_use_painted_keyframe"
    bl_label = "Use Painted Keyframe"

    filepath: StringProperty(name="Painting", subtype="FILE_PATH", default="", options={"SKIP_SAVE"},
                             description="An image to use (default: Edit Keyframe's painting of this frame)")

    @classmethod
    def poll(cls, context):
        return context.scene is not None and jobs.JOB is None

    def execute(self, context):
        try:
            paint_editor.use_painted_keyframe(context, self.filepath)
        except PlanError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        how = "EXEC_DEFAULT" if bpy.app.background or context.window is None else "INVOKE_DEFAULT"
        return bpy.ops.sequencer.nst_stylize(how, action="RESUME")


classes = (SEQUENCER_OT_nst_stylize, SEQUENCER_OT_nst_cancel, SEQUENCER_OT_nst_load_settings,
           SEQUENCER_OT_nst_preview, SEQUENCER_OT_nst_preview_cancel, SEQUENCER_OT_nst_edit_keyframe,
           SEQUENCER_OT_nst_use_painted_keyframe)
_LOAD_HANDLERS = (jobs.cancel_running_job, preview.cancel_running_preview)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.extend(_LOAD_HANDLERS)


def unregister():
    jobs.unregister()
    preview.unregister()
    for handler in _LOAD_HANDLERS:
        if handler in bpy.app.handlers.load_pre:
            bpy.app.handlers.load_pre.remove(handler)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
