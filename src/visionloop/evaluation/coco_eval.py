"""COCO mAP exactly as pycocotools computes it: we build the COCO ground truth and results in memory and drive
``pycocotools.cocoeval.COCOeval`` itself, so the numbers equal what pycocotools prints on the same exported JSON.

Ground truth and predictions come as our own types (:class:`~visionloop.core.annotations.Boxes` /
:class:`~visionloop.core.annotations.Instances`, xyxy pixels, model labels 1..K). :func:`to_coco_json` writes the
exact COCO dicts we evaluate (``gt`` and ``results``) so anyone can rerun pycocotools on them.

Conventions (the same as COCO's own): ``iscrowd`` 0; a ground-truth box's ``area`` is its mask area for instances and
``w * h`` for boxes (pycocotools uses it for the small/medium/large ranges); boxes are ``[x, y, w, h]``.

``max_dets``: pycocotools' ``summarize()`` hard-codes 100 detections per image for AP, so for crowded images
(DSB2018 has up to ~400 nuclei per image) we compute the same summary from ``COCOeval.eval`` with
``params.maxDets = [1, 10, max_dets]``; with the default 100 the result equals ``summarize()``'s ``stats``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from visionloop.core.annotations import RLE, Boxes, Instances, boxes_of

__all__ = ["STAT_NAMES", "CocoResult", "coco_evaluate", "coco_evaluator", "to_coco_json"]

IouType = Literal["bbox", "segm"]

STAT_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")
"""The 12 numbers of ``COCOeval.summarize()``, in its order (``ar100`` is AR at ``max_dets``)."""


@dataclass
class CocoResult:
    """``stats``: :data:`STAT_NAMES` -> value (-1 where pycocotools gives -1: no ground truth in that range);
    ``per_class``: label -> AP@[.5:.95], AP50, AP75 (-1 when a class has no ground truth);
    ``precision``: pycocotools' (T, R, K, A, M) precision array; ``iou_type``; ``max_dets``."""

    iou_type: str
    stats: dict[str, float]
    per_class: dict[int, dict[str, float]]
    precision: np.ndarray
    recall: np.ndarray
    scores: np.ndarray
    max_dets: int
    labels: list[int] = field(default_factory=list)
    evaluator: Any = None


def _xywh(xyxy: np.ndarray) -> list[list[float]]:
    out = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 2:] -= out[:, :2]
    return out.tolist()


def _segm(ann: Instances, i: int, h: int, w: int) -> dict[str, Any]:
    seg = ann.segmentations[i]
    rle = seg if isinstance(seg, RLE) else RLE.encode(ann.mask(i, h, w))
    return {"size": [int(rle.size[0]), int(rle.size[1])], "counts": rle.counts}


def to_coco_json(
    gts: Sequence[Boxes | Instances | None],
    preds: Sequence[Boxes | Instances | None],
    *,
    sizes: Sequence[tuple[int, int]],
    labels: Sequence[int],
    names: Sequence[str] | None = None,
    iou_type: IouType = "bbox",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """COCO ground-truth dict and results list; image ``i`` gets id ``i + 1``; ``sizes`` are (height, width).

    ``labels`` are the category ids (model labels, 1..K); ``preds`` must carry scores.
    """
    names = list(names) if names is not None else [str(c) for c in labels]
    images = [{"id": i + 1, "height": int(h), "width": int(w), "file_name": f"{i + 1}"} for i, (h, w) in enumerate(sizes)]
    cats = [{"id": int(c), "name": n} for c, n in zip(labels, names, strict=True)]
    anns: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for i, (gt, pred) in enumerate(zip(gts, preds, strict=True)):
        h, w = sizes[i]
        if gt is not None:
            boxes = boxes_of(gt)
            for j, (bb, c) in enumerate(zip(_xywh(boxes.xyxy), boxes.class_id.tolist(), strict=True)):
                a: dict[str, Any] = {"id": len(anns) + 1, "image_id": i + 1, "category_id": int(c), "bbox": bb,
                                     "iscrowd": 0, "area": float(bb[2] * bb[3])}
                if isinstance(gt, Instances):
                    a["segmentation"] = _segm(gt, j, h, w)
                    a["area"] = float(RLE(tuple(a["segmentation"]["size"]), a["segmentation"]["counts"]).area())
                elif iou_type == "segm":
                    raise ValueError("segm evaluation needs Instances ground truth")
                anns.append(a)
        if pred is not None:
            boxes = boxes_of(pred)
            scores = boxes.score if boxes.score is not None else np.ones(len(boxes))
            for j, (bb, c, s) in enumerate(zip(_xywh(boxes.xyxy), boxes.class_id.tolist(), scores.tolist(),
                                               strict=True)):
                r: dict[str, Any] = {"image_id": i + 1, "category_id": int(c), "bbox": bb, "score": float(s)}
                if iou_type == "segm":
                    if not isinstance(pred, Instances):
                        raise ValueError("segm evaluation needs Instances predictions")
                    r["segmentation"] = _segm(pred, j, h, w)
                results.append(r)
    gt_json = {"images": images, "annotations": anns, "categories": cats,
               "info": {"description": "visionloop evaluation ground truth"}}
    return gt_json, results


def _summary(E: Any, max_dets: int) -> dict[str, float]:
    """``COCOeval.summarize()``'s arithmetic, at ``max_dets`` instead of a hard-coded 100."""
    p = E.params

    def summarize(ap: bool, iou: float | None = None, area: str = "all", md: int = max_dets) -> float:
        aind = [i for i, a in enumerate(p.areaRngLbl) if a == area]
        mind = [i for i, m in enumerate(p.maxDets) if m == md]
        if ap:
            s = E.eval["precision"]
            if iou is not None:
                s = s[np.where(iou == p.iouThrs)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = E.eval["recall"]
            if iou is not None:
                s = s[np.where(iou == p.iouThrs)[0]]
            s = s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    m1, m2 = p.maxDets[0], p.maxDets[1]
    vals = [summarize(True), summarize(True, 0.5), summarize(True, 0.75), summarize(True, area="small"),
            summarize(True, area="medium"), summarize(True, area="large"), summarize(False, md=m1),
            summarize(False, md=m2), summarize(False), summarize(False, area="small"),
            summarize(False, area="medium"), summarize(False, area="large")]
    return dict(zip(STAT_NAMES, vals, strict=True))


def coco_evaluator(
    gt_json: dict[str, Any], results: list[dict[str, Any]], *, iou_type: IouType = "bbox", max_dets: int = 100,
) -> Any:
    """pycocotools' ``COCOeval`` on in-memory COCO dicts (as written by :func:`to_coco_json`), after ``evaluate()``
    (per image and category matches; ``accumulate()`` is the caller's: once, or once per bootstrap resample)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {k: list(v) if isinstance(v, list) else v for k, v in gt_json.items()}
        gt.createIndex()
        dt = gt.loadRes([dict(r) for r in results]) if results else COCO()
        if not results:
            dt.dataset = {"images": gt_json["images"], "annotations": [], "categories": gt_json["categories"]}
            dt.createIndex()
        E = COCOeval(gt, dt, iouType=iou_type)
        E.params.maxDets = [1, 10, int(max_dets)]
        E.evaluate()
    return E


def coco_evaluate(
    gt_json: dict[str, Any], results: list[dict[str, Any]], *, iou_type: IouType = "bbox", max_dets: int = 100,
) -> CocoResult:
    """Run pycocotools' COCOeval on in-memory COCO dicts (as written by :func:`to_coco_json`)."""
    E = coco_evaluator(gt_json, results, iou_type=iou_type, max_dets=max_dets)
    with contextlib.redirect_stdout(io.StringIO()):
        E.accumulate()
    stats = _summary(E, int(max_dets))
    precision = E.eval["precision"]  # (T, R, K, A, M)
    labels = [int(c) for c in E.params.catIds]
    per_class: dict[int, dict[str, float]] = {}
    for k, c in enumerate(labels):
        def ap(t: slice | int, k: int = k) -> float:
            s = precision[t, :, k, 0, -1]
            return -1.0 if not (s > -1).any() else float(np.mean(s[s > -1]))

        per_class[c] = {"ap": ap(slice(None)), "ap50": ap(0), "ap75": ap(5)}
    return CocoResult(iou_type=iou_type, stats=stats, per_class=per_class, precision=precision,
                      recall=E.eval["recall"], scores=E.eval["scores"], max_dets=int(max_dets), labels=labels,
                      evaluator=E)
