"""The inference server: model packages behind a small HTTP API with dynamic batching, tokens, limits and metrics.

Routes (all but ``/health`` need ``Authorization: Bearer <token>`` when tokens are configured):

- ``POST /v1/models/{name}/predict``: one image, as a multipart upload in the field ``file`` or as the raw body
- ``POST /v1/models/{name}/predict/batch``: several images, multipart fields ``files``; per-image results or errors
- ``GET /v1/models``: ``{"models": [{"name": ..., "task": ..., ...}, ...]}``
- ``GET /v1/models/{name}``: the package's manifest summary and batching settings
- ``GET /health`` (liveness, never needs a token), ``GET /ready`` (models loaded, workers running)
- ``GET /metrics``: Prometheus text (requests, errors, latency histogram, batch sizes, queue depth)

Every client mistake is a 4xx with a JSON ``detail``: 400 not an image / empty / malformed upload, 401 missing token,
403 wrong token, 404 unknown model, 413 body or image too large, 429 queue full.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import JSONResponse, Response

from visionloop.core.errors import ImageError, NotFoundError, VisionloopError
from visionloop.core.imageio import probe
from visionloop.export.package import Package, load_package
from visionloop.inference.predictor import Predictor
from visionloop.inference.results import Prediction
from visionloop.serving.batching import BatchConfig, Batcher, ChunkRunner, OverloadedError
from visionloop.serving.inference_auth import TokenAuth
from visionloop.serving.inference_metrics import CONTENT_TYPE_LATEST, InferenceMetrics
from visionloop.serving.inference_schemas import (
    BatchOut,
    ErrorOut,
    HealthOut,
    ModelInfoOut,
    ModelListOut,
    PredictionOut,
    ReadyOut,
)
from visionloop.serving.prediction_log import PredictionLogger

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MAX_REQUEST_BYTES", "ServedModel", "create_inference_app"]

DEFAULT_MAX_REQUEST_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Not an image, empty body or malformed upload."},
    401: {"model": ErrorOut, "description": "Missing API token."},
    403: {"model": ErrorOut, "description": "Invalid API token."},
    404: {"model": ErrorOut, "description": "Unknown model; the detail lists the served models."},
    413: {"model": ErrorOut, "description": "Request body or image pixels over the server's limits."},
    429: {"model": ErrorOut, "description": "The model's queue is full; retry later."},
}
_AUTH_ERRORS = {k: v for k, v in _ERRORS.items() if k in (401, 403)}

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


class ServedModel:
    """One model behind the server: its runner (a Predictor), package and batcher."""

    def __init__(self, name: str, runner: ChunkRunner, package: Package, batching: BatchConfig,
                 metrics: InferenceMetrics) -> None:
        self.name, self.runner, self.package, self.batching = name, runner, package, batching
        self.batcher = Batcher(name, runner, batching, metrics=metrics)

    def summary(self) -> dict[str, Any]:
        m = self.package.manifest
        return {"name": self.name, "task": str(m.task), "classes": len(m.classes), "int8": m.int8 is not None}

    def info(self) -> dict[str, Any]:
        m = self.package.manifest
        return {
            "name": self.name, "task": str(m.task), "classes": [{"id": c.id, "name": c.name} for c in m.classes],
            "preprocess": m.preprocess, "thresholds": m.to_json()["thresholds"], "metrics": m.metrics,
            "main_metric": m.main_metric, "dataset_version": m.dataset_version, "dataset_hash": m.dataset_hash,
            "config_hash": m.config_hash, "run_id": m.run_id, "architecture": m.architecture,
            "int8": asdict(m.int8) if m.int8 else None, "model_sha256": m.model_sha256, "created_at": m.created_at,
            "batching": {"enabled": self.batching.enabled, "max_batch": self.batching.effective_max_batch,
                         "max_wait_ms": self.batching.max_wait_ms, "max_queue": self.batching.max_queue},
            "sessions": int(self.runner.n_sessions),
        }


def _load_models(
    packages: Mapping[str, str | Path | Package] | Sequence[str | Path | Package], *, sessions: int | None,
    max_pixels: int,
) -> dict[str, tuple[Package, ChunkRunner]]:
    items: list[tuple[str | None, str | Path | Package]]
    if isinstance(packages, Mapping):
        items = list(packages.items())
    else:
        items = [(None, p) for p in packages]
    out: dict[str, tuple[Package, ChunkRunner]] = {}
    for name, src in items:
        pkg = src if isinstance(src, Package) else load_package(src)
        name = name or pkg.name
        if name in out:
            raise VisionloopError(f"two packages are named {name!r}; serve them as NAME=PATH with distinct names")
        out[name] = (pkg, Predictor(pkg, sessions=sessions, max_pixels=max_pixels))
    if not out:
        raise VisionloopError("no model packages to serve; pass at least one package path")
    return out


def create_inference_app(
    packages: Mapping[str, str | Path | Package] | Sequence[str | Path | Package] = (), *,
    tokens: Sequence[str] = (), batching: BatchConfig | Mapping[str, BatchConfig] | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch_files: int = 32, sessions: int | None = None, log_predictions: float = 0.0,
    log_dir: str | Path | None = None, runners: Mapping[str, tuple[Package, ChunkRunner]] | None = None,
) -> FastAPI:
    """The inference app for ``packages`` (paths, or {name: path}; names default to the manifests' names).

    ``batching``: one config for all models or one per model name (missing names get the default).
    ``sessions``: onnxruntime sessions per model (default: one per core). ``log_predictions``: fraction (0..1) of
    predictions written under ``log_dir`` for the review loop. ``runners`` serves ready-made runners instead
    (benchmarks: the PyTorch model in the same server).
    """
    loaded = dict(runners) if runners is not None else _load_models(packages, sessions=sessions, max_pixels=max_pixels)
    metrics = InferenceMetrics()
    default_batch = batching if isinstance(batching, BatchConfig) else BatchConfig()
    per_model = batching if isinstance(batching, Mapping) else {}
    models = {name: ServedModel(name, runner, pkg, per_model.get(name, default_batch), metrics)
              for name, (pkg, runner) in loaded.items()}
    if log_predictions > 0 and log_dir is None:
        raise VisionloopError("log_predictions > 0 needs log_dir, the folder for sampled images and predictions")
    logger = PredictionLogger(log_dir, rate=log_predictions) if log_dir is not None and log_predictions > 0 else None
    auth = TokenAuth(tokens)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for m in models.values():
            await m.batcher.start()
        try:
            yield
        finally:
            for m in models.values():
                await m.batcher.stop()
            if logger is not None:
                logger.close()

    app = FastAPI(title="visionloop inference", version="1", lifespan=lifespan,
                  description="Predictions from visionloop model packages. " + (__doc__ or "").split("\n\n")[0])
    app.state.models, app.state.metrics, app.state.prediction_logger = models, metrics, logger

    def get_model(name: str) -> ServedModel:
        m = models.get(name)
        if m is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(NotFoundError("model", name, choices=sorted(models))))
        return m

    async def read_body(request: Request, limit: int) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HTTPException(413,
                                f"request body of {int(length):,} bytes exceeds the limit of {limit:,} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413,
                                    f"request body exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_form(request: Request, body: bytes, *, max_files: int) -> Any:
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            return await Request(request.scope, replay).form(max_files=max_files, max_fields=max_files + 8,
                                                             max_part_size=max_request_bytes)
        except HTTPException:
            raise
        except Exception as e:  # noqa: BLE001 - any multipart parser complaint is the client's malformed upload
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed multipart upload: {e}") from e

    def check_image(data: bytes, what: str) -> None:
        if not data:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{what} is empty; send the image bytes")
        try:
            info = probe(data, name=what, max_pixels=sys.maxsize)
        except ImageError as e:
            code = 413 if e.reason.startswith("image too large") else 400
            raise HTTPException(code, str(e)) from e
        if info.width * info.height > max_pixels:
            raise HTTPException(413,
                                f"{what}: {info.width}x{info.height} = {info.width * info.height:,} pixels exceeds "
                                f"the server's limit of {max_pixels:,}; downscale the image")

    async def run_one(m: ServedModel, data: bytes, what: str) -> Prediction:
        check_image(data, what)
        try:
            res = await m.batcher.submit(data)
        except OverloadedError as e:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(e)) from e
        if isinstance(res, ImageError):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(res))
        return res

    def log(m: ServedModel, data: bytes, out: dict[str, Any]) -> None:
        if logger is not None:
            logger.maybe_log(model=m.name, model_sha256=m.package.manifest.model_sha256, data=data, prediction=out)

    def count(m: str, endpoint: str, code: int, t0: float) -> None:
        metrics.requests.labels(m, endpoint, str(code)).inc()
        metrics.latency.labels(m, endpoint).observe(time.perf_counter() - t0)
        if code >= 400:
            metrics.errors.labels(m, str(code)).inc()

    guarded = APIRouter(dependencies=[Depends(auth.dependency())], responses=_AUTH_ERRORS)

    @guarded.post("/v1/models/{name}/predict", response_model=None, openapi_extra=_PREDICT_BODY,
                  responses={200: {"model": PredictionOut, "description": "The prediction, in original image pixels."},
                             **_ERRORS}, summary="Predict one image")
    async def predict(name: str, request: Request) -> JSONResponse:
        t0, code = time.perf_counter(), 500
        model_label = name if name in models else "_unknown"
        try:
            m = get_model(name)
            body = await read_body(request, max_request_bytes)
            ctype = request.headers.get("content-type", "")
            if ctype.startswith("multipart/form-data"):
                form = await read_form(request, body, max_files=1)
                f = form.get("file")
                if f is None or isinstance(f, str):
                    raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                        "multipart upload needs the image as a file in the field 'file'")
                body = await f.read()
            out = (await run_one(m, body, "uploaded image")).to_json()
            log(m, body, out)
            code = 200
            return JSONResponse(out)
        except HTTPException as e:
            code = e.status_code
            raise
        finally:
            count(model_label, "predict", code, t0)

    @guarded.post("/v1/models/{name}/predict/batch", response_model=None, openapi_extra=_BATCH_BODY,
                  responses={200: {"model": BatchOut, "description": "One result (or error) per image, in order."},
                             **_ERRORS}, summary="Predict several images")
    async def predict_batch(name: str, request: Request) -> JSONResponse:
        import asyncio

        t0, code = time.perf_counter(), 500
        model_label = name if name in models else "_unknown"
        try:
            m = get_model(name)
            ctype = request.headers.get("content-type", "")
            if not ctype.startswith("multipart/form-data"):
                raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                    "send the images as multipart/form-data, one field 'files' per image")
            body = await read_body(request, max_request_bytes * max_batch_files)
            form = await read_form(request, body, max_files=max_batch_files)
            files = [f for f in form.getlist("files") if not isinstance(f, str)]
            if not files:
                raise HTTPException(status.HTTP_400_BAD_REQUEST, "no files: send one multipart field 'files' per image")
            datas = [await f.read() for f in files]

            async def one(i: int, data: bytes) -> dict[str, Any]:
                item: dict[str, Any] = {"index": i, "filename": files[i].filename}
                try:
                    if len(data) > max_request_bytes:
                        raise HTTPException(413, f"file of {len(data):,} bytes exceeds {max_request_bytes:,} bytes")
                    out = (await run_one(m, data, files[i].filename or f"files[{i}]")).to_json()
                    log(m, data, out)
                    return {**item, "ok": True, "prediction": out, "error": None}
                except HTTPException as e:
                    if e.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
                        raise
                    return {**item, "ok": False, "prediction": None, "error": str(e.detail)}

            results = await asyncio.gather(*(one(i, d) for i, d in enumerate(datas)))
            code = 200
            return JSONResponse({"model": m.name, "results": results})
        except HTTPException as e:
            code = e.status_code
            raise
        finally:
            count(model_label, "predict_batch", code, t0)

    @guarded.get("/v1/models", response_model=ModelListOut, summary="Served models")
    async def list_models() -> dict[str, Any]:
        return {"models": [m.summary() for m in models.values()]}

    @guarded.get("/v1/models/{name}", response_model=ModelInfoOut, summary="Model metadata",
                 responses={404: _ERRORS[404]})
    async def model_info(name: str) -> dict[str, Any]:
        return get_model(name).info()

    @guarded.get("/ready", response_model=ReadyOut, summary="Readiness",
                 responses={503: {"model": ReadyOut, "description": "Models still starting."}})
    async def ready() -> JSONResponse:
        state = {name: m.batcher.running for name, m in models.items()}
        ok = all(state.values())
        return JSONResponse({"ready": ok, "models": state}, status_code=200 if ok else 503)

    @guarded.get("/metrics", summary="Prometheus metrics", response_class=Response,
                 responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/health", response_model=HealthOut, summary="Liveness (no token needed)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(guarded)
    return app
