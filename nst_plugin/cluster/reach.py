"""Is a dask scheduler at ``--cluster ADDRESS``? A look with a plain socket before dask's ``Client``, and the
``Client`` itself started under the same deadline (``NST_CLUSTER_TIMEOUT``), so that whatever listens there
(nothing, an HTTP server, a server that sends something else, one that says nothing) is one :class:`UserError`
line within the timeout, and a refused connection is one line at once.

Why a look first: dask's ``Client`` retries a refused connection until its timeout, waits for the handshake
without any timeout (a server that accepts and stays silent hangs it for good), and reads the first 8 bytes
it gets as the length of a message to allocate (a server that sends a banner: ``MemoryError: Unable to
allocate 2.82 EiB``). A dask scheduler speaks first: on accept it sends its handshake, one message of dask's
TCP framing (8 bytes: the message's length, little-endian; then 8 bytes: its number of frames; then each
frame's length); this module reads that much and no more, then closes the socket (the scheduler logs
"closed before handshake completed", at info level). No dask import here except in :func:`start_client`.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

from ..errors import UserError

GREETING_WAIT = 2.0  # seconds a scheduler has to greet before we ask the server, in HTTP, what it is
MAX_GREETING = 1 << 20  # a scheduler's handshake is ~60 bytes; a "length" beyond this is not dask's framing
MAX_FRAMES = 1 << 10
HINT = "is `dask scheduler` running there? (its port is 8786 by default)"
PLAIN_SCHEMES = ("tcp",)  # dask's framing straight on the socket: read its greeting
ENCRYPTED_SCHEMES = ("tls", "ws", "wss")  # a TCP socket, but not dask's bytes on it: connect only


def split_address(address: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of ``tcp://host:port``, ``host:port``, ``tls://[::1]:8786``; None for an
    address that is not host and port on TCP (``inproc://``, ``ucx://``: dask alone reaches it)."""
    scheme, _, location = address.rpartition("://")
    scheme = scheme or "tcp"
    if scheme not in (*PLAIN_SCHEMES, *ENCRYPTED_SCHEMES):
        return None
    location = location.split("/", 1)[0]
    if location.startswith("["):
        host, _, rest = location[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = location.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return scheme, host, int(port)


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _shown(data: bytes) -> str:
    """What a server sent, for a message: its first line when it looks like text, else its first bytes in hex."""
    lines = data[:200].decode("ascii", errors="replace").splitlines()
    if lines and lines[0].strip() and lines[0].isprintable():
        return repr(lines[0].strip()[:60])
    return f"bytes {data[:16].hex(' ')}{' ...' if len(data) > 16 else ''}"


def _greeting_problem(data: bytes) -> str | None:
    """None when ``data`` starts as dask's handshake does (as far as it goes), else what is wrong with it."""
    if len(data) < 8:
        return None
    (total,) = struct.unpack_from("<Q", data)
    if not 16 <= total <= MAX_GREETING:
        return "not dask's protocol"
    if len(data) >= 16:
        (frames,) = struct.unpack_from("<Q", data, 8)
        if not 1 <= frames <= MAX_FRAMES or 8 * (1 + frames) > total:
            return "not dask's protocol"
    return None


def _greeting_complete(data: bytes) -> bool:
    return len(data) >= 8 and len(data) >= 8 + struct.unpack_from("<Q", data)[0]


def look(address: str, timeout: float, deadline: float | None = None) -> None:
    """Raise one :class:`UserError` unless a dask scheduler seems to answer at ``address`` (connect, and on
    plain TCP read its greeting), within ``timeout`` seconds (or by ``deadline``, a ``time.monotonic()``)."""
    parts = split_address(address)
    if parts is None:
        return
    scheme, host, port = parts
    deadline = time.monotonic() + timeout if deadline is None else deadline
    try:
        sock = socket.create_connection((host, port), timeout=max(0.05, _left(deadline)))
    except ConnectionRefusedError:
        raise UserError(f"cannot reach the dask scheduler at {address}: connection refused (nothing listens on "
                        f"port {port} of {host}); {HINT}") from None
    except socket.gaierror as exc:
        raise UserError(f"cannot reach the dask scheduler at {address}: unknown host {host!r} ({exc.strerror})") from None
    except (socket.timeout, TimeoutError):
        raise UserError(f"cannot reach the dask scheduler at {address} within {timeout:g} s (the connection was not "
                        f"answered): {HINT}") from None
    except OSError as exc:
        raise UserError(f"cannot reach the dask scheduler at {address}: {exc.strerror or exc}; {HINT}") from None
    with sock:
        if scheme in PLAIN_SCHEMES:
            _read_greeting(sock, address, host, timeout, deadline)


def _read_greeting(sock: socket.socket, address: str, host: str, timeout: float, deadline: float) -> None:
    not_dask = f"{address} is not a dask scheduler"
    data = b""
    asked = False
    ask_at = time.monotonic() + min(GREETING_WAIT, _left(deadline) / 3)
    while True:
        if _greeting_complete(data):
            return
        problem = _greeting_problem(data)
        if problem is not None:
            if asked and data.startswith(b"HTTP/"):
                raise UserError(f"{not_dask}: an HTTP server answers there ({_shown(data)}; a dask dashboard is "
                                "on port 8787 by default): give the scheduler's port (8786 by default)")
            raise UserError(f"{not_dask}: it sent {_shown(data)}, {problem}; {HINT}")
        now = time.monotonic()
        if now >= deadline:
            said = f"sent {_shown(data)} and then nothing" if data else "said nothing"
            raise UserError(f"{not_dask}: it accepted the connection but {said} in {timeout:g} s (a scheduler "
                            f"greets at once); {HINT}")
        if not data and not asked and now >= ask_at:
            # an HTTP server (such as the dashboard's port) speaks when asked: ask, on this throwaway socket
            asked = True
            try:
                sock.sendall(f"HEAD / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode("ascii", "replace"))
            except OSError:
                pass
            continue
        sock.settimeout(max(0.01, min(deadline, ask_at if not asked and not data else deadline) - now))
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, TimeoutError):
            continue
        except OSError as exc:
            raise UserError(f"{not_dask}: it dropped the connection ({exc.strerror or exc}); {HINT}") from None
        if not chunk:
            said = f"sent {_shown(data)} and " if data else ""
            raise UserError(f"{not_dask}: it {said}closed the connection (a scheduler greets and waits); {HINT}")
        data += chunk


def start_client(address: str, timeout: float, deadline: float):
    """dask's ``Client(address)`` by ``deadline``, or one :class:`UserError`: started in a daemon thread (its
    handshake has no timeout of its own), which closes a client that comes too late."""
    from distributed import Client

    box: dict = {}
    lock = threading.Lock()

    def start():
        try:
            client = Client(address, timeout=max(0.5, _left(deadline)))
        except BaseException as exc:  # noqa: BLE001 - a garbled handshake raises anything (MemoryError, ValueError, ...)
            with lock:
                box["error"] = exc
            return
        with lock:
            late = box.get("abandoned", False)
            if not late:
                box["client"] = client
        if late:  # the caller gave up on it: nothing may stay connected
            try:
                client.close()
            except Exception:
                pass

    thread = threading.Thread(target=start, name="nst-dask-connect", daemon=True)
    thread.start()
    thread.join(_left(deadline) + 0.05)
    with lock:
        if "client" in box:
            return box["client"]
        box["abandoned"] = True
        error = box.get("error")
    if error is None:
        raise UserError(f"the dask scheduler at {address} did not complete the connection within {timeout:g} s; "
                        f"{HINT}")
    said = type(error).__name__ + (f": {str(error).splitlines()[0][:200]}" if str(error).strip() else "")
    if isinstance(error, (TimeoutError, OSError)):
        raise UserError(f"cannot reach the dask scheduler at {address} within {timeout:g} s ({said}); {HINT}")
    raise UserError(f"{address} does not answer as a dask scheduler ({said}); {HINT}")
