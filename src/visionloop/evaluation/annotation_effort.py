"""How many editor actions it takes to annotate an image to match its ground truth, with and without a model's
suggestions (pre-annotation): a simulated annotator, for measuring how much faster annotation gets.

Without suggestions every object is one box drawn, plus one class pick when its class is not the current
(``default_class``) one. With the suggestions scored at or above a threshold:

- one "accept all" (when there is any suggestion to accept);
- suggestions matched one to one with ground-truth boxes (Hungarian matching on IoU, any class, IoU >= ``match_iou``):
  one class change when the class is wrong, one adjustment when the IoU is below ``tight_iou`` (both may apply);
- one delete per suggestion left unmatched (a false positive);
- one draw per ground-truth object left unmatched (missed), plus its class pick as above.

Boxes are (N, 4) xyxy pixels; classes (N,) ints.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

__all__ = ["Effort", "effort_with_suggestions", "effort_without_suggestions", "match_boxes"]


@dataclass(frozen=True)
class Effort:
    """Actions of one image by kind; ``total`` is their sum."""

    accept_all: int = 0
    draws: int = 0
    class_picks: int = 0
    deletes: int = 0
    adjusts: int = 0
    class_changes: int = 0

    @property
    def total(self) -> int:
        return self.accept_all + self.draws + self.class_picks + self.deletes + self.adjusts + self.class_changes

    def to_json(self) -> dict[str, int]:
        return {**asdict(self), "total": self.total}


def _boxes(xyxy: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(xyxy, dtype=np.float64).reshape(-1, 4))


def match_boxes(pred_xyxy: np.ndarray, gt_xyxy: np.ndarray, *, min_iou: float = 0.5,
                ) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(pred index, gt index, iou)`` maximising the summed IoU, each with IoU >= ``min_iou``."""
    p, g = _boxes(pred_xyxy), _boxes(gt_xyxy)
    if not len(p) or not len(g):
        return []
    iou = box_iou(p, g).numpy()
    rows, cols = linear_sum_assignment(np.where(iou >= min_iou, iou, 0.0), maximize=True)
    return [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= min_iou]


def effort_without_suggestions(gt_class: np.ndarray, *, default_class: int) -> Effort:
    """Drawing every object: one draw each, one class pick for each not of ``default_class``."""
    cls = np.asarray(gt_class).reshape(-1)
    return Effort(draws=len(cls), class_picks=int((cls != default_class).sum()))


def effort_with_suggestions(
    pred_xyxy: np.ndarray, pred_class: np.ndarray, pred_score: np.ndarray, gt_xyxy: np.ndarray, gt_class: np.ndarray,
    *, threshold: float, default_class: int, match_iou: float = 0.5, tight_iou: float = 0.75,
) -> Effort:
    """Accepting the suggestions scored >= ``threshold`` at once, then fixing them (see the module docstring)."""
    keep = np.asarray(pred_score, dtype=np.float64).reshape(-1) >= threshold
    pxyxy = np.asarray(pred_xyxy, dtype=np.float64).reshape(-1, 4)[keep]
    pcls = np.asarray(pred_class).reshape(-1)[keep]
    gcls = np.asarray(gt_class).reshape(-1)
    matches = match_boxes(pxyxy, gt_xyxy, min_iou=match_iou)
    matched_gt = {g for _, g, _ in matches}
    missed = np.asarray([c for i, c in enumerate(gcls) if i not in matched_gt], dtype=np.int64)
    return Effort(
        accept_all=int(len(pxyxy) > 0),
        draws=len(missed),
        class_picks=int((missed != default_class).sum()),
        deletes=len(pxyxy) - len(matches),
        adjusts=sum(1 for _, _, iou in matches if iou < tight_iou),
        class_changes=sum(1 for p, g, _ in matches if pcls[p] != gcls[g]),
    )
