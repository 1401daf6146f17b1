"""Request and answer of assisted segmentation (``POST .../images/{id}/assist``) and the list of its methods."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["MAX_RLE_CHARS", "AssistMethodPublic", "AssistPublic", "AssistRequest", "ClickIn", "RlePublic"]

MAX_RLE_CHARS = 4_000_000
"""Longest ``previous_rle.counts`` a request may carry (a mask of millions of runs is not a click's refinement)."""
MAX_POINTS_IN_SCHEMA = 1000
"""A hard cap on ``points`` before the server's own (``Settings.assist_max_clicks``, a clearer 400) is checked."""


class ClickIn(BaseModel):
    x: float = Field(description="Pixels from the image's left edge.")
    y: float = Field(description="Pixels from the image's top edge.")
    positive: bool = Field(default=True, description="On the object (true) or on what is not the object (false).")


class RlePublic(BaseModel):
    """A COCO RLE in its compressed string form, as annotation payloads hold it."""

    size: list[int] = Field(min_length=2, max_length=2, description="[height, width] of the image.")
    counts: str = Field(max_length=MAX_RLE_CHARS)


class AssistRequest(BaseModel):
    """A prompt: a ``box`` and/or ``points`` (at least a box or one positive point); to refine, every point so
    far (the new ones last) and the mask the last answer gave as ``previous_rle``."""

    method: str = Field(default="grabcut", max_length=64, description="A name from GET .../assist/methods.")
    box: list[float] | None = Field(default=None, min_length=4, max_length=4,
                                    description="xyxy pixels, inside the image.")
    points: list[ClickIn] = Field(default_factory=list, max_length=MAX_POINTS_IN_SCHEMA)
    previous_rle: RlePublic | None = Field(default=None, description="The previous answer's rle (refinement).")


class AssistPublic(BaseModel):
    polygon: list[float] = Field(description="The largest part's outline: a flat [x1, y1, x2, y2, ...] ring in "
                                 "pixels ([] when nothing was found).")
    rle: RlePublic = Field(description="The whole mask, the image's size.")
    bbox: list[float] | None = Field(description="xyxy pixels of the mask; null when empty.")
    area: int = Field(description="Pixels in the mask.")
    method: str
    ms: float = Field(description="Milliseconds the server took to segment.")


class AssistMethodPublic(BaseModel):
    name: str
    title: str
    model: bool = Field(description="A learnt model the operator supplied (ONNX), not a classical method.")
    default: bool
