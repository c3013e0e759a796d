"""Hook specifications of nst-plugin. Every hook is prefixed ``nst_``.

Two kinds of hooks:

* registry hooks (``nst_register_*``): every plugin may answer; each gets a ``register`` callable bound to
  that plugin, and the core merges what they register into one :class:`nst_plugin.registry.Registry`;
* work hooks (``nst_stylize_frame``, ``nst_stylize_sequence``): ``firstresult=True``. The built-in
  implementations are ordinary plugins registered ``trylast``, so an installed plugin that returns a
  result replaces the engine, and one that returns ``None`` lets the next implementation run.

Each hook is documented with an example in ``docs/plugins.md``.
"""

import pluggy

hookspec = pluggy.HookspecMarker("nst_plugin")
hookimpl = pluggy.HookimplMarker("nst_plugin")


@hookspec
def nst_register_losses(register):
    """Register loss terms.

    Call ``register(name, factory, description="")`` once per loss. ``factory(settings)`` receives a
    :class:`nst_plugin.losses.LossSettings` and returns a :class:`nst_plugin.losses.LossTerm`.
    """


@hookspec
def nst_register_optimizers(register):
    """Register optimizers.

    Call ``register(name, factory, description="")``. ``factory(config)`` receives the
    :class:`nst_plugin.config.StyleConfig` of the run and returns an object with a
    ``minimize(problem, callback)`` method (see :mod:`nst_plugin.optim`).
    """


@hookspec
def nst_register_backbones(register):
    """Register feature extractors and the weight sources they accept.

    Call ``register(name, factory, layers=[...], weight_sources=[...], description="")``. ``layers`` lists
    the layer names a loss may use, shallow to deep (checked before TensorFlow is imported);
    ``weight_sources`` names the values ``--weights`` accepts besides a file path.
    ``factory(weights, pooling)`` returns a :class:`nst_plugin.backbone.Backbone`.
    """


@hookspec
def nst_register_engines(register):
    """Register sequence engines (``--engine NAME``).

    Call ``register(name, factory, description="", options=())``. ``factory(config)`` receives the
    :class:`nst_plugin.config.StyleConfig` of the run and returns an object with a
    ``stylize_sequence(frames, styles, config, context, sink)`` method that works as
    :func:`nst_stylize_sequence` does and returns a :class:`nst_plugin.result.SequenceResult`. The built-in
    ``nst_stylize_sequence`` runs the engine that ``config.engine`` names (default ``"lbfgs"``).
    """


@hookspec(firstresult=True)
def nst_stylize_frame(content, styles, config, context):
    """Stylize one RGB frame.

    ``content``: ``uint8`` array (H, W, 3), RGB. ``styles``: list of ``(rgb uint8 array, blend weight)``.
    ``config``: :class:`nst_plugin.config.StyleConfig`. ``context``: :class:`nst_plugin.context.RunContext`
    (registry, ``emit(event)``, a cache that lives as long as the run, and this frame's typed
    :class:`nst_plugin.context.FrameControls` such as an initial image or an iteration cap). Return a
    :class:`nst_plugin.result.FrameResult`, or ``None`` to let the next implementation run.
    """


@hookspec(firstresult=True)
def nst_stylize_sequence(frames, styles, config, context, sink):
    """Stylize a sequence of frames.

    ``frames``: iterable of ``(index, rgb uint8 array)`` in order. It may be iterated more than once when
    the source can be read again (a video file or an image sequence: each iteration reads it anew, and an
    unreadable frame is reported once); a one-pass source (a camera, a generator given to the Python API) is
    an iterator, ``iter(frames) is frames``, and a second iteration yields nothing. ``sink(index,
    FrameResult)`` receives every finished frame in order. Stylize each frame with
    ``context.stylize_frame(content, styles, config, index, FrameControls(...))``; ``context.store`` (an
    :class:`nst_plugin.context.ArtifactStore`, or ``None``) keeps files with the results. Return a
    :class:`nst_plugin.result.SequenceResult`, or ``None`` to let the next implementation run.
    """
