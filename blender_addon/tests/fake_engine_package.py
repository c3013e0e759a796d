"""A stand-in for the nst-plugin distribution, for the Set Up Engine tests: a package ``nst_plugin`` that
answers ``python -m nst_plugin --version`` and ``python -m nst_plugin plugins --json`` like the engine (and
nothing else), as a wheel (:func:`make_wheel`, made by hand: no build tool, no network) or as a source
checkout (:func:`write_checkout`) whose in-tree build backend is this very file (PEP 517 ``build_wheel``),
so that pip builds it in its usual isolated way with ``--no-index``: offline, nothing to download."""

import base64
import hashlib
import zipfile
from pathlib import Path

VERSION = "0.0.1"
MAIN = '''import json
import sys

args = sys.argv[1:]
if args == ["--version"]:
    print("nst-plugin %s")
elif args[:2] == ["plugins", "--json"]:
    print(json.dumps({"version": "%s", "plugins": [], "presets": ["default", "seed", "stand-in"],
                      "losses": {"content": {}, "style": {}, "stand_in_loss": {}}}))
else:
    sys.stderr.write("error: the stand-in engine only answers --version and plugins --json\\n")
    sys.exit(2)
''' % (VERSION, VERSION)
FILES = {"nst_plugin/__init__.py": f'__version__ = "{VERSION}"\n', "nst_plugin/__main__.py": MAIN}


def make_wheel(folder) -> Path:
    """``folder/nst_plugin-0.0.1-py3-none-any.whl``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    info = f"nst_plugin-{VERSION}.dist-info"
    files = dict(FILES)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: nst-plugin\nVersion: {VERSION}\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: nst-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = folder / f"nst_plugin-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None) -> str:
    """PEP 517: the checkout's build backend (pip calls it in the checkout, this file copied there)."""
    return make_wheel(wheel_directory).name


def write_checkout(folder) -> Path:
    """A source folder of the stand-in (``folder`` itself), built by this file as its backend."""
    folder = Path(folder)
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    (folder / "stand_in_backend.py").write_text(Path(__file__).read_text())
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "stand_in_backend"\nbackend-path = ["."]\n\n'
        f'[project]\nname = "nst-plugin"\nversion = "{VERSION}"\n')
    return folder
