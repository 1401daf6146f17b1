"""Routes of projects: the list of served projects, one project with its stats, and creating a project."""

from __future__ import annotations

import shutil

from fastapi import APIRouter, status

from visionloop.core.errors import ConflictError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import AdminSomewhereDep, BearerDep, SignedInDep, ViewerDep
from visionloop.serving.projects_api.deps import ProjectDep, ProjectsDirDep, RegistryDep, SettingsDep
from visionloop.serving.projects_api.image_queries import count_images
from visionloop.serving.projects_api.schemas import (
    ProjectCreate,
    ProjectDetailPublic,
    ProjectPublic,
    StatsPublic,
)
from visionloop.storage.class_settings import ClassSpec, add_classes, check_colour, check_key
from visionloop.storage.project import Project, check_project_name
from visionloop.storage.users import Role, copy_user, issue_token, verify_token

__all__ = ["router"]

router = APIRouter(prefix="/projects", tags=["projects"], responses=ERROR_RESPONSES)


@router.get("", response_model=list[ProjectPublic], summary="The served projects where the credentials hold")
def list_projects(access: SignedInDep) -> list[ProjectPublic]:
    return [ProjectPublic(name=p.name, task=p.task.value, images=count_images(p)) for p, _ in access]


@router.post("", response_model=ProjectPublic, status_code=status.HTTP_201_CREATED,
             responses={409: {"description": "A project or folder of that name exists already."}},
             summary="Create a project with its classes; the caller becomes its admin (admins of any project)")
def create_project(
    body: ProjectCreate, admin_of: AdminSomewhereDep, token: BearerDep, registry: RegistryDep,
    projects_dir: ProjectsDirDep, settings: SettingsDep,
) -> ProjectPublic:
    """Made in the server's projects folder (``VISIONLOOP_PROJECTS_DIR``) and served at once. The caller is added as
    its admin with the password they have (the same hash) and the bearer of this request is valid there too."""
    name = check_project_name(body.name)
    specs = [ClassSpec(name=c.name, colour=check_colour(c.colour) if c.colour else "",
                       key=check_key(c.key) if c.key is not None else None,
                       orientation_sensitive=c.orientation_sensitive, colour_sensitive=c.colour_sensitive)
             for c in body.classes]
    source, creator = admin_of[0]
    _, token_record = verify_token(source, token)
    with registry.lock:
        taken = next((n for n in registry.names if n.casefold() == name.casefold()), None)
        if taken is not None:
            raise ConflictError(f"a project called {taken!r} is served already; choose another name")
        root = projects_dir / name
        if root.exists():
            raise ConflictError(f"{name!r} is taken in the projects folder (a folder of that name exists); choose "
                                "another name")
        projects_dir.mkdir(parents=True, exist_ok=True)
        project = Project.create(root, task=body.task, name=name, settings=settings)
        try:
            add_classes(project, specs)
            copy_user(source, project, creator.name, role=Role.ADMIN)
            issue_token(project, creator.name, name=token_record.name, expires_at=token_record.expires_at,
                        secret=token)
            registry.add(project)
        except BaseException:
            project.close()
            shutil.rmtree(root, ignore_errors=True)
            raise
    return ProjectPublic(name=project.name, task=project.task.value, images=0)


@router.get("/{project}", response_model=ProjectDetailPublic, summary="One project with stats")
def get_project(_: ViewerDep, project: ProjectDep) -> ProjectDetailPublic:
    stats = StatsPublic(**project.stats())
    return ProjectDetailPublic(name=project.name, task=project.task.value, images=stats.images, stats=stats)
