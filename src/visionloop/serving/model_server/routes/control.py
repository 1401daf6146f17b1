"""Control of the served models (admin tokens only): hot reload, rollback, canary.

A package comes either as a path on the server's disk inside its ``--packages-dir`` (JSON body ``{"path": ...}``) or
as an uploaded ``.vlpkg``/``.zip`` archive (the raw request body, at most ``--max-package-mb``; one upload at a time).
Answers are the change's record (``ChangeOut``); a package that is refused (does not load, fails its check
prediction, another task) is a 409 and the served model stays; an upload that is no package is a 400.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from starlette.requests import ClientDisconnect

from visionloop.core.errors import ConflictError, NotFoundError, VisionloopError
from visionloop.core.package import Package, load_package
from visionloop.serving.model_server.deps import ModelName, StateDep
from visionloop.serving.model_server.reload import ModelControl
from visionloop.serving.model_server.schemas import CONTROL_RESPONSES, ChangeOut

__all__ = ["router"]

router = APIRouter(prefix="/v1/models/{name}", tags=["control"], responses=CONTROL_RESPONSES)

_ARCHIVE = {"type": "string", "format": "binary"}
_PACKAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The package: `{\"path\": ...}` inside the server's --packages-dir, or a .vlpkg/.zip archive "
                       "as the raw body.",
        "content": {
            "application/json": {"schema": {"type": "object", "required": ["path"],
                                            "properties": {"path": {"type": "string"}}}},
            "application/zip": {"schema": _ARCHIVE},
            "application/octet-stream": {"schema": _ARCHIVE},
        },
    }
}


def _control(state: Any) -> ModelControl:
    if state.control is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "model control is not set up on this server")
    return state.control


@asynccontextmanager
async def _answer_errors() -> AsyncIterator[None]:
    """The library's errors as HTTP answers: 404 unknown, 409 refused or conflicting, 400 any other mistake."""
    try:
        yield
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from e
    except ConflictError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from e
    except VisionloopError as e:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(e)) from e


async def _upload(request: Request, control: ModelControl) -> Package:
    """The archive in the body, streamed to a temporary file within ``max_package_bytes`` (413 beyond), then loaded;
    one upload at a time per server (an archive can be large)."""
    limit = control.settings.max_package_bytes
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"package of {int(length):,} bytes exceeds the server's limit of {limit:,} bytes "
                                 "(--max-package-mb)")
    if control.uploading:
        raise HTTPException(status.HTTP_409_CONFLICT, "another package upload is in progress; retry when it ends")
    control.uploading = True
    try:
        with tempfile.TemporaryDirectory(prefix="visionloop-upload-") as tmp:
            path = Path(tmp) / "upload.vlpkg"
            size = 0
            with path.open("wb") as f:
                try:
                    async for chunk in request.stream():
                        size += len(chunk)
                        if size > limit:
                            raise HTTPException(413, f"package exceeds the server's limit of {limit:,} bytes "
                                                     "(--max-package-mb)")
                        f.write(chunk)
                except ClientDisconnect:
                    raise HTTPException(400, f"the client went away after {size:,} bytes of the package") from None
            if size == 0:
                raise HTTPException(400, "empty body: send {\"path\": ...} as JSON or the package archive's bytes")
            return await asyncio.to_thread(load_package, path)
    finally:
        control.uploading = False


async def _package(request: Request, control: ModelControl) -> Package:
    """The package a request names (a path inside --packages-dir) or carries (an archive)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        raw = await request.body()
        if len(raw) > 64 * 1024:
            raise HTTPException(413, "a JSON body here holds only {\"path\": ...}")
        try:
            path = json.loads(raw)["path"]
        except (ValueError, KeyError, TypeError):
            raise HTTPException(400, "send {\"path\": \"PACKAGE\"} (inside --packages-dir) or the archive's bytes "
                                     "with Content-Type: application/zip") from None
        if not isinstance(path, str) or not path:
            raise HTTPException(400, "path must be a non-empty string naming a package inside --packages-dir")
        return await asyncio.to_thread(load_package, control.resolve_path(path))
    return await _upload(request, control)


@router.post("/reload", response_model=ChangeOut, openapi_extra=_PACKAGE_BODY,
             summary="Hot reload: serve another package (checked first; in-flight requests finish on the old one)")
async def reload(name: ModelName, request: Request, state: StateDep) -> dict[str, Any]:
    control = _control(state)
    async with _answer_errors():
        control.require(name)
        return await control.reload(name, await _package(request, control))


@router.post("/rollback", response_model=ChangeOut, summary="Serve the previous package again")
async def rollback(name: ModelName, state: StateDep) -> dict[str, Any]:
    async with _answer_errors():
        return await _control(state).rollback(name)


Share = Annotated[float, Query(gt=0.0, le=1.0, description="Share of the model's requests the challenger answers.")]


@router.post("/canary", response_model=ChangeOut, openapi_extra=_PACKAGE_BODY,
             summary="Canary: a challenger package answers a share of the requests, compared with the model")
async def start_canary(name: ModelName, request: Request, state: StateDep, share: Share = 0.1) -> dict[str, Any]:
    control = _control(state)
    async with _answer_errors():
        control.require(name)
        return await control.set_canary(name, await _package(request, control), share)


@router.delete("/canary", response_model=ChangeOut, summary="Stop the canary (its agreement is in the answer)")
async def stop_canary(name: ModelName, state: StateDep) -> dict[str, Any]:
    async with _answer_errors():
        return await _control(state).clear_canary(name)
