"""``nst video --cluster ADDRESS`` where no dask scheduler is: one ``error:`` line (exit 2) within
``NST_CLUSTER_TIMEOUT`` whatever listens there, at once when nothing does, and the output folder untouched.

Real sockets on 127.0.0.1, a fake server a test (an HTTP server, one that sends binary bytes on accept, one
that accepts and says nothing, one that greets as a dask scheduler and then says nothing) and a port nobody
listens on; dask itself is not mocked.
"""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from test_video import error_lines, nst, street_frames, write_sequence

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 3  # NST_CLUSTER_TIMEOUT in these tests
MARGIN = 1.5  # seconds over it the command may take to say so (its own work before it connects included)
TINY = ["--size", "48", "--iterations", "3", "--weights", "hed"]
# a dask scheduler's handshake, as the installed dask.distributed sends it on accept (captured from one)
DASK_GREETING = (bytes.fromhex("3a00000000000000" "0100000000000000" "2a00000000000000")
                 + b"\x83\xabcompression\xc0\xa6python\x93\x03\x0b\x07\xafpickle-protocol\x05")


class FakeServer:
    """A listening socket on 127.0.0.1 that does ``behaviour`` with every connection, in a daemon thread;
    ``accepted`` holds the time.monotonic() of each accept."""

    def __init__(self, behaviour):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.behaviour, self.accepted, self.connections = behaviour, [], []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(time.monotonic())
            self.connections.append(connection)  # kept open: a silent server does not hang up either
            self.behaviour(connection)

    def close(self):
        self.sock.close()
        for connection in self.connections:
            connection.close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"tcp://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake():
    servers = []

    def make(behaviour):
        servers.append(FakeServer(behaviour))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    write_sequence(folder / "seq", street_frames(ROOT / "samples", 2, size=48))
    return folder / "seq" / "####.png", ROOT / "samples" / "starry_night.jpg"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_cli(clip, out, address, monkeypatch):
    """``nst video --cluster address`` in this process: (result, seconds)."""
    monkeypatch.setenv("NST_CLUSTER_TIMEOUT", str(TIMEOUT))
    nst("video", "--help")  # the command's imports, done before the clock starts
    started = time.monotonic()
    result = nst("video", clip[0], "-s", clip[1], "-o", out, *TINY, "--cluster", address)
    seconds = time.monotonic() - started
    print(f"{address}: {seconds:.2f} s")
    return result, seconds


def assert_one_line(result, out, *words):
    assert result.exit_code == 2, result.output
    lines = error_lines(result)
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert all(word in lines[0] for word in words), lines[0]
    assert not out.exists()
    return lines[0]


def test_a_refused_connection_is_one_line_at_once(clip, tmp_path, monkeypatch):
    address = f"tcp://127.0.0.1:{free_port()}"
    result, seconds = run_cli(clip, tmp_path / "out", address, monkeypatch)
    assert_one_line(result, tmp_path / "out", address, "connection refused")
    assert seconds < 1.5, seconds


def test_an_http_server_is_one_line(clip, tmp_path, monkeypatch, http_server):
    result, seconds = run_cli(clip, tmp_path / "out", http_server, monkeypatch)
    assert_one_line(result, tmp_path / "out", http_server, "not a dask scheduler", "HTTP server", "8786")
    assert seconds < TIMEOUT + MARGIN, seconds


def test_a_server_that_sends_a_binary_banner_is_one_line(clip, tmp_path, monkeypatch, fake):
    # 8 bytes of 0xff: dask read them as a message's length and tried to allocate 16 EiB
    server = fake(lambda connection: connection.sendall(b"\xff" * 8 + bytes(range(7, 200, 3))))
    result, seconds = run_cli(clip, tmp_path / "out", server.address, monkeypatch)
    line = assert_one_line(result, tmp_path / "out", server.address, "not a dask scheduler", "ff ff ff ff")
    assert "MemoryError" not in line and "internal error" not in result.output
    assert seconds < TIMEOUT + MARGIN, seconds


def test_a_server_that_greets_as_dask_then_says_nothing_is_one_line(clip, tmp_path, monkeypatch, fake):
    """What passes the look (a dask handshake) is dask's Client's to reach, under the same deadline."""
    server = fake(lambda connection: connection.sendall(DASK_GREETING))
    result, seconds = run_cli(clip, tmp_path / "out", server.address, monkeypatch)
    assert_one_line(result, tmp_path / "out", server.address, f"{TIMEOUT} s")
    assert len(server.accepted) >= 2  # the look, then dask's Client
    assert seconds < TIMEOUT + MARGIN, seconds


def test_a_silent_server_is_one_line_and_the_process_exits(clip, tmp_path, fake):
    """In its own process: the command says so within the timeout of reaching the server, and exits."""
    server = fake(lambda connection: None)
    out = tmp_path / "out"
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "nst_plugin", "video", str(clip[0]), "-s", str(clip[1]), "-o",
                          str(out), *TINY, "--cluster", server.address], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "NST_CLUSTER_TIMEOUT": str(TIMEOUT)})
    ended = time.monotonic()
    print(f"silent: {ended - server.accepted[0]:.2f} s after the accept, {ended - started:.2f} s in all")
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert server.address in lines[0] and "said nothing in 3 s" in lines[0], lines[0]
    assert len(server.accepted) == 1
    assert ended - server.accepted[0] < TIMEOUT + MARGIN + 1.0, (ended - server.accepted[0], ended - started)
    assert not out.exists()


@pytest.mark.parametrize("address, expected", [
    ("tcp://10.0.0.5:8786", ("tcp", "10.0.0.5", 8786)),
    ("10.0.0.5:8786", ("tcp", "10.0.0.5", 8786)),
    ("tls://[::1]:8786", ("tls", "::1", 8786)),
    ("tcp://scheduler.example:8786/", ("tcp", "scheduler.example", 8786)),
    ("inproc://10.0.0.5/1/2", None),
    ("ucx://10.0.0.5:8786", None),
    ("tcp://10.0.0.5:port", None),
])
def test_addresses_the_look_understands(address, expected):
    from nst_plugin.cluster.reach import split_address

    assert split_address(address) == expected
