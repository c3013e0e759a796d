"""nst-crossfade: a complete third-party sequence engine for nst-plugin, the example of docs/plugins.md.

Every n-th frame is stylized by the frame engine (``context.stylize_frame``: every loss, optimizer and
backbone plugin applies, with that frame's animated settings); the frames between are cross-faded. It declares
traits (the source's size by default, animated settings accepted) and one option (``--crossfade-every N``,
or ``--option crossfade.every=N``); the output folder resumes it (each frame's ``key``, its own ``state``), a dask cluster
runs it as one unit, and the Blender add-on lists it with its option.
"""

import time

from nst_plugin import EngineTraits, FrameControls, PluginOption, SequenceResult, bounded, hookimpl


class Crossfade:
    """Every n-th frame stylized (its own animated settings applied), the frames between cross-faded."""

    def __init__(self, config):
        self.every = config.option("crossfade.every", 3)

    def stylize_sequence(self, frames, styles, config, context, sink):
        import numpy as np

        from nst_plugin import FrameResult
        from nst_plugin.events import Warning

        started, count, pending, last = time.perf_counter(), 0, [], None
        schedule, resume = context.schedule, context.resume
        if resume.states:  # the state this engine recorded per frame, handed back to it alone
            stylized = [str(i) for i, state in sorted(resume.states.items()) if state.get("stylized")]
            context.emit(Warning("stylized before: " + ", ".join(stylized)))

        def key_of(index):  # what a frame is made from: its animated values (the schedule's key)
            return schedule.key(config, index)

        def finished(index):  # made by an earlier run from the same values: kept
            return index in resume.frames and resume.keys.get(index) == key_of(index)

        for index, frame in frames:
            if (index - 1) % self.every and last is not None:  # the run's first frame is always stylized
                pending.append((index, frame))
                continue
            if finished(index):
                image = resume.frames[index]()  # a resumed frame is loaded only when it is needed
            else:
                result = context.stylize_frame(frame, styles, schedule.config_at(config, index), index,
                                               FrameControls(max_iterations=config.iterations))
                result.stats.update(key=key_of(index), frame_settings=schedule.record(config, index),
                                    state={"stylized": True})
                sink(index, result)
                count += 1
                image = result.image
            for n, (between, _) in enumerate(pending, 1):
                if not finished(between):
                    t = n / (len(pending) + 1)
                    mixed = np.rint((1 - t) * last.astype(np.float32) + t * image.astype(np.float32))
                    sink(between, FrameResult(image=mixed.astype(np.uint8), stats={"key": key_of(between)}))
                    count += 1
            pending, last = [], image
        for between, _ in pending:  # after the last stylized frame: its look held
            if not finished(between):
                sink(between, FrameResult(image=last, stats={"key": key_of(between)}))
                count += 1
        return SequenceResult(frames=count, seconds=time.perf_counter() - started)


@hookimpl
def nst_register_engines(register):
    register("crossfade", Crossfade, "every n-th frame stylized, the frames between cross-faded",
             options=[PluginOption("every", bounded(int, 1), 3, "Stylize every n-th frame.", flag="--crossfade-every")],
             traits=EngineTraits(output_size="source", frame_settings=True, label="Crossfade",
                                 hint="Fast and rough: a few frames stylized, the rest blended"))
