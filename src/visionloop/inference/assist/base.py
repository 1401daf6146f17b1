"""The one interface of assisted segmentation: a prompt (a box and/or clicks, perhaps the previous mask) on an image
gives a mask, its outline and its RLE.

Coordinates are pixels of the image (after EXIF orientation), x to the right and y down; a box is ``xyxy``. Every
method implements :class:`AssistMethod` (``segment(image, prompt, *, key) -> (H, W) bool``); :func:`assist` checks
the prompt, runs the method and shapes the answer (:class:`AssistResult`: the mask, the largest component's polygon
simplified with ``cv2.approxPolyDP``, the COCO RLE the project stores, the box and the area).

Classical methods work on a window around the prompt (:func:`segment_in_window`), at most
:data:`MAX_WINDOW_PIXELS` pixels (a larger window is downscaled), so a 100-megapixel image costs what a small one
does; round clicks without a box the window grows until the object fits in it.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from visionloop.core.annotations import RLE
from visionloop.core.errors import VisionloopError

__all__ = [
    "MAX_CLICKS",
    "MAX_WINDOW_PIXELS",
    "REACHES",
    "AssistMethod",
    "AssistPromptError",
    "AssistResult",
    "Click",
    "Prompt",
    "Window",
    "assist",
    "changes_at_clicks",
    "keep_prompted_components",
    "mask_polygon",
    "prompt_region",
    "prompt_window",
    "segment_in_window",
]

MAX_CLICKS = 64
"""Clicks one prompt may hold (a person refines with a handful)."""
MAX_WINDOW_PIXELS = 1024 * 1024
"""Pixels a classical method works on at most: a larger window around the prompt is downscaled to this."""


class AssistPromptError(VisionloopError, ValueError):
    """A prompt that cannot be segmented: ``what`` was ``actual``, ``expected`` says what is accepted."""

    def __init__(self, what: str, *, expected: Any, actual: Any, hint: str = "") -> None:
        self.what, self.expected, self.actual, self.hint = what, expected, actual, hint
        msg = f"{what}: expected {expected}, got {actual}"
        super().__init__(f"{msg}. {hint}" if hint else msg)


@dataclass(frozen=True)
class Click:
    """A click at pixel (x, y): on the object (``positive``) or on what is not the object."""

    x: float
    y: float
    positive: bool = True


@dataclass(frozen=True, eq=False)
class Prompt:
    """What the person gave: ``box`` (xyxy pixels) and/or ``clicks``, and ``previous``, the (H, W) bool mask the
    last answer gave (refinement: the clicks are all the clicks so far, the new ones last)."""

    box: tuple[float, float, float, float] | None = None
    clicks: tuple[Click, ...] = ()
    previous: np.ndarray | None = field(default=None, repr=False)

    @property
    def positives(self) -> list[Click]:
        return [c for c in self.clicks if c.positive]

    @property
    def negatives(self) -> list[Click]:
        return [c for c in self.clicks if not c.positive]

    def check(self, width: int, height: int, *, max_clicks: int = MAX_CLICKS) -> None:
        """Raise :class:`AssistPromptError` unless the prompt fits a ``width`` x ``height`` image."""
        if self.box is None and not self.positives:
            raise AssistPromptError("prompt", expected="a box or at least one positive click",
                                    actual=f"{len(self.negatives)} negative click(s) only",
                                    hint="click on the object (a negative click only says what it is not)")
        if len(self.clicks) > max_clicks:
            raise AssistPromptError("clicks", expected=f"at most {max_clicks}", actual=len(self.clicks),
                                    hint="accept the mask and refine it with the brush, or start again")
        for i, c in enumerate(self.clicks):
            if not (math.isfinite(c.x) and math.isfinite(c.y) and 0 <= c.x <= width and 0 <= c.y <= height):
                raise AssistPromptError(f"click {i}", expected=f"a point inside the {width}x{height} image",
                                        actual=[c.x, c.y])
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            if not all(math.isfinite(v) for v in self.box) or x1 < 0 or y1 < 0 or x2 > width or y2 > height:
                raise AssistPromptError("box", expected=f"xyxy inside the {width}x{height} image",
                                        actual=list(self.box), hint="clip the box to the image")
            if x2 - x1 < 2 or y2 - y1 < 2:
                raise AssistPromptError("box", expected="x2 > x1 + 2 and y2 > y1 + 2 (xyxy pixels)",
                                        actual=list(self.box))
        if self.previous is not None and self.previous.shape != (height, width):
            raise AssistPromptError("previous mask", expected=f"the image's size {[height, width]}",
                                    actual=list(self.previous.shape))


@dataclass(frozen=True)
class Window:
    """A rectangle ``[x0, x0 + w) x [y0, y0 + h)`` of the image, worked on at ``scale`` (<= 1)."""

    x0: int
    y0: int
    w: int
    h: int
    scale: float = 1.0

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The window's pixels, downscaled by ``scale``."""
        part = image[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w]
        if self.scale >= 1.0:
            return np.ascontiguousarray(part)
        size = (max(1, round(self.w * self.scale)), max(1, round(self.h * self.scale)))
        return cv2.resize(part, size, interpolation=cv2.INTER_AREA)

    def to_local(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.scale, (y - self.y0) * self.scale

    def local_prompt(self, prompt: Prompt) -> Prompt:
        """The prompt in the window's (scaled) pixels; the previous mask cropped and scaled alike."""
        box = None
        if prompt.box is not None:
            a, b = self.to_local(*prompt.box[:2])
            c, d = self.to_local(*prompt.box[2:])
            box = (a, b, c, d)
        clicks = tuple(Click(*self.to_local(c.x, c.y), c.positive) for c in prompt.clicks)
        previous = None
        if prompt.previous is not None:
            previous = self.crop(prompt.previous.astype(np.uint8) * 255) > 127
        return Prompt(box, clicks, previous)

    def paste(self, local: np.ndarray, height: int, width: int) -> np.ndarray:
        """The (height, width) bool mask of the image holding ``local`` (the window's mask) in its place."""
        out = np.zeros((height, width), dtype=bool)
        if self.scale < 1.0:
            local = cv2.resize(local.astype(np.uint8), (self.w, self.h), interpolation=cv2.INTER_NEAREST) > 0
        out[self.y0:self.y0 + self.h, self.x0:self.x0 + self.w] = local
        return out


def _bbox_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


REACHES = (16, 32, 64, 128, 256, 512)
"""Margins tried in turn round clicks without a box: the object's size is unknown, so the window grows until the
mask no longer touches its edge."""
COLLAPSED_REACH = 128
"""A mask no more than the clicks' seeds makes the window grow up to this margin only (a tiny object stays tiny)."""


def prompt_window(prompt: Prompt, width: int, height: int, *, reach: float = REACHES[-1],
                  max_pixels: int = MAX_WINDOW_PIXELS) -> Window:
    """The part of the image a classical method looks at: the box with a margin of half its size (at least 16 px),
    or the clicks and the previous mask with a margin of ``reach`` pixels; scaled down when it holds more than
    ``max_pixels``."""
    xs: list[float] = [c.x for c in prompt.clicks]
    ys: list[float] = [c.y for c in prompt.clicks]
    if prompt.box is not None:
        xs += [prompt.box[0], prompt.box[2]]
        ys += [prompt.box[1], prompt.box[3]]
    if prompt.previous is not None and (prev := _bbox_of(prompt.previous)) is not None:
        xs += [prev[0], prev[2]]
        ys += [prev[1], prev[3]]
    x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
    margin = max(16.0, 0.5 * max(x2 - x1, y2 - y1)) if prompt.box is not None else reach
    x0 = max(0, math.floor(x1 - margin))
    y0 = max(0, math.floor(y1 - margin))
    xe = min(width, math.ceil(x2 + margin))
    ye = min(height, math.ceil(y2 + margin))
    w, h = max(1, xe - x0), max(1, ye - y0)
    scale = min(1.0, math.sqrt(max_pixels / (w * h)))
    return Window(x0, y0, w, h, scale)


def _touches_inner_edge(mask: np.ndarray, window: Window, width: int, height: int) -> bool:
    """Whether ``mask`` (the window's) reaches an edge of the window that is not the image's."""
    return bool((window.y0 > 0 and mask[0].any()) or (window.x0 > 0 and mask[:, 0].any())
                or (window.y0 + window.h < height and mask[-1].any())
                or (window.x0 + window.w < width and mask[:, -1].any()))


def segment_in_window(image: np.ndarray, prompt: Prompt, run: Callable[[np.ndarray, Prompt], np.ndarray], *,
                      reaches: tuple[int, ...] = REACHES, max_pixels: int = MAX_WINDOW_PIXELS,
                      collapsed: Callable[[np.ndarray, Prompt], bool] | None = None) -> np.ndarray:
    """(H, W) bool: ``run(crop, local_prompt) -> local mask`` on the window round the prompt, mapped back. Without
    a box the window grows through ``reaches`` while the mask touches its edge, or while ``collapsed(mask,
    local_prompt)`` says the mask is no more than the clicks' own seeds (a window inside the object holds no
    background to tell it from), up to :data:`COLLAPSED_REACH`. Given a previous mask, only the changes at the
    clicks are kept (:func:`changes_at_clicks`)."""
    height, width = image.shape[:2]
    reaches = reaches[-1:] if prompt.box is not None else reaches
    for reach in reaches:
        window = prompt_window(prompt, width, height, reach=reach, max_pixels=max_pixels)
        local_prompt = window.local_prompt(prompt)
        local = run(window.crop(image), local_prompt)
        if window.w == width and window.h == height or not local.any():
            break
        inside = collapsed is not None and reach < COLLAPSED_REACH and collapsed(local, local_prompt)
        if not inside and not _touches_inner_edge(local, window, width, height):
            break
    mask = window.paste(local, height, width)
    return mask if prompt.previous is None else changes_at_clicks(prompt.previous, mask, prompt)


def changes_at_clicks(previous: np.ndarray, mask: np.ndarray, prompt: Prompt) -> np.ndarray:
    """``mask`` where it differs from ``previous`` in a connected region holding a click, ``previous`` elsewhere: a
    refining click changes the region it is in and leaves the rest of the last answer as it was (on 30 DSB2018
    nuclei, 3 rounds of simulated clicks: mean IoU 0.756 -> 0.844, against 0.759 -> 0.836 keeping every change)."""
    diff = previous ^ mask
    if not diff.any():
        return mask
    _, labels = cv2.connectedComponents(diff.astype(np.uint8), connectivity=8)
    h, w = mask.shape
    hit = {int(labels[min(h - 1, int(c.y)), min(w - 1, int(c.x))]) for c in prompt.clicks} - {0}
    return np.where(np.isin(labels, sorted(hit)), mask, previous)


def keep_prompted_components(mask: np.ndarray, prompt: Prompt) -> np.ndarray:
    """The connected parts of ``mask`` under a positive click (when no click lands on the mask: the largest
    part)."""
    if not mask.any():
        return mask
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    h, w = mask.shape
    hit = {int(labels[min(h - 1, int(c.y)), min(w - 1, int(c.x))]) for c in prompt.positives} - {0}
    if not hit:
        sizes = np.bincount(labels.ravel(), minlength=count)
        sizes[0] = 0
        hit = {int(sizes.argmax())}
    return np.isin(labels, sorted(hit))


def mask_polygon(mask: np.ndarray, *, tolerance: float = 0.6) -> list[float]:
    """The outline of the largest connected part of ``mask``: a flat ``[x1, y1, x2, y2, ...]`` ring in pixels on
    the pixels' edges (traced at twice the resolution), simplified by ``cv2.approxPolyDP`` to within ``tolerance``
    pixels; ``[]`` for an empty mask."""
    box = _bbox_of(mask)
    if box is None:
        return []
    x0, y0, x1, y1 = box
    part = np.pad(mask[y0:y1, x0:x1], 1).astype(np.uint8)
    fine = cv2.resize(part, (part.shape[1] * 2, part.shape[0] * 2), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(fine, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    largest = max(contours, key=cv2.contourArea)
    simple = cv2.approxPolyDP(largest, 2 * tolerance, True).reshape(-1, 2).astype(np.float64)
    if len(simple) < 3:
        simple = largest.reshape(-1, 2).astype(np.float64)
    # fine pixel p covers [p, p + 1) / 2 of the padded crop: its centre, (p + 0.5) / 2, sits a quarter pixel inside
    pts = (simple + 0.5) / 2 - 1 + [x0, y0]
    pts = np.clip(pts, 0, [mask.shape[1], mask.shape[0]])
    if len(pts) < 3:
        return []
    return [round(float(v), 2) for v in pts.reshape(-1)]


class AssistMethod(ABC):
    """A way to turn a prompt into a mask. ``name`` is what the registry and the API call it."""

    name: str = ""
    title: str = ""

    @abstractmethod
    def segment(self, image: np.ndarray, prompt: Prompt, *, key: str | None = None) -> np.ndarray:
        """(H, W) bool mask of the object ``prompt`` points at in ``image`` ((H, W, 3) uint8 RGB). ``key``
        names the image's content (its sha256) for methods that cache per image."""


@dataclass(frozen=True, eq=False)
class AssistResult:
    """A method's answer: ``mask`` (H, W) bool, ``polygon`` one flat ring (the largest part, ``[]`` when empty),
    ``rle`` the COCO RLE of the whole mask, ``bbox`` xyxy pixels (None when empty), ``area`` in pixels, ``ms``
    the time it took."""

    mask: np.ndarray = field(repr=False)
    polygon: list[float]
    rle: RLE
    bbox: tuple[float, float, float, float] | None
    area: int
    method: str
    ms: float

    def to_json(self) -> dict[str, Any]:
        return {"polygon": self.polygon, "rle": {"size": list(self.rle.size), "counts": self.rle.counts},
                "bbox": None if self.bbox is None else list(self.bbox), "area": self.area, "method": self.method,
                "ms": round(self.ms, 1)}


def assist(method: AssistMethod, image: np.ndarray, prompt: Prompt, *, key: str | None = None,
           max_clicks: int = MAX_CLICKS, part: tuple[Window, int, int] | None = None) -> AssistResult:
    """Check ``prompt`` against ``image`` ((H, W, 3) uint8 RGB), segment with ``method`` and shape the answer.

    ``part=(window, height, width)``: ``image`` is only that window of a ``width`` x ``height`` image (a huge one,
    read in part); the prompt and the answer are in the whole image's pixels.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise AssistPromptError("image", expected="(H, W, 3) uint8 RGB", actual=f"{image.shape} {image.dtype}")
    window, height, width = part or (Window(0, 0, image.shape[1], image.shape[0]), *image.shape[:2])
    prompt.check(width, height, max_clicks=max_clicks)
    start = time.perf_counter()
    local = window.local_prompt(prompt) if part else prompt
    found = np.asarray(method.segment(image, local, key=key), dtype=bool)
    if found.shape != image.shape[:2]:
        raise AssistPromptError(f"mask of {method.name}", expected=list(image.shape[:2]), actual=list(found.shape))
    box = _bbox_of(found)
    ring = np.asarray(mask_polygon(found)).reshape(-1, 2) + [window.x0, window.y0]
    mask = window.paste(found, height, width) if part else found
    return AssistResult(mask=mask, polygon=[round(float(v), 2) for v in ring.reshape(-1)], rle=RLE.encode(mask),
                        bbox=None if box is None else (box[0] + window.x0, box[1] + window.y0, box[2] + window.x0,
                                                       box[3] + window.y0),
                        area=int(found.sum()), method=method.name, ms=(time.perf_counter() - start) * 1000)


def prompt_region(prompt: Prompt, width: int, height: int, *, margin: int) -> Window:
    """The part of a ``width`` x ``height`` image within ``margin`` pixels of the prompt (to read only that of a
    huge image; see ``assist(part=...)``)."""
    return prompt_window(prompt, width, height, reach=margin, max_pixels=width * height) if prompt.box is None \
        else _grown(prompt_window(prompt, width, height, max_pixels=width * height), margin, width, height)


def _grown(window: Window, margin: int, width: int, height: int) -> Window:
    x0, y0 = max(0, window.x0 - margin), max(0, window.y0 - margin)
    return Window(x0, y0, min(width, window.x0 + window.w + margin) - x0, min(height, window.y0 + window.h + margin) - y0)
