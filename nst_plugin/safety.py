"""Never destroy what the user made: the write plan of a command, checked before any work.

A command lists every path it reads (:class:`Source`) and every path it will write (:class:`Destination`:
the output image or folder, the metadata next to it, the loss plot, the encoded video, frames and the
manifest). :meth:`WritePlan.check` then refuses, in one line naming the path the user gave (a
:class:`~nst_plugin.errors.UserError`, exit 2), before any model is built:

* a destination that is an input, or that lands in an image-sequence source's folder where the sequence's
  frames live, or an output folder that holds input files it would write or delete (symlinks and ``..``
  resolved with :func:`os.path.realpath`);
* two destinations that are the same file;
* an existing file that is not ours: a file the user named (``-o``, ``--loss-plot``, ``--encode``) is
  replaced only with ``--overwrite`` (or, for ``--encode``, when the output folder's manifest records that
  an earlier run encoded it); a file the tool names itself (``<stem>.nst.json``, frames and the manifest in
  an output folder) is replaced only when it is ours, whatever ``--overwrite`` says;
* a destination that cannot be written: its first existing ancestor folder must take a probe file.

Nothing here imports TensorFlow or OpenCV: a refusal takes milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")
MANIFEST = "nst_manifest.json"
FRAME_NAME = "frame_{:06d}.png"
FRAME_RE = re.compile(r"^frame_(\d+)\.png$")
METADATA_FORMAT = "nst-image-metadata"
MANIFEST_FORMAT = "nst-video-manifest"


def real(path: str | os.PathLike) -> str:
    """The path with ``~``, symlinks and ``..`` resolved (also for a path that does not exist yet)."""
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def read_json(path: str | os.PathLike) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_our_metadata(path: str | os.PathLike) -> bool:
    """A ``.nst.json`` written by :func:`nst_plugin.report.write_metadata` (also before it carried a format)."""
    data = read_json(path)
    if data is None:
        return False
    return data.get("format") == METADATA_FORMAT or {"output", "config", "settings_hash", "stats"} <= set(data)


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The output folder's manifest if it is ours (its format), checked: None where there is none or it is
    not nst's; a :class:`~nst_plugin.errors.UserError` naming it where it is nst's but names a file it may
    not (see :func:`check_manifest`)."""
    path = Path(folder) / MANIFEST
    if os.path.islink(path):
        return None  # nst writes its manifest in place, never as a link
    data = read_json(path)
    if data is None or data.get("format") != MANIFEST_FORMAT:
        return None
    problem = check_manifest(data)
    if problem is not None:
        raise UserError(f"{str(path)!r} is damaged or was edited by hand ({problem}): move it away or choose "
                        "another output folder")
    return data


def check_manifest(data: dict) -> str | None:
    """What is wrong with a manifest read from disk, or None. Every file it names must be a plain file name
    in its folder: a frame's entry names that frame's own ``frame_NNNNNN.png``, an artifact's entry its own
    name (see :func:`plain_artifact_name`); the tables and the common values have their types (an engine's
    ``state`` is its own to check)."""
    for name, kind in (("config", dict), ("source", dict), ("styles", list), ("frames", dict), ("artifacts", dict),
                       ("encoded", list), ("settings_hash", str)):
        if data.get(name) is not None and not isinstance(data[name], kind):
            return f"{name!r} is not a {kind.__name__}"
    for key, entry in (data.get("frames") or {}).items():
        if not (isinstance(key, str) and key.isdigit() and key.isascii()):
            return f"frame key {key!r} is not a frame number"
        if not isinstance(entry, dict):
            return f"frame {key}: not a record"
        file = entry.get("file")
        if file is not None and file != FRAME_NAME.format(int(key)):
            return f"frame {key} names the file {file!r}, not {FRAME_NAME.format(int(key))!r}"
        if not isinstance(entry.get("status"), str):
            return f"frame {key}: no status"
        for field_name, kinds in (("key", str), ("shot", int), ("settings", dict), ("mask", str)):
            value = entry.get(field_name)
            if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
                return f"frame {key}: {field_name} {value!r:.40}"
    for name, entry in (data.get("artifacts") or {}).items():
        if not plain_artifact_name(name):
            return f"artifact {name!r:.60} is not a plain file name of the folder"
        if not isinstance(entry, dict) or entry.get("file") != name or not isinstance(entry.get("key"), str):
            return f"artifact {name!r}: not a record of that file"
    for entry in data.get("encoded") or []:
        if not isinstance(entry, (dict, str)):  # a str: before the videos carried a tag (never trusted now)
            return "an encoded video's record is not a record"
    return None


def plain_artifact_name(name) -> bool:
    """A file name an artifact may have: no folder, not hidden, not a frame's or the manifest's name."""
    return (isinstance(name, str) and name != "" and not name.startswith(".") and "/" not in name
            and "\\" not in name and "\0" not in name and os.path.basename(name) == name
            and name not in (".", "..") and not FRAME_RE.match(name) and name != MANIFEST)


def manifest_files(manifest: dict | None) -> set[str]:
    """File names in the folder that the manifest says this tool wrote (frames, a sequence engine's
    artifacts, and the manifest itself): only names a checked manifest may hold, whatever the dict says."""
    if manifest is None:
        return set()
    names = {MANIFEST}
    frames = manifest.get("frames") or {}
    for key, entry in frames.items() if isinstance(frames, dict) else ():
        if isinstance(key, str) and key.isdigit() and isinstance(entry, dict) \
                and entry.get("file") == FRAME_NAME.format(int(key)):
            names.add(entry["file"])
    artifacts = manifest.get("artifacts") or {}
    for name, entry in artifacts.items() if isinstance(artifacts, dict) else ():
        if plain_artifact_name(name) and isinstance(entry, dict) and entry.get("file") == name:
            names.add(name)
    return names


def manifest_encoded(manifest: dict | None) -> set[str]:
    """Real paths of videos an earlier ``--encode`` of this folder wrote, by this user, and unchanged since
    (each record's tag checked against the file: :mod:`nst_plugin.signing`)."""
    from .signing import verify_file

    if manifest is None:
        return set()
    return {e["path"] for e in manifest.get("encoded") or []
            if isinstance(e, dict) and isinstance(e.get("path"), str) and verify_file(e["path"], e.get("tag"))}


@dataclass(frozen=True)
class Source:
    """A path a command reads. ``sequence``: a folder whose image files are the frames of a source."""

    path: str  # as the user gave it
    what: str  # "content image", "style image", "source", "--init image", ...
    sequence: bool = False

    @property
    def real(self) -> str:
        return real(self.path)


@dataclass(frozen=True)
class Destination:
    """A path a command writes.

    ``named``: the user typed it (``-o``, ``--loss-plot``, ``--encode``); otherwise the tool derived it.
    ``kind``: "file" or "folder". ``suffixes``: the file suffixes it may have. ``ours``: an existing file
    that an earlier run of this tool made (may be replaced); None lets :meth:`WritePlan.check` decide.
    """

    path: str
    what: str
    named: bool = True
    kind: str = "file"
    suffixes: tuple[str, ...] = ()
    ours: bool | None = None

    @property
    def real(self) -> str:
        return real(self.path)

    @property
    def label(self) -> str:
        return f"{self.what} {str(self.path)!r}"


@dataclass
class WritePlan:
    """Every path a command reads and writes; :meth:`check` refuses anything that could destroy user data."""

    sources: list[Source] = field(default_factory=list)
    destinations: list[Destination] = field(default_factory=list)
    overwrite: bool = False

    def read(self, path, what: str, sequence: bool = False) -> None:
        if path is not None and str(path) != "":
            self.sources.append(Source(os.path.expanduser(os.fspath(path)), what, sequence))

    def write(self, path, what: str, **kw) -> Destination:
        destination = Destination(os.path.expanduser(os.fspath(path)), what, **kw)
        self.destinations.append(destination)
        return destination

    # -- the checks -------------------------------------------------------------------------------------

    def check(self) -> "WritePlan":
        for d in self.destinations:
            self._check_suffix(d)
        for d in self.destinations:
            self._check_against_inputs(d)
        self._check_against_each_other()
        for d in self.destinations:
            self._check_existing(d)
        probed: set[str] = set()
        for d in self.destinations:
            self._check_writable(d, probed)
        return self

    def _check_suffix(self, d: Destination) -> None:
        if d.kind == "file" and d.suffixes and Path(d.path).suffix.lower() not in d.suffixes:
            raise UserError(f"{d.label} needs {'an image' if d.suffixes == IMAGE_SUFFIXES else 'a video'} suffix "
                            f"({', '.join(d.suffixes)})")

    def _check_against_inputs(self, d: Destination) -> None:
        target = d.real
        for s in sorted(self.sources, key=lambda s: not s.sequence):  # a source folder is named before its files
            source = s.real
            if target == source:
                if d.kind == "folder" and s.sequence:
                    raise UserError(f"{d.label} is the folder of the {s.what} {s.path!r}: its frames would be "
                                    "replaced; choose another output folder")
                if d.kind == "folder":
                    raise UserError(f"{d.label} is the {s.what} {s.path!r}, a file: choose an output folder")
                raise UserError(f"{d.label} is one of the input files (the {s.what} {s.path!r}): "
                                "choose another output path")
            if s.sequence and d.kind == "file" and os.path.dirname(target) == source \
                    and Path(target).suffix.lower() in IMAGE_SUFFIXES:
                raise UserError(f"{d.label} is inside the folder of the {s.what} {s.path!r}: it would become one "
                                "of its frames; choose another path")
            if d.kind == "folder" and not s.sequence and os.path.dirname(source) == target and (
                    FRAME_RE.match(os.path.basename(source)) or os.path.basename(source) == MANIFEST):
                raise UserError(f"{d.label} holds the {s.what} {s.path!r}, a name this command writes: "
                                "choose another output folder")
            if d.kind == "folder" and not s.sequence and os.path.dirname(source) == target \
                    and os.path.basename(source) in manifest_files(read_manifest(target)):
                raise UserError(f"{d.label} has a manifest that lists the {s.what} {s.path!r} as a file nst made: "
                                "it would be replaced or deleted; choose another output folder")

    def _check_against_each_other(self) -> None:
        seen: dict[str, Destination] = {}
        folders = [d for d in self.destinations if d.kind == "folder"]
        for d in self.destinations:
            target = d.real
            if target in seen:
                other = seen[target]
                raise UserError(f"{d.label} and {other.label} are the same file: choose different paths")
            seen[target] = d
            for folder in folders:
                if d is not folder and d.kind == "file" and d.named and os.path.dirname(target) == folder.real and (
                        FRAME_RE.match(os.path.basename(target)) or os.path.basename(target) == MANIFEST):
                    raise UserError(f"{d.label} would be overwritten by the frames or manifest of {folder.label}: "
                                    "choose another path")

    def _check_existing(self, d: Destination) -> None:
        path = Path(d.path)
        if d.kind == "folder":
            self._check_folder(d)
            return
        if not os.path.lexists(path):
            return
        if path.is_dir():
            raise UserError(f"{d.label} is a folder: give a file path")
        if d.named:
            if d.ours or self.overwrite:
                return
            raise UserError(f"{d.label} already exists: choose another path or add --overwrite")
        ours = d.ours
        if ours is None and d.path.endswith(".nst.json"):
            ours = is_our_metadata(path)
        if not ours:
            raise UserError(f"{d.label} exists and was not made by nst: move it away or choose another output")
        if not self.overwrite:
            raise UserError(f"{d.label} already exists: choose another path or add --overwrite")

    def _check_folder(self, d: Destination) -> None:
        path = Path(d.path)
        if not os.path.lexists(path):
            return
        if not path.is_dir():
            raise UserError(f"{d.label} is a file")
        manifest_file = path / MANIFEST
        manifest = read_manifest(path)
        if manifest is None and manifest_file.exists():
            raise UserError(f"{d.label} holds a {MANIFEST} that nst did not write: choose another output folder")
        listed = manifest_files(manifest)
        try:
            names = os.listdir(path)
        except OSError as exc:
            raise UserError(f"{d.label} cannot be read: {exc.strerror or exc}") from None
        foreign = sorted(n for n in names if FRAME_RE.match(n) and n not in listed)
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise UserError(f"{d.label} holds {len(foreign)} frame file(s) that no nst manifest there lists "
                            f"({shown}); they would be replaced: choose another output folder")

    def _check_writable(self, d: Destination, probed: set[str]) -> None:
        start = Path(d.real) if d.kind == "folder" else Path(d.real).parent
        ancestor = start
        while not ancestor.exists():
            if ancestor.parent == ancestor:
                break
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UserError(f"{d.label} cannot be created: {str(ancestor)!r} is a file, not a folder")
        key = str(ancestor)
        if key in probed:
            return
        if not os.access(ancestor, os.W_OK | os.X_OK) or not probe_writable(ancestor):
            where = "folder" if ancestor == start else "first existing folder above it"
            raise UserError(f"{d.label} cannot be written: the {where}, {key!r}, is not writable")
        probed.add(key)


def probe_writable(folder: Path) -> bool:
    """Create and remove a file in ``folder``: the one honest test of writability (root, read-only mounts)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".nst-write-test-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:
        pass
    return True


# -- the plans of the commands ----------------------------------------------------------------------------

def _init_path(init) -> str | None:
    if init is None or str(init) in ("noise", "content"):
        return None
    return str(init)


def image_plan(content, styles: Iterable, output, loss_plot=None, init=None, overwrite: bool = False,
               settings_file=None) -> WritePlan:
    """``nst image``: reads the content, the styles, an ``--init`` image and a ``--settings`` file; writes the
    output image, its ``.nst.json``, the loss plot (and temporary files beside each, in the same folders)."""
    plan = WritePlan(overwrite=overwrite)
    plan.read(settings_file, "settings file")
    plan.read(content, "content image")
    for style in styles:
        plan.read(style, "style image")
    plan.read(_init_path(init), "--init image")
    out = Path(os.path.expanduser(os.fspath(output)))
    plan.write(out, "output", suffixes=IMAGE_SUFFIXES)
    plan.write(out.with_name(out.stem + ".nst.json"), "metadata file", named=False)
    if loss_plot is not None:
        plan.write(loss_plot, "--loss-plot", suffixes=IMAGE_SUFFIXES)
    return plan


def video_plan(source, styles: Iterable, output, encode=None, init=None, overwrite: bool = False,
               settings_file=None, mask=None) -> WritePlan:
    """``nst video`` / :func:`nst_plugin.video.stylize_video`: reads the source (a video file, or every file
    of an image sequence and its folders), the styles, an ``--init`` image, a ``--settings`` file and a
    ``--mask`` (its FrameSource); writes the output folder (its frames and manifest) and the ``--encode`` video."""
    plan = WritePlan(overwrite=overwrite)
    plan.read(settings_file, "settings file")
    _read_source(plan, source)
    if mask is not None:
        _read_source(plan, mask)
    for style in styles:
        plan.read(style, "style image")
    plan.read(_init_path(init), "--init image")
    folder = plan.write(output, "output folder", kind="folder")
    if encode is not None:
        ours = real(encode) in manifest_encoded(read_manifest(folder.path)) if os.path.lexists(
            os.path.expanduser(os.fspath(encode))) else None
        plan.write(encode, "--encode", suffixes=VIDEO_SUFFIXES, ours=ours)
    return plan


def _read_source(plan: WritePlan, source) -> None:
    """A FrameSource (its files, and the folders that hold them) or a path as typed."""
    kind = getattr(source, "kind", None)
    if kind == "camera":
        return
    if kind == "images":
        folders = []
        single = Path(os.path.expanduser(str(source.spec))).is_file()
        for _, path in source.files:
            plan.read(path, "source frame")
            if single:
                continue
            parent = os.path.dirname(os.path.abspath(os.path.expanduser(os.fspath(path))))
            if parent not in folders:
                folders.append(parent)
        for parent in folders:
            plan.read(parent, "source sequence", sequence=True)
        spec = Path(os.path.expanduser(str(source.spec)))
        if spec.is_dir():
            plan.read(spec, "source sequence", sequence=True)
        return
    spec = getattr(source, "spec", source)
    if spec is None:
        return
    path = Path(os.path.expanduser(str(spec)))
    if path.is_dir():
        plan.read(path, "source sequence", sequence=True)
        for child in sorted(path.iterdir()):
            if child.is_file():
                plan.read(child, "source frame")
    elif str(spec).isdigit() and not path.exists():
        return
    else:
        plan.read(path, "source")
