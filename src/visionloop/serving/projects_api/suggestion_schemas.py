"""Request and response bodies of the pre-annotation routes (``...Public`` are responses)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.schemas import UtcDatetime

__all__ = ["MAX_PREANNOTATE_LIMIT", "PreannotateRequest", "SuggestionPublic", "ThresholdsPublic"]

MAX_PREANNOTATE_LIMIT = 1_000_000


class PreannotateRequest(BaseModel):
    package: str | None = Field(default=None, max_length=256,
                                description="A package of the project by name (default: the deployed one).")
    run: str | None = Field(default=None, max_length=256,
                            description="A training run id or `latest` instead (predicted through its package, "
                                        "exported first when it has none).")
    only_unlabelled: bool = Field(default=True, description="Only images without an annotation.")
    limit: int | None = Field(default=None, ge=1, le=MAX_PREANNOTATE_LIMIT,
                              description="Predict at most this many images in this job.")


class ThresholdsPublic(BaseModel):
    score: float = Field(description="The package's score threshold (what the editor's slider starts at).")
    per_class: dict[str, float] = Field(default_factory=dict, description="Threshold per class id.")


class SuggestionPublic(BaseModel):
    image_id: int
    source: str = Field(description="`package` or `run`.")
    model: str = Field(description="The package's name or the run's id.")
    version: str = Field(description="The model's hash (sha256 of the ONNX model).")
    thresholds: ThresholdsPublic
    prediction: dict[str, Any] = Field(description="The prediction (the shape of `GET .../predictions`), with boxes "
                                                   "down to a score of 0.05 for the editor's threshold slider.")
    created_at: UtcDatetime
