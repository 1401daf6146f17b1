"""The webhook delivery worker against real HTTP receivers on 127.0.0.1: signed bodies, retries with backoff driven
by an injected clock, giving up, retry by hand, timeouts, and a restart that loses nothing."""

from __future__ import annotations

import random
import socket
from datetime import datetime, timedelta

import httpx
import pytest

from tests.serving.webhook_receiver import receiving
from visionloop.core.settings import Settings
from visionloop.serving.webhooks import WebhookWorker, public_address, sign_delivery, verify_signature
from visionloop.storage import Project
from visionloop.storage.events import (
    DeliveryState,
    EventKind,
    create_webhook,
    emit_event,
    list_deliveries,
    list_events,
    prune_events,
    retry_delivery,
    update_webhook,
)
from visionloop.storage.models import utcnow


class Clock:
    """A clock the test moves by hand (a little ahead of the real one, so deliveries just queued are due)."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


SETTINGS = Settings(webhook_max_attempts=3, webhook_backoff_s=10, webhook_backoff_max_s=60, webhook_timeout_s=5)


@pytest.fixture
def worker_for():
    made: list[WebhookWorker] = []

    def make(*projects: Project, settings: Settings = SETTINGS, clock: Clock | None = None) -> WebhookWorker:
        w = WebhookWorker(lambda: projects, settings=settings, clock=clock or Clock(), rng=random.Random(0))
        made.append(w)
        return w

    yield make
    for w in made:
        w.stop()


def state(project: Project, webhook_id: int) -> tuple[str, int, int | None]:
    d = list_deliveries(project, webhook_id)[1][0]
    return d.state.value, d.attempts, d.last_status


def test_a_delivery_is_signed_with_the_secret_and_a_timestamp(project_factory, worker_for) -> None:
    p: Project = project_factory("detection", name="cells")
    with receiving([200]) as rx:
        hook = create_webhook(p, rx.url, author="ada")
        with p.transaction() as conn:
            event_id = emit_event(conn, EventKind.VERSION_CREATED, {"version": "v1", "images": 12})
        clock = Clock()
        worker = worker_for(p, clock=clock)
        assert worker.run_once() == 1
        assert worker.run_once() == 0  # delivered: nothing left
        (got,) = rx.received
    assert got.path == "/hooks/visionloop"
    assert got.json["id"] == event_id and got.json["kind"] == "version.created" and got.json["project"] == p.name
    assert got.json["payload"] == {"version": "v1", "images": 12} and got.json["created_at"]
    h = {k.lower(): v for k, v in got.headers.items()}
    assert h["x-visionloop-event"] == "version.created" and h["content-type"] == "application/json"
    assert h["x-visionloop-delivery"] == str(list_deliveries(p, hook.webhook.id)[1][0].id)
    ts, sig = h["x-visionloop-timestamp"], h["x-visionloop-signature"]
    assert ts == str(int(clock.now.timestamp()))
    assert sig == sign_delivery(hook.secret, ts, got.body) and sig.startswith("sha256=") and len(sig) == 71
    now = clock.now.timestamp()
    assert verify_signature(hook.secret, got.body, timestamp=ts, signature=sig, now=now)
    assert not verify_signature("another secret!!", got.body, timestamp=ts, signature=sig, now=now)
    assert not verify_signature(hook.secret, got.body + b" ", timestamp=ts, signature=sig, now=now)
    assert not verify_signature(hook.secret, got.body, timestamp=str(int(ts) + 1), signature=sig, now=now)
    assert not verify_signature(hook.secret, got.body, timestamp=ts, signature=sig, now=now + 301)  # a replay
    assert not verify_signature(hook.secret, got.body, timestamp="soon", signature=sig, now=now)
    assert state(p, hook.webhook.id) == ("delivered", 1, 200)


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt(project_factory, worker_for) -> None:
    p: Project = project_factory("detection")
    with receiving([500, 503, 202]) as rx:
        wid = create_webhook(p, rx.url, author="ada", kinds=["review.done"]).webhook.id
        with p.transaction() as conn:
            emit_event(conn, EventKind.REVIEW_DONE, {"image_ids": [7]})
        clock = Clock()
        worker = worker_for(p, clock=clock)
        assert worker.run_once() == 1
        assert state(p, wid) == ("pending", 1, 500)
        first_wait = list_deliveries(p, wid)[1][0].next_attempt_at - clock.now
        assert timedelta(seconds=5) <= first_wait <= timedelta(seconds=10)  # backoff 10 s, jitter up to half
        assert worker.run_once() == 0  # not due yet
        clock.advance(10)
        assert worker.run_once() == 1
        assert state(p, wid) == ("pending", 2, 503)
        clock.advance(20)
        assert worker.run_once() == 1
        assert state(p, wid) == ("delivered", 3, 202)
        bodies = {r.body for r in rx.received}
    assert len(rx.received) == 3 and len(bodies) == 1  # the same event each time
    assert len({r.headers["X-Visionloop-Timestamp"] for r in rx.received}) == 3  # each attempt signed anew


def test_a_down_receiver_ends_failed_and_a_person_retries_it(project_factory, worker_for) -> None:
    p: Project = project_factory("detection")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wid = create_webhook(p, f"http://127.0.0.1:{port}/in", author="ada").webhook.id
    with p.transaction() as conn:
        emit_event(conn, EventKind.DRIFT_ALERT, {"mmd_p": 0.001})
    clock = Clock()
    worker = worker_for(p, clock=clock)
    for _ in range(3):
        assert worker.run_once() == 1
        clock.advance(3600)
    d = list_deliveries(p, wid)[1][0]
    assert (d.state, d.attempts, d.last_status) == (DeliveryState.FAILED, 3, None)
    assert "ConnectError" in d.last_error
    assert worker.run_once() == 0  # given up
    with receiving([200], port=port) as rx:  # the receiver is back
        retry_delivery(p, d.id, now=clock.now)
        assert worker.run_once() == 1
        assert rx.received[0].json["payload"] == {"mmd_p": 0.001}
    assert state(p, wid) == ("delivered", 4, 200)


def test_a_receiver_too_slow_to_answer_is_a_failed_attempt(project_factory, worker_for) -> None:
    p: Project = project_factory("detection")
    with receiving([200], delay_s=3) as rx:
        wid = create_webhook(p, rx.url, author="ada").webhook.id
        with p.transaction() as conn:
            emit_event(conn, EventKind.MODEL_PROMOTED, {"package": "cells-2"})
        worker = worker_for(p, settings=SETTINGS.model_copy(update={"webhook_timeout_s": 0.3}))
        assert worker.run_once() == 1
    d = list_deliveries(p, wid)[1][0]
    assert (d.state, d.attempts, d.last_status, d.last_error) == (DeliveryState.PENDING, 1, None,
                                                                   "no answer within 0.3 s")


def test_redirects_and_errors_are_not_deliveries_and_answers_are_cut(project_factory, worker_for) -> None:
    p: Project = project_factory("detection")
    with receiving([302, 404]) as rx:
        wid = create_webhook(p, rx.url, author="ada").webhook.id
        with p.transaction() as conn:
            emit_event(conn, EventKind.PREDICTION_FLAGGED, {"image_id": 3})
        clock = Clock()
        worker = worker_for(p, clock=clock)
        worker.run_once()
        assert state(p, wid) == ("pending", 1, 302)
        clock.advance(60)
        worker.run_once()
    d = list_deliveries(p, wid)[1][0]
    assert (d.last_status, d.last_error) == (404, "HTTP 404: ok")


def test_pending_deliveries_survive_a_restart_and_the_thread_sends_them(tmp_path, worker_for) -> None:
    root = tmp_path / "p"
    with receiving([204]) as rx:
        with Project.create(root, task="detection") as p:
            hook = create_webhook(p, rx.url, author="ada")
            with p.transaction() as conn:
                emit_event(conn, EventKind.VERSION_CREATED, {"version": "v9"})
            update_webhook(p, hook.webhook.id, active=False)  # held back while the server is "down"
        with Project.open(root) as p:  # the server starts again
            update_webhook(p, hook.webhook.id, active=True)
            worker = WebhookWorker(lambda: [p], settings=Settings(webhook_poll_s=0.05))
            worker.start()
            try:
                (got,) = rx.wait_for(1)
            finally:
                worker.stop()
            assert got.json["payload"] == {"version": "v9"}
            assert state(p, hook.webhook.id) == ("delivered", 1, 204)


def test_old_events_and_finished_deliveries_are_removed_pending_ones_stay(project_factory, worker_for) -> None:
    p: Project = project_factory("detection")
    with receiving([204, 500]) as rx:
        wid = create_webhook(p, rx.url, author="ada").webhook.id
        with p.transaction() as conn:
            emit_event(conn, EventKind.VERSION_CREATED, {"version": "v1"})  # delivered
        clock = Clock()
        keep_1_day = SETTINGS.model_copy(update={"event_keep_days": 1.0, "webhook_max_attempts": 1})
        worker = worker_for(p, clock=clock, settings=keep_1_day)
        assert worker.run_once() == 1
        with p.transaction() as conn:
            emit_event(conn, EventKind.MODEL_TRAINED, {"run": "r1"})  # given up after its one attempt
        assert worker.run_once() == 1
        with p.transaction() as conn:
            emit_event(conn, EventKind.DRIFT_ALERT, {"mmd_p": 0.01})  # pending: the webhook is turned off
        update_webhook(p, wid, active=False)
        assert [d.state.value for d in list_deliveries(p, wid)[1]] == ["pending", "failed", "delivered"]
        clock.advance(1800)
        worker.run_once()  # half an hour later: nothing is old yet, and the last removal was this hour anyway
        assert list_events(p)[0] == 3
        clock.advance(2 * 86400)
        worker.run_once()  # two days later: the finished deliveries and their events go, the pending one stays
        assert [(e.kind, e.payload) for e in list_events(p)[1]] == [("drift.alert", {"mmd_p": 0.01})]
        assert [d.state.value for d in list_deliveries(p, wid)[1]] == ["pending"]
        assert prune_events(p, before=clock.now) == (0, 0)  # nothing more to remove


def test_private_hosts_can_be_refused_and_the_checked_address_is_the_one_used(project_factory, worker_for) -> None:
    p: Project = project_factory("detection")
    private_off = SETTINGS.model_copy(update={"webhook_private_hosts": False})
    with receiving([204]) as rx:
        wid = create_webhook(p, rx.url, author="ada").webhook.id
        with p.transaction() as conn:
            emit_event(conn, EventKind.REVIEW_DONE, {"images": 1})
        assert worker_for(p, settings=private_off).run_once() == 1
        assert rx.received == []  # never connected
    d = list_deliveries(p, wid)[1][0]
    assert (d.state, d.attempts, d.last_status) == (DeliveryState.PENDING, 1, None)
    assert "127.0.0.1, which is not a public address" in d.last_error and "PRIVATE_HOSTS" in d.last_error

    names = {"hooks.example.com": ["93.184.215.14"], "mixed.example.com": ["93.184.215.14", "10.1.2.3"],
             "inside.example.com": ["fe80::1%eth0"]}
    assert public_address("hooks.example.com", 443, lambda h, _: names[h]) == "93.184.215.14"
    for host in ("mixed.example.com", "inside.example.com"):  # one private address is enough to refuse
        with pytest.raises(ValueError, match="not a public address"):
            public_address(host, 443, lambda h, _: names[h])

    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204, stream=httpx.ByteStream(b""))  # a body not read yet, as from a socket

    q: Project = project_factory("detection")
    wid = create_webhook(q, "https://hooks.example.com:8443/in", author="ada").webhook.id
    with q.transaction() as conn:
        emit_event(conn, EventKind.REVIEW_DONE, {"images": 2})
    worker = WebhookWorker(lambda: [q], settings=private_off, clock=Clock(), transport=httpx.MockTransport(answer),
                           resolve=lambda h, port: names[h] if port == 8443 else [])
    try:
        assert worker.run_once() == 1
    finally:
        worker.stop()
    (request,) = sent  # to the address that was checked, named as the receiver for its Host header and TLS
    assert (request.url.host, request.url.port, request.url.path) == ("93.184.215.14", 8443, "/in")
    assert request.headers["Host"] == "hooks.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert state(q, wid) == ("delivered", 1, 204), list_deliveries(q, wid)[1][0].last_error
