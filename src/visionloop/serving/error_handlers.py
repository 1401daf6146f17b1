"""visionloop errors as JSON 4xx answers (``ErrorPublic``), so client input never produces a 5xx.

- NotFoundError -> 404, with ``choices`` (the known names) when there are any
- AnnotationValidationError -> 422
- StaleRevisionError -> 409 with ``base_revision`` and ``head_revision``; other ConflictError -> 409
- ImageError (a stored file that cannot be decoded) -> 422
- FormatError and any other VisionloopError -> 400

A malformed request (wrong type, missing field, out-of-range number) is a 422 in the same shape, with FastAPI's
per-field list under ``errors``. ``ERROR_RESPONSES`` documents both for the routers.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from visionloop.core.errors import (
    AnnotationValidationError,
    ConflictError,
    ImageError,
    NotFoundError,
    StaleRevisionError,
    VisionloopError,
)

__all__ = ["ERROR_RESPONSES", "ErrorPublic", "error_body", "install_error_handlers", "status_for"]


class ErrorPublic(BaseModel):
    """Body of every 4xx answer raised from a visionloop error."""

    detail: str = Field(description="What went wrong and how to fix it.")
    error: str = Field(description="Error class, e.g. NotFoundError, StaleRevisionError.")
    choices: list[str] | None = Field(default=None, description="Known names, when something was not found.")
    base_revision: int | None = None
    head_revision: int | None = None
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="Per-field problems when the request itself is malformed (FastAPI's list)."
    )


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "Unknown project or item; `choices` lists the known names."},
    422: {"model": ErrorPublic, "description": "Invalid input: a malformed request or an invalid annotation."},
}


def status_for(exc: VisionloopError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(exc, AnnotationValidationError | ImageError):
        return 422
    return 400


def error_body(exc: VisionloopError) -> ErrorPublic:
    extra: dict[str, object] = {}
    if isinstance(exc, NotFoundError) and exc.choices:
        extra["choices"] = [str(c) for c in exc.choices]
    if isinstance(exc, StaleRevisionError):
        extra.update(base_revision=exc.base_revision, head_revision=exc.head_revision)
    return ErrorPublic(detail=str(exc), error=type(exc).__name__, **extra)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, VisionloopError):  # registered for VisionloopError only
        raise exc
    return JSONResponse(error_body(exc).model_dump(exclude_unset=True), status_code=status_for(exc))


def _where(loc: Any) -> str:
    return ".".join(str(p) for p in loc) if isinstance(loc, list | tuple) else str(loc)


async def _handle_request_validation(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    errors = jsonable_encoder(exc.errors())
    detail = "; ".join(f"{_where(e.get('loc', ''))}: {e.get('msg', '')}" for e in errors) or "invalid request"
    body = ErrorPublic(detail=detail, error="RequestValidationError", errors=errors)
    return JSONResponse(body.model_dump(exclude_unset=True), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(VisionloopError, _handle)
    app.add_exception_handler(RequestValidationError, _handle_request_validation)
