"""Set Up Engine, Update and Remove from the add-on's preferences in a real (headless) Blender: a private
environment made with a system Python, the engine installed offline from a local wheel (a stand-in
nst-plugin, see fake_engine_package.py), checked and made the add-on's interpreter; a broken source fails
in one line naming the log; Remove deletes only a folder the add-on made."""

import json
import os
import sys
import time
from pathlib import Path

import bpy
import pytest
from conftest import draw_preferences
from fake_engine_package import make_wheel


@pytest.fixture
def env_folder(prefs, monkeypatch):
    """The add-on's engine folder (in this session's private Blender user folder), absent before and after;
    pip without the machine's own configuration (no index, no find-links), as on an offline studio's."""
    from blender_addon import preferences, runner

    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"):
        monkeypatch.delenv(name, raising=False)
    folder = Path(preferences.engine_env_folder())
    assert not folder.exists()
    yield folder
    if preferences.SETUP is not None:
        preferences.SETUP.cancel()
        preferences.SETUP.wait(timeout=30)
        runner.JOBS.remove(runner.SETUP)  # SETUP is read from the runner's registry: assigning it would shadow that
    if folder.exists() and (folder / ".nst-engine-env").exists():
        bpy.ops.nst.remove_engine()
    for thread in preferences.REMOVING:
        thread.join(60)
    if folder.exists():  # a test's own foreign folder
        import shutil

        shutil.rmtree(folder)


def test_preferences_have_the_set_up_settings(prefs):
    for name in ("base_python", "engine_source", "engine_wheel", "engine_checkout", "setup_status", "python_path"):
        assert name in prefs.bl_rna.properties
    assert {i.identifier for i in prefs.bl_rna.properties["engine_source"].enum_items} == {"INDEX", "WHEEL", "CHECKOUT"}
    assert prefs.base_python == "" and prefs.engine_source == "INDEX"
    rna = bpy.ops.nst.setup_engine.get_rna_type()
    assert {i.identifier for i in rna.properties["action"].enum_items} == {"SETUP", "UPDATE"}
    assert bpy.ops.nst.remove_engine.get_rna_type() and bpy.ops.nst.cancel_setup.get_rna_type()


def test_set_up_update_and_remove_the_engine_from_a_local_wheel(prefs, env_folder, tmp_path):
    from blender_addon import preferences, props

    assert not bpy.app.online_access  # the bpy module's default: pip must not reach the network
    wheel = make_wheel(tmp_path / "wheelhouse")
    prefs.engine_source, prefs.engine_wheel = "WHEEL", str(wheel)
    assert "Set up the engine: a private Python environment with nst-plugin" in draw_preferences(prefs)

    # Set Up as the button does it: a background job followed by the timer, the preferences show its step
    job = preferences.start_setup(bpy.context)
    seen, slowest = set(), 0.0
    while True:
        lines = draw_preferences(prefs)
        seen.update(line for line in lines if "(step " in line)
        started = time.perf_counter()
        again = preferences.setup_tick()
        slowest = max(slowest, time.perf_counter() - started)
        if again is None:
            break
        time.sleep(0.2)
    assert slowest < 0.5  # the timer never waits for pip
    assert any(line.startswith("creating the environment (step 1/3") for line in seen), seen
    assert job.state == "ok" and preferences.SETUP is None
    python = env_folder / "bin" / "python"
    assert prefs.python_path == str(python)
    assert prefs.setup_status == f"engine ready: nst-plugin 0.0.1 in {python}"
    assert prefs.setup_status in draw_preferences(prefs)
    assert "stand-in" in props.PRESETS and "stand_in_loss" in props.LOSSES  # the Check logic ran on it
    assert prefs.last_check.startswith(f"nst-plugin 0.0.1 in {python} (set up by the add-on)")
    info = preferences.resolve_engine(bpy.context, refresh=True)
    assert info.ok and info.version == "0.0.1" and info.python == str(python)

    # private: Blender's user folder, never the add-on's folder; made with a system Python, not Blender's
    assert Path(bpy.utils.user_resource("DATAFILES")) in env_folder.parents
    marker = json.loads((env_folder / ".nst-engine-env").read_text())
    assert marker["source"] == {"kind": "WHEEL", "path": str(wheel)}
    assert marker["base_python"] and marker["base_python"] != sys.executable
    cfg = (env_folder / "pyvenv.cfg").read_text()
    assert str(Path(sys.prefix)) not in cfg  # not made from Blender's Python
    log = (env_folder / "setup.log").read_text()
    assert "--no-index" in log and "Successfully installed nst-plugin-0.0.1" in log

    # Update: the source the environment was made from, whatever the preferences say now
    prefs.engine_source = "INDEX"
    assert bpy.ops.nst.setup_engine(action="UPDATE") == {"FINISHED"}
    log = (env_folder / "setup.log").read_text()
    assert "-m venv" not in log and "--force-reinstall --no-deps" in log and str(wheel) in log
    assert prefs.setup_status.startswith("engine ready: nst-plugin 0.0.1")

    # Remove: the folder goes, the interpreter setting that pointed into it too
    assert bpy.ops.nst.remove_engine() == {"FINISHED"}
    assert not env_folder.exists() and prefs.python_path == ""
    for thread in preferences.REMOVING:
        thread.join(60)
    assert not list(env_folder.parent.glob("engine-env*"))
    with pytest.raises(RuntimeError, match="press Set Up Engine"):
        bpy.ops.nst.setup_engine(action="UPDATE")


def test_a_broken_source_fails_in_one_line_naming_the_log(prefs, env_folder, tmp_path):
    broken = tmp_path / "not-a-project"
    broken.mkdir()
    (broken / "README.txt").write_text("no pyproject.toml, no setup.py")
    prefs.engine_source, prefs.engine_checkout = "CHECKOUT", str(broken)
    prefs.python_path = "/somewhere/else/python"
    with pytest.raises(RuntimeError) as failed:
        bpy.ops.nst.setup_engine()
    message = str(failed.value)
    assert message.startswith("Error: installing the engine failed: ") and message.count("\n") == 1
    log = env_folder / "setup.log"
    assert message.rstrip("\n").endswith(f"; full log: {log}") and "not installable" in message
    assert "Neither 'setup.py' nor 'pyproject.toml' found" in log.read_text()  # the whole pip output is there
    assert prefs.setup_status == message[len("Error: "):].rstrip("\n")
    assert prefs.python_path == "/somewhere/else/python"  # untouched
    assert bpy.ops.nst.remove_engine() == {"FINISHED"}  # what a failed set-up made can be removed


def test_remove_refuses_a_folder_without_the_marker(prefs, env_folder, tmp_path):
    env_folder.mkdir(parents=True)
    (env_folder / "precious.txt").write_text("not the add-on's")
    with pytest.raises(RuntimeError, match=r"was not made by the add-on \(no \.nst-engine-env file\): nothing removed"):
        bpy.ops.nst.remove_engine()
    assert (env_folder / "precious.txt").read_text() == "not the add-on's"
    prefs.engine_source, prefs.engine_wheel = "WHEEL", str(make_wheel(tmp_path))
    with pytest.raises(RuntimeError, match="already exists and was not made by the add-on"):
        bpy.ops.nst.setup_engine()
    assert sorted(p.name for p in env_folder.iterdir()) == ["precious.txt"]


def test_the_package_index_needs_online_access(prefs, env_folder):
    prefs.engine_source = "INDEX"
    with pytest.raises(RuntimeError, match=r"^Error: the package index needs online access: allow it in "
                                           r"Preferences > System > Network \(Allow Online Access\), or pick a "
                                           r"local wheel or checkout as the engine's source\n$"):
        bpy.ops.nst.setup_engine()
    assert not env_folder.exists()
    assert any(line.startswith("Online access is off") for line in draw_preferences(prefs))


def test_a_base_python_that_is_not_310_to_312_is_refused(prefs, env_folder, tmp_path):
    fake = tmp_path / "python3.9"
    fake.write_text("#!/bin/sh\necho '{\"version\": [3, 9], \"executable\": \"/opt/py39\", \"prefix\": \"/opt\"}'\n")
    fake.chmod(0o755)
    prefs.engine_source, prefs.engine_wheel = "WHEEL", str(make_wheel(tmp_path))
    prefs.base_python = str(fake)
    with pytest.raises(RuntimeError, match=r"Base Python: .*python3.9 is Python 3.9; the engine needs 3.10-3.12"):
        bpy.ops.nst.setup_engine()
    prefs.base_python = sys.executable  # Blender's own Python: never
    with pytest.raises(RuntimeError, match="is Blender's own Python"):
        bpy.ops.nst.setup_engine()
    assert not env_folder.exists()


def test_set_up_installs_the_chosen_backend_and_checks_it(prefs, env_folder, tmp_path):
    """Compute with PyTorch: Set Up installs the wheel with its [torch] extra and the check step needs
    PyTorch in the engine; the stand-in nst-plugin offers no such extra, so the set-up fails in one line and
    the add-on's interpreter stays as it was."""
    wheel = make_wheel(tmp_path / "wheelhouse")
    prefs.engine_source, prefs.engine_wheel, prefs.backend = "WHEEL", str(wheel), "torch"
    prefs.python_path = "/somewhere/else/python"
    with pytest.raises(RuntimeError) as failed:
        bpy.ops.nst.setup_engine(action="SETUP")
    log_path = env_folder / "setup.log"
    message = ("the engine (nst-plugin 0.0.1) predates the choice of backend and has no PyTorch after installing it "
               f"(does the source offer nst-plugin[torch]?); full log: {log_path}")
    assert message in str(failed.value) and prefs.setup_status == message
    assert prefs.python_path == "/somewhere/else/python"
    log = log_path.read_text()
    assert f"{wheel}[torch]" in log  # pip was asked for the extra
