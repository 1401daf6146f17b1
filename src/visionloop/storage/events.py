"""Events for the company's systems and the webhooks that deliver them (migration 0010).

An *event* records something another system may want to act on, with a JSON payload: a prediction flagged by a model
server, a review done, a dataset version created, a model trained, a model promoted, a drift alert. A *webhook* is a
URL (and the secret its deliveries are signed with) that receives events of chosen kinds; a *delivery* is one event
on its way to one webhook, retried with backoff until it is delivered or given up. Events are written in the same
transaction as what they report, so an event is never announced for a change that was rolled back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

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
    insert,
    select,
)
from sqlalchemy.orm import Mapped, mapped_column

from visionloop.storage.models import Base, utcnow

__all__ = ["DeliveryRow", "DeliveryState", "EventKind", "EventRow", "WebhookRow", "emit_event"]


class EventKind(StrEnum):
    PREDICTION_FLAGGED = "prediction.flagged"
    REVIEW_DONE = "review.done"
    VERSION_CREATED = "version.created"
    MODEL_TRAINED = "model.trained"
    MODEL_PROMOTED = "model.promoted"
    DRIFT_ALERT = "drift.alert"


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
    kind = EventKind(kind)
    event_id = conn.execute(insert(EventRow).values(kind=kind.value, payload=payload)).inserted_primary_key[0]
    hooks = conn.execute(select(WebhookRow.id, WebhookRow.kinds).where(WebhookRow.active.is_(True))).all()
    wanted = [h.id for h in hooks if not h.kinds or kind.value in h.kinds]
    if wanted:
        conn.execute(insert(DeliveryRow), [{"event_id": event_id, "webhook_id": w} for w in wanted])
    return int(event_id)
