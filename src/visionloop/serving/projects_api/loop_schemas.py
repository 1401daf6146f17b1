"""Request and response bodies of the loop routes (``...Public`` are responses)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.schemas import UtcDatetime

__all__ = ["LoopCyclePublic", "LoopHistoryPublic", "LoopStartRequest"]


class LoopCyclePublic(BaseModel):
    id: int
    trigger: str = Field(description="count, schedule, drift, manual or rollback.")
    state: str = Field(description="running, promoted, kept (the champion stays), failed or rolled_back.")
    new_annotations: int = Field(description="New approved annotations since the champion's version.")
    version: str | None = Field(description="The version the cycle froze (the challenger trained on it).")
    test_version: str | None = Field(description="The version whose test split both models were measured on.")
    champion_run: str | None
    challenger_run: str | None
    package: str | None = Field(description="The package the cycle deployed (promoted), if any.")
    metric: str | None
    champion_value: float | None
    challenger_value: float | None
    ci_low: float | None = Field(description="Bootstrap CI of challenger minus champion over the test images.")
    ci_high: float | None
    reason: str | None = Field(description="Why the cycle decided as it did (or why it failed).")
    details: dict[str, Any] = Field(description="report (path in the project), confidence, resamples, images, "
                                    "n_better, n_worse, per_class, recipe, started_because, ...")
    author: str
    started_at: UtcDatetime
    finished_at: UtcDatetime | None
    report: bool = Field(False, description="Whether GET .../loop/cycles/{id}/report has a comparison report.")


class LoopHistoryPublic(BaseModel):
    cycles: list[LoopCyclePublic] = Field(description="Newest first.")
    deployment: dict[str, Any] | None = Field(description="The deployed package (package, package_version, "
                                              "deployed_at, deployed_by, action).")
    last_promotion: LoopCyclePublic | None
    job: int | None = Field(description="The queued or running loop job, if any.")
    settings: dict[str, Any] = Field(description="The project's loop settings (min_new, margin, metric, confidence, "
                                     "resamples, approved_only, every_hours).")


class LoopStartRequest(BaseModel):
    force: bool = Field(True, description="Run a cycle whatever the count of new annotations (a person asked).")
    min_new: int | None = Field(None, ge=0, le=10_000_000, description="Without force: the count that starts it.")
    margin: float | None = Field(None, ge=-1, le=1, description="Promote only when the CI's lower bound is above.")
