"""Superpixels (scikit-image SLIC or Felzenszwalb-Huttenlocher) and region selection on their adjacency graph.

On a window around the prompt the image is cut into superpixels; each gets its mean CIELAB colour. Seeds:
superpixels under positive clicks are the object, under negative clicks and outside the box (or, without a box,
on the window's frame) the background. A box without clicks seeds the object with the superpixels inside it whose
colour is far from the background's (an Otsu split of their Mahalanobis distance to the colours outside). Every
other superpixel joins the seed it reaches by the cheapest path over neighbours (edge cost: the colour difference,
scipy's Dijkstra), so regions grow up to colour edges. The answer keeps the parts under the positive clicks. When
refining, the previous mask seeds every superpixel it mostly covers as the object and the others as background, so
the new clicks change their own superpixels (on 30 DSB2018 nuclei, 3 rounds of simulated clicks: SLIC 0.661 ->
0.670, where growing afresh from the clicks went down to 0.624).
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.color import rgb2lab
from skimage.filters import threshold_otsu
from skimage.segmentation import felzenszwalb, slic

from visionloop.inference.assist.base import (
    MAX_WINDOW_PIXELS,
    AssistMethod,
    Prompt,
    keep_prompted_components,
    segment_in_window,
)

__all__ = ["Superpixels", "select_regions"]

PIXELS_PER_SEGMENT = 40
"""Mean superpixel size the window is cut into (small enough for a 10-pixel nucleus)."""
MAX_SEGMENTS = 2000
REACHES = (64, 128, 256, 512)
"""Margins round clicks (see ``base.segment_in_window``): from 64 px, as a smaller window inside a large object
would hold no background superpixels to tell it from."""


def _adjacency(labels: np.ndarray, features: np.ndarray) -> coo_matrix:
    n = len(features)
    pairs = np.concatenate([
        np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
        np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], 1),
    ])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    cost = np.linalg.norm(features[pairs[:, 0]] - features[pairs[:, 1]], axis=1) + 1e-3
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    return coo_matrix((np.concatenate([cost, cost]), (rows, cols)), shape=(n, n))


def _far_from(features: np.ndarray, background: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The ``candidates`` (indexes) whose colour is far from the ``background`` ones' (Otsu on Mahalanobis)."""
    if len(candidates) < 2 or len(background) < 2:
        return candidates
    bg = features[background]
    cov = np.cov(bg, rowvar=False) + np.eye(features.shape[1]) * 1.0
    diff = features[candidates] - bg.mean(axis=0)
    dist = np.sqrt(np.einsum("ij,jk,ik->i", diff, np.linalg.inv(cov), diff))
    if np.ptp(dist) < 1e-6:
        return candidates
    return candidates[dist > threshold_otsu(dist)]


def select_regions(labels: np.ndarray, lab: np.ndarray, prompt: Prompt) -> np.ndarray:
    """(h, w) bool: the superpixels of ``labels`` (ids 0..n-1) that belong to the object ``prompt`` (in the same
    pixels) points at; ``lab`` is the (h, w, 3) CIELAB image."""
    h, w = labels.shape
    n = int(labels.max()) + 1
    counts = np.bincount(labels.ravel(), minlength=n).astype(np.float64)
    features = np.stack([np.bincount(labels.ravel(), lab[..., k].ravel(), minlength=n) for k in range(3)], 1)
    features /= np.maximum(counts, 1)[:, None]

    def under(clicks: list) -> set[int]:
        return {int(labels[min(h - 1, int(c.y)), min(w - 1, int(c.x))]) for c in clicks}

    negative = under(prompt.negatives)
    positive = under(prompt.positives) - negative
    if prompt.box is not None:
        x1, y1, x2, y2 = (round(v) for v in prompt.box)
        inside_px = np.zeros((h, w), dtype=bool)
        inside_px[max(0, y1):y2, max(0, x1):x2] = True
        share = np.bincount(labels[inside_px], minlength=n) / np.maximum(counts, 1)
        outside = np.flatnonzero(share < 0.5)
        background = set(outside.tolist()) | negative
        if not positive:
            inside = np.flatnonzero(share >= 0.5)
            positive = set(_far_from(features, outside, inside).tolist()) - negative
    else:
        frame = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        background = (set(frame.tolist()) - positive) | negative
    if prompt.previous is not None and prompt.previous.any():  # refining: the last answer holds elsewhere
        held = np.bincount(labels[prompt.previous], minlength=n) / np.maximum(counts, 1) >= 0.5
        positive |= set(np.flatnonzero(held).tolist()) - negative
        background |= set(np.flatnonzero(~held).tolist()) - positive
    if not positive:
        return np.zeros((h, w), dtype=bool)
    graph = _adjacency(labels, features).tocsr()
    to_fg = dijkstra(graph, indices=sorted(positive), min_only=True)
    to_bg = dijkstra(graph, indices=sorted(background), min_only=True) if background else np.full(n, np.inf)
    chosen = to_fg < to_bg
    chosen[sorted(positive)] = True
    if background:
        chosen[sorted(background)] = False
    mask = chosen[labels]
    if prompt.box is not None:
        mask &= inside_px
    return mask


class Superpixels(AssistMethod):
    """Region selection over superpixels of ``algorithm`` ``"slic"`` or ``"felzenszwalb"``."""

    def __init__(self, algorithm: str = "slic", *, max_pixels: int = MAX_WINDOW_PIXELS) -> None:
        if algorithm not in ("slic", "felzenszwalb"):
            raise ValueError(f"superpixel algorithm {algorithm!r}: expected 'slic' or 'felzenszwalb'")
        self.algorithm = algorithm
        self.max_pixels = max_pixels
        self.name = algorithm
        self.title = ("SLIC superpixels (scikit-image), grown from the clicks over colour edges"
                      if algorithm == "slic" else
                      "Felzenszwalb superpixels (scikit-image), grown from the clicks over colour edges")

    def superpixels(self, crop: np.ndarray) -> np.ndarray:
        """(h, w) int labels 0..n-1 of ``crop`` ((h, w, 3) uint8 RGB)."""
        pixels = crop.shape[0] * crop.shape[1]
        if self.algorithm == "slic":
            n = int(np.clip(pixels // PIXELS_PER_SEGMENT, 16, MAX_SEGMENTS))
            labels = slic(crop, n_segments=n, compactness=10.0, sigma=0.5, start_label=0)
        else:
            labels = felzenszwalb(crop, scale=20.0, sigma=0.5, min_size=max(8, pixels // (4 * MAX_SEGMENTS)))
        return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)

    def segment(self, image: np.ndarray, prompt: Prompt, *, key: str | None = None) -> np.ndarray:
        return segment_in_window(image, prompt, self.select, reaches=REACHES, max_pixels=self.max_pixels)

    def select(self, crop: np.ndarray, prompt: Prompt) -> np.ndarray:
        """The (h, w) bool mask of ``prompt`` in ``crop`` ((h, w, 3) uint8 RGB, the prompt in its pixels)."""
        labels = self.superpixels(crop)
        mask = keep_prompted_components(select_regions(labels, rgb2lab(crop).astype(np.float32), prompt), prompt)
        mask = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8)) > 0
        h, w = labels.shape
        for c in prompt.negatives:  # the closing may bridge a thin superpixel a negative click took out
            mask[labels == labels[min(h - 1, int(c.y)), min(w - 1, int(c.x))]] = False
        return mask
