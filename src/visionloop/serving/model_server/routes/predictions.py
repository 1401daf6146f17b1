"""Predictions: one image (multipart field ``file`` or the raw body) or several (multipart fields ``files``).

Every answer is counted in the metrics under the model's name (``_unknown`` for a name not served), with its status.
A request's body is held against the server's in-flight byte budget until it is answered; a full budget or a full
model queue is a 503 with ``Retry-After`` (see ``model_server.limits``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse

from visionloop.core.errors import ImageError
from visionloop.serving.model_server.deps import ModelName, ModelServerState, StateDep, require_model
from visionloop.serving.model_server.limits import RETRY_AFTER_SECONDS, BytesHeld, OverloadedError
from visionloop.serving.model_server.schemas import ERROR_RESPONSES, BatchOut, PredictionOut
from visionloop.serving.model_server.served import ServedModel
from visionloop.serving.model_server.uploads import check_image, read_body, read_form

__all__ = ["router"]

router = APIRouter(prefix="/v1/models/{name}", tags=["predictions"])

_IMAGE_BODY = {"type": "string", "format": "binary"}
_PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: a multipart upload in the field `file`, or the raw bytes as the body.",
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                               "properties": {"file": _IMAGE_BODY}}},
            "application/octet-stream": {"schema": _IMAGE_BODY},
            "image/jpeg": {"schema": _IMAGE_BODY},
            "image/png": {"schema": _IMAGE_BODY},
        },
    }
}
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "Images as a multipart upload, one field `files` per image.",
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {"files": {"type": "array", "items": _IMAGE_BODY}}}}},
    }
}


def _busy(e: OverloadedError) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(e),
                         headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@contextmanager
def _served(state: ModelServerState, name: str, endpoint: str) -> Iterator[tuple[ServedModel, BytesHeld]]:
    """The model ``name`` (404 if not served) and the request's share of the in-flight byte budget, freed when the
    block ends; a busy server (OverloadedError) is a 503 with Retry-After. Counts the answer in the metrics: 200 when
    the block ends normally, the HTTPException's status, else 500."""
    t0, code = time.perf_counter(), 500
    try:
        with state.inflight.hold() as held, require_model(state.models, name).in_use() as m:
            yield m, held
        code = 200
    except OverloadedError as e:
        code = status.HTTP_503_SERVICE_UNAVAILABLE
        raise _busy(e) from e
    except HTTPException as e:
        code = e.status_code
        raise
    finally:
        label = name if name in state.models else "_unknown"
        state.metrics.observe_request(label, endpoint, code, time.perf_counter() - t0)


ScoreThreshold = Annotated[float | None, Query(
    ge=0.0, le=1.0, description="Keep detections, tags or segments scoring at least this, for every class; by "
    "default each class's threshold from the package (chosen on the validation split).")]


async def _predict(state: ModelServerState, m: ServedModel, data: bytes, what: str, *,
                   score_threshold: float | None) -> dict[str, Any]:
    """The prediction's JSON, naming the package that made it (sampled into the prediction log); a client's bad
    image is an HTTPException, a full queue an OverloadedError."""
    check_image(data, what, max_pixels=state.limits.max_pixels)
    by, res = await m.predict(data, score_threshold=score_threshold)
    if isinstance(res, ImageError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(res))
    out = by.stamp(res.to_json())
    if state.prediction_logger is not None:
        state.prediction_logger.maybe_log(model=m.name, model_sha256=by.package.manifest.model_sha256, data=data,
                                          prediction=out)
    if state.feedback is not None:
        state.feedback.offer(m.name, data=data, prediction=out)
    return out


@router.post("/predict", response_model=None, openapi_extra=_PREDICT_BODY,
             responses={200: {"model": PredictionOut, "description": "The prediction, in original image pixels."},
                        **ERROR_RESPONSES}, summary="Predict one image")
async def predict(name: ModelName, request: Request, state: StateDep,
                  score_threshold: ScoreThreshold = None) -> JSONResponse:
    limits = state.limits
    with _served(state, name, "predict") as (m, held):
        body = await read_body(request, limits.max_request_bytes, held=held)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await read_form(request, body, max_files=1, max_part_size=limits.max_request_bytes)
            f = form.get("file")
            if f is None or isinstance(f, str):
                raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                    "multipart upload needs the image as a file in the field 'file'")
            body = await f.read()
        return JSONResponse(await _predict(state, m, body, "uploaded image", score_threshold=score_threshold))


@router.post("/predict/batch", response_model=None, openapi_extra=_BATCH_BODY,
             responses={200: {"model": BatchOut, "description": "One result (or error) per image, in order."},
                        **ERROR_RESPONSES}, summary="Predict several images")
async def predict_batch(name: ModelName, request: Request, state: StateDep,
                        score_threshold: ScoreThreshold = None) -> JSONResponse:
    limits = state.limits
    with _served(state, name, "predict_batch") as (m, held):
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                "send the images as multipart/form-data, one field 'files' per image")
        body = await read_body(request, limits.max_batch_bytes, held=held)
        form = await read_form(request, body, max_files=limits.max_batch_files,
                               max_part_size=limits.max_request_bytes)
        del body  # the parsed files hold the images now
        files = [f for f in form.getlist("files") if not isinstance(f, str)]
        if not files:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "no files: send one multipart field 'files' per image")
        datas = [await f.read() for f in files]

        async def one(i: int, data: bytes) -> dict[str, Any]:
            item: dict[str, Any] = {"index": i, "filename": files[i].filename}
            try:
                if len(data) > limits.max_request_bytes:
                    raise HTTPException(413, f"file of {len(data):,} bytes exceeds {limits.max_request_bytes:,} bytes")
                out = await _predict(state, m, data, files[i].filename or f"files[{i}]",
                                     score_threshold=score_threshold)
                return {**item, "ok": True, "prediction": out, "error": None}
            except HTTPException as e:  # this image's fault; a busy server (OverloadedError) fails the request
                return {**item, "ok": False, "prediction": None, "error": str(e.detail)}

        results = await asyncio.gather(*(one(i, d) for i, d in enumerate(datas)))
        return JSONResponse({"model": m.name, "results": results})
