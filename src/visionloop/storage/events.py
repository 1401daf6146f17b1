"""Events for the company's systems and the webhooks that deliver them (migration 0010).

An *event* records something another system may want to act on, with a JSON payload: a prediction flagged by a model
server, a review done, a dataset version created, a model trained, a model promoted, a drift alert. A *webhook* is a
URL (and the secret its deliveries are signed with) that receives events of chosen kinds; a *delivery* is one event
on its way to one webhook, retried with backoff until it is delivered or given up. Events are written in the same
transaction as what they report, so an event is never announced for a change that was rolled back.

The delivery worker (``visionloop.serving.webhooks``) works through the functions here: :func:`claim_deliveries`
takes due pending deliveries (a compare-and-set on ``next_attempt_at`` that pushes it one lease ahead, so two workers
never send the same attempt and a worker that dies mid-send is retried after the lease), then
:func:`mark_delivered` or :func:`mark_failed` (exponential backoff with jitter, capped, see :class:`RetryPolicy`;
after ``max_attempts`` the delivery is ``failed``, and :func:`retry_delivery` queues one more attempt by hand).
Payloads carry ids, names, who, numbers and API paths (:func:`api_path`), never secrets or disk paths.
"""

from __future__ import annotations

import json
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.core.errors import AnnotationValidationError, ConflictError, NotFoundError
from visionloop.storage.models import Base, utcnow
from visionloop.storage.project import Project

__all__ = [
    "API_PREFIX",
    "MAX_SECRET",
    "MAX_URL",
    "MAX_WEBHOOKS",
    "MIN_SECRET",
    "Delivery",
    "DeliveryRow",
    "DeliveryState",
    "DueDelivery",
    "Event",
    "EventKind",
    "EventRow",
    "NewWebhook",
    "RetryPolicy",
    "Webhook",
    "WebhookRow",
    "api_path",
    "check_url",
    "claim_deliveries",
    "create_webhook",
    "delete_webhook",
    "emit_event",
    "get_delivery",
    "get_webhook",
    "list_deliveries",
    "list_events",
    "list_webhooks",
    "mark_delivered",
    "mark_failed",
    "prune_events",
    "queue_ping",
    "retry_delivery",
    "update_webhook",
]

API_PREFIX = "/api/v1"
"""Prefix of the project API, for the links events carry (the serving layer mounts its routes under it)."""
MAX_URL = 2048
MAX_ERROR = 500
"""Characters of a failed attempt's error (or answer) that a delivery keeps."""
MIN_SECRET, MAX_SECRET = 16, 128
MAX_WEBHOOKS = 50
"""Webhooks a project may have: every event is queued for each of them."""


class EventKind(StrEnum):
    PREDICTION_FLAGGED = "prediction.flagged"
    REVIEW_DONE = "review.done"
    VERSION_CREATED = "version.created"
    MODEL_TRAINED = "model.trained"
    MODEL_PROMOTED = "model.promoted"
    DRIFT_ALERT = "drift.alert"
    PING = "webhook.ping"
    """A test delivery an admin sends to one webhook (:func:`queue_ping`); never sent to the others."""

    @classmethod
    def parse(cls, value: str | EventKind) -> EventKind:
        try:
            return cls(value)
        except ValueError:
            raise NotFoundError("event kind", value, choices=[k.value for k in cls]) from None


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    """Given up after the last retry; kept with its last status and error."""


class EventRow(Base):
    """One event (never updated)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_events_kind", "kind", "id"),)


class WebhookRow(Base):
    """A receiver of events: ``kinds`` lists the event kinds it wants (empty: all)."""

    __tablename__ = "webhooks"
    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(128))
    """The shared HMAC key: the receiver checks each delivery's signature with it, so it is kept as given."""
    kinds: Mapped[list[Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeliveryRow(Base):
    """One event on its way to one webhook."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("event_id", "webhook_id", name="uq_deliveries_event_webhook"),
                      Index("ix_deliveries_due", "state", "next_attempt_at"))


def emit_event(conn: Connection, kind: EventKind | str, payload: dict[str, Any]) -> int:
    """Record an event in the caller's transaction and queue a pending delivery for every active webhook that wants
    its kind; returns the event's id. The platform server's delivery worker sends them."""
    kind = EventKind.parse(kind)
    if kind is EventKind.PING:
        raise ConflictError("webhook.ping goes to one webhook only: use queue_ping(project, webhook_id, author=...)")
    event_id = conn.execute(insert(EventRow).values(kind=kind.value, payload=payload)).inserted_primary_key[0]
    hooks = conn.execute(select(WebhookRow.id, WebhookRow.kinds).where(WebhookRow.active.is_(True))).all()
    wanted = [h.id for h in hooks if not h.kinds or kind.value in h.kinds]
    if wanted:
        conn.execute(insert(DeliveryRow), [{"event_id": event_id, "webhook_id": w} for w in wanted])
    return int(event_id)


def api_path(project: str, *parts: object) -> str:
    """The project API's path of a resource, for an event's links: ``api_path("cells", "images", 5)`` is
    ``/api/v1/projects/cells/images/5``."""
    return "/".join([API_PREFIX, "projects", quote(project, safe=""), *(quote(str(p), safe="") for p in parts)])


def _at(value: datetime) -> datetime:
    """Datetimes read from SQLite come back naive; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else _at(value)


def _iso(value: datetime | None) -> str | None:
    v = _utc(value)
    return v.isoformat() if v is not None else None


# ---- webhooks ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """A receiver of events (without its secret: that is shown once, when it is made)."""

    id: int
    url: str
    kinds: list[str]
    active: bool
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "url": self.url, "kinds": self.kinds, "active": self.active,
                "created_by": self.created_by, "created_at": _iso(self.created_at)}


@dataclass(frozen=True)
class NewWebhook:
    """A webhook just made, with its secret (:func:`create_webhook` is the only place that returns it)."""

    webhook: Webhook
    secret: str

    def to_json(self) -> dict[str, Any]:
        return self.webhook.to_json() | {"secret": self.secret}


def check_url(url: str) -> str:
    """``url`` stripped, when it is an absolute http or https URL with a host and no user name or password in it."""
    url = (url or "").strip()
    try:
        if any(ch.isspace() or not ch.isprintable() for ch in url):
            raise ValueError("a space or control character")
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a port that is not a number raises here)
        if host:
            host.encode("idna")  # empty or overlong labels raise here
    except ValueError:  # UnicodeError too
        parts, host = None, None
    if parts is None or parts.scheme not in ("http", "https") or not host or len(url) > MAX_URL:
        raise AnnotationValidationError("webhook URL", expected=f"an http:// or https:// URL with a host (at most "
                                        f"{MAX_URL} characters), e.g. https://hooks.example.com/visionloop",
                                        actual=repr(url[:100]))
    if parts.username is not None or parts.password is not None:
        raise AnnotationValidationError("webhook URL", expected="no user name or password in the URL (it is listed "
                                        "to every admin); the receiver checks the signature made with the secret",
                                        actual=repr(f"{parts.scheme}://...@{host}"))
    return url


def _kinds(kinds: Sequence[str] | None) -> list[str]:
    chosen = list(dict.fromkeys(EventKind.parse(k).value for k in (kinds or [])))
    if EventKind.PING.value in chosen:
        raise AnnotationValidationError("webhook kinds", expected="kinds of events (every webhook receives its own "
                                        "test pings)", actual=EventKind.PING.value)
    return chosen


def _secret(secret: str | None) -> str:
    if secret is None:
        return secrets.token_urlsafe(32)
    if not MIN_SECRET <= len(secret) <= MAX_SECRET or secret != secret.strip():
        raise AnnotationValidationError("webhook secret", expected=f"{MIN_SECRET}-{MAX_SECRET} characters without "
                                        "surrounding spaces (or none: a random one is made)", actual=len(secret))
    return secret


def _webhook(row: Any) -> Webhook:
    return Webhook(id=row.id, url=row.url, kinds=list(row.kinds or []), active=bool(row.active),
                   created_by=row.created_by, created_at=_at(row.created_at))


def create_webhook(project: Project, url: str, *, author: str, kinds: Sequence[str] | None = None,
                   secret: str | None = None, active: bool = True) -> NewWebhook:
    """A new webhook receiving ``kinds`` (none: every kind); ``secret`` (16-128 characters) is made when not given.
    The secret is in the answer only: list and get leave it out. At most :data:`MAX_WEBHOOKS` per project."""
    url, chosen, key = check_url(url), _kinds(kinds), _secret(secret)
    with project.transaction() as conn:
        if conn.execute(select(func.count()).select_from(WebhookRow)).scalar_one() >= MAX_WEBHOOKS:
            raise ConflictError(f"the project has {MAX_WEBHOOKS} webhooks, the most it may have; remove one it no "
                                "longer needs (or send several kinds to one receiver)")
        wid = conn.execute(insert(WebhookRow).values(url=url, secret=key, kinds=chosen, active=active,
                                                     created_by=author, created_at=utcnow())).inserted_primary_key[0]
        row = conn.execute(select(WebhookRow).where(WebhookRow.id == wid)).one()
    return NewWebhook(webhook=_webhook(row), secret=key)


def list_webhooks(project: Project) -> list[Webhook]:
    """Oldest first."""
    with project.engine.connect() as conn:
        return [_webhook(r) for r in conn.execute(select(WebhookRow).order_by(WebhookRow.id))]


def _webhook_row(conn: Connection, webhook_id: int) -> Any:
    row = conn.execute(select(WebhookRow).where(WebhookRow.id == webhook_id)).first()
    if row is None:
        known = [str(i) for i in conn.execute(select(WebhookRow.id).order_by(WebhookRow.id)).scalars()]
        raise NotFoundError("webhook", webhook_id, choices=known or ["none yet: add one (visionloop webhook add)"])
    return row


def get_webhook(project: Project, webhook_id: int) -> Webhook:
    with project.engine.connect() as conn:
        return _webhook(_webhook_row(conn, webhook_id))


def update_webhook(project: Project, webhook_id: int, *, url: str | None = None, kinds: Sequence[str] | None = None,
                   active: bool | None = None) -> Webhook:
    """Change what is given: the URL, the kinds (an empty list: every kind), on or off. A webhook turned off gets no
    new deliveries, and its pending ones wait until it is on again."""
    values: dict[str, Any] = {}
    if url is not None:
        values["url"] = check_url(url)
    if kinds is not None:
        values["kinds"] = _kinds(kinds)
    if active is not None:
        values["active"] = bool(active)
    with project.transaction() as conn:
        _webhook_row(conn, webhook_id)
        if values:
            conn.execute(update(WebhookRow).where(WebhookRow.id == webhook_id).values(**values))
        return _webhook(_webhook_row(conn, webhook_id))


def delete_webhook(project: Project, webhook_id: int) -> None:
    """Remove a webhook and its deliveries (the events stay)."""
    with project.transaction() as conn:
        _webhook_row(conn, webhook_id)
        conn.execute(delete(DeliveryRow).where(DeliveryRow.webhook_id == webhook_id))
        conn.execute(delete(WebhookRow).where(WebhookRow.id == webhook_id))


# ---- events ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "created_at": _iso(self.created_at), "payload": self.payload}


def list_events(project: Project, *, kind: EventKind | str | None = None, offset: int = 0,
                limit: int = 50) -> tuple[int, list[Event]]:
    """(how many events there are of ``kind`` or of every kind, one page of them newest first)."""
    where = [EventRow.kind == EventKind.parse(kind).value] if kind is not None else []
    with project.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(EventRow).where(*where)).scalar_one()
        rows = conn.execute(select(EventRow).where(*where).order_by(EventRow.id.desc())
                            .offset(offset).limit(limit)).all()
    return int(total), [Event(id=r.id, kind=r.kind, payload=r.payload, created_at=_at(r.created_at)) for r in rows]


# ---- deliveries --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One event on its way to one webhook: its state, attempts made, the next one, the last answer or error."""

    id: int
    webhook_id: int
    event_id: int
    kind: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    event_created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "webhook_id": self.webhook_id, "event_id": self.event_id, "kind": self.kind,
                "state": self.state.value, "attempts": self.attempts,
                "next_attempt_at": _iso(self.next_attempt_at) if self.state is DeliveryState.PENDING else None,
                "last_status": self.last_status, "last_error": self.last_error,
                "delivered_at": _iso(self.delivered_at), "event_created_at": _iso(self.event_created_at)}


_DELIVERY_COLUMNS = (DeliveryRow, EventRow.kind, EventRow.created_at.label("event_created_at"))


def _delivery(r: Any) -> Delivery:
    return Delivery(id=r.id, webhook_id=r.webhook_id, event_id=r.event_id, kind=r.kind, state=DeliveryState(r.state),
                    attempts=r.attempts, next_attempt_at=_utc(r.next_attempt_at), last_status=r.last_status,
                    last_error=r.last_error, delivered_at=_utc(r.delivered_at),
                    event_created_at=_at(r.event_created_at))


def _delivery_query() -> Any:
    return select(*_DELIVERY_COLUMNS).join(EventRow, EventRow.id == DeliveryRow.event_id)


def list_deliveries(project: Project, webhook_id: int, *, state: DeliveryState | str | None = None, offset: int = 0,
                    limit: int = 50) -> tuple[int, list[Delivery]]:
    """(how many deliveries the webhook has, in ``state`` or any, one page of them newest first)."""
    where = [DeliveryRow.webhook_id == webhook_id]
    if state is not None:
        try:
            where.append(DeliveryRow.state == DeliveryState(state).value)
        except ValueError:
            raise NotFoundError("delivery state", state, choices=[s.value for s in DeliveryState]) from None
    with project.engine.connect() as conn:
        _webhook_row(conn, webhook_id)
        total = conn.execute(select(func.count()).select_from(DeliveryRow).where(*where)).scalar_one()
        rows = conn.execute(_delivery_query().where(*where).order_by(DeliveryRow.id.desc())
                            .offset(offset).limit(limit)).all()
    return int(total), [_delivery(r) for r in rows]


def _delivery_row(conn: Connection, delivery_id: int, webhook_id: int | None) -> Any:
    q = _delivery_query().where(DeliveryRow.id == delivery_id)
    if webhook_id is not None:
        q = q.where(DeliveryRow.webhook_id == webhook_id)
    row = conn.execute(q).first()
    if row is None:
        raise NotFoundError("delivery", delivery_id, hint="list a webhook's deliveries with GET "
                            ".../webhooks/{id}/deliveries" if webhook_id is None else
                            f"list webhook {webhook_id}'s deliveries with GET .../webhooks/{webhook_id}/deliveries")
    return row


def get_delivery(project: Project, delivery_id: int, *, webhook_id: int | None = None) -> Delivery:
    with project.engine.connect() as conn:
        return _delivery(_delivery_row(conn, delivery_id, webhook_id))


def retry_delivery(project: Project, delivery_id: int, *, webhook_id: int | None = None,
                   now: datetime | None = None) -> Delivery:
    """Queue one more attempt, now, of a delivery that was given up (``failed``); should that attempt fail too, it
    is ``failed`` again (attempts keep counting). ConflictError for a delivery that is pending or delivered."""
    with project.transaction() as conn:
        row = _delivery_row(conn, delivery_id, webhook_id)
        if row.state != DeliveryState.FAILED.value:
            raise ConflictError(f"delivery {delivery_id} is {row.state}; only a failed delivery is retried by hand "
                                "(a pending one is retried on its own)")
        conn.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(
            state=DeliveryState.PENDING.value, next_attempt_at=now or utcnow()))
        return _delivery(_delivery_row(conn, delivery_id, webhook_id))


def queue_ping(project: Project, webhook_id: int, *, author: str) -> Delivery:
    """Send a test event (kind ``webhook.ping``) to this webhook only; the worker delivers it like any other."""
    with project.transaction() as conn:
        hook = _webhook_row(conn, webhook_id)
        if not hook.active:
            raise ConflictError(f"webhook {webhook_id} is off; turn it on first (PATCH .../webhooks/{webhook_id} "
                                "with {\"active\": true}), then test it")
        payload = {"webhook_id": webhook_id, "by": author, "message": "a test delivery from visionloop",
                   "links": {"webhook": api_path(project.name, "webhooks", webhook_id)}}
        event_id = conn.execute(insert(EventRow).values(kind=EventKind.PING.value, payload=payload,
                                                        created_at=utcnow())).inserted_primary_key[0]
        did = conn.execute(insert(DeliveryRow).values(event_id=event_id, webhook_id=webhook_id,
                                                      next_attempt_at=utcnow())).inserted_primary_key[0]
        return _delivery(_delivery_row(conn, did, webhook_id))


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again: after ``base_s * 2**(attempts - 1)`` seconds, capped at ``cap_s``, times
    a random factor in [1 - jitter, 1] (so receivers that came back are not hit by every sender at once); after
    ``max_attempts`` attempts the delivery is given up (``failed``). The defaults keep trying for 7 to 15 hours."""

    max_attempts: int = 12
    base_s: float = 30.0
    cap_s: float = 6 * 3600.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.base_s < 0 or self.cap_s < self.base_s or not 0 <= self.jitter <= 1:
            raise AnnotationValidationError("webhook retry policy", expected="max_attempts >= 1, 0 <= base_s <= "
                                            "cap_s, 0 <= jitter <= 1", actual=repr(self))

    def delay_s(self, attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 for the first)."""
        full = min(self.cap_s, self.base_s * 2.0 ** min(max(attempts - 1, 0), 62))
        return full * (1.0 - self.jitter * (rng or random).random())


@dataclass(frozen=True)
class DueDelivery:
    """A claimed delivery with what sending it needs: the webhook's URL and secret, and the event."""

    id: int
    webhook_id: int
    url: str
    secret: str
    attempts: int
    event_id: int
    kind: str
    created_at: datetime
    payload: dict[str, Any]

    def body(self, project: str) -> bytes:
        """The JSON the receiver gets: ``{"id", "kind", "created_at", "project", "payload"}`` (``id`` is the event's:
        the same in every attempt and for every webhook, so a receiver can drop repeats)."""
        return json.dumps({"id": self.event_id, "kind": self.kind, "created_at": _iso(self.created_at),
                           "project": project, "payload": self.payload}, separators=(",", ":"),
                          sort_keys=True).encode()


FAIR_WINDOW = 10
"""A claim looks at this many times ``limit`` due deliveries and takes them one webhook at a time, so a receiver with
a long backlog (slow, or just back) does not hold up the others."""


def _take_in_turn(rows: Sequence[Any], limit: int) -> list[Any]:
    """Up to ``limit`` of ``rows`` (oldest due first), taking each webhook's oldest in turn."""
    queues: dict[int, list[Any]] = {}
    for r in rows:
        queues.setdefault(r.webhook_id, []).append(r)
    taken: list[Any] = []
    while len(taken) < limit and any(queues.values()):
        for queue in queues.values():
            if queue and len(taken) < limit:
                taken.append(queue.pop(0))
    return sorted(taken, key=lambda r: (_at(r.next_attempt_at), r.id))


def claim_deliveries(project: Project, *, limit: int, lease_s: float, now: datetime | None = None,
                     ids: Sequence[int] | None = None) -> list[DueDelivery]:
    """Take up to ``limit`` pending deliveries that are due (active webhooks only; only those of ``ids`` when given):
    the oldest due first, one webhook at a time (see :data:`FAIR_WINDOW`).

    Each is claimed by moving its ``next_attempt_at`` ``lease_s`` seconds ahead only if nobody moved it since it was
    read (a compare-and-set, atomic on SQLite and PostgreSQL), so two workers never take the same attempt; a worker
    that stops before marking it leaves it to be taken again when the lease ends.
    """
    now = now or utcnow()
    with project.transaction() as conn:
        candidates = conn.execute(
            select(DeliveryRow.id, DeliveryRow.webhook_id, DeliveryRow.next_attempt_at)
            .join(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id)
            .where(DeliveryRow.state == DeliveryState.PENDING.value, DeliveryRow.next_attempt_at <= now,
                   WebhookRow.active.is_(True), *([DeliveryRow.id.in_(list(ids))] if ids is not None else []))
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id).limit(limit * FAIR_WINDOW)).all()
        due = _take_in_turn(candidates, limit)
        claimed = [d.id for d in due if conn.execute(
            update(DeliveryRow).where(DeliveryRow.id == d.id, DeliveryRow.state == DeliveryState.PENDING.value,
                                      DeliveryRow.next_attempt_at == d.next_attempt_at)
            .values(next_attempt_at=now + timedelta(seconds=lease_s))).rowcount == 1]
        if not claimed:
            return []
        rows = conn.execute(
            select(DeliveryRow.id, DeliveryRow.webhook_id, DeliveryRow.attempts, WebhookRow.url, WebhookRow.secret,
                   EventRow.id.label("event_id"), EventRow.kind, EventRow.created_at, EventRow.payload)
            .join(WebhookRow, WebhookRow.id == DeliveryRow.webhook_id).join(EventRow, EventRow.id == DeliveryRow.event_id)
            .where(DeliveryRow.id.in_(claimed)).order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)).all()
    return [DueDelivery(id=r.id, webhook_id=r.webhook_id, url=r.url, secret=r.secret, attempts=r.attempts,
                        event_id=r.event_id, kind=r.kind, created_at=_at(r.created_at),
                        payload=r.payload) for r in rows]


def mark_delivered(project: Project, delivery_id: int, *, status: int, now: datetime | None = None) -> None:
    """The receiver answered 2xx: the delivery is done."""
    now = now or utcnow()
    with project.transaction() as conn:
        conn.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(
            state=DeliveryState.DELIVERED.value, attempts=DeliveryRow.attempts + 1, last_status=status,
            last_error=None, delivered_at=now))


def mark_failed(project: Project, delivery_id: int, *, status: int | None, error: str, policy: RetryPolicy,
                now: datetime | None = None, rng: random.Random | None = None) -> DeliveryState:
    """An attempt failed (``status``: the receiver's answer, None when there was none): the next one is due after
    the policy's backoff, or the delivery is ``failed`` when this was its last attempt. Returns its new state."""
    now = now or utcnow()
    with project.transaction() as conn:
        attempts = conn.execute(select(DeliveryRow.attempts).where(DeliveryRow.id == delivery_id)).scalar()
        if attempts is None:  # the webhook was removed meanwhile
            return DeliveryState.FAILED
        attempts += 1
        state = DeliveryState.FAILED if attempts >= policy.max_attempts else DeliveryState.PENDING
        values: dict[str, Any] = {"state": state.value, "attempts": attempts, "last_status": status,
                                  "last_error": error[:MAX_ERROR]}
        if state is DeliveryState.PENDING:
            values["next_attempt_at"] = now + timedelta(seconds=policy.delay_s(attempts, rng))
        conn.execute(update(DeliveryRow).where(DeliveryRow.id == delivery_id).values(**values))
    return state


def prune_events(project: Project, *, before: datetime) -> tuple[int, int]:
    """Remove the deliveries that are done (delivered or given up) of events made before ``before``, then those
    events that have no delivery left; pending deliveries and their events stay until they are done. Returns
    (deliveries removed, events removed)."""
    old = select(EventRow.id).where(EventRow.created_at < before)
    with project.transaction() as conn:
        deliveries = conn.execute(delete(DeliveryRow).where(
            DeliveryRow.state != DeliveryState.PENDING.value, DeliveryRow.event_id.in_(old))).rowcount
        left = select(DeliveryRow.id).where(DeliveryRow.event_id == EventRow.id).exists()
        events = conn.execute(delete(EventRow).where(EventRow.created_at < before, ~left)).rowcount
    return int(deliveries), int(events)


# ---- payloads of the platform's own events -----------------------------------------------------------------------

MAX_LINKS = 100
"""Links an event lists one by one (a bulk decision on more images names them all by id, and links the first)."""


def review_done_payload(project: str, image_ids: Sequence[int], *, decision: str, reviewer: str,
                        reason: str | None = None, tags: Sequence[str] | None = None) -> dict[str, Any]:
    """``review.done``: a reviewer approved or rejected images (one event per decision, however many images)."""
    ids = [int(i) for i in image_ids]
    return {"decision": decision, "image_ids": ids, "images": len(ids), "reviewer": reviewer, "reason": reason,
            "tags": list(tags or []), "links": {"images": [api_path(project, "images", i) for i in ids[:MAX_LINKS]]}}


def _numbers(values: dict[str, Any]) -> dict[str, float | int]:
    return {k: v for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def version_created_payload(project: str, *, name: str, content_hash: str, author: str, splits: dict[str, int],
                            images: int, params: dict[str, Any]) -> dict[str, Any]:
    """``version.created``: a dataset version was frozen."""
    return {"version": name, "hash": content_hash, "author": author, "images": images, "splits": dict(splits),
            "split_mode": params.get("splits"), "approved_only": bool(params.get("approved_only")),
            "base": params.get("base"), "links": {"version": api_path(project, "versions", name)}}


def model_trained_payload(project: str, *, run: str, task: str, model: str, version: str | None,
                          metrics: dict[str, Any], by: str | None = None) -> dict[str, Any]:
    """``model.trained``: a training run finished; ``metrics`` keeps its numbers (validation split)."""
    return {"run": run, "task": task, "model": model, "version": version, "by": by, "metrics": _numbers(metrics),
            "links": {"run": api_path(project, "runs", run), "report": api_path(project, "runs", run, "report")}}
