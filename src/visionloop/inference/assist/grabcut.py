"""GrabCut (OpenCV: Rother et al. 2004) seeded by the prompt, on a window around it.

Seeds, in the window: outside the box is background; inside it probably the object; the previous mask probably
the object; a disc under each positive click is the object for sure, under each negative click background for
sure; a box without clicks marks the ellipse in its middle (60% of its sides) as the object for sure, which
keeps GrabCut from dropping an object whose colour the background round it also holds (neighbouring nuclei).
Without a box, the window's frame is background and, unless a previous mask says where the object probably is,
a disc round each positive click (a quarter of the window's side) probably the object. The answer keeps the connected parts under the positive clicks.
"""

from __future__ import annotations

import cv2
import numpy as np

from visionloop.inference.assist.base import (
    MAX_WINDOW_PIXELS,
    AssistMethod,
    Prompt,
    keep_prompted_components,
    segment_in_window,
)

__all__ = ["GrabCut", "grabcut_seeds"]

CORE = 0.3
"""Half-axes of the ellipse in the middle of a box that is the object for sure, as a share of the box's sides."""


def _disc(mask: np.ndarray, x: float, y: float, radius: int, value: int) -> None:
    cv2.circle(mask, (int(x), int(y)), radius, value, thickness=-1)


def grabcut_seeds(shape: tuple[int, int], prompt: Prompt, *, click_radius: int) -> np.ndarray:
    """The (h, w) uint8 GrabCut seed mask (``cv2.GC_*`` values) of ``prompt`` in window pixels."""
    h, w = shape
    seeds = np.full((h, w), cv2.GC_PR_BGD, dtype=np.uint8)
    if prompt.previous is not None and prompt.previous.any():
        seeds[prompt.previous] = cv2.GC_PR_FGD
    if prompt.box is not None:
        x1, y1, x2, y2 = (round(v) for v in prompt.box)
        inside = np.zeros((h, w), dtype=bool)
        inside[max(0, y1):y2, max(0, x1):x2] = True
        if prompt.previous is None:
            seeds[inside] = cv2.GC_PR_FGD
            if not prompt.positives:  # a box drawn round the object: its middle is the object
                centre = ((x1 + x2) // 2, (y1 + y2) // 2)
                axes = (max(1, round((x2 - x1) * CORE)), max(1, round((y2 - y1) * CORE)))
                cv2.ellipse(seeds, centre, axes, 0, 0, 360, cv2.GC_FGD, thickness=-1)
        seeds[~inside] = cv2.GC_BGD
    else:
        if prompt.previous is None:
            for c in prompt.positives:
                _disc(seeds, c.x, c.y, max(2 * click_radius, min(h, w) // 4), cv2.GC_PR_FGD)
        seeds[[0, -1], :] = np.where(seeds[[0, -1], :] == cv2.GC_PR_FGD, cv2.GC_PR_FGD, cv2.GC_BGD)
        seeds[:, [0, -1]] = np.where(seeds[:, [0, -1]] == cv2.GC_PR_FGD, cv2.GC_PR_FGD, cv2.GC_BGD)
    for c in prompt.positives:
        _disc(seeds, c.x, c.y, click_radius, cv2.GC_FGD)
    for c in prompt.negatives:
        _disc(seeds, c.x, c.y, click_radius, cv2.GC_BGD)
    return seeds


class GrabCut(AssistMethod):
    """``cv2.grabCut`` for ``iterations`` rounds on a window of at most ``max_pixels``; clicks mark discs of
    ``click_radius`` window pixels."""

    name = "grabcut"
    title = "GrabCut (OpenCV): colour models of object and background, cut on a graph"

    def __init__(self, *, iterations: int = 5, click_radius: int = 2, max_pixels: int = MAX_WINDOW_PIXELS) -> None:
        self.iterations = iterations
        self.click_radius = click_radius
        self.max_pixels = max_pixels

    def segment(self, image: np.ndarray, prompt: Prompt, *, key: str | None = None) -> np.ndarray:
        return segment_in_window(image, prompt, self.cut, max_pixels=self.max_pixels, collapsed=self.collapsed)

    def collapsed(self, mask: np.ndarray, prompt: Prompt) -> bool:
        """Whether ``mask`` is hardly more than the discs under the positive clicks."""
        return int(mask.sum()) <= 2 * len(prompt.positives) * (np.pi * (self.click_radius + 0.5) ** 2)

    def cut(self, crop: np.ndarray, prompt: Prompt) -> np.ndarray:
        """The (h, w) bool mask of ``prompt`` in ``crop`` ((h, w, 3) uint8 RGB, the prompt in its pixels)."""
        seeds = grabcut_seeds(crop.shape[:2], prompt, click_radius=self.click_radius)
        fg = np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD))
        if fg.any() and (~fg).any():
            bgd = np.zeros((1, 65), np.float64)
            fgd = np.zeros((1, 65), np.float64)
            cv2.grabCut(cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), seeds, None, bgd, fgd, self.iterations,
                        cv2.GC_INIT_WITH_MASK)
        return keep_prompted_components(np.isin(seeds, (cv2.GC_FGD, cv2.GC_PR_FGD)), prompt)
