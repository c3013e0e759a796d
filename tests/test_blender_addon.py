"""Runs the Blender add-on's tests (blender_addon/tests) with the bpy venv's interpreter, so that
``pytest`` (and ``make test``, which creates ``.venv-blender`` first) fails when they fail."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLENDER_PYTHON = Path(os.environ.get("NST_BLENDER_PYTHON", ROOT / ".venv-blender" / "bin" / "python"))


@pytest.mark.skipif(not BLENDER_PYTHON.exists(), reason=f"{BLENDER_PYTHON} is missing: `make test` creates it "
                                                        "(make blender-venv)")
def test_blender_addon_suite_passes_in_headless_blender():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH"))}
    done = subprocess.run([str(BLENDER_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider", "blender_addon/tests"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    tail = (done.stdout + done.stderr)[-6000:]
    sys.stdout.write(tail)
    assert done.returncode == 0, f"blender_addon/tests failed:\n{tail}"
    assert " passed" in done.stdout and " skipped" not in done.stdout, tail
