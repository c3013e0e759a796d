"""The ``nst`` command (typer). User errors end in one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings
from pathlib import Path
from typing import List, Optional

import typer

from . import __version__
from .errors import NstError, UserError

app = typer.Typer(
    name="nst",
    help="Neural style transfer for images and video (Gatys et al.), extensible with plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _error(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors(command):
    """Turn the errors a user can fix into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NstError as exc:
            _error(str(exc), getattr(exc, "exit_code", 1))
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130)

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None):
    typer.echo(f"warning: {message}", err=True)


def _version(value: bool):
    if value:
        typer.echo(f"nst-plugin {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version.")):
    """Neural style transfer for images and video."""


class ProgressBar:
    """A rich progress bar fed by the engine's progress events: step, loss, elapsed and time left."""

    def __init__(self, description: str, enabled: bool = True):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            console=Console(stderr=True), disable=not enabled, transient=False,
        )
        self.description = description
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, event: dict) -> None:
        if event.get("event") != "iteration":
            return
        if self.task is None:
            self.task = self.progress.add_task(self.description, total=event["total"], loss="-")
        self.progress.update(self.task, completed=event["step"], total=event["total"], loss=f"{event['loss']:.4g}")

    def finish(self) -> None:
        if self.task is not None:
            total = self.progress.tasks[0].total
            self.progress.update(self.task, completed=total)


def _floats(text: Optional[str], what: str):  # noqa: D103
    from .config import parse_floats

    return parse_floats(text, what) if text is not None else None


# -- options shared by every stylizing command --------------------------------------------------------------

STYLE_OPTIONS = [
    ("preset", str, typer.Option("default", help="default (quality per second) or seed (the article's exact method).")),
    ("size", Optional[int], typer.Option(None, help="Longer side of the result in pixels (default preset: 384; seed: 224).")),
    ("square", Optional[bool], typer.Option(None, "--square/--keep-aspect", help="Squash to size x size, as the article.")),
    ("style_blend", Optional[str], typer.Option(None, help="Blend weights of the styles, e.g. 0.7,0.3.")),
    ("preserve_color", bool, typer.Option(False, "--preserve-color", help="Transfer luminance only; keep the content's colours.")),
    ("style_scale", Optional[float], typer.Option(None, help="Size of the style image relative to --size.")),
    ("weights", Optional[str], typer.Option(None, help="Backbone weights: auto, imagenet, hed, or a weights file.")),
    ("backbone", Optional[str], typer.Option(None, help="Backbone plugin name (see nst plugins).")),
    ("pooling", Optional[str], typer.Option(None, help="max or avg (the article uses avg).")),
    ("content_layer", Optional[str], typer.Option(None, help="Layer of the content loss.")),
    ("style_layers", Optional[str], typer.Option(None, help="Comma-separated layers of the style loss.")),
    ("style_layer_weights", Optional[str], typer.Option(None, help="Comma-separated weights, one per style layer.")),
    ("content_weight", Optional[float], typer.Option(None, help="Weight of the content loss.")),
    ("style_weight", Optional[float], typer.Option(None, help="Weight of the style loss.")),
    ("strength", Optional[float], typer.Option(None, help="0 (barely styled) .. 1 (all style); default 0.5. --content-weight/--style-weight override it.")),
    ("tv_weight", Optional[float], typer.Option(None, help="Weight of the total-variation loss.")),
    ("loss", List[str], typer.Option([], "--loss", help="Extra loss NAME or NAME=WEIGHT from a plugin; repeatable.")),
    ("optimizer", Optional[str], typer.Option(None, help="lbfgs, adam, or a plugin's optimizer.")),
    ("iterations", Optional[int], typer.Option(None, help="Optimizer iterations per round.")),
    ("rounds", Optional[int], typer.Option(None, help="Optimizer restarts (the article: 30).")),
    ("max_evals", Optional[int], typer.Option(None, help="Loss evaluations per round (the article's maxfun).")),
    ("tolerance", Optional[float], typer.Option(None, help="Stop when the relative loss change falls below this.")),
    ("learning_rate", Optional[float], typer.Option(None, help="Adam step size in pixel units (0..255).")),
    ("init", Optional[str], typer.Option(None, help="Start image: noise, content or an image path.")),
    ("seed", Optional[int], typer.Option(None, help="Random seed: makes a run reproducible.")),
]

VIDEO_OPTIONS = [
    ("temporal_weight", Optional[float], typer.Option(
        None, help="Weight of the temporal loss toward the warped previous output; 0 turns it off "
                   "(default preset: 0.5; seed: 0).")),
    ("warm_start", Optional[bool], typer.Option(
        None, "--warm-start/--cold-start", help="Start each frame from the previous stylized frame warped by optical "
                                                "flow (default preset: on; seed: off).")),
    ("warm_iterations", Optional[int], typer.Option(None, help="Iteration cap of a warm-started frame (40).")),
    ("warm_tolerance", Optional[float], typer.Option(None, help="Relative loss change that ends a warm-started frame (default: --tolerance).")),
    ("occluded_init", Optional[str], typer.Option(
        None, help="Warm start where the flow check fails: background (the previous frame moved by the dominant "
                   "motion, default), warped (moved by the flow anyway) or content (the content frame).")),
    ("cut_threshold", Optional[float], typer.Option(None, help="Shot-cut threshold (PySceneDetect content score, 27).")),
    ("coarse_to_fine", Optional[float], typer.Option(None, help="Cold frames: optimise at this fraction of --size first, e.g. 0.5.")),
]

DEFAULT_TEMPORAL_WEIGHT = 0.5


def _with_options(options, into: str):
    """Add typer options to a command; the command receives their values as one dict in ``into``."""

    def decorate(command):
        import inspect
        from typing import get_type_hints

        signature = inspect.signature(command)
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values() if p.name != into]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind)
                 for name, kind, option in options]
        names = [name for name, _, _ in options]

        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            values = {name: kwargs.pop(name) for name in names if name in kwargs}
            existing = kwargs.pop(into, None) or {}
            return command(*args, **{into: {**existing, **values}}, **kwargs)

        hints = {k: v for k, v in get_type_hints(command).items() if k != into}
        hints.update({name: kind for name, kind, _ in options})
        wrapper.__signature__ = signature.replace(parameters=own + added)
        wrapper.__annotations__ = hints
        return wrapper

    return decorate


style_options = _with_options(STYLE_OPTIONS, "style_settings")
video_options = _with_options(VIDEO_OPTIONS, "video_settings")


def build_settings(opts: dict) -> dict:
    """StyleConfig overrides from the shared style options (None: keep the preset's value)."""
    from .config import parse_loss_option

    loss_weights = {}
    for name, key in (("content", "content_weight"), ("style", "style_weight"), ("tv", "tv_weight")):
        if opts.get(key) is not None:
            loss_weights[name] = opts[key]
    for text in opts.get("loss") or []:
        name, value = parse_loss_option(text)
        loss_weights[name] = value
    style_layers = opts.get("style_layers")
    return dict(
        size=opts.get("size"), square=opts.get("square"), style_blend=_floats(opts.get("style_blend"), "--style-blend"),
        preserve_color=opts.get("preserve_color") or None, style_scale=opts.get("style_scale"), weights=opts.get("weights"),
        backbone=opts.get("backbone"), pooling=opts.get("pooling"), content_layer=opts.get("content_layer"),
        style_layers=tuple(s.strip() for s in style_layers.split(",") if s.strip()) if style_layers else None,
        style_layer_weights=_floats(opts.get("style_layer_weights"), "--style-layer-weights"),
        loss_weights=loss_weights or None, optimizer=opts.get("optimizer"), iterations=opts.get("iterations"),
        rounds=opts.get("rounds"), max_evaluations=opts.get("max_evals"), tolerance=opts.get("tolerance"),
        learning_rate=opts.get("learning_rate"), init=opts.get("init"), seed=opts.get("seed"),
        strength=opts.get("strength"),
    )


def prepare_run(style_paths, opts: dict, **more):
    """(config, styles) for the shared style options plus command-specific settings, validated."""
    from .api import prepare
    from .images import load_image

    styles = [load_image(path, "style image") for path in style_paths]
    settings = build_settings(opts)
    for key, value in more.items():
        if key == "loss_weights" and value:
            settings["loss_weights"] = {**(settings.get("loss_weights") or {}), **value}
        elif value is not None:
            settings[key] = value
    config, styles, _ = prepare(styles, opts.get("preset") or "default", **settings)
    return config, styles


@app.command()
@user_errors
@style_options
def image(
    content: Path = typer.Argument(..., help="Content image (PNG, JPEG, TIFF, 16-bit PNG, ...)."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several styles."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, ...)."),
    loss_plot: Optional[Path] = typer.Option(None, help="Write the loss curves to this PNG."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    style_settings: dict = None,
):
    """Stylize one image."""
    from .images import check_output_path, load_image
    from .report import plot_losses, write_metadata

    inputs = [content, *style]
    out = check_output_path(output, inputs, overwrite)
    if loss_plot is not None:
        check_output_path(loss_plot, inputs, overwrite)
    content_rgb = load_image(content, "content image")
    config, styles = prepare_run(style, style_settings)
    from .api import stylize_frame

    with ProgressBar(content.name, enabled=not quiet) as bar:
        result = stylize_frame(content_rgb, styles, config=config, progress=bar)
        bar.finish()
    from .images import save_image

    save_image(out, result.image)
    meta = write_metadata(out, config, result.stats, {"content": str(content), "styles": [str(s) for s in style]})
    if loss_plot is not None:
        plot_losses(result.stats.get("history", []), loss_plot, title=f"{content.name}: loss per term (weighted)")
    stats = result.stats
    weights_note = " (fallback weights: hed)" if stats.get("backbone_weights", {}).get("fallback") else ""
    typer.echo(
        f"wrote {out} ({result.image.shape[1]}x{result.image.shape[0]}, {stats.get('evaluations', '?')} evaluations, "
        f"{stats.get('seconds', 0):.1f} s, loss {stats.get('loss', float('nan')):.4g}){weights_note}; settings in {meta}"
    )
    if stats.get("status") == "nan":
        _error(f"{stats.get('message') or 'the loss turned NaN'}; lower the weights or the learning rate", 4)


def video_config(style_paths, style_settings: dict, video_settings: dict):
    """Config for a video run: the style options plus the temporal ones. Without --temporal-weight the
    temporal loss is on for presets that warm-start (default) and off for the others (seed)."""
    from .config import make_config

    warm_start = video_settings.get("warm_start")
    if warm_start is None:
        warm_start = make_config(style_settings.get("preset") or "default").warm_start
    temporal = video_settings.get("temporal_weight")
    if temporal is None:
        temporal = DEFAULT_TEMPORAL_WEIGHT if warm_start else 0.0
    return prepare_run(
        style_paths, style_settings, loss_weights={"temporal": temporal}, warm_start=warm_start,
        warm_iterations=video_settings.get("warm_iterations"), warm_tolerance=video_settings.get("warm_tolerance"),
        cut_threshold=video_settings.get("cut_threshold"), occluded_init=video_settings.get("occluded_init"),
        coarse_to_fine=video_settings.get("coarse_to_fine"),
    )


class VideoProgress:
    """Human progress for a video job on stderr: a frames bar with ETA and the current frame's iterations."""

    def __init__(self, enabled: bool):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=self.console,
            disable=not enabled, transient=False,
        )
        self.enabled = enabled
        self.frames = None
        self.frame = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "start":
            total = event.get("total")
            self.frames = self.progress.add_task("frames", total=total, completed=event.get("resumed", 0),
                                                 note=f"{event.get('resumed', 0)} resumed" if event.get("resumed") else "")
        elif kind == "frame_done" and self.frames is not None:
            self.progress.update(self.frames, completed=event["done"],
                                 note=f"frame {event['index']}: {event['seconds']:.1f} s, loss {event['loss'] or float('nan'):.4g}")
        elif kind in ("warning", "cut"):
            message = event.get("message") or f"shot cut at frame {event.get('index')}: the new shot starts fresh"
            if self.enabled:
                self.progress.console.print(f"warning: {message}" if kind == "warning" else message)
            else:
                typer.echo(f"warning: {message}" if kind == "warning" else message, err=True)

    def iteration(self, event: dict) -> None:
        if event.get("event") != "iteration":
            return
        if self.frame is None:
            self.frame = self.progress.add_task("frame", total=event["total"], note="")
        self.progress.update(self.frame, completed=event["step"], total=event["total"],
                             description=f"frame {event.get('frame')}", note=f"loss {event['loss']:.4g}")


class JsonlProgress:
    """``--progress jsonl``: one JSON object per line on stdout, flushed (schema: docs/events.md)."""

    def __init__(self):
        self.last_tick = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def event(self, event: dict) -> None:
        import time

        event = dict(event, time=round(time.time(), 3))
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        sys.stdout.flush()

    def iteration(self, event: dict) -> None:
        import time

        if event.get("event") != "iteration":
            return
        now = time.monotonic()
        if now - self.last_tick >= 1.0:
            self.last_tick = now
            self.event({"event": "frame_progress", "index": event.get("frame"), "step": event["step"],
                        "total": event["total"], "loss": event["loss"]})


@app.command()
@user_errors
@style_options
@video_options
def video(
    source: str = typer.Argument(..., help="Video file, image folder, glob ('shots/*.png'), '####' pattern "
                                           "('renders/####.png') or camera index."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several styles."),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: frame_NNNNNN.png files and nst_manifest.json."),
    frames: Optional[str] = typer.Option(None, help="Frame range A-B, A- or N (a video's frames count from 1)."),
    step: int = typer.Option(1, help="Take every STEP-th frame of the range."),
    fps: Optional[float] = typer.Option(None, help="Frame rate of an image sequence (24); a video keeps its own."),
    encode: Optional[Path] = typer.Option(None, help="Also encode the frames to this video (.mp4), at the source fps, "
                                                     "with the source's audio."),
    progress: str = typer.Option("bar", help="bar (human, on stderr), jsonl (one JSON event per line on stdout) or none."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace frames made with other settings in OUTPUT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (same as --progress none)."),
    style_settings: dict = None,
    video_settings: dict = None,
):
    """Stylize a video or an image sequence, temporally coherent; re-run the same command to resume."""
    if progress not in ("bar", "jsonl", "none"):
        raise UserError(f"--progress must be bar, jsonl or none, got {progress!r}")
    reporter = JsonlProgress() if progress == "jsonl" else VideoProgress(enabled=progress == "bar" and not quiet)
    try:
        _run_video(reporter, source, style, output, frames, step, fps, encode, overwrite, style_settings, video_settings)
    except NstError as exc:
        if progress == "jsonl":
            reporter.event({"event": "error", "message": str(exc), "code": getattr(exc, "exit_code", 1)})
        raise
    except KeyboardInterrupt:
        if progress == "jsonl":
            reporter.event({"event": "done", "status": "interrupted", "output": str(output)})
        raise


def _run_video(reporter, source, style, output, frames, step, fps, encode, overwrite, style_settings, video_settings):
    from .video import check_encode_path, open_source, stylize_video

    for path in style:
        if not Path(path).expanduser().is_file():
            raise UserError(f"style image {str(path)!r} does not exist")
    if encode is not None:
        encode = check_encode_path(encode)
        if encode.exists() and not overwrite and not _same_run(output, encode):
            raise UserError(f"--encode {str(encode)!r} already exists: choose another path or add --overwrite")
    frame_source = open_source(source, frames=frames, step=step, fps=fps, on_warning=reporter.event)
    config, styles = video_config(style, style_settings, video_settings)
    with reporter:
        job = stylize_video(frame_source, styles, config, output, overwrite=overwrite, encode=encode,
                            emit=reporter.event, progress=reporter.iteration)
    if isinstance(reporter, VideoProgress):
        written = len(job.written)
        resumed = len(job.output.frames) - written
        note = f" ({resumed} already there)" if resumed > 0 else ""
        typer.echo(f"wrote {written} frames to {job.output.path}{note}; manifest {job.output.manifest_path}"
                   + (f"; video {job.encoded['path']}" if job.encoded else ""))
    if frame_source.unreadable:
        listed = ", ".join(str(i) for i in frame_source.unreadable[:10])
        raise UserError(f"{len(frame_source.unreadable)} frame(s) of {source!r} could not be read and were skipped "
                        f"(frame {listed}); the other frames are in {job.output.path}")


def _same_run(output: Path, encode: Path) -> bool:
    """An encoded video from an earlier run into the same output folder may be replaced."""
    manifest = Path(output).expanduser() / "nst_manifest.json"
    return manifest.exists()


@app.command()
@user_errors
@style_options
@video_options
def webcam(
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several styles."),
    camera: str = typer.Option("0", help="Camera index, or a video file to use as a stand-in camera."),
    max_frames: Optional[int] = typer.Option(None, help="Stop after this many frames."),
    window: bool = typer.Option(True, "--window/--no-window", help="Show the live window (q or Esc quits)."),
    style_settings: dict = None,
    video_settings: dict = None,
):
    """Live preview: stylize a camera's frames, each warm-started from the previous one; honest fps shown."""
    from .webcam import open_capture, run_webcam

    for path in style:
        if not Path(path).expanduser().is_file():
            raise UserError(f"style image {str(path)!r} does not exist")
    if style_settings.get("size") is None:
        style_settings = dict(style_settings, size=160)
    config, styles = video_config(style, style_settings, video_settings)
    capture = open_capture(camera)

    def report(event):
        typer.echo(f"frame {event['index']}: {event['seconds']:.2f} s, {event['fps']:.2f} fps"
                   + (" (warm start)" if event["warm"] else ""), err=True)

    summary = run_webcam(capture, styles, config, show=window, max_frames=max_frames, report=report)
    typer.echo(f"{summary['frames']} frames in {summary['seconds']:.1f} s: {summary['fps']:.2f} fps overall "
               f"(size {config.size}, set-up included)")


@app.command()
@user_errors
def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """List installed plugins, what each registers, and plugins that failed to load."""
    from .plugins import FAILURES, get_registry, plugin_info
    from .registry import SINGULAR

    rows = plugin_info()
    registry = get_registry()
    failures = [{"name": f.name, "stage": f.stage, "error": f.error} for f in FAILURES]
    if as_json:
        data = {
            "version": __version__,
            "plugins": rows,
            "losses": {n: e.as_dict() for n, e in registry.losses.items()},
            "optimizers": {n: e.as_dict() for n, e in registry.optimizers.items()},
            "backbones": {n: e.as_dict() for n, e in registry.backbones.items()},
            "presets": sorted(__import__("nst_plugin.config", fromlist=["PRESETS"]).PRESETS),
            "failures": failures,
        }
        typer.echo(json.dumps(data, indent=2))
        return
    for row in rows:
        origin = "built-in" if row["builtin"] else f"{row['distribution'] or '?'} {row['version'] or ''}".strip()
        typer.echo(f"{row['name']}  [{origin}]")
        for kind, names in row["registers"].items():
            for name in names:
                entry = getattr(registry, kind)[name]
                typer.echo(f"    {SINGULAR[kind]:<9} {name:<12} {entry.description}")
        work = [h for h in row["hooks"] if not h.startswith("nst_register_")]
        if work:
            typer.echo(f"    hooks     {', '.join(work)}")
    for failure in failures:
        typer.echo(f"FAILED {failure['name']} at {failure['stage']}: {failure['error']}")


def main() -> None:
    """Entry point of the ``nst`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.showwarning = _show_warning
    try:
        app()
    except NstError as exc:  # raised outside a command, e.g. while loading plugins in strict mode
        typer.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
