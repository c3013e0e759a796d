"""``nst preview-server``: the live mode's fast path for a tool that shows one frame at a time (the Blender
add-on's Live Preview, scrubbing the playhead).

A long-lived process for one source, one style and one set of settings. It reads requests on stdin, one JSON
object a line (``{"frame": N}``: the source's frame index, as ``nst video --frames N-N`` counts it), and
answers each on stdout, one JSON object a line, once the styled frame is written to a PNG in its folder::

    {"frame": N, "path": ".../preview_000012.png", "seconds": 0.05, "stage": "live", "width": 360, "height": 270,
     "skipped": 0}

The first request's frame is the keyframe: the keyframe engine's small network learns it exactly as the live
mode's does (:class:`.stages.Learner`, on its own thread; kept in the cache folder, :mod:`.cache`, under a key
of the style, the settings and the source, so the next server for that strip starts at full speed). Meanwhile
requests are answered at once at the style's stage, as the live mode shows it (``palette``: the frame in the
style's colours; ``learning``: the network while it trains), ``{"event": "keyframe"|"training", ...}`` lines
say how the learning goes, and the last frame answered is answered again when the stage changes; the first
``live`` answer says ``"network": "trained"`` or ``"cached"``. Once live, a request only reads its frame
(:class:`..video.seek.FrameSeeker`) and runs the network, with the live look that applies to a single frame
(:class:`.painter.Painter`: the keyframe's strokes carried where the flow finds its scene, enlarged with the
frame's own detail; no temporal filter, so a frame always looks the same, in whatever order it is asked).
Requests that wait while one is answered are coalesced: only the newest is answered (``skipped`` counts the
others). A request that cannot be answered gets
``{"frame": N, "error": "..."}`` and the server goes on; a failure that stops it, ``{"error": "..."}`` and
a non-zero exit. It exits when stdin closes (its client quit or crashed).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UserError
from .stages import LIVE, LiveSettings, StyleState

FILE_PATTERN = "preview_{:06d}.png"  # the answered frames, in the server's folder
FORWARDED = ("keyframe", "training", "warning")  # the engine's events a client sees while the network learns


class Requests:
    """The request lines of ``stream``, read on a thread; of those that wait, only the newest is taken."""

    def __init__(self, stream):
        self._ready = threading.Condition()
        self._newest: str | None = None
        self._waiting = 0
        self.closed = False
        threading.Thread(target=self._read, args=(stream,), name="nst-preview-requests", daemon=True).start()

    def _read(self, stream) -> None:
        try:
            for line in stream:
                if line.strip():
                    with self._ready:
                        self._newest, self._waiting = line.strip(), self._waiting + 1
                        self._ready.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._ready:
                self.closed = True
                self._ready.notify_all()

    def take(self, timeout: float | None = None) -> tuple[str | None, int]:
        """(the newest waiting line, how many older ones it replaces); (None, 0) when none came within
        ``timeout`` or the stream has closed with none left."""
        with self._ready:
            self._ready.wait_for(lambda: self._newest is not None or self.closed, timeout)
            line, skipped = self._newest, max(self._waiting - 1, 0)
            self._newest, self._waiting = None, 0
            return line, skipped

    def pending(self) -> bool:
        with self._ready:
            return self._newest is not None


def parse_request(line: str) -> int:
    """The frame index a request line asks for; UserError (one line) for anything else."""
    try:
        request = json.loads(line)
    except ValueError:
        raise UserError(f"a request is one JSON object a line, like {{\"frame\": 12}}; got {line[:80]!r}") from None
    frame = request.get("frame") if isinstance(request, dict) else None
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise UserError(f"a request names its frame as a whole number, like {{\"frame\": 12}}; got {line[:80]!r}")
    return frame


def preview_key(style: np.ndarray, config, settings: LiveSettings, source) -> str:
    """The network's cache key: the live mode's (style, keyframe and training settings) and the source's
    identity (a strip's network learnt on its own frames)."""
    from .cache import network_key
    from .session import cache_key

    return network_key(style, {"live": cache_key(style, config, settings), "source": source.identity()})


class PreviewServer:
    """Answers requests for frames of ``seeker``'s source in ``style`` (name, RGB) with the live network, whose
    settings come from ``config`` (:func:`.session.live_settings` at the source's size); ``write(dict)`` sends
    one line to the client; ``context`` stylizes the keyframe and receives its events."""

    def __init__(self, seeker, style: tuple[str, np.ndarray], config, context, folder: Path,
                 write: Callable[[dict], None], cache=None):
        from .cache import NetworkCache
        from .painter import Painter
        from .session import live_settings

        self.seeker, self.config, self.context, self.folder, self.write = seeker, config, context, Path(folder), write
        source = seeker.source
        self.settings = live_settings(config, (source.height, source.width))
        self.cache = cache if cache is not None else NetworkCache()
        name, image = style
        self.state = StyleState(1, name, image, preview_key(image, config, self.settings, source))
        self.painter = Painter(self.settings, keep=0.0)
        self.skipped = 0  # requests coalesced away since the last answer
        self.network: str | None = None  # how the network came ("trained", "cached"), until the next answer says it
        self.learner = None  # the Learner while the network is loaded or learnt
        self.last: tuple | None = None  # (frame, its RGB, the stage it was answered at)

    def serve(self, requests: Requests) -> None:
        """Answer requests until the client closes its end; while the network learns, follow it too."""
        while True:
            line, skipped = requests.take(timeout=None if self.learner is None else 0.1)
            if self.learner is not None:
                self.follow(requests)
            if line is None:
                if requests.closed and not requests.pending():
                    return
                continue
            self.skipped += skipped
            self.answer(line)

    def answer(self, line: str) -> None:
        started, frame = time.perf_counter(), None
        try:
            frame = parse_request(line)
            image = self.seeker.read(frame)
        except UserError as exc:
            self.write({**({"frame": frame} if frame is not None else {}), "error": str(exc)})
            return
        first = self.learner is None and not self.state.network_ready()
        self.show(frame, image, started)  # (the palette before the learner's thread starts importing TensorFlow)
        if first:
            self.learner = self.learn(frame, image)

    def show(self, frame: int, image: np.ndarray, started: float) -> None:
        """Write the frame's picture at the style's stage now, and its answer."""
        from ..images import save_image

        self.painter.reset()  # one frame on its own: no filter, strokes from the keyframe
        picture, stage = self.painter(self.state, image)
        path = self.folder / FILE_PATTERN.format(frame)
        save_image(path, picture)
        self.write({"frame": frame, "path": str(path), "seconds": round(time.perf_counter() - started, 4),
                    "stage": stage, "width": int(picture.shape[1]), "height": int(picture.shape[0]),
                    "skipped": self.skipped, **({"network": self.network} if self.network else {})})
        self.skipped, self.network, self.last = 0, None, (frame, image, stage)

    def follow(self, requests: Requests) -> None:
        """While the network learns: when its stage changes (learning, live), the last frame answered is
        answered again at the new stage, unless a newer request waits; at the end, a learner's error is
        raised. The client gone: the learner stops."""
        learner = self.learner
        if requests.closed and not requests.pending():
            learner.stop(timeout=10)
            self.learner = None
            return
        done = not learner.busy
        if done:
            self.learner = None
            if learner.error is not None:
                raise learner.error
            self.network = "trained" if self.state.trainings else "cached"
        stage = self.state.stage  # (live once published; answered at live once the learner is done)
        if self.last is not None and self.last[2] != stage and (stage != LIVE or done) and not requests.pending():
            self.show(*self.last[:2], time.perf_counter())

    def learn(self, frame: int, image: np.ndarray):
        """The started :class:`.stages.Learner` of the network: from the cache, or learnt from ``image``
        (frame ``frame``) as the live mode learns it, on its own thread, then cached."""
        from ..context import FrameControls
        from .session import keyframe_config
        from .stages import Learner

        key_config = keyframe_config(self.config, self.settings)

        def paint(picture: np.ndarray, style: np.ndarray) -> np.ndarray:
            return self.context.stylize_frame(picture, [(style, 1.0)], key_config, None, FrameControls()).image

        learner = Learner([self.state], self.settings, paint, lambda: None, lambda: 0, self.cache, self.context.emit,
                          first=(frame, image)).start()
        learner.finish.set()  # this style only, learnt to the end and cached
        return learner


class Protocol:
    """The client's lines: JSON objects on the process's real stdout, one a line, from any thread. The
    process's own stdout (``print``, a library's chatter) goes to stderr, so nothing else reaches the client."""

    def __init__(self, stream=None):
        self._lock = threading.Lock()
        self.stream = stream if stream is not None else self._take_stdout()

    @staticmethod
    def _take_stdout():
        try:
            fd = sys.stdout.fileno()
            sys.stdout.flush()
        except (AttributeError, OSError, ValueError):  # not a real file (tests in one process): use it as it is
            return sys.stdout
        stream = os.fdopen(os.dup(fd), "w", encoding="utf-8", buffering=1)
        os.dup2(sys.stderr.fileno(), fd)
        return stream

    def __call__(self, data: dict) -> None:
        with self._lock:
            self.stream.write(json.dumps(data, default=str) + "\n")
            self.stream.flush()

    def event(self, event) -> None:
        """An engine event (the keyframe, the training) passed on while the network learns."""
        from ..events import as_dict

        data = as_dict(event)
        if data.get("event") in FORWARDED:
            self(data)


def check_folder(folder: Path) -> Path:
    """The server's folder, made if missing; UserError when it holds anything but its own previews (a
    user's files are never overwritten)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output {str(folder)!r} is a file, not a folder")
    if folder.is_dir():
        others = [p.name for p in folder.iterdir() if not (p.name.startswith("preview_") and p.suffix == ".png")]
        if others:
            raise UserError(f"output folder {str(folder)!r} holds files that are not previews ({others[0]}, ...): "
                            "give a new or empty folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"output folder {str(folder)!r} cannot be made ({exc.strerror or exc})") from None
    return folder


def live_flat(flat: dict) -> dict:
    """A preview's settings: the live mode's defaults under the given ones, the live mode's engine's network.
    Settings made for another engine's full run (the Blender panel's) are served too: that engine and its
    options are left out, the look (preset, strength, weights, colour) kept."""
    from .session import DEFAULTS, ENGINE

    flat = {**DEFAULTS, **flat}
    other = flat.get("engine") or ENGINE
    if other != ENGINE:
        mine = [text for text in _as_list(flat.get("option")) if not str(text).startswith(f"{other}.")]
        flat = {**{k: v for k, v in flat.items() if k != "option"}, **({"option": mine} if mine else {})}
        if isinstance(flat.get("options"), dict):
            flat["options"] = {k: v for k, v in flat["options"].items() if not str(k).startswith(f"{other}.")}
    flat["engine"] = ENGINE
    return flat


def _as_list(value) -> list:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def run_server(source: str, style: Path, output: Path, flat: dict, prepare: Callable, stdin=None,
               protocol: Protocol | None = None) -> None:
    """The command: check everything (an ``{"error": ...}`` line and UserError before any long work), then
    serve ``stdin`` (default: the process's) until it closes. ``prepare(style paths, flat)`` -> (config,
    styles) is the CLI's."""
    from ..plugins import get_host
    from ..video import open_source
    from ..video.seek import FrameSeeker

    protocol = protocol or Protocol()
    try:
        if not Path(style).expanduser().is_file():
            raise UserError(f"style image {str(style)!r} does not exist")
        seeker = FrameSeeker(open_source(source))
        folder = check_folder(output)
        config, styles = prepare([style], live_flat(flat))
    except UserError as exc:
        protocol({"error": str(exc)})
        raise
    server = PreviewServer(seeker, (Path(style).stem, styles[0][0]), config, get_host().run_context(protocol.event),
                           folder, protocol)
    protocol({"event": "ready", "source": source, "frames": len(seeker.indices), "width": server.settings.out_shape[1],
              "height": server.settings.out_shape[0]})
    try:
        server.serve(Requests(stdin if stdin is not None else sys.stdin))
    except Exception as exc:  # the network could not be learnt: the client sees why, then the CLI's error line
        protocol({"error": str(exc) or type(exc).__name__})
        raise
    finally:
        seeker.close()
