"""A request body size limit for a whole app (pure ASGI middleware): larger bodies are refused with 413.

A ``Content-Length`` over the limit is refused before any byte is read; a body sent without one (chunked) is
counted as it arrives and refused as soon as it passes the limit, so the server never buffers more than the limit.
A route that takes uploads (``POST .../imports``) gets its own limit: ``larger`` maps a path pattern to its limit and
the setting that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visionloop.serving.error_handlers import ErrorPublic

__all__ = ["BodyLimitMiddleware", "RequestTooLargeError", "install_body_limit"]


class RequestTooLargeError(HTTPException):
    """A request body over the app's limit (HTTP 413)."""

    def __init__(self, limit: int, size: int | None = None, *, setting: str = "api_max_body_bytes") -> None:
        said = f"of {size:,} bytes " if size is not None else ""
        super().__init__(413, f"request body {said}exceeds the server's limit of {limit:,} bytes; send less per "
                              f"request (the limit is the server's {setting} setting)")


def _answer(error: RequestTooLargeError) -> JSONResponse:
    body = ErrorPublic(detail=str(error.detail), error=type(error).__name__)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=413)


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestTooLargeError):  # registered for RequestTooLargeError only
        raise exc
    return _answer(exc)


def install_body_limit(app: FastAPI, max_bytes: int, *, larger: Mapping[str, tuple[int, str]] | None = None) -> None:
    """Refuse request bodies over ``max_bytes`` with a 413 in the error shape of ``error_handlers``; ``larger``:
    ``{path regex: (limit, setting name)}`` for routes with a limit of their own (the whole path must match)."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_bytes, larger=larger)
    app.add_exception_handler(RequestTooLargeError, _handle)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413; :func:`install_body_limit` adds it with its handler."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, larger: Mapping[str, tuple[int, str]] | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.larger = [(re.compile(rx), limit, setting) for rx, (limit, setting) in (larger or {}).items()]

    def _limit(self, path: str) -> tuple[int, str]:
        for rx, limit, setting in self.larger:
            if rx.fullmatch(path):
                return limit, setting
        return self.max_bytes, "api_max_body_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, setting = self._limit(scope.get("path", ""))
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await _answer(RequestTooLargeError(max_bytes, int(length), setting=setting))(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise RequestTooLargeError(max_bytes, setting=setting)  # answered by FastAPI from the body read
            return message

        await self.app(scope, limited, send)
