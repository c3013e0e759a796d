"""Live Preview's engine process: ``nst preview-server`` for one strip, style and set of settings, asked for
frames as the playhead moves. No bpy here.

The server (the engine's ``nst_plugin.live.preview``) learns the live mode's small network from the first
frame asked (or loads it from the engine's cache), then answers each ``{"frame": N}`` line on its stdin with
a JSON line on its stdout naming the PNG it wrote; of the requests that wait, it answers the newest. It exits
when its stdin closes, so a Blender that quits or crashes leaves nothing running.
"""

from __future__ import annotations

import json
import subprocess

from . import runner

LIVE_SIZE = 360  # the preview's longer side at most (the live mode's size: the network is ~0.04 s a frame there)
LIVE_ITERATIONS = 30  # the keyframe's optimizer iterations at most (the live mode's)
STOP_WAIT = 1.0  # seconds a stop waits for the server to leave on its own (stdin closed) before signals


def live_settings(settings: dict) -> dict:
    """The panel's settings (its names) for Live Preview: the server shows the live mode's network (and leaves
    out another engine and its options itself), at most :data:`LIVE_SIZE` pixels and :data:`LIVE_ITERATIONS`
    iterations for the keyframe; the look (preset, strength, weights, colour) as set."""
    out = dict(settings)
    out["size"] = min(int(settings.get("size") or LIVE_SIZE), LIVE_SIZE)
    if settings.get("iterations"):
        out["iterations"] = min(int(settings["iterations"]), LIVE_ITERATIONS)
    return out


def server_command(python: str, source: str, style: str, folder: str, settings_file: str) -> list[str]:
    """``python -m nst_plugin preview-server SOURCE --style STYLE --output FOLDER --settings FILE``."""
    return [python, "-m", "nst_plugin", "preview-server", str(source), "--style", str(style), "--output", str(folder),
            "--settings", str(settings_file)]


class LiveServer(runner.Process):
    """The running server. :meth:`request` asks for a frame (the source's index); :meth:`poll` (from the main
    thread, never blocks) returns the answers that came (``{"frame", "path", "seconds", "stage", ...}`` or
    ``{"error": ...}``; while the network learns, a frame comes in the style's colours first, ``palette``,
    then again as the network shows it) and keeps :attr:`status` (one line for the panel) and :attr:`error`
    (a failure that stopped it) up to date; :meth:`stop` ends it (stdin closed, then the runner's signals)."""

    def __init__(self, argv, cwd=None, env=None):
        super().__init__(argv, cwd=cwd, env=env, grace=2.0, keep_stdin=True)
        self.sent: int | None = None  # the frame last asked for
        self.answered: int | None = None  # the frame of the last answer
        self.status = "starting the engine..."
        self.error: str | None = None
        self._shown = ""  # the last answer, in words
        self._learning = ""  # what the network does while it is not live yet

    def request(self, frame: int) -> bool:
        """Ask for frame ``frame`` unless it is the one last asked; False when the server is gone."""
        if frame == self.sent:
            return True
        try:
            self.popen.stdin.write(json.dumps({"frame": int(frame)}) + "\n")
            self.popen.stdin.flush()
        except (OSError, ValueError, AttributeError):
            return False
        self.sent = int(frame)
        return True

    def poll(self) -> list[dict]:
        answers = []
        for stream, line in self.tick():
            data = _json_line(line) if stream == runner.OUT else None
            if data is None:
                continue
            if "frame" in data or "error" in data:
                answers.append(data)
                self._answered(data)
            else:
                self._progress(data)
        outcome = self.outcome()
        if outcome is not None and not self.cancelled and self.error is None:
            self.error = outcome.error or f"the preview server ended (exit status {outcome.code})"
            self.status = self.error
        return answers

    def _answered(self, data: dict) -> None:
        if "frame" in data and "error" not in data:
            self.answered = data["frame"]
            stage = data.get("stage")
            how = {"trained": ", network learnt", "cached": ", network from the cache"}.get(data.get("network"), "")
            self._shown = (f"frame {data['frame']} in {float(data.get('seconds', 0)):.2f} s{how}"
                           + ("" if stage == "live" else f" ({stage})"))
            if stage == "live":
                self._learning = ""
            self.status = "; ".join(text for text in (self._shown, self._learning) if text)
        elif "frame" in data:  # that frame only: the server goes on
            self.status = data["error"]
        else:  # the server stops
            self.error = self.status = data["error"]

    def _progress(self, data: dict) -> None:
        event = data.get("event")
        if event == "ready":
            self._learning = "loading the network, or learning it from this frame..."
        elif event == "keyframe":
            self._learning = f"keyframe stylized in {float(data.get('seconds', 0)):.0f} s; the network learns it..."
        elif event == "training" and data.get("total"):
            self._learning = f"the network learns: step {data.get('step')}/{data.get('total')}"
        else:
            return
        self.status = "; ".join(text for text in (self._shown, self._learning) if text)

    @property
    def waiting(self) -> bool:
        """A frame was asked for and its answer has not come yet."""
        return self.sent is not None and self.sent != self.answered and self.running

    def stop(self, wait: float = STOP_WAIT) -> int | None:
        """End the server: its stdin closed (it leaves on its own), then the runner's signals; blocks a few
        seconds at most. Returns the exit code."""
        self.cancelled = True
        if self.popen is None:
            return None
        try:
            self.popen.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            return self.popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return self.cancel(grace=2.0)


def _json_line(line: str) -> dict | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
