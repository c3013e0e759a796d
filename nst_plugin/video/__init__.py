"""Video: frame selection, frame sources, the resumable output folder (PNG frames + manifest), encoding,
and the ``stylize_video`` job that ties them to ``nst_stylize_sequence``.

| module | holds |
| --- | --- |
| ``selection`` | ``--frames`` ranges |
| ``sources`` | video files, image sequences, cameras as ``(index, rgb)`` frames (``SourceFrames``: read again) |
| ``output`` | the output folder and its manifest (resume, refusal of other settings, the engine's artifacts) |
| ``masking`` | a job's ``--mask`` between the engine and the folder (the engine's own frames kept, the composite) |
| ``encode`` | frames to a video file with the source's audio |
| ``job`` | ``stylize_video``: all of the above around the sequence engine |

Shot-cut detection lives in :mod:`nst_plugin.shots` (the engines use it; it is not I/O).
"""

from ..shots import ShotDetector
from .encode import check_encode_path, encode_video
from .job import VideoJob, stylize_video
from .output import FRAME_NAME, FRAME_RE, MANIFEST, OutputFolder, image_digest
from .selection import parse_range
from .sources import DEFAULT_SEQUENCE_FPS, IMAGE_SUFFIXES, FrameSource, SourceFrames, open_source

__all__ = [
    "ShotDetector", "check_encode_path", "encode_video", "VideoJob", "stylize_video", "FRAME_NAME", "FRAME_RE",
    "MANIFEST", "OutputFolder", "image_digest", "parse_range", "DEFAULT_SEQUENCE_FPS", "IMAGE_SUFFIXES",
    "FrameSource", "SourceFrames", "open_source",
]
