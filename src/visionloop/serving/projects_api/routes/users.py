"""Routes of a project's users: who am I (any signed-in user) and the user list (admins)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep, ViewerDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.storage.users import list_users

__all__ = ["MePublic", "UserPublic", "router"]

router = APIRouter(prefix="/projects/{project}", tags=["users"], responses=ERROR_RESPONSES)


class MePublic(BaseModel):
    name: str
    role: str
    project: str


class UserPublic(BaseModel):
    name: str
    role: str
    created_at: datetime
    has_password: bool


@router.get("/me", response_model=MePublic, summary="The signed-in user and their role in this project")
def me(user: ViewerDep) -> MePublic:
    return MePublic(name=user.name, role=user.role.value, project=user.project)


@router.get("/users", response_model=list[UserPublic], summary="The project's users and roles (admins only)")
def users(_: AdminDep, project: ProjectDep) -> list[UserPublic]:
    return [UserPublic(name=u.name, role=u.role.value, created_at=u.created_at, has_password=u.has_password)
            for u in list_users(project)]
