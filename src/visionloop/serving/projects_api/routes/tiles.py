"""Tiles of a large image's pyramid (see :mod:`visionloop.storage.tiles`), for a viewer that zooms and pans.

A pyramid missing on disk (an image imported before pyramids, or a team member's import on another machine) is built
on the first tile asked for, once, with bounded memory; that first answer waits for it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import FileResponse

from visionloop.core.errors import NotFoundError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.deps import ImageId, ProjectDep
from visionloop.serving.projects_api.image_queries import image_head
from visionloop.serving.projects_api.routes.images import _cache_headers, _etag_matches
from visionloop.serving.projects_api.tile_schemas import TILE_PATH
from visionloop.storage.tiles import TILE_MIN_SIDE, TileStore, pyramid_info

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}/images", tags=["images"], responses=ERROR_RESPONSES)

_TILE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/webp": {}}, "description": "The tile: tile_size x tile_size pixels, WebP."},
    304: {"description": "Not modified (the If-None-Match ETag matches)."},
}
_MAX_INDEX = 2**31 - 1


@router.get(TILE_PATH, response_class=Response, responses=_TILE,
            summary="One tile of a large image's pyramid (z = 0 is the full resolution; cache forever)")
def get_tile(
    request: Request, project: ProjectDep, image_id: ImageId,
    z: Annotated[int, Path(ge=0, le=64, description="Level: 0 is the full resolution, z is downsampled by 2**z.")],
    x: Annotated[int, Path(ge=0, le=_MAX_INDEX, description="Column of the tile in its level, from the left.")],
    y: Annotated[int, Path(ge=0, le=_MAX_INDEX, description="Row of the tile in its level, from the top.")],
) -> Response:
    item = image_head(project, image_id, with_payload=False)
    info = pyramid_info(item.width, item.height)
    if info is None:
        raise NotFoundError("tile pyramid", image_id, hint=(
            f"image {image_id} is {item.width}x{item.height}: only images larger than {TILE_MIN_SIDE} px on a side "
            "are tiled (its detail's tiles is null); read its file instead"))
    why = info.out_of_range(z, x, y)
    if why:
        raise NotFoundError("tile", f"{z}/{x}/{y}", hint=f"{why} (image {image_id} is {item.width}x{item.height})")
    etag = f'"{item.sha256}-{info.tile_size}-{z}-{x}-{y}"'
    headers = _cache_headers(etag)
    if _etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    store = TileStore.of(project)
    try:
        store.ensure(item.sha256, lambda: project.blobs.source(item.sha256), name=item.name)
    except FileNotFoundError as e:
        raise NotFoundError("image file", item.sha256, hint=(
            f"the blob of image {image_id} ({item.name}) is missing from the blob store; import the file again")) from e
    return FileResponse(store.tile_path(item.sha256, z, x, y), media_type="image/webp", headers=headers)

