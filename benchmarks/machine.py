"""What a benchmark ran on, in one line (shared by the benchmark scripts)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """CPU cores and model, GPUs if TensorFlow sees any, TensorFlow's version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return f"{os.cpu_count()} CPU cores ({cpu}), {f'{len(gpus)} GPU' if gpus else 'no GPU'}, TensorFlow {tf.__version__}"
