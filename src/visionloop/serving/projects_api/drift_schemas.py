"""Request and response bodies of the drift routes (``...Public`` are responses)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.schemas import UtcDatetime
from visionloop.serving.projects_api.similar_schemas import BACKBONE_PATTERN

__all__ = ["DriftCheckRequest", "DriftReportPublic", "DriftReportsPublic"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class DriftReportPublic(BaseModel):
    id: int
    model: str | None = Field(description="The package checked (its name in the project).")
    reference: str | None = Field(description="The dataset version production was compared with.")
    window_start: UtcDatetime
    window_end: UtcDatetime
    n_production: int = Field(description="Production samples compared (after subsampling).")
    n_reference: int = Field(description="Reference train images compared (after subsampling).")
    mmd: float | None = Field(description="Unbiased MMD² of the embeddings (RBF kernel, median bandwidth).")
    mmd_p: float | None = Field(description="Its permutation p-value.")
    confidence_stat: float | None = Field(description="Two-sample statistic of the confidences (KS by default).")
    confidence_p: float | None
    psi: float | None = Field(description="Population stability index of the predicted-class histogram.")
    image_stats: dict[str, Any] = Field(description="Per statistic (size, brightness, blur): ks, p, psi, means and "
                                        "histograms (edges; reference and production fractions per bin).")
    alert: bool
    details: dict[str, Any] = Field(description="alerts (the statistics that crossed their threshold), thresholds, "
                                    "classes (names, reference and production counts), note, loop_requested, ...")
    created_at: UtcDatetime


class DriftReportsPublic(BaseModel):
    thresholds: dict[str, float] = Field(description="The default thresholds (mmd_p, confidence_p, psi, image_psi, "
                                         "histogram_p), for the charts' threshold lines.")
    reports: list[DriftReportPublic] = Field(description="Newest first.")


class DriftCheckRequest(BaseModel):
    window: str = Field(default="24h", max_length=16, description="Production samples received in the last "
                        "WINDOW: a number and s, m, h, d or w.")
    all_samples: bool = Field(default=False, description="Every sample of the window, not only the random slice.")
    package: str | None = Field(default=None, pattern=NAME_PATTERN, description="A package of the project "
                                "(default: the deployed one).")
    reference: str | None = Field(default=None, pattern=NAME_PATTERN, description="A dataset version to compare "
                                  "with (default: the package's training version).")
    backbone: str | None = Field(default=None, pattern=BACKBONE_PATTERN, description="Whose embeddings the MMD "
                                 "compares (default tf_efficientnet_lite0; missing ones are computed).")
