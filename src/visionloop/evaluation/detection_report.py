"""Evaluate a detection/segmentation run on a split and write ``report.html`` (self-contained: images inline).

The report holds: the COCO summary (boxes, and masks for instance runs) with the exact pycocotools parameters, per-class
AP with the chosen score thresholds, precision-recall curves, the detection confusion matrix (with background),
training curves, the augmentation policy with augmented samples drawn (image, boxes and masks transformed together),
and a gallery of test images with true positives (green), false positives (red) and missed objects (orange, dashed),
worst first.
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from visionloop.core.annotations import Boxes, Instances, boxes_of

__all__ = ["draw_detections", "run_evaluation"]

GREEN, RED, ORANGE, BLUE = (40, 200, 60), (230, 40, 40), (255, 150, 0), (60, 120, 255)


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _jpeg(im: Image.Image, max_side: int = 480) -> str:
    im = im.copy()
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


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
        h, w = out.height, out.width
        union = np.zeros((h, w), bool)
        for j, _ in match["tp"] + match["confused"]:
            union |= pred.mask(j, h, w)
        out = _overlay(out, union, GREEN)
        fp = np.zeros((h, w), bool)
        for j in match["fp"]:
            fp |= pred.mask(j, h, w)
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


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if v < 0 else f"{v:.4f}"
    return html.escape(str(v))


def _table(rows: list[list[Any]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pr_plot(curves: dict[int, dict[str, Any]], names: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for c, cur in curves.items():
        line, = ax.plot(cur["recall"], cur["precision"], label=f"{names[c - 1]} (thr {cur['threshold']:.2f})")
        ax.plot([cur["recall_at"]], [cur["precision_at"]], "o", color=line.get_color())
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall at IoU 0.5 (dot: chosen threshold, best F1)")
    ax.legend(loc="lower left", fontsize=8)
    return _png(fig)


def _cm_plot(cm: np.ndarray, names: list[str]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [*names, "background"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(labels), 1.0 + 0.6 * len(labels)))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title("Detection confusion (IoU 0.5, chosen thresholds)")
    return _png(fig)


def _curves_plot(records: list[dict[str, Any]]) -> str | None:
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    ep = [r["epoch"] for r in records]
    ax.plot(ep, [r.get("train_loss", np.nan) for r in records], label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    for key in ("val_map", "val_map50", "val_miou"):
        if any(key in r for r in records):
            ax2.plot(ep, [r.get(key, np.nan) for r in records], "--", label=key)
    ax2.set_ylabel("validation")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="center right")
    ax.set_title("Training")
    return _png(fig)


def _augmented_samples(project: Any, cfg: Any, items: list[Any], kind: str, n: int = 3) -> list[str]:
    from visionloop.data.augment import AugmentPolicy
    from visionloop.data.detection import DetectionDataset, build_transforms
    from visionloop.storage.versions import get_version

    if kind == "semantic" or not items:
        return []
    policy = AugmentPolicy.from_json(cfg.augmentation)
    onto = get_version(project, cfg.version["name"]).ontology
    ds = DetectionDataset(items[:n], ontology=onto, image_source=project.blobs.source,
                          transforms=build_transforms(policy, train=True), masks=kind == "instance")
    out = []
    for i in range(len(ds)):
        torch.manual_seed(1000 + i)
        img, tgt = ds[i]
        im = Image.fromarray((img.permute(1, 2, 0).numpy() * 255).clip(0, 255).astype(np.uint8))
        if "masks" in tgt and len(tgt["masks"]):
            im = _overlay(im, tgt["masks"].numpy().astype(bool).any(0), GREEN)
        d = ImageDraw.Draw(im)
        for b in tgt["boxes"].tolist():
            d.rectangle(b, outline=BLUE, width=2)
        out.append(_jpeg(im, 360))
    return out


CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child{text-align:left}.g{display:flex;flex-wrap:wrap;gap:10px}
.g figure{margin:0;border:1px solid #ddd;padding:4px}.g figcaption{font-size:12px}.note{color:#555;font-size:13px}
h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}"""


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


def run_evaluation(project: Any, run_id: str, *, split: str = "test", report: bool = True,
                   max_gallery: int = 24) -> dict[str, Any]:
    """See :func:`visionloop.evaluation.detection.evaluate_run`."""
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
    from visionloop.models.predict import predict_dataset
    from visionloop.models.runs import load_run
    from visionloop.storage.runs import read_metrics, run_dir
    from visionloop.storage.versions import get_version, version_items

    net, cfg = load_run(project, run_id)
    directory = run_dir(project, cfg.run_id)
    kind = cfg.extra.get("kind", "detection")
    info = get_version(project, cfg.version["name"])
    items = [it for it in version_items(project, info.name, split=split) if it.annotation is not None]
    if not items:
        from visionloop.core.errors import ConflictError

        raise ConflictError(f"split {split!r} of version {info.name!r} has no annotated images; pick another split")
    names = cfg.class_names
    result: dict[str, Any] = {"run": cfg.run_id, "split": split, "images": len(items), "kind": kind,
                              "version": cfg.version}
    sections: list[str] = []
    if kind == "semantic":
        ds = SemanticDataset(items, ontology=info.ontology, image_source=project.blobs.source)
        size = int(cfg.extra.get("eval_size", 512))
        preds = predict_dataset(net, ds, kind=kind, semantic_size=(size, size))
        m = semantic_metrics(ds, preds, num_classes=len(names), names=names)
        result.update(miou=m["miou"], map=m["miou"], map50=None, map75=None, per_class=m["per_class"],
                      pixel_accuracy=m["pixel_accuracy"], image_jaccard=m["image_jaccard"]["score"],
                      confusion=m["confusion"])
        sections.append("<h2>Semantic segmentation</h2>" + _table(
            [["mean IoU", m["miou"]], ["pixel accuracy", m["pixel_accuracy"]],
             ["image-level Jaccard (IoU > 0.5)", m["image_jaccard"]["score"]]], ["metric", "value"]))
        sections.append(_table([[n, v["iou"] if v["iou"] is not None else -1.0] for n, v in m["per_class"].items()],
                               ["class", "IoU"]))
    else:
        masks = kind == "instance"
        ds = DetectionDataset(items, ontology=info.ontology, image_source=project.blobs.source, masks=masks)
        max_dets = int(cfg.extra.get("max_dets", 100))
        preds = predict_dataset(net, ds, kind=kind)
        cm_all = coco_metrics(ds, preds, masks=masks, max_dets=max_dets, names=names)
        main = cm_all["segm"] if masks else cm_all["bbox"]
        gts = [ds.ground_truth(i) for i in range(len(ds))]
        gboxes = [boxes_of(g) for g in gts]
        pboxes = [boxes_of(p) for p in preds]
        labels = list(range(1, len(names) + 1))
        curves = pr_curves(gboxes, pboxes, labels)
        thresholds = {c: curves[c]["threshold"] for c in labels}
        cm, matches = confusion_and_matches(gboxes, pboxes, labels, thresholds)
        for m, g, pb in zip(matches, gboxes, pboxes, strict=True):
            m["unlabelled"] = likely_unlabelled(g, pb, m["fp"])
        per_class = {}
        for c in labels:
            box = cm_all["bbox"]["per_class"].get(c, {})
            row = {"ap": main["per_class"][c]["ap"], "ap50": main["per_class"][c]["ap50"],
                   "ap75": main["per_class"][c]["ap75"], "threshold": thresholds[c],
                   "precision": curves[c]["precision_at"], "recall": curves[c]["recall_at"], "n_gt": curves[c]["n_gt"]}
            if masks:
                row.update(box_ap=box.get("ap"), box_ap50=box.get("ap50"))
            per_class[names[c - 1]] = row
        stats = {t: {k: v for k, v in cm_all[t].items() if k not in ("per_class", "result", "gt_json", "results")}
                 for t in cm_all}
        result.update(map=main["map"], map50=main["map50"], map75=main["map75"], per_class=per_class, bbox=stats["bbox"],
                      max_dets=max_dets, thresholds={names[c - 1]: thresholds[c] for c in labels},
                      confusion={"labels": [*names, "background"], "matrix": cm.tolist()},
                      per_image=[{"image": it.image.name, "tp": len(m["tp"]), "fp": len(m["fp"]), "fn": len(m["fn"]),
                                  "confused": len(m["confused"]), "likely_unlabelled": len(m["unlabelled"])}
                                 for it, m in zip(items, matches, strict=True)])
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
            rows = [[t, *[stats[t][k] for k in ("map", "map50", "map75", "map_small", "map_medium", "map_large",
                                                "ar1", "ar10", "ar100")]] for t in stats]
            sections.append("<h2>COCO metrics</h2>" + _table(rows, ["type", "mAP@[.5:.95]", "AP50", "AP75", "AP small",
                                                                  "AP medium", "AP large", "AR@1", "AR@10",
                                                                  f"AR@{max_dets}"]))
            sections.append(f"<p class=note>Computed by pycocotools COCOeval (iouThrs .50:.05:.95, maxDets [1, 10, "
                            f"{max_dets}], areas small &lt; 32², medium &lt; 96²). Rerun it on <code>coco_gt.json</code> "
                            "and <code>coco_results_*.json</code> in the run folder to get the same numbers.</p>")
            sections.append(f"<p>Image-level Jaccard (fraction of images whose {'mask' if masks else 'box-area'} "
                            f"IoU with the ground truth &gt; 0.5, predictions above the per-class thresholds): "
                            f"<b>{result['image_jaccard']:.3f}</b></p>")
            sections.append("<h2>Per class</h2>" + _table(
                [[n, r["ap"], r["ap50"], r["ap75"], r["threshold"], r["precision"], r["recall"], r["n_gt"]]
                 for n, r in per_class.items()],
                ["class", "AP", "AP50", "AP75", "score threshold", "precision@thr", "recall@thr", "objects"]))
            sections.append(f"<div class=g><img src='{_pr_plot(curves, names)}'><img src='{_cm_plot(cm, names)}'></div>")
            order = sorted(range(len(items)), key=lambda i: -(len(matches[i]["fp"]) + len(matches[i]["fn"])
                                                             + len(matches[i]["confused"])))
            figs = []
            from visionloop.core.imageio import decode

            for i in order[:max_gallery]:
                im = decode(project.blobs.source(items[i].image.sha256))
                m = matches[i]
                drawn = draw_detections(im, gts[i], preds[i], m, names)
                figs.append(f"<figure><img src='{_jpeg(drawn)}'><figcaption>{html.escape(items[i].image.name)}: "
                            f"TP {len(m['tp'])}, FP {len(m['fp'])}, FN {len(m['fn'])}, confused {len(m['confused'])}"
                            + (f"; <b>{len(m['unlabelled'])} of the FP look unlabelled</b>" if m["unlabelled"] else "")
                            + "</figcaption></figure>")
            missing = result["likely_unlabelled"]
            if missing["objects"]:
                sections.append(f"<p><b>{missing['objects']} confident detections (score &ge; 0.9) on "
                                f"{missing['images']} images overlap no labelled object at all.</b> On real data these "
                                "are mostly objects the annotator skipped: review those images and add the missing "
                                "labels before reading the false-positive counts as model errors.</p>")
            sections.append("<h2>Images, most errors first</h2><p class=note>green: true positive; red: false "
                            "positive (class, score); orange dashed: missed object; blue: right place, wrong class. "
                            "Chosen thresholds per class as above.</p><div class=g>" + "".join(figs) + "</div>")
    if report:
        curves_png = _curves_plot(read_metrics(directory))
        train_items = [it for it in version_items(project, info.name, split="train") if it.annotation is not None]
        samples = _augmented_samples(project, cfg, train_items, kind)
        aug = cfg.augmentation
        sections.append("<h2>Training</h2>" + (f"<img src='{curves_png}'>" if curves_png else "")
                        + "<h3>Augmentation policy</h3>"
                        + _table([[k, v] for k, v in aug.items() if v != []], ["setting", "value"])
                        + "<p class=note>Augmented training samples: image, boxes (blue) and masks (green) "
                          "transformed together; boxes that left the image were dropped.</p><div class=g>"
                        + "".join(f"<img src='{s}'>" for s in samples) + "</div>")
        head = _table([["run", cfg.run_id], ["model", cfg.model.get("name")], ["version", f"{info.name} ({info.hash[:12]})"],
                       ["split", f"{split} ({len(items)} images)"], ["task", kind],
                       ["mAP@[.5:.95]", result["map"]], ["mAP50", result["map50"] if result["map50"] is not None else -1.0]],
                      ["", ""])
        page = (f"<!doctype html><html><head><meta charset=utf-8><title>visionloop report {html.escape(cfg.run_id)}"
                f"</title><style>{CSS}</style></head><body><h1>Evaluation report</h1>{head}{''.join(sections)}"
                "</body></html>")
        (directory / "report.html").write_text(page, encoding="utf-8")
        result["report"] = str(directory / "report.html")
    (directory / f"eval-{split}.json").write_text(json.dumps(result, indent=2, default=float))
    return result
