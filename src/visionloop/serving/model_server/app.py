"""The model server: model packages behind a small HTTP API with dynamic batching, tokens, limits and metrics.

Routes (all but ``/health`` need ``Authorization: Bearer <token>`` when tokens are configured):

- ``POST /v1/models/{name}/predict``: one image, as a multipart upload in the field ``file`` or as the raw body
- ``POST /v1/models/{name}/predict/batch``: several images, multipart fields ``files``; per-image results or errors
- ``GET /v1/models``: ``{"models": [{"name": ..., "task": ..., ...}, ...]}``
- ``GET /v1/models/{name}``: the package's manifest summary and batching settings
- ``GET /health`` (liveness, never needs a token), ``GET /ready`` (models loaded, workers running)
- ``GET /metrics``: Prometheus text (requests, errors, latency histogram, batch sizes, queue depth, versions served,
  canary agreement)
- control, admin tokens only (see ``reload`` and ``routes.control``): ``POST /v1/models/{name}/reload`` (hot reload),
  ``POST /v1/models/{name}/rollback``, ``POST``/``DELETE /v1/models/{name}/canary``

Every prediction names the package that made it: ``model``, ``package_version`` (the first 12 hex digits of the
model's sha256) and ``run_id``. With ``feedback``, the predictions its samplers choose go back to a project for review
(see ``feedback``).

Every client mistake is a 4xx with a JSON ``detail``: 400 not an image / empty / malformed upload, 401 missing token,
403 wrong token, 404 unknown model, 413 body, batch or image too large; a busy server (a model's queue or the
request bytes in flight at their limit, see ``limits``) answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI

from visionloop.core.errors import VisionloopError
from visionloop.core.package import Package, load_package
from visionloop.inference.predictor import Predictor
from visionloop.serving.docs import docs_app_options, install_offline_docs, offline_assets_dir
from visionloop.serving.model_server.batching import BatchConfig, ChunkRunner
from visionloop.serving.model_server.deps import ModelServerState
from visionloop.serving.model_server.feedback import FeedbackSender, FeedbackSettings
from visionloop.serving.model_server.follow import FollowSettings, ProjectFollower
from visionloop.serving.model_server.limits import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_BATCH_FILES,
    DEFAULT_MAX_INFLIGHT_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_REQUEST_BYTES,
    ByteBudget,
    ServerLimits,
)
from visionloop.serving.model_server.metrics import InferenceMetrics
from visionloop.serving.model_server.prediction_log import PredictionLogger
from visionloop.serving.model_server.reload import ModelControl, ReloadSettings
from visionloop.serving.model_server.routes import CONTROL, GUARDED, health
from visionloop.serving.model_server.schemas import AUTH_RESPONSES
from visionloop.serving.model_server.served import PackageSources, ServedModel, load_runners
from visionloop.serving.model_server.tokens import TokenAuth

__all__ = ["create_inference_app"]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: ModelServerState = app.state.model_server
    for m in state.models.values():
        await m.batcher.start()
    canaries: dict[str, tuple[Package, float]] = app.state.pending_canaries
    if state.control is not None:
        for name, (pkg, share) in canaries.items():
            await state.control.set_canary(name, pkg, share)
    following = asyncio.create_task(app.state.follower.run()) if app.state.follower is not None else None
    try:
        yield
    finally:
        if following is not None:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        for m in list(state.models.values()):
            if m.canary is not None:
                await m.canary.challenger.batcher.stop()
            await m.batcher.stop()
        if state.prediction_logger is not None:
            state.prediction_logger.close()
        if state.feedback is not None:
            state.feedback.close()


def create_inference_app(
    packages: PackageSources = (), *, tokens: Sequence[str] = (),
    batching: BatchConfig | Mapping[str, BatchConfig] | None = None,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
    max_batch_files: int = DEFAULT_MAX_BATCH_FILES, max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_inflight_bytes: int = DEFAULT_MAX_INFLIGHT_BYTES, sessions: int | None = None, log_predictions: float = 0.0,
    log_dir: str | Path | None = None, runners: Mapping[str, tuple[Package, ChunkRunner]] | None = None,
    feedback: FeedbackSettings | None = None,
    admin_tokens: Sequence[str] = (), reload: ReloadSettings | None = None,
    canaries: Mapping[str, tuple[str | Path | Package, float]] | None = None, follow: FollowSettings | None = None,
) -> FastAPI:
    """The inference app for ``packages`` (paths, or {name: path}; names default to the manifests' names).

    ``batching``: one config for all models or one per model name (missing names get the default).
    Limits (bytes unless said): ``max_request_bytes`` per single-image body and per image file,
    ``max_batch_bytes`` per batch body, ``max_batch_files`` images per batch, ``max_inflight_bytes`` for all bodies
    held at once, ``max_pixels`` per image; each model's queue holds ``BatchConfig.max_queue`` images.
    ``sessions``: onnxruntime sessions per model (default: one per core). ``log_predictions``: fraction (0..1) of
    predictions written under ``log_dir`` for the review loop. ``runners`` serves ready-made runners instead
    (benchmarks: the PyTorch model in the same server). ``feedback``: send the predictions its samplers choose to a
    project (see ``model_server.feedback``).

    ``admin_tokens`` open the control routes (reload, rollback, canary; off without them); ``reload``: where packages
    may be loaded from and the limits of a change. ``canaries``: {model name: (challenger package, share)} started
    with the server. ``follow``: one served model follows the package deployed in a project (see ``follow``).
    """
    if log_predictions > 0 and log_dir is None:
        raise VisionloopError("log_predictions > 0 needs log_dir, the folder for sampled images and predictions")
    limits = ServerLimits(max_request_bytes=max_request_bytes, max_pixels=max_pixels, max_batch_files=max_batch_files,
                          max_batch_bytes=max_batch_bytes, max_inflight_bytes=max_inflight_bytes)
    loaded = dict(runners) if runners is not None else load_runners(packages, sessions=sessions, max_pixels=max_pixels)
    metrics = InferenceMetrics()
    default_batch = batching if isinstance(batching, BatchConfig) else BatchConfig()
    per_model = batching if isinstance(batching, Mapping) else {}

    assets = offline_assets_dir()
    app = FastAPI(title="visionloop inference", version="1", lifespan=_lifespan, **docs_app_options(assets),
                  description="Predictions from visionloop model packages. " + (__doc__ or "").split("\n\n")[0])
    if assets is not None:
        install_offline_docs(app, assets)
    models = {name: ServedModel(name, runner, pkg, per_model.get(name, default_batch), metrics)
              for name, (pkg, runner) in loaded.items()}
    unknown = sorted(set(canaries or {}) - set(models))
    if unknown:
        raise VisionloopError(f"canary for {', '.join(unknown)}, which is not served; served: {', '.join(models)}")
    app.state.pending_canaries = {name: (src if isinstance(src, Package) else load_package(src), share)
                                  for name, (src, share) in (canaries or {}).items()}
    sender = FeedbackSender(feedback) if feedback is not None else None
    app.state.model_server = ModelServerState(
        models=models, metrics=metrics, limits=limits, inflight=ByteBudget(limits.max_inflight_bytes),
        prediction_logger=(PredictionLogger(log_dir, rate=log_predictions)
                           if log_dir is not None and log_predictions > 0 else None), feedback=sender,
        control=ModelControl(models, metrics=metrics, batching=lambda name: per_model.get(name, default_batch),
                             runner_factory=lambda pkg: Predictor(pkg, sessions=sessions, max_pixels=max_pixels),
                             settings=reload),
    )
    if follow is not None and follow.model not in models:
        raise VisionloopError(f"--follow-model {follow.model!r} is not served; served: {', '.join(models)}")
    control = app.state.model_server.control
    app.state.follower = ProjectFollower(control, follow) if follow is not None and control is not None else None
    metrics.watch(inflight=app.state.model_server.inflight, prediction_logger=app.state.model_server.prediction_logger)
    if sender is not None:
        sender.attach(app.state.model_server.models)
        metrics.registry.register(sender.collector())
    guard = [Depends(TokenAuth([*tokens, *admin_tokens] if tokens else []).dependency())]
    for router in GUARDED:
        app.include_router(router, dependencies=guard, responses=AUTH_RESPONSES)
    admin = TokenAuth(admin_tokens, off_detail="model control is off: start the server with --admin-token (or "
                                               "VISIONLOOP_ADMIN_TOKENS)")
    for router in CONTROL:
        app.include_router(router, dependencies=[Depends(admin.dependency())])
    app.include_router(health.router)
    return app
