"""Shot-cut detection, frame by frame (PySceneDetect, imported when a detector is made). Used by the
sequence engines: a cut starts the next shot cold."""

from __future__ import annotations

import numpy as np


class ShotDetector:
    """Per-frame shot-cut detection: PySceneDetect's ContentDetector (HSV difference of consecutive frames),
    fed frame by frame, so a cut is known before the frame is stylized. Falls back to a colour-histogram
    comparison when PySceneDetect is not installed."""

    def __init__(self, threshold: float = 27.0):
        self.threshold = threshold
        self.count = 0
        self.previous_hist = None
        try:
            from scenedetect.detectors import ContentDetector

            self.detector = ContentDetector(threshold=threshold, min_scene_len=1)
        except ImportError:  # pragma: no cover - scenedetect is a dependency
            self.detector = None

    def _small_bgr(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8:
            rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        h, w = rgb.shape[:2]
        scale = min(1.0, 160 / max(h, w))
        small = cv2.resize(rgb, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(small[:, :, ::-1])

    def is_cut(self, rgb: np.ndarray) -> bool:
        """True when ``rgb`` starts a new shot (never for the first frame)."""
        small = self._small_bgr(rgb)
        index = self.count
        self.count += 1
        if self.detector is not None:
            from scenedetect import FrameTimecode

            if getattr(self, "_shape", None) not in (None, small.shape):
                self.detector = type(self.detector)(threshold=self.threshold, min_scene_len=1)
                self._shape = small.shape
                return index > 0
            self._shape = small.shape
            cuts = self.detector.process_frame(FrameTimecode(index, fps=25.0), small)
            return index > 0 and any(c.frame_num == index for c in cuts)
        import cv2

        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 16], [0, 180, 0, 256])
        cv2.normalize(hist, hist)
        previous, self.previous_hist = self.previous_hist, hist
        if previous is None:
            return False
        return cv2.compareHist(previous, hist, cv2.HISTCMP_CORREL) < 1.0 - self.threshold / 100.0
