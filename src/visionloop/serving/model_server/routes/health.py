"""Liveness: the process answers (never needs a token)."""

from __future__ import annotations

from fastapi import APIRouter

from visionloop.serving.model_server.schemas import HealthOut

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Liveness (no token needed)")
async def health() -> dict[str, str]:
    return {"status": "ok"}
