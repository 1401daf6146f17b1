"""Routes of a project's users: who am I (any signed-in user); the users, adding, changing and removing them
(admins), through :mod:`visionloop.storage.users` (the last admin always stays)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Path, Response, status
from pydantic import BaseModel, Field

from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminDep, ViewerDep
from visionloop.serving.projects_api.deps import ProjectDep
from visionloop.storage.users import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    Role,
    User,
    UserInputError,
    add_user,
    get_user,
    list_users,
    remove_user,
    set_password,
    set_role,
)

__all__ = ["MePublic", "UserCreate", "UserPublic", "UserUpdate", "router"]

router = APIRouter(prefix="/projects/{project}", tags=["users"], responses=ERROR_RESPONSES)
UserName = Annotated[str, Path(max_length=128, description="User name, as GET .../users lists it.")]
_CONFLICT = {409: {"description": "The name is taken, or the change would leave the project without an admin."}}
T = TypeVar("T")


class MePublic(BaseModel):
    name: str
    role: str
    project: str


class UserPublic(BaseModel):
    name: str
    role: str
    created_at: datetime
    has_password: bool


class UserCreate(BaseModel):
    name: str = Field(max_length=128, description="1 to 128 letters, digits, '.', '_', '@' or '-'.")
    role: Role
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH,
                                 description=f"At least {MIN_PASSWORD_LENGTH} characters; null: the user signs in "
                                 "with API tokens only (a script).")


class UserUpdate(BaseModel):
    """What to change; a field left out stays as it is."""

    role: Role | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


def _public(u: User) -> UserPublic:
    return UserPublic(name=u.name, role=u.role.value, created_at=u.created_at, has_password=u.has_password)


def _checked(action: Callable[[], T]) -> T:
    """Run a users operation; a name or password it cannot use is a 422 that says what is needed."""
    try:
        return action()
    except UserInputError as e:
        raise HTTPException(422, str(e)) from e


@router.get("/me", response_model=MePublic, summary="The signed-in user and their role in this project")
def me(user: ViewerDep) -> MePublic:
    return MePublic(name=user.name, role=user.role.value, project=user.project)


@router.get("/users", response_model=list[UserPublic], summary="The project's users and roles (admins only)")
def users(_: AdminDep, project: ProjectDep) -> list[UserPublic]:
    return [_public(u) for u in list_users(project)]


@router.post("/users", response_model=UserPublic, status_code=status.HTTP_201_CREATED, responses=_CONFLICT,
             summary="Add a user with a role (admins only)")
def create_user(_: AdminDep, project: ProjectDep, body: UserCreate) -> UserPublic:
    return _public(_checked(lambda: add_user(project, body.name, role=body.role, password=body.password)))


@router.patch("/users/{name}", response_model=UserPublic, responses=_CONFLICT,
              summary="Change a user's role or password (admins only)")
def update_user(_: AdminDep, project: ProjectDep, name: UserName, body: UserUpdate) -> UserPublic:
    user = get_user(project, name)
    if body.role is not None:  # first: refused for the last admin before anything is written
        user = set_role(project, name, body.role)
    if body.password is not None:
        user = set_password(project, name, body.password)
    return _public(user)


@router.delete("/users/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response, responses=_CONFLICT,
               summary="Remove a user and their tokens (admins only; not the last admin)")
def delete_user(_: AdminDep, project: ProjectDep, name: UserName) -> Response:
    remove_user(project, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
