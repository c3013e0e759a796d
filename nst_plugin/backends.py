"""Which Keras 3 backend runs the engine (TensorFlow, JAX or PyTorch), and on which device.

Keras picks its backend once per process, when it is first imported, from ``KERAS_BACKEND``. ``nst
--backend NAME`` and :func:`use_backend` set that variable before anything imports Keras; a request after
Keras was imported with another backend is refused in one line instead of being silently ignored.
TensorFlow is the default and the one the package installs; ``pip install nst-plugin[jax]`` / ``[torch]``
add the others.

Nothing here imports a backend at module import time (``nst --help`` stays fast).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys

from .errors import UserError

ENV = "KERAS_BACKEND"
DEFAULT = "tensorflow"
# backend name -> (the module it needs, the pip extra that installs it)
BACKENDS = {"tensorflow": ("tensorflow", "nst-plugin"), "jax": ("jax", "nst-plugin[jax]"),
            "torch": ("torch", "nst-plugin[torch]")}


def requested() -> str:
    """The backend this process will use (or uses): ``KERAS_BACKEND``, else TensorFlow."""
    return os.environ.get(ENV, "").strip() or DEFAULT


def installed() -> dict[str, str | None]:
    """Backend name -> the installed version of its package, or None; without importing any of them (``nst
    plugins`` stays fast)."""
    from importlib import metadata

    versions = {}
    for name, (module, _) in BACKENDS.items():
        try:
            versions[name] = metadata.version(module)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _loaded() -> str | None:
    """The backend Keras already runs on in this process, or None when Keras is not imported yet."""
    keras = sys.modules.get("keras")
    backend = getattr(getattr(keras, "backend", None), "backend", None)
    return backend() if callable(backend) else None


def check(name: str) -> str:
    """``name`` if it is a backend and its package is installed; else one :class:`UserError` line."""
    if name not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, got {name!r}")
    module, extra = BACKENDS[name]
    if importlib.util.find_spec(module) is None:
        raise UserError(f"the {name} backend is not installed here (pip install '{extra}'), or choose another "
                        f"with --backend / {ENV}")
    return name


def use_backend(name: str | None) -> str:
    """Select the Keras backend for this process (``None``: keep ``KERAS_BACKEND`` or the default) and check
    that it is installed. Call it before anything imports Keras; afterwards only the backend Keras already
    runs on is accepted."""
    name = check(name or requested())
    loaded = _loaded()
    if loaded is not None and loaded != name:
        raise UserError(f"Keras already runs on the {loaded} backend in this process; choose the backend "
                        f"before Keras is imported ({ENV}={name} or nst --backend {name})")
    os.environ[ENV] = name
    return name


def import_keras():
    """Import Keras on the selected backend (TensorFlow's start-up chatter kept off the terminal) and return
    the ``keras`` module."""
    name = use_backend(None)
    if name == "tensorflow":
        from .tf_import import import_tensorflow

        import_tensorflow()
    import keras

    return keras


def active() -> str:
    """The backend Keras runs on (imports Keras)."""
    return import_keras().backend.backend()


def device() -> str:
    """The device the backend computes on, in words: ``cpu``, ``cuda:0 (NVIDIA H100 ...)``, ``mps``."""
    name = active()
    if name == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return "cpu"
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"gpu:0 ({details.get('device_name', gpus[0].name)})"
    if name == "jax":
        import jax

        first = jax.devices()[0]
        return "cpu" if first.platform == "cpu" else f"{first.platform}:{first.id} ({first.device_kind})"
    import torch

    if torch.cuda.is_available():
        return f"cuda:0 ({torch.cuda.get_device_name(0)})"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@functools.lru_cache(maxsize=None)
def _describe(backend: str) -> tuple:
    keras = import_keras()
    module = importlib.import_module(BACKENDS[backend][0])
    return (("backend", backend), ("version", getattr(module, "__version__", "?")), ("keras", keras.__version__),
            ("device", device()))


def describe() -> dict:
    """``{"backend", "version", "keras", "device"}`` of this process (imports the backend): shown by ``nst
    --version``, written into every run's metadata (``.nst.json``) and video manifest."""
    return dict(_describe(active()))
