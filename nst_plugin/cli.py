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


def _floats(text: Optional[str], what: str):
    from .config import parse_floats

    return parse_floats(text, what) if text is not None else None


@app.command()
@user_errors
def image(
    content: Path = typer.Argument(..., help="Content image (PNG, JPEG, TIFF, 16-bit PNG, ...)."),
    style: List[Path] = typer.Option(..., "--style", "-s", help="Style image; repeat for several styles."),
    output: Path = typer.Option(..., "--output", "-o", help="Output image (.png, .jpg, ...)."),
    preset: str = typer.Option("default", help="default (quality per second) or seed (the article's exact method)."),
    size: Optional[int] = typer.Option(None, help="Longer side of the result in pixels [preset: 384; seed 224]."),
    square: Optional[bool] = typer.Option(None, "--square/--keep-aspect", help="Squash to size x size, as the article."),
    style_blend: Optional[str] = typer.Option(None, help="Blend weights of the styles, e.g. 0.7,0.3."),
    preserve_color: bool = typer.Option(False, "--preserve-color", help="Transfer luminance only; keep the content's colours."),
    style_scale: Optional[float] = typer.Option(None, help="Size of the style image relative to --size."),
    weights: Optional[str] = typer.Option(None, help="Backbone weights: auto, imagenet, hed, or a weights file."),
    backbone: Optional[str] = typer.Option(None, help="Backbone plugin name (see nst plugins)."),
    pooling: Optional[str] = typer.Option(None, help="max or avg (the article uses avg)."),
    content_layer: Optional[str] = typer.Option(None, help="Layer of the content loss."),
    style_layers: Optional[str] = typer.Option(None, help="Comma-separated layers of the style loss."),
    style_layer_weights: Optional[str] = typer.Option(None, help="Comma-separated weights, one per style layer."),
    content_weight: Optional[float] = typer.Option(None, help="Weight of the content loss."),
    style_weight: Optional[float] = typer.Option(None, help="Weight of the style loss."),
    tv_weight: Optional[float] = typer.Option(None, help="Weight of the total-variation loss."),
    loss: List[str] = typer.Option([], "--loss", help="Extra loss NAME or NAME=WEIGHT from a plugin; repeatable."),
    optimizer: Optional[str] = typer.Option(None, help="lbfgs, adam, or a plugin's optimizer."),
    iterations: Optional[int] = typer.Option(None, help="Optimizer iterations per round."),
    rounds: Optional[int] = typer.Option(None, help="Optimizer restarts (the article: 30)."),
    max_evals: Optional[int] = typer.Option(None, help="Loss evaluations per round (the article's maxfun)."),
    tolerance: Optional[float] = typer.Option(None, help="Stop when the relative loss change falls below this."),
    learning_rate: Optional[float] = typer.Option(None, help="Adam step size in pixel units (0..255)."),
    init: Optional[str] = typer.Option(None, help="Start image: noise, content or an image path."),
    seed: Optional[int] = typer.Option(None, help="Random seed: makes a run reproducible."),
    loss_plot: Optional[Path] = typer.Option(None, help="Write the loss curves to this PNG."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Stylize one image."""
    from .config import parse_loss_option
    from .images import check_output_path, load_image
    from .report import plot_losses, write_metadata

    inputs = [content, *style]
    out = check_output_path(output, inputs, overwrite)
    if loss_plot is not None:
        check_output_path(loss_plot, inputs, overwrite)
    loss_weights = {}
    for name, value in (("content", content_weight), ("style", style_weight), ("tv", tv_weight)):
        if value is not None:
            loss_weights[name] = value
    for text in loss:
        name, value = parse_loss_option(text)
        loss_weights[name] = value
    settings = dict(
        size=size, square=square, style_blend=_floats(style_blend, "--style-blend"),
        preserve_color=preserve_color or None, style_scale=style_scale, weights=weights, backbone=backbone,
        pooling=pooling, content_layer=content_layer,
        style_layers=tuple(s.strip() for s in style_layers.split(",") if s.strip()) if style_layers else None,
        style_layer_weights=_floats(style_layer_weights, "--style-layer-weights"),
        loss_weights=loss_weights or None, optimizer=optimizer, iterations=iterations, rounds=rounds,
        max_evaluations=max_evals, tolerance=tolerance, learning_rate=learning_rate, init=init, seed=seed,
    )
    content_rgb = load_image(content, "content image")
    styles = [load_image(path, "style image") for path in style]
    from .api import prepare, stylize_frame

    config, styles, _ = prepare(styles, preset, **settings)
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
        raise typer.Exit(4)


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
