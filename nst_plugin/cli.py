"""The ``nst`` command (typer). User errors end in one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import List, Optional

import click
import typer

from . import __version__
from .config import (HELP_PANELS, PANEL_COHERENCE, PANEL_ENGINE, PANEL_IO, PANEL_LOOK, PANEL_MODEL,
                     PANEL_SCALE_OUT)
from .errors import NstError, Terminated, UserError, storage_error
from .validation import check_memory

app = typer.Typer(
    name="nst",
    help="Neural style transfer for images and video (Gatys et al.), extensible with plugins.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _Command(typer.core.TyperCommand):
    """A stylizing command: its ``--help`` option is listed in the first panel ("Input and output"), not in a
    panel of its own above it."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.rich_help_panel = PANEL_IO
        return option


def _error(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _click_error(exc: BaseException, kind: str = "ClickException") -> bool:
    """``exc`` is click's ``kind`` (ClickException, UsageError): click's own or the copy typer ships inside
    (``typer._click``, typer >= 0.23), which the ``click`` package's classes do not match."""
    return any(cls.__name__ == kind and "click" in cls.__module__ for cls in type(exc).__mro__)


def user_errors(command):
    """Turn the errors a user can fix into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except NstError as exc:
            _error(str(exc), getattr(exc, "exit_code", 1))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Terminated): the same clean-up on the way here
            from .failures import EXIT_INTERRUPTED, EXIT_TERMINATED

            terminated = isinstance(exc, Terminated)
            typer.echo("terminated" if terminated else "interrupted", err=True)
            raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
        except (typer.Exit, typer.Abort, click.exceptions.ClickException):
            raise
        except BrokenPipeError:  # `nst plugins | head`: the reader has gone; nothing to say, as other tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141)
        except Exception as exc:  # a bug: one line and exit 1; the traceback with NST_DEBUG=1 (or strict plugins)
            if _click_error(exc):  # a usage error raised by typer's own copy of click: typer shows it
                raise
            storage = storage_error(exc)
            if storage is not None:  # a full disk, a read-only or immutable folder: the user's to fix (exit 2)
                _error(str(storage), storage.exit_code)
            from .failures import debug, internal_message
            from .plugins import strict

            if debug() or strict():
                raise
            _error(internal_message(exc), 1)

    return wrapper


def _show_warning(message, category, filename, lineno, file=None, line=None):
    typer.echo(f"warning: {message}", err=True)


def _version(value: bool):
    if value:
        from .backends import describe

        try:
            runtime = describe()
        except NstError as exc:
            _error(str(exc), getattr(exc, "exit_code", 1))
        typer.echo(f"nst-plugin {__version__}; Keras {runtime['keras']} on {runtime['backend']} "
                   f"{runtime['version']}, device {runtime['device']}")
        raise typer.Exit()


def _backend(name: Optional[str]):
    if name is not None:
        from .backends import use_backend

        try:
            use_backend(name)
        except NstError as exc:
            _error(str(exc), getattr(exc, "exit_code", 1))
    return name


@app.callback()
def _root(
    backend: Optional[str] = typer.Option(
        None, "--backend", callback=_backend, is_eager=True, metavar="NAME",
        help="Keras backend: tensorflow (default), jax or torch; the same as KERAS_BACKEND=NAME."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version, the Keras backend and the device it computes on."),
):
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

    def __call__(self, event) -> None:
        from .events import FrameProgress

        if not isinstance(event, FrameProgress):
            return
        if self.task is None:
            self.task = self.progress.add_task(self.description, total=event.total, loss="-")
        self.progress.update(self.task, completed=event.step, total=event.total, loss=f"{event.loss:.4g}")

    def finish(self) -> None:
        if self.task is not None:
            total = self.progress.tasks[0].total
            self.progress.update(self.task, completed=total)


# -- options shared by every stylizing command: generated from StyleConfig's fields (one vocabulary) -------

LOSS_WEIGHT_OPTIONS = {  # the built-in losses get an option each; any loss: --loss NAME=WEIGHT
    "content": "Weight of the content loss.",
    "style": "Weight of the style loss.",
    "tv": "Weight of the total-variation loss.",
}
VIDEO_LOSS_WEIGHT_OPTIONS = {
    "temporal": "Weight of the temporal loss toward the warped previous output; 0 turns it off "
                "(default preset: 0.5; seed: 0).",
}


def _field_option(field) -> tuple[str, object, object]:
    """(name, annotation, typer.Option) of one StyleConfig field: None means "not given". Only typer's
    annotation is chosen here: a list is comma-separated text, and every value is typed by the settings
    vocabulary (:func:`nst_plugin.settings.overrides_from_settings`), as a ``--settings`` file's."""
    from .settings import setting_type

    meta = field.metadata
    kind = setting_type(field.name)
    flags = tuple(meta.get("flags") or ()) or (f"--{field.name.replace('_', '-')}",)
    if kind == "bool":
        if "/" not in flags[0]:
            flags = (f"{flags[0]}/--no-{flags[0][2:]}",)
        annotation = Optional[bool]
    elif kind in ("floats", "ints", "strs", "str"):
        annotation = Optional[str]
    elif kind == "int":
        annotation = Optional[int]
    else:
        annotation = Optional[float]
    return field.name, annotation, typer.Option(None, *flags, help=meta.get("help", ""),
                                                     rich_help_panel=meta.get("panel"))


def _weight_options(losses: dict, panel: str) -> list:
    return [(f"{name}_weight", Optional[float], typer.Option(None, help=text, rich_help_panel=panel))
            for name, text in losses.items()]


def _engine_flag_options() -> list:
    """The typer options of the installed engines' options that have a flag (``--keyframe-size``): text, typed
    by the option's declaration when the run's options are checked, like ``--option NAME.KEY=VALUE``."""
    from .plugins import PluginHost

    try:  # a host of its own, quiet: the run's host loads the plugins again and reports a broken one
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flagged = PluginHost().registry.flagged_options()
    except NstError:
        return []
    found = []
    for alias, (entry, option) in sorted(flagged.items()):
        label = (entry.traits.label if entry.traits else "") or entry.name
        text = f"{label} engine: {option.help[:1].lower()}{option.help[1:]}"
        kind = getattr(option.type, "__name__", "")
        metavar = f"<{kind if kind in ('int', 'float') else 'str'}>"
        if option.type is bool:
            flags, default, annotation = (f"{option.flag}/--no-{option.flag[2:]}",), None, Optional[bool]
        else:
            flags, default, annotation = (option.flag,), None, Optional[str]
        if option.repeat:
            text, default, annotation = f"{text} Repeatable.", [], List[str]
        found.append((alias, annotation, typer.Option(default, *flags, help=text, metavar=None if option.type is bool
                                                      else metavar, rich_help_panel=PANEL_ENGINE)))
    return found


def _generated_options(video: bool) -> list:
    from dataclasses import fields

    from .config import StyleConfig

    options = [_field_option(f) for f in fields(StyleConfig)
               if "help" in f.metadata and f.metadata.get("video") == video and f.name not in ("loss_weights", "options")]
    if video:
        return options + _engine_flag_options() + _weight_options(VIDEO_LOSS_WEIGHT_OPTIONS, PANEL_COHERENCE)
    return options + _weight_options(LOSS_WEIGHT_OPTIONS, PANEL_MODEL) + [
        ("loss", List[str], typer.Option([], "--loss", help="Extra loss NAME or NAME=WEIGHT from a plugin; repeatable.",
                                         rich_help_panel=PANEL_MODEL)),
        ("option", List[str], typer.Option([], "--option", help="Plugin option NAME.KEY=VALUE (see nst plugins); "
                                           "repeatable.", rich_help_panel=PANEL_ENGINE)),
        ("settings", Optional[Path], typer.Option(None, "--settings", help="JSON file of settings (the option names "
                                                  "with _ for -, e.g. {\"size\": 256}); options given here win.",
                                                  rich_help_panel=PANEL_IO)),
    ]


STYLE_OPTIONS = _generated_options(video=False)
VIDEO_OPTIONS = _generated_options(video=True)


def _panel_order(parameter) -> int:
    """Where a command parameter's --help panel comes (HELP_PANELS' order; arguments and others first): typer
    shows the panels in the order their first option comes."""
    panel = getattr(parameter.default, "rich_help_panel", None)
    return HELP_PANELS.index(panel) if panel in HELP_PANELS else -1


def _with_options(options, into: str):
    """Add typer options to a command; the command receives their values as one dict in ``into``. The
    parameters are ordered by their --help panel (:func:`_panel_order`)."""

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
        wrapper.__signature__ = signature.replace(parameters=sorted(own + added, key=_panel_order))
        wrapper.__annotations__ = hints
        return wrapper

    return decorate


style_options = _with_options(STYLE_OPTIONS, "style_settings")
video_options = _with_options(VIDEO_OPTIONS, "video_settings")


def flat_settings(*option_values: dict) -> dict:
    """The settings a command was given: its ``--settings`` file, then the options on the command line (which
    win). Names as in :class:`~nst_plugin.config.StyleConfig`; ``None`` and empty lists mean "not given"."""
    from .settings import load_settings_file

    merged = {k: v for values in option_values for k, v in values.items()}
    file = merged.pop("settings", None)
    flat = load_settings_file(file) if file is not None else {}
    flat.update({k: v for k, v in merged.items() if v is not None and v != []})
    return flat


def prepare_run(style_paths, flat: dict):
    """(config, styles) for a command's flat settings, validated against the installed plugins."""
    from .api import prepare
    from .images import load_image
    from .settings import overrides_from_settings

    styles = [load_image(path, "style image") for path in style_paths]
    preset, overrides = overrides_from_settings(flat)
    config, styles, _ = prepare(styles, preset or "default", **overrides)
    return config, styles


@app.command(cls=_Command)
@user_errors
@style_options
def image(
    content: Path = typer.Argument(..., help="Content image (PNG, JPEG, TIFF, 16-bit PNG, ...)."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several styles.", rich_help_panel=PANEL_IO),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, ...).", rich_help_panel=PANEL_IO),
    loss_plot: Optional[Path] = typer.Option(None, help="Write the loss curves to this PNG.", rich_help_panel=PANEL_IO),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file.", rich_help_panel=PANEL_IO),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar.", rich_help_panel=PANEL_IO),
    style_mask: List[str] = typer.Option([], "--style-mask", metavar="N=IMAGE", help="Style N (1: the first "
                                         "--style) only where IMAGE is white (Gatys et al. 2017 spatial control); "
                                         "a style without a mask gets what no mask covers. Repeatable.",
                                         rich_help_panel=PANEL_LOOK),
    mask: Optional[Path] = typer.Option(None, "--mask", help="Where the style goes: an image (white: styled, black: "
                                        "the content, grey: in between).", rich_help_panel=PANEL_LOOK),
    style_settings: dict = None,
):
    """Stylize one image."""
    from .images import load_image
    from .masks import image_mask
    from .report import plot_losses, write_metadata
    from .safety import image_plan
    from .style_masks import from_user, parse_specs, settings_specs

    flat = flat_settings(style_settings)
    mask = mask if mask is not None else flat.pop("mask", None)  # the option wins over a --settings file's
    mask_paths = parse_specs(settings_specs(style_mask, flat.pop("style_masks", None)), len(style))
    plan = image_plan(content, style, output, loss_plot, flat.get("init"), overwrite, style_settings.get("settings"))
    for path in mask_paths.values():
        plan.read(path, "--style-mask image")
    plan.read(mask, "--mask image")
    plan.check()
    out = output.expanduser()
    content_rgb = load_image(content, "content image")
    masks = from_user(mask_paths, len(style), content_rgb.shape[:2])
    where = image_mask(mask, content_rgb.shape[:2]) if mask is not None else None  # a bad mask: before any work
    config, styles = prepare_run(style, flat)
    config = config.for_image()
    check_memory(config, *content_rgb.shape[:2], "content image", image=True)  # --size 0: the content's own size
    from .api import stylize_frame
    from .images import save_image
    from .locking import FileLock

    with FileLock(out, f"output {str(output)!r}"):  # one run writes this picture at a time
        plan.check()  # again, under the lock: a run that finished meanwhile made the file exist
        with ProgressBar(content.name, enabled=not quiet) as bar:
            result = stylize_frame(content_rgb, styles, config=config, on_event=bar, style_masks=masks, mask=where)
            bar.finish()
        save_image(out, result.image)
        inputs = {"content": str(content), "styles": [str(s) for s in style]}
        if mask_paths:
            inputs["style_masks"] = {str(i + 1): str(p) for i, p in sorted(mask_paths.items())}
        if mask is not None:
            inputs["mask"] = str(mask)
        meta = write_metadata(out, config, result.stats, inputs)
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


@app.command(cls=_Command)
@user_errors
@style_options
def grid(
    content: Path = typer.Argument(..., help="Content image."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several styles (one row each).", rich_help_panel=PANEL_IO),
    output: Path = typer.Option(..., "--output", "-o", help="The contact sheet (.png, .jpg, ...).", rich_help_panel=PANEL_IO),
    strengths: str = typer.Option("0.25,0.5,0.75,1", help="Comma-separated strengths, one column each (0..1).", rich_help_panel=PANEL_LOOK),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing sheet made by nst.", rich_help_panel=PANEL_IO),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines.", rich_help_panel=PANEL_IO),
    style_settings: dict = None,
):
    """Stylize one image with every style at several strengths: a labelled sheet to choose the balance by eye."""
    from .api import prepare, stylize_frame
    from .grid import make_grid, parse_strengths
    from .images import load_image, save_image
    from .report import write_metadata
    from .safety import image_plan
    from .settings import overrides_from_settings

    flat = flat_settings(style_settings)
    flat.setdefault("size", 256)  # a sheet of small pictures: about ten seconds a cell on two cores
    if flat.get("content_weight") is not None or flat.get("style_weight") is not None or flat.get("strength") is not None:
        raise UserError("nst grid varies the strength: leave out --strength, --content-weight and --style-weight")
    plan = image_plan(content, style, output, None, flat.get("init"), overwrite, style_settings.get("settings"))
    plan.check()
    columns = parse_strengths(strengths)
    content_rgb = load_image(content, "content image")
    rows = [(Path(path).stem, load_image(path, "style image")) for path in style]
    preset, overrides = overrides_from_settings(flat)
    configs = {s: prepare(rows[0][1], preset or "default", **overrides, strength=s)[0].for_image() for s in columns}
    check_memory(configs[columns[0]], *content_rgb.shape[:2], "content image", image=True)  # --size 0 included
    seconds = []

    def stylize(content_image, style_image, strength):
        result = stylize_frame(content_image, style_image, config=configs[strength])
        seconds.append(round(float(result.stats.get("seconds", 0.0)), 2))
        return result.image

    def progress(done, total):
        if not quiet:
            typer.echo(f"cell {done}/{total} ({seconds[-1]:.1f} s)", err=True)

    from .locking import FileLock

    out = output.expanduser()
    with FileLock(out, f"output {str(output)!r}"):  # one run writes this sheet at a time
        plan.check()  # again, under the lock
        sheet = make_grid(content_rgb, rows, columns, stylize, progress).image()
        save_image(out, sheet)
        middle = configs[columns[len(columns) // 2]]
        meta = write_metadata(out, middle, {"grid": {"styles": [str(p) for p in style], "strengths": list(columns),
                                                     "seconds": seconds}},
                              {"content": str(content), "styles": [str(p) for p in style]})
    typer.echo(f"wrote {out} ({len(rows)} styles x {len(columns)} strengths, {sum(seconds):.0f} s); settings in {meta}")


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
        self.tasks = {}

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def _task(self, name: str):
        """A bar made on first use (keyframes, training: the keyframe engine's stages)."""
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=None, note="")
        return self.tasks[name]

    def __call__(self, event) -> None:
        from . import events

        if isinstance(event, events.Start):
            self.frames = self.progress.add_task("frames", total=event.total, completed=event.resumed,
                                                 note=f"{event.resumed} resumed" if event.resumed else "")
        elif isinstance(event, events.FrameDone) and self.frames is not None:
            loss = f", loss {event.loss:.4g}" if event.loss is not None else ""
            self.progress.update(self.frames, completed=event.done, note=f"frame {event.index}: {event.seconds:.1f} s{loss}")
        elif isinstance(event, events.Keyframe):
            self.progress.update(self._task(f"{event.kind}s"), completed=event.done, total=event.total,
                                 note=f"frame {event.index} (shot {event.shot}): "
                                      + ("resumed" if event.resumed else f"{event.seconds:.0f} s"))
        elif isinstance(event, events.Training):
            task = self._task("training")
            loss = f", loss {event.loss:.4g}" if event.loss is not None else ""
            self.progress.update(task, completed=event.total if event.stopped else event.step, total=event.total,
                                 description=f"training shot {event.shot}",
                                 note=(f"{event.stopped} after {event.step} steps" if event.stopped else f"step {event.step}") + loss)
        elif isinstance(event, events.FrameProgress):
            if self.frame is None:
                self.frame = self.progress.add_task("frame", total=event.total, note="")
            self.progress.update(self.frame, completed=event.step, total=event.total,
                                 description=f"frame {event.index}", note=f"loss {event.loss:.4g}")
        elif isinstance(event, (events.Warning, events.Cut, events.Cluster)):
            if isinstance(event, events.Cluster):
                message = (f"dask cluster {event.address}: {event.workers} workers, {event.mode}"
                           + (f"; dashboard {event.dashboard}" if event.dashboard else ""))
            elif isinstance(event, events.Warning):
                message = f"warning: {event.message}"
            else:
                message = f"shot cut at frame {event.index}: the new shot starts fresh"
            if self.enabled:
                self.progress.console.print(message)
            else:
                typer.echo(message, err=True)


class JsonlProgress:
    """``--progress jsonl``: one JSON object per line on stdout, flushed (schema: docs/events.md); frame
    progress at most once a second."""

    def __init__(self):
        self.last_tick = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, event) -> None:
        import time

        from .events import FrameProgress, as_dict

        if isinstance(event, FrameProgress):
            now = time.monotonic()
            if now - self.last_tick < 1.0:
                return
            self.last_tick = now
        data = dict(as_dict(event), time=round(time.time(), 3))
        sys.stdout.write(json.dumps(data, default=str) + "\n")
        sys.stdout.flush()


@app.command(cls=_Command)
@user_errors
@style_options
@video_options
def video(
    source: str = typer.Argument(..., help="Video file, image folder, glob ('shots/*.png'), '####' pattern "
                                           "('renders/####.png') or camera index."),
    style: List[Path] = typer.Option([], "--style", "-s", help="Style image; repeat for several styles (none: "
                                     "an engine whose look comes from elsewhere, e.g. painted keyframes).",
                                     rich_help_panel=PANEL_IO),
    output: Path = typer.Option(..., "--output", "-o", help="Output folder: frame_NNNNNN.png files and nst_manifest.json.", rich_help_panel=PANEL_IO),
    frames: Optional[str] = typer.Option(None, help="Frame range A-B, A- or N (a video's frames count from 1).", rich_help_panel=PANEL_IO),
    step: int = typer.Option(1, help="Take every STEP-th frame of the range.", rich_help_panel=PANEL_IO),
    fps: Optional[float] = typer.Option(None, help="Frame rate of an image sequence (24); a video keeps its own.", rich_help_panel=PANEL_IO),
    encode: Optional[Path] = typer.Option(None, help="Also encode the frames to this video (.mp4), at the source fps, "
                                                     "with the source's audio.", rich_help_panel=PANEL_IO),
    progress: str = typer.Option("bar", help="bar (human, on stderr), jsonl (one JSON event per line on stdout) or none.", rich_help_panel=PANEL_IO),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace frames made with other settings in OUTPUT.", rich_help_panel=PANEL_IO),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (same as --progress none).", rich_help_panel=PANEL_IO),
    frame_settings: Optional[Path] = typer.Option(None, "--frame-settings", help="JSON file of per-frame values "
                                                  "(animated settings): {\"12\": {\"strength\": 0.3}}; keys strength, "
                                                  "style_weight, temporal_weight. A re-run re-makes the frames whose values changed.", rich_help_panel=PANEL_LOOK),
    mask: Optional[str] = typer.Option(None, "--mask", help="Where the style goes: a video, an image sequence or one "
                                       "image (white: styled, black: the source, grey: in between), one frame per "
                                       "frame. A re-run with another mask re-makes only the frames it changes.",
                                       rich_help_panel=PANEL_LOOK),
    style_mask: List[str] = typer.Option([], "--style-mask", metavar="N=SOURCE", help="Style N (1: the first "
                                         "--style) only where SOURCE is white: one image for every frame, or a "
                                         "video or an image sequence, one frame per frame; a style without a mask "
                                         "gets what no mask covers. Repeatable.",
                                         rich_help_panel=PANEL_LOOK),
    cluster: Optional[str] = typer.Option(None, help="Run the units (shots, keyframes, chunks of frames) on a dask "
                                                     "cluster: 'local' (a LocalCluster here) or a scheduler's address "
                                                     "(tcp://HOST:8786). Frames are shipped to and from the workers.", rich_help_panel=PANEL_SCALE_OUT),
    workers: Optional[int] = typer.Option(None, help="With --cluster local: worker processes (default: half the cores).", rich_help_panel=PANEL_SCALE_OUT),
    style_settings: dict = None,
    video_settings: dict = None,
):
    """Stylize a video or an image sequence, temporally coherent; re-run the same command to resume."""
    if progress not in ("bar", "jsonl", "none"):
        raise UserError(f"--progress must be bar, jsonl or none, got {progress!r}")
    from . import events
    from .cluster import parse_cluster

    reporter = JsonlProgress() if progress == "jsonl" else VideoProgress(enabled=progress == "bar" and not quiet)
    try:
        cluster = parse_cluster(cluster, workers)  # before any work: one line for a bad --cluster/--workers
        _run_video(reporter, source, style, output, frames, step, fps, encode, overwrite, style_settings, video_settings,
                   frame_settings, cluster, mask, style_mask=style_mask)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the finished frames and the manifest are kept
        if progress == "jsonl":
            reporter(events.Done(status="interrupted", output=str(output)))
        raise
    except (typer.Exit, typer.Abort, click.exceptions.ClickException):
        raise
    except Exception as exc:
        if _click_error(exc):
            raise
        # a full disk, a read-only or immutable folder mid-run: the user's (exit 2), the finished frames kept
        failure = storage_error(exc, resume=True) or (exc if isinstance(exc, NstError) else None)
        if progress == "jsonl":
            if failure is not None:
                reporter(events.Error(message=str(failure), code=getattr(failure, "exit_code", 1)))
            else:  # unexpected: an error event too (exit 1), so a tool can say what happened
                from .failures import internal_message

                reporter(events.Error(message=internal_message(exc), code=1))
        if failure is not None and failure is not exc:
            raise failure from exc
        raise


def _run_video(reporter, source, style, output, frames, step, fps, encode, overwrite, style_settings, video_settings,
               frame_settings=None, cluster=None, mask=None, style_mask=()):
    import contextlib

    from .masks import open_mask
    from .safety import video_plan
    from .schedule import check_engine, load_frame_schedule
    from .style_masks import parse_specs, settings_specs, video_style_masks
    from .video import open_source, stylize_video

    for path in style:
        if not Path(path).expanduser().is_file():
            raise UserError(f"style image {str(path)!r} does not exist")
    frame_source = open_source(source, frames=frames, step=step, fps=fps)
    flat = flat_settings(style_settings, video_settings)
    mask_paths = parse_specs(settings_specs(style_mask, flat.pop("style_masks", None)), len(style))
    schedule = load_frame_schedule(flat, frame_settings)
    mask = mask if mask is not None else flat.pop("mask", None)  # the option wins over a --settings file's
    mask = open_mask(mask, frame_source) if mask is not None else None  # checked before any work
    video_plan(frame_source, style, output, encode, flat.get("init"), overwrite, style_settings.get("settings"),
               mask.frames if mask is not None else None).check()
    encode = encode.expanduser() if encode is not None else None
    config, styles = prepare_run(style, flat)
    style_masks = video_style_masks(mask_paths, len(style), frame_source, config.engine)
    check_memory(config, frame_source.height, frame_source.width)  # --size 0: the source's own size, known now
    check_engine(schedule, config.engine)  # before a cluster is reached
    from .cluster import connect

    connection = connect(cluster) if cluster is not None else None  # reached and checked before any write
    with reporter, (connection or contextlib.nullcontext()):
        job = stylize_video(frame_source, styles, config, output, overwrite=overwrite, encode=encode,
                            on_event=reporter, schedule=schedule, cluster=connection, mask=mask,
                            style_masks=style_masks)
    if isinstance(reporter, VideoProgress):
        written = len(job.written)
        resumed = len(job.output.finished_paths()) - written  # finished before: not the frames marked unreadable
        note = f" ({resumed} already there)" if resumed > 0 else ""
        typer.echo(f"wrote {written} frames to {job.output.path}{note}; manifest {job.output.manifest_path}"
                   + (f"; video {job.encoded['path']}" if job.encoded else ""))
    if frame_source.unreadable:
        from .video.sources import ranges_text

        unreadable, plural = sorted(set(frame_source.unreadable)), len(set(frame_source.unreadable)) > 1
        where = (f"the other frames are in {job.output.path}" if job.output.finished_paths()
                 else f"no frame was written (output folder {job.output.path})")
        raise UserError(f"{len(unreadable)} frame{'s' * plural} of {source!r} could not be read and "
                        f"{'were' if plural else 'was'} skipped (frame{'s' * plural} {ranges_text(unreadable)}); {where}")


@app.command(cls=_Command)
@user_errors
@style_options
@video_options
def webcam(
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several styles (keys 1-9 "
                                     "switch between them live).", rich_help_panel=PANEL_IO),
    camera: str = typer.Option("0", help="Camera index, or a video file to use as a stand-in camera (paced at its "
                               "own frame rate).", rich_help_panel=PANEL_IO),
    max_frames: Optional[int] = typer.Option(None, help="Stop after this many frames.", rich_help_panel=PANEL_IO),
    window: bool = typer.Option(True, "--window/--no-window", help="Show the live window (q or Esc quits).", rich_help_panel=PANEL_IO),
    record: Optional[Path] = typer.Option(None, "--record", help="Write what is shown to this video (.mp4, .mkv, "
                                          ".mov, .avi), each frame at the time it was shown.", rich_help_panel=PANEL_IO),
    style_settings: dict = None,
    video_settings: dict = None,
):
    """Live: a camera stylized in real time. Each style shows its palette at once, then a small network that
    learns a keyframe of it (shown while it trains, kept in the cache folder for the next run), every frame
    filtered along the optical flow; keys 1-9 switch styles. --engine lbfgs: every frame optimised, each
    warm-started from the one before. The fps shown is honest."""
    from .live.capture import open_camera

    for path in style:
        if not Path(path).expanduser().is_file():
            raise UserError(f"style image {str(path)!r} does not exist")
    flat, live = _webcam_settings(len(style), flat_settings(style_settings, video_settings))
    if record is not None:
        from .live.record import check_record_path

        record = check_record_path(record)
    from .live.display import Offscreen, Window

    screen = Window() if window else Offscreen()  # (no display: one error line now)
    config, styles = prepare_run(style, flat)
    capture, fps = open_camera(camera)
    on_event = _WebcamEvents([Path(p).name for p in style] if live else [])
    if live:
        _run_live(capture, fps, style, styles, config, on_event, screen, max_frames, record)
    else:
        _run_frame_by_frame(capture, fps, styles, config, on_event, window, max_frames)


def _webcam_settings(styles: int, flat: dict) -> tuple[dict, bool]:
    """(the settings, whether it is the live mode): the live engine unless another is named, with the live
    defaults; another engine frame by frame, small unless a size is given."""
    from .live import session

    flat.setdefault("engine", session.ENGINE)  # the live path; --engine lbfgs (or a plugin's) frame by frame
    if flat["engine"] == session.ENGINE:
        if styles > 9:
            raise UserError(f"{styles} styles given: keys 1-9 switch between at most 9")
        return {**session.DEFAULTS, **flat}, True
    from .plugins import get_registry

    if get_registry().traits(flat["engine"]).output_size == "size":  # an engine at the source's size keeps the camera's
        flat.setdefault("size", 160)  # a live preview: small unless asked otherwise
    return flat, False


class _WebcamEvents:
    """The engine's keyframe and training events of ``nst webcam`` as lines on stderr (``names``: the live
    mode's styles, by number)."""

    def __init__(self, names: list[str]):
        self.names = names

    def _style(self, shot: int) -> str:
        return f" (style {shot + 1}: {self.names[shot]})" if shot < len(self.names) else ""

    def __call__(self, event) -> None:
        if event.kind == "keyframe":
            typer.echo(f"keyframe {event.index} stylized in {event.seconds:.0f} s; the network learns it"
                       + self._style(event.shot), err=True)
        elif event.kind == "training" and event.stopped == "resumed":
            name = self.names[event.shot] if event.shot < len(self.names) else ""
            typer.echo(f"style {event.shot + 1} ({name}): its network from the cache; live", err=True)
        elif event.kind == "training" and event.stopped:
            typer.echo(f"network trained: {event.step} steps in {event.seconds:.0f} s ({event.stopped}); live"
                       + self._style(event.shot), err=True)


def _run_frame_by_frame(capture, fps, styles, config, on_event, window: bool, max_frames) -> None:
    from .live.sequence import run_webcam

    def report(event):
        typer.echo(f"frame {event['index']}: {event['seconds']:.2f} s, {event['fps']:.2f} fps"
                   + (" (warm start)" if event["warm"] else ""), err=True)

    summary = run_webcam(capture, styles, config, show=window, max_frames=max_frames, report=report,
                         on_event=on_event, fps=fps)
    typer.echo(f"{summary['frames']} frames in {summary['seconds']:.1f} s: {summary['fps']:.2f} fps overall "
               f"(size {config.size or 'the camera’s'}, set-up included)")


class _LiveLines:
    """The live loop's reports as lines on stderr: one per stage change and about one a second, not one per
    frame; the last frame's line is kept for the end."""

    def __init__(self):
        self.stage, self.second, self.last = None, -1, None

    @staticmethod
    def line(event) -> str:
        return f"frame {event['index']}: {event['fps']:.1f} fps, {event['stage']}, style {event['style']}, lag {event['lag']}"

    def __call__(self, event) -> None:
        import time

        if event["event"] == "style":
            typer.echo(f"style {event['style']}: {event['name']}", err=True)
        elif event["event"] == "finishing":
            typer.echo(f"the camera ended: style {event['style']}'s network is learnt to the end for the cache", err=True)
        elif event["event"] == "frame":
            second, self.last = int(time.perf_counter()), event
            if event["stage"] != self.stage or second != self.second:
                self.stage, self.second = event["stage"], second
                typer.echo(self.line(event), err=True)


def _run_live(capture, fps, style, styles, config, on_event, screen, max_frames, record) -> None:
    from .live import session
    from .live.capture import LatestFrame
    from .plugins import get_host

    report = _LiveLines()
    run = session.run_live(LatestFrame(capture, fps).start(), [(Path(p).stem, image) for p, (image, _) in zip(style, styles)],
                           config, get_host().run_context(on_event), screen,
                           max_frames=max_frames, record=record, report=report)
    if report.last is not None:  # (lines written while TensorFlow loads on the learner's thread are lost)
        typer.echo(f"last {report.line(report.last)}", err=True)
    stages = ", ".join(f"style {n} {stage} after {seconds:.1f} s" for (n, stage), seconds in run.first_shown.items())
    typer.echo(f"{run.frames} frames in {run.seconds:.1f} s: {run.fps:.2f} fps overall (size {config.size}, "
               f"set-up included); {stages}")
    if run.recorded is not None:
        typer.echo(f"recorded {run.recorded['frames']} frames ({run.recorded['seconds']:.1f} s) to {run.recorded['path']}")


@app.command("preview-server", cls=_Command)
@user_errors
@style_options
@video_options
def preview_server(
    source: str = typer.Argument(..., help="Video file or image sequence (folder, glob, '####' pattern)."),
    style: Path = typer.Option(..., "--style", "-s", help="Style image.", rich_help_panel=PANEL_IO),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the answered frames (preview_NNNNNN.png).",
                                rich_help_panel=PANEL_IO),
    style_settings: dict = None,
    video_settings: dict = None,
):
    """For tools (the Blender add-on's Live Preview): reads {"frame": N} lines on stdin and answers each on
    stdout with that frame through the live mode's network (learnt from the first frame asked, or from the
    cache), as a PNG in OUTPUT; the newest of waiting requests wins; exits when stdin closes. See
    docs/blender.md."""
    from .live.preview import run_server

    run_server(source, style, output, flat_settings(style_settings, video_settings), prepare_run)


@app.command()
@user_errors
def compare(
    source: str = typer.Argument(..., help="The video file or image sequence that OUTPUT_FOLDER was made from."),
    output_folder: Path = typer.Argument(..., help="An output folder of `nst video` (it holds nst_manifest.json)."),
    picture: Path = typer.Option(..., "--output", "-o", help="The picture to write (.jpg, .png, ...)."),
    frames: Optional[str] = typer.Option(None, help="Done frames to show, e.g. 1,10,20 (default: first, middle, last)."),
    width: Optional[int] = typer.Option(None, help="Width of each frame in the picture (default: the source's, "
                                                   "at most 640)."),
):
    """Picture of source frames (top row) above the same stylized frames of an output folder."""
    from .compare import parse_frame_list, write_comparison

    shown = write_comparison(source, output_folder, picture, parse_frame_list(frames), width)
    typer.echo(f"comparison of frames {', '.join(map(str, shown))}: {picture}")


@app.command()
@user_errors
def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    """List installed plugins, what each registers, and plugins that failed to load."""
    from .config import PRESETS
    from .plugins import get_host
    from .registry import KINDS, SINGULAR

    host = get_host()
    rows = host.info()
    registry = host.registry
    failures = [{"name": f.name, "stage": f.stage, "error": f.error} for f in host.failures]
    from .backends import installed, requested

    backends = {"selected": requested(), "installed": installed()}
    if as_json:
        data = {
            "version": __version__,
            "backends": backends,
            "plugins": rows,
            **{kind: {n: e.as_dict() for n, e in getattr(registry, kind).items()} for kind in KINDS},
            "presets": sorted(PRESETS),
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
                if entry.traits is not None:
                    typer.echo(f"              {_traits_line(entry.traits)}")
                for option in entry.options:
                    flag = f"{option.flag}, " if option.flag else ""
                    typer.echo(f"              {flag}--option {name}.{option.key}=<{getattr(option.type, '__name__', 'value')}>"
                               f"{' (repeatable)' if option.repeat else ''} (default {option.default!r}) {option.help}")
        work = [h for h in row["hooks"] if not h.startswith("nst_register_")]
        if work:
            typer.echo(f"    hooks     {', '.join(work)}")
    for failure in failures:
        typer.echo(f"FAILED {failure['name']} at {failure['stage']}: {failure['error']}")
    versions = ", ".join(f"{name} {version}" if version else f"{name} (not installed)"
                         for name, version in backends["installed"].items())
    typer.echo(f"Keras backend: {backends['selected']} (--backend or KERAS_BACKEND; installed: {versions}); "
               "nst --version shows the device")


_TERMINATED = {"pid": None, "signalled": False}


def _on_sigterm(signum, frame) -> None:
    """SIGTERM stops a run as Ctrl-C does (:class:`~nst_plugin.errors.Terminated`, a KeyboardInterrupt: the
    same clean-up, the ``interrupted`` event, exit 143). A second SIGTERM, or one in a child process that
    inherited the handler, ends the process at once, as before."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if os.getpid() != _TERMINATED["pid"] or _TERMINATED["signalled"]:
        os.kill(os.getpid(), signal.SIGTERM)
        return
    _TERMINATED["signalled"] = True
    raise Terminated()


def _install_sigterm() -> None:
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        _TERMINATED["pid"] = os.getpid()
        signal.signal(signal.SIGTERM, _on_sigterm)


def _jsonl_requested(args: list[str]) -> bool:
    """``--progress jsonl`` (or ``--progress=jsonl``) on the command line, before any ``--``."""
    for i, arg in enumerate(args):
        if arg == "--":
            return False
        if arg == "--progress=jsonl" or (arg == "--progress" and args[i + 1:i + 2] == ["jsonl"]):
            return True
    return False


def _run_jsonl() -> None:
    """``app()`` for a tool reading ``--progress jsonl``: a usage error (an unknown option, ``--size abc``)
    is an ``error`` event on stdout (code 2) and one ``error:`` line on stderr instead of typer's box."""
    try:
        code = app(standalone_mode=False)
    except (typer.Abort, click.exceptions.Abort):
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    except Exception as exc:
        if not _click_error(exc):
            raise
        from . import events

        message = " ".join(exc.format_message().split())
        context = getattr(exc, "ctx", None)
        if _click_error(exc, "UsageError") and context is not None:
            message += f" (see '{context.command_path} --help')"
        code = getattr(exc, "exit_code", 2)
        JsonlProgress()(events.Error(message=message, code=code))
        typer.echo(f"error: {message}", err=True)
        sys.exit(code)
    sys.exit(code if isinstance(code, int) else 0)


def _traits_line(traits) -> str:
    size = "at the source's size unless --size" if traits.output_size == "source" else "at --size"
    parts = [f"frames {size}", "takes --frame-settings" if traits.frame_settings else "constant settings"]
    if traits.seekable:
        parts.append("reads the source more than once (no camera)")
    return "; ".join(parts)


def main() -> None:
    """Entry point of the ``nst`` console script."""
    from .failures import debug

    # TensorFlow's C++ log (its grappler's "remapper failed" errors read like a crash) only with NST_DEBUG=1
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug() else "3")
    warnings.showwarning = _show_warning
    _install_sigterm()
    try:
        if _jsonl_requested(sys.argv[1:]):
            _run_jsonl()
        else:
            app()
    except NstError as exc:  # raised outside a command, e.g. while loading plugins in strict mode
        typer.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except SystemExit as exc:  # SIGTERM outside a command: typer answers any KeyboardInterrupt with 130
        from .failures import EXIT_INTERRUPTED, EXIT_TERMINATED

        if _TERMINATED["signalled"] and exc.code == EXIT_INTERRUPTED:
            sys.exit(EXIT_TERMINATED)
        raise
