"""A third party's sequence engine gets everything a built-in one gets (issue 26): installed like a package
(a distribution with an entry point, on the path of this process and of every dask worker, never registered
in process), it is listed with its traits and options, takes --frame-settings because it declares that
trait, gets the source's own size because it declares that default, resumes, and runs on a real dask cluster
as one unit, with the frames one process makes. No engine name is written in the core, the CLI, the cluster
or the add-on.
"""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nst_plugin.testing import write_distribution
from test_video import error_lines, events_of, nst, street_frames, write_sequence

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--size", "48", "--iterations", "3", "--weights", "hed", "--tolerance", "0"]

CROSSFADE = '''
import time

from nst_plugin import EngineTraits, FrameControls, PluginOption, SequenceResult, hookimpl


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
        if resume.states:  # its own record of the frames it stylized, handed back to it alone
            context.emit(Warning("stylized before: " + ", ".join(str(i) for i, state in sorted(resume.states.items())
                                                                  if state.get("stylized"))))

        def finished(index):
            return index in resume.frames and resume.keys.get(index) == schedule.key(config, index)

        def key_of(index):
            return schedule.key(config, index)

        for index, frame in frames:
            if (index - 1) % self.every:
                pending.append((index, frame))
                continue
            if finished(index):
                image = resume.frames[index]()
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
                    mixed = np.rint((1 - t) * last.astype(np.float32) + t * image.astype(np.float32)).astype(np.uint8)
                    sink(between, FrameResult(image=mixed, stats={"key": key_of(between)}))
                    count += 1
            pending, last = [], image
        for between, frame in pending:  # after the last stylized frame: its look held
            if not finished(between):
                sink(between, FrameResult(image=last, stats={"key": key_of(between)}))
                count += 1
        return SequenceResult(frames=count, seconds=time.perf_counter() - started)


@hookimpl
def nst_register_engines(register):
    register("crossfade", Crossfade, "every n-th frame stylized, the frames between cross-faded",
             options=[PluginOption("every", int, 3, "stylize every n-th frame")],
             traits=EngineTraits(output_size="source", frame_settings=True, label="Crossfade",
                                 hint="Fast and rough: a few frames stylized, the rest blended"))
'''


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The engine's distribution, installed on a folder of sys.path (this process's and its children's)."""
    root = tmp_path_factory.mktemp("site")
    write_distribution(root, "nst_crossfade", CROSSFADE, {"crossfade": "nst_crossfade"})
    return root


@pytest.fixture
def on_path(installed, monkeypatch):
    monkeypatch.syspath_prepend(str(installed))
    return installed


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    frames = street_frames(ROOT / "samples", 7, size=64)
    write_sequence(folder / "seq", frames)
    return folder / "seq" / "####.png", ROOT / "samples" / "starry_night.jpg"


def frames_of(folder):
    from nst_plugin.images import load_image

    return {p.name: load_image(p) for p in sorted(Path(folder).glob("frame_*.png"))}


def test_it_is_listed_with_its_traits_and_options(on_path):
    listing = json.loads(nst("plugins", "--json").stdout)
    engine = listing["engines"]["crossfade"]
    assert engine["plugin"] == "crossfade" and engine["options"][0]["key"] == "every"
    assert engine["traits"] == {"output_size": "source", "frame_settings": True, "seekable": False,
                                "label": "Crossfade", "hint": "Fast and rough: a few frames stylized, the rest blended"}
    assert listing["engines"]["lbfgs"]["traits"]["frame_settings"] is True
    assert listing["engines"]["keyframes"]["traits"]["output_size"] == "source"


def test_it_takes_animated_settings_the_source_size_and_resumes(on_path, clip, tmp_path, monkeypatch):
    animated = tmp_path / "animated.json"
    animated.write_text(json.dumps({"4": {"strength": 0.9}}))
    args = ["video", clip[0], "-s", clip[1], "--engine", "crossfade", "--frame-settings", animated,
            "--progress", "jsonl", *TINY[2:]]  # no --size: the engine's own default, the source's
    whole = nst(*args, "-o", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output
    made = frames_of(tmp_path / "whole")
    assert len(made) == 7 and all(image.shape == (48, 64, 3) for image in made.values())  # the source's size
    records = json.loads((tmp_path / "whole" / "nst_manifest.json").read_text())["frames"]
    assert records["4"]["settings"]["strength"] == 0.9 and records["4"]["key"].startswith("weights")

    from nst_plugin import cli

    report = cli.JsonlProgress.__call__

    def interrupt(self, event):  # Ctrl-C once frame 3 is written (1 and 4 are, before it)
        report(self, event)
        if event.kind == "frame_done" and event.index == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.JsonlProgress, "__call__", interrupt)
    cut = nst(*args, "-o", tmp_path / "resumed")
    assert cut.exit_code == 130
    monkeypatch.setattr(cli.JsonlProgress, "__call__", report)
    resumed = nst(*args, "-o", tmp_path / "resumed")
    assert resumed.exit_code == 0 and events_of(resumed)[0]["resumed"] == 4, resumed.output
    warnings = [e["message"] for e in events_of(resumed) if e["event"] == "warning"]
    assert "stylized before: 1, 4" in warnings  # the engine's own state came back to it
    records = json.loads((tmp_path / "resumed" / "nst_manifest.json").read_text())["frames"]
    assert records["4"]["state"] == {"stylized": True} and "state" not in records["2"]
    again = frames_of(tmp_path / "resumed")
    assert sorted(again) == sorted(made) and all(np.array_equal(again[n], made[n]) for n in made)


def test_an_engine_without_the_trait_is_refused_animated_settings(on_path, clip, tmp_path):
    animated = tmp_path / "animated.json"
    animated.write_text(json.dumps({"2": {"strength": 0.9}}))
    result = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "out", "--engine", "keyframes", "--frame-settings",
                 animated, *TINY)
    lines = error_lines(result)
    assert result.exit_code == 2 and len(lines) == 1 and "crossfade and lbfgs engines" in lines[0], result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_it_runs_on_a_real_cluster_as_one_unit_with_the_single_process_frames(installed, on_path, clip, tmp_path):
    pytest.importorskip("distributed")
    from test_cluster import LocalDask

    env_path = os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")])
    os.environ["PYTHONPATH"], before = env_path, os.environ.get("PYTHONPATH")
    try:
        cluster = LocalDask(tmp_path / "dask", workers=2)  # its workers find the engine by its entry point
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before
    try:
        animated = tmp_path / "animated.json"
        animated.write_text(json.dumps({"4": {"strength": 0.9}}))
        args = ["video", clip[0], "-s", clip[1], "--engine", "crossfade", "--frame-settings", animated,
                "--option", "crossfade.every=2", "--progress", "jsonl", *TINY[2:]]
        single = nst(*args, "-o", tmp_path / "single")
        assert single.exit_code == 0, single.output
        spread = nst(*args, "-o", tmp_path / "spread", "--cluster", cluster.address)
        assert spread.exit_code == 0, spread.output
        got, expected = frames_of(tmp_path / "spread"), frames_of(tmp_path / "single")
        assert sorted(got) == sorted(expected) and len(got) == 7
        assert all(np.array_equal(got[name], expected[name]) for name in expected)
        assert [e["mode"] for e in events_of(spread) if e["event"] == "cluster"] == ["shipped frames"]
    finally:
        cluster.close()


# -- no engine named where it is not defined -----------------------------------------------------------------

ENGINE_NAMES = ("lbfgs", "keyframes")


def _string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_no_engine_is_named_in_the_core_the_cli_the_cluster_or_the_addon():
    """Engine names appear only where the engine is defined (config.py: the default of the engine setting, and
    the settings named like an engine, the keyframe engine's ``keyframes`` field)."""
    from nst_plugin.settings import SETTING_FIELDS

    where = [*ROOT.joinpath("nst_plugin").glob("*.py"), *ROOT.joinpath("nst_plugin", "video").glob("*.py"),
             *ROOT.joinpath("nst_plugin", "cluster").glob("*.py")]
    found = []
    for path in where:
        for line, text in _string_constants(path):
            if text.strip() in ENGINE_NAMES and not (path.name == "config.py" and (text == "lbfgs" or text in SETTING_FIELDS)):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert found == []


def test_the_cluster_imports_nothing_from_the_engines():
    for path in ROOT.joinpath("nst_plugin", "cluster").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                assert "builtin" not in module.lstrip(".").split("."), f"{path.name} imports {module}"
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("nst_plugin.builtin") for alias in node.names), path.name
