"""Canary: a share of one model's traffic answered by a challenger package, compared with the champion's answer.

For the requests in the canary's ``share`` both models predict the image (the champion in the shadow); the client gets
the challenger's prediction (it names the challenger's ``package_version``), and the two predictions' agreement
(:func:`agreement`, 0..1) is counted, for ``/metrics`` (``visionloop_inference_canary_*``) and the model's info. A
challenger that fails or is busy never fails a request: the champion's answer goes out and the failure is counted.
Requests are picked deterministically (every ``1/share``-th request on average, no randomness), so the share is exact.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np

from visionloop.core.errors import ImageError, VisionloopError
from visionloop.core.task import Task
from visionloop.inference.results import Detection, Prediction

if TYPE_CHECKING:
    from visionloop.serving.model_server.served import ServedModel

__all__ = ["AGREEMENT_IOU", "Canary", "agreement"]

AGREEMENT_IOU = 0.5
"""Two boxes of one class agree when their intersection over union is at least this."""


def _box_iou(a: list[Detection], b: list[Detection]) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    x = np.asarray([d.xyxy for d in a], dtype=np.float64).reshape(-1, 4)
    y = np.asarray([d.xyxy for d in b], dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(x[:, None, :2], y[None, :, :2])
    rb = np.minimum(x[:, None, 2:], y[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = lambda z: np.clip(z[:, 2] - z[:, 0], 0, None) * np.clip(z[:, 3] - z[:, 1], 0, None)  # noqa: E731
    union = area(x)[:, None] + area(y)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _matched_share(a: list[Any], b: list[Any], pairs: int) -> float:
    """Dice-like agreement of two sets: 2 x matched pairs / (|a| + |b|); two empty sets agree fully."""
    return 1.0 if not a and not b else 2.0 * pairs / (len(a) + len(b))


def agreement(a: Prediction, b: Prediction, *, iou: float = AGREEMENT_IOU) -> float:
    """How far two predictions of one image agree, 0..1.

    Classification: 1 when the labels are equal, else 0. Tagging and semantic segmentation: the Dice overlap of the
    class sets (tags, classes present). Detection and instance segmentation: boxes matched greedily by IoU (>= ``iou``,
    same class, highest IoU first), ``2 x matches / (boxes of a + boxes of b)``.
    """
    if a.task != b.task:
        raise VisionloopError(f"cannot compare a {a.task} prediction with a {b.task} one")
    if a.task == Task.CLASSIFICATION:
        return float(a.label is not None and b.label is not None and a.label.class_id == b.label.class_id)
    if a.task == Task.TAGGING or a.class_map is not None or b.class_map is not None:
        sa = {s.class_id for s in (a.tags if a.task == Task.TAGGING else a.scores)}
        sb = {s.class_id for s in (b.tags if b.task == Task.TAGGING else b.scores)}
        return _matched_share(list(sa), list(sb), len(sa & sb))
    da, db = a.detections, b.detections
    if not da or not db:
        return _matched_share(da, db, 0)
    m = _box_iou(da, db)
    same = np.asarray([[x.class_id == y.class_id for y in db] for x in da])
    m = np.where(same & (m >= iou), m, -1.0)
    pairs = 0
    while m.size and m.max() >= 0:
        i, j = np.unravel_index(int(m.argmax()), m.shape)
        pairs += 1
        m[i, :], m[:, j] = -1.0, -1.0
    return _matched_share(da, db, pairs)


class Canary:
    """A challenger for one served model: ``share`` (0..1] of its requests, compared with the champion.

    ``compared``: requests both answered; ``agreement_sum``: the sum of their agreements; ``failed``: requests the
    challenger failed (the champion answered them).
    """

    def __init__(self, challenger: ServedModel, share: float) -> None:
        if not 0.0 < share <= 1.0:
            raise VisionloopError(f"canary share must be in (0, 1], got {share}; e.g. 0.1 for one request in ten")
        self.challenger, self.share = challenger, float(share)
        self.compared, self.agreement_sum, self.failed = 0, 0.0, 0
        self._credit = 0.0

    @property
    def agreement_rate(self) -> float | None:
        """Mean agreement of the compared requests (None before the first)."""
        return self.agreement_sum / self.compared if self.compared else None

    def pick(self) -> bool:
        """Whether the next request goes to the challenger (exactly ``share`` of them over time)."""
        self._credit += self.share
        if self._credit >= 1.0 - 1e-9:
            self._credit -= 1.0
            return True
        return False

    async def predict(self, champion: ServedModel, data: Any, *, score_threshold: float | None,
                      ) -> tuple[ServedModel, Prediction | ImageError]:
        """Both models predict ``data``; the challenger's answer (and model) when it succeeded, else the champion's."""
        with self.challenger.in_use() as challenger:
            mine, theirs = await asyncio.gather(
                champion.batcher.submit(data, score_threshold=score_threshold),
                challenger.batcher.submit(data, score_threshold=score_threshold), return_exceptions=True)
        if isinstance(mine, BaseException):
            raise mine
        if isinstance(theirs, BaseException) or isinstance(theirs, ImageError) != isinstance(mine, ImageError):
            self.failed += 1
            return champion, mine
        if isinstance(mine, Prediction) and isinstance(theirs, Prediction):
            self.compared += 1
            self.agreement_sum += agreement(mine, theirs)
        return challenger, theirs

    def info(self) -> dict[str, Any]:
        """The challenger's version, the share and the agreement so far, for the model's info."""
        return {"package_version": self.challenger.version, "run_id": self.challenger.package.manifest.run_id,
                "share": self.share, "compared": self.compared, "failed": self.failed,
                "agreement": self.agreement_rate}
