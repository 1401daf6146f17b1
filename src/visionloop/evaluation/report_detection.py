"""The detection, instance and semantic segmentation sections of ``report.html``.

Detection and instance segmentation: the COCO summary (boxes, and masks for instance runs) with the exact pycocotools
parameters, per-class AP with the score thresholds chosen on the validation split, precision-recall curves, the
detection confusion matrix (with background), and a gallery of images with true positives (green), false positives
(red), missed objects (orange, dashed) and confusions (blue), worst first. Semantic segmentation: mIoU, pixel
accuracy, image-level Jaccard and IoU per class. Both: augmented training samples (image, boxes and masks transformed
together) beside the augmentation policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from visionloop.core.annotations import Boxes, Instances, boxes_of
from visionloop.core.imageio import decode
from visionloop.data.augment import AugmentPolicy
from visionloop.data.detection import DetectionDataset, build_transforms
from visionloop.evaluation import html as h
from visionloop.evaluation.detection_thresholds import operating_point
from visionloop.evaluation.keys import MAP, MAP50, MIOU, PIXEL_ACCURACY
from visionloop.evaluation.plots import confusion_figure, pr_figure
from visionloop.storage.versions import get_version

__all__ = ["augmented_samples", "detection_sections", "draw_detections", "headline", "semantic_sections"]

GREEN, RED, ORANGE, BLUE = (40, 200, 60), (230, 40, 40), (255, 150, 0), (60, 120, 255)
STAT_COLUMNS = {"map": "mAP@[.5:.95]", "map50": "AP50", "map75": "AP75", "map_small": "AP small",
                "map_medium": "AP medium", "map_large": "AP large", "ar1": "AR@1", "ar10": "AR@10"}


def _dashed_rect(d: ImageDraw.ImageDraw, box: Any, colour: tuple[int, int, int], width: int = 2) -> None:
    x1, y1, x2, y2 = (float(v) for v in box)
    step = 6
    for x in np.arange(x1, x2, 2 * step):
        d.line([(x, y1), (min(x + step, x2), y1)], fill=colour, width=width)
        d.line([(x, y2), (min(x + step, x2), y2)], fill=colour, width=width)
    for y in np.arange(y1, y2, 2 * step):
        d.line([(x1, y), (x1, min(y + step, y2))], fill=colour, width=width)
        d.line([(x2, y), (x2, min(y + step, y2))], fill=colour, width=width)


def _overlay(im: Image.Image, mask: np.ndarray, colour: tuple[int, int, int], alpha: float = 0.35) -> Image.Image:
    arr = np.asarray(im.convert("RGB")).astype(np.float32)
    arr[mask] = arr[mask] * (1 - alpha) + np.asarray(colour, np.float32) * alpha
    return Image.fromarray(arr.astype(np.uint8))


def draw_detections(im: Image.Image, gt: Boxes | Instances, pred: Boxes | Instances, match: dict[str, Any],
                    names: list[str]) -> Image.Image:
    """Draw TP (green), FP (red, with class and score), FN (orange dashed) and confused (blue) on a copy of ``im``."""
    gb, pb = boxes_of(gt), boxes_of(pred)
    out = im.convert("RGB")
    if isinstance(pred, Instances):
        hh, ww = out.height, out.width
        union = np.zeros((hh, ww), bool)
        for j, _ in match["tp"] + match["confused"]:
            union |= pred.mask(j, hh, ww)
        out = _overlay(out, union, GREEN)
        fp = np.zeros((hh, ww), bool)
        for j in match["fp"]:
            fp |= pred.mask(j, hh, ww)
        out = _overlay(out, fp, RED)
    d = ImageDraw.Draw(out)
    score = pb.score if pb.score is not None else np.ones(len(pb))
    for j, _ in match["tp"]:
        d.rectangle(pb.xyxy[j].tolist(), outline=GREEN, width=2)
    for j, g in match["confused"]:
        d.rectangle(pb.xyxy[j].tolist(), outline=BLUE, width=2)
        d.text((pb.xyxy[j][0] + 2, pb.xyxy[j][1] + 1),
               f"{names[pb.class_id[j] - 1]} (is {names[gb.class_id[g] - 1]})", fill=BLUE)
    for j in match["fp"]:
        d.rectangle(pb.xyxy[j].tolist(), outline=RED, width=2)
        d.text((pb.xyxy[j][0] + 2, pb.xyxy[j][1] + 1), f"{names[pb.class_id[j] - 1]} {score[j]:.2f}", fill=RED)
    for g in match["fn"]:
        _dashed_rect(d, gb.xyxy[g], ORANGE)
        if gb.xyxy[g][2] - gb.xyxy[g][0] >= 40:  # name only where it does not bury small objects
            d.text((gb.xyxy[g][0] + 2, gb.xyxy[g][3] - 11), names[gb.class_id[g] - 1], fill=ORANGE)
    return out


def _na(v: Any) -> Any:
    """pycocotools' -1 (no ground truth in that range) shown as n/a."""
    return "n/a" if isinstance(v, float) and v < 0 else v


def detection_sections(project: Any, items: Sequence[Any], result: dict[str, Any], *, curves: dict[int, Any],
                       matrix: np.ndarray, gts: Sequence[Any], preds: Sequence[Any], matches: Sequence[Any],
                       names: list[str], max_gallery: int = 24) -> list[str]:
    """COCO table, thresholds and per-class numbers, PR curves, confusion matrix and the worst images, drawn."""
    stats, max_dets, masks = {t: result[t] for t in ("bbox", "segm") if t in result}, result["max_dets"], "segm" in result
    coco = h.table(["type", *STAT_COLUMNS.values(), f"AR@{max_dets}"],
                   [[t, *[_na(s[k]) for k in STAT_COLUMNS], _na(s["ar100"])] for t, s in stats.items()])
    coco += (f"<p>Computed by pycocotools COCOeval (iouThrs .50:.05:.95, maxDets [1, 10, {max_dets}], areas small "
             "&lt; 32², medium &lt; 96²). Rerun it on <code>coco_gt.json</code> and <code>coco_results_*.json</code> "
             "in the run folder to get the same numbers.</p>"
             f"<p>Image-level Jaccard (fraction of images whose {'mask' if masks else 'box-area'} IoU with the ground "
             f"truth &gt; 0.5, predictions above the per-class thresholds): <b>{result['image_jaccard']:.3f}</b></p>")
    source = result["thresholds_source"]
    per_class = h.table(["class", "AP", "AP50", "AP75", "score threshold", "precision@thr", "recall@thr", "objects"],
                        [[n, _na(r["ap"]), _na(r["ap50"]), _na(r["ap75"]), r["threshold"], r["precision"], r["recall"],
                          r["n_gt"]] for n, r in result["per_class"].items()])
    per_class += (f"<p>Score thresholds: the F1-best score per class on the validation split ({h.esc(source)}), as "
                  "the exported package applies them; precision and recall are measured at them on this split.</p>")
    pr = {names[c - 1]: {"precision": list(cur["precision"]), "recall": list(cur["recall"])} for c, cur in curves.items()}
    points = {names[c - 1]: operating_point(cur, result["per_class"][names[c - 1]]["threshold"])[::-1]
              for c, cur in curves.items()}
    figs = (h.figure(pr_figure(pr, points, title="precision-recall at IoU 0.5"), alt="precision-recall curves")
            + h.figure(confusion_figure(matrix, [*names, "background"]), alt="detection confusion matrix"))
    order = sorted(range(len(items)), key=lambda i: -(len(matches[i]["fp"]) + len(matches[i]["fn"])
                                                     + len(matches[i]["confused"])))
    cards = []
    for i in order[:max_gallery]:
        m = matches[i]
        drawn = draw_detections(decode(project.blobs.source(items[i].image.sha256)), gts[i], preds[i], m, names)
        cap = (f"{h.esc(items[i].image.name)}: TP {len(m['tp'])}, FP {len(m['fp'])}, FN {len(m['fn'])}, confused "
               f"{len(m['confused'])}" + (f"; <b>{len(m['unlabelled'])} of the FP look unlabelled</b>"
                                          if m["unlabelled"] else ""))
        cards.append((h.image_uri(drawn, max_side=480), cap))
    missing = result["likely_unlabelled"]
    note = (f"<p><b>{missing['objects']} confident detections (score &ge; 0.9) on {missing['images']} images overlap "
            "no labelled object at all.</b> On real data these are mostly objects the annotator skipped: review those "
            "images and add the missing labels before reading the false-positive counts as model errors.</p>"
            if missing["objects"] else "")
    return [h.section("COCO metrics", coco), h.section("Per class", per_class),
            h.section("Plots", f'<div class="figs">{figs}</div>'),
            h.section("Images, most errors first", note + "<p>green: true positive; red: false positive (class, "
                      "score); orange dashed: missed object; blue: right place, wrong class. Thresholds per class "
                      "as above.</p>" + h.gallery(cards))]


def semantic_sections(result: dict[str, Any]) -> list[str]:
    """Mean IoU, pixel accuracy, image-level Jaccard and the IoU of each class."""
    summary = h.kv_table({"mean IoU": result[MIOU], "pixel accuracy": result[PIXEL_ACCURACY],
                          "image-level Jaccard (IoU > 0.5)": result["image_jaccard"]})
    per_class = h.table(["class", "IoU"], [[n, v["iou"] if v["iou"] is not None else "n/a"]
                                           for n, v in result["per_class"].items()])
    return [h.section("Semantic segmentation", summary), h.section("Per class", per_class)]


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The summary numbers of a detection or segmentation evaluation."""
    out: dict[str, Any] = {"images": result["images"], "task": result["kind"]}
    if result["kind"] == "semantic":
        out.update({"mean IoU": result[MIOU], "pixel accuracy": result[PIXEL_ACCURACY]})
    else:
        out.update({"mAP@[.5:.95]": _na(result[MAP]), "mAP50": _na(result[MAP50])})
    out["image-level Jaccard"] = result["image_jaccard"]
    return out


def augmented_samples(project: Any, cfg: Any, items: list[Any], kind: str, n: int = 3) -> str:
    """HTML of ``n`` augmented training samples: image, boxes (blue) and masks (green) transformed together."""
    if kind == "semantic" or not items or not cfg.augmentation:
        return ""
    policy = AugmentPolicy.from_json(cfg.augmentation)
    onto = get_version(project, cfg.version["name"]).ontology
    ds = DetectionDataset(items[:n], ontology=onto, image_source=project.blobs.source,
                          transforms=build_transforms(policy, train=True), masks=kind == "instance")
    cards = []
    for i in range(len(ds)):
        torch.manual_seed(1000 + i)
        img, tgt = ds[i]
        im = Image.fromarray((img.permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8))
        if "masks" in tgt and len(tgt["masks"]):
            im = _overlay(im, tgt["masks"].numpy().astype(bool).any(0), GREEN)
        d = ImageDraw.Draw(im)
        for b in tgt["boxes"].tolist():
            d.rectangle(b, outline=BLUE, width=2)
        cards.append((h.image_uri(im, max_side=360), f"training sample {i + 1}"))
    return ("<h3>Augmented training samples</h3><p>image, boxes (blue) and masks (green) transformed together; boxes "
            "that left the image were dropped.</p>" + h.gallery(cards))
