"""Built-in plugin: the ``keyframes`` sequence engine (``--engine keyframes``).

A few keyframes per shot are stylized by the frame engine (``nst_stylize_frame``: every loss, optimizer and
backbone plugin applies), a small fully-convolutional network learns them (few-shot patch-based training,
Texler et al. 2020), and every frame goes through that network at the output size, independently. See
:mod:`.engine`. Registering it imports nothing heavy.

Design, measurements and history: docs/design/keyframes.md
"""

from __future__ import annotations

from ...hookspecs import hookimpl
from ...registry import EngineTraits, PluginOption, bounded
from ...validation import MIN_SIZE


def frame_numbers(value) -> tuple[int, ...]:
    """``"1,48,96"`` or ``[1, 48, 96]`` -> ``(1, 48, 96)``: the frames to stylize as keyframes."""
    parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else list(value)
    try:
        numbers = tuple(int(str(p)) for p in parts)
    except ValueError:
        raise ValueError(f"must list frame numbers, got {value!r}") from None
    if not numbers or any(n < 0 for n in numbers):
        raise ValueError(f"must list frame numbers, got {value!r}")
    return numbers


def keyframe_image(value) -> tuple[int, str]:
    """One ``--keyframe-image`` item, ``"17=painted.png"`` -> ``(17, path)`` (see :func:`.painted.parse_spec`)."""
    from .painted import parse_spec

    return parse_spec(value)


OPTIONS = (
    PluginOption("frames", frame_numbers, None, "Frame numbers to stylize as keyframes, e.g. 1,48,96 (default: the "
                 "first frame of every shot, then a frame where the last keyframe's strokes reach less than "
                 "keyframes.coverage of the picture, or --keyframe-interval frames after it).", flag="--keyframes",
                 per_frame=True),
    PluginOption("size", bounded(int, MIN_SIZE), None, "Longer side at which keyframes are stylized (default: 384, at "
                 "most the output's); --size is the output's (default: the source's).", flag="--keyframe-size",
                 per_frame=True),
    PluginOption("interval", bounded(int, 1), 48, "A shot gets a keyframe at least every this many frames.",
                 flag="--keyframe-interval", per_frame=True),
    PluginOption("images", keyframe_image, (), "A painted (or retouched) keyframe, FRAME=IMAGE (e.g. 17=painted.png; "
                 "repeatable; any size of the frames' aspect ratio, scaled to them): the output frame is the painting "
                 "(a PNG's alpha: where it applies), and its shot follows it (docs/painted-keyframes.md).",
                 flag="--keyframe-image", repeat=True, per_frame=True),
    # 1400: the painted run takes about the time of the engine with its frame engine's keyframe (measured)
    PluginOption("painted_steps", bounded(int, 1), 1400, "Training steps of a shot's network on its painted "
                 "keyframes, at the output size (measured: docs/painted-keyframes.md)."),
    PluginOption("painted_guide", bounded(float, 0), 0.0, "Blob size, in keyframe pixels, of the guide pattern for a "
                 "shot with painted keyframes (0: none, measured best: the network follows the content alone)."),
    PluginOption("painted_carry", bounded(float, 0), 48.0, "Frames over which a painting carried along the optical "
                 "flow fades from the frames after it: laid over the network's frames where the flow is trusted, by "
                 "exp(-frames since the painting / this); carried back over the frames before it too, faded out "
                 "within this many (0: the network's frames alone; measured: docs/painted-keyframes.md).",
                 per_frame=True),
    PluginOption("steps", bounded(int, 1), 600, "Training steps per shot, at most (measured on the tuning frames: more steps "
                 "reproduce the keyframes more closely but generalise worse to the other frames, and cost more)."),
    PluginOption("seconds", bounded(float, 0, above=True), None, "Training time per shot in seconds, at most (default: no limit)."),
    PluginOption("plateau", bounded(float, 0, 1, below=True), 0.01, "Training stops when the held patches' loss improved by less than "
                 "this fraction three checks in a row."),
    PluginOption("patch", bounded(int, 16), 48, "Side of a training patch in pixels."),
    PluginOption("batch", bounded(int, 1), 8, "Training patches per step."),
    PluginOption("learning_rate", bounded(float, 0, above=True), 1e-3, "Adam's learning rate."),
    PluginOption("perceptual", bounded(float, 0), 0.0, "Weight of a VGG-feature term (block1_conv2, block2_conv2) next to "
                 "the L1 term (0: L1 alone; measured on a CPU: more texture per second of training without it)."),
    PluginOption("guide", bounded(float, 0), 8.0, "Blob size, in keyframe pixels, of a random pattern that follows the picture "
                 "(optical flow) and is the network's second input, after Texler et al.: texture in flat areas, "
                 "less flicker (0: none)."),
    PluginOption("full_size", bool, False, "Run the network at the output size, trained on the keyframe enlarged to "
                 "it, instead of at the keyframes' size and enlarging its frames with their own fine detail: less "
                 "flicker, but little of the strokes when the keyframes are much smaller than the output."),
    PluginOption("smooth", bounded(int, 0), 3, "Frames on each side of a frame averaged with it along the optical flow, "
                 "weights halving with distance, within its shot (less flicker; frames stay independent of the "
                 "order they are made in; 0: none)."),
    PluginOption("transport", bounded(float, 0), 4.0, "Blur, in keyframe pixels, that separates a keyframe's fine detail (its "
                 "brush strokes) from the rest: that detail is carried along the shot by the optical flow where it can "
                 "be trusted (its large shapes too where the picture stands still, and found again where a walker "
                 "uncovered what the keyframe showed), and is the frame's own (from the source) where it cannot, in "
                 "place of the network's (0: the network's frames alone)."),
    PluginOption("recover", bool, True, "Where the keyframe's strokes were lost but the picture stands still again "
                 "(what a walker uncovered), place them again from their neighbours where the keyframe's source "
                 "looks alike (measured: more of the painting's strokes on what walkers uncovered, moving subjects "
                 "a little closer to the style; false: the source's fine detail there)."),
    # 0.75: chosen on the tuning frames (docs/design/keyframes.md#plan-shots-and-keyframes)
    PluginOption("coverage", bounded(float, 0, 1), 0.75, "A frame of a shot becomes a keyframe (at least "
                 "12 frames after the last one) where the last keyframe's strokes can be carried to less than this "
                 "share of it: the picture moved, turned or entered the frame too much; it is stylized from the last "
                 "keyframe carried to it, for --warm-iterations (needs transport; 0: only the first frame of each "
                 "shot and the most changed frame of each --keyframe-interval window, all cold)."),
    PluginOption("tile", bounded(int, 64), 1024, "Frames larger than this many pixels a side go through the network in tiles."),
    PluginOption("seed", bounded(int, 0), 0, "Seed of the network's initial weights and of the patch sampler."),
)


# bytes per output pixel beyond the keyframes' VGG pass (frames, margins and results at the output size;
# with full_size the network and its training picture too): measured, docs/design/keyframes.md
FRAME_BYTES_PER_PIXEL = 200
FULL_SIZE_BYTES_PER_PIXEL = 2000


@hookimpl
def nst_register_engines(register):
    register("keyframes", _factory, "a few keyframes per shot stylized by the frame engine, a small network "
             "learns them (Texler et al. 2020), every frame through it at the output size", options=OPTIONS,
             traits=EngineTraits(output_size="source", memory=memory_needed, label="Keyframes",
                                 hint="Fast: keyframes learnt by a small network, seconds per frame",
                                 style_optional=painted_only, style_masks=True))


def painted_only(config) -> bool:
    """With painted keyframes the run may have no style (each shot needs a painting then: checked by the engine)."""
    return bool(config.option("keyframes.images"))


def memory_needed(config, height: int, width: int) -> int:
    """Rough peak bytes: the frame engine's VGG pass at the keyframes' size, and the frames at the output size."""
    from dataclasses import replace

    from ...validation import estimated_bytes
    from .engine import DEFAULT_KEYFRAME_SIZE

    given = {o.key: config.option(f"keyframes.{o.key}") for o in OPTIONS}  # checked or not yet: converted here
    options = {o.key: o.default if given[o.key] is None else o.convert(given[o.key]) for o in OPTIONS}
    out_h, out_w = config.working_shape(height, width)
    key_side = min(options["size"] or DEFAULT_KEYFRAME_SIZE, max(out_h, out_w))
    key_h, key_w = replace(config, size=key_side).working_shape(height, width)
    full = options["full_size"] or bool(options["images"])  # a painted shot's network learns at the output size
    return estimated_bytes(key_h, key_w) + (FULL_SIZE_BYTES_PER_PIXEL if full else FRAME_BYTES_PER_PIXEL) * out_h * out_w


def _factory(config):
    from .engine import KeyframeEngine

    return KeyframeEngine(config)
