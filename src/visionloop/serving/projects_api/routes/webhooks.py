"""Webhooks of a project (admins only): add one (its secret is in that answer only), list, change, turn off, remove,
send a test event, see its deliveries with their state, attempts and last answer, and retry one that was given up.

The platform server's worker (:mod:`visionloop.serving.webhooks`) sends the deliveries; a test or a retry wakes it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response, status

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep
from visionloop.serving.projects_api.deps import MAX_ID, PageDep, ProjectDep
from visionloop.serving.projects_api.webhook_schemas import (
    DeliveriesPublic,
    DeliveryPublic,
    WebhookCreate,
    WebhookCreated,
    WebhookPublic,
    WebhookUpdate,
)
from visionloop.storage import events as store
from visionloop.storage.events import DeliveryState

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)

WebhookId = Annotated[int, Path(ge=1, le=MAX_ID, description="Webhook id, as the webhook list gives it.")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="Delivery id, as the webhook's deliveries give it.")]


def _wake(request: Request) -> None:
    worker = getattr(request.app.state, "webhooks", None)
    if worker is not None:
        worker.wake()


@router.get("", response_model=list[WebhookPublic], summary="The project's webhooks, oldest first (no secrets)")
def list_webhooks(project: ProjectDep, user: AdminDep) -> list[dict[str, Any]]:
    return [w.to_json() for w in store.list_webhooks(project)]


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED,
             summary="Add a webhook; the answer holds its signing secret, shown this once")
def create_webhook(body: WebhookCreate, project: ProjectDep, user: AdminDep) -> dict[str, Any]:
    return store.create_webhook(project, body.url, author=user.name, kinds=body.kinds, secret=body.secret,
                                active=body.active).to_json()


@router.get("/{webhook_id}", response_model=WebhookPublic, summary="One webhook (no secret)")
def get_webhook(project: ProjectDep, user: AdminDep, webhook_id: WebhookId) -> dict[str, Any]:
    return store.get_webhook(project, webhook_id).to_json()


@router.patch("/{webhook_id}", response_model=WebhookPublic, summary="Change its URL or kinds, turn it on or off")
def update_webhook(body: WebhookUpdate, project: ProjectDep, user: AdminDep, webhook_id: WebhookId) -> dict[str, Any]:
    return store.update_webhook(project, webhook_id, url=body.url, kinds=body.kinds, active=body.active).to_json()


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Remove a webhook and its deliveries (the events stay)")
def delete_webhook(project: ProjectDep, user: AdminDep, webhook_id: WebhookId) -> Response:
    store.delete_webhook(project, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/test", response_model=DeliveryPublic, status_code=status.HTTP_202_ACCEPTED,
             summary="Send a test event (webhook.ping) to this webhook; follow it in its deliveries")
def test_webhook(request: Request, project: ProjectDep, user: AdminDep, webhook_id: WebhookId) -> dict[str, Any]:
    delivery = store.queue_ping(project, webhook_id, author=user.name)
    _wake(request)
    return delivery.to_json()


@router.get("/{webhook_id}/deliveries", response_model=DeliveriesPublic,
            summary="The webhook's deliveries, newest first: state, attempts, next attempt, last answer or error")
def list_deliveries(project: ProjectDep, user: AdminDep, webhook_id: WebhookId, page: PageDep,
                    state: Annotated[DeliveryState | None, Query(description="Only this state.")] = None,
                    ) -> dict[str, Any]:
    total, items = store.list_deliveries(project, webhook_id, state=state, offset=page.offset, limit=page.limit)
    return {"total": total, "items": [d.to_json() for d in items]}


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", response_model=DeliveryPublic,
             status_code=status.HTTP_202_ACCEPTED,
             summary="Try a failed delivery once more, now (409 unless it is failed)")
def retry_delivery(request: Request, project: ProjectDep, user: AdminDep, webhook_id: WebhookId,
                   delivery_id: DeliveryId) -> dict[str, Any]:
    delivery = store.retry_delivery(project, delivery_id, webhook_id=webhook_id)
    _wake(request)
    return delivery.to_json()
