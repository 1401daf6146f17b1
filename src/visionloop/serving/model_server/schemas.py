"""Response shapes of the model server for its OpenAPI document (and schemathesis checks).

Answers are built as plain JSON: a prediction is :meth:`visionloop.inference.results.Prediction.to_json`, the one
prediction schema; ``PredictionOut`` only describes it, and forbids unknown keys so a test catches any drift.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["AUTH_RESPONSES", "CONTROL_RESPONSES", "ERROR_RESPONSES", "BatchItemOut", "BatchOut", "CanaryOut",
           "ChangeOut", "ErrorOut", "FollowOut", "HealthOut", "ModelInfoOut", "ModelListOut", "ModelSummaryOut", "PredictionOut",
           "ReadyOut", "VersionOut"]


class ErrorOut(BaseModel):
    detail: Any = Field(description="What was wrong and how to fix it.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Not an image, empty body or malformed upload."},
    401: {"model": ErrorOut, "description": "Missing API token."},
    403: {"model": ErrorOut, "description": "Invalid API token."},
    404: {"model": ErrorOut, "description": "Unknown model; the detail lists the served models."},
    413: {"model": ErrorOut, "description": "Request body, batch or image pixels over the server's limits."},
    503: {"model": ErrorOut, "description": "Busy: the model's queue or the bytes in flight are full; retry after "
                                            "the Retry-After header's seconds."},
}
"""Every client mistake the model server answers, for the OpenAPI document."""
AUTH_RESPONSES = {k: v for k, v in ERROR_RESPONSES.items() if k in (401, 403)}
CONTROL_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Not a package, a path outside --packages-dir, or a malformed body."},
    401: {"model": ErrorOut, "description": "Missing admin token."},
    403: {"model": ErrorOut, "description": "Not an admin token (a prediction token never is), or control is off "
                                            "(no --admin-token)."},
    404: {"model": ErrorOut, "description": "Unknown model or package path."},
    409: {"model": ErrorOut, "description": "Refused: the package does not load, fails its check prediction or has "
                                            "another task (the served model stays); nothing to roll back to; another "
                                            "upload in progress."},
    413: {"model": ErrorOut, "description": "Package archive over --max-package-mb."},
}
"""What the control routes (reload, rollback, canary) answer besides 200."""


class ClassScoreOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class_id: int
    name: str
    score: float = Field(ge=0.0, le=1.0)


class MaskOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: list[int] = Field(description="[height, width] in original image pixels")
    counts: str = Field(description="COCO compressed RLE (pycocotools.mask, as in COCO result files)")


class DetectionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    xyxy: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in original image pixels")
    class_id: int
    name: str
    score: float = Field(ge=0.0, le=1.0)
    mask: MaskOut | None = None


class SegmentOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class_id: int
    name: str
    score: float = Field(ge=0.0, le=1.0)
    mask: MaskOut


class PredictionOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str
    width: int
    height: int
    label: ClassScoreOut | None = None
    scores: list[ClassScoreOut] | None = None
    tags: list[ClassScoreOut] | None = None
    detections: list[DetectionOut] | None = None
    segments: list[SegmentOut] | None = None
    model: str | None = Field(None, description="The served model's name (model server answers).")
    package_version: str | None = Field(
        None, description="The package that made the prediction: the first 12 hex digits of its model's sha256 "
                          "(model server answers).")
    run_id: str | None = Field(None, description="The training run of that package (model server answers).")


class BatchItemOut(BaseModel):
    index: int
    filename: str | None = None
    ok: bool
    prediction: PredictionOut | None = None
    error: str | None = None


class BatchOut(BaseModel):
    model: str
    results: list[BatchItemOut]


class ModelSummaryOut(BaseModel):
    name: str
    task: str
    classes: int
    int8: bool
    package_version: str = Field(description="First 12 hex digits of the served package's model sha256.")
    run_id: str | None
    previous_version: str | None = Field(description="The package it replaced (rollback target), if any.")


class VersionOut(BaseModel):
    package_version: str
    run_id: str | None
    created_at: str
    model_sha256: str | None


class CanaryOut(BaseModel):
    package_version: str = Field(description="The challenger's package version.")
    run_id: str | None
    share: float = Field(description="Share of the model's requests the challenger answers.")
    compared: int = Field(description="Requests both answered.")
    failed: int = Field(description="Requests the challenger failed (the model answered them).")
    agreement: float | None = Field(description="Mean agreement of the two on compared requests, 0..1.")


class FollowOut(BaseModel):
    project_url: str = Field(description="The project whose deployment this model follows (serve --follow).")
    interval_s: float
    last_poll: float | None = Field(description="When the last poll ended, Unix time.")
    changes: int = Field(description="Reloads and rollbacks made by following.")
    last_error: str | None = Field(description="Why the last poll changed nothing although the deployment differs.")


class ChangeOut(BaseModel):
    model: str
    action: str = Field(description="reload, rollback, canary, canary_end (or refused, in the model's history).")
    from_version: str | None
    to_version: str | None
    ok: bool
    detail: Any = Field(description="Notes: 'already serving it', a drain timeout, a canary's final counts.")
    at: float = Field(description="Unix time, seconds.")


class ModelListOut(BaseModel):
    models: list[ModelSummaryOut]


class ModelInfoOut(BaseModel):
    name: str
    task: str
    classes: list[dict[str, Any]]
    preprocess: dict[str, Any]
    thresholds: dict[str, Any]
    metrics: dict[str, float]
    main_metric: str | None
    dataset_version: str | None
    dataset_hash: str | None
    config_hash: str | None
    run_id: str | None
    architecture: str | None
    int8: dict[str, Any] | None
    model_sha256: str | None
    created_at: str
    batching: dict[str, Any]
    sessions: int
    package_version: str = Field(description="First 12 hex digits of the package's model sha256.")
    loaded_at: float = Field(description="When this package started serving, Unix time.")
    previous: VersionOut | None = Field(description="The package it replaced (rollback target), if any.")
    canary: CanaryOut | None
    follows: FollowOut | None = None


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    ready: bool
    models: dict[str, bool]
