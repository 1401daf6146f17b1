"""Events and webhooks in the project store: webhook records, delivery claims, backoff, giving up, retry by hand, and
the events the platform emits where things happen (review done, version created, model trained)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.storage import NewImage, Project
from visionloop.storage.events import (
    MAX_WEBHOOKS,
    DeliveryRow,
    DeliveryState,
    EventKind,
    RetryPolicy,
    check_url,
    claim_deliveries,
    create_webhook,
    delete_webhook,
    emit_event,
    get_webhook,
    list_deliveries,
    list_events,
    list_webhooks,
    mark_delivered,
    mark_failed,
    queue_ping,
    retry_delivery,
    update_webhook,
)
from visionloop.storage.review import set_review_state
from visionloop.storage.versions import get_version
from visionloop.storage.work import approve_images
from visionloop.training import train


@pytest.fixture
def store(tmp_path, db_url: str | None):
    """A detection project on SQLite, and on PostgreSQL (see ``db_url``)."""
    with Project.create(tmp_path / "p", task="detection", db_url=db_url) as p:
        yield p


def add(project: Project, n: int) -> list[int]:
    return [project.add_images([NewImage(sha256=project.blobs.put(bytes([i]) * 8), width=8, height=8,
                                         format="jpeg", name=f"{i}.jpg")])[0][0] for i in range(n)]


def events(project: Project, kind: EventKind) -> list[dict]:
    return [e.payload for e in list_events(project, kind=kind, limit=500)[1]]


def test_webhooks_are_validated_and_the_secret_is_shown_once(project_factory) -> None:
    p: Project = project_factory("detection")
    made = create_webhook(p, " https://hooks.example.com/vl ", author="ada", kinds=["review.done"])
    assert made.webhook.url == "https://hooks.example.com/vl" and made.webhook.kinds == ["review.done"]
    assert len(made.secret) >= 32 and made.to_json()["secret"] == made.secret
    assert "secret" not in get_webhook(p, made.webhook.id).to_json()
    assert all("secret" not in w.to_json() for w in list_webhooks(p))
    given = create_webhook(p, "http://127.0.0.1:9/x", author="ada", secret="s" * 16)
    assert given.secret == "s" * 16 and given.webhook.kinds == []  # no kinds: every kind
    assert [check_url(u) for u in ("http://[::1]:8080/in", "https://bücher.example/a?b=%20")] == [
        "http://[::1]:8080/in", "https://bücher.example/a?b=%20"]
    for url in ("ftp://example.com/x", "example.com/x", "https://", "file:///etc/passwd", "http://a:b@host/x",
                "http://host:port/x", "https://h/" + "x" * 3000, "http://exa mple.com/", "http://a..b/",
                "http://ex\x00ample.com/", "http://" + "a" * 70 + ".com/"):
        with pytest.raises(AnnotationValidationError, match="webhook URL"):
            create_webhook(p, url, author="ada")
    with pytest.raises(NotFoundError, match="event kind 'review.finished'.*review.done"):
        create_webhook(p, "https://h/x", author="ada", kinds=["review.finished"])
    with pytest.raises(AnnotationValidationError, match="webhook secret"):
        create_webhook(p, "https://h/x", author="ada", secret="short")
    with pytest.raises(AnnotationValidationError, match="webhook kinds"):
        create_webhook(p, "https://h/x", author="ada", kinds=["webhook.ping"])
    assert len(list_webhooks(p)) == 2  # nothing refused was stored

    changed = update_webhook(p, made.webhook.id, kinds=[], active=False, url="http://other.example/y")
    assert (changed.kinds, changed.active, changed.url) == ([], False, "http://other.example/y")
    with pytest.raises(NotFoundError, match="webhook 99 not found; known: 1, 2"):
        update_webhook(p, 99, active=True)
    delete_webhook(p, made.webhook.id)
    assert [w.id for w in list_webhooks(p)] == [given.webhook.id]
    for i in range(MAX_WEBHOOKS - 1):
        create_webhook(p, f"https://h/{i}", author="ada")
    with pytest.raises(ConflictError, match="50 webhooks, the most"):
        create_webhook(p, "https://h/one-more", author="ada")


def test_an_event_is_queued_for_each_active_webhook_that_wants_its_kind(store: Project) -> None:
    p = store
    everything = create_webhook(p, "https://a.example/", author="ada").webhook.id
    reviews = create_webhook(p, "https://b.example/", author="ada", kinds=["review.done"]).webhook.id
    off = create_webhook(p, "https://c.example/", author="ada", active=False).webhook.id
    with p.transaction() as conn:
        e1 = emit_event(conn, EventKind.VERSION_CREATED, {"version": "v1"})
        e2 = emit_event(conn, "review.done", {"image_ids": [1]})
    with pytest.raises(ConflictError, match="queue_ping"), p.transaction() as conn:
        emit_event(conn, EventKind.PING, {})
    with pytest.raises(NotFoundError, match="event kind"), p.transaction() as conn:
        emit_event(conn, "nope", {})
    assert [(d.event_id, d.kind) for d in list_deliveries(p, everything)[1]] == [(e2, "review.done"),
                                                                                 (e1, "version.created")]
    assert [d.event_id for d in list_deliveries(p, reviews)[1]] == [e2]
    assert list_deliveries(p, off) == (0, [])
    total, page = list_events(p, limit=1)
    assert total == 2 and [e.id for e in page] == [e2]
    assert list_events(p, kind="version.created", offset=0)[1][0].payload == {"version": "v1"}


def test_claims_are_exclusive_until_the_lease_ends(store: Project) -> None:
    p = store
    hook = create_webhook(p, "https://a.example/", author="ada")
    with p.transaction() as conn:
        ids = [emit_event(conn, EventKind.DRIFT_ALERT, {"n": i}) for i in range(3)]
    now = datetime.now(UTC)
    first = claim_deliveries(p, limit=2, lease_s=60, now=now)
    assert [d.event_id for d in first] == ids[:2]
    assert first[0].url == "https://a.example/" and first[0].secret == hook.secret and first[0].payload == {"n": 0}
    assert [d.event_id for d in claim_deliveries(p, limit=5, lease_s=60, now=now)] == [ids[2]]
    assert claim_deliveries(p, limit=5, lease_s=60, now=now) == []  # all taken
    mark_delivered(p, first[0].id, status=204, now=now)
    again = claim_deliveries(p, limit=5, lease_s=60, now=now + timedelta(seconds=61))  # the worker died: retaken
    assert sorted(d.event_id for d in again) == ids[1:]
    update_webhook(p, hook.webhook.id, active=False)
    assert claim_deliveries(p, limit=5, lease_s=60, now=now + timedelta(hours=1)) == []  # off: they wait
    update_webhook(p, hook.webhook.id, active=True)
    assert len(claim_deliveries(p, limit=5, lease_s=60, now=now + timedelta(hours=1))) == 2
    done = list_deliveries(p, hook.webhook.id, state="delivered")[1]
    assert [(d.event_id, d.attempts, d.last_status) for d in done] == [(ids[0], 1, 204)]
    assert done[0].to_json()["next_attempt_at"] is None
    with pytest.raises(NotFoundError, match="delivery state"):
        list_deliveries(p, hook.webhook.id, state="lost")


def test_a_backlog_of_one_webhook_does_not_hold_up_the_others(project_factory) -> None:
    p: Project = project_factory("detection")
    busy = create_webhook(p, "https://busy.example/", author="ada", kinds=["prediction.flagged"]).webhook.id
    quiet = create_webhook(p, "https://quiet.example/", author="ada", kinds=["drift.alert"]).webhook.id
    with p.transaction() as conn:
        for i in range(30):
            emit_event(conn, EventKind.PREDICTION_FLAGGED, {"n": i})
        emit_event(conn, EventKind.DRIFT_ALERT, {"n": 30})
    taken = claim_deliveries(p, limit=4, lease_s=60, now=datetime.now(UTC) + timedelta(seconds=1))
    assert [d.webhook_id for d in taken] == [busy, busy, busy, quiet]  # oldest first, the quiet one in its turn
    assert [d.payload["n"] for d in taken] == [0, 1, 2, 30]


def test_backoff_grows_is_capped_and_gives_up_then_a_person_retries(store: Project) -> None:
    p = store
    wid = create_webhook(p, "https://a.example/", author="ada").webhook.id
    with p.transaction() as conn:
        emit_event(conn, EventKind.MODEL_TRAINED, {"run": "r1"})
    policy = RetryPolicy(max_attempts=5, base_s=10, cap_s=40, jitter=0)
    now, waits = datetime.now(UTC), []
    for _ in range(5):
        (d,) = claim_deliveries(p, limit=5, lease_s=30, now=now + timedelta(days=1))
        state = mark_failed(p, d.id, status=503, error="Service Unavailable", policy=policy, now=now)
        row = list_deliveries(p, wid)[1][0]
        if state is DeliveryState.PENDING:
            waits.append((row.next_attempt_at - now).total_seconds())
    assert waits == [10, 20, 40, 40]  # doubled, capped
    assert state is DeliveryState.FAILED
    row = list_deliveries(p, wid)[1][0]
    assert (row.state, row.attempts, row.last_status, row.last_error) == (DeliveryState.FAILED, 5, 503,
                                                                           "Service Unavailable")
    assert claim_deliveries(p, limit=5, lease_s=30, now=now + timedelta(days=9)) == []  # given up
    retried = retry_delivery(p, row.id, webhook_id=wid, now=now)
    assert retried.state is DeliveryState.PENDING and retried.attempts == 5
    with pytest.raises(ConflictError, match="only a failed delivery"):
        retry_delivery(p, row.id)
    (d,) = claim_deliveries(p, limit=5, lease_s=30, now=now)
    assert mark_failed(p, d.id, status=None, error="x" * 900, policy=policy, now=now) is DeliveryState.FAILED
    assert len(list_deliveries(p, wid)[1][0].last_error) == 500  # one more attempt by hand, then failed again
    with pytest.raises(NotFoundError, match="delivery 77"):
        retry_delivery(p, 77)


def test_jitter_stays_within_the_policy() -> None:
    policy = RetryPolicy(max_attempts=3, base_s=30, cap_s=600, jitter=0.5)
    rng = random.Random(0)
    for attempts, full in ((1, 30), (2, 60), (5, 480), (6, 600), (40, 600), (10**6, 600)):
        got = [policy.delay_s(attempts, rng) for _ in range(50)]
        assert full * 0.5 <= min(got) < max(got) <= full
    with pytest.raises(AnnotationValidationError, match="retry policy"):
        RetryPolicy(max_attempts=0)


def test_a_ping_goes_to_one_webhook(project_factory) -> None:
    p: Project = project_factory("detection")
    a = create_webhook(p, "https://a.example/", author="ada").webhook.id
    b = create_webhook(p, "https://b.example/", author="ada").webhook.id
    d = queue_ping(p, a, author="ada")
    assert (d.kind, d.state, d.webhook_id) == ("webhook.ping", DeliveryState.PENDING, a)
    assert list_deliveries(p, b)[0] == 0
    assert events(p, EventKind.PING) == [{"webhook_id": a, "by": "ada", "message": "a test delivery from visionloop",
                                          "links": {"webhook": f"/api/v1/projects/{p.name}/webhooks/{a}"}}]
    update_webhook(p, b, active=False)
    with pytest.raises(ConflictError, match="turn it on first"):
        queue_ping(p, b, author="ada")


def test_a_review_decision_is_one_event_in_its_transaction(project_factory) -> None:
    p: Project = project_factory("detection")
    wid = create_webhook(p, "https://a.example/", author="ada", kinds=["review.done"]).webhook.id
    ids = add(p, 3)
    set_review_state(p, ids, "submitted", author="ann")
    assert events(p, EventKind.REVIEW_DONE) == []  # submitting is no decision
    assert set_review_state(p, ids[:2], "approved", author="rita") == 2
    set_review_state(p, ids[:2], "approved", author="rita")  # nothing changes: no event
    set_review_state(p, [ids[2]], "rejected", author="rita", reason="loose boxes", tags=["loose_box"])
    approved, rejected = events(p, EventKind.REVIEW_DONE)[::-1]
    assert approved == {"decision": "approved", "image_ids": ids[:2], "images": 2, "reviewer": "rita", "reason": None,
                        "tags": [], "links": {"images": [f"/api/v1/projects/{p.name}/images/{i}" for i in ids[:2]]}}
    assert rejected["decision"] == "rejected" and rejected["reason"] == "loose boxes"
    assert rejected["tags"] == ["loose_box"] and rejected["image_ids"] == [ids[2]]
    assert list_deliveries(p, wid)[0] == 2
    with pytest.raises(NotFoundError):  # a decision refused writes no event either
        set_review_state(p, [ids[0], 999], "rejected", author="rita", reason="x")
    assert len(events(p, EventKind.REVIEW_DONE)) == 2
    with p.engine.connect() as conn:
        assert len(conn.execute(select(DeliveryRow.id)).all()) == 2


def test_approving_through_the_review_queue_is_one_event(project_factory) -> None:
    p: Project = project_factory("detection")
    ids = add(p, 2)
    set_review_state(p, ids, "submitted", author="ann")
    assert approve_images(p, ids, author="rita") == 2
    assert [(e["decision"], e["image_ids"], e["reviewer"]) for e in events(p, EventKind.REVIEW_DONE)] == [
        ("approved", ids, "rita")]


def test_a_version_and_a_training_run_are_announced_once(synthetic_project) -> None:
    p: Project = synthetic_project("classification")  # made with version v1
    (v1,) = events(p, EventKind.VERSION_CREATED)
    info = get_version(p, "v1")
    assert v1 == {"version": "v1", "hash": info.hash, "author": "cli", "images": 36, "splits": info.splits,
                  "split_mode": "random", "approved_only": False, "base": None,
                  "links": {"version": f"/api/v1/projects/{p.name}/versions/v1"}}
    hook = create_webhook(p, "https://a.example/", author="ada", kinds=["model.trained"])
    with pytest.raises(NotFoundError):
        train(p, version="nope", progress=False, model="test_resnet", pretrained=False, image_size=32)
    assert events(p, EventKind.MODEL_TRAINED) == []  # a run that never finished is not announced
    res = train(p, version="v1", strategy="linear", progress=False, model="test_resnet", pretrained=False,
                image_size=32, author="tess")
    (trained,) = events(p, EventKind.MODEL_TRAINED)
    assert trained["run"] == res.run_id and trained["task"] == "classification" and trained["version"] == "v1"
    assert trained["model"] == "test_resnet" and trained["metrics"] == res.metrics["val"] and trained["by"] == "tess"
    assert trained["links"] == {"run": f"/api/v1/projects/{p.name}/runs/{res.run_id}",
                                "report": f"/api/v1/projects/{p.name}/runs/{res.run_id}/report"}
    assert [d.kind for d in list_deliveries(p, hook.webhook.id)[1]] == ["model.trained"]
    assert "/" + str(p.root).strip("/") not in str(trained)  # no disk path leaves the server
