"""Units run in this process, in order: the dispatch one machine uses (no dask). An engine's ``stylize_units``
runs unchanged on it, so one process makes its frames with the very unit functions a worker runs.

Each unit runs as it is submitted; its report is what :meth:`LocalDispatch.submit` returns (where a cluster
returns a future, which a later unit may take as an argument: dask gives that unit the report too).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable, Iterable


class LocalDispatch:
    """:class:`~nst_plugin.cluster.client.Dispatch`'s interface, in process: units run with the run's own
    ``context`` (its host, cache and events: every event, not only those a worker forwards) and their frames
    go to ``sink`` once each."""

    in_process = True  # an engine may share memory with its units (its run's caches)

    def __init__(self, context, sink):
        from .. import __version__

        self.context, self.sink, self.version = context, sink, __version__
        self.written: set[int] = set()
        self.reports: list[dict] = []
        self.event_filter: Callable | None = None

    def submit(self, function: Callable, unit, *args, on_done: Callable | None = None, counted: bool = True):
        report = function(unit, *args, self, self.version)
        missing = set(unit.todo) - self.written
        if missing:
            raise RuntimeError(f"unit {unit.number} finished but frames {sorted(missing)[:5]} were not made")
        self.reports.append({k: v for k, v in report.items() if k not in ("image", "weights", "model")})
        if on_done is not None:
            on_done(report)
        return report

    def run(self, tasks: Iterable[tuple], on_done: Callable | None = None) -> None:
        for task in tasks:
            self.submit(*task, on_done=on_done)

    def channel(self, unit) -> "LocalChannel":
        return LocalChannel(self, unit)

    def close(self) -> None:
        pass


class LocalChannel:
    """A unit's way back (see :class:`~nst_plugin.cluster.worker.UnitRun`), in process."""

    cached = True
    address = "this process"

    def __init__(self, dispatch: LocalDispatch, unit):
        self.dispatch, self.unit, self.started = dispatch, unit, time.perf_counter()

    @property
    def cache(self) -> dict:
        return self.dispatch.context.cache

    def styles(self, styles):
        return styles

    def progress(self):
        return None  # a unit runs once here: no earlier attempt

    def context(self, resume, schedule):
        """The run's context with the unit's events, resume and animated settings; no store (the engine's
        client side keeps what its units make)."""
        return replace(self.dispatch.context, on_event=self.event, resume=resume, schedule=schedule, store=None)

    def event(self, event) -> None:
        dispatch = self.dispatch
        if dispatch.event_filter is not None:
            event = dispatch.event_filter(event)
        if event is not None:
            dispatch.context.emit(event)

    def sink(self, index, result) -> None:
        dispatch = self.dispatch
        if index in dispatch.written:
            return
        fix = getattr(self.unit, "fix_stats", None)
        if fix is not None:
            result.stats = fix(index, result.stats)
        dispatch.written.add(index)
        dispatch.sink(index, result)

    def close(self) -> None:
        pass
