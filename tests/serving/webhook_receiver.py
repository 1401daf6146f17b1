"""A real HTTP receiver of webhook deliveries on 127.0.0.1 for tests: it records every request and answers the
statuses it is told to, in order (the last one from then on)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class Receiver:
    """``url`` to give a webhook; ``received`` what came; ``statuses`` what to answer (``delay_s``: wait first;
    ``gate``: answer only once it is set)."""

    def __init__(self, statuses: Sequence[int] = (204,), *, port: int = 0, delay_s: float = 0.0,
                 gate: threading.Event | None = None) -> None:
        self.statuses = list(statuses)
        self.delay_s = delay_s
        self.gate = gate
        self.received: list[Received] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses[min(len(receiver.received), len(receiver.statuses)) - 1]
                time.sleep(receiver.delay_s)
                if receiver.gate is not None:
                    receiver.gate.wait(60)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/visionloop"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, n: int, *, timeout_s: float = 60.0) -> list[Received]:
        """The first ``n`` requests, once they came (a wait, not an assertion on how long it took)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= n:
                    return self.received[:n]
            time.sleep(0.05)
        raise AssertionError(f"the receiver got {len(self.received)} requests, expected {n}")


@contextmanager
def receiving(statuses: Sequence[int] = (204,), **kw: Any) -> Iterator[Receiver]:
    r = Receiver(statuses, **kw)
    try:
        yield r
    finally:
        r.close()
