"""Run the nst-plugin engine in its own process and read its events without blocking. No bpy here.

The engine is ``<python> -m nst_plugin video ... --progress jsonl`` started with the interpreter of an
environment where nst-plugin is installed: TensorFlow never loads inside Blender. It runs as a
:class:`runner.Process` (its stdout: events, see docs/events.md; its stderr's last lines: the crash message);
the UI calls :meth:`EngineProcess.poll` from a timer on Blender's main thread.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import runner
from .progress import Progress
from .runner import last_error_line  # the reason of a failure, from the engine's last lines

INSTALL_HINT = ("install nst-plugin into a Python environment (python -m venv nst-env; "
                "nst-env/bin/pip install nst-plugin) and set its interpreter in the add-on's preferences "
                "or in the NST_PYTHON environment variable")

# The Keras backends the engine computes with (the preferences' "Compute with"): Keras' name -> (its name in
# words, the pip extra that installs it ("": the default install has it), what it is good for).
BACKENDS = {
    "tensorflow": ("TensorFlow", "", "CPU everywhere, NVIDIA GPUs on Linux"),
    "torch": ("PyTorch", "torch", "NVIDIA GPUs on Windows and Linux, Apple GPUs (MPS)"),
    "jax": ("JAX", "jax", "NVIDIA GPUs on Linux"),
}
DEFAULT_BACKEND = "tensorflow"
BACKEND_ENV = "KERAS_BACKEND"


def backend_problem(listing: dict | None, backend: str) -> str | None:
    """What stops the engine whose ``nst plugins --json`` is ``listing`` from computing with ``backend``, in
    a few words (``the engine has no PyTorch``), or None: it can (or there is no listing to tell)."""
    if not isinstance(listing, dict):
        return None
    words = BACKENDS.get(backend, (backend,))[0]
    installed = listing.get("backends", {}).get("installed") if isinstance(listing.get("backends"), dict) else None
    if not isinstance(installed, dict):  # an engine from before the backends: TensorFlow only
        return None if backend == DEFAULT_BACKEND else f"the engine (nst-plugin {listing.get('version', '?')}) " \
                                                        f"predates the choice of backend and has no {words}"
    return None if installed.get(backend) else f"the engine has no {words}"


# -- finding the engine -------------------------------------------------------------------------------------

@dataclass
class EngineInfo:
    python: str | None
    version: str | None = None  # e.g. "0.1.0"
    how: str = ""  # where it was found
    error: str | None = None
    runtime: str = ""  # what it computes with: "Keras 3.15.1 on torch 2.9.1, device cuda:0 (...)"

    @property
    def ok(self) -> bool:
        return self.python is not None and self.version is not None and self.error is None

    def describe(self) -> str:
        if self.ok:
            return f"nst-plugin {self.version} in {self.python} ({self.how})"
        return self.error or "engine not found"


def venv_python(folder) -> Path:
    """The interpreter of the virtual environment in ``folder``."""
    return Path(folder) / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _shebang_python(script: str) -> str | None:
    """The interpreter of a console script such as ``nst`` (its ``#!`` line), if it is a Python."""
    try:
        with open(script, "rb") as handle:
            first = handle.readline(500).decode("utf-8", "replace").strip()
    except OSError:
        return None
    if first.startswith("#!") and "python" in first:
        return first[2:].strip().split()[0]
    return None


def candidate_pythons(configured: str = "", addon_dir: str | os.PathLike | None = None,
                      environ=None) -> list[tuple[str, str]]:
    """Interpreters to try, in order, as (path, how it was found)."""
    environ = os.environ if environ is None else environ
    found: list[tuple[str, str]] = []
    if configured:
        found.append((os.path.expanduser(configured), "set in the preferences"))
    if environ.get("NST_PYTHON"):
        found.append((os.path.expanduser(environ["NST_PYTHON"]), "NST_PYTHON"))
    if addon_dir is not None:
        here = Path(addon_dir).resolve()
        for folder in (here.parent, here.parent.parent):  # a checkout: <repo>/blender_addon, <repo>/.venv
            found.append((str(venv_python(folder / ".venv")), f".venv next to the add-on ({folder})"))
    nst = shutil.which("nst", path=environ.get("PATH"))
    if nst:
        python = _shebang_python(nst)
        if python:
            found.append((python, f"the interpreter of {nst} on PATH"))
    seen, unique = set(), []
    for path, how in found:
        if path not in seen:
            seen.add(path)
            unique.append((path, how))
    return unique


def probe_engine(python: str, timeout: float = 60.0, backend: str | None = None) -> tuple[str | None, str, str | None]:
    """(version, runtime, None) if ``python -m nst_plugin --version`` works with ``backend`` (None: the
    environment's), else (None, "", the reason). ``runtime`` is what the engine says it computes with
    (``Keras 3.15.1 on jax 0.10.2, device cpu``; "" for an engine from before the backends)."""
    if not python:
        return None, "", "no interpreter set"
    if not os.path.isfile(python):
        return None, "", f"{python} does not exist"
    try:
        done = subprocess.run([python, "-m", "nst_plugin", "--version"], capture_output=True, text=True,
                              timeout=timeout, env=engine_environment(backend=backend))
    except (OSError, subprocess.SubprocessError) as exc:
        return None, "", f"{python} cannot run: {exc}"
    text = (done.stdout or "").strip().splitlines()
    first = text[-1].strip() if text else ""
    if done.returncode == 0 and first.startswith("nst-plugin"):
        head, _, runtime = first.partition(";")  # "nst-plugin 0.1.0; Keras 3.15.1 on jax 0.10.2, device cpu"
        return head.split()[-1], runtime.strip(), None
    last = last_error_line((done.stderr or "").splitlines()) or first or f"exit status {done.returncode}"
    return None, "", f"{python} has no working nst-plugin ({last})"


def engine_version(python: str, timeout: float = 60.0, backend: str | None = None) -> tuple[str | None, str | None]:
    """(version, None) if ``python -m nst_plugin --version`` works, else (None, the reason)."""
    version, _runtime, why = probe_engine(python, timeout, backend)
    return version, why


def plugin_list(python: str, backend: str | None = None, timeout: float = 120.0) -> dict | None:
    """The engine's ``nst plugins --json`` (it does not import a backend), or None."""
    import json

    try:
        done = subprocess.run([python, "-m", "nst_plugin", "plugins", "--json"], capture_output=True, text=True,
                              timeout=timeout, env=engine_environment(backend=backend))
        listing = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return listing if isinstance(listing, dict) else None


def backend_failure(python: str, backend: str | None, why: str) -> str | None:
    """One line (what to do included) when nst-plugin in ``python`` answers ``plugins --json`` although its
    ``--version`` failed (``why``) on ``backend``: it lacks that backend, or the backend does not start
    there; None when nst-plugin itself does not answer (the engine is not there)."""
    listing = plugin_list(python, backend) if backend else None
    if listing is None:
        return None
    words, extra, _good_for = BACKENDS.get(backend, (backend, backend, ""))
    problem = backend_problem(listing, backend)
    if problem is None:  # installed, yet it fails: say how, with the engine's own error line
        prefix = f"{python} has no working nst-plugin ("
        detail = why[len(prefix):-1] if why.startswith(prefix) and why.endswith(")") else why
        return f"the engine cannot compute with {words} ({detail})"
    return (f"{problem}: press Update to install it (or pip install 'nst-plugin[{extra}]' into {python}), "
            "or pick another backend in Compute with")


def find_engine(configured: str = "", addon_dir=None, environ=None, backend: str | None = None) -> EngineInfo:
    """The first candidate interpreter with a working nst-plugin, computing with ``backend`` (None: the
    environment's ``KERAS_BACKEND``); a configured one that fails is reported as such (no silent fall-back
    to another environment), and so is an engine without ``backend`` (its one line says how to get it)."""
    candidates = candidate_pythons(configured, addon_dir, environ)
    if configured:
        candidates = candidates[:1]
    reasons = []
    for python, how in candidates:
        version, runtime, why = probe_engine(python, backend=backend)
        if version:
            return EngineInfo(python, version, how, runtime=runtime)
        failure = backend_failure(python, backend, why) if os.path.isfile(python) else None
        if failure:
            return EngineInfo(python, None, how, error=failure)
        reasons.append(why)
    if configured:
        return EngineInfo(None, error=f"engine not found: {reasons[0]}; {INSTALL_HINT}")
    return EngineInfo(None, error=f"engine not found (no NST_PYTHON, no .venv next to the add-on, no nst on PATH); {INSTALL_HINT}")


def engine_environment(environ=None, backend: str | None = None) -> dict:
    """The environment of an engine process: Blender's own Python settings removed, quiet TensorFlow, the
    Keras backend (``KERAS_BACKEND``) set to ``backend`` when one is given, and ``python -m nst_plugin``
    never taken from an ``nst_plugin`` folder in the current directory (Python 3.11+: ``PYTHONSAFEPATH``),
    always the environment's own."""
    env = dict(os.environ if environ is None else environ)
    if backend:
        env[BACKEND_ENV] = backend
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONNOUSERSITE"):
        env.pop(key, None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ errors (grappler's) are not the job's
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONSAFEPATH"] = "1"
    return env


# -- the command --------------------------------------------------------------------------------------------

# The engine's setting names whose flag is not ``--`` + the name with dashes (only for engines without
# ``--settings``, see :func:`settings_flags`).
_FLAG_NAMES = {"max_evaluations": "--max-evals"}


def build_command(python: str, source: str, style: str, output: str, settings: dict | None = None,
                  frames: tuple[int, int] | None = None, overwrite: bool = False,
                  settings_file: str | os.PathLike | None = None) -> list[str]:
    """``python -m nst_plugin video SOURCE --style STYLE -o OUTPUT ... --progress jsonl``.

    The settings go in ``settings_file`` (``--settings PATH``, written by :func:`write_settings_file`);
    without one, as flags rebuilt from ``settings`` (the panel's names, see plan.engine_settings: preset,
    size, content_weight, style_weight, temporal_weight, preserve_color, iterations, extra_losses), for an
    engine that has no ``--settings`` yet."""
    argv = [python, "-m", "nst_plugin", "video", str(source), "--style", str(style), "--output", str(output),
            "--progress", "jsonl"]
    if settings_file is not None:
        argv += ["--settings", str(settings_file)]
    elif settings:
        from .plan import engine_settings

        argv += settings_flags(engine_settings(settings))
    if frames is not None:
        argv += ["--frames", f"{int(frames[0])}-{int(frames[1])}"]
    if overwrite:
        argv.append("--overwrite")
    return argv


def settings_flags(values: dict) -> list[str]:
    """The command-line flags that say what a ``--settings`` file with ``values`` (the engine's setting
    names) says: the fallback for an engine without ``--settings``."""
    argv = []
    for key, value in values.items():
        flag = _FLAG_NAMES.get(key, "--" + key.replace("_", "-"))
        if isinstance(value, bool):
            if value:
                argv.append(flag)
        elif isinstance(value, (list, tuple)):
            for item in value:
                argv += [flag, str(item)]
        elif isinstance(value, float):
            argv += [flag, repr(value)]
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def write_settings_file(values: dict, folder: str | os.PathLike | None = None) -> str:
    """Write an ``nst video --settings`` file (a JSON object of the engine's setting names) to a new private
    file in ``folder`` (default: the system's temporary folder) and return its path. The caller deletes it
    when the job ends (:func:`remove_settings_file`). Never put it in the output folder: the engine refuses
    folders that hold files that are not its own."""
    import json
    import tempfile

    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    handle, path = tempfile.mkstemp(prefix="nst-run-", suffix=".json", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(values, stream, indent=1, sort_keys=True)
    except BaseException:
        remove_settings_file(path)
        raise
    return path


def remove_settings_file(path) -> None:
    if path:
        try:
            os.remove(path)
        except OSError:
            pass


def remove_stale_settings_files(folder, older_than: float = 86400.0) -> int:
    """Remove settings files left in ``folder`` by a Blender that did not end its jobs (a crash);
    returns how many. Only the add-on's own ``nst-run-*.json`` files older than ``older_than`` seconds."""
    import glob

    if not folder:
        return 0
    removed, now = 0, time.time()
    for path in glob.glob(os.path.join(glob.escape(str(folder)), "nst-run-*.json")):
        try:
            if now - os.path.getmtime(path) > older_than:
                os.remove(path)
                removed += 1
        except OSError:
            pass
    return removed


_SETTINGS_SUPPORT: dict = {}  # interpreter -> whether its ``nst video`` takes --settings


def accepts_settings_file(python: str, refresh: bool = False, timeout: float = 60.0) -> bool:
    """Whether the engine's ``nst video --help`` lists ``--settings``; asked once per interpreter."""
    if not refresh and python in _SETTINGS_SUPPORT:
        return _SETTINGS_SUPPORT[python]
    try:
        done = subprocess.run([python, "-m", "nst_plugin", "video", "--help"], capture_output=True, text=True, check=False,
                              timeout=timeout, env=dict(engine_environment(), COLUMNS="200", NO_COLOR="1"))
        found = done.returncode == 0 and "--settings" in (done.stdout or "")
    except (OSError, subprocess.SubprocessError):
        found = False
    _SETTINGS_SUPPORT[python] = found
    return found


def forget_engine(python: str) -> None:
    """Forget what was asked of ``python`` (an engine that was just installed or updated)."""
    _SETTINGS_SUPPORT.pop(python, None)


# -- the process --------------------------------------------------------------------------------------------

class EngineProcess(runner.Process):
    """A running engine (a :class:`runner.Process`). ``poll()`` from the main thread returns the events that
    arrived since the last call (non-blocking) and keeps :attr:`progress` up to date; ``request_cancel()``
    stops it without blocking and ``cancel()`` blocking (SIGINT so the engine finishes cleanly, then
    terminate, then kill); ``crash_message()`` explains a failure in one line."""

    def __init__(self, argv: list[str], cwd: str | None = None, env: dict | None = None):
        super().__init__(argv, cwd=cwd, env=engine_environment() if env is None else env)
        self.progress = Progress()

    @property
    def process(self):
        """The engine's ``subprocess.Popen``."""
        return self.popen

    @property
    def stderr_tail(self):
        return self.tail

    def poll(self) -> list[dict]:
        events = []
        for stream, line in self.tick():
            if stream == runner.OUT:
                event = self.progress.feed(line)
                if event is not None:
                    events.append(event)
        outcome = self.outcome()
        if outcome is not None and self.progress.status in ("starting", "running"):
            self.progress.status = outcome.reason
        if outcome is not None and outcome.reason == "error" and self.progress.error is None:
            self.progress.error = self.crash_message()
            self.progress.status = "error"
        return events

    def wait(self, timeout: float | None = None, interval: float = 0.05, on_events=None) -> int | None:
        """Block until the process ended and its output was read (background mode), feeding events."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            events = self.poll()
            if on_events and events:
                on_events(events)
            if self.finished:
                events = self.poll()
                if on_events and events:
                    on_events(events)
                return self.returncode
            if deadline is not None and time.monotonic() > deadline:
                return None
            time.sleep(interval)

    def crash_message(self) -> str:
        code = self.returncode
        line = self.progress.error or last_error_line(list(self.tail))
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"engine crashed ({name})" + (f": {line}" if line else "")
        return f"engine failed (exit status {code})" + (f": {line}" if line else "")
