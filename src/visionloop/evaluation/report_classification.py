"""The classification and tagging sections of ``report.html``: where the model fails and what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visionloop.core.imageio import decode
from visionloop.evaluation import html as h
from visionloop.evaluation.keys import BALANCED_ACCURACY, TAG_MAP
from visionloop.evaluation.plots import confusion_figure, pr_figure, reliability_figure
from visionloop.evaluation.report import training_section, write_report

__all__ = ["advice", "write_classification_report"]


def advice(result: dict[str, Any]) -> list[str]:
    """Plain-language suggestions from the numbers (weak classes, confusions, calibration, data size)."""
    tips: list[str] = []
    per = result["per_class"]
    for name, m in sorted(per.items(), key=lambda kv: kv[1]["recall"]):
        if m["support"] and m["recall"] < 0.9:
            tips.append(f"'{name}' is found only {m['recall']:.0%} of the time ({m['support']} test images): "
                        f"add and check more labelled examples of '{name}', look at its errors below")
        if m["support"] and m["support"] < 20:
            tips.append(f"'{name}' has only {m['support']} images in this split: its numbers are uncertain")
    if result["task"] == "classification":
        cm, names = result["confusion_matrix"], result["classes"]
        pairs = [(cm[i][j], names[i], names[j]) for i in range(len(names)) for j in range(len(names)) if i != j]
        pairs.sort(reverse=True)
        for n, a, b in pairs[:2]:
            if n:
                tips.append(f"{n} '{a}' image{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} called '{b}': review "
                            "them (label errors are common between look-alike classes) or add examples that tell them "
                            "apart")
    if result.get("ece", 0) > 0.05:
        tips.append(f"scores are miscalibrated (ECE {result['ece']:.3f}): treat them as rankings, or calibrate before "
                    "using them as probabilities")
    if not tips:
        tips.append("no weak class stands out; the worst errors below are the best place to look for label mistakes")
    return tips


def _gallery(project: Any, errors: list[dict[str, Any]], task: str, limit: int = 24) -> str:
    cards = []
    for e in errors[:limit]:
        try:
            im = decode(project.blobs.source(e["sha256"]))
        except Exception:  # noqa: BLE001 - a missing blob must not break the report
            continue
        if task == "classification":
            cap = (f"<b class=\"bad\">{h.esc(e['predicted'])}</b> {e['p_predicted']:.2f}<br>"
                   f"true <b>{h.esc(e['true'])}</b> {e['p_true']:.2f}<br><small>{h.esc(e['name'])}</small>")
        else:
            miss = ", ".join(f"{h.esc(k)} {v:.2f}" for k, v in e["missing"].items())
            extra = ", ".join(f"{h.esc(k)} {v:.2f}" for k, v in e["extra"].items())
            cap = (f"missing: <b class=\"bad\">{miss or '-'}</b><br>extra: <b class=\"bad\">{extra or '-'}</b><br>"
                   f"<small>{h.esc(e['name'])}</small>")
        cards.append((h.image_uri(im, max_side=220), cap))
    return h.gallery(cards) if cards else "<p>No errors on this split.</p>"


def write_classification_report(project: Any, cfg: Any, directory: Path, result: dict[str, Any], *,
                                errors: list[dict[str, Any]], records: list[dict[str, Any]]) -> Path:
    """``report.html`` of a classification or tagging run: summary, per-class table, plots, worst errors."""
    task = result["task"]
    headline: dict[str, Any] = {"images": result["n"], "accuracy" if task == "classification" else "exact match":
                                result["accuracy"], "balanced accuracy": result[BALANCED_ACCURACY]}
    if task == "classification":
        headline.update({"top-1": result["top1"], "top-5": result["top5"], "macro F1": result["macro_f1"]})
    else:
        headline.update({"mAP": result[TAG_MAP], "micro F1": result["micro_f1"]})
    headline["expected calibration error"] = result["ece"]
    headline["errors"] = result["n_errors"]
    rows = []
    for n, m in result["per_class"].items():
        row = [n, m["precision"], m["recall"], m["f1"], m["support"], m["ap"] if m["ap"] is not None else "-"]
        if task == "tagging":
            row.append(m["threshold"])
        rows.append(row)
    heads = ["class", "precision", "recall", "F1", "support", "AP"] + (["threshold"] if task == "tagging" else [])
    figs = []
    if task == "classification":
        figs.append(h.figure(confusion_figure(result["confusion_matrix"], result["classes"]), alt="confusion matrix"))
    points = {n: (m["recall"], m["precision"]) for n, m in result["per_class"].items() if m["support"]}
    figs.append(h.figure(pr_figure(result["pr_curves"], points), alt="precision-recall curves"))
    figs.append(h.figure(reliability_figure(result["reliability"], ece=result["ece"]), alt="reliability diagram"))
    sections = [h.section("Per class", h.table(heads, rows)),
                h.section("Plots", f'<div class="figs">{"".join(figs)}</div>'),
                h.section(f"Worst errors ({min(24, len(errors))} of {len(errors)})", _gallery(project, errors, task))]
    monitor = "val_" + (BALANCED_ACCURACY if task == "classification" else TAG_MAP)
    return write_report(directory, cfg, split=result["split"], headline=headline, sections=sections,
                        tips=advice(result), warnings=result.get("warnings", []),
                        training=training_section(records, monitor=monitor, linear=cfg.strategy == "linear"))
