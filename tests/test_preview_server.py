"""``nst preview-server``, the live mode's fast path one frame at a time (the Blender add-on's Live Preview):
a real process on a sample clip, tiny frames and a network of a few steps. Its first request learns the
network (or loads it from the cache); later ones answer with the network's picture of their frame; waiting
requests are coalesced; bad ones get an error line; it exits when stdin closes."""

import json
import os
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TINY = ["--size", "48", "--iterations", "3", "--weights", "hed", "--option", "keyframes.size=32",
        "--option", "keyframes.steps=6", "--option", "keyframes.patch=16", "--option", "keyframes.batch=2"]
WAIT = 120  # seconds a line may take at most (TensorFlow's import and the training on a busy machine)


class Server:
    """The server as a client sees it: ``send`` a request, read its ``lines``."""

    def __init__(self, samples, folder, cache, *more, clip="street.avi"):
        env = dict(os.environ, NST_CACHE_DIR=str(cache))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "nst_plugin", "preview-server", str(samples / clip), "-s",
             str(samples / "starry_night.jpg"), "-o", str(folder), *TINY, *more],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def send(self, *frames):
        self.process.stdin.write("".join(f if isinstance(f, str) else json.dumps({"frame": f}) + "\n" for f in frames))
        self.process.stdin.flush()

    def next(self, timeout=WAIT):
        return self.lines.get(timeout=timeout)

    def answer(self, timeout=WAIT) -> dict:
        """The next answer (a frame or an error), past the progress events."""
        while True:
            line = self.next(timeout)
            assert line is not None, self.process.stderr.read()
            if "frame" in line or "error" in line:
                return line

    def close(self, timeout=30) -> int:
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.process.stdout.close()
            self.process.stderr.close()


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _served_picture(samples, cache, frame: int) -> np.ndarray:
    """What the live path makes of the clip's frame ``frame`` alone with the cached network and keyframe,
    computed here from the cache: the frame read in order from the start (no seeking), through the network,
    the keyframe's strokes carried, enlarged."""
    from nst_plugin.api import prepare
    from nst_plugin.builtin.keyframes.network import NetworkShape, build_network
    from nst_plugin.images import load_image
    from nst_plugin.live.cache import NetworkCache
    from nst_plugin.live.painter import Painter
    from nst_plugin.live.preview import live_flat, preview_key
    from nst_plugin.live.session import live_settings
    from nst_plugin.live.stages import LIVE, StyleState
    from nst_plugin.settings import overrides_from_settings
    from nst_plugin.video import open_source

    style = load_image(samples / "starry_night.jpg")
    flat = live_flat({"size": 48, "iterations": 3, "weights": "hed", "option": [
        "keyframes.size=32", "keyframes.steps=6", "keyframes.patch=16", "keyframes.batch=2"]})
    preset, overrides = overrides_from_settings(flat)
    config, _, _ = prepare([style], preset or "default", **overrides)
    source = open_source(str(samples / "street.avi"), frames=f"{frame}-{frame}")
    settings = live_settings(config, (source.height, source.width))
    store = NetworkCache(cache / "live")
    key = preview_key(style, config, settings, source)
    assert store.find(key) is not None, "the server kept its network in the cache, under the preview's key"
    model = build_network(NetworkShape())
    model.load_weights(str(store.find(key)))
    state = StyleState(1, "starry_night", style, key, keyframe=store.find_keyframe(key))
    state.publish(model.get_weights(), LIVE)
    (_, image), = list(source.read())
    picture, stage = Painter(settings, keep=0.0)(state, image)
    assert stage == LIVE
    return picture


def test_the_first_request_learns_the_network_and_later_ones_answer_with_it(samples, tmp_path, cache):
    from nst_plugin.images import load_image, resize
    from nst_plugin.live.stages import palette, palette_of
    from nst_plugin.video import open_source

    server = Server(samples, tmp_path / "out", cache)
    try:
        ready = server.next()
        assert ready["event"] == "ready" and ready["frames"] == 40 and (ready["width"], ready["height"]) == (48, 36)
        asked = time.monotonic()
        server.send(5)
        first = server.answer()  # at once, in the style's colours, while the network learns from frame 5
        assert first["frame"] == 5 and first["stage"] == "palette" and "network" not in first
        (_, frame5), = list(open_source(str(samples / "street.avi"), frames="5-5").read())
        colours = palette(resize(frame5, 36, 48), palette_of(load_image(samples / "starry_night.jpg")))
        assert np.abs(load_image(first["path"]).astype(int) - colours).max() <= 1
        events = []
        while not events or events[-1].get("event") != "keyframe":
            events.append(server.next())
        server.send(6, 7)  # the user scrubs on while it learns
        answers = [server.answer()]
        while answers[-1]["stage"] != "live":
            answers.append(server.answer())
        learnt = time.monotonic() - asked
        live = answers[-1]  # the last frame answered, again, once the network is learnt
        assert live["frame"] == 7 and live["network"] == "trained", answers
        assert {a["stage"] for a in answers[:-1]} == {"palette"} and answers[-2]["frame"] == 7

        server.send(30)
        later = server.answer()
        assert later["frame"] == 30 and later["stage"] == "live" and "network" not in later and later["skipped"] == 0
        assert later["seconds"] < learnt / 4, (later, learnt)  # no keyframe, no training: the network only
        assert later["path"] == str(tmp_path / "out" / "preview_000030.png")
        picture = load_image(later["path"])
        expected = _served_picture(samples, cache, 30)
        assert np.abs(picture.astype(int) - expected.astype(int)).max() <= 2  # frame 30, seeked, through the network
        other = _served_picture(samples, cache, 7)
        assert np.abs(picture.astype(int) - other.astype(int)).mean() > 2  # (another frame's picture differs)
    finally:
        assert server.close() == 0


def test_waiting_requests_are_coalesced_and_bad_ones_get_an_error_line(samples, tmp_path, cache):
    server = Server(samples, tmp_path / "out", cache)
    try:
        server.send(3)
        while server.answer()["stage"] != "live":  # (a palette first when the network is not cached yet)
            pass
        server.send(*range(10, 30))  # scrubbing: twenty requests at once
        answers = [server.answer()]
        while answers[-1]["frame"] != 29:
            answers.append(server.answer())
        assert len(answers) < 20 and sum(a["skipped"] for a in answers) + len(answers) == 20
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
            f"preview_{a['frame']:06d}.png" for a in answers + [{"frame": 3}])

        server.send(41)
        assert server.answer() == {"frame": 41, "error": f"frame 41 is not in '{samples / 'street.avi'}' (frames 1-40)"}
        server.send("not json\n")
        assert server.answer()["error"].startswith("a request is one JSON object a line")
        server.send('{"frame": "12"}\n')
        assert "whole number" in server.answer()["error"]
        server.send(40)  # it goes on after an error
        assert server.answer()["frame"] == 40
    finally:
        assert server.close() == 0


def test_it_exits_when_stdin_closes_even_while_learning(samples, tmp_path):
    server = Server(samples, tmp_path / "out", tmp_path / "cache", "--option", "keyframes.steps=100000")
    server.send(5)
    while server.next().get("event") != "keyframe":  # the network learns now, for a long time
        pass
    started = time.monotonic()
    assert server.close(timeout=60) == 0
    assert time.monotonic() - started < 60


def test_bad_input_is_one_error_line_on_each_stream(samples, tmp_path, cache):
    server = Server(samples, tmp_path / "out", cache, clip="missing.avi")
    assert server.next() == {"error": f"source '{samples / 'missing.avi'}' does not exist"}
    assert server.next() is None
    assert server.process.wait(timeout=60) != 0
    message = f"error: source '{samples / 'missing.avi'}' does not exist"
    assert server.process.stderr.read().strip().splitlines() == [message]
    server.close()


def test_frames_are_read_by_index_in_any_order_as_reading_in_order_gives_them(samples, tmp_path):
    """The seek (decoding forward, or the decoder's seek) on an inter-frame video (MPEG-4 part 2, keyframes
    apart) and an image sequence's numbers: the same pixels as the engine's reading in order."""
    import random

    import cv2

    from nst_plugin.errors import UserError
    from nst_plugin.images import save_image
    from nst_plugin.video import open_source
    from nst_plugin.video.seek import FrameSeeker

    frames = [image for _, image in open_source(str(samples / "street.avi")).read()]
    clip = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (384, 288))
    assert writer.isOpened()
    for image in frames:
        writer.write(np.ascontiguousarray(image[:, :, ::-1]))
    writer.release()
    (tmp_path / "seq").mkdir()
    for number in range(7, 19):
        save_image(tmp_path / "seq" / f"shot_{number:04d}.png", frames[number])
    for spec in (str(clip), str(tmp_path / "seq" / "shot_####.png")):
        source = open_source(spec)
        in_order = dict(source.read())
        seeker = FrameSeeker(source)
        order = list(in_order)
        random.Random(0).shuffle(order)
        order += [max(in_order), min(in_order), min(in_order) + 1, max(in_order)]  # far back, one on, far on
        for index in order:
            assert np.array_equal(seeker.read(index), in_order[index]), (spec, index)
        with pytest.raises(UserError, match=r"frame 41 is not in .* \(frames (1-40|7-18)\)"):
            seeker.read(41)
        seeker.close()


def test_settings_made_for_another_engine_are_served_by_the_live_engine():
    from nst_plugin.live.preview import live_flat
    from nst_plugin.live.session import ENGINE

    flat = live_flat({"engine": "lbfgs", "option": ["lbfgs.warm=2", "w2.eps=1e-5"], "strength": 0.4})
    assert flat["engine"] == ENGINE and flat["option"] == ["w2.eps=1e-5"] and flat["strength"] == 0.4
    mine = live_flat({"engine": ENGINE, "option": [f"{ENGINE}.steps=50"]})
    assert mine["option"] == [f"{ENGINE}.steps=50"]
