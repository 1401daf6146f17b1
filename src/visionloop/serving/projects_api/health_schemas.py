"""Schemas of the dataset health route (``GET /projects/{project}/health``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from visionloop.serving.projects_api.similar_schemas import EmbeddingSetPublic

__all__ = [
    "BinPublic",
    "ClassHealthPublic",
    "DatasetHealthPublic",
    "DuplicatesHealthPublic",
    "FolderPublic",
    "LabelErrorsHealthPublic",
    "LabelIssueTopPublic",
]


class ClassHealthPublic(BaseModel):
    id: int
    name: str
    colour: str | None
    objects: int = Field(description="Instances (or labels) of the class in the head annotations.")
    images: int = Field(description="Images with at least one of them.")


class BinPublic(BaseModel):
    min: float
    max: float | None = Field(description="Upper bound (excluded); None for the last, open bin.")
    count: int


class FolderPublic(BaseModel):
    folder: str = Field(description="First folder of the image names; '/' for names without one.")
    images: int


class LabelIssueTopPublic(BaseModel):
    id: int
    image_id: int
    image_name: str
    kind: str
    rank: int
    score: float
    given: str | None
    suggested: str | None


class LabelErrorsHealthPublic(BaseModel):
    run_id: int
    created_at: datetime
    method: str
    total: int
    states: dict[str, int] = Field(description="Candidates per state: open, fixed, dismissed.")
    top: list[LabelIssueTopPublic] = Field(description="The likeliest open candidates, by rank.")


class DuplicatesHealthPublic(BaseModel):
    exact_groups: int = Field(description="Groups of byte-identical images (same sha256).")
    exact_images: int
    embeddings: list[EmbeddingSetPublic] = Field(description=(
        "Embeddings stored with the project; near-duplicate groups (GET .../duplicates) and outliers need image "
        "embeddings: none yet means run the embed job (POST .../embeddings)."))


class DatasetHealthPublic(BaseModel):
    images: int
    annotated_images: int
    unlabelled: int
    classes: list[ClassHealthPublic] = Field(description="Most objects first.")
    boxes: int = Field(description="Boxes (and instances) in the head annotations.")
    size_unit: str = "px"
    box_sizes: list[BinPublic] = Field(description="Boxes per size bin: the square root of the box area, pixels.")
    box_aspects: list[BinPublic] = Field(description="Boxes per aspect-ratio bin: width / height.")
    folders: list[FolderPublic] = Field(description="Images per first folder of their names, most first.")
    other_folders: dict[str, int] = Field(description="folders and images beyond the listed ones.")
    reviews: dict[str, int] = Field(description="Images per current review state (todo: also never reviewed).")
    label_errors: LabelErrorsHealthPublic | None = Field(description="The newest label-error run; None: never run.")
    duplicates: DuplicatesHealthPublic
