"""Webhooks and events over the project API on a real server (uvicorn on 127.0.0.1) with a real receiver: an admin
adds a webhook (its secret shown once), a reviewer's approval and an admin's new version of real BCCD images reach the
receiver signed, a test ping, a delivery given up and retried, who may call what."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import bearer_headers
from tests.serving.webhook_receiver import Receiver, receiving
from visionloop.core.settings import Settings
from visionloop.ingest import import_source
from visionloop.serving.projects_api.server import ServerThread
from visionloop.serving.webhooks import verify_signature
from visionloop.storage import Project
from visionloop.storage.users import Role

SAMPLE = Path(__file__).parents[2] / "examples" / "bccd-sample" / "BCCD"
API = "/api/v1/projects/cells"
SETTINGS = Settings(job_threads=1, webhook_poll_s=0.05, webhook_max_attempts=1, webhook_timeout_s=5)


@dataclass
class Served:
    http: httpx.Client
    project: Project
    rx: Receiver
    admin: dict[str, str]

    def url(self, path: str) -> str:
        return f"/api/v1/projects/cells{path}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("webhooks-api")
    src = tmp / "src"
    for sub in ("Annotations", "JPEGImages"):
        (src / sub).mkdir(parents=True)
    for xml in sorted((SAMPLE / "Annotations").glob("*.xml"))[:20]:
        (src / "Annotations" / xml.name).write_bytes(xml.read_bytes())
        (src / "JPEGImages" / f"{xml.stem}.jpg").write_bytes((SAMPLE / "JPEGImages" / f"{xml.stem}.jpg").read_bytes())
    with Project.create(tmp / "projects" / "cells", task="detection") as project:
        import_source(project, src, format="voc")
        admin = bearer_headers(project, Role.ADMIN)
    rx = Receiver([204])
    try:
        with ServerThread(tmp / "projects", settings=SETTINGS) as server, \
                httpx.Client(base_url=server.url, timeout=60) as http:
            yield Served(http, server.app.state.projects.get("cells"), rx, admin)
    finally:
        rx.close()


def test_an_approval_and_a_version_reach_the_receiver_signed(served: Served) -> None:
    s = served
    r = s.http.post(s.url("/webhooks"), json={"url": s.rx.url, "kinds": ["review.done", "version.created"]},
                    headers=s.admin)
    assert r.status_code == 201, r.text
    hook = r.json()
    secret = hook.pop("secret")
    assert len(secret) >= 32 and hook["created_by"] == "admin-user" and hook["active"] is True
    listed = s.http.get(s.url("/webhooks"), headers=s.admin).json()
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]
    assert "secret" not in s.http.get(s.url(f"/webhooks/{hook['id']}"), headers=s.admin).json()

    ids = [im.id for im in s.project.images()]
    reviewer = bearer_headers(s.project, Role.REVIEWER, user="rita")
    r = s.http.post(s.url("/images/bulk"), json={"ids": ids[:3], "action": "review", "value": "submitted"},
                    headers=reviewer)
    assert r.json()["changed"] == 3, r.text
    approve = f"{s.url('')}/work/review/approve"
    assert s.http.post(approve, json={"ids": ids[:2]}, headers=reviewer).json()["changed"] == 2
    r = s.http.post(s.url("/versions"), json={"name": "v1"}, headers=s.admin)
    assert r.status_code == 201, r.text
    version = r.json()

    review, made = s.rx.wait_for(2)
    for got in (review, made):
        h = {k.lower(): v for k, v in got.headers.items()}
        assert verify_signature(secret, got.body, timestamp=h["x-visionloop-timestamp"],
                                signature=h["x-visionloop-signature"])
    assert review.json["kind"] == "review.done" and review.json["project"] == "cells"
    assert review.json["payload"]["image_ids"] == ids[:2] and review.json["payload"]["reviewer"] == "rita"
    assert review.json["payload"]["links"]["images"][0] == f"/api/v1/projects/cells/images/{ids[0]}"
    assert made.json["kind"] == "version.created"
    splits = version["summary"]["splits"]
    assert made.json["payload"]["images"] == 20 == sum(splits.values()) and min(splits.values()) > 0
    assert made.json["payload"]["splits"] == splits and made.json["payload"]["hash"] == version["hash"]
    assert made.json["payload"]["author"] == "admin-user"
    assert str(s.project.root) not in review.body.decode() + made.body.decode()  # no disk paths leave

    viewer = bearer_headers(s.project, Role.VIEWER)
    events = s.http.get(s.url("/events"), params={"limit": 1}, headers=viewer).json()
    assert events["total"] == 2 and [e["kind"] for e in events["items"]] == ["version.created"]
    only = s.http.get(s.url("/events"), params={"kind": "review.done"}, headers=viewer).json()
    assert only["total"] == 1 and only["items"][0]["id"] == review.json["id"]
    deliveries = s.http.get(s.url(f"/webhooks/{hook['id']}/deliveries"), headers=s.admin).json()
    assert deliveries["total"] == 2
    assert {(d["state"], d["attempts"], d["last_status"]) for d in deliveries["items"]} == {("delivered", 1, 204)}

    r = s.http.post(s.url(f"/webhooks/{hook['id']}/test"), headers=s.admin)
    assert r.status_code == 202 and r.json()["kind"] == "webhook.ping" and r.json()["state"] == "pending"
    (_, _, ping) = s.rx.wait_for(3)
    assert ping.json["payload"]["by"] == "admin-user" and ping.headers["X-Visionloop-Event"] == "webhook.ping"


def test_a_delivery_given_up_is_retried_by_hand(served: Served) -> None:
    s = served
    with socket.socket() as sock:  # nobody listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hook = s.http.post(s.url("/webhooks"), json={"url": f"http://127.0.0.1:{port}/x", "secret": "k" * 20},
                       headers=s.admin).json()
    assert hook["secret"] == "k" * 20 and hook["kinds"] == []
    delivery = s.http.post(s.url(f"/webhooks/{hook['id']}/test"), headers=s.admin).json()
    path = s.url(f"/webhooks/{hook['id']}/deliveries")
    failed: list = []
    for _ in range(600):  # the worker gives up after its one attempt (webhook_max_attempts=1)
        failed = s.http.get(path, params={"state": "failed"}, headers=s.admin).json()["items"]
        if failed:
            break
        time.sleep(0.05)
    assert [d["id"] for d in failed] == [delivery["id"]]
    assert failed[0]["attempts"] == 1 and failed[0]["last_status"] is None and failed[0]["last_error"]
    assert failed[0]["next_attempt_at"] is None
    r = s.http.patch(s.url(f"/webhooks/{hook['id']}"), json={"active": False}, headers=s.admin)
    assert r.json()["active"] is False
    r = s.http.post(f"{path}/{delivery['id']}/retry", headers=s.admin)
    assert r.status_code == 202 and r.json()["state"] == "pending"  # waits: the webhook is off
    r = s.http.post(s.url(f"/webhooks/{hook['id']}/deliveries/{delivery['id']}/retry"), headers=s.admin)
    assert r.status_code == 409 and "only a failed delivery" in r.json()["detail"]
    assert s.http.delete(s.url(f"/webhooks/{hook['id']}"), headers=s.admin).status_code == 204
    r = s.http.get(s.url(f"/webhooks/{hook['id']}"), headers=s.admin)
    assert r.status_code == 404


def test_requests_do_not_wait_for_a_receiver(served: Served) -> None:
    s = served
    gate = threading.Event()
    with receiving([204], gate=gate) as slow:
        hook = s.http.post(s.url("/webhooks"), json={"url": slow.url, "kinds": ["version.created"]},
                           headers=s.admin).json()
        try:
            assert s.http.post(s.url(f"/webhooks/{hook['id']}/test"), headers=s.admin).status_code == 202
            slow.wait_for(1)  # the worker is sending, and the receiver holds the answer back
            made = s.http.post(s.url("/versions"), json={"name": "while-sending"}, headers=s.admin)
            assert made.status_code == 201, made.text  # written, its event queued, while a delivery is in flight
            pending = s.http.get(s.url(f"/webhooks/{hook['id']}/deliveries"), headers=s.admin).json()["items"]
            assert [(d["kind"], d["state"], d["attempts"]) for d in pending] == [
                ("version.created", "pending", 0), ("webhook.ping", "pending", 0)]
        finally:
            gate.set()
        kinds = [r.json["kind"] for r in slow.wait_for(2)]
    assert kinds == ["webhook.ping", "version.created"]
    assert s.http.delete(s.url(f"/webhooks/{hook['id']}"), headers=s.admin).status_code == 204


def test_bad_input_is_refused_with_how_to_fix_it(served: Served) -> None:
    s = served
    for body, words in (({"url": "ftp://example.com/in"}, "http:// or https://"),
                        ({"url": "https://u:p@example.com/in"}, "no user name or password"),
                        ({"url": "https://example.com/in", "kinds": ["review.finished"]}, "review.done"),
                        ({"url": "https://example.com/in", "secret": "short"}, "at least 16"),
                        ({"url": "https://example.com/in", "kinds": ["webhook.ping"]}, "review.done")):
        r = s.http.post(s.url("/webhooks"), json=body, headers=s.admin)
        assert r.status_code == 422 and words in r.text, (body, r.text)
    assert s.http.patch(s.url("/webhooks/9999"), json={"active": True}, headers=s.admin).status_code == 404
    assert s.http.post(s.url("/webhooks/9999/test"), headers=s.admin).status_code == 404
    assert s.http.get(s.url("/events"), params={"kind": "nope"}, headers=s.admin).status_code == 422
    assert s.http.get(s.url("/events"), params={"limit": 501}, headers=s.admin).status_code == 422


def test_who_may_call_the_webhook_and_event_routes(served: Served) -> None:
    s = served
    reviewer = bearer_headers(s.project, Role.REVIEWER, user="rita")
    routes = [("get", "/webhooks", None), ("post", "/webhooks", {"url": "https://example.com/in"}),
              ("get", "/webhooks/1", None), ("patch", "/webhooks/1", {"active": False}),
              ("delete", "/webhooks/1", None), ("post", "/webhooks/1/test", None),
              ("get", "/webhooks/1/deliveries", None), ("post", "/webhooks/1/deliveries/1/retry", None)]
    for method, path, body in routes:
        kw = {"json": body} if body is not None else {}
        r = s.http.request(method, s.url(path), **kw)
        assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", (method, path)
        r = s.http.request(method, s.url(path), headers=reviewer, **kw)
        assert r.status_code == 403 and "admin role" in r.json()["detail"], (method, path, r.text)
    assert s.http.get(s.url("/events")).status_code == 401
    assert s.http.get(s.url("/events"), headers={"Authorization": "Bearer vl_unknown"}).status_code == 401
    assert s.http.get(s.url("/events"), headers=bearer_headers(s.project, Role.VIEWER)).status_code == 200


@pytest.mark.slow
def test_a_detector_trained_in_a_job_is_announced_once(tmp_path: Path) -> None:
    """The path a person takes: a training job of the platform (its own `visionloop train` process) on real BCCD
    images; the worker of the server delivers one model.trained with the run's validation numbers."""
    src = tmp_path / "src" / "BCCD"
    for xml in sorted((SAMPLE / "Annotations").glob("*.xml"))[:8]:
        for sub, name in (("Annotations", xml.name), ("JPEGImages", f"{xml.stem}.jpg")):
            (src / sub).mkdir(parents=True, exist_ok=True)
            (src / sub / name).write_bytes((SAMPLE / sub / name).read_bytes())
    with Project.create(tmp_path / "projects" / "cells", task="detection") as p:
        import_source(p, src.parent)
        admin = bearer_headers(p, Role.ADMIN)
    with receiving([204]) as rx, ServerThread(tmp_path / "projects", settings=SETTINGS) as server, \
            httpx.Client(base_url=server.url, timeout=60) as http:
        project = server.app.state.projects.get("cells")
        hook = http.post(f"{API}/webhooks", json={"url": rx.url, "kinds": ["model.trained"]}, headers=admin).json()
        assert http.post(f"{API}/versions", json={"name": "v1"}, headers=admin).status_code == 201
        job = http.post(f"{API}/runs", json={"version": "v1", "epochs": 1, "image_size": 160}, headers=admin).json()
        (got,) = rx.wait_for(1, timeout_s=900)
        done = http.get(f"{API}/jobs/{job['id']}", headers=admin).json()
        assert got.json["kind"] == "model.trained" and verify_signature(
            hook["secret"], got.body, timestamp=got.headers["X-Visionloop-Timestamp"],
            signature=got.headers["X-Visionloop-Signature"])
        payload = got.json["payload"]
        assert payload["run"] == done["progress"]["run"] and payload["version"] == "v1"
        assert payload["model"] == "fasterrcnn_mobilenet_v2_fpn" and payload["task"] == "detection"
        assert payload["by"] == "admin-user"  # who started the job
        assert 0 <= payload["metrics"]["val_map50"] <= 1 and payload["metrics"]["epochs"] == 1
        events = http.get(f"{API}/events", params={"kind": "model.trained"}, headers=admin).json()
        assert events["total"] == 1 and str(project.root) not in got.body.decode()
