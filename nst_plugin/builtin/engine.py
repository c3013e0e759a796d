"""Built-in work-hook plugin: the default frame and sequence engines.

Both are registered ``trylast``: a plugin that implements ``nst_stylize_frame`` or ``nst_stylize_sequence``
and returns a result runs instead of them.
"""

from __future__ import annotations

import time

from ..hookspecs import hookimpl
from ..result import SequenceResult


@hookimpl(trylast=True)
def nst_stylize_frame(content, styles, config, context):
    from ..tf_import import import_tensorflow

    import_tensorflow()
    from .stylizer import Stylizer

    key = ("nst_plugin.builtin.engine", config.fingerprint())
    stylizer = context.cache.get(key)
    if stylizer is None or stylizer.styles_source is not styles:
        stylizer = Stylizer(config, styles, context.registry)
        context.cache[key] = stylizer
    return stylizer.run(content, context)


@hookimpl(trylast=True)
def nst_stylize_sequence(frames, styles, config, context, sink):
    """Plain frame-by-frame: every frame through ``nst_stylize_frame`` (so a frame plugin applies), with
    one shared context, so the backbone and the style targets are built once."""
    started = time.perf_counter()
    count = 0
    for index, frame in frames:
        result = context.plugin_manager.hook.nst_stylize_frame(
            content=frame, styles=styles, config=config, context=context.for_frame(index)
        )
        sink(index, result)
        count += 1
    return SequenceResult(frames=count, seconds=time.perf_counter() - started)
