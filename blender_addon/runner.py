"""The one runner of the add-on's background processes: Stylize, Preview Frame and Set Up Engine. No bpy here.

A :class:`Process` is one subprocess, started with its command, environment and working folder. Threads read
its output lines as they come; :meth:`Process.tick` hands them to the caller in order, on Blender's main thread
(``bpy.app.timers`` or a modal operator's timer drive the ticks in Blender; tests tick by hand). A cancel never
blocks the UI: :meth:`Process.request_cancel` sends the first of the process's signals and the ticks escalate,
``grace`` seconds apart (the engine: SIGINT, CTRL_BREAK_EVENT on Windows, so that it writes its last event and
keeps its frames; then terminate; then kill). :meth:`Process.cancel` does the same blocking, for Blender
quitting or loading another file. At the end :meth:`Process.outcome` says how it ended: the exit code and the
reason, ``ok``, ``interrupted`` (cancelled, exit 130 or 143, or ended by SIGINT or SIGTERM) or ``error`` with
the process's last error line.

:data:`JOBS` holds the running jobs by kind (``stylize``, ``preview``, ``setup``): at most one of each kind
runs at a time.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass

OUT, ERR = "out", "err"  # the stream a line came from
INTERRUPT, TERMINATE, KILL = "interrupt", "terminate", "kill"
ENGINE_SIGNALS = (INTERRUPT, TERMINATE, KILL)  # the engine ends cleanly on SIGINT (exit 130)
INTERRUPTED_CODES = (130, 143, -signal.SIGINT, -signal.SIGTERM)
BLOCKING_WAITS = (3.0, 5.0)  # seconds a blocking cancel waits after each signal that follows the first
TAIL = 200  # lines of the error stream kept for the error line
DRAIN = 5.0  # seconds the readers get after the process ended (a child of it may hold the pipes open)

STYLIZE, PREVIEW, SETUP = "stylize", "preview", "setup"
KINDS = (STYLIZE, PREVIEW, SETUP)


def last_error_line(lines) -> str | None:
    """The engine's last ``error: ...`` line, else its last traceback line (``SomeError: ...``), else its
    last non-empty line."""
    lines = [line.rstrip() for line in lines if line and line.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    for line in reversed(lines):
        head = line.split(":", 1)[0]
        if ":" in line and not line.startswith(" ") and (head.endswith("Error") or head.endswith("Exception")):
            return line.strip()
    return lines[-1].strip() if lines else None


@dataclass(frozen=True)
class Outcome:
    """How a process ended: its exit code (negative: the signal that ended it), the reason (``ok``,
    ``interrupted``, ``error``) and, for a process that failed without being cancelled, its last error line."""

    code: int | None
    reason: str
    error: str | None = None


class Process:
    """One subprocess: :meth:`start` it, :meth:`tick` it from the main thread (never blocks; returns the
    ``(stream, line)`` pairs that arrived since the last tick, ``stream`` :data:`OUT` or :data:`ERR`),
    :meth:`request_cancel` it, read its :meth:`outcome` once :attr:`finished`.

    ``signals`` are what a cancel sends, in order, ``grace`` seconds apart; ``merge_stderr`` puts stderr into
    stdout (one stream, in the order the process wrote it); ``error_line`` picks the reason of a failure from
    the last lines of the error stream (stderr, or the merged stream); ``clock`` times the escalation;
    ``keep_stdin``: a pipe to the process's stdin (``popen.stdin``; else it reads nothing)."""

    def __init__(self, argv, cwd=None, env: dict | None = None, *, signals=ENGINE_SIGNALS, grace: float = 10.0,
                 merge_stderr: bool = False, error_line=last_error_line, clock=time.monotonic,
                 keep_stdin: bool = False):
        self.argv = [str(a) for a in argv]
        self.cwd = None if cwd is None else str(cwd)
        self.env = env
        self.signals = tuple(signals)
        self.grace = grace
        self.merge_stderr = merge_stderr
        self.error_line = error_line
        self.clock = clock
        self.keep_stdin = keep_stdin
        self.tail: deque = deque(maxlen=TAIL)  # the error stream's last lines (filled by tick)
        self.cancelled = False
        self.popen: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._cancel_at: float | None = None
        self._sent = 0  # how many of the signals a cancel has sent
        self._ended_at: float | None = None

    # -- spawn ---------------------------------------------------------------------------------------------------

    def start(self) -> Process:
        """Start the process (OSError when it cannot: nothing runs then)."""
        kwargs = {}
        if os.name == "nt":  # its own process group, so that CTRL_BREAK_EVENT reaches it alone
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        self.popen = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.PIPE if self.keep_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if self.merge_stderr else subprocess.PIPE, text=True, encoding="utf-8",
            errors="replace", bufsize=1, **kwargs)
        streams = [(self.popen.stdout, OUT)] + ([] if self.merge_stderr else [(self.popen.stderr, ERR)])
        for stream, name in streams:
            thread = threading.Thread(target=self._read, args=(stream, name), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _read(self, stream, name: str) -> None:
        try:
            for line in iter(stream.readline, ""):
                self._lines.put((name, line.rstrip("\r\n")))
        except (OSError, ValueError):
            pass
        finally:
            try:
                stream.close()
            except OSError:
                pass

    # -- tick ----------------------------------------------------------------------------------------------------

    def tick(self) -> list[tuple[str, str]]:
        """Escalate a cancel that is due, and hand over the lines that arrived since the last tick, in order."""
        self._escalate()
        lines = []
        error_stream = OUT if self.merge_stderr else ERR
        while True:
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                break
            lines.append(item)
            if item[0] == error_stream:
                self.tail.append(item[1])
        return lines

    @property
    def returncode(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def finished(self) -> bool:
        """The process ended and every line it wrote was handed over (its readers get :data:`DRAIN` seconds
        after its end: a child that holds its pipes open does not keep it running)."""
        if self.popen is None or self.popen.poll() is None:
            return False
        if any(thread.is_alive() for thread in self._threads):
            if self._ended_at is None:
                self._ended_at = time.monotonic()
            if time.monotonic() - self._ended_at < DRAIN:
                return False
        return self._lines.empty()

    # -- cancel --------------------------------------------------------------------------------------------------

    def _send(self, what: str) -> None:
        try:
            if what == INTERRUPT:
                self.popen.send_signal(signal.CTRL_BREAK_EVENT if os.name == "nt" else signal.SIGINT)
            elif what == TERMINATE:
                self.popen.terminate()
            else:
                self.popen.kill()
        except (OSError, ValueError):  # it ended meanwhile
            pass

    def request_cancel(self) -> None:
        """Cancel without blocking: the first signal now; :meth:`tick` sends the next ones while the process
        still runs ``grace`` seconds later, and ``2 * grace`` seconds later."""
        if self.cancelled:
            return
        self.cancelled = True
        if not self.running or not self.signals:
            return
        self._cancel_at = self.clock()
        self._send(self.signals[0])
        self._sent = 1

    def _escalate(self) -> None:
        if self._cancel_at is None or self._sent >= len(self.signals) or not self.running:
            return
        waited = self.clock() - self._cancel_at
        due = self._sent
        while due < len(self.signals) and waited > due * self.grace:
            due += 1
        if due > self._sent:  # the last one due (a late tick goes straight to it)
            self._send(self.signals[due - 1])
            self._sent = due

    def cancel(self, grace: float | None = None) -> int | None:
        """Cancel and wait: each signal in turn, ``grace`` (default :attr:`grace`) seconds after the first, then
        :data:`BLOCKING_WAITS`. Returns the exit code (None: never started)."""
        self.cancelled = True
        if self.popen is None or self.popen.poll() is not None:
            return self.returncode
        waits = (self.grace if grace is None else grace,) + BLOCKING_WAITS
        for what, wait in zip(self.signals, waits):
            self._send(what)
            try:
                return self.popen.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self.popen.poll()

    # -- finish --------------------------------------------------------------------------------------------------

    def outcome(self) -> Outcome | None:
        """How the process ended, or None until it has :attr:`finished`."""
        if not self.finished:
            return None
        code = self.returncode
        if self.cancelled or code in INTERRUPTED_CODES:
            reason = "interrupted"
        elif code == 0:
            reason = "ok"
        else:
            reason = "error"
        error = None if self.cancelled or code == 0 else self.error_line(list(self.tail))
        return Outcome(code, reason, error)


# -- the running jobs -----------------------------------------------------------------------------------------

class Busy(RuntimeError):
    """A job of that kind runs already."""


class Jobs:
    """The running jobs by kind (:data:`KINDS`), at most one of each kind at a time. A job is any object with
    a ``running`` attribute: while it is true, another job of its kind is refused; once it is false, the job
    stays here (the panel shows how it ended) until its owner removes it or a new one takes its place."""

    def __init__(self):
        self._jobs: dict = {}

    @staticmethod
    def _kind(kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of job {kind!r} (one of {', '.join(KINDS)})")
        return kind

    def get(self, kind: str):
        """The job of ``kind``, running or ended and not yet removed; None."""
        return self._jobs.get(self._kind(kind))

    def busy(self, kind: str) -> bool:
        """Whether a job of ``kind`` runs."""
        job = self.get(kind)
        return job is not None and bool(job.running)

    def add(self, kind: str, job):
        """Make ``job`` the job of ``kind``; :class:`Busy` while another one of that kind runs."""
        if self.busy(kind) and self.get(kind) is not job:
            raise Busy(f"a {kind} job is running already")
        self._jobs[kind] = job
        return job

    def remove(self, kind: str, job=None) -> None:
        """Forget the job of ``kind`` (only if it is ``job``, when given)."""
        if job is None or self._jobs.get(self._kind(kind)) is job:
            self._jobs.pop(self._kind(kind), None)


JOBS = Jobs()
