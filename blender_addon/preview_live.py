"""Live Preview: while the panel's toggle is on, the frame under the playhead of the active strip is shown
styled in the "NST Preview" image, within a fraction of a second of each move once the first one is done.

One engine process serves it (:class:`live_server.LiveServer`, ``nst preview-server``), started for the
active strip, its style and the panel's settings (:func:`live_server.live_settings`); the
``frame_change_post`` handler asks it for the playhead's frame (the strip's own frame index), and a
``bpy.app.timers`` timer reads its answers and loads each PNG into the image, as Preview Frame does. A change
of strip or settings starts a new server; the toggle off, another .blend loaded, the add-on disabled or
Blender quitting stop it (and a server whose Blender is gone leaves when its stdin closes).
"""

import atexit
import json
import os
import shutil
import tempfile
from dataclasses import replace

import bpy

from . import engine_process, jobs, preview
from . import result_strip as R
from .live_server import LiveServer, live_settings, server_command
from .plan import Plan, PlanError
from .preferences import chosen_backend, get_preferences, private_folder, tag_redraw

FOLDER = "live-preview"  # in the add-on's private folder: the servers' run folders and settings files
TICK, IDLE_TICK = 0.05, 0.2  # the timer's interval while an answer is awaited, and otherwise


class Session:
    """The live preview now: the running server (or the reason there is none) for one ``key`` (strip, source,
    style, settings, engine)."""

    def __init__(self, key: str, server: LiveServer | None = None, run_dir: str = "", settings_file: str = "",
                 error: str | None = None):
        self.key, self.server, self.run_dir, self.settings_file, self.error = key, server, run_dir, settings_file, error
        self.timeline: dict = {}  # the strip's frame index asked -> the timeline frame it was asked at

    def status(self) -> str:
        if self.error:
            return self.error
        return self.server.status if self.server is not None else ""

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        engine_process.remove_settings_file(self.settings_file)
        if self.run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)


_SESSION: list = []  # [Session] while the toggle is on and a strip was looked at


def session():
    """The live preview's :class:`Session`, or None."""
    return _SESSION[0] if _SESSION else None


def stop() -> None:
    """Stop the server (if any) and forget the session; blocks a second or two at most."""
    while _SESSION:
        _SESSION.pop().close()


def _target(scene):
    """(key, plan, (the strip's frame index, the timeline frame) under the playhead or None) for the active
    strip; PlanError when there is nothing to preview."""
    strip = preview.source_strip(scene)
    frame = int(scene.frame_current)
    over = strip.frame_final_start <= frame < strip.frame_final_end
    plan = Plan.from_source_strip(strip, scene.nst, R.abspath, frame=frame if over else int(strip.frame_final_start))
    prefs = get_preferences()
    engine = (getattr(prefs, "python_path", "") if prefs is not None else "", chosen_backend())
    key = json.dumps([strip.name, plan.source, plan.style, live_settings(plan.settings), engine], sort_keys=True)
    return key, plan, (plan.indices[0], frame) if over else None


def _start(context, key: str, plan: Plan) -> Session:
    """A server for ``plan`` (its source, style and live settings); a Session with the error if it cannot."""
    try:
        info = jobs.working_engine(context)
        folder = private_folder(FOLDER)
        engine_process.remove_stale_settings_files(folder)
        run_dir = tempfile.mkdtemp(prefix="run-", dir=folder)
        settings_file = engine_process.write_settings_file(
            replace(plan, settings=live_settings(plan.settings)).engine_settings(), folder)
    except (PlanError, OSError) as exc:
        return Session(key, error=str(exc))
    server = LiveServer(server_command(info.python, plan.source, plan.style, os.path.join(run_dir, "frames"),
                                       settings_file), cwd=run_dir, env=jobs.engine_env())
    try:
        server.start()
    except OSError as exc:
        engine_process.remove_settings_file(settings_file)
        shutil.rmtree(run_dir, ignore_errors=True)
        return Session(key, error=f"engine not found: {info.python} cannot start ({exc})")
    return Session(key, server, run_dir, settings_file)


def sync(context=None) -> None:
    """Make the live preview follow the scene: a server for the active strip and settings (a new one when
    they changed), asked for the frame under the playhead; none while the toggle is off."""
    context = context or bpy.context
    scene = getattr(context, "scene", None)
    if scene is None or not scene.nst.live_preview:
        stop()
        return
    try:
        key, plan, index = _target(scene)
    except PlanError as exc:
        current, editor = session(), scene.sequence_editor
        if current is not None and current.server is not None and getattr(editor, "active_strip", None) is None:
            current.server.status = str(exc)  # no strip selected for now: the server waits for the next one
            return
        stop()
        _SESSION.append(Session("", error=str(exc)))
        return
    current = session()
    if current is None or current.key != key:  # another strip, style or settings: a new server
        stop()
        current = _start(context, key, plan)
        _SESSION.append(current)
    if current.server is not None and index is not None and current.error is None:
        current.timeline[index[0]] = index[1]
        if not current.server.request(index[0]):
            current.error = current.server.error or "the preview server is gone"
    elif index is None and current.error is None and current.server is not None:
        current.server.status = "the playhead is not over the strip"
    if not bpy.app.timers.is_registered(tick):  # while the toggle is on: it follows strip and settings changes
        bpy.app.timers.register(tick, first_interval=TICK)


def receive(current: Session) -> None:
    """Take the server's answers: the newest frame into "NST Preview" (Preview Frame's image)."""
    server = current.server
    answers = [a for a in server.poll() if "path" in a]
    if server.error and current.error is None:
        current.error = server.error
    if not answers:
        return
    answer = answers[-1]
    target = os.path.join(private_folder("preview"), preview.FILE_NAME)
    try:
        os.replace(answer["path"], target)
        image = preview.show(target)
    except (OSError, RuntimeError) as exc:
        current.error = f"the live preview's frame cannot be loaded ({exc})"
        return
    preview.LAST.clear()
    preview.LAST.update(status="INFO", frame=current.timeline.get(answer["frame"]),
                        message=f"live preview: frame {answer['frame']} ({image.size[0]}x{image.size[1]} px)")


def tick():
    """The timer: the scene followed (strip and settings changes), answers taken; stops with the session."""
    sync()
    current = session()
    if current is None:
        return None
    if current.server is not None:
        receive(current)
    tag_redraw("SEQUENCE_EDITOR")
    return TICK if current.server is not None and current.server.waiting else IDLE_TICK


def status() -> str:
    """One line for the panel: what the live preview does now ("" when off)."""
    current = session()
    return current.status() if current is not None else ""


def failed() -> bool:
    """Whether the live preview stopped on an error (its status says which)."""
    current = session()
    return current is not None and current.error is not None


def on_toggle(settings, context) -> None:
    """The panel's Live Preview toggle (its update callback)."""
    sync(context)


@bpy.app.handlers.persistent
def on_frame_change(scene, *_args) -> None:
    if scene.nst.live_preview or _SESSION:
        sync(bpy.context)


@bpy.app.handlers.persistent
def on_load(*_args) -> None:
    stop()


def register() -> None:
    bpy.app.handlers.frame_change_post.append(on_frame_change)
    bpy.app.handlers.load_pre.append(on_load)
    atexit.register(stop)


def unregister() -> None:
    stop()
    atexit.unregister(stop)
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
    handlers = bpy.app.handlers
    for hooks, handler in ((handlers.frame_change_post, on_frame_change), (handlers.load_pre, on_load)):
        if handler in hooks:
            hooks.remove(handler)
