"""docs/writing-a-plugin.md works as written: its files, extracted into an empty folder and made importable
with a dist-info (what ``pip install -e .`` would leave), give a loss that ``nst`` lists and runs, and the
tutorial's own test passes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst_plugin.images import save_image

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "writing-a-plugin.md"


def tutorial_files():
    """{relative path: text} for every code block whose first line is ``# file: PATH``."""
    files = {}
    for block in re.findall(r"```\w*\n(.*?)```", TUTORIAL.read_text(), flags=re.S):
        first, _, rest = block.partition("\n")
        match = re.fullmatch(r"# file: (\S+)", first.strip())
        if match:
            files[match.group(1)] = rest
    return files


def install_like_pip(folder: Path) -> None:
    """A dist-info with the entry points of pyproject.toml, next to the module: an editable install."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
    info = folder / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = ["[nst_plugin]"] + [f"{k} = {v}" for k, v in project["entry-points"]["nst_plugin"].items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


def run(args, cwd, folder):
    env = dict(os.environ, PYTHONPATH=str(folder), NST_LOAD_PLUGINS="nst-bnstats", NST_STRICT_PLUGINS="1")
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=600)


def test_the_tutorial_plugin_works_from_the_cli_and_its_own_test_passes(tmp_path):
    folder = tmp_path / "nst-bnstats"
    files = tutorial_files()
    assert set(files) == {"pyproject.toml", "nst_bnstats.py", "tests/test_bnstats.py"}
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    install_like_pip(folder)

    listed = run(["-m", "nst_plugin", "plugins", "--json"], tmp_path, folder)
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["losses"]["bnstats"]["plugin"] == "nst-bnstats"
    row = next(p for p in data["plugins"] if p["name"] == "nst-bnstats")
    assert (row["distribution"], row["version"]) == ("nst-bnstats", "0.1.0")

    content = np.full((30, 40, 3), 128, np.uint8)
    style = np.zeros((40, 40, 3), np.uint8)
    style[..., 2] = 255
    save_image(tmp_path / "photo.png", content)
    save_image(tmp_path / "painting.png", style)
    styled = run(["-m", "nst_plugin", "image", "photo.png", "--style", "painting.png", "-o", "out.png",
                  "--style-weight", "0", "--loss", "bnstats=10", "--size", "40", "--iterations", "5", "-q"],
                 tmp_path, folder)
    assert styled.returncode == 0, styled.stderr
    meta = json.loads((tmp_path / "out.nst.json").read_text())
    assert set(meta["stats"]["losses"]) == {"content", "bnstats"}

    own = run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], folder, folder)
    assert own.returncode == 0, own.stdout + own.stderr
    assert "1 passed" in own.stdout
