"""The client side: connect (a LocalCluster, or an existing scheduler), check the workers, cut the job into
units, send them out and write what comes back.

:meth:`Connection.stylize_sequence` has the signature of a sequence engine, so ``stylize_video`` runs it in
place of ``nst_stylize_sequence``: same frames in, same ``sink`` (the output folder's atomic writes and
manifest, only here, on the client), same ``context`` (events, resume, artifact store).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Callable, Iterable

from .. import events
from ..errors import UserError
from .spec import INSTALL_HINT, ClusterSpec

POLL = 0.1  # seconds between looks at the queue when nothing came


def connect(spec: ClusterSpec, *, silence: bool = True) -> "Connection":
    """Start a LocalCluster (``spec.local``) or reach the scheduler at ``spec.address``, wait for a worker and
    check every worker's nst-plugin; one :class:`UserError` line when that fails."""
    deadline = time.monotonic() + spec.timeout
    if not spec.local:  # whatever answers there (or nothing): one line within spec.timeout, refused at once
        from .reach import look

        look(spec.address, spec.timeout, deadline)  # a plain socket: before dask's import
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError(f"--cluster needs dask.distributed, which is not installed: {INSTALL_HINT}") from None
    if silence:  # dask's own warnings (a lost connection, retries) would interleave with the progress display
        noisy = ("distributed", "tornado", "asyncio", "bokeh")
        for name in [*noisy, *(n for n in logging.root.manager.loggerDict if n.split(".")[0] in noisy)]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    cluster = None
    if spec.local:
        import importlib.util

        cores = os.cpu_count() or 1
        workers = spec.workers or max(1, cores // 2)
        threads = str(max(1, cores // workers))  # TensorFlow's threads: the cores shared out among the workers
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True,
            dashboard_address=":0" if importlib.util.find_spec("bokeh") else None,
            env={"TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": threads})
        client = Client(cluster)
    else:
        from .reach import start_client

        client = start_client(spec.address, spec.timeout, deadline)  # under the same deadline
    connection = Connection(spec, client, cluster)
    try:
        connection.check_workers()
    except BaseException:
        connection.close()
        raise
    return connection


class Connection:
    """A client of a dask cluster, ready to run jobs; a context manager that closes what it started."""

    def __init__(self, spec: ClusterSpec, client, cluster=None):
        self.spec, self.client, self.cluster = spec, client, cluster
        self.address = client.scheduler.address if spec.local else spec.address
        self.units: list[dict] = []  # the reports of the last job's units (worker, seconds, cache reuse)
        self.runtimes: dict[str, dict] = {}  # the last job's workers: what each computes on (backends.describe)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        for part in (self.client, self.cluster):
            if part is not None:
                try:
                    part.close()
                except Exception:  # a scheduler already gone: nothing left to close
                    pass

    @property
    def dashboard(self) -> str | None:
        import importlib.util

        if importlib.util.find_spec("bokeh") is None:
            return None
        try:
            return self.client.dashboard_link
        except Exception:
            return None

    def runtime(self) -> dict:
        """What the workers of the current (or last) job compute on, for the manifest's ``runtime`` record:
        ``backend``, ``version``, ``keras`` and ``device`` as :func:`nst_plugin.backends.describe` gives them
        (values that differ between workers joined with "; "), ``cluster`` (the scheduler's address) and
        ``workers`` ({worker: its describe()}), of the workers that reported so far (each does before its
        first frame: call it again as frames come for them all)."""
        runtimes = dict(sorted(self.runtimes.items()))
        summary = {}
        for key in ("backend", "version", "keras", "device"):
            values = list(dict.fromkeys(str(r[key]) for r in runtimes.values() if key in r))
            if values:
                summary[key] = "; ".join(values)
        return {**summary, "cluster": self.address, "workers": runtimes}

    def workers(self) -> dict:
        return self.client.scheduler_info(n_workers=-1).get("workers", {})

    def check_workers(self) -> None:
        """At least one worker, and every worker runs this nst-plugin version with the engines installed."""
        from .. import __version__
        from .worker import versions

        try:
            self.client.wait_for_workers(1, timeout=self.spec.timeout)
        except (TimeoutError, OSError):
            raise UserError(f"the dask cluster at {self.address} has no worker (waited {self.spec.timeout:g} s): "
                            "start one with `dask worker ADDRESS`") from None
        found = self.client.run(versions, on_error="return")
        for worker, answer in sorted(found.items()):
            if isinstance(answer, BaseException):
                raise UserError(f"dask worker {worker} cannot run nst-plugin ({type(answer).__name__}: {answer}): "
                                f"install nst-plugin {__version__} there")
            if answer.get("nst-plugin") != __version__:
                raise UserError(f"dask worker {worker} runs nst-plugin {answer.get('nst-plugin')}, this machine "
                                f"{__version__}: install the same version on every machine")
        self.engines = {worker: set(answer["engines"]) for worker, answer in found.items()}

    # -- a job ----------------------------------------------------------------------------------------------

    def _engine(self, config):
        from ..plugins import get_host

        return get_host().registry.get("engines", config.engine).factory(config)

    def check_job(self, config, source, schedule) -> None:
        """What this cluster refuses of a job, before its output folder is touched: an engine a worker lacks,
        and what the engine's own units cannot do (its ``check_units``)."""
        missing = sorted(w for w, names in self.engines.items() if config.engine not in names)
        if missing:
            raise UserError(f"dask worker {missing[0]} has no engine {config.engine!r} installed: install the same "
                            "plugins on every machine")
        check = getattr(self._engine(config), "check_units", None)
        if check is not None:
            check(config, source)

    def stylize_sequence(self, frames, styles, config, context, sink):
        """Run a sequence on the cluster: an engine that cuts its work into units (its ``stylize_units``) has
        them shipped by a :class:`Dispatch`; any other engine runs whole, as one unit on one worker."""
        engine = self._engine(config)
        workers = len(self.workers())
        context.emit(events.Cluster(address=self.address, workers=workers, dashboard=self.dashboard,
                                    mode="shipped frames"))
        self.runtimes = {}
        dispatch = Dispatch(self.client, context, sink, limit=max(2, 2 * workers), address=self.address,
                            runtimes=self.runtimes)
        try:
            plan = getattr(engine, "stylize_units", None) or _whole
            result = plan(dispatch, frames, styles, config, context)
        finally:
            dispatch.close()
            self.units = dispatch.reports
        return result


def _whole(dispatch: "Dispatch", frames, styles, config, context):
    """An engine that defines no units: the whole source, the finished frames and the animated settings
    shipped to one worker, which runs the engine as one process would; its frames stream back."""
    from ..result import SequenceResult
    from .units import WHOLE_EVENTS, SequenceUnit, ShippedResume
    from .worker import run_sequence

    started = time.perf_counter()
    resume = context.resume
    shipped = ShippedResume(done=sorted(resume.frames), images={i: load() for i, load in resume.frames.items()},
                            keys=dict(resume.keys), states=dict(resume.states))
    from ..style_masks import for_frames

    frames = list(frames)
    unit = SequenceUnit(number=0, frames=frames, resume=shipped, schedule=context.schedule or None,
                        forward=WHOLE_EVENTS, style_masks=for_frames(context, [i for i, _ in frames]))
    reports = []
    dispatch.run([(run_sequence, unit, styles, config)], on_done=reports.append)
    stats = dict(reports[0].get("stats") or {}) if reports else {}
    return SequenceResult(frames=len(dispatch.written), seconds=time.perf_counter() - started,
                          stats={**stats, "units": 1})


class Dispatch:
    """Units out, frames and events back: what an engine's ``stylize_units`` gets. :meth:`submit` one unit
    (``function(unit, *args, queue, version)`` runs on a worker; it returns a report dict, which goes to
    ``on_done`` here) and get its future, which may be another unit's argument; :meth:`run` a stream of them.
    At most ``limit`` units that carry frames are in flight (the source is read as they go); every frame that
    comes back goes to ``sink`` once, here (a unit run again after its worker died sends its frames again:
    they are dropped), and every frame a unit names in ``todo`` must come. ``event_filter``: the engine may
    change or drop (None) the events its units send before they are shown."""

    def __init__(self, client, context, sink, limit: int, address: str, runtimes: dict | None = None):
        from distributed import Queue

        self.client, self.context, self.sink, self.limit, self.address = client, context, sink, limit, address
        self.queue_name = f"nst-{uuid.uuid4().hex}"
        self.queue = Queue(self.queue_name, client=client)
        self.active: dict = {}  # future -> (unit, on_done, counted)
        self.units: dict[int, object] = {}
        self.written: set[int] = set()
        self.reports: list[dict] = []
        self.event_filter: Callable | None = None
        self.runtimes = {} if runtimes is None else runtimes  # {worker: what it computes on}, as they report
        self.warned: set[tuple] = set()  # the workers' warnings shown (each once a job, not once a worker)
        from .. import __version__

        self.version = __version__

    def submit(self, function: Callable, unit, *args, on_done: Callable | None = None, counted: bool = True):
        self.units[unit.number] = unit
        future = self.client.submit(function, unit, *args, self.queue_name, self.version, pure=False,
                                    key=f"nst-{type(unit).__name__}-{unit.number}-{uuid.uuid4().hex[:8]}")
        self.active[future] = (unit, on_done, counted)
        return future

    def run(self, tasks: Iterable[tuple], on_done: Callable | None = None) -> None:
        """Submit ``tasks`` (``(function, unit, *args)``, read lazily), at most ``limit`` at a time, and handle
        what comes back until every unit (these and those already in flight) is done; ``on_done(report)`` for
        each of these."""
        tasks = iter(tasks)
        exhausted = False
        while True:
            while not exhausted and sum(counted for _, _, counted in self.active.values()) < self.limit:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                else:
                    self.submit(*task, on_done=on_done)
            got = self._drain()
            finished = self._finished()
            if exhausted and not self.active:
                return
            if not got and not finished:
                time.sleep(POLL)

    def _drain(self) -> int:
        import json

        from .units import read_event, read_frame, show_warning

        try:
            messages = self.queue.get(batch=True)
        except (OSError, TimeoutError, KeyError) as exc:
            raise self._lost(exc) from None
        for message in messages:
            unit = self.units.get(message.get("unit"))
            if "runtime" in message:
                self.runtimes[message["worker"]] = json.loads(message["runtime"])
                continue
            if "warning" in message:
                seen = (message["warning"], message.get("category"))
                if seen not in self.warned:
                    self.warned.add(seen)
                    show_warning(message)
                continue
            if "event" in message:
                event = read_event(message)
                if self.event_filter is not None:
                    event = self.event_filter(event)
                if event is not None:
                    self.context.emit(event)
                continue
            if message["index"] in self.written or unit is None:
                continue  # sent again by a unit run again elsewhere
            index, result = read_frame(message)
            fix = getattr(unit, "fix_stats", None)
            if fix is not None:
                result.stats = fix(index, result.stats)
            self.written.add(index)
            self.sink(index, result)
            if hasattr(unit, "progress"):  # a chain: a second attempt continues after this frame
                self._record(unit, index, result)
        return len(messages)

    def _record(self, unit, index, result) -> None:
        from distributed import Variable

        from .worker import progress_name

        received = [i for i in unit.todo if i in self.written]
        try:
            Variable(progress_name(self.queue_name, unit.number), client=self.client).set(
                unit.progress(received, index, result))
        except (OSError, TimeoutError) as exc:
            raise self._lost(exc) from None

    def _finished(self) -> int:
        done = [f for f in self.active if f.done()]
        if not done and self.client.status not in ("running", "connecting"):
            raise self._lost(RuntimeError(self.client.status))
        for future in done:
            unit, on_done, _ = self.active[future]
            if future.status != "finished":
                error = future.exception() if future.status == "error" else None
                if error is None:
                    raise self._lost(RuntimeError(f"unit {unit.number} {future.status}"))
                raise error
            report = future.result()
            missing = set(unit.todo) - self.written
            if missing:  # its frames were put before it finished: they are in the queue
                deadline = time.monotonic() + 30
                while missing and time.monotonic() < deadline:
                    if not self._drain():
                        time.sleep(POLL)
                    missing = set(unit.todo) - self.written
                if missing:
                    raise RuntimeError(f"unit {unit.number} finished but frames {sorted(missing)[:5]} never came back")
            del self.active[future]
            self.units.pop(unit.number, None)  # and its frames: a late copy of one of them is dropped unread
            if hasattr(unit, "progress"):
                self._forget(unit)
            self.reports.append({k: v for k, v in report.items() if k not in ("image", "weights")})
            if on_done is not None:
                on_done(report)
        return len(done)

    def _forget(self, unit) -> None:
        from distributed import Variable

        from .worker import progress_name

        try:
            Variable(progress_name(self.queue_name, unit.number), client=self.client).delete()
        except Exception:  # nothing recorded, or the scheduler is going: nothing to keep either way
            pass

    def _lost(self, exc) -> UserError:
        return UserError(f"lost the dask scheduler at {self.address} ({type(exc).__name__}); the finished frames "
                         "are kept: run the same command again to resume")

    def close(self) -> None:
        """Cancel what is still in flight (Ctrl-C, an error) and let the queue go."""
        if self.active:
            try:
                self.client.cancel(list(self.active), force=True)
            except Exception:
                pass
        try:
            self.queue.close()
        except Exception:
            pass
