"""A stand-in for ``python -m nst_plugin video ... --progress jsonl`` in tests: ``fake_engine.py MODE OUTDIR``,
or ``fake_engine.py -m nst_plugin ...`` (as a fake interpreter; the mode comes from ``NST_FAKE_MODE``).

Modes: ok (3 frames, garbage mixed into stdout), slow (frames 0.5 s apart), hang (one frame, then waits;
SIGINT ends it like the engine: a ``done interrupted`` event and exit 130), busy (at step 5 of its first
frame, then waits), stubborn (ignores SIGINT and
SIGTERM), crash (a Python traceback on stderr, exit 1), error (an ``error`` event and ``error:`` line, exit 2).
As a fake interpreter it answers ``video --help`` (listing ``--settings`` unless ``NST_FAKE_NO_SETTINGS``),
refuses a ``--settings`` file that is not a JSON object (exit 2), and with ``NST_FAKE_RECORD=PATH`` writes
its arguments, the settings it read and its KERAS_BACKEND to PATH. ``--version`` and ``plugins --json`` answer
for the backend KERAS_BACKEND names, with the backends of ``NST_FAKE_BACKENDS`` (default: all) installed;
``plugins --json`` lists the two built-in engines with their traits, and the engines of ``NST_FAKE_EXTRA_ENGINES``
(a JSON object, a plugin's engines) too.
Its frames are real 8x6 PNGs.
"""

import json
import os
import signal
import sys
import time

FRAMES = [1, 2, 3]
if sys.argv[1] == "-m":  # run as a fake interpreter: ``python -m nst_plugin video SRC --output OUT --frames A-B``
    backend = os.environ.get("KERAS_BACKEND") or "tensorflow"
    installed = os.environ.get("NST_FAKE_BACKENDS", "tensorflow,jax,torch").split(",")
    if "--version" in sys.argv:  # like the engine: what it computes with, or an error without that backend
        if backend not in installed:
            sys.stderr.write(f"error: the {backend} backend is not installed here (pip install 'nst-plugin[{backend}]')\n")
            sys.exit(1)
        print(f"nst-plugin 0.0.0-fake; Keras 3.0.0 on {backend} 9.9, device fake:0")
        sys.exit(0)
    args = sys.argv[1:]
    if args[2:] == ["plugins", "--json"]:
        engines = {  # as the real engine lists its built-in engines (a few of the keyframe engine's options)
            "lbfgs": {"name": "lbfgs", "plugin": "nst_plugin.builtin.engine", "description": "the frame-by-frame chain",
                      "options": [], "traits": {"output_size": "size", "frame_settings": True, "seekable": False,
                                                "label": "Frame by frame",
                                                "hint": "Best quality, every frame optimised: minutes per frame"}},
            "keyframes": {"name": "keyframes", "plugin": "nst_plugin.builtin.keyframes", "description": "keyframes",
                          "options": [{"key": "steps", "type": "int", "default": 600, "help": "Training steps per shot"},
                                      {"key": "full_size", "type": "bool", "default": False, "help": "Train at the output size"},
                                      {"key": "images", "type": "painting", "default": [], "help": "Painted keyframes",
                                       "flag": "--keyframe-image", "repeat": True, "per_frame": True}],
                          "traits": {"output_size": "source", "frame_settings": False, "seekable": False,
                                     "label": "Keyframes",
                                     "hint": "Fast: keyframes learnt by a small network, seconds per frame"}}}
        engines.update(json.loads(os.environ.get("NST_FAKE_EXTRA_ENGINES") or "{}"))  # a plugin's engines
        print(json.dumps({"version": "0.0.0-fake", "presets": ["default", "seed"], "losses": {}, "engines": engines,
                          "backends": {"selected": backend, "installed": {name: "9.9" if name in installed else None
                                                                          for name in ("tensorflow", "jax", "torch")}}}))
        sys.exit(0)
    if "--help" in args:  # ``nst video --help``: lists --settings unless NST_FAKE_NO_SETTINGS is set
        print("Usage: nst video [OPTIONS] SOURCE\n  --style -s PATH\n  --output -o PATH")
        if not os.environ.get("NST_FAKE_NO_SETTINGS"):
            print("  --settings FILE  JSON object of settings; flags override it")
        sys.exit(0)
    out = args[args.index("--output") + 1]
    settings = None
    if "--settings" in args:  # it must parse: a JSON object
        path = args[args.index("--settings") + 1]
        try:
            with open(path, encoding="utf-8") as handle:
                settings = json.load(handle)
            assert isinstance(settings, dict)
        except (OSError, ValueError, AssertionError) as exc:
            sys.stderr.write(f"error: --settings {path}: {exc}\n")
            sys.exit(2)
    if os.environ.get("NST_FAKE_RECORD"):  # what it was given, for the tests
        with open(os.environ["NST_FAKE_RECORD"], "w", encoding="utf-8") as handle:
            json.dump({"argv": args, "settings": settings, "cwd": os.getcwd(), "keras_backend": backend}, handle)
    if "--frames" in args:
        first, last = map(int, args[args.index("--frames") + 1].split("-"))
        FRAMES = list(range(first, last + 1))
    mode = os.environ.get("NST_FAKE_MODE", "ok")
else:
    mode, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def emit(**event):
    event["time"] = time.time()
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def png(width=8, height=6) -> bytes:
    """A real RGB PNG (a grey ramp), so that Blender can load the frames."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\0" + bytes((x * 30) % 256 for x in range(width) for _ in range(3)) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def frame(index, done, total):
    path = os.path.join(out, f"frame_{index:06d}.png")
    with open(path, "wb") as handle:
        handle.write(png())
    emit(event="frame_progress", index=index, step=5, total=10, loss=10.0)
    emit(event="frame_done", index=index, path=path, seconds=0.01, loss=1.5, evaluations=3, warm=index > 1,
         shot=0, done=done, total=total, status="ok")


def interrupted(*_):
    emit(event="done", status="interrupted", output=out)
    sys.exit(130)


if mode == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGINT, interrupted)

total = len(FRAMES)
print("I0000 00:00:1764028800.000000    1 cpu_feature_guard.cc:210] library chatter on stdout", flush=True)
emit(event="start", schema=1, source="clip.avi", kind="video", output=out, manifest=os.path.join(out, "nst_manifest.json"),
     fps=10.0, width=64, height=48, source_frames=40, frames=FRAMES, total=total, resumed=0, settings_hash="x", step=1)
if mode == "ok":
    for done, i in enumerate(FRAMES, 1):
        frame(i, done, total)
        print('{"half": "a line cut in', flush=True)
        print("[1, 2, 3]", flush=True)
        print('{"no_event_key": 1}', flush=True)
        print(json.dumps({"event": "frame_done", "index": "x", "done": "?"}), flush=True)  # odd values
        print(json.dumps({"event": "brand_new_kind", "index": 1}), flush=True)
    emit(event="done", status="ok", written=total, resumed=0, total=total, unreadable=[], seconds=0.1, output=out,
         encoded=None, cuts=[])
elif mode == "slow":
    for done, i in enumerate(FRAMES, 1):
        time.sleep(0.5)
        frame(i, done, total)
    emit(event="done", status="ok", written=total, resumed=0, total=total, output=out)
elif mode == "busy":  # optimising its first frame, forever
    emit(event="frame_progress", index=FRAMES[0], step=5, total=10, loss=10.0)
    while True:
        time.sleep(0.05)
elif mode in ("hang", "stubborn"):
    frame(FRAMES[0], 1, total)
    while True:
        time.sleep(0.05)
elif mode == "crash":
    frame(FRAMES[0], 1, total)
    sys.stderr.write("Traceback (most recent call last):\n  File \"engine.py\", line 1, in <module>\n"
                     "RuntimeError: out of memory while stylizing frame 2\n")
    sys.exit(1)
elif mode == "error":
    message = "output folder '/x' holds frames made with other settings (size 32 -> 48)"
    emit(event="error", message=message, code=2)
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)
