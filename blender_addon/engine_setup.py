"""Setting up the engine from Blender's preferences, without a terminal. No bpy here.

*Set Up Engine* makes a private virtual environment (``engine-env`` in the extension's user folder) with a
system Python 3.10-3.12 that it finds on its own (never Blender's own interpreter), ``pip install``s the
engine into it from the source the user picked (the package index, a local wheel or a local checkout), and
checks it with ``<env python> -m nst_plugin plugins --json``. Each step is a subprocess (a
:class:`runner.Process`) whose output goes to ``setup.log`` in that folder; :class:`SetupJob` runs the steps one
after the other without blocking (:meth:`SetupJob.poll` from a timer) and says where it is in one line. The
folder carries a marker file (:data:`MARKER`): *Update* reinstalls from the source it records, *Remove* deletes
only a folder that has it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import runner
from .engine_process import BACKENDS, backend_problem, engine_environment, venv_python
from .progress import format_duration

ADDON_ID = "nst_style_transfer"  # blender_manifest.toml's id: who made an environment
PACKAGE = "nst-plugin"  # the engine's name on the package index
FOLDER_NAME = "engine-env"
MARKER = ".nst-engine-env"  # JSON: made by the add-on, from which source, with which base Python
LOG_NAME = "setup.log"
CHECK_NAME = "plugins.json"  # the last step's answer (``nst plugins --json``)
SUPPORTED = ((3, 10), (3, 12))  # the engine's TensorFlow runs on these Pythons
BASE_NAMES = ("python3.11", "python3.12", "python3.10", "python3") + (("python", "py") if os.name == "nt" else ())
SOURCES = ("INDEX", "WHEEL", "CHECKOUT")
SIGNALS = (runner.TERMINATE, runner.KILL)  # how a cancel stops a step (pip cleans up on terminate)
OFFLINE_INDEX = ("the package index needs online access: allow it in Preferences > System > Network (Allow "
                 "Online Access), or pick a local wheel or checkout as the engine's source")


class SetupError(Exception):
    """A problem the user can fix; its text is the one-line report."""


# -- the base Python ------------------------------------------------------------------------------------------

_PROBE = ("import json, sys, venv, ensurepip; print(json.dumps({'version': list(sys.version_info[:2]), "
          "'executable': sys.executable, 'prefix': sys.prefix}))")


@dataclass(frozen=True)
class BasePython:
    executable: str  # the interpreter itself (not a launcher or a shim)
    version: tuple[int, int]
    how: str  # where it was found

    def describe(self) -> str:
        return f"Python {self.version[0]}.{self.version[1]} ({self.executable}, {self.how})"


def _version_text(version) -> str:
    return ".".join(str(v) for v in version)


def probe_python(path: str, timeout: float = 30.0) -> tuple[dict | None, str | None]:
    """({version, executable, prefix}, None) of an interpreter that has ``venv`` and ``ensurepip``, else
    (None, the reason)."""
    try:
        done = subprocess.run([path, "-c", _PROBE], capture_output=True, text=True, timeout=timeout,
                              env=engine_environment(), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"{path} cannot run ({getattr(exc, 'strerror', None) or exc})"
    try:
        info = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else None
    except (ValueError, IndexError):
        info = None
    if not isinstance(info, dict):
        lines = [line for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {done.returncode}"
        return None, f"{path} is not a usable Python with venv and ensurepip ({why})"
    return info, None


def _same_path(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return False


def find_base_python(configured: str = "", exclude_prefixes=(), environ=None, names=BASE_NAMES) -> BasePython:
    """The Python to make the environment with: ``configured`` (the Base Python preference) if set, else
    the first of ``names`` on PATH that is a Python 3.10-3.12 with venv. Interpreters whose ``sys.prefix``
    is one of ``exclude_prefixes`` (Blender's own Python) are never used. SetupError says why none fits."""
    environ = os.environ if environ is None else environ

    def check(path: str, how: str) -> tuple[BasePython | None, str | None]:
        info, why = probe_python(path)
        if info is None:
            return None, why
        version = tuple(info["version"])
        if any(_same_path(info["prefix"], prefix) for prefix in exclude_prefixes):
            return None, f"{path} is Blender's own Python, which cannot host the engine"
        if not SUPPORTED[0] <= version <= SUPPORTED[1]:
            return None, (f"{path} is Python {_version_text(version)}; the engine needs "
                          f"{_version_text(SUPPORTED[0])}-{_version_text(SUPPORTED[1])}")
        return BasePython(str(info["executable"] or path), version, how), None

    if configured:
        path = os.path.expanduser(configured)
        found, why = check(path, "Base Python in the preferences")
        if found is None:
            raise SetupError(f"Base Python: {why}")
        return found
    for name in names:
        path = shutil.which(name, path=environ.get("PATH"))
        if path:
            found, _ = check(path, f"{name} on PATH")
            if found is not None:
                return found
    raise SetupError(f"no Python {_version_text(SUPPORTED[0])}-{_version_text(SUPPORTED[1])} found on PATH "
                     f"({', '.join(names)}): install one, or set Base Python in the add-on's preferences")


# -- where the engine comes from ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Source:
    kind: str  # INDEX | WHEEL | CHECKOUT
    path: str = ""  # the wheel file or the checkout folder

    def describe(self) -> str:
        if self.kind == "INDEX":
            return f"{PACKAGE} from the package index"
        return f"the {'wheel' if self.kind == 'WHEEL' else 'checkout'} {self.path}"

    def check(self, online: bool) -> None:
        """SetupError when this source cannot be installed from now (offline index, missing file)."""
        if self.kind not in SOURCES:
            raise SetupError(f"unknown engine source {self.kind!r}")
        if self.kind == "INDEX":
            if not online:
                raise SetupError(OFFLINE_INDEX)
            return
        if not self.path:
            raise SetupError(f"choose the engine's {'wheel file' if self.kind == 'WHEEL' else 'checkout folder'}")
        if self.kind == "WHEEL" and not (os.path.isfile(self.path) and self.path.endswith(".whl")):
            raise SetupError(f"the engine's wheel {self.path} is not a .whl file")
        if self.kind == "CHECKOUT" and not os.path.isdir(self.path):
            raise SetupError(f"the engine's checkout {self.path} is not a folder")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path}

    @classmethod
    def from_dict(cls, data) -> Source | None:
        if not isinstance(data, dict) or data.get("kind") not in SOURCES:
            return None
        return cls(data["kind"], str(data.get("path") or ""))


def with_extra(target: str, backend: str | None) -> str:
    """``target`` (``nst-plugin``, a wheel, a checkout) with the pip extra of ``backend``:
    ``nst-plugin[torch]``, ``/w/nst_plugin-1-py3-none-any.whl[torch]``; TensorFlow (None) needs none."""
    extra = BACKENDS.get(backend or "", ("", ""))[1]
    return f"{target}[{extra}]" if extra else target


def pip_commands(python: str, source: Source, online: bool, update: bool = False,
                 backend: str | None = None) -> list[list[str]]:
    """The ``pip install`` command lines that put the engine from ``source`` into the environment of
    ``python``: ``pip install nst-plugin``, ``pip install WHEEL`` (its folder is ``--find-links``: a
    wheelhouse with the dependencies' wheels) or ``pip install CHECKOUT``. Offline (Blender's online
    access off) pip never reaches the network: ``--no-index``, so the dependencies (and a checkout's build
    tool) must come from a wheelhouse, the wheel's folder or pip's own ``find-links`` setting. An update
    upgrades, then reinstalls a local source (same version, new code) without touching its dependencies.
    ``backend`` (``torch``, ``jax``) adds its extra to the target (``nst-plugin[torch]``, ``CHECKOUT[torch]``)."""
    argv = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--progress-bar", "off"]
    if not online:
        argv.append("--no-index")
    if source.kind == "WHEEL":
        argv += ["--find-links", os.path.dirname(os.path.abspath(source.path))]
    target = with_extra(PACKAGE if source.kind == "INDEX" else os.path.abspath(source.path), backend)
    if not update:
        return [argv + [target]]
    commands = [argv + ["--upgrade", target]]
    if source.kind != "INDEX":
        commands.append(argv + ["--force-reinstall", "--no-deps", target])
    return commands


@dataclass(frozen=True)
class Step:
    label: str  # what the status line says, e.g. "installing the engine"
    argv: list
    capture: str | None = None  # a file in the folder for the step's stdout (else the log)


def setup_steps(folder, source: Source, online: bool, base: BasePython | None = None, update: bool = False,
                backend: str | None = None) -> list[Step]:
    """The steps of Set Up (``base`` given: make the environment first) or Update (``update``), installing
    what ``backend`` needs (its pip extra)."""
    python = str(venv_python(folder))
    steps = []
    if base is not None:
        steps.append(Step("creating the environment", [base.executable, "-m", "venv", str(folder)]))
    for argv in pip_commands(python, source, online, update, backend):
        steps.append(Step("installing the engine" if "--force-reinstall" not in argv else "reinstalling the engine", argv))
    steps.append(Step("checking the engine", [python, "-m", "nst_plugin", "plugins", "--json"], capture=CHECK_NAME))
    return steps


# -- the marker and the folder --------------------------------------------------------------------------------

def read_marker(folder) -> dict | None:
    """The marker of an environment the add-on made, or None (no marker, not ours, unreadable)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("made_by") == ADDON_ID else None


def write_marker(folder, source: Source, base: BasePython | None = None) -> None:
    """Claim ``folder`` for the add-on (made if missing), recording the source for Update. A folder that
    holds anything and no marker is someone else's: SetupError, nothing written."""
    folder = Path(folder)
    old = read_marker(folder)
    if folder.is_symlink() or folder.exists() and (not folder.is_dir() or (old is None and any(folder.iterdir()))):
        raise SetupError(f"{folder} already exists and was not made by the add-on: move it away first")
    folder.mkdir(parents=True, exist_ok=True)
    data = {"made_by": ADDON_ID, "format": 1, "source": source.to_dict(),
            "base_python": base.executable if base else (old or {}).get("base_python"),
            "created": (old or {}).get("created") or time.strftime("%Y-%m-%dT%H:%M:%S"),
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (folder / MARKER).write_text(json.dumps(data, indent=1), encoding="utf-8")


def recorded_source(folder) -> Source:
    """The source an environment was set up from (for Update); SetupError when there is none."""
    marker = read_marker(folder)
    if marker is None:
        raise SetupError(f"no engine environment made by the add-on in {folder}: press Set Up Engine")
    source = Source.from_dict(marker.get("source"))
    if source is None:
        raise SetupError(f"{Path(folder) / MARKER} does not say where the engine came from: press Set Up Engine")
    return source


def remove_environment(folder) -> threading.Thread:
    """Delete an environment the add-on made: refused (SetupError, nothing touched) for a folder without
    the add-on's marker, a link, or a file. The folder is renamed at once and deleted in a background
    thread (returned; a large environment takes a while)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise SetupError(f"{folder} is not an engine environment folder: nothing removed")
    if read_marker(folder) is None:
        raise SetupError(f"{folder} was not made by the add-on (no {MARKER} file): nothing removed")
    trash = folder.with_name(f"{folder.name}.removing-{os.getpid()}-{time.monotonic_ns()}")
    try:
        os.rename(folder, trash)
    except OSError as exc:
        raise SetupError(f"cannot remove {folder} ({exc.strerror or exc})") from None
    thread = threading.Thread(target=shutil.rmtree, args=(trash,), kwargs={"ignore_errors": True}, daemon=True)
    thread.start()
    return thread


# -- what pip is doing ----------------------------------------------------------------------------------------

_PIP_PATTERNS = (
    (re.compile(r"^Collecting (\S+)"), "collecting {0}"),
    (re.compile(r"^Downloading (\S+)(?: \(([^)]*)\))?"), "downloading {0}"),
    (re.compile(r"^Processing (\S+)"), "unpacking {0}"),
    (re.compile(r"^Building wheels? for (\S+)"), "building {0}"),
    (re.compile(r"^Installing build dependencies"), "installing build dependencies"),
    (re.compile(r"^Installing collected packages: (.*)"), "installing {count} packages"),
    (re.compile(r"^Successfully installed (.*)"), "installed {0}"),
    (re.compile(r"^Requirement already satisfied: (\S+)"), "already there: {0}"),
)


def pip_activity(line: str) -> str | None:
    """A few words for the status line from one line of pip's output, or None for chatter."""
    text = line.strip()
    for pattern, template in _PIP_PATTERNS:
        match = pattern.match(text)
        if match:
            groups = [os.path.basename(g.rstrip("/\\")) if g and ("/" in g or "\\" in g) else g for g in match.groups()]
            count = len([p for p in (groups[0] or "").split(",") if p.strip()]) if groups else 0
            words = template.format(*groups, count=count)
            return words if len(words) <= 90 else words[:87] + "..."
    return None


def log_error(lines) -> str | None:
    """The reason a step failed, from its log lines: pip's last ``ERROR:`` line, else the engine's
    ``error:`` line or traceback, else the last line."""
    lines = [line.rstrip() for line in lines if line and line.strip()]
    for line in reversed(lines):
        if line.startswith("ERROR:"):
            return line[len("ERROR:"):].strip()
    from .engine_process import last_error_line

    return last_error_line(lines)


def read_check(folder) -> tuple[str, dict]:
    """(version, listing) from the check step's ``nst plugins --json``; SetupError when it is not that."""
    try:
        listing = json.loads((Path(folder) / CHECK_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        listing = None
    if not isinstance(listing, dict) or not isinstance(listing.get("version"), str):
        raise SetupError(f"the environment's nst_plugin did not answer 'plugins --json'; full log: "
                         f"{Path(folder) / LOG_NAME}")
    return listing["version"], listing


# -- the job --------------------------------------------------------------------------------------------------

class SetupJob:
    """The steps of a set-up or update, one :class:`runner.Process` after the other. ``poll()`` (from a timer)
    never blocks: it writes the step's new output to the log, starts the next step when one ended and keeps
    what pip is doing for :meth:`status_line`. ``state``: running, ok, failed, cancelled; ``error``: the one
    line of a failure (it names the log)."""

    def __init__(self, folder, steps: list[Step], title: str = "setting up the engine", env: dict | None = None,
                 clock=time.monotonic, backend: str | None = None):
        self.folder = Path(folder)
        self.steps = list(steps)
        self.title = title
        self.backend = backend  # the engine must have it at the end (None: not checked)
        self.env = dict(env if env is not None else engine_environment(backend=backend),
                        PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        self.clock = clock
        self.log_path = self.folder / LOG_NAME
        self.index = -1
        self.state = "starting"
        self.error: str | None = None
        self.activity = ""
        self.version: str | None = None
        self.listing: dict | None = None
        self.process: runner.Process | None = None
        self.cancelled = False
        self.grace = 5.0  # a cancel terminates the step, and kills it this many seconds later
        self._log = None
        self._capture = None
        self._started = None

    @property
    def python(self) -> str:
        return str(venv_python(self.folder))

    @property
    def done(self) -> bool:
        return self.state in ("ok", "failed", "cancelled")

    @property
    def running(self) -> bool:
        return not self.done

    def start(self) -> SetupJob:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "a", encoding="utf-8")
        self._log.truncate(0)
        self._log.write(f"# nst-plugin add-on: {self.title} in {self.folder} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        self._started = self.clock()
        self.state = "running"
        self._next()
        return self

    def _next(self) -> None:
        self.index += 1
        if self.index >= len(self.steps):
            self._succeed()
            return
        step = self.steps[self.index]
        self.activity = ""
        self._log.write(f"\n$ {shlex.join(str(a) for a in step.argv)}\n")
        self._log.flush()
        try:
            self._capture = open(self.folder / step.capture, "w", encoding="utf-8") if step.capture else None
            # stdout and stderr into the log in the order the step wrote them; a captured stdout apart
            self.process = runner.Process(step.argv, cwd=self.folder, env=self.env, signals=SIGNALS, grace=self.grace,
                                          merge_stderr=step.capture is None, error_line=log_error,
                                          clock=self.clock).start()
        except OSError as exc:
            self._log.write(f"cannot start {step.argv[0]}: {exc}\n")
            self._fail(f"cannot start {step.argv[0]} ({exc.strerror or exc})")

    def _take(self, lines) -> None:
        """A step's new output: its captured stdout to its file, the rest to the log and the status line."""
        for stream, line in lines:
            if stream == runner.OUT and self._capture is not None:
                self._capture.write(line + "\n")
                continue
            self._log.write(line + "\n")
            words = pip_activity(line)
            if words:
                self.activity = words
        if lines:
            self._log.flush()

    def poll(self) -> str:
        """Advance the job without blocking; returns its state."""
        if self.state != "running":
            return self.state
        self._take(self.process.tick())
        outcome = self.process.outcome()
        if outcome is None:
            return self.state
        if self._capture is not None:
            self._capture.close()
            self._capture = None
        if self.cancelled:
            self._end("cancelled", f"{self.title} cancelled; log: {self.log_path}")
        elif outcome.code != 0:
            step = self.steps[self.index]
            reason = (outcome.error or f"exit status {outcome.code}").rstrip(".")
            reason = reason if len(reason) <= 160 else reason[:157] + "..."
            self._fail(f"{step.label} failed: {reason}; full log: {self.log_path}")
        else:
            self._next()
        return self.state

    def _succeed(self) -> None:
        try:
            self.version, self.listing = read_check(self.folder)
        except SetupError as exc:
            self._fail(str(exc))
            return
        problem = backend_problem(self.listing, self.backend) if self.backend else None
        if problem:
            extra = BACKENDS.get(self.backend, ("", self.backend))[1]
            self._fail(f"{problem} after installing it (does the source offer nst-plugin[{extra}]?); "
                       f"full log: {self.log_path}")
            return
        self._end("ok")

    def _fail(self, message: str) -> None:
        self._end("failed", message)

    def _end(self, state: str, error: str | None = None) -> None:
        self.state, self.error = state, error
        if self._log is not None:
            self._log.write(f"\n# {state}" + (f": {error}" if error else "") + "\n")
            self._log.close()
            self._log = None

    def cancel(self) -> None:
        """Stop the running step (terminate, kill after ``grace`` seconds); the job ends as cancelled."""
        if self.done:
            return
        self.cancelled = True
        if self.process is not None:
            self.process.grace = self.grace
            self.process.request_cancel()

    def wait(self, timeout: float | None = None, interval: float = 0.1) -> str:
        """Block until the job ended (background mode and tests)."""
        deadline = None if timeout is None else self.clock() + timeout
        while self.poll() == "running":
            if deadline is not None and self.clock() > deadline:
                break
            time.sleep(interval)
        return self.state

    def status_line(self) -> str:
        """One line for the preferences: the step, its number, the time so far and what pip does."""
        if self.state == "ok":
            return f"engine ready: nst-plugin {self.version} in {self.python}"
        if self.state in ("failed", "cancelled"):
            return self.error or self.state
        if self.index < 0 or self.index >= len(self.steps):
            return f"{self.title}..."
        elapsed = format_duration(self.clock() - self._started) if self._started is not None else "?"
        text = f"{self.steps[self.index].label} (step {self.index + 1}/{len(self.steps)}, {elapsed})"
        if self.cancelled:
            text = "cancelling: " + text
        return f"{text}: {self.activity}" if self.activity else text
