"""The project's events (viewers and up): what happened that other systems may act on, newest first, paged; the
same records the webhooks deliver (see :mod:`visionloop.storage.events`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import PageDep, ProjectDep
from visionloop.serving.projects_api.webhook_schemas import EventsPublic
from visionloop.storage.events import EventKind, list_events

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/events", tags=["webhooks"], responses=ERROR_RESPONSES)


@router.get("", response_model=EventsPublic, summary="Events of the project, newest first (paged)")
def get_events(project: ProjectDep, page: PageDep,
               kind: Annotated[EventKind | None, Query(description="Only this kind.")] = None) -> dict[str, Any]:
    total, items = list_events(project, kind=kind, offset=page.offset, limit=page.limit)
    return {"total": total, "items": [e.to_json() for e in items]}
