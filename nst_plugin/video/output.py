"""The resumable output folder: one PNG per frame (``frame_NNNNNN.png``, written atomically),
``nst_manifest.json``, and the files a sequence engine keeps there (its artifacts, see
:class:`~nst_plugin.context.ArtifactStore`). Output frame ``i`` is ``frame_{i:06d}.png``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import UserError
from ..images import load_image, save_image, write_atomic
from ..locking import FOLDER_LOCK, acquire
from ..safety import manifest_encoded, manifest_files, plain_artifact_name, probe_writable, read_manifest
from .sources import FrameSource

MANIFEST = "nst_manifest.json"
FRAME_NAME = "frame_{:06d}.png"
FRAME_RE = re.compile(r"^frame_(\d+)\.png$")
ARTIFACT_TMP_PREFIX = ".nst-artifact."  # + pid.random. + the artifact's name: its suffixes stay last


def image_digest(image: np.ndarray) -> str:
    image = np.ascontiguousarray(image)
    return hashlib.sha256(str(image.shape).encode() + image.tobytes()).hexdigest()[:16]


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


@dataclass
class FrameRecord:
    """A frame as the output folder keeps it (its manifest entry). From a finished frame's ``stats`` the folder
    reads ``seconds``, ``loss``, ``evaluations``, ``shot``, ``warm``, ``status`` (``ok``, or ``nan``: the loss
    turned non-finite), ``key`` (what its engine made it from: a frame whose key would differ is made again),
    ``frame_settings`` (the animated values it was made with), ``state``: the engine's own, any JSON, which
    a resumed run hands back to the engine alone (``context.resume.states``), and ``mask``: the digest of the
    mask frame it was composited with (``--mask``, :mod:`.masking`). Nothing else is kept."""

    file: str | None
    status: str = "done"  # "done", "writing" (listed before it is written), "unreadable"
    seconds: float = 0.0
    loss: float | None = None
    evaluations: int | None = None
    key: str | None = None
    shot: int | None = None
    warm: bool = False
    result: str = "ok"
    settings: dict | None = None
    state: Any = None
    message: str | None = None
    mask: str | None = None

    @classmethod
    def finished(cls, file: str, stats: dict) -> "FrameRecord":
        return cls(file=file, seconds=round(float(stats.get("seconds", 0.0)), 4), loss=_finite(stats.get("loss")),
                   evaluations=stats.get("evaluations"), key=stats.get("key"), shot=stats.get("shot"),
                   warm=bool(stats.get("warm")), result=stats.get("status", "ok"), settings=stats.get("frame_settings"),
                   state=_plain_json(stats.get("state")), mask=stats.get("mask"))

    @classmethod
    def read(cls, entry: dict) -> "FrameRecord":
        """From a checked manifest (:func:`nst_plugin.safety.check_manifest`): its known fields only."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in entry.items() if k in names})

    def to_json(self) -> dict:
        data = {"file": self.file, "status": self.status}
        if self.status == "done":
            data.update(seconds=self.seconds, loss=self.loss, evaluations=self.evaluations, key=self.key,
                        shot=self.shot, warm=self.warm, result=self.result)
            if self.settings is not None:
                data["settings"] = self.settings
            if self.state is not None:
                data["state"] = self.state
            if self.mask is not None:
                data["mask"] = self.mask
        if self.message is not None:
            data["message"] = self.message
        return data


class OutputFolder:
    """One PNG per frame (written atomically) plus ``nst_manifest.json``: the settings hash, the source,
    the style images' digests, per frame its status, seconds, loss and evaluations, and the artifacts a
    sequence engine keeps here (:meth:`get`, :meth:`put`: an :class:`~nst_plugin.context.ArtifactStore`).
    Re-running with the same settings resumes (artifacts included); other settings on a non-empty folder are
    refused unless ``overwrite``."""

    def __init__(self, path: str | os.PathLike, config, source: FrameSource, styles, overwrite: bool = False,
                 extra: dict | None = None):
        self.path = Path(path).expanduser().absolute()
        self.config = config
        self.header = {
            "format": "nst-video-manifest",
            "version": 1,
            "settings_hash": config.output_fingerprint(),
            "config": json.loads(json.dumps(config.to_dict(), default=str)),
            "styles": [image_digest(image) for image, _ in styles],
            "source": source.identity(),
            "step": source.step,
            "fps": source.fps,
            **(extra or {}),
        }
        self.frames: dict[int, FrameRecord] = {}
        self.leftovers: dict[int, FrameRecord] = {}  # listed as being written (a killed run's: still ours)
        self.artifacts: dict[str, dict] = {}  # name -> {"file", "key"} (+ "status": "writing" while written)
        self.encoded: list[dict] = []  # {"path": real path, "tag": signing.sign_file(...)}
        self._lock = None
        self._created = False  # this run made the folder
        self._disposable = False  # the manifest found here recorded nothing: close() may remove it
        self._prepare(overwrite)

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def frame_path(self, index: int) -> Path:
        return self.path / FRAME_NAME.format(index)

    def _prepare(self, overwrite: bool) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise UserError(f"output folder {str(path)!r} is a file")
        self._created = not os.path.lexists(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"output folder {str(path)!r} cannot be created: {exc.strerror or exc}") from None
        try:
            self._take(overwrite)
        except BaseException:
            self.close()
            raise

    def _take(self, overwrite: bool) -> None:
        """Lock the folder, then read what an earlier run left (checked: :func:`~nst_plugin.safety.read_manifest`)."""
        path = self.path
        if not os.access(path, os.W_OK | os.X_OK) or not probe_writable(path):
            raise UserError(f"output folder {str(path)!r} is not writable")
        self._lock = acquire(path / FOLDER_LOCK, f"output folder {str(path)!r}")
        # temporary files left by a killed process: of a frame, of the manifest, of an artifact
        for pattern in (".frame_*.png.*.part", f".{MANIFEST}.*.part", f"{ARTIFACT_TMP_PREFIX}*"):
            for stale in path.glob(pattern):
                stale.unlink(missing_ok=True)
        old = read_manifest(path)  # ours and well-formed, or None; a damaged one is refused here
        if old is None and os.path.lexists(self.manifest_path):
            raise UserError(f"output folder {str(path)!r} holds a {MANIFEST} that nst did not write: "
                            "choose another output folder")
        recorded = (old or {}).get("frames") or {}
        trusted = manifest_encoded(old)
        # frames being written when a run was killed: listed, so they stay ours (never foreign)
        self.leftovers = {int(k): FrameRecord(e["file"], "writing") for k, e in recorded.items()
                          if e.get("status") == "writing" and e.get("file")}
        self.encoded = [e for e in (old or {}).get("encoded") or [] if isinstance(e, dict) and e.get("path") in trusted]
        # artifacts (also one being written when a run was killed: it stays ours), while their files exist
        self.artifacts = {name: e for name, e in ((old or {}).get("artifacts") or {}).items() if _ours(path / name)}
        others = [p for p in path.iterdir() if p.name not in (MANIFEST, FOLDER_LOCK)]
        if old is None and others and not overwrite:
            raise UserError(f"output folder {str(path)!r} is not empty and holds no nst manifest: "
                            "choose an empty folder or add --overwrite")
        # a manifest that lists no frame file and no artifact holds nothing: its settings are no reason to refuse
        holds_work = any(e.get("file") for e in recorded.values()) or bool(self.artifacts)
        self._disposable = not (holds_work or any(recorded.values()) or self.encoded)  # close() may remove it
        if old is not None and not overwrite and holds_work:
            reasons = []
            if old.get("settings_hash") != self.header["settings_hash"]:
                reasons += _differences(old.get("config") or {}, self.header["config"]) or ["settings"]
            if old.get("styles") != self.header["styles"]:
                reasons.append("style images")
            if old.get("source") != self.header["source"]:
                reasons.append(f"source {(old.get('source') or {}).get('path')!r} -> {self.header['source']['path']!r}")
            if old.get("step") != self.header["step"]:
                reasons.append(f"step {old.get('step')} -> {self.header['step']}")
            if old.get("style_masks") != self.header.get("style_masks"):
                reasons.append("style masks")
            if reasons:
                shown = "; ".join(reasons[:4]) + ("; ..." if len(reasons) > 4 else "")
                raise UserError(f"output folder {str(path)!r} holds frames made with other settings ({shown}): "
                                "use another folder, or add --overwrite to replace them")
            for key, entry in recorded.items():
                if entry.get("status") == "done" and entry.get("file") and _ours(path / entry["file"]):
                    self.frames[int(key)] = FrameRecord.read(entry)
        if overwrite:  # only what the manifest lists as ours: never a file nst did not write
            for name in sorted(manifest_files(old) - {MANIFEST}):
                (path / name).unlink(missing_ok=True)
            self.frames, self.leftovers, self.artifacts = {}, {}, {}
        self._write_manifest()

    def close(self) -> None:
        """Let go of the folder. A run that recorded nothing leaves nothing behind: no manifest without
        frames, and not the folder if this run made it."""
        lock, self._lock = self._lock, None
        empty = not (self.frames or self.leftovers or self.artifacts or self.encoded)
        try:
            if lock is not None and lock.held and self._disposable and empty \
                    and self.manifest_path.is_file() and not self.manifest_path.is_symlink():
                self.manifest_path.unlink(missing_ok=True)
        finally:
            if lock is not None:
                lock.release()
        if self._created and empty:
            try:
                self.path.rmdir()  # only if empty
            except OSError:
                pass

    def __enter__(self) -> "OutputFolder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def done(self) -> dict[int, Callable[[], np.ndarray]]:
        """Finished frames: index -> a loader of the stylized frame (for the engine's warm start)."""
        return {index: (lambda p=self.frame_path(index): load_image(p, "finished frame"))
                for index, e in self.frames.items() if e.status == "done"}

    def done_keys(self) -> dict[int, str]:
        return {index: e.key for index, e in self.frames.items() if e.key is not None}

    def done_states(self) -> dict[int, Any]:
        return {index: e.state for index, e in self.frames.items() if e.state is not None}

    def resume(self):
        """What a resumed run hands the engine (:class:`~nst_plugin.context.Resume`)."""
        from ..context import Resume

        return Resume(frames=self.done(), keys=self.done_keys(), states=self.done_states())

    def add(self, index: int, image: np.ndarray, stats: dict) -> Path:
        path = self.frame_path(index)
        # listed before it exists, so a frame written by a run killed before its manifest update is still ours
        self.leftovers[index] = FrameRecord(path.name, "writing")
        self._write_manifest()
        save_image(path, image)
        self.leftovers.pop(index, None)
        self.frames[index] = FrameRecord.finished(path.name, stats)
        self._write_manifest()
        return path

    def mark(self, index: int, status: str, message: str) -> None:
        self.frames[index] = FrameRecord(None, status, message=message)
        self._write_manifest()

    def _write_manifest(self) -> None:
        frames = {**{k: v for k, v in self.leftovers.items() if k not in self.frames}, **self.frames}
        data = dict(self.header, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    frames={str(k): v.to_json() for k, v in sorted(frames.items())})
        if self.encoded:
            data["encoded"] = self.encoded
        if self.artifacts:
            data["artifacts"] = dict(sorted(self.artifacts.items()))
        write_atomic(self.manifest_path, (json.dumps(data, indent=1) + "\n").encode())

    def record_encoded(self, path: str | os.PathLike) -> None:
        """Remember a video an ``--encode`` of this folder wrote, tagged for this user and its content
        (:mod:`nst_plugin.signing`): a later run may replace it while it is unchanged."""
        from ..signing import sign_file

        resolved = os.path.realpath(os.path.expanduser(os.fspath(path)))
        self.encoded = [e for e in self.encoded if e.get("path") != resolved]
        tag = sign_file(resolved)
        if tag is not None:
            self.encoded.append({"path": resolved, "tag": tag})
        self._write_manifest()

    def finished_paths(self) -> list[tuple[int, Path]]:
        return [(i, self.path / e.file) for i, e in sorted(self.frames.items()) if e.status == "done"]

    # -- the artifact store (nst_plugin.context.ArtifactStore) ----------------------------------------------

    def _artifact_path(self, name: str) -> Path:
        if not plain_artifact_name(name):
            raise ValueError(f"artifact name {name!r} must be a plain file name: no folder, not hidden, not a "
                             f"frame_NNNNNN.png or {MANIFEST}")
        path = self.path / name
        if os.path.realpath(path) in {e.get("path") for e in self.encoded}:
            raise ValueError(f"artifact name {name!r} is the --encode video of this folder")
        return path

    def get(self, name: str, key: str) -> Path | None:
        """The artifact ``name`` if it was recorded with exactly ``key`` (and is whole), else None."""
        path = self._artifact_path(name)
        entry = self.artifacts.get(name)
        if entry is None or entry.get("status") == "writing" or entry.get("key") != key or not path.is_file():
            return None
        return path

    def put(self, name: str, key: str, write: Callable[[Path], None]) -> Path:
        """``write(tmp)`` to a hidden temporary file here whose name ends with ``name``, then rename it to
        ``name`` and record it with ``key``. Listed as "writing" first, so a run killed mid-way leaves nothing
        that is not known to be ours; a file of that name that nst did not write is never replaced."""
        path = self._artifact_path(name)
        if not isinstance(key, str):
            raise TypeError(f"the key of artifact {name!r} must be text, got {key!r}")
        before = self.artifacts.get(name)
        if before is None and os.path.lexists(path):
            raise UserError(f"output folder {str(self.path)!r} holds {name!r}, which nst did not write: "
                            "move it away or choose another output folder")
        self.artifacts[name] = {"file": name, "key": key, "status": "writing"}
        self._write_manifest()
        tmp = self.path / f"{ARTIFACT_TMP_PREFIX}{os.getpid()}.{secrets.token_hex(4)}.{name}"
        try:
            write(tmp)
            if not tmp.is_file():
                raise RuntimeError(f"writing artifact {name!r} left no file at the path it was given ({tmp.name})")
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            if before is None:  # nothing was replaced: the manifest says what is there
                self.artifacts.pop(name, None)
            else:
                self.artifacts[name] = before
            self._write_manifest()
            raise
        self.artifacts[name] = {"file": name, "key": key}
        self._write_manifest()
        return path


def _ours(path: Path) -> bool:
    """A file the manifest lists is used only while it is a plain file (nst never writes a link)."""
    return path.is_file() and not path.is_symlink()


def _plain_json(value):
    """An engine's state as plain JSON (numbers, text, lists, dicts): what the manifest can keep."""
    if value is None:
        return None
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def _finite(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if np.isfinite(value) else None
