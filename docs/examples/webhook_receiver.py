"""A receiver of visionloop webhooks in plain Python (standard library only): it checks each delivery's signature and
timestamp, drops repeats, and answers 204; anything else it answers makes visionloop retry later.

Run it as ``python webhook_receiver.py SECRET [PORT]`` with the secret ``visionloop webhook add`` printed, and give
the webhook ``http://HOST:PORT/``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_S = 300  # refuse deliveries signed longer ago than this (a replayed old request)


def verify(secret: str, body: bytes, timestamp: str, signature: str, now: float | None = None) -> bool:
    """True when ``signature`` (X-Visionloop-Signature) is the HMAC-SHA256 of "<timestamp>.<body>" with ``secret``
    and ``timestamp`` (X-Visionloop-Timestamp, Unix seconds) is recent. ``body``: the raw bytes, as received."""
    try:
        if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_S:
            return False
    except ValueError:
        return False
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def make_handler(secret: str, seen: set[int]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not verify(secret, body, self.headers.get("X-Visionloop-Timestamp", ""),
                          self.headers.get("X-Visionloop-Signature", "")):
                self.send_response(401)
                self.end_headers()
                return
            event = json.loads(body)
            if event["id"] not in seen:  # a retry of a delivery that arrived already
                seen.add(event["id"])
                print(event["kind"], event["project"], json.dumps(event["payload"]))
            self.send_response(204)
            self.end_headers()

    return Handler


def main(secret: str, port: int = 8090) -> None:
    ThreadingHTTPServer(("0.0.0.0", port), make_handler(secret, set())).serve_forever()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 8090)
