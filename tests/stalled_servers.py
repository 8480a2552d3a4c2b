"""Mirrors that hang, as real servers on 127.0.0.1 (threads: the CLI runs its own loop).

`StalledServer` accepts TCP connections and never answers a byte: the blocked or
black-holed endpoint ops meet; it counts the connections, and those still open show
that a run ended before its own socket timeouts. `WriteStalledS3` answers reads as an
empty bucket would (404 NoSuchKey) and never answers a write: a store that hangs on
uploads, so a publish gets past its reads and stalls in the middle.
"""

from __future__ import annotations

import http.server
import socket
import threading
from types import TracebackType
from typing import Self

NO_SUCH_KEY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
    b"<Message>The specified key does not exist.</Message></Error>"
)


class StalledServer:
    """Accepts connections on 127.0.0.1 and holds them, silent, until closed."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.connected = threading.Event()  # set at the first connection
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._listener.close()  # wakes the accept loop
        self._thread.join(5)
        for held in self._held:
            held.close()

    @property
    def connections(self) -> int:
        """How many connections it has accepted."""
        return len(self._held)

    def open_connections(self) -> int:
        """How many of them the client has not closed yet (what it sent is read and dropped)."""
        return sum(_still_open(held) for held in list(self._held))

    def _accept(self) -> None:
        while True:
            try:
                held, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(held)
            self.connected.set()


def _still_open(held: socket.socket) -> bool:
    """Whether the peer still holds the connection: reads what it sent until none is left."""
    try:
        while held.recv(65536, socket.MSG_DONTWAIT):
            pass
    except BlockingIOError:
        return True
    except OSError:  # reset by the peer
        return False
    return False  # end of stream: closed by the peer


class _WriteStalling(http.server.BaseHTTPRequestHandler):
    """GET/HEAD: 404 NoSuchKey; PUT/POST/DELETE: no answer until the server stops."""

    protocol_version = "HTTP/1.1"
    server: _WriteStalledHTTPServer

    def do_GET(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(NO_SUCH_KEY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(NO_SUCH_KEY)

    do_HEAD = do_GET

    def do_PUT(self) -> None:
        self.server.writes.set()
        self.server.stopping.wait()
        self.close_connection = True

    do_POST = do_DELETE = do_PUT

    def log_message(self, *args: object) -> None:
        pass


class _WriteStalledHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WriteStalling)
        self.writes = threading.Event()
        self.stopping = threading.Event()


class WriteStalledS3:
    """An S3 endpoint on 127.0.0.1 that reads as an empty bucket and hangs on writes."""

    def __init__(self) -> None:
        self._server = _WriteStalledHTTPServer()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.writes = self._server.writes  # set at the first write
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
