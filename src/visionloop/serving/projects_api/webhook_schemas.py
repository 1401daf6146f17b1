"""Request and response bodies of the webhook routes (admins) and of the event list (viewers)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.schemas import UtcDatetime
from visionloop.storage.events import MAX_SECRET, MAX_URL, MIN_SECRET, EventKind

__all__ = ["DeliveriesPublic", "DeliveryPublic", "EventPublic", "EventsPublic", "WebhookCreate", "WebhookCreated",
           "WebhookPublic", "WebhookUpdate"]

KINDS = tuple(k.value for k in EventKind if k is not EventKind.PING)
KindName = Literal[KINDS]  # type: ignore[valid-type]
URL_FIELD = Field(max_length=MAX_URL, description="Where deliveries are posted: an http:// or https:// URL, "
                  "without a user name or password.", examples=["https://hooks.example.com/visionloop"])
KINDS_DESCRIPTION = f"Event kinds it receives ({', '.join(KINDS)}); empty: every kind."


class WebhookCreate(BaseModel):
    url: str = URL_FIELD
    kinds: list[KindName] = Field(default_factory=list, max_length=len(KINDS),  # type: ignore[valid-type]
                                  description=KINDS_DESCRIPTION)
    secret: str | None = Field(default=None, min_length=MIN_SECRET, max_length=MAX_SECRET, description=(
        "The HMAC key deliveries are signed with; leave it out and a random one is made. Shown in this answer "
        "only."))
    active: bool = True


class WebhookUpdate(BaseModel):
    url: str | None = Field(default=None, max_length=MAX_URL, description="A new URL.")
    kinds: list[KindName] | None = Field(default=None, max_length=len(KINDS),  # type: ignore[valid-type]
                                         description=KINDS_DESCRIPTION)
    active: bool | None = Field(default=None, description="false: no new deliveries, pending ones wait; true: on.")


class WebhookPublic(BaseModel):
    id: int
    url: str
    kinds: list[str] = Field(description="Event kinds it receives; empty: every kind.")
    active: bool
    created_by: str
    created_at: UtcDatetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The signing secret, shown this once: keep it in the receiver's settings.")


class DeliveryPublic(BaseModel):
    id: int
    webhook_id: int
    event_id: int
    kind: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int = Field(description="Attempts made so far.")
    next_attempt_at: UtcDatetime | None = Field(description="When a pending delivery is tried next.")
    last_status: int | None = Field(description="HTTP status of the last answer; null when there was none.")
    last_error: str | None = Field(description="Why the last attempt failed (the start of the answer, a timeout, a "
                                   "refused connection).")
    delivered_at: UtcDatetime | None
    event_created_at: UtcDatetime


class DeliveriesPublic(BaseModel):
    total: int
    items: list[DeliveryPublic]


class EventPublic(BaseModel):
    id: int
    kind: str
    created_at: UtcDatetime
    payload: dict[str, Any] = Field(description="Ids, names, who, numbers and API links of what happened.")


class EventsPublic(BaseModel):
    total: int
    items: list[EventPublic]
