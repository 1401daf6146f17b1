"""``GET /api/v1/session``: who the credentials (bearer or session cookie) belong to, and their projects."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import SignedInDep

__all__ = ["SessionProjectPublic", "SessionPublic", "router"]

router = APIRouter(tags=["auth"], responses=ERROR_RESPONSES)


class SessionProjectPublic(BaseModel):
    name: str
    role: str = Field(description="admin, reviewer, annotator or viewer")
    task: str


class SessionPublic(BaseModel):
    user: str = Field(description="The user name (the one of the first project when a script token is named "
                      "differently in several projects).")
    projects: list[SessionProjectPublic] = Field(description="Every served project where the credentials hold.")


@router.get("/session", response_model=SessionPublic,
            summary="The signed-in user and the projects where the credentials hold, with the role in each")
def get_session(access: SignedInDep) -> SessionPublic:
    return SessionPublic(user=access[0][1].name, projects=[
        SessionProjectPublic(name=p.name, role=u.role.value, task=p.task.value) for p, u in access])
