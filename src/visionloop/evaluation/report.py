"""``report.html``: the one HTML report of an evaluated run, for every task.

One renderer (:func:`write_report`, built on :mod:`visionloop.evaluation.html`: one style sheet, escaped text,
figures and images inline) lays out every report the same way: a summary (headline numbers, advice, warnings), the
task's own sections (:mod:`~visionloop.evaluation.report_classification` for classification and tagging,
:mod:`~visionloop.evaluation.report_detection` for detection, instance and semantic segmentation), the training
curves, and the setup (model, dataset version, preprocessing, augmentation policy, hyper-parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from visionloop.data.augment import AugmentPolicy
from visionloop.evaluation import html as h
from visionloop.evaluation.plots import training_figure

__all__ = ["REPORT_FILE", "setup_section", "training_section", "write_report"]

REPORT_FILE = "report.html"


def training_section(records: Sequence[dict[str, Any]], *, monitor: str, linear: bool = False) -> str:
    """Training curves and the per-epoch table; for a cached-features linear model, its fit instead."""
    if not records:
        return ""
    if linear:
        r = records[-1]
        return h.section("Training (cached features + linear model)", h.kv_table(
            {"feature extraction (s)": r.get("feature_seconds"), "fit (s)": r.get("fit_seconds"),
             "chosen C": r.get("C"), monitor: r.get(monitor)})
            + h.table(["C", "validation score", "seconds"],
                      [[g["C"], g["val_score"], g["seconds"]] for g in r.get("grid", [])]))
    return h.section("Training", h.figure(training_figure(records, monitor=monitor), alt="training curves")
                     + h.table(["epoch", "train loss", "val loss", monitor, "lr", "seconds"],
                               [[r["epoch"], r.get("train_loss"), r.get("val_loss"), r.get(monitor), r.get("lr"),
                                 r.get("epoch_seconds")] for r in records]))


def setup_section(cfg: Any, *, split: str, extra: str = "") -> str:
    """What was trained on what: run, model, strategy, version, split, weights, preprocessing, classes, augmentation
    policy (and ``extra`` HTML, e.g. augmented samples), hyper-parameters."""
    pp = cfg.preprocess
    weights = cfg.weights or {}
    setup = {"run": cfg.run_id, "task": cfg.task, "model": cfg.model.get("name"),
             "strategy": f"{cfg.strategy}: {cfg.strategy_reason}",
             "dataset version": f"{cfg.version['name']} ({cfg.version['hash'][:12]})", "split evaluated": split,
             "weights": ", ".join(f"{k}: {v}" for k, v in weights.items()) or "-",
             "preprocessing": f"{pp['resize']} to {pp['size']}, mean {pp['mean']}, std {pp['std']}, "
                              f"{pp.get('interpolation', 'bilinear')}",
             "classes": ", ".join(cfg.class_names), "seed": cfg.seed}
    body = h.kv_table(setup)
    if cfg.augmentation:
        policy = AugmentPolicy.from_json(cfg.augmentation)
        body += "<h3>Augmentation policy</h3><ul>" + "".join(f"<li>{h.esc(x)}</li>" for x in policy.describe()) + "</ul>"
    body += extra + "<h3>Hyper-parameters</h3>" + h.kv_table(cfg.hparams)
    return h.section("Setup", body)


def write_report(directory: Path, cfg: Any, *, split: str, headline: dict[str, Any], sections: Sequence[str],
                 tips: Sequence[str] = (), warnings: Sequence[str] = (), training: str = "",
                 setup_extra: str = "") -> Path:
    """Write ``directory/report.html`` (self-contained) and return its path.

    ``headline``: the summary numbers; ``sections``: the task's sections (HTML from :mod:`~.html`); ``training``:
    :func:`training_section`'s HTML; ``setup_extra``: more HTML for the setup section.
    """
    summary = h.kv_table(headline)
    if tips:
        summary += "<ul class=\"tips\">" + "".join(f"<li>{h.esc(t)}</li>" for t in tips) + "</ul>"
    summary += "".join(f"<p class=\"bad\">{h.esc(w)}</p>" for w in warnings)
    parts = [h.section("Summary", summary), *sections, training, setup_section(cfg, split=split, extra=setup_extra)]
    title = f"{cfg.task} report: {cfg.model.get('name')} on {cfg.version['name']}/{split}"
    return h.write_page(Path(directory) / REPORT_FILE, title, "".join(parts),
                        subtitle=f"run {cfg.run_id} · created {cfg.created_at}")
