"""Request and response bodies of the platform's job, training, package and deployment routes (``...Public`` are
responses)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.schemas import UtcDatetime

__all__ = [
    "DeploymentEntryPublic",
    "DeploymentPublic",
    "DeployRequest",
    "ExportRequest",
    "JobPublic",
    "ModelOption",
    "PackagePublic",
    "PackageRequest",
    "RunComparePublic",
    "RunPublic",
    "TrainOptionsPublic",
    "TrainRequest",
]


class JobPublic(BaseModel):
    id: int
    kind: str = Field(description="import, export, train, evaluate or package.")
    state: str = Field(description="queued, running, done, failed, cancelled or interrupted.")
    progress: dict[str, Any] = Field(description="{fraction: 0..1 or null, message, ...}; a training job adds `run` "
                                     "(its run id, as soon as known), `epoch`, `epochs` and the last epoch's `record`.")
    params: dict[str, Any] = Field(description="What was asked (format, version, run, model, ...).")
    result: dict[str, Any] | None = Field(description="What the command answered when it ended (its --json output): "
                                          "an import's report, a training run's id and metrics, a package's "
                                          "manifest summary and int8 guard verdict, ...")
    error: str | None
    log: str | None = Field(default=None, description="Tail of the command's log (in GET .../jobs/{id} only).")
    created_by: str
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class ExportRequest(BaseModel):
    format: str = Field(description="A format name, e.g. coco, voc, yolo, cvat, labelme, csv.")
    version: str | None = Field(default=None, description="A dataset version; the current annotations when null.")


class TrainRequest(BaseModel):
    version: str = Field(description="The dataset version to train on.")
    model: str | None = Field(default=None, description="A model name from GET .../train/options; the task's "
                              "default when null.")
    strategy: Literal["auto", "finetune", "frozen", "linear"] | None = Field(
        default=None, description="Classification and tagging only; null: auto.")
    epochs: int | None = Field(default=None, ge=1, le=1000, description="Null: chosen for the task and strategy.")
    image_size: int | None = Field(default=None, ge=32, le=4096)
    batch_size: int | None = Field(default=None, ge=1, le=1024)
    deploy: bool = Field(default=False, description="When the run is trained and evaluated, export its package and "
                         "deploy it in the platform (jobs follow one another: train, evaluate, package, deploy).")


class ModelOption(BaseModel):
    name: str
    library: str
    description: str
    input_size: int | None
    offline_pretrained: bool


class TrainOptionsPublic(BaseModel):
    task: str
    version: str | None
    default_model: str
    models: list[ModelOption]
    strategies: list[str] = Field(description="Empty for detection and segmentation (always fine-tuned).")
    auto: dict[str, Any] = Field(description="What `auto` chooses and why: {strategy, reason, epochs; image_size for a detector on a version}.")
    training_images: int | None


class RunPublic(BaseModel):
    id: str
    task: str
    model: str
    version: str | None
    strategy: str
    state: str = Field(description="done, running (a job trains it now), stopped (no result and no job: "
                       "interrupted or failed; resume it) or failed.")
    created_at: str
    epochs: int = Field(description="Epochs logged in metrics.jsonl.")
    metrics: dict[str, Any] = Field(description="Main metrics: the result's validation metrics, and the test "
                                    "metrics of the report when one was made.")
    main_metric: str | None
    report: bool = Field(description="Whether report.html exists (GET .../runs/{id}/report).")
    job: int | None = Field(default=None, description="The job training it, while one does.")


class RunDetailPublic(RunPublic):
    config: dict[str, Any]
    result: dict[str, Any] | None
    evaluation: dict[str, Any] | None = Field(description="eval-<split>.json of the report, without large curves.")
    int8_guard: dict[str, Any] | None


class RunComparePublic(BaseModel):
    a: RunPublic
    b: RunPublic
    config: dict[str, dict[str, Any]] = Field(description="Config keys (dotted) whose values differ: {key: {a, b}}.")
    metrics: dict[str, dict[str, Any]] = Field(description="{metric: {a, b, delta}} (delta = b - a).")
    per_class: dict[str, dict[str, dict[str, Any]]] = Field(
        description="{class: {metric: {a, b, delta}}} from the two runs' evaluations on the same split.")
    split: str | None


class PackageRequest(BaseModel):
    run: str = Field(description="Run id.")
    int8: bool = Field(default=False, description="Static int8, kept only when the guard passes (its verdict is in "
                       "the job's result and the package listing).")


class PackagePublic(BaseModel):
    name: str
    task: str
    run: str | None
    dataset_version: str | None
    precision: str = Field(description="fp32 or int8.")
    classes: list[str]
    metrics: dict[str, float]
    main_metric: str | None
    int8: dict[str, Any] | None = Field(description="What int8 cost, measured at export (manifest).")
    int8_guard: dict[str, Any] | None = Field(description="The run's int8-guard.json (outcome written or refused).")
    created_at: str
    size_bytes: int
    deployed: bool


class DeployRequest(BaseModel):
    package: str = Field(description="A package name from GET .../packages.")


class DeploymentEntryPublic(BaseModel):
    package: str | None
    package_version: str | None = None
    model_sha256: str | None = None
    deployed_at: str | None = Field(None, description="ISO 8601, UTC.")
    deployed_by: str | None = None
    action: str | None = Field(None, description="deploy or rollback.")


class DeploymentPublic(BaseModel):
    package: str | None
    task: str | None = None
    classes: list[str] = Field(default_factory=list)
    model_sha256: str | None = None
    package_version: str | None = Field(None, description="First 12 hex digits of model_sha256: what model servers "
                                                          "name in each prediction.")
    run_id: str | None = None
    deployed_at: UtcDatetime | None = None
    deployed_by: str | None = None
    previous: DeploymentEntryPublic | None = Field(None, description="The deployment a rollback deploys again.")
    history: list[DeploymentEntryPublic] = Field(default_factory=list, description="Earlier deployments, newest "
                                                                                   "first (bounded).")
