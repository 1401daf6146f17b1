"""Response body of the active-learning route: the unlabelled images to label next and how they were chosen."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["NextImagePublic", "NextPublic"]


class NextImagePublic(BaseModel):
    id: int
    name: str
    score: float = Field(description="Uncertainty in 0..1 (entropy, margin, least_confidence), typicality "
                         "(typiclust) or 0 (random).")
    strategy: str
    reason: str = Field(description="Why this image, for people.")


class NextPublic(BaseModel):
    strategy: str = Field(description="The strategy used: `auto` resolved, or `typiclust` for a cold start.")
    diversity: str = Field(description="`cluster`, `kcenter` or `none`.")
    cold_start: bool = Field(description="True when no model was deployed, so typical images came first.")
    model: dict[str, Any] | None = Field(description="`{source, name}` of the model that scored the images.")
    backbone: str | None = Field(description="Whose stored embeddings were read (diversity, cold start).")
    pool: int = Field(description="Unlabelled images outside gold and open work.")
    considered: int = Field(description="How many of them were scored (a seeded sample beyond the limit).")
    notes: list[str]
    unreadable: list[int] = Field(description="Images that could not be decoded (left out).")
    results: list[NextImagePublic] = Field(description="Best first: the order the annotator queue should follow.")
