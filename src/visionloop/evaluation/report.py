"""``report.html`` for classification and tagging runs: where the model fails and what to fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from visionloop.core.imageio import decode
from visionloop.data.augment import AugmentPolicy
from visionloop.evaluation import html as h
from visionloop.evaluation.plots import confusion_figure, pr_figure, reliability_figure, training_figure

__all__ = ["advice", "write_report"]


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
                tips.append(f"{n} '{a}' image{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} called '{b}': review them (label errors are common between "
                            "look-alike classes) or add examples that tell them apart")
    if result.get("ece", 0) > 0.05:
        tips.append(f"scores are miscalibrated (ECE {result['ece']:.3f}): treat them as rankings, or calibrate before "
                    "using them as probabilities")
    if not tips:
        tips.append("no weak class stands out; the worst errors below are the best place to look for label mistakes")
    return tips


def _operating_points(result: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {n: (m["recall"], m["precision"]) for n, m in result["per_class"].items() if m["support"]}


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


def write_report(project: Any, cfg: Any, directory: Path, result: dict[str, Any], *,
                 errors: list[dict[str, Any]]) -> Path:
    """Write ``directory/report.html`` (self-contained) and return its path."""
    from visionloop.storage.runs import read_metrics

    task = result["task"]
    parts: list[str] = []
    headline: dict[str, Any] = {"images": result["n"], "accuracy" if task == "classification" else "exact match":
                                result["accuracy"], "balanced accuracy": result["balanced_accuracy"]}
    if task == "classification":
        headline.update({"top-1": result["top1"], "top-5": result["top5"], "macro F1": result["macro_f1"]})
    else:
        headline.update({"mAP": result["mAP"], "micro F1": result["micro_f1"]})
    headline["expected calibration error"] = result["ece"]
    headline["errors"] = result["n_errors"]
    parts.append(h.section("Summary", h.kv_table(headline)
                           + "<ul class=\"tips\">" + "".join(f"<li>{h.esc(t)}</li>" for t in advice(result)) + "</ul>"
                           + "".join(f"<p class=\"bad\">{h.esc(w)}</p>" for w in result.get("warnings", []))))
    rows = []
    for n, m in result["per_class"].items():
        row = [n, m["precision"], m["recall"], m["f1"], m["support"], m["ap"] if m["ap"] is not None else "-"]
        if task == "tagging":
            row.append(m["threshold"])
        rows.append(row)
    heads = ["class", "precision", "recall", "F1", "support", "AP"] + (["threshold"] if task == "tagging" else [])
    parts.append(h.section("Per class", h.table(heads, rows)))
    figs = []
    if task == "classification":
        figs.append(h.figure(confusion_figure(result["confusion_matrix"], result["classes"]), alt="confusion matrix"))
    figs.append(h.figure(pr_figure(result["pr_curves"], _operating_points(result)), alt="precision-recall curves"))
    figs.append(h.figure(reliability_figure(result["reliability"], ece=result["ece"]), alt="reliability diagram"))
    parts.append(h.section("Plots", f'<div class="figs">{"".join(figs)}</div>'))
    records = read_metrics(directory)
    monitor = "val_balanced_accuracy" if task == "classification" else "val_mAP"
    if records and cfg.strategy != "linear":
        parts.append(h.section("Training", h.figure(training_figure(records, monitor=monitor), alt="training curves")
                               + h.table(["epoch", "train loss", "val loss", monitor, "lr", "seconds"],
                                         [[r["epoch"], r.get("train_loss"), r.get("val_loss"), r.get(monitor),
                                           r.get("lr"), r.get("epoch_seconds")] for r in records])))
    elif records:
        r = records[-1]
        grid = r.get("grid", [])
        parts.append(h.section("Training (cached features + linear model)", h.kv_table(
            {"feature extraction (s)": r.get("feature_seconds"), "fit (s)": r.get("fit_seconds"),
             "chosen C": r.get("C"), monitor: r.get(monitor)})
            + h.table(["C", "validation score", "seconds"], [[g["C"], g["val_score"], g["seconds"]] for g in grid])))
    parts.append(h.section(f"Worst errors ({min(24, len(errors))} of {len(errors)})",
                           _gallery(project, errors, task)))
    policy = AugmentPolicy.from_json(cfg.augmentation) if cfg.augmentation else None
    setup = {"run": cfg.run_id, "task": cfg.task, "model": cfg.model.get("name"),
             "strategy": f"{cfg.strategy}: {cfg.strategy_reason}",
             "dataset version": f"{cfg.version['name']} ({cfg.version['hash'][:12]})",
             "split evaluated": result["split"],
             "weights": f"{cfg.weights.get('source')}: {cfg.weights.get('detail')}",
             "preprocessing": f"{cfg.preprocess['resize']} to {cfg.preprocess['size']}, mean {cfg.preprocess['mean']}, "
                              f"std {cfg.preprocess['std']}, {cfg.preprocess['interpolation']}",
             "classes": ", ".join(cfg.class_names), "seed": cfg.seed}
    body = h.kv_table(setup)
    if policy is not None:
        body += "<h3>Augmentation policy</h3><ul>" + "".join(f"<li>{h.esc(x)}</li>" for x in policy.describe()) + "</ul>"
    body += "<h3>Hyper-parameters</h3>" + h.kv_table(cfg.hparams)
    parts.append(h.section("Setup", body))
    title = f"{cfg.task} report: {cfg.model.get('name')} on {cfg.version['name']}/{result['split']}"
    return h.write_page(Path(directory) / "report.html", title, "".join(parts),
                        subtitle=f"run {cfg.run_id} · created {cfg.created_at}")
