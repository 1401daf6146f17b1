"""Assisted segmentation on the server: a box or clicks on a project image give a mask (see
:mod:`visionloop.inference.assist`), answered as an outline and an RLE the editor can preview and keep.

The methods live once per server (an operator's ONNX model loads once); decoded images are kept in a small LRU
(``Settings.assist_image_cache``), since a person clicks on one image several times. An image larger than
``TILE_MIN_SIDE`` on a side is never decoded whole: the part round the prompt is read with libvips.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from fastapi import APIRouter, Request

from visionloop.core.annotations import RLE
from visionloop.core.errors import NotFoundError
from visionloop.core.imageio import decode_array
from visionloop.core.settings import Settings
from visionloop.inference.assist import (
    DEFAULT_METHOD,
    Assistants,
    AssistPromptError,
    Click,
    LruCache,
    Prompt,
    Window,
    assist,
    prompt_region,
)
from visionloop.serving.error_handlers import ERROR_RESPONSES, ErrorPublic
from visionloop.serving.projects_api.assist_schemas import AssistMethodPublic, AssistPublic, AssistRequest
from visionloop.serving.projects_api.auth import AnnotatorDep
from visionloop.serving.projects_api.deps import ImageId, ProjectDep, SettingsDep
from visionloop.storage.project import Project
from visionloop.storage.tiles import TILE_MIN_SIDE

__all__ = ["router"]

router = APIRouter(prefix="/projects/{project}", tags=["assist"], responses=ERROR_RESPONSES)

REGION_MARGIN = 1024
"""Pixels read round the prompt of a huge image (the methods' own windows stay inside it)."""
_LOCK = threading.Lock()
T = TypeVar("T")


class _Assist:
    """The server's methods and decoded images."""

    def __init__(self, settings: Settings) -> None:
        self.methods = Assistants(settings)
        self.images: LruCache[np.ndarray] = LruCache(settings.assist_image_cache)


def _state(request: Request) -> _Assist:
    found = getattr(request.app.state, "assist", None)
    if found is None:
        with _LOCK:
            found = getattr(request.app.state, "assist", None)
            if found is None:
                found = request.app.state.assist = _Assist(request.app.state.settings)
    return found


@router.get("/assist/methods", response_model=list[AssistMethodPublic],
            summary="Methods of assisted segmentation this server offers (onnx only when the operator set a model)")
def list_methods(request: Request) -> list[dict[str, Any]]:
    return [{"name": m.name, "title": m.title, "model": m.model, "default": m.name == DEFAULT_METHOD}
            for m in _state(request).methods.describe()]


def _prompt(body: AssistRequest, width: int, height: int) -> Prompt:
    previous = None
    if body.previous_rle is not None:
        rle = RLE((body.previous_rle.size[0], body.previous_rle.size[1]), body.previous_rle.counts)
        if rle.size != (height, width):
            raise AssistPromptError("previous_rle.size", expected=[height, width], actual=list(rle.size),
                                    hint="send the rle the last answer gave for this image")
        previous = rle.decode()
    box = tuple(body.box) if body.box is not None else None
    return Prompt(box, tuple(Click(p.x, p.y, p.positive) for p in body.points), previous)  # type: ignore[arg-type]


def _read_region(project: Project, sha: str, window: Window) -> np.ndarray:
    from visionloop.core.vips_io import open_image  # libvips only for huge images

    part = open_image(_blob(project.blobs.source, sha), name=sha).crop(window.x0, window.y0, window.w, window.h)
    return np.ascontiguousarray(part.numpy()[..., :3])


def _blob(read: Callable[[str], T], sha: str) -> T:
    try:
        return read(sha)
    except FileNotFoundError as e:
        raise NotFoundError("image file", sha, hint="the image's blob is missing from the store; import it again") \
            from e


@router.post("/images/{image_id}/assist", response_model=AssistPublic,
             responses={400: {"model": ErrorPublic, "description": "A prompt that does not fit the image or too "
                                                                   "many points."}},
             summary="A mask from a box and/or clicks (refined by more clicks and the previous mask)")
def assist_image(body: AssistRequest, project: ProjectDep, image_id: ImageId, user: AnnotatorDep,
                 request: Request, settings: SettingsDep) -> dict[str, Any]:
    state = _state(request)
    method = state.methods.get(body.method)
    item = project.image(image_id)
    prompt = _prompt(body, item.width, item.height)
    prompt.check(item.width, item.height, max_clicks=settings.assist_max_clicks)
    if max(item.width, item.height) <= TILE_MIN_SIDE:
        image = state.images.get_or_make(item.sha256, lambda: decode_array(
            _blob(project.blobs.read, item.sha256), max_pixels=project.settings.max_image_pixels))
        return assist(method, image, prompt, key=item.sha256, max_clicks=settings.assist_max_clicks).to_json()
    window = prompt_region(prompt, item.width, item.height, margin=REGION_MARGIN)
    part = _read_region(project, item.sha256, window)
    return assist(method, part, prompt, key=f"{item.sha256}:{window.x0},{window.y0},{window.w},{window.h}",
                  max_clicks=settings.assist_max_clicks, part=(window, item.height, item.width)).to_json()
