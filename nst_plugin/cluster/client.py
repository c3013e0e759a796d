"""The client side: connect (a LocalCluster, or an existing scheduler), check the workers, cut the job into
units, send them out and write what comes back.

:meth:`Connection.stylize_sequence` has the signature of a sequence engine, so ``stylize_video`` runs it in
place of ``nst_stylize_sequence``: same frames in, same ``sink`` (the output folder's atomic writes and
manifest, only here, on the client), same ``context`` (events, resume, artifact store).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from dataclasses import replace
from typing import Callable, Iterable, Iterator

from .. import events
from ..errors import UserError
from .spec import INSTALL_HINT, ClusterSpec

CHUNK = 8  # frames per unit of the keyframe engine's last stage
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

    def stylize_sequence(self, frames, styles, config, context, sink):
        """Run a sequence on the cluster: the ``lbfgs`` chain by shots, the ``keyframes`` engine by keyframes,
        shots' training and chunks of frames. Other engines run in one process (refused here)."""
        if config.engine not in ("lbfgs", "keyframes"):
            raise UserError(f"--cluster runs the lbfgs and keyframes engines; engine {config.engine!r} runs on one "
                            "machine: leave out --cluster")
        if context.schedule:
            raise UserError("--frame-settings (animated settings) runs on one machine for now: leave out --cluster")
        if config.engine == "keyframes" and iter(frames) is frames:
            raise UserError("--cluster with the keyframe engine reads the source three times: give a video file or "
                            "an image sequence, not a camera")
        missing = sorted(w for w, names in self.engines.items() if config.engine not in names)
        if missing:
            raise UserError(f"dask worker {missing[0]} has no engine {config.engine!r} installed")
        workers = len(self.workers())
        context.emit(events.Cluster(address=self.address, workers=workers, dashboard=self.dashboard,
                                    mode="shipped frames"))
        self.runtimes = {}
        dispatch = _Dispatch(self.client, context, sink, limit=max(2, 2 * workers), address=self.address,
                             runtimes=self.runtimes)
        try:
            if config.engine == "lbfgs":
                result = _lbfgs(dispatch, frames, styles, config, context)
            else:
                result = _keyframes(dispatch, frames, styles, config, context)
        finally:
            dispatch.close()
            self.units = dispatch.reports
        return result


class _Dispatch:
    """Units out, frames and events back. At most ``limit`` units that carry frames are in flight (the
    source is read as they go); every frame that comes back goes to ``sink`` once, here (a unit run again
    after its worker died sends its frames again: they are dropped), and every unit's frames must come."""

    def __init__(self, client, context, sink, limit: int, address: str, runtimes: dict | None = None):
        from distributed import Queue

        self.client, self.context, self.sink, self.limit, self.address = client, context, sink, limit, address
        self.queue_name = f"nst-{uuid.uuid4().hex}"
        self.queue = Queue(self.queue_name, client=client)
        self.active: dict = {}  # future -> (unit, on_done, counted)
        self.units: dict[int, object] = {}
        self.written: set[int] = set()
        self.reports: list[dict] = []
        self.keyframes_done = self.keyframes_total = 0  # the keyframe engine's keyframes, over all workers
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

    def run(self, tasks: Iterable[tuple]) -> None:
        """Submit ``tasks`` (``(function, unit, *args)``, read lazily), at most ``limit`` at a time, and handle
        what comes back until every unit (these and those already in flight) is done."""
        tasks = iter(tasks)
        exhausted = False
        while True:
            while not exhausted and sum(counted for _, _, counted in self.active.values()) < self.limit:
                task = next(tasks, None)
                if task is None:
                    exhausted = True
                else:
                    self.submit(*task)
            got = self._drain()
            finished = self._finished()
            if exhausted and not self.active:
                return
            if not got and not finished:
                time.sleep(POLL)

    def _drain(self) -> int:
        import json

        from ..events import Keyframe
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
                if isinstance(event, Keyframe):  # numbered over the whole job, not per worker
                    if event.resumed:
                        continue
                    self.keyframes_done += 1
                    event = replace(event, done=self.keyframes_done, total=self.keyframes_total)
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


# -- the lbfgs chain: a shot is a unit -----------------------------------------------------------------------

def _lbfgs(dispatch: _Dispatch, frames, styles, config, context):
    from ..result import SequenceResult
    from .worker import run_shot

    started = time.perf_counter()
    cuts: list[int] = []
    shots = _shots(frames, config, context, cuts)
    tasks = ((run_shot, unit, styles, config) for unit in _shot_units(shots, context.resume))
    dispatch.run(tasks)
    return SequenceResult(frames=len(dispatch.written), seconds=time.perf_counter() - started,
                          stats={"cuts": cuts, "shots": len(cuts) + 1, "units": len(dispatch.reports)})


def _shots(frames, config, context, cuts: list) -> Iterator[list]:
    """The frames at the working size, shot by shot, cut where the chain cuts (the same detector on the same
    pictures), read as they are needed."""
    from ..images import resize
    from ..shots import ShotDetector

    detector = ShotDetector(config.cut_threshold)
    current: list = []
    for index, frame in frames:
        work = resize(frame, *config.working_shape(*frame.shape[:2]))
        if detector.is_cut(work):
            yield current
            cuts.append(index)
            context.emit(events.Cut(index=index, shot=len(cuts)))
            current = []
        current.append((index, work))
    if current:
        yield current


def _shot_units(shots: Iterator[list], resume) -> Iterator:
    """A unit per shot with unfinished frames: from the last finished frame before its first unfinished one
    (it seeds the warm start), with what the chain needs of the finished frames it holds."""
    from .units import ShippedResume, ShotUnit

    for number, frames in enumerate(shots):
        indices = [i for i, _ in frames]
        todo = [i for i in indices if i not in resume.frames]
        if not todo:
            continue
        start = max(0, indices.index(todo[0]) - 1)
        part = frames[start:]
        done = [i for i, _ in part if i in resume.frames]
        seeds = {i for i, nxt in zip(indices[start:], indices[start + 1:]) if i in resume.frames and nxt not in resume.frames}
        shipped = ShippedResume(done=done, images={i: resume.frames[i]() for i in seeds},
                                objectives={i: resume.objectives[i] for i in done if i in resume.objectives},
                                anchors={i: resume.anchors[i] for i in done if i in resume.anchors})
        yield ShotUnit(number=number, shot=number, frames=part, todo=todo, resume=shipped,
                       cut_index=indices[0] if number > 0 else None)


# -- the keyframe engine: keyframes, training per shot, chunks of frames -------------------------------------

def _keyframes(dispatch: _Dispatch, frames, styles, config, context):
    """The keyframe engine's four steps (builtin/keyframes/engine.py), its units on the cluster: the same
    plan, keys and resume rules, so the frames are the ones a single process makes."""
    from ..builtin.keyframes.engine import _Run, keyframes_read, plan_shots
    from ..images import load_image, save_image
    from ..result import SequenceResult
    from .units import FramesUnit, KeyframeUnit, TrainingUnit
    from .worker import run_frames, run_keyframe, run_training

    started = time.perf_counter()
    plan = plan_shots(frames, config, context)
    for shot in plan.shots[1:]:
        context.emit(events.Cut(index=shot.frames[0], shot=shot.number))
    run = _Run(config, styles, context, plan.shape, plan.starts)  # the keys, and what a resumed run finds in the store
    run.neighbour_flows = None  # the workers make the frames (and their filter's flows)
    store = context.store
    network_keys = {shot.number: run.network_key(shot.keyframes) for shot in plan.shots}
    frame_keys = {number: run.frames_key(key) for number, key in network_keys.items()}
    shot_number = {i: shot.number for shot in plan.shots for i in shot.frames}
    done = {i for i in context.resume.frames
            if i in shot_number and context.resume.keys.get(i) == frame_keys[shot_number[i]]}
    todo = [shot for shot in plan.shots if any(i not in done for i in shot.frames)]
    wanted = [k for shot in todo for k in shot.keyframes]
    sources = {index: (frame, guide) for index, frame, guide, _ in run.guided(frames, todo, until_keyframes=True)
               if index in wanted}  # the keyframes' source frames and guides
    todo, _ = keyframes_read(todo, sources, context)  # a keyframe the source no longer gives: its shot waits
    wanted = [k for shot in todo for k in shot.keyframes]
    numbers = itertools.count()  # the units' numbers

    # 1. keyframes, all at once; one that starts from the keyframe before it (plan.starts) once that one is made
    stylized = {}
    dispatch.keyframes_total = len(wanted)
    pending = [(shot, index) for shot in todo for index in shot.keyframes]
    while pending:
        ready = [(shot, index) for shot, index in pending if index not in plan.starts or plan.starts[index][0] in stylized]
        if not ready:  # (a keyframe before them all is in the same shot, made first: cannot happen)
            raise RuntimeError(f"keyframes {[index for _, index in pending]} wait for keyframes never made")
        pending = [item for item in pending if item not in ready]
        for shot, index in ready:
            name, key = f"keyframe_{index:06d}.png", run.keyframe_key(index)
            path = store.get(name, key) if store is not None else None
            if path is not None:
                stylized[index] = load_image(path, "keyframe")
                dispatch.keyframes_done += 1
                context.emit(events.Keyframe(index=index, shot=shot.number, seconds=0.0, done=dispatch.keyframes_done,
                                             total=len(wanted), resumed=True))
                continue

            def keep(report, index=index, name=name, key=key):
                stylized[index] = report["image"]
                if store is not None:
                    store.put(name, key, lambda p: save_image(p, report["image"]))

            frame = sources[index][0]
            unit = KeyframeUnit(next(numbers), shot.number, index, frame, len(wanted),
                                init=run.warm_start(index, frame, stylized))
            dispatch.submit(run_keyframe, unit, styles, config, plan.shape, on_done=keep, counted=False)
        dispatch.run(())

    # 2. one network per shot, each from the previous shot's (a chain of futures), weights kept by the client
    weights: dict[int, object] = {}
    previous = None
    for shot in todo:
        name, key = f"network_shot{shot.number:03d}.weights.h5", network_keys[shot.number]
        path = store.get(name, key) if store is not None else None
        if path is not None:
            weights[shot.number] = previous = path.read_bytes()
            context.emit(events.Training(shot=shot.number, step=0, total=run.settings.max_steps, loss=None,
                                         seconds=0.0, stopped="resumed"))
            continue

        def kept(report, name=name, key=key):
            if store is not None:
                store.put(name, key, lambda p: p.write_bytes(report["weights"]))

        pairs = {k: (*sources[k], stylized[k]) for k in shot.keyframes}
        unit = TrainingUnit(next(numbers), shot.number, pairs, key)
        weights[shot.number] = previous = dispatch.submit(run_training, unit, previous, styles, config, plan.shape,
                                                          on_done=kept, counted=False)

    # 3. every frame through its shot's network, in chunks with the temporal filter's margins (a third pass
    # over the source; the guides and the keyframes' texture follow every frame of a shot)
    shot_of = {index: shot for shot in todo for index in shot.frames}
    textures = {k: run.target(sources[k][0], stylized[k]) for k in wanted}

    def chunks():
        for part, emit in run.chunks(run.guided(frames, todo, textures=textures), shot_of, lambda i: i not in done,
                                     CHUNK):
            shot = shot_of[part[0][0]]
            unit = FramesUnit(next(numbers), shot.number, part, frame_keys[shot.number], shot.frames[0],
                              tuple(shot.keyframes), emit)
            yield (run_frames, unit, weights[shot.number], styles, config, plan.shape)

    dispatch.run(chunks())
    return SequenceResult(frames=len(dispatch.written), seconds=time.perf_counter() - started, stats={
        "skipped": sum(len(s.frames) for s in plan.shots) - len(dispatch.written),
        "cuts": [s.frames[0] for s in plan.shots[1:]], "shots": len(plan.shots), "keyframes": plan.keyframes,
        "units": len(dispatch.reports)})
