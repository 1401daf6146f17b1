"""Request and response bodies of the production routes (``...Public`` are responses): what a model server sends
back with a chosen image, and the samples as the review page lists them."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from visionloop.serving.projects_api.schemas import UtcDatetime

__all__ = [
    "MAX_SAMPLERS", "ProductionAcceptPublic", "ProductionAcceptRequest", "ProductionSampleIn",
    "ProductionSamplePublic", "ProductionSamplesPublic", "SamplerHitIn",
]

MAX_SAMPLERS = 16
_KEY = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class SamplerHitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    why: str = Field(default="", max_length=300, description="Why it chose the image, for people.")


class ProductionSampleIn(BaseModel):
    """The multipart field ``sample`` (JSON) sent with the image in the field ``file``."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(min_length=1, max_length=64, pattern=_KEY,
                            description="The sender's key of this sample (a uuid): a sample sent again is stored once.")
    model: str = Field(min_length=1, max_length=128, description="The served model's name.")
    package_version: str | None = Field(default=None, max_length=64)
    model_sha256: str | None = Field(default=None, max_length=64, pattern=r"^[0-9a-f]*$")
    samplers: list[SamplerHitIn] = Field(default_factory=list, max_length=MAX_SAMPLERS,
                                         description="Every sampler that chose it.")
    score: float | None = Field(default=None, ge=0.0, le=1.0)
    random_slice: bool = Field(default=False, description="Chosen by the random sampler: an unbiased sample.")
    prediction: dict[str, Any] = Field(description="The model's prediction (`Prediction.to_json`), original pixels.")
    thresholds: dict[str, Any] | None = Field(default=None, description=(
        "The package's thresholds (`score`, `per_class` by class id), kept with the suggestion."))
    predicted_at: AwareDatetime
    server: str | None = Field(default=None, max_length=128, description="The sending server's name.")


class ProductionSamplePublic(BaseModel):
    id: int
    request_id: str
    image_id: int
    server: str | None
    model: str
    package_version: str | None
    model_sha256: str | None
    samplers: list[dict[str, Any]] = Field(description="`{name, score, why}` per sampler that chose it.")
    score: float | None
    random_slice: bool
    prediction: dict[str, Any]
    predicted_at: UtcDatetime
    received_at: UtcDatetime
    review_state: str = Field(default="todo", description="The image's review state now.")


class ProductionSamplesPublic(BaseModel):
    total: int
    items: list[ProductionSamplePublic]


class ProductionAcceptRequest(BaseModel):
    base_revision: int | None = Field(default=None, ge=1, description=(
        "The image's head revision the reviewer saw (null: not annotated); a head that moved meanwhile is a 409."))


class ProductionAcceptPublic(BaseModel):
    image_id: int
    revision: int = Field(description="The image's head revision now: the prediction, as an annotation.")
    review_state: str
