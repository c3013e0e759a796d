"""nst-plugin: neural style transfer for images and video, built on a pluggy hook core.

Importing this package is cheap: Keras and its backend (TensorFlow by default) load only when a frame is
stylized.
"""

__version__ = "0.1.0"

from .backends import use_backend  # noqa: E402
from .backbone import Backbone, KerasBackbone, WeightsInfo, keras_layer_extractor, load_keras_weights  # noqa: E402
from .config import PRESETS, StyleConfig, make_config  # noqa: E402
from .context import ArtifactStore, FrameControls, PreviousFrame, Resume, RunContext  # noqa: E402
from .errors import NstError, PluginError, UserError, WeightsUnavailable  # noqa: E402
from .hookspecs import hookimpl  # noqa: E402
from .losses import FrameInputs, LossSettings, LossTerm  # noqa: E402
from .optim import NonFiniteLoss, Problem  # noqa: E402
from .registry import EngineTraits, PluginOption, bounded  # noqa: E402
from .weights import WeightsFile  # noqa: E402
from .result import FrameResult, SequenceResult  # noqa: E402


def stylize_frame(content, style, **kwargs):
    """See :func:`nst_plugin.api.stylize_frame`."""
    from .api import stylize_frame as run

    return run(content, style, **kwargs)


def stylize_sequence(frames, style, sink, **kwargs):
    """See :func:`nst_plugin.api.stylize_sequence`."""
    from .api import stylize_sequence as run

    return run(frames, style, sink, **kwargs)


__all__ = [
    "PRESETS", "StyleConfig", "make_config", "NstError", "PluginError", "UserError", "hookimpl",
    "FrameInputs", "LossSettings", "LossTerm", "FrameResult", "SequenceResult", "stylize_frame",
    "stylize_sequence", "use_backend", "__version__",
    # for plugin authors (see docs/plugins.md)
    "Backbone", "KerasBackbone", "WeightsInfo", "keras_layer_extractor", "load_keras_weights", "RunContext", "WeightsUnavailable", "NonFiniteLoss",
    "Problem", "WeightsFile", "PluginOption", "EngineTraits", "bounded", "FrameControls", "PreviousFrame", "Resume", "ArtifactStore",
]
