"""The Blender add-on's job runner (blender_addon/runner.py) without Blender: real subprocesses (``python -c``)
ticked by hand, as Blender's timers tick them: their lines in order, a cancel that escalates within its
timeouts, the exit code and the reason, one running job of each kind."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from blender_addon import runner  # noqa: E402
from blender_addon.runner import Busy, Jobs, Outcome, Process  # noqa: E402

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals")

PY = sys.executable
IGNORE_SIGINT = "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
IGNORE_BOTH = IGNORE_SIGINT + "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
READY_THEN_SLEEP = "print('ready', flush=True); import time; time.sleep(60)"


def python(code, **kwargs) -> Process:
    return Process([PY, "-c", code], **kwargs).start()


def tick_until(process, predicate, timeout=20.0, lines=None):
    """Tick like a timer (every 20 ms) until ``predicate()``; the lines handed over go to ``lines``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = process.tick()
        if lines is not None:
            lines.extend(got)
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out")


def run_to_the_end(process, timeout=20.0):
    lines = []
    tick_until(process, lambda: process.finished, timeout, lines)
    return lines


def test_lines_arrive_in_order_on_ticks():
    code = ("import sys, time\n"
            "for i in range(40):\n"
            "    print(f'out {i}', flush=True)\n"
            "    if i % 10 == 0: print(f'err {i}', file=sys.stderr, flush=True); time.sleep(0.05)\n")
    process = python(code)
    lines = run_to_the_end(process)
    assert [text for stream, text in lines if stream == runner.OUT] == [f"out {i}" for i in range(40)]
    assert [text for stream, text in lines if stream == runner.ERR] == [f"err {i}" for i in (0, 10, 20, 30)]
    assert list(process.tail) == ["err 0", "err 10", "err 20", "err 30"]  # the error stream's last lines
    assert process.outcome() == Outcome(0, "ok", None)
    assert process.tick() == []  # everything was handed over once


def test_merged_stderr_keeps_the_order_the_process_wrote():
    code = ("import sys\n"
            "for i in range(6):\n"
            "    print(f'out {i}', flush=True); print(f'err {i}', file=sys.stderr, flush=True)\n")
    lines = run_to_the_end(python(code, merge_stderr=True))
    assert lines == [(runner.OUT, f"{s} {i}") for i in range(6) for s in ("out", "err")]


def test_ticks_never_block():
    process = python("import time; time.sleep(1.0); print('late', flush=True)")
    slowest = 0.0
    while not process.finished:
        started = time.perf_counter()
        process.tick()
        slowest = max(slowest, time.perf_counter() - started)
        assert process.outcome() is None or process.finished
        time.sleep(0.01)
    assert slowest < 0.2 and process.outcome().reason == "ok"


@pytest.mark.parametrize("code, expected", [
    ("import sys; sys.exit(0)", Outcome(0, "ok")),
    ("import sys; sys.exit(130)", Outcome(130, "interrupted", None)),  # the engine after SIGINT
    ("import sys; sys.exit(143)", Outcome(143, "interrupted", None)),  # the engine after SIGTERM
    ("import sys; print('warning: x', file=sys.stderr); print('error: no such style', file=sys.stderr); sys.exit(2)",
     Outcome(2, "error", "no such style")),
    ("raise RuntimeError('out of memory')", Outcome(1, "error", "RuntimeError: out of memory")),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", Outcome(-signal.SIGTERM, "interrupted", None)),
    ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", Outcome(-signal.SIGKILL, "error", None)),
])
def test_the_exit_code_and_the_reason(code, expected):
    process = python(code)
    run_to_the_end(process)
    assert process.outcome() == expected


def test_an_error_line_of_the_merged_stream_and_a_chosen_picker():
    code = "print('Collecting x'); print('ERROR: No matching distribution found for x'); raise SystemExit(1)"
    process = python(code, merge_stderr=True, error_line=lambda lines: lines[-1].split(": ", 1)[-1])
    run_to_the_end(process)
    assert process.outcome() == Outcome(1, "error", "No matching distribution found for x")


def test_a_cancel_ends_a_process_that_stops_on_sigint_with_interrupted():
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGINT, lambda *_: (print('done interrupted', flush=True), sys.exit(130)))\n"
            + READY_THEN_SLEEP)
    process = python(code)
    lines = []
    tick_until(process, lambda: (runner.OUT, "ready") in lines, lines=lines)
    started = time.perf_counter()
    process.request_cancel()
    assert time.perf_counter() - started < 0.1 and process.cancelled
    lines += run_to_the_end(process)
    assert lines[-1] == (runner.OUT, "done interrupted")
    assert process.outcome() == Outcome(130, "interrupted", None)


def test_a_cancel_escalates_to_terminate_after_grace_and_to_kill_after_twice_grace():
    """Ticked with a clock of our own: SIGINT at once, terminate once ``grace`` has passed, kill once twice
    ``grace`` has; nothing earlier."""
    now = [0.0]
    ignores_sigint = python(IGNORE_SIGINT + READY_THEN_SLEEP, grace=10.0, clock=lambda: now[0])
    lines = []
    tick_until(ignores_sigint, lambda: (runner.OUT, "ready") in lines, lines=lines)
    ignores_sigint.request_cancel()
    time.sleep(0.3)
    now[0] = 10.0  # exactly grace: not yet
    ignores_sigint.tick()
    time.sleep(0.3)
    assert ignores_sigint.running  # SIGINT ignored, nothing else sent
    now[0] = 10.01
    run_to_the_end(ignores_sigint, timeout=5)
    assert ignores_sigint.outcome() == Outcome(-signal.SIGTERM, "interrupted", None)

    now[0] = 0.0
    ignores_both = python(IGNORE_BOTH + READY_THEN_SLEEP, grace=10.0, clock=lambda: now[0])
    lines = []
    tick_until(ignores_both, lambda: (runner.OUT, "ready") in lines, lines=lines)
    ignores_both.request_cancel()
    now[0] = 15.0
    ignores_both.tick()  # terminate, ignored
    time.sleep(0.3)
    now[0] = 20.0
    ignores_both.tick()
    time.sleep(0.3)
    assert ignores_both.running
    now[0] = 20.01
    run_to_the_end(ignores_both, timeout=5)
    assert ignores_both.outcome() == Outcome(-signal.SIGKILL, "interrupted", None)


def test_a_late_tick_goes_straight_to_the_signal_that_is_due():
    now = [0.0]
    process = python(IGNORE_BOTH + READY_THEN_SLEEP, grace=1.0, clock=lambda: now[0])
    lines = []
    tick_until(process, lambda: (runner.OUT, "ready") in lines, lines=lines)
    process.request_cancel()
    now[0] = 60.0  # Blender was busy: the first tick after the cancel comes a minute later
    run_to_the_end(process, timeout=5)
    assert process.returncode == -signal.SIGKILL


def test_a_cancel_with_the_real_clock_kills_within_its_timeouts():
    process = python(IGNORE_BOTH + READY_THEN_SLEEP, grace=0.3)
    lines = []
    tick_until(process, lambda: (runner.OUT, "ready") in lines, lines=lines)
    started = time.monotonic()
    process.request_cancel()
    run_to_the_end(process, timeout=10)
    assert 0.6 <= time.monotonic() - started < 3.0  # kill after 2 x grace, not before
    assert process.outcome().reason == "interrupted"


def test_other_signals_terminate_first():
    """The set-up's steps (pip): terminate at once, kill ``grace`` seconds later."""
    process = python(READY_THEN_SLEEP, signals=(runner.TERMINATE, runner.KILL), grace=5.0)
    lines = []
    tick_until(process, lambda: (runner.OUT, "ready") in lines, lines=lines)
    process.request_cancel()
    run_to_the_end(process, timeout=4)
    assert process.outcome() == Outcome(-signal.SIGTERM, "interrupted", None)


def test_a_blocking_cancel_escalates_and_returns_the_exit_code():
    process = python(IGNORE_BOTH + READY_THEN_SLEEP)
    lines = []
    tick_until(process, lambda: (runner.OUT, "ready") in lines, lines=lines)
    started = time.monotonic()
    assert process.cancel(grace=0.2) == -signal.SIGKILL  # SIGINT 0.2 s, terminate 3 s, then kill
    assert 3.2 <= time.monotonic() - started < 8.0
    run_to_the_end(process)
    assert process.outcome().reason == "interrupted"
    assert process.cancel() == -signal.SIGKILL  # once ended: its code, nothing sent
    assert Process([PY]).cancel() is None  # never started


def test_a_cancel_after_the_end_changes_nothing_but_the_reason():
    process = python("print('hi')")
    run_to_the_end(process)
    process.request_cancel()
    assert process.outcome() == Outcome(0, "interrupted", None)  # cancelled: what the user asked for


def test_a_command_that_cannot_start_raises_and_runs_nothing(tmp_path):
    process = Process([str(tmp_path / "no-such-python"), "-c", "pass"])
    with pytest.raises(OSError):
        process.start()
    assert not process.running and not process.finished and process.tick() == []


def test_the_environment_and_the_working_folder(tmp_path):
    process = python("import os; print(os.getcwd()); print(os.environ['NST_TEST'])", cwd=tmp_path,
                     env=dict(os.environ, NST_TEST="seen"))
    lines = run_to_the_end(process)
    assert [text for _, text in lines] == [str(tmp_path.resolve()), "seen"]


def test_a_child_that_keeps_the_pipes_open_does_not_keep_the_process_running(monkeypatch):
    monkeypatch.setattr(runner, "DRAIN", 0.5)
    code = ("import subprocess, sys\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
            "print(child.pid, flush=True)")
    process = python(code)
    lines = run_to_the_end(process, timeout=10)
    os.kill(int(lines[0][1]), signal.SIGKILL)
    assert process.outcome() == Outcome(0, "ok", None)


# -- the running jobs ----------------------------------------------------------------------------------------------

def test_one_running_job_of_each_kind():
    jobs = Jobs()
    first = python(READY_THEN_SLEEP)
    second = python(READY_THEN_SLEEP)
    try:
        assert jobs.add(runner.STYLIZE, first) is first and jobs.get(runner.STYLIZE) is first
        assert jobs.busy(runner.STYLIZE) and not jobs.busy(runner.PREVIEW)
        with pytest.raises(Busy):
            jobs.add(runner.STYLIZE, second)  # a second of the same kind while one runs: refused
        assert jobs.get(runner.STYLIZE) is first
        jobs.add(runner.PREVIEW, second)  # another kind runs beside it
        assert jobs.get(runner.PREVIEW) is second
        first.request_cancel()
        run_to_the_end(first)
        assert not jobs.busy(runner.STYLIZE) and jobs.get(runner.STYLIZE) is first  # ended, kept until removed
        third = Process([PY, "-c", "pass"]).start()
        jobs.add(runner.STYLIZE, third)  # the ended one is replaced
        assert jobs.get(runner.STYLIZE) is third
        jobs.remove(runner.STYLIZE, first)  # not the job of that kind any more: nothing happens
        assert jobs.get(runner.STYLIZE) is third
        jobs.remove(runner.STYLIZE)
        assert jobs.get(runner.STYLIZE) is None and not jobs.busy(runner.STYLIZE)
        run_to_the_end(third)
    finally:
        for process in (first, second):
            process.cancel(grace=2.0)
    with pytest.raises(ValueError, match="unknown kind of job 'render'"):
        jobs.get("render")
    assert runner.KINDS == ("stylize", "preview", "setup") and isinstance(runner.JOBS, Jobs)
