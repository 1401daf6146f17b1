"""Liveness route: answers without touching any project database."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop import __version__
from visionloop.serving.projects_api.deps import RegistryDep
from visionloop.serving.projects_api.schemas import HealthPublic

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthPublic, summary="Liveness: the server runs and its projects are open")
def health(registry: RegistryDep) -> HealthPublic:
    return HealthPublic(status="ok", version=__version__, projects=len(registry))
