"""Routes of a project's images: the filtered, paged list and its count, one image's record (with its neighbours
under the same filters), its bytes and its thumbnail."""

from __future__ import annotations

import mimetypes
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse

from visionloop.core.errors import NotFoundError
from visionloop.serving.error_handlers import ERROR_RESPONSES
from visionloop.serving.projects_api.auth import CurrentUser, ViewerDep
from visionloop.serving.projects_api.deps import MAX_ID, ImageId, PageDep, ProjectDep, SettingsDep, ThumbnailsDep
from visionloop.serving.projects_api.image_queries import (
    NO_SPLIT,
    ImageFilter,
    ImageHead,
    count_images,
    image_head,
    image_neighbours,
    image_page,
    resolve_filter,
)
from visionloop.serving.projects_api.schemas import ImageCountPublic, ImageDetailPublic, ImagesPublic
from visionloop.serving.projects_api.thumbnails import MAX_THUMBNAIL, THUMBNAIL_SIZES, snap_size
from visionloop.serving.projects_api.tile_schemas import tiles_public
from visionloop.storage.gold import gold_image_ids
from visionloop.storage.health import NO_FOLDER
from visionloop.storage.project import Project
from visionloop.storage.review import ReviewState, current_reviews
from visionloop.storage.users import Role

__all__ = ["IMMUTABLE_CACHE", "ImageFilterDep", "hidden_gold", "image_filter", "router", "source_file_name"]

router = APIRouter(prefix="/projects/{project}/images", tags=["images"], responses=ERROR_RESPONSES)

IMMUTABLE_CACHE = "private, max-age=31536000, immutable"
"""Blobs and their thumbnails never change; ``private`` because the API will sit behind tokens."""

_MEDIA_TYPES = {"jpeg": "image/jpeg", "mpo": "image/jpeg", "png": "image/png", "gif": "image/gif",
                "bmp": "image/bmp", "tiff": "image/tiff", "webp": "image/webp"}

_IMAGE_BYTES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/*": {}}, "description": "The image."},
    304: {"description": "Not modified (the If-None-Match ETag matches)."},
}


def _media_type(fmt: str) -> str:
    return _MEDIA_TYPES.get(fmt.lower()) or mimetypes.guess_type(f"x.{fmt}")[0] or "application/octet-stream"


def _images_path(request: Request, project: Project) -> str:
    return request.url_for(_LIST_ROUTE, project=project.name).path


def _missing_blob(item: ImageHead) -> NotFoundError:
    return NotFoundError("image file", item.sha256, choices=[
        f"the blob of image {item.id} ({item.name}) is missing from the blob store; import the file again",
    ])


def _public(item: ImageHead, base: str) -> dict[str, object]:
    return {
        "id": item.id, "sha256": item.sha256, "name": item.name, "width": item.width, "height": item.height,
        "format": item.format, "url": f"{base}/{item.id}/file", "thumbnail_url": f"{base}/{item.id}/thumbnail",
        "annotated": item.head_revision is not None, "head_revision": item.head_revision,
        "review_state": item.review_state,
    }


def hidden_gold(user: CurrentUser, project: Project, ids: list[int]) -> set[int]:
    """Of ``ids``, the gold images an annotator must see as never annotated: their head is a honeypot's answer, and
    an annotated image that their queue hands out empty would tell them it is one."""
    if user.role is not Role.ANNOTATOR or not ids:
        return set()
    return set(gold_image_ids(project)).intersection(ids)


def _as_unannotated(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "annotated": False, "head_revision": None, "review_state": ReviewState.TODO.value}


def image_filter(
    user: ViewerDep, project: ProjectDep,
    class_: Annotated[str | None, Query(alias="class", max_length=256, description=(
        "A class name or id: images whose head annotation has at least one instance or label of it."))] = None,
    split: Annotated[str | None, Query(max_length=16, description=(
        f"train, val or test of the version; {NO_SPLIT}: in no split of it (added or annotated since)."))] = None,
    version: Annotated[str | None, Query(max_length=128, description=(
        "The version whose splits ``split`` means; default: the latest."))] = None,
    annotated: Annotated[bool | None, Query(description="true: annotated (a head revision); false: never.")] = None,
    review: Annotated[str | None, Query(max_length=32, description=(
        "Current review state: todo (also never reviewed), in_progress, submitted, approved, rejected."))] = None,
    annotator: Annotated[str | None, Query(max_length=128, description=(
        "Author of the head revision (a user name, or e.g. import)."))] = None,
    q: Annotated[str | None, Query(max_length=1024, description="Part of the file name, any case.")] = None,
    box_min: Annotated[float | None, Query(ge=0, le=1e6, description=(
        "Images with a box at least this big: the square root of its area, pixels (the health page's bins)."))] = None,
    box_max: Annotated[float | None, Query(gt=0, le=1e6, description=(
        "... and smaller than this (the same box as box_min, aspect_min and aspect_max)."))] = None,
    aspect_min: Annotated[float | None, Query(ge=0, le=1e6, description=(
        "Images with a box whose width / height is at least this."))] = None,
    aspect_max: Annotated[float | None, Query(gt=0, le=1e6, description="... and less than this.")] = None,
    folder: Annotated[str | None, Query(max_length=1024, description=(
        f"The first folder of the image name ({NO_FOLDER}: names without a folder)."))] = None,
) -> ImageFilter:
    return resolve_filter(project, class_=class_, split=split, version=version, annotated=annotated, review=review,
                          annotator=annotator, q=q, box_min=box_min, box_max=box_max, aspect_min=aspect_min,
                          aspect_max=aspect_max, folder=folder,
                          seen_unannotated=gold_image_ids(project) if user.role is Role.ANNOTATOR else ())


ImageFilterDep = Annotated[ImageFilter, Depends(image_filter)]


def source_file_name(source_uri: str) -> str:
    """The last part of where an image came from (a path on the importing machine or a URL): its folders, a URL's
    host and query are left out, so no path of the server's disk reaches a client."""
    parsed = urlsplit(source_uri)
    path = parsed.path if len(parsed.scheme) > 1 else source_uri  # "C:\\x.jpg" has a one-letter "scheme"
    return PurePosixPath(path.replace("\\", "/")).name


def _etag_matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag in tags


def _cache_headers(etag: str) -> dict[str, str]:
    return {"ETag": etag, "Cache-Control": IMMUTABLE_CACHE}


_LIST_ROUTE = "list_project_images"
_SIZES = ", ".join(map(str, THUMBNAIL_SIZES))


@router.get("", response_model=ImagesPublic, name=_LIST_ROUTE,
            summary="A page of images, ordered by id, filtered; keyset paging with after/next_after")
def list_images(
    request: Request, user: ViewerDep, project: ProjectDep, page: PageDep, where: ImageFilterDep,
    after: Annotated[int | None, Query(ge=0, le=MAX_ID, description=(
        "Images with a larger id than this (the previous page's next_after): every page costs the same. "
        "offset still works (from the start, or after ``after``)."))] = None,
) -> ImagesPublic:
    base = _images_path(request, project)
    items, next_after = image_page(project, offset=page.offset, limit=page.limit, after=after, where=where)
    hidden = hidden_gold(user, project, [i.id for i in items])
    return ImagesPublic.model_validate({
        "total": count_images(project, where), "offset": page.offset, "limit": page.limit, "after": after,
        "next_after": next_after, "items": [_as_unannotated(_public(i, base)) if i.id in hidden else _public(i, base)
                                            for i in items],
    })


@router.get("/count", response_model=ImageCountPublic, summary="How many images pass the filters")
def count_filtered_images(project: ProjectDep, where: ImageFilterDep) -> ImageCountPublic:
    return ImageCountPublic(total=count_images(project, where))


@router.get("/{image_id}", response_model=ImageDetailPublic,
            summary="One image's record with its head annotation, review state and neighbours under the filters")
def get_image(request: Request, user: ViewerDep, project: ProjectDep, image_id: ImageId,
              where: ImageFilterDep) -> ImageDetailPublic:
    item = image_head(project, image_id)
    prev_id, next_id = image_neighbours(project, image_id, where)
    review = current_reviews(project, [image_id]).get(image_id)
    record = {
        **_public(item, _images_path(request, project)), "source_file": source_file_name(item.source_uri),
        "ingested_at": item.ingested_at, "video_id": item.video_id, "frame_index": item.frame_index,
        "timestamp": item.timestamp, "meta": item.meta or {}, "annotation": item.payload,
        "tiles": tiles_public(_images_path(request, project), item.id, item.width, item.height),
        "prev_id": prev_id, "next_id": next_id, "review": review.to_json() if review is not None else None,
    }
    if hidden_gold(user, project, [image_id]):
        record = {**_as_unannotated(record), "annotation": None, "review": None}
    return ImageDetailPublic.model_validate(record)


@router.get("/{image_id}/file", response_class=Response, responses=_IMAGE_BYTES,
            summary="The original bytes (ETag = sha256; cache forever)")
def get_image_file(request: Request, project: ProjectDep, image_id: ImageId) -> Response:
    item = image_head(project, image_id, with_payload=False)
    etag = f'"{item.sha256}"'
    headers = _cache_headers(etag)
    if _etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    media_type = _media_type(item.format)
    if project.blobs.local:
        path = project.blobs.path(item.sha256)
        if not path.is_file():
            raise _missing_blob(item)
        return FileResponse(path, media_type=media_type, headers=headers,
                            filename=PurePosixPath(item.name).name, content_disposition_type="inline")
    try:
        data = project.blobs.read(item.sha256)
    except FileNotFoundError as e:
        raise _missing_blob(item) from e
    return Response(data, media_type=media_type, headers=headers)


@router.get("/{image_id}/thumbnail", response_class=Response, responses=_IMAGE_BYTES,
            summary="A JPEG fitted inside size x size (never enlarged), EXIF orientation applied")
def get_thumbnail(
    request: Request, project: ProjectDep, thumbnails: ThumbnailsDep, settings: SettingsDep, image_id: ImageId,
    size: Annotated[int | None, Query(
        ge=1, le=MAX_THUMBNAIL, description=f"Longest side in pixels: one of {_SIZES}; a size between them is served "
        "at the next one up. The server's default when left out.")] = None,
) -> Response:
    size = snap_size(size or settings.thumbnail_size)
    item = image_head(project, image_id, with_payload=False)
    etag = f'"{item.sha256}-{size}"'
    headers = _cache_headers(etag)
    if _etag_matches(request, etag):
        return Response(status_code=304, headers=headers)
    try:
        data = thumbnails.get(item.sha256, size)
    except FileNotFoundError as e:
        raise _missing_blob(item) from e
    return Response(data, media_type="image/jpeg", headers=headers)
