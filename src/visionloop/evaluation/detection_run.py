"""Evaluate a detection / segmentation run on a split: metrics, COCO files, ``eval-<split>.json`` and ``report.html``.

Score thresholds are the run's validation thresholds (:mod:`~visionloop.evaluation.detection_thresholds`), whatever
split is evaluated; semantic runs report their mean IoU under ``miou`` (:mod:`~visionloop.evaluation.keys`).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from visionloop.core.annotations import Boxes, Instances, boxes_of
from visionloop.core.errors import ConflictError
from visionloop.data.detection import DetectionDataset, SemanticDataset
from visionloop.evaluation.detection import (
    above_thresholds,
    coco_metrics,
    confusion_and_matches,
    image_jaccard,
    likely_unlabelled,
    pr_curves,
    semantic_metrics,
)
from visionloop.evaluation.detection_thresholds import operating_point, thresholds_from_curves, validation_thresholds
from visionloop.evaluation.keys import MAP, MAP50, MAP75, MIOU, PIXEL_ACCURACY, main_metric
from visionloop.evaluation.report import training_section, write_report
from visionloop.evaluation.report_detection import (
    augmented_samples,
    detection_sections,
    headline,
    semantic_sections,
)
from visionloop.models.predict import predict_dataset
from visionloop.models.runs import load_run
from visionloop.storage.runs import read_metrics, run_dir
from visionloop.storage.versions import get_version, version_items

__all__ = ["evaluate_run", "run_evaluation", "run_thresholds"]


def _foreground(ann: Boxes | Instances, keep: Any, h: int, w: int) -> np.ndarray:
    """(h, w) union of the objects ``keep`` of ``ann``: their masks, or the pixels their boxes cover."""
    out = np.zeros((h, w), bool)
    for j in keep:
        if isinstance(ann, Instances):
            out |= ann.mask(j, h, w)
        else:
            x0, y0, x1, y1 = np.round(ann.xyxy[j]).astype(int).clip(0, [w, h, w, h])
            out[y0:y1, x0:x1] = True
    return out


def _annotated(project: Any, version: str, split: str) -> list[Any]:
    return [it for it in version_items(project, version, split=split) if it.annotation is not None]


def _dataset(project: Any, items: list[Any], info: Any, kind: str) -> Any:
    return DetectionDataset(items, ontology=info.ontology, image_source=project.blobs.source, masks=kind == "instance")


def run_thresholds(project: Any, cfg: Any, net: Any, info: Any, *, split_predictions: Any = None) -> dict[str, Any]:
    """The validation thresholds of a detection / instance run (model label -> score), computed on first use.

    ``split_predictions``: ``(ground truths, predictions)`` already made on the validation split, reused.
    """
    kind = cfg.extra.get("kind", "detection")

    def predict_val() -> tuple[list[Any], list[Any]]:
        if split_predictions is not None:
            return split_predictions
        ds = _dataset(project, _annotated(project, info.name, "val"), info, kind)
        return [ds.ground_truth(i) for i in range(len(ds))], predict_dataset(net, ds, kind=kind)

    return validation_thresholds(run_dir(project, cfg.run_id), labels=list(range(1, len(cfg.class_names) + 1)),
                                 version_hash=info.hash, predict_val=predict_val)


def evaluate_run(project: Any, run_id: str, *, split: str = "test", report: bool = True) -> dict[str, Any]:
    """Evaluate a detection/segmentation run on ``split``; writes ``eval-<split>.json``, the COCO JSON files and
    ``report.html`` in the run directory. Returns ``map``, ``map50``, ``map75`` (masks for instance runs, boxes
    otherwise), ``per_class``, the full ``bbox``/``segm`` stats, the per-class ``thresholds`` (chosen on the
    validation split), confusion matrix, ``image_jaccard``; semantic runs ``miou`` and ``pixel_accuracy`` instead of
    the mAP keys. ``main_metric`` names the key that ranks models."""
    return run_evaluation(project, run_id, split=split, report=report)


def run_evaluation(project: Any, run_id: str, *, split: str = "test", report: bool = True,
                   max_gallery: int = 24) -> dict[str, Any]:
    """See :func:`evaluate_run`; ``max_gallery``: images drawn in the report."""
    net, cfg = load_run(project, run_id)
    directory = run_dir(project, cfg.run_id)
    kind = cfg.extra.get("kind", "detection")
    info = get_version(project, cfg.version["name"])
    items = _annotated(project, info.name, split)
    if not items:
        raise ConflictError(f"split {split!r} of version {info.name!r} has no annotated images; pick another split")
    names = cfg.class_names
    result: dict[str, Any] = {"run": cfg.run_id, "split": split, "images": len(items), "kind": kind,
                              "version": cfg.version, "main_metric": main_metric(cfg.task, semantic=kind == "semantic")}
    sections: list[str] = []
    if kind == "semantic":
        ds = SemanticDataset(items, ontology=info.ontology, image_source=project.blobs.source,
                             intensity=cfg.preprocessing().intensity)
        size = int(cfg.extra.get("eval_size", 512))
        flips = cfg.preprocessing().extra.get("tta_flips", ())
        preds = predict_dataset(net, ds, kind=kind, semantic_size=(size, size), flips=flips)
        m = semantic_metrics(ds, preds, num_classes=len(names), names=names)
        result.update({MIOU: m["miou"], PIXEL_ACCURACY: m["pixel_accuracy"], "per_class": m["per_class"],
                       "image_jaccard": m["image_jaccard"]["score"], "confusion": m["confusion"]})
        if report:
            sections = semantic_sections(result)
    else:
        masks = kind == "instance"
        ds = _dataset(project, items, info, kind)
        max_dets = int(cfg.extra.get("max_dets", 100))
        preds = predict_dataset(net, ds, kind=kind)
        cm_all = coco_metrics(ds, preds, masks=masks, max_dets=max_dets, names=names)
        main = cm_all["segm"] if masks else cm_all["bbox"]
        gts = [ds.ground_truth(i) for i in range(len(ds))]
        gboxes = [boxes_of(g) for g in gts]
        pboxes = [boxes_of(p) for p in preds]
        labels = list(range(1, len(names) + 1))
        curves = pr_curves(gboxes, pboxes, labels)
        chosen = run_thresholds(project, cfg, net, info, split_predictions=(gts, preds) if split == "val" else None)
        thresholds = {c: chosen["by_label"].get(c, thresholds_from_curves(curves)[c]) for c in labels}
        cm, matches = confusion_and_matches(gboxes, pboxes, labels, thresholds)
        for m, g, pb in zip(matches, gboxes, pboxes, strict=True):
            m["unlabelled"] = likely_unlabelled(g, pb, m["fp"])
        per_class = {}
        for c in labels:
            box = cm_all["bbox"]["per_class"].get(c, {})
            precision, recall = operating_point(curves[c], thresholds[c])
            row = {"ap": main["per_class"][c]["ap"], "ap50": main["per_class"][c]["ap50"],
                   "ap75": main["per_class"][c]["ap75"], "threshold": thresholds[c], "precision": precision,
                   "recall": recall, "n_gt": curves[c]["n_gt"]}
            if masks:
                row.update(box_ap=box.get("ap"), box_ap50=box.get("ap50"))
            per_class[names[c - 1]] = row
        stats = {t: {k: v for k, v in cm_all[t].items() if k not in ("per_class", "result", "gt_json", "results")}
                 for t in cm_all}
        result.update({MAP: main["map"], MAP50: main["map50"], MAP75: main["map75"], "per_class": per_class,
                       "bbox": stats["bbox"], "max_dets": max_dets,
                       "thresholds": {names[c - 1]: thresholds[c] for c in labels},
                       "thresholds_source": f"{chosen['source']}, {chosen['images']} images of split val",
                       "confusion": {"labels": [*names, "background"], "matrix": cm.tolist()},
                       "per_image": [{"image": it.image.name, "tp": len(m["tp"]), "fp": len(m["fp"]),
                                      "fn": len(m["fn"]), "confused": len(m["confused"]),
                                      "likely_unlabelled": len(m["unlabelled"])}
                                     for it, m in zip(items, matches, strict=True)]})
        result["likely_unlabelled"] = {"objects": sum(len(m["unlabelled"]) for m in matches),
                                       "images": sum(bool(m["unlabelled"]) for m in matches)}
        if masks:
            result["segm"] = stats["segm"]
        sizes = [ds.size(i) for i in range(len(ds))]
        result["image_jaccard"] = image_jaccard(
            [_foreground(g, range(len(g)), *hw) for g, hw in zip(gts, sizes, strict=True)],
            [_foreground(p, above_thresholds(pb, thresholds), *hw)
             for p, pb, hw in zip(preds, pboxes, sizes, strict=True)],
        )["score"]
        # COCO JSON that pycocotools can rerun
        (directory / "coco_gt.json").write_text(json.dumps(cm_all["bbox"]["gt_json"]))
        for t in cm_all:
            (directory / f"coco_results_{t}.json").write_text(json.dumps(cm_all[t]["results"]))
        if report:
            sections = detection_sections(project, items, result, curves=curves, matrix=cm, gts=gts, preds=preds,
                                          matches=matches, names=names, max_gallery=max_gallery)
    if report:
        train_items = _annotated(project, info.name, "train")
        path = write_report(directory, cfg, split=split, headline=headline(result), sections=sections,
                            training=training_section(read_metrics(directory), monitor=f"val_{result['main_metric']}"),
                            setup_extra=augmented_samples(project, cfg, train_items, kind))
        result["report"] = str(path)
    (directory / f"eval-{split}.json").write_text(json.dumps(result, indent=2, default=float))
    return result
