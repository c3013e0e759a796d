"""How a run ends: exit codes, the one line of an unexpected error, and naming the plugin behind a
TensorFlow failure.

| code | meaning |
| --- | --- |
| 0 | done |
| 1 | an unexpected internal error (a bug): one ``error:`` line; ``NST_DEBUG=1`` shows the traceback |
| 2 | the user's to fix (:class:`~nst_plugin.errors.UserError`) |
| 3 | a plugin failed (:class:`~nst_plugin.errors.PluginError`) |
| 4 | the loss turned NaN; the best image so far was kept |
| 130 | interrupted (Ctrl-C) |
| 143 | terminated (SIGTERM), cleaned up as Ctrl-C is |

A loss, optimizer or backbone that a plugin registered runs inside the engine's compiled step (a
``tf.function``, a jitted JAX function): when it fails at tracing or run time, the backend raises an error
whose traceback holds no frame of the plugin, so :meth:`nst_plugin.plugins.PluginHost.blame` cannot name it. :func:`attribute_step_failure` finds the culprit
by running each part once eagerly and marks the exception (``nst_plugin``: the plugin's name,
``nst_description``: one line); the plugin host (:meth:`nst_plugin.plugins.PluginHost.call`) then raises the project's
:class:`~nst_plugin.errors.PluginError` naming it, or, with ``NST_STRICT_PLUGINS=1``, the original exception.
"""

from __future__ import annotations

import os
import re

EXIT_OK, EXIT_INTERNAL, EXIT_USER, EXIT_PLUGIN, EXIT_NAN, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process the signal ended
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_INTERNAL: "unexpected internal error (a bug): one error line; NST_DEBUG=1 shows the traceback",
    EXIT_USER: "the user's to fix: bad input, a path that would destroy data or cannot be written",
    EXIT_PLUGIN: "a plugin failed (import, registration, tracing or run time)",
    EXIT_NAN: "the loss turned NaN; the best image so far was kept",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
    EXIT_TERMINATED: "terminated (SIGTERM): stopped as Ctrl-C stops it",
}


def debug() -> bool:
    """``NST_DEBUG=1``: an unexpected error shows its traceback instead of one line."""
    return os.environ.get("NST_DEBUG", "") not in ("", "0", "false", "no")


def clean_message(exc: BaseException, limit: int = 300) -> str:
    """One readable line from any exception, TensorFlow's multi-line graph errors included."""
    text = str(getattr(exc, "message", None) or exc)
    lines = []
    skip_code = False
    for raw in text.splitlines():
        line = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", raw.strip())
        line = re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?$", "", line).strip()
        if skip_code:  # the source line that follows a 'File ...' line of a TF stack
            skip_code = False
            if raw.startswith("        "):
                continue
        if not line or line.startswith(("File ", "Detected at node", "Graph execution error", "in user code")):
            skip_code = line.startswith("File ")
            continue
        if line.startswith("[[") or line.endswith(":") and not lines:
            continue
        lines.append(line)
    line = lines[0] if lines else type(exc).__name__
    if len(lines) > 1 and len(line) < 40:  # e.g. a tf.debugging message, then its condition
        line = f"{line}; {lines[1]}"
    line = re.sub(r"\s*\[\[\{\{node .*$", "", line)
    line = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", line)
    line = re.sub(r"\s*\[Op:[^\]]*\](\s*name:.*)?$", "", line)
    line = re.sub(r" for '\{\{node [^']*'", "", line)
    prefix = f"{type(exc).__name__}: "
    if line.startswith(prefix):
        line = line[len(prefix):]
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    return f"{type(exc).__name__}: {line}"


def internal_message(exc: BaseException) -> str:
    """The one line of an unexpected error (exit 1)."""
    return (f"internal error: {clean_message(exc)} (this is a bug; run again with NST_DEBUG=1 to see the "
            "traceback)")


def _builtin(plugin: str) -> bool:
    from .plugins import DEFAULT_PLUGINS

    return plugin in DEFAULT_PLUGINS


def mark(exc: BaseException, plugin: str, description: str) -> None:
    """Tell the plugin host who failed (the exception itself stays the same)."""
    try:
        exc.nst_plugin = plugin  # type: ignore[attr-defined]
        exc.nst_description = description  # type: ignore[attr-defined]
    except AttributeError:  # an exception type without a __dict__: the host falls back on blame()
        pass


def attribute_backbone_failure(exc: BaseException, stylizer) -> None:
    """A backbone's feature extractor failed (eagerly): name the plugin that registered it."""
    entry = stylizer.registry.backbones.get(stylizer.config.backbone)
    if entry is not None and not _builtin(entry.plugin) and getattr(exc, "nst_plugin", None) is None:
        mark(exc, entry.plugin, f"backbone {entry.name!r} failed: {clean_message(exc)}")


def _uses_tensorflow(value, exc: BaseException | None = None) -> bool:
    """A loss's value is a TensorFlow tensor, or its failure came out of TensorFlow's code."""
    if type(value).__module__.startswith("tensorflow"):
        return True
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None:
        if "/tensorflow/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False


def _run_term_alone(term, x, features, targets, backend: str) -> None:
    """One loss term, eagerly, on the active backend: raises if it fails, returns no scalar, or (off the
    TensorFlow backend) answers with TensorFlow tensors."""
    from keras import ops

    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)
            value = term.loss(x, features, targets)
        if value is None or int(tf.size(value)) != 1:
            raise ValueError(f"loss() must return a scalar tensor, got {value!r:.80}")
        tape.gradient(value, x)
        return
    try:
        value = term.loss(x, features, targets)
    except Exception as inner:
        if _uses_tensorflow(None, inner):
            raise TensorFlowOnlyLoss(backend) from inner
        raise
    if _uses_tensorflow(value):
        raise TensorFlowOnlyLoss(backend)
    if value is None or int(ops.size(value)) != 1:
        raise ValueError(f"loss() must return a scalar tensor, got {value!r:.80}")


class TensorFlowOnlyLoss(Exception):
    def __init__(self, backend: str):
        super().__init__(f"it uses TensorFlow ops, which run only on the tensorflow backend (this run: {backend}); "
                         "write it with keras.ops (docs/plugins.md, 'Backends') or run with --backend tensorflow")


def attribute_step_failure(exc: BaseException, stylizer, x, targets) -> None:
    """The compiled loss-and-gradient step failed (tracing or run time): find the part that fails when run
    eagerly, once, and mark ``exc`` with its plugin if a third-party plugin registered it. Built-in parts
    are never blamed; when nothing fails eagerly and exactly one third-party loss takes part, it is named.
    A loss written with TensorFlow ops (before the Keras 3 backends) works on the TensorFlow backend; on
    another one it is named with that reason."""
    import keras

    from .gradients import to_tensors
    from .plugins import get_host

    backend = keras.backend.backend()
    named = getattr(exc, "nst_plugin", None) or get_host().blame(exc)
    if named is not None:
        if backend != "tensorflow" and _uses_tensorflow(None, exc):  # TensorFlow ops met a JAX/PyTorch tensor
            mark(exc, named, str(TensorFlowOnlyLoss(backend)))
        return  # already named: a plain Python raise in a plugin's code keeps its own message
    registry, config = stylizer.registry, stylizer.config
    backbone = registry.backbones.get(config.backbone)
    x = to_tensors(x)
    try:
        features = stylizer.extract(x)
    except Exception as inner:  # noqa: BLE001 - any failure of the extractor is the backbone's
        if backbone is not None and not _builtin(backbone.plugin):
            mark(exc, backbone.plugin, f"backbone {backbone.name!r} failed: {clean_message(inner)}")
        return
    foreign = []
    for name, term in stylizer.terms.items():
        entry = registry.losses.get(name)
        if entry is None or _builtin(entry.plugin):
            continue
        foreign.append(entry)
        try:
            _run_term_alone(term, x, features, targets[name], backend)
        except TensorFlowOnlyLoss as inner:
            mark(exc, entry.plugin, f"loss {name!r} failed: {inner}")
            return
        except Exception as inner:  # noqa: BLE001 - this term fails on its own: it is the culprit
            mark(exc, entry.plugin, f"loss {name!r} failed: {clean_message(inner)}")
            return
    if len(foreign) == 1:
        mark(exc, foreign[0].plugin, f"loss {foreign[0].name!r} failed in the compiled step: {clean_message(exc)}")
