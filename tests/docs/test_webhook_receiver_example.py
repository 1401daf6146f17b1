"""The documented webhook receiver (docs/examples/webhook_receiver.py) accepts what the worker sends with the right
secret, and refuses it with another (so the worker retries)."""

from __future__ import annotations

import random
import runpy
import threading
from datetime import timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path

from visionloop.core.settings import Settings
from visionloop.serving.webhooks import WebhookWorker
from visionloop.storage import Project
from visionloop.storage.events import EventKind, create_webhook, emit_event, list_deliveries
from visionloop.storage.models import utcnow

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "webhook_receiver.py"


def test_the_documented_receiver_checks_signatures(project_factory, capsys) -> None:
    example = runpy.run_path(str(EXAMPLE))
    p: Project = project_factory("detection")
    servers = []
    for secret in ("the right secret", "another secret!"):
        server = ThreadingHTTPServer(("127.0.0.1", 0), example["make_handler"](secret, set()))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    try:
        right = create_webhook(p, f"http://127.0.0.1:{servers[0].server_address[1]}/", author="ada",
                               secret="the right secret").webhook.id
        wrong = create_webhook(p, f"http://127.0.0.1:{servers[1].server_address[1]}/", author="ada").webhook.id
        with p.transaction() as conn:
            emit_event(conn, EventKind.VERSION_CREATED, {"version": "v3"})
        now = utcnow() + timedelta(seconds=1)
        worker = WebhookWorker(lambda: [p], settings=Settings(), clock=lambda: now, rng=random.Random(0))
        try:
            assert worker.run_once() == 2
        finally:
            worker.stop()
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert [(d.state.value, d.last_status) for d in list_deliveries(p, right)[1]] == [("delivered", 204)]
    assert [(d.state.value, d.last_status) for d in list_deliveries(p, wrong)[1]] == [("pending", 401)]
    assert capsys.readouterr().out.splitlines() == [f'version.created {p.name} {{"version": "v3"}}']
    verify = example["verify"]
    assert not verify("s", b"{}", "12", "sha256=00", now=12 + 301) and not verify("s", b"{}", "x", "sha256=00")
