"""What a benchmark ran on, in one line (shared by the benchmark scripts)."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe() -> str:
    """CPU cores and model, the Keras backend and the device it computes on (a GPU if it sees one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from nst_plugin.backends import describe as runtime

    r = runtime()
    return f"{os.cpu_count()} CPU cores ({cpu}), Keras {r['keras']} on {r['backend']} {r['version']}, device {r['device']}"
