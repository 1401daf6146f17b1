"""Reading what a client uploads to the model server, within the server's limits: raw bodies, multipart forms, images.

Each check answers the client's mistake as an ``HTTPException`` (400 malformed or not an image, 413 too large)
before the bytes go any further; bytes read count against the server's in-flight budget.
"""

from __future__ import annotations

import sys
from typing import Any

from fastapi import HTTPException, Request, status
from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect

from visionloop.core.errors import ImageError
from visionloop.core.imageio import probe
from visionloop.serving.model_server.limits import BytesHeld

__all__ = ["check_image", "read_body", "read_form"]


async def read_body(request: Request, limit: int, *, held: BytesHeld) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes (header or stream).

    Every chunk is taken from the server's in-flight budget through ``held`` (OverloadedError when it is spent).
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPException(413, f"request body of {int(length):,} bytes exceeds the limit of {limit:,} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"request body exceeds the limit of {limit:,} bytes")
            held.add(len(chunk))
            chunks.append(chunk)
    except ClientDisconnect:  # nobody is left to answer; counted as a client error, not logged as a server one
        raise HTTPException(400, f"the client went away after {size:,} bytes of the body") from None
    return b"".join(chunks)


async def read_form(request: Request, body: bytes, *, max_files: int, max_part_size: int) -> FormData:
    """The multipart form in ``body`` (already read within its limit); a malformed upload is a 400."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        return await Request(request.scope, replay).form(max_files=max_files, max_fields=max_files + 8,
                                                         max_part_size=max_part_size)
    except HTTPException:
        raise
    except Exception as e:  # noqa: BLE001 - any multipart parser complaint is the client's malformed upload
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed multipart upload: {e}") from e


def check_image(data: bytes, what: str, *, max_pixels: int) -> None:
    """Refuse an empty body or a non-image (400) and an image over ``max_pixels`` (413), reading its header only."""
    if not data:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{what} is empty; send the image bytes")
    try:
        info = probe(data, name=what, max_pixels=sys.maxsize)
    except ImageError as e:
        code = 413 if e.reason.startswith("image too large") else 400
        raise HTTPException(code, str(e)) from e
    if info.width * info.height > max_pixels:
        raise HTTPException(413, f"{what}: {info.width}x{info.height} = {info.width * info.height:,} pixels exceeds "
                                 f"the server's limit of {max_pixels:,}; downscale the image")
