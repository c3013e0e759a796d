"""Blender tests: run with the interpreter of the bpy venv (``make test`` creates ``.venv-blender`` with
``bpy==5.0.1``), never in the engine's venv: bpy pins numpy 1.26.4, the engine needs numpy >= 2. The add-on
starts the engine with the engine venv's interpreter (``.venv/bin/python``), as it does in a real Blender."""

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# the engine never touches the network in tests: ImageNet's URL is a closed port, Keras' cache is private
os.environ["NST_VGG16_WEIGHTS_URL"] = "http://127.0.0.1:9/vgg16_notop.h5"

# Blender's user folders (preferences, extensions) in a temporary place, never the user's own
os.environ["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="nst-blender-user-")

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402

ADDON = "blender_addon"
SAMPLES = ROOT / "samples"
ENGINE_PYTHON = ROOT / ".venv" / "bin" / "python"
FAKE_ENGINE = Path(__file__).resolve().parent / "fake_engine.py"


@pytest.fixture(scope="session", autouse=True)
def keras_home(tmp_path_factory):
    os.environ["KERAS_HOME"] = str(tmp_path_factory.mktemp("keras"))


@pytest.fixture
def addon():
    addon_utils.enable(ADDON, default_set=True)
    bpy.ops.wm.read_homefile(use_empty=True)
    yield sys.modules[ADDON]
    from blender_addon import jobs

    jobs.cancel_running_job()
    addon_utils.disable(ADDON, default_set=True)


@pytest.fixture
def prefs(addon):
    return bpy.context.preferences.addons[ADDON].preferences


@pytest.fixture
def fake_python(tmp_path):
    """An 'interpreter' that behaves like ``python -m nst_plugin``: the fake engine (NST_FAKE_MODE)."""
    path = tmp_path / "fake-env" / "python"
    path.parent.mkdir()
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_ENGINE}" "$@"\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def listed(prefs, fake_python):
    """The fake engine checked (Check in the preferences): the panel's engines come from its listing."""
    prefs.python_path = fake_python
    assert bpy.ops.nst.check_engine() == {"FINISHED"}
    return prefs


@pytest.fixture
def edit(addon, tmp_path):
    """A saved .blend with the sample clip as a movie strip on channel 2 at frame 10, trimmed to its
    frames 3-5 (timeline 12-14), a colour strip on channel 3 over it, and the panel set for a tiny run."""
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "edit.blend"))
    scene = bpy.context.scene
    editor = scene.sequence_editor_create()
    strips = editor.strips
    movie = strips.new_movie(name="street", filepath=str(SAMPLES / "street.avi"), channel=2, frame_start=10)
    movie.frame_offset_start = 2
    movie.frame_final_duration = 3
    strips.new_effect(name="title", type="COLOR", channel=3, frame_start=1, length=100)
    editor.active_strip = movie
    settings = scene.nst
    settings.style_image = str(SAMPLES / "starry_night.jpg")
    settings.resolution, settings.size = "SIZE", 32  # small frames: the tests run the real engine
    settings.iterations = 2
    return scene


# -- drawing the panel and the preferences with a stand-in layout ---------------------------------------------

class StubLayout:
    """Stands in for a UILayout: accepts only UILayout's functions, checks props and operators exist."""

    FUNCTIONS = {f.identifier for f in bpy.types.UILayout.bl_rna.functions}

    def __init__(self, log):
        object.__setattr__(self, "log", log)

    def __getattr__(self, name):
        if name not in self.FUNCTIONS:
            raise AttributeError(f"UILayout has no {name}")

        def call(*args, **kwargs):
            if name == "prop":
                assert args[1] in args[0].bl_rna.properties, args[1]
                self.log.append(f"prop {kwargs.get('text', args[1])}")
            if name == "operator":
                module, op = args[0].split(".")
                getattr(getattr(bpy.ops, module), op).get_rna_type()
            if name == "label":
                self.log.append(kwargs.get("text", ""))
            if name == "progress":
                self.log.append("progress: " + kwargs.get("text", ""))
            if name == "template_icon":
                self.log.append(f"icon {kwargs.get('icon_value')}")
            return StubLayout(self.log)

        return call

    def __setattr__(self, name, value):
        assert name in ("enabled", "scale_y", "action", "active", "alert", "text"), name


def draw_panel():
    from types import SimpleNamespace

    log = []
    panel = SimpleNamespace(layout=StubLayout(log))
    context = SimpleNamespace(scene=bpy.context.scene, space_data=SimpleNamespace(view_type="SEQUENCER"))
    assert bpy.types.SEQUENCER_PT_nst.poll(context)
    bpy.types.SEQUENCER_PT_nst.draw(panel, context)
    return log


def draw_preferences(prefs):
    from types import SimpleNamespace

    log = []
    values = {name: getattr(prefs, name) for name in prefs.bl_rna.properties.keys() if name != "rna_type"}
    type(prefs).draw(SimpleNamespace(layout=StubLayout(log), bl_rna=prefs.bl_rna, **values), bpy.context)
    return log
