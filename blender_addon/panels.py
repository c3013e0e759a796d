"""The Sequencer sidebar panel "Style Transfer"."""

import bpy
from bpy.props import StringProperty

from . import engines, jobs, preview, preview_live, props
from . import result_strip as R
from .plan import PROP, Plan, PlanError


class SEQUENCER_PT_nst(bpy.types.Panel):
    bl_label = "Style Transfer"
    bl_idname = "SEQUENCER_PT_nst"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Style Transfer"

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and getattr(space, "view_type", "SEQUENCER") in {"SEQUENCER", "SEQUENCER_PREVIEW"}

    def draw(self, context):
        layout = self.layout
        job = jobs.JOB
        draw_job(layout, job)
        editor = context.scene.sequence_editor
        draw_strip(layout, context, editor.active_strip if editor is not None else None)
        draw_settings(layout.column(), context, editor)
        run = layout.row()
        run.scale_y = 1.4
        run.enabled = job is None
        run.operator("sequencer.nst_stylize", text="Stylize Strip", icon="BRUSH_DATA").action = "NEW"
        draw_preview(layout.box())


def draw_job(layout, job) -> None:
    """The running job's progress and Cancel, or how the last one ended."""
    if job is not None:
        box = layout.box()
        text = job.progress.summary()
        if hasattr(box, "progress"):
            box.progress(factor=job.progress.fraction, type="BAR", text=text)
        else:
            box.label(text=text)
        box.operator("sequencer.nst_cancel", icon="CANCEL")
    elif jobs.LAST:
        last = jobs.LAST
        layout.label(text=f"Last run: {last.get('status')}, {last.get('done')}/{last.get('total')} frames",
                     icon="INFO")


def draw_strip(layout, context, strip) -> None:
    """The active strip: a result strip's source, last run and actions, or a source strip's name."""
    if strip is not None and strip.get(PROP):
        box = layout.box()
        try:
            plan = Plan.from_result_strip(strip)
            box.label(text=f"Result of {plan.source_strip}, frames {plan.timeline[0]}-{plan.timeline[1]}",
                      icon="SEQ_SEQUENCER")
            props.ensure_listing(context)
            missing = engines.missing(plan.settings.get("engine"))
            if missing:  # Resume and Re-run would be refused: say so before
                box.label(text=missing, icon="ERROR")
        except PlanError as exc:
            box.label(text="Result strip (settings from a newer add-on)" if "newer" in str(exc)
                      else "Result strip (settings damaged)",
                      icon="ERROR")
        run = R.last_run(strip)
        if run is not None:
            box.label(text=f"Last run: {run.get('status')}, {run.get('done')}/{run.get('total')} frames")
        row = box.row(align=True)
        row.operator("sequencer.nst_stylize", text="Resume", icon="PLAY").action = "RESUME"
        row.operator("sequencer.nst_load_settings", text="Load Settings", icon="IMPORT")
        box.operator("sequencer.nst_stylize", text="Re-run with Changes", icon="FILE_REFRESH").action = "RERUN"
        row = box.row(align=True)
        row.operator("sequencer.nst_edit_keyframe", icon="BRUSH_DATA")
        row.operator("sequencer.nst_use_painted_keyframe", icon="CHECKMARK")
    elif strip is not None:
        layout.label(text=f"{strip.name} ({strip.type.lower()})", icon="SEQUENCE")
        layout.operator("sequencer.nst_edit_keyframe", icon="BRUSH_DATA")
    else:
        layout.label(text="Select a movie or image-sequence strip", icon="INFO")


def draw_settings(col, context, editor) -> None:
    """The run's settings: style, preset, engine and its options, size, weights, frames, output, mask."""
    settings = context.scene.nst
    col.prop(settings, "style_image")
    col.prop(settings, "preset")
    col.prop(settings, "engine")
    props.ensure_listing(context)
    hint, problem = engines.hint(settings.engine_name)
    col.label(text=hint, icon="ERROR" if problem else "INFO")
    draw_engine_options(col, settings)
    col.prop(settings, "resolution")
    row = col.row()
    row.enabled = settings.resolution == "SIZE"
    row.prop(settings, "size")
    row = col.row()
    row.enabled = not settings.custom_weights
    row.prop(settings, "strength", slider=True)
    col.prop(settings, "iterations")
    col.prop(settings, "preserve_color")
    col.prop(settings, "custom_weights")
    sub = col.column(align=True)
    sub.enabled = settings.custom_weights
    sub.prop(settings, "content_weight")
    sub.prop(settings, "style_weight")
    sub.prop(settings, "temporal_weight")
    animated = settings.animated()
    if animated:  # keyframed: the engine gets each frame's value
        col.label(text=f"Keyframed, per frame: {', '.join(n.replace('_', ' ') for n in animated)}", icon="KEYFRAME")
    row = col.row(align=True)
    row.prop(settings, "extra_loss")
    sub = row.row(align=True)
    sub.enabled = settings.extra_loss != "NONE"
    sub.prop(settings, "extra_loss_weight")
    col.prop(settings, "use_strip_range")
    row = col.row(align=True)
    row.enabled = not settings.use_strip_range
    row.prop(settings, "frame_first")
    row.prop(settings, "frame_last")
    col.prop(settings, "output_dir")
    if editor is not None:  # the mask: any strip of the sequencer (a Mask strip, a movie or an image)
        col.prop_search(settings, "mask_strip", editor, "strips" if hasattr(editor, "strips") else "sequences",
                        icon="MOD_MASK")
    else:
        col.prop(settings, "mask_strip", icon="MOD_MASK")


def draw_engine_options(layout, settings) -> None:
    """The selected engine's plugin options (from the listing, or as a result strip stored them): a text
    field each, its help on the ? beside it; behind a disclosure, with how many differ from the defaults."""
    engine = engines.get(settings.engine_name)
    listed = engine.fields if engine is not None else ()
    fields = settings.option_fields()
    if not listed and not fields:
        return
    if len(fields) < len(listed):  # a new listing or scene: the fields come from a timer (not while drawing)
        props.schedule_sync()
    changed = sum(engines.changed(item.kind, item.value, item.default) for item in fields)
    box = layout.box()
    label = engine.label if engine is not None else settings.engine_name
    box.prop(settings, "show_options", emboss=False, icon="TRIANGLE_DOWN" if settings.show_options else "TRIANGLE_RIGHT",
             text=f"{label} options ({changed} changed)" if changed else f"{label} options")
    if not settings.show_options:
        return
    for item in fields:
        row = box.row(align=True)
        row.prop(item, "value", text=item.key)
        words = f"{item.key} ({item.kind or 'value'}, default {item.default or 'none'})"
        row.operator(NST_OT_option_help.bl_idname, text="", icon="QUESTION").text = (
            f"{words}: {item.help}" if item.help else words)


class NST_OT_option_help(bpy.types.Operator):
    """What an engine option does (its tooltip is the option's help)"""

    bl_idname = "nst.option_help"
    bl_label = "Engine Option"
    bl_options = {"INTERNAL"}

    text: StringProperty(name="Help", options={"SKIP_SAVE"})

    @classmethod
    def description(cls, context, properties):
        return properties.text

    def execute(self, context):
        self.report({"INFO"}, self.text)
        return {"FINISHED"}


def draw_preview(box) -> None:
    """Preview Frame: the button (or the running preview's progress and its Cancel), the last failure,
    and the "NST Preview" image."""
    running = preview.PREVIEW
    row = box.row(align=True)
    if running is not None:
        if hasattr(row, "progress"):
            row.progress(factor=running.fraction, type="BAR", text=running.summary())
        else:
            row.label(text=running.summary())
        row.operator("sequencer.nst_preview_cancel", text="", icon="CANCEL")
    else:
        row.operator("sequencer.nst_preview", text="Preview Frame", icon="HIDE_OFF")
    row.prop(bpy.context.scene.nst, "live_preview", toggle=True, icon="PLAY")
    live = preview_live.status()
    if live:
        box.label(text=f"Live: {live}", icon="ERROR" if preview_live.failed() else "TIME")
    last = preview.LAST
    if last and last.get("status") != "INFO":
        box.label(text=last.get("message", ""), icon="ERROR" if last.get("status") == "ERROR" else "INFO")
    image = bpy.data.images.get(preview.IMAGE_NAME)
    if image is not None and image.preview is not None:
        box.template_icon(icon_value=image.preview.icon_id, scale=8.0)
        if last.get("frame") is not None:
            box.label(text=f"Frame {last['frame']}, {image.size[0]}x{image.size[1]} px")


classes = (NST_OT_option_help, SEQUENCER_PT_nst)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
