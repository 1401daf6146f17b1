"""A simulated annotator for measuring assisted segmentation against ground truth masks.

It clicks where a person would: the first click at the object's centre (the pixel inside it farthest from its
edge, which lies inside even for a bent object), then per round a positive click in the largest region the mask
misses and a negative click in the largest region it wrongly holds, each at that region's own centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from visionloop.inference.assist.base import AssistMethod, Click, Prompt, assist

__all__ = ["Session", "centre_click", "iou", "refine", "region_click"]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def centre_click(mask: np.ndarray, *, positive: bool = True) -> Click | None:
    """A click at the pixel of ``mask`` farthest from its edge (None for an empty mask)."""
    if not mask.any():
        return None
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(dist.argmax()), dist.shape)
    return Click(x + 0.5, y + 0.5, positive)


def region_click(region: np.ndarray, *, positive: bool, min_pixels: int = 4) -> Click | None:
    """A click at the centre of the largest connected part of ``region`` (None when it is under ``min_pixels``)."""
    if not region.any():
        return None
    count, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
    largest = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
    if stats[largest, cv2.CC_STAT_AREA] < min_pixels:
        return None
    return centre_click(labels == largest, positive=positive)


@dataclass
class Session:
    """IoU with the truth after the first prompt (``ious[0]``) and after each refinement round."""

    ious: list[float]
    clicks: int


def refine(method: AssistMethod, image: np.ndarray, truth: np.ndarray, first: Prompt, *, rounds: int = 3,
           key: str | None = None) -> Session:
    """Segment ``first``, then ``rounds`` times add a click in the largest missed region and one in the largest
    wrongly held region (the previous mask given back), recording the IoU with ``truth`` after each."""
    prompt = first
    mask = assist(method, image, prompt, key=key).mask
    ious = [iou(mask, truth)]
    for _ in range(rounds):
        new = [c for c in (region_click(truth & ~mask, positive=True), region_click(mask & ~truth, positive=False))
               if c is not None]
        if not new:
            ious.append(ious[-1])
            continue
        prompt = Prompt(prompt.box, prompt.clicks + tuple(new), mask)
        mask = assist(method, image, prompt, key=key).mask
        ious.append(iou(mask, truth))
    return Session(ious, len(prompt.clicks))
