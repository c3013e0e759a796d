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

# the complete example engine of docs/plugins.md (hooks/nst-crossfade), installed here as a distribution
CROSSFADE = (ROOT / "hooks" / "nst-crossfade" / "nst_crossfade.py").read_text()


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
    assert engine["traits"] == {"output_size": "source", "frame_settings": True, "seekable": False, "style_masks": False,
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


def _nst_process(args, installed, tmp_path):
    """``nst`` in a process of its own, the engine's distribution on its path: the CLI's options are made when
    it starts, from the installed plugins."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "nst_plugin", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)


def test_its_option_has_a_flag_on_the_command_line_in_settings_files_and_python(installed, on_path, clip, tmp_path):
    shown = _nst_process(["video", "--help"], installed, tmp_path)
    assert shown.returncode == 0 and "--crossfade-every" in shown.stdout, shown.stderr
    assert "Crossfade engine: stylize every n-th frame." in " ".join(shown.stdout.split())
    listed = _nst_process(["plugins"], installed, tmp_path)
    assert "--crossfade-every, --option crossfade.every=<int> (default 3)" in listed.stdout, listed.stderr
    refused = _nst_process(["video", clip[0], "-s", clip[1], "-o", tmp_path / "out", "--engine", "crossfade",
                            "--crossfade-every", "0", *TINY], installed, tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == ["error: --crossfade-every '0': must be at least 1, got 0"]
    assert not (tmp_path / "out").exists()

    from nst_plugin.api import prepare
    from nst_plugin.settings import load_settings_file, overrides_from_settings

    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"engine": "crossfade", "crossfade_every": 4}))
    _, overrides = overrides_from_settings(load_settings_file(settings))
    assert overrides["options"] == {"crossfade.every": 4}
    config, _, _ = prepare(np.zeros((32, 32, 3), np.uint8), crossfade_every="5", engine="crossfade")
    assert config.option("crossfade.every") == 5  # typed by the option's declaration


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
    """Engine names appear only where the engine is defined (config.py: the default of the engine setting)."""
    where = [*ROOT.joinpath("nst_plugin").glob("*.py"), *ROOT.joinpath("nst_plugin", "video").glob("*.py"),
             *ROOT.joinpath("nst_plugin", "cluster").glob("*.py")]
    found = []
    for path in where:
        for line, text in _string_constants(path):
            if text.strip() in ENGINE_NAMES and not (path.name == "config.py" and text == "lbfgs"):
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


# -- an option's flag is checked when it is registered ----------------------------------------------------

@pytest.mark.parametrize("kind, flag, message", [
    ("engines", "--size", "already a setting or an option of nst video"),
    ("engines", "--overwrite", "already a setting or an option of nst video"),
    ("engines", "--content-weight", "already a setting or an option of nst video"),
    ("engines", "size", "must look like --some-name"),
    ("losses", "--my-loss-eps", "only an engine's options may"),
])
def test_a_flag_that_would_name_something_else_is_refused(kind, flag, message):
    from nst_plugin.errors import PluginError
    from nst_plugin.registry import PluginOption, Registry

    with pytest.raises(PluginError, match=message):
        Registry().registrar(kind, "p")("mine", object, options=[PluginOption("x", int, 1, "x", flag=flag)])


def test_two_engines_cannot_declare_one_flag():
    from nst_plugin.errors import PluginError
    from nst_plugin.registry import PluginOption, Registry

    registry = Registry()
    registry.registrar("engines", "first")("a", object, options=[PluginOption("x", int, 1, flag="--shared-flag")])
    with pytest.raises(PluginError, match="--shared-flag is declared twice: by engine 'a' .*'first'.* engine 'b'"):
        registry.registrar("engines", "second")("b", object, options=[PluginOption("y", int, 1, flag="--shared-flag")])


def test_a_repeated_option_converts_each_item_and_a_per_frame_one_leaves_the_folder_fingerprint():
    from nst_plugin.config import make_config
    from nst_plugin.registry import PluginOption, Registry
    from nst_plugin.validation import resolve_options

    registry = Registry()
    registry.registrar("engines", "p")("mine", object, options=[
        PluginOption("shot", int, (), flag="--mine-shot", repeat=True, per_frame=True),
        PluginOption("look", float, 1.0)])
    config = resolve_options(make_config(options={"mine.shot": ["3", "5"], "mine.look": "2"}), registry)
    assert config.options == {"mine.shot": (3, 5), "mine.look": 2.0}
    other_shots = resolve_options(make_config(options={"mine.shot": ["4"], "mine.look": "2"}), registry)
    other_look = resolve_options(make_config(options={"mine.shot": ["3", "5"], "mine.look": "3"}), registry)
    assert config.output_fingerprint() == other_shots.output_fingerprint()  # the engine keys its frames by it
    assert config.output_fingerprint() != other_look.output_fingerprint()
    assert config.fingerprint() != other_shots.fingerprint()  # the whole settings still differ
