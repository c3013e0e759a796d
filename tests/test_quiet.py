"""A normal run is quiet (issue 28, the part about noise): stderr holds the progress, one warning about the
fallback weights and nothing of TensorFlow's C++ log (its grappler's "remapper failed" errors, which read
like a crash); NST_DEBUG=1 lets TensorFlow's log through again."""

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TF_LOG = re.compile(r"^[EWIF]\d{4} |meta_optimizer|remapper|absl::")


def _run(tmp_path, **env):
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "NST_DEBUG")}
    command = [sys.executable, "-m", "nst_plugin", "video", str(ROOT / "samples" / "street.avi"), "-s",
               str(ROOT / "samples" / "starry_night.jpg"), "-o", str(tmp_path / "out"), "--engine", "keyframes",
               "--size", "96", "--keyframe-size", "48", "--iterations", "3", "--frames", "1-8", "--option",
               "keyframes.steps=10", "--option", "keyframes.patch=24", "--weights", "auto", "-q"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env={**environment, **env})


def test_a_keyframe_run_prints_no_tensorflow_log_and_one_warning(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert [line for line in lines if TF_LOG.search(line)] == []
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "fallback" in warnings[0], lines
    assert [line for line in lines if not line.startswith("warning:")] == [], lines  # -q: no progress either
