"""The add-on in a real (headless) Blender 5.0: registration, operator and panel, errors in one line,
and the Stylize / Resume / Re-run paths with the real engine on the sample clip."""

import json
import tomllib
from pathlib import Path

import addon_utils
import bpy
import pytest
from conftest import ADDON, ENGINE_PYTHON, ROOT, SAMPLES, draw_panel, draw_preferences

needs_engine = pytest.mark.skipif(not ENGINE_PYTHON.exists(), reason="the engine venv .venv is missing (make test creates it)")


def registered():
    return (hasattr(bpy.types, "SEQUENCER_OT_nst_stylize") and hasattr(bpy.types, "SEQUENCER_PT_nst")
            and "nst" in bpy.types.Scene.bl_rna.properties)


def test_register_and_unregister_cleanly_twice():
    for _ in range(2):
        addon_utils.enable(ADDON, default_set=True, handle_error=lambda exc: pytest.fail(str(exc)))
        assert registered() and ADDON in bpy.context.preferences.addons
        addon_utils.disable(ADDON, default_set=True, handle_error=lambda exc: pytest.fail(str(exc)))
        assert not registered() and not hasattr(bpy.types, "NST_OT_check_engine")
    from blender_addon import jobs

    assert jobs.cancel_running_job not in bpy.app.handlers.load_pre
    assert not any(getattr(h, "__module__", "").startswith("blender_addon") for h in bpy.app.handlers.load_pre)


def test_registration_does_not_import_tensorflow(addon):
    import sys

    assert "tensorflow" not in sys.modules and "nst_plugin" not in sys.modules


def test_operator_panel_and_preferences_exist(addon):
    rna = bpy.ops.sequencer.nst_stylize.get_rna_type()
    assert rna.identifier == "SEQUENCER_OT_nst_stylize"
    assert {"NEW", "RESUME", "RERUN"} == {i.identifier for i in rna.properties["action"].enum_items}
    panel = bpy.types.SEQUENCER_PT_nst
    assert panel.bl_label == "Style Transfer" and panel.bl_space_type == "SEQUENCE_EDITOR"
    assert panel.bl_region_type == "UI" and panel.bl_category == "Style Transfer"
    assert bpy.ops.sequencer.nst_cancel.get_rna_type().identifier == "SEQUENCER_OT_nst_cancel"
    settings = bpy.context.scene.nst
    for name in ("style_image", "preset", "engine", "resolution", "size", "strength", "content_weight", "style_weight", "temporal_weight",
                 "preserve_color", "iterations", "use_strip_range", "frame_first", "frame_last", "output_dir"):
        assert name in settings.bl_rna.properties
    assert "python_path" in bpy.context.preferences.addons[ADDON].preferences.bl_rna.properties


def test_manifest():
    manifest = tomllib.loads((ROOT / "blender_addon" / "blender_manifest.toml").read_text())
    for key in ("schema_version", "id", "version", "name", "tagline", "maintainer", "type", "blender_version_min",
                "license", "permissions"):
        assert key in manifest
    assert manifest["type"] == "add-on" and manifest["blender_version_min"] == "4.2.0"
    assert set(manifest["permissions"]) == {"files", "network"}


def test_extension_builds_installs_and_enables(tmp_path):
    """The zip from Blender's own extension builder (what ``blender --command extension build`` runs)
    installs as an extension, registers under its bl_ext package name, and unregisters."""
    import shutil
    import subprocess
    import sys

    cli = Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    done = subprocess.run([sys.executable, str(cli), "build", "--source-dir", str(ROOT / "blender_addon"),
                           "--output-dir", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    package = tmp_path / "nst_style_transfer-0.1.0.zip"
    import zipfile

    names = zipfile.ZipFile(package).namelist()
    assert "blender_manifest.toml" in names and "operators.py" in names
    assert not any(n.startswith("tests/") or "__pycache__" in n for n in names)
    assert bpy.ops.extensions.package_install_files(filepath=str(package), repo="user_default",
                                                    enable_on_install=True) == {"FINISHED"}
    module = "bl_ext.user_default.nst_style_transfer"
    try:
        assert module in bpy.context.preferences.addons and registered()
        assert "python_path" in bpy.context.preferences.addons[module].preferences.bl_rna.properties
        folder = Path(sys.modules[module + ".jobs"].settings_folder())  # the jobs' settings files: private
        assert folder.is_dir() and folder.name == "runs" and "nst_style_transfer" in str(folder)
        assert Path(bpy.utils.user_resource("EXTENSIONS")) in folder.parents
        preferences = sys.modules[module + ".preferences"]  # Set Up Engine and Preview Frame: the same private place
        assert Path(preferences.engine_env_folder()) == folder.parent / "engine-env"
        assert Path(preferences.private_folder("preview")) == folder.parent / "preview"
    finally:
        addon_utils.disable(module, default_set=True)
        shutil.rmtree(Path(bpy.utils.user_resource("EXTENSIONS")) / "user_default" / "nst_style_transfer")
    assert not registered()


def test_check_engine_reports_what_it_found(prefs):
    if not ENGINE_PYTHON.exists():
        pytest.skip("no engine venv")
    prefs.python_path = str(ENGINE_PYTHON)
    assert bpy.ops.nst.check_engine() == {"FINISHED"}
    assert prefs.last_check.startswith("nst-plugin ") and str(ENGINE_PYTHON) in prefs.last_check
    assert "presets: " in prefs.last_check and "default" in prefs.last_check
    from blender_addon import props

    assert "content" not in props.LOSSES  # only plugin losses go to the Extra loss list
    settings = bpy.context.scene.nst
    if props.LOSSES:
        settings.extra_loss = props.LOSSES[0]
        settings.extra_loss_weight = 0.5
        assert settings.engine_settings()["extra_losses"] == {props.LOSSES[0]: 0.5}
    settings.extra_loss = "NONE"
    assert "extra_losses" not in settings.engine_settings()


def test_engine_choice_and_the_strips_resolution(listed):
    settings = bpy.context.scene.nst  # the engines: the fake engine's listing (Check)
    settings.engine, settings.resolution, settings.size = "keyframes", "STRIP", 300
    values = settings.engine_settings()
    assert values["engine"] == "keyframes" and values["size"] == 0  # 0: the engine reads the strip as it is
    settings.engine = "lbfgs"
    assert settings.engine_settings()["size"] == 0  # the strip's resolution with either engine
    settings.resolution = "HALF"
    assert settings.engine_settings(strip_size=(1920, 1080))["size"] == 960
    with pytest.raises(ValueError, match="resolution is not known yet"):
        settings.engine_settings()  # a fraction of a size Blender has not read: one line
    settings.resolution = "QUARTER"
    assert settings.engine_settings(strip_size=(1920, 1080))["size"] == 480
    settings.resolution = "SIZE"
    assert settings.engine_settings(strip_size=(1920, 1080))["size"] == 300
    settings.load({"preset": "default", "engine": "keyframes"})
    assert settings.engine == "keyframes" and settings.resolution == "STRIP"
    settings.load({"preset": "default", "size": 200})  # settings that name no engine: the engine's default
    assert settings.engine == "DEFAULT" and settings.size == 200 and settings.resolution == "SIZE"
    assert "engine" not in settings.engine_settings()
    settings.load({"preset": "default", "engine": "lbfgs", "size": 200})
    assert settings.engine == "lbfgs" and settings.engine_settings()["engine"] == "lbfgs"


def stylize(**kwargs):
    return bpy.ops.sequencer.nst_stylize(**kwargs)


def test_error_no_active_strip(addon):
    bpy.context.scene.sequence_editor_create().active_strip = None
    with pytest.raises(RuntimeError, match=r"^Error: no active strip: click a movie or image-sequence strip"):
        stylize()


def test_error_unsupported_strip(edit):
    editor = edit.sequence_editor
    editor.active_strip = editor.strips["title"]
    with pytest.raises(RuntimeError, match=r"cannot stylize a color strip: select one of the movie strips and "
                                           r"image-sequence strips"):
        stylize()


def test_error_engine_not_found(edit, prefs, tmp_path):
    prefs.python_path = str(tmp_path / "no-env" / "bin" / "python")
    with pytest.raises(RuntimeError, match=r"engine not found: .*does not exist; install nst-plugin"):
        stylize()


def test_error_output_not_writable(edit, prefs, fake_python, tmp_path):
    prefs.python_path = fake_python
    (tmp_path / "a-file").write_text("x")
    edit.nst.output_dir = str(tmp_path / "a-file" / "out")
    with pytest.raises(RuntimeError, match=r"output folder .*a-file/out is not writable"):
        stylize()


def test_error_engine_crashed_keeps_its_frames(edit, prefs, fake_python, monkeypatch):
    prefs.python_path = fake_python
    monkeypatch.setenv("NST_FAKE_MODE", "crash")
    with pytest.raises(RuntimeError, match=r"^Error: engine failed \(exit status 1\): RuntimeError: out of memory "
                                           r"while stylizing frame 2\n$"):
        stylize()
    result = edit.sequence_editor.strips["NST starry_night"]  # the frame it finished has its strip
    assert json.loads(result["nst_last_run"])["status"] == "error"


def test_cancel_keeps_finished_frames_and_their_strip(edit, prefs, fake_python, monkeypatch):
    """The interactive path without a window: the modal operator's event handling, timer ticks until a
    frame is done, Esc, ticks until the engine stopped, then the finish."""
    import time

    from blender_addon import jobs

    prefs.python_path = fake_python
    monkeypatch.setenv("NST_FAKE_MODE", "hang")
    job = jobs.start_job(bpy.context, "NEW")
    with pytest.raises(jobs.PlanError, match="already running"):
        jobs.start_job(bpy.context, "NEW")
    deadline = time.monotonic() + 30
    while job.progress.done < 1 and time.monotonic() < deadline:
        assert jobs.handle_event(job, "TIMER", "NOTHING") == "STEPPED"
        time.sleep(0.05)
    assert jobs.handle_event(job, "MOUSEMOVE", "NOTHING") == "PASS"
    assert any(line.startswith("progress: 1/3 frames") for line in draw_panel())  # the panel shows the job
    assert jobs.handle_event(job, "ESC", "PRESS") == "CANCELLING"
    while jobs.handle_event(job, "TIMER", "NOTHING") != "ENDED" and time.monotonic() < deadline:
        time.sleep(0.05)
    level, message = jobs.finish_job(job)
    assert level == "WARNING"
    assert message == "style transfer cancelled: 1 of 3 frames kept in strip 'NST starry_night' (channel 4)"
    assert jobs.JOB is None and job.process.returncode == 130
    result = edit.sequence_editor.strips["NST starry_night"]
    assert len(result.elements) == 3 and result.frame_final_start == 12
    assert json.loads(result["nst_last_run"])["status"] == "interrupted"


def test_result_strip_follows_a_new_plan_and_is_reused(edit, tmp_path):
    from blender_addon import result_strip
    from blender_addon.plan import Plan

    editor = edit.sequence_editor
    result = editor.strips.new_image(name="NST old", filepath=str(tmp_path / "frame_000001.png"), channel=6,
                                     frame_start=1)
    for name in ("frame_000002.png", "frame_000003.png", "frame_000004.png"):
        result.elements.append(name)
    plan = {"output": str(tmp_path), "style": "/art/wave.jpg", "timeline": [20, 21], "indices": [7, 8],
            "source": "x"}
    result["nst"] = json.dumps(plan)
    assert result_strip.find_by_output(edit, str(tmp_path)) == "NST old"
    plan = Plan.from_json(plan)
    result_strip.update(result, plan, move=False)
    assert [e.filename for e in result.elements] == ["frame_000007.png", "frame_000008.png"]
    assert result.frame_final_start == 1 and result.name == "NST wave"
    result_strip.update(result, plan, move=True)
    assert (result.frame_final_start, result.frame_final_duration) == (20, 2)


def test_panel_draws_every_state(edit, prefs):
    editor = edit.sequence_editor
    assert "street (movie)" in draw_panel()
    editor.active_strip = None
    assert "Select a movie or image-sequence strip" in draw_panel()
    result = editor.strips.new_image(name="NST x", filepath="/tmp/frame_000001.png", channel=5, frame_start=1)
    result["nst"] = json.dumps({"source_strip": "street", "timeline": [12, 14], "indices": [3, 4, 5],
                                "source": "/clips/street.avi"})
    result["nst_last_run"] = json.dumps({"status": "interrupted", "done": 1, "total": 3})
    editor.active_strip = result
    log = draw_panel()
    assert "Result of street, frames 12-14" in log and "Last run: interrupted, 1/3 frames" in log
    prefs.last_check = "nst-plugin 0.1.0 in /x"
    assert "nst-plugin 0.1.0 in /x" in draw_preferences(prefs)



def test_image_sequence_strip_maps_file_numbers(edit, tmp_path):
    from blender_addon.plan import Plan
    from blender_addon.result_strip import abspath

    folder = tmp_path / "renders"
    folder.mkdir()
    import shutil

    for number in range(7, 12):
        shutil.copy(SAMPLES / "HappyFish.jpg", folder / f"shot_{number:04d}.jpg")
    editor = edit.sequence_editor
    strip = editor.strips.new_image(name="shot", filepath=str(folder / "shot_0007.jpg"), channel=5, frame_start=30)
    for number in range(8, 12):
        strip.elements.append(f"shot_{number:04d}.jpg")
    strip.frame_offset_start = 1  # timeline 31-34 shows files 8-11
    plan = Plan.from_source_strip(strip, edit.nst, abspath)
    assert plan.source == str(folder / "shot_####.jpg")
    assert list(plan.timeline) == [31, 34] and plan.indices == [8, 9, 10, 11]


@needs_engine
def test_stylize_resume_and_rerun_with_the_real_engine(edit, prefs, tmp_path):
    prefs.python_path = str(ENGINE_PYTHON)
    editor = edit.sequence_editor
    assert stylize() == {"FINISHED"}
    result = editor.strips["NST starry_night"]
    assert result.type == "IMAGE" and result.channel == 4  # channel 3 is taken over these frames
    assert (result.frame_final_start, result.frame_final_duration) == (12, 3)  # the source's trimmed frames
    assert [e.filename for e in result.elements] == ["frame_000003.png", "frame_000004.png", "frame_000005.png"]
    out = tmp_path / "nst" / "street_starry_night"
    assert result.directory == "//nst/street_starry_night/"
    frames = [out / e.filename for e in result.elements]
    assert all(f.is_file() for f in frames)
    plan = json.loads(result["nst"])
    assert plan["settings"]["size"] == 32 and plan["source_strip"] == "street"
    assert json.loads(result["nst_last_run"])["written"] == 3

    # Stylize again with the same settings: nothing to do, the same strip
    editor.active_strip = editor.strips["street"]
    assert stylize() == {"FINISHED"}
    run = json.loads(result["nst_last_run"])
    assert (run["written"], run["resumed"]) == (0, 3)
    assert [s.name for s in editor.strips if s.get("nst")] == ["NST starry_night"]

    # Blender closed and opened again; one frame lost: Resume from the strip reuses the others
    bpy.ops.wm.save_mainfile()
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "edit.blend"))
    editor = bpy.context.scene.sequence_editor
    result = editor.strips["NST starry_night"]
    kept = {f: f.stat().st_mtime_ns for f in frames[:2]}
    frames[2].unlink()
    editor.active_strip = result
    assert stylize(action="RESUME") == {"FINISHED"}
    run = json.loads(editor.strips["NST starry_night"]["nst_last_run"])
    assert (run["status"], run["resumed"], run["written"]) == ("ok", 2, 1)
    assert {f: f.stat().st_mtime_ns for f in frames[:2]} == kept and frames[2].is_file()
    assert len([s for s in editor.strips if s.get("nst")]) == 1

    # Re-run with changes: the panel's settings replace this strip's frames, in place
    assert bpy.ops.sequencer.nst_load_settings() == {"FINISHED"}
    assert bpy.context.scene.nst.size == 32 and bpy.context.scene.nst.iterations == 2
    bpy.context.scene.nst.size = 40
    bpy.context.scene.nst.style_image = str(SAMPLES / "HappyFish.jpg")
    assert stylize(action="RERUN") == {"FINISHED"}
    assert [s.name for s in editor.strips if s.get("nst")] == ["NST HappyFish"]  # the same strip, renamed
    result = editor.strips["NST HappyFish"]
    assert json.loads(result["nst"])["settings"]["size"] == 40 and result.channel == 4
    manifest = json.loads((out / "nst_manifest.json").read_text())
    assert manifest["config"]["size"] == 40
    assert manifest["config"]["iterations"] == 2 and manifest["config"]["warm_iterations"] == 2
    assert json.loads(result["nst_last_run"])["written"] == 3


# -- the settings file, the plan on a strip, the module split -------------------------------------------------

def test_settings_go_to_the_engine_in_a_private_file(edit, prefs, fake_python, monkeypatch, tmp_path):
    """The engine gets ``--settings FILE`` (not flags): a JSON object of its setting names, outside the
    output folder, removed when the job ends."""
    record = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(record))
    prefs.python_path = fake_python
    edit.nst.custom_weights = True
    edit.nst.temporal_weight = 0.25
    assert stylize() == {"FINISHED"}
    seen = json.loads(record.read_text())
    argv = seen["argv"]
    path = Path(argv[argv.index("--settings") + 1])
    out = Path(argv[argv.index("--output") + 1])
    assert seen["settings"] == {"preset": "default", "size": 32, "iterations": 2, "warm_iterations": 2,  # no engine
                                "content_weight": 1000.0, "style_weight": 6000.0, "temporal_weight": 0.25}  # named
    for flag in ("--size", "--preset", "--iterations", "--temporal-weight", "--preserve-color"):
        assert flag not in argv
    assert argv[argv.index("--frames") + 1] == "3-5" and "--progress" in argv
    assert out not in path.parents and path.parent != out  # never in the output folder
    assert not path.exists()  # removed when the job ended
    assert sorted(p.name for p in out.iterdir()) == ["frame_000003.png", "frame_000004.png", "frame_000005.png"]
    result = edit.sequence_editor.strips["NST starry_night"]
    assert json.loads(result["nst"])["settings"]["temporal_weight"] == 0.25  # the plan keeps the panel's


def test_an_engine_without_settings_option_gets_flags(edit, prefs, fake_python, monkeypatch, tmp_path):
    record = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(record))
    monkeypatch.setenv("NST_FAKE_NO_SETTINGS", "1")
    prefs.python_path = fake_python
    assert stylize() == {"FINISHED"}
    argv = json.loads(record.read_text())["argv"]
    assert "--settings" not in argv
    assert argv[argv.index("--size") + 1] == "32" and argv[argv.index("--warm-iterations") + 1] == "2"


def test_a_cancelled_job_removes_its_settings_file(edit, prefs, fake_python, monkeypatch):
    import time

    from blender_addon import jobs

    prefs.python_path = fake_python
    monkeypatch.setenv("NST_FAKE_MODE", "hang")
    job = jobs.start_job(bpy.context, "NEW")
    path = Path(job.settings_file)
    assert path.is_file() and json.loads(path.read_text())["size"] == 32
    deadline = time.monotonic() + 30
    while job.progress.done < 1 and time.monotonic() < deadline:
        jobs.step_job(job)
        time.sleep(0.05)
    jobs.cancel_running_job()  # loading another .blend: the engine stops, its file goes once it has
    assert jobs.JOB is None
    job.process.wait(timeout=20)
    jobs.cancel_running_job()
    assert not path.exists() and job.settings_file is None


def test_a_result_strip_from_before_plan_existed_still_works(edit, prefs, fake_python):
    """A strip saved by the add-on before Plan (format version 1): Load Settings, Resume."""
    editor = edit.sequence_editor
    strip = editor.strips.new_image(name="NST starry_night", filepath="/tmp/frame_000003.png", channel=4,
                                    frame_start=12)
    for name in ("frame_000004.png", "frame_000005.png"):
        strip.elements.append(name)
    strip["nst"] = json.dumps({
        "version": 1, "source_strip": "street", "source": str(SAMPLES / "street.avi"), "source_type": "MOVIE",
        "source_channel": 2, "style": str(SAMPLES / "HappyFish.jpg"),
        "settings": {"preset": "default", "size": 48, "preserve_color": True, "iterations": 3},
        "timeline": [12, 14], "indices": [3, 4, 5], "output": "//nst/street_starry_night/"})
    editor.active_strip = strip
    assert "Result of street, frames 12-14" in draw_panel()
    assert bpy.ops.sequencer.nst_load_settings() == {"FINISHED"}
    settings = edit.nst
    assert (settings.size, settings.iterations, settings.preserve_color) == (48, 3, True)
    assert settings.style_image == str(SAMPLES / "HappyFish.jpg")
    prefs.python_path = fake_python
    assert stylize(action="RESUME") == {"FINISHED"}
    result = editor.strips["NST HappyFish"]  # the same strip, named after its style
    assert json.loads(result["nst_last_run"])["status"] == "ok" and result.frame_final_start == 12


def test_a_damaged_or_newer_result_strip_is_one_clear_error(edit):
    editor = edit.sequence_editor
    strip = editor.strips.new_image(name="NST x", filepath="/tmp/frame_000001.png", channel=5, frame_start=1)
    editor.active_strip = strip
    strip["nst"] = "{not json"
    assert "Result strip (settings damaged)" in draw_panel()
    with pytest.raises(RuntimeError, match=r"strip 'NST x': its style-transfer settings are damaged"):
        stylize(action="RESUME")
    strip["nst"] = json.dumps({"version": 7, "timeline": [1, 1], "indices": [1], "source": "x"})
    assert "Result strip (settings from a newer add-on)" in draw_panel()
    with pytest.raises(RuntimeError, match=r"format 7, newer than this add-on reads \(1\): update the add-on"):
        bpy.ops.sequencer.nst_load_settings()


def test_operators_module_holds_only_operators(addon):
    from blender_addon import jobs, operators, plan, result_strip

    assert {name for name, value in vars(operators).items() if isinstance(value, type)
            and issubclass(value, bpy.types.Operator)} == {"SEQUENCER_OT_nst_stylize", "SEQUENCER_OT_nst_cancel",
                                                           "SEQUENCER_OT_nst_load_settings", "SEQUENCER_OT_nst_preview",
                                                           "SEQUENCER_OT_nst_preview_cancel",
                                                           "SEQUENCER_OT_nst_edit_keyframe",
                                                           "SEQUENCER_OT_nst_use_painted_keyframe"}
    for name in ("start_job", "finish_job", "Job", "JOB", "plan_new", "ensure_result_strip", "PROP"):
        assert not hasattr(operators, name), name
    assert jobs.start_job and result_strip.create and plan.Plan.from_result_strip
    for name in ("start_preview", "finish_preview", "start_setup", "SETUP", "PREVIEW"):
        assert not hasattr(operators, name), name
    import blender_addon.engine_process
    import blender_addon.engine_setup

    import blender_addon.painting

    for module in (plan, blender_addon.engine_process, blender_addon.engine_setup, blender_addon.painting):
        assert "bpy" not in vars(module), module.__name__


def test_compute_with_reaches_the_engine(edit, prefs, fake_python, monkeypatch, tmp_path):
    """The preferences' Compute with is the engine's KERAS_BACKEND (over Blender's own environment): in
    Check, which shows what the engine computes with, and in a job; an engine without it is one line."""
    record = tmp_path / "record.json"
    monkeypatch.setenv("NST_FAKE_RECORD", str(record))
    monkeypatch.setenv("KERAS_BACKEND", "jax")  # the preference wins
    prefs.python_path = fake_python
    assert prefs.backend == "tensorflow"  # the default
    prefs.backend = "torch"
    assert bpy.ops.nst.check_engine() == {"FINISHED"}
    assert prefs.engine_runtime == "Keras 3.0.0 on torch 9.9, device fake:0"
    log = draw_preferences(prefs)
    assert "The engine computes with Keras 3.0.0 on torch 9.9, device fake:0" in log
    assert "NVIDIA GPUs on Windows and Linux, Apple GPUs (MPS)" in log
    assert stylize() == {"FINISHED"}
    assert json.loads(record.read_text())["keras_backend"] == "torch"

    prefs.backend = "jax"
    assert prefs.engine_runtime == ""  # what the engine said was for PyTorch
    assert "Press Check to see the device the engine computes on" in draw_preferences(prefs)
    monkeypatch.setenv("NST_FAKE_BACKENDS", "tensorflow,torch")  # an engine without JAX
    with pytest.raises(RuntimeError, match="the engine has no JAX"):
        bpy.ops.nst.check_engine()
    assert prefs.last_check.startswith("the engine has no JAX: press Update to install it (or pip install "
                                       f"'nst-plugin[jax]' into {fake_python})"), prefs.last_check
    edit.sequence_editor.active_strip = edit.sequence_editor.strips["street"]
    with pytest.raises(RuntimeError, match="the engine has no JAX: press Update"):
        stylize()
