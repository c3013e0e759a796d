"""``nst video --cluster``: a real dask.distributed cluster on this machine (a scheduler and two workers,
each its own process, started here), against the single-process run of the same settings.

Tiny frames (48 px, a few iterations), a clip of three shots; the workers use one TensorFlow thread each.
"""

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from nst_plugin.builtin.vgg16 import HED_NOTE
from nst_plugin.images import load_image, resize
from test_video import ctrl_c_as_typed, error_lines, events_of, nst, street_frames, write_sequence

pytest.importorskip("distributed")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TINY = ["--size", "48", "--iterations", "3", "--warm-iterations", "3", "--weights", "hed", "--tolerance", "0"]
# for the runs a test stops at their first frame: seconds of work left after it, so that on a loaded machine the
# run cannot end before the signal comes
SLOWER = [*TINY[:2], "--iterations", "40", "--warm-iterations", "40", *TINY[6:]]
WORKER_ENV = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


class LocalDask:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1, as a user starts them."""

    def __init__(self, folder: Path, workers: int = 2):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        env = {**os.environ, **WORKER_ENV, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.env = env
        self.scheduler = self._start("dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                     "--scheduler-file", str(self.file))
        deadline = time.monotonic() + 60
        while not self.file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = [self.add_worker() for _ in range(workers)]
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)

    def _start(self, cli, *args):
        log = open(self.folder / f"{cli}-{time.monotonic_ns()}.log", "w")
        return subprocess.Popen([sys.executable, "-m", f"distributed.cli.{cli}", *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)

    def add_worker(self):
        return self._start("dask_worker", self.address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                           "--host", "127.0.0.1")

    def worker_pids(self) -> tuple[dict, dict]:
        """{worker address: pid}, and {worker address: the keys of the units it runs now}."""
        from distributed import Client

        with Client(self.address, timeout=30) as client:
            return client.run(os.getpid), {w: [str(k) for k in keys] for w, keys in client.processing().items()}

    def close(self):
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    cluster = LocalDask(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory, samples_path=ROOT / "samples"):
    """Nine frames in three shots (street, fish, street again), and the style image."""
    folder = tmp_path_factory.mktemp("clip")
    street = street_frames(samples_path, 6, size=64)
    fish = resize(load_image(samples_path / "HappyFish.jpg"), *street[0].shape[:2])
    frames = street[:3] + [np.roll(fish, 2 * k, axis=1) for k in range(3)] + street[3:]
    write_sequence(folder / "seq", frames)
    return folder / "seq" / "####.png", samples_path / "starry_night.jpg"


def _reference(clip, tmp_path_factory, settings):
    out = tmp_path_factory.mktemp("reference") / "out"
    result = nst("video", clip[0], "-s", clip[1], "-o", out, *settings, "--progress", "none")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def reference(clip, tmp_path_factory):
    """The single-process run of the clip: its folder."""
    return _reference(clip, tmp_path_factory, TINY)


@pytest.fixture(scope="module")
def slower_reference(clip, tmp_path_factory):
    """The single-process run of the clip with ``SLOWER``: its folder."""
    return _reference(clip, tmp_path_factory, SLOWER)


def frames_of(folder):
    return {p.name: load_image(p) for p in sorted(Path(folder).glob("frame_*.png"))}


def assert_same_frames(folder, reference):
    got, expected = frames_of(folder), frames_of(reference)
    assert sorted(got) == sorted(expected) and len(got) == 9
    for name in expected:
        difference = np.abs(got[name].astype(int) - expected[name]).max()
        assert difference == 0, f"{name}: differs by up to {difference}"
    manifest = json.loads((Path(folder) / "nst_manifest.json").read_text())
    wanted = json.loads((Path(reference) / "nst_manifest.json").read_text())
    assert manifest["settings_hash"] == wanted["settings_hash"]
    for key, entry in wanted["frames"].items():
        assert manifest["frames"][key]["status"] == "done"
        assert (manifest["frames"][key]["shot"], manifest["frames"][key]["warm"]) == (entry["shot"], entry["warm"])
    assert not [p.name for p in Path(folder).iterdir() if p.name.startswith(".")]  # no temporary file left


def cluster_command(clip, out, address, *more, settings=TINY):
    return [sys.executable, "-m", "nst_plugin", "video", str(clip[0]), "-s", str(clip[1]), "-o", str(out), *settings,
            "--cluster", address, "--progress", "jsonl", *more]


def run_until_first_frame(command, then):
    """Run ``nst video`` in its own process, call ``then(process)`` when the first frame is written, and
    return (exit status, the rest of the event stream, stderr, seconds from ``then`` to the end)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=ctrl_c_as_typed)
    for line in process.stdout:
        if json.loads(line)["event"] == "frame_done":
            then(process)
            break
    started = time.monotonic()
    rest, stderr = process.communicate(timeout=300)
    return process.returncode, [json.loads(line) for line in rest.splitlines()], stderr, time.monotonic() - started


def test_frames_on_a_cluster_equal_the_single_process_run(dask_cluster, clip, reference, tmp_path):
    from nst_plugin.api import prepare
    from nst_plugin.cluster import connect, parse_cluster
    from nst_plugin.video import open_source, stylize_video

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # not Python's registry: the client shows each worker warning once itself
        result = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "out", *TINY, "--cluster",
                     dask_cluster.address, "--progress", "jsonl")
    assert result.exit_code == 0, result.output
    stream = events_of(result)
    assert [e["event"] for e in stream][:2] == ["start", "cluster"]
    assert stream[1]["workers"] == 2 and stream[1]["mode"] == "shipped frames"
    assert sorted(e["index"] for e in stream if e["event"] == "frame_done") == list(range(1, 10))
    assert [e["index"] for e in stream if e["event"] == "cut"] == [4, 7] and stream[-1]["cuts"] == [4, 7]
    assert_same_frames(tmp_path / "out", reference)
    # the fallback weights' warning: each fresh worker raised it, the client shows it once; no worker prints it
    assert [str(w.message) for w in caught if "HED" in str(w.message)] == [f"using {HED_NOTE}"], caught
    logs = "".join(p.read_text() for p in dask_cluster.folder.glob("dask_worker-*.log"))
    assert "HED" not in logs and "warning:" not in logs
    # what the workers computed on: the manifest's runtime, as a single process records its own
    runtime = json.loads((tmp_path / "out" / "nst_manifest.json").read_text())["runtime"]
    assert runtime["cluster"] == dask_cluster.address
    assert set(runtime["workers"]) == set(dask_cluster.worker_pids()[0])  # three shots: both workers had one
    single = json.loads((reference / "nst_manifest.json").read_text())["runtime"]
    assert {k: runtime[k] for k in single} == single
    assert all(worker == single for worker in runtime["workers"].values())

    # through the API: one unit per shot, and each worker builds its backbone and style targets once
    config, styles, _ = prepare([load_image(clip[1])], size=48, iterations=3, warm_iterations=3, weights="hed",
                                tolerance=0)
    with connect(parse_cluster(dask_cluster.address)) as connection:
        stylize_video(open_source(clip[0]), styles, config, tmp_path / "api", cluster=connection)
        units = connection.units
        assert set(connection.runtime()["workers"]) == {u["worker"] for u in units}
    assert_same_frames(tmp_path / "api", reference)
    assert sorted(tuple(u["frames"]) for u in units) == [(1, 2, 3), (4, 5, 6), (7, 8, 9)]
    first_on_its_worker = [u["pid"] for u in units if not u["cached"]]  # the CLI's run above warmed the workers
    assert len(first_on_its_worker) == len(set(first_on_its_worker)) and len(first_on_its_worker) < len(units)


def test_ctrl_c_on_a_cluster_leaves_a_folder_that_resumes(dask_cluster, clip, slower_reference, tmp_path):
    out = tmp_path / "out"
    command = cluster_command(clip, out, dask_cluster.address, settings=SLOWER)
    code, rest, stderr, _ = run_until_first_frame(command, lambda process: process.send_signal(signal.SIGINT))
    assert code == 130, stderr
    last = rest[-1]
    assert (last["event"], last["status"], last["output"]) == ("done", "interrupted", str(out))
    first = frames_of(out)
    assert 1 <= len(first) < 9 and "Traceback" not in stderr, stderr
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert rerun.returncode == 0, rerun.stderr
    stream = [json.loads(line) for line in rerun.stdout.splitlines()]
    assert stream[0]["resumed"] == len(first)
    assert sorted(e["index"] for e in stream if e["event"] == "frame_done") == sorted(
        set(range(1, 10)) - {int(name[6:12]) for name in first})
    assert_same_frames(out, slower_reference)


def test_keyframe_engine_on_a_cluster_makes_the_single_process_frames(dask_cluster, clip, tmp_path):
    settings = ["--engine", "keyframes", "--size", "48", "--keyframe-size", "32", "--iterations", "3", "--weights",
                "hed", "--option", "keyframes.steps=20", "--option", "keyframes.patch=24", "--progress", "jsonl"]
    # training's float sums depend on TensorFlow's thread count: the single process uses the workers' one thread
    single = subprocess.run([sys.executable, "-m", "nst_plugin", "video", str(clip[0]), "-s", str(clip[1]), "-o",
                             str(tmp_path / "single"), *settings], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **WORKER_ENV, "PYTHONPATH": str(ROOT)})
    assert single.returncode == 0, single.stderr
    spread = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "cluster", *settings, "--cluster", dask_cluster.address)
    assert spread.exit_code == 0, spread.output
    stream = events_of(spread)
    assert sorted(e["index"] for e in stream if e["event"] == "keyframe") == [1, 4, 7]
    assert [e["shot"] for e in stream if e["event"] == "training" and e["stopped"]] == [0, 1, 2]
    got, expected = frames_of(tmp_path / "cluster"), frames_of(tmp_path / "single")
    assert sorted(got) == sorted(expected) and len(got) == 9
    trained = [[(e["shot"], e["step"], e["loss"]) for e in events if e["event"] == "training" and e["stopped"]]
               for events in (stream, [json.loads(line) for line in single.stdout.splitlines()])]
    for name in expected:
        assert np.array_equal(got[name], expected[name]), (name, trained)
    manifest = json.loads((tmp_path / "cluster" / "nst_manifest.json").read_text())
    assert set(manifest["artifacts"]) == {"keyframe_000001.png", "keyframe_000004.png", "keyframe_000007.png",
                                          "network_shot000.weights.h5", "network_shot001.weights.h5",
                                          "network_shot002.weights.h5"}
    again = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "cluster", *settings, "--cluster", dask_cluster.address)
    assert again.exit_code == 0 and not [e for e in events_of(again) if e["event"] == "frame_done"]


@pytest.mark.slow
def test_a_keyframe_started_from_the_one_before_it_is_made_after_it_on_a_cluster(dask_cluster, tmp_path, samples):
    from nst_plugin.builtin.keyframes.selection import MIN_GAP

    scene = resize(load_image(samples / "HappyFish.jpg"), 48, 160)
    source = write_sequence(tmp_path / "pan", [scene[:, 3 * t:3 * t + 64] for t in range(MIN_GAP + 13)])
    settings = ["--engine", "keyframes", "--size", "48", "--keyframe-size", "32", "--iterations", "3",
                "--warm-iterations", "3", "--weights", "hed", "--option", "keyframes.steps=20", "--option",
                "keyframes.patch=24", "--option", "keyframes.smooth=0", "--progress", "jsonl"]
    single = subprocess.run([sys.executable, "-m", "nst_plugin", "video", str(source), "-s",
                             str(samples / "starry_night.jpg"), "-o", str(tmp_path / "single"), *settings],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, **WORKER_ENV, "PYTHONPATH": str(ROOT)})
    assert single.returncode == 0, single.stderr
    spread = nst("video", source, "-s", samples / "starry_night.jpg", "-o", tmp_path / "cluster", *settings,
                 "--cluster", dask_cluster.address)
    assert spread.exit_code == 0, spread.output
    assert [e["index"] for e in events_of(spread) if e["event"] == "keyframe"] == [1, 1 + MIN_GAP]
    # the second keyframe started from the first one's image, shipped to its worker once that was made
    name = f"keyframe_{1 + MIN_GAP:06d}.png"
    assert np.array_equal(load_image(tmp_path / "cluster" / name), load_image(tmp_path / "single" / name))


def test_a_keyframe_source_gone_before_the_keyframe_pass_is_named_not_a_crash(dask_cluster, clip, tmp_path,
                                                                              monkeypatch):
    import shutil

    from nst_plugin import cli

    source = tmp_path / "seq"
    shutil.copytree(clip[0].parent, source)
    report = cli.JsonlProgress.__call__

    def deleting(self, event):
        if event.kind == "cut" and source.exists():  # after the plan's pass, before the keyframes are read again
            shutil.rmtree(source)
        report(self, event)

    monkeypatch.setattr(cli.JsonlProgress, "__call__", deleting)
    settings = ["--engine", "keyframes", "--size", "48", "--keyframe-size", "32", "--iterations", "3", "--weights",
                "hed", "--option", "keyframes.steps=20", "--option", "keyframes.patch=24", "--progress", "jsonl"]
    result = nst("video", source / "####.png", "-s", clip[1], "-o", tmp_path / "out", *settings, "--cluster",
                 dask_cluster.address)
    lines = error_lines(result)
    assert result.exit_code == 2 and len(lines) == 1 and "could not be read" in lines[0], result.output
    warnings = [e["message"] for e in events_of(result) if e["event"] == "warning"]
    assert any("could not be read again" in message for message in warnings), warnings
    assert not [e for e in events_of(result) if e["event"] == "frame_done"]



def test_animated_settings_on_a_cluster_make_the_single_process_frames(dask_cluster, clip, tmp_path):
    animated = tmp_path / "animated.json"
    animated.write_text(json.dumps({"2": {"strength": 0.2}, "5": {"strength": 0.9}, "8": {"style_weight": 3.0}}))
    single = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "single", *TINY, "--frame-settings", animated,
                 "--progress", "none")
    assert single.exit_code == 0, single.output
    spread = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "spread", *TINY, "--frame-settings", animated,
                 "--progress", "none", "--cluster", dask_cluster.address)
    assert spread.exit_code == 0, spread.output
    assert_same_frames(tmp_path / "spread", tmp_path / "single")
    records = json.loads((tmp_path / "spread" / "nst_manifest.json").read_text())["frames"]
    assert records["2"]["settings"]["strength"] == 0.2 and "settings" not in records["3"]
    animated.write_text(json.dumps({"2": {"strength": 0.2}, "5": {"strength": 0.5}, "8": {"style_weight": 3.0}}))
    again = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "spread", *TINY, "--frame-settings", animated,
                "--progress", "jsonl", "--cluster", dask_cluster.address)
    assert again.exit_code == 0, again.output
    remade = sorted(e["index"] for e in events_of(again) if e["event"] == "frame_done")
    assert 5 in remade and 2 not in remade and 8 not in remade  # only the changed frame (and its shot's chain after it)

def test_a_worker_of_another_version_is_one_line(dask_cluster, clip, tmp_path, monkeypatch):
    import nst_plugin

    monkeypatch.setattr(nst_plugin, "__version__", "0.0.1")
    result = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "out", *TINY, "--cluster", dask_cluster.address)
    assert result.exit_code == 2 and len(error_lines(result)) == 1
    assert "runs nst-plugin 0.1.0, this machine 0.0.1" in result.stderr
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_fails_in_seconds_with_one_line(clip, tmp_path, monkeypatch):
    monkeypatch.setenv("NST_CLUSTER_TIMEOUT", "3")
    started = time.monotonic()
    result = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "out", *TINY, "--cluster", "tcp://127.0.0.1:9")
    assert time.monotonic() - started < 20
    assert result.exit_code == 2 and len(error_lines(result)) == 1 and "Traceback" not in result.output
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:9: connection refused" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cluster_options_are_checked_before_any_work(clip, tmp_path, monkeypatch):
    from nst_plugin.cluster import spec

    def run(*more):
        result = nst("video", clip[0], "-s", clip[1], "-o", tmp_path / "out", *TINY, *more)
        assert result.exit_code == 2 and len(error_lines(result)) == 1, result.output
        return error_lines(result)[0]

    assert "--workers goes with --cluster local" in run("--workers", "2")
    assert "--workers goes with --cluster local" in run("--workers", "2", "--cluster", "tcp://127.0.0.1:8786")
    assert "at least 1" in run("--workers", "0", "--cluster", "local")
    assert "with its port" in run("--cluster", "somehost")
    (tmp_path / "animated.json").write_text('{"1": {"strength": 0.2}}')  # an engine that takes no per-frame values
    assert "the keyframes engine does not take them" in run("--frame-settings", tmp_path / "animated.json", "--engine",
                                                            "keyframes", "--cluster", "local")
    real = spec.importlib.util.find_spec
    monkeypatch.setattr(spec.importlib.util, "find_spec", lambda name: None if name == "distributed" else real(name))
    assert "pip install 'nst-plugin[dask]'" in run("--cluster", "local")
    assert not (tmp_path / "out").exists()


def test_help_does_not_import_dask():
    code = ("import sys; from typer.testing import CliRunner; from nst_plugin.cli import app; "
            "r = CliRunner().invoke(app, ['video', '--help']); "
            "print(r.exit_code, '--cluster' in r.output, sorted(m for m in ('dask', 'distributed', 'tensorflow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "0 True []"


def test_a_worker_killed_mid_run_its_unit_runs_elsewhere_and_every_frame_comes(dask_cluster, clip, reference,
                                                                              tmp_path):
    from nst_plugin.api import prepare
    from nst_plugin.cluster import connect, parse_cluster
    from nst_plugin.video import open_source, stylize_video

    dask_cluster.workers.append(dask_cluster.add_worker())  # a third: the killed one is not replaced
    config, styles, _ = prepare([load_image(clip[1])], size=48, iterations=3, warm_iterations=3, weights="hed",
                                tolerance=0)
    killed = []

    def kill_a_busy_worker_at_the_first_frame(event):
        """Kill the worker whose shot gave a frame, while it works on that shot's next frames (the first frame
        whose shot is still running: on a loaded machine a shot may be done before its first frame is read)."""
        if event.kind == "frame_done" and not killed:
            pids, running = dask_cluster.worker_pids()
            shot = (event.index - 1) // 3  # the clip's shots: 1-3, 4-6, 7-9; a unit a shot, in order
            busy = [w for w, keys in running.items() if any(f"-ShotUnit-{shot}-" in k for k in keys)]
            if busy and (event.index - 1) % 3 < 2:  # frames of this shot are still to come
                killed.extend([busy[0], event.index])
                os.kill(pids[busy[0]], signal.SIGKILL)

    with connect(parse_cluster(dask_cluster.address)) as connection:
        job = stylize_video(open_source(clip[0]), styles, config, tmp_path / "out", cluster=connection,
                            on_event=kill_a_busy_worker_at_the_first_frame)
        units = connection.units
    assert sorted(job.written) == list(range(1, 10))
    assert_same_frames(tmp_path / "out", reference)
    assert killed, "no shot was still running when one of its frames came back"
    assert killed[0] not in dask_cluster.worker_pids()[0]
    assert killed[0] not in {u["worker"] for u in units}  # the killed worker's unit was done by another
    # the unit run again continued after the frames the client already had (the killed frame, and any later
    # frame of its shot that came in the same batch of messages): no frame stylized twice
    done = [i for u in units for i in u["frames"]]
    assert len(done) == len(set(done))
    first = (killed[1] - 1) // 3 * 3 + 1
    had = sorted(set(range(1, 10)) - set(done))  # the killed unit's frames: the start of its shot
    assert killed[1] in had and had == list(range(first, first + len(had))), (killed, had)


def test_the_scheduler_gone_stops_with_one_line_and_the_folder_resumes(dask_cluster, clip, slower_reference,
                                                                       tmp_path):
    """The last test of the module: it kills the module's scheduler."""
    out = tmp_path / "out"
    code, _, stderr, seconds = run_until_first_frame(cluster_command(clip, out, dask_cluster.address, settings=SLOWER),
                                                     lambda process: dask_cluster.scheduler.kill())
    assert seconds < 30
    assert code == 2 and len([x for x in stderr.splitlines() if x.startswith("error:")]) == 1, stderr
    assert f"lost the dask scheduler at {dask_cluster.address}" in stderr and "Traceback" not in stderr
    kept = frames_of(out)
    assert 1 <= len(kept) < 9
    resumed = nst("video", clip[0], "-s", clip[1], "-o", out, *SLOWER, "--progress", "jsonl")  # here, in one process
    assert resumed.exit_code == 0 and events_of(resumed)[0]["resumed"] == len(kept)
    assert_same_frames(out, slower_reference)

