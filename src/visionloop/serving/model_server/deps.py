"""Typed FastAPI dependencies of the model server: its state, its models, one model by URL name.

Everything lives in one :class:`ModelServerState` on ``app.state.model_server`` (set by ``create_inference_app``),
nothing in globals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Path, Request, status

from visionloop.core.errors import NotFoundError
from visionloop.serving.model_server.feedback import FeedbackSender
from visionloop.serving.model_server.limits import ByteBudget, ServerLimits
from visionloop.serving.model_server.metrics import InferenceMetrics
from visionloop.serving.model_server.prediction_log import PredictionLogger
from visionloop.serving.model_server.served import ServedModel

if TYPE_CHECKING:
    from visionloop.serving.model_server.reload import ModelControl

__all__ = [
    "ModelDep", "ModelName", "ModelServerState", "ModelsDep", "StateDep", "get_model", "get_models", "get_state",
    "require_model",
]

ModelName = Annotated[str, Path(description="Model name, as GET /v1/models lists it.")]


@dataclass(frozen=True, kw_only=True)
class ModelServerState:
    """What the routes share: the served models by name, the metrics, the limits, the in-flight byte budget
    (``limits.max_inflight_bytes``), the prediction logger and the control of the models (reload, rollback,
    canary)."""

    models: dict[str, ServedModel]
    metrics: InferenceMetrics
    limits: ServerLimits
    inflight: ByteBudget
    prediction_logger: PredictionLogger | None
    feedback: FeedbackSender | None = None
    """Sends the predictions its samplers choose back to a project (``--feedback``)."""
    control: ModelControl | None = None


def get_state(request: Request) -> ModelServerState:
    return request.app.state.model_server


StateDep = Annotated[ModelServerState, Depends(get_state)]


def get_models(state: StateDep) -> dict[str, ServedModel]:
    return state.models


ModelsDep = Annotated[dict[str, ServedModel], Depends(get_models)]


def require_model(models: dict[str, ServedModel], name: str) -> ServedModel:
    """The served model ``name``, or a 404 that lists the served names."""
    m = models.get(name)
    if m is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(NotFoundError("model", name, choices=sorted(models))))
    return m


def get_model(models: ModelsDep, name: ModelName) -> ServedModel:
    return require_model(models, name)


ModelDep = Annotated[ServedModel, Depends(get_model)]
