"""Request and response bodies of the label-error routes (candidates of the finder, fix, dismiss) and of the
findings set aside (duplicate groups, outliers)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.schemas import UtcDatetime
from visionloop.storage.dismissals import MAX_IDS
from visionloop.storage.label_issues import MAX_NOTE

__all__ = ["DismissRequest", "DismissalCreate", "DismissalPublic", "FixRequest", "FixedPublic", "LabelErrorRunPublic",
           "LabelErrorsPublic", "LabelErrorsRequest", "LabelIssuePublic", "OutlierPublic", "OutliersPublic"]

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class LabelErrorsRequest(BaseModel):
    version: str | None = Field(default=None, pattern=NAME, description="Dataset version (default: the current "
                                "annotations).")
    run: str | None = Field(default=None, pattern=NAME, description="A detection run (id or 'latest') whose "
                            "predictions give missing and loose boxes.")
    package: str | None = Field(default=None, pattern=NAME, description="Or a model package of the project.")
    folds: int = Field(default=5, ge=2, le=20, description="Cross-validation folds.")
    method: Literal["prune_by_noise_rate", "both", "prune_by_class", "confident_joint", "confusion"] = (
        "prune_by_noise_rate")


class LabelErrorRunPublic(BaseModel):
    id: int
    created_at: UtcDatetime
    created_by: str
    version: str | None
    source: str | None
    method: str
    params: dict[str, Any]
    summary: dict[str, Any]


class LabelIssuePublic(BaseModel):
    id: int
    run_id: int
    rank: int = Field(description="1: the likeliest error.")
    kind: str = Field(description="wrong_label, wrong_tag, wrong_class, missing_box or loose_box.")
    image_id: int
    image: str = Field(description="The image's file name.")
    box_index: int | None = Field(description="The box in the revision the candidate was found in.")
    revision_id: int | None
    given: str | None
    given_class_id: int | None
    suggested: str | None
    suggested_class_id: int | None
    box: list[float] | None = Field(description="xyxy pixels: the box to add (missing) or the tighter box (loose).")
    score: float = Field(description="How likely the label is wrong, 0..1.")
    details: dict[str, Any]
    state: str = Field(description="open, fixed or dismissed.")
    state_by: str | None
    state_at: UtcDatetime | None


class LabelErrorsPublic(BaseModel):
    run: LabelErrorRunPublic | None = Field(description="The finder run listed (null: none ran yet).")
    total: int = Field(description="Candidates passing the filters.")
    counts: dict[str, int] = Field(description="Candidates of the run per state.")
    offset: int
    limit: int
    items: list[LabelIssuePublic]


class FixRequest(BaseModel):
    base_revision: int | None = Field(description="The head revision number the reviewer saw (GET .../images/{id}); "
                                      "409 with both versions when it moved.")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class DismissRequest(BaseModel):
    note: str | None = Field(default=None, max_length=MAX_NOTE, description="Why (kept in the history).")


class FixedPublic(BaseModel):
    issue: LabelIssuePublic
    revision: int = Field(description="The image's new head revision.")


class OutlierPublic(BaseModel):
    id: int
    name: str
    score: float = Field(description="Mean cosine distance to the k nearest images: larger is more unusual.")
    neighbours: list[int]


class OutliersPublic(BaseModel):
    backbone: str
    k: int
    dismissed: int = Field(description="Outliers set aside (left out of the list).")
    results: list[OutlierPublic] = Field(description="Most unusual first.")


class DismissalCreate(BaseModel):
    kind: Literal["duplicates", "outlier"]
    image_ids: list[int] = Field(min_length=1, max_length=MAX_IDS, description="A duplicate group's ids (2 or more) "
                                 "or one outlier's id.")
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class DismissalPublic(BaseModel):
    id: int
    kind: str
    image_ids: list[int]
    note: str | None
    author: str
    created_at: UtcDatetime


